"""MQTT topic names (under a configurable prefix, default ``legwatch``).

``<prefix>/<sensor>/samples``  sample batches (binary v1 or JSON), QoS 1
``<prefix>/<sensor>/status``   retained JSON ``{"state": "online"|"offline", ...}``; the last will
``<prefix>/<sensor>/episodes`` one JSON event per detected episode, QoS 1
``<prefix>/<sensor>/ack``      the monitor's end-to-end acknowledgement (JSON, ``contracts.ack``), QoS 0
``<prefix>/<sensor>/sender``   a sender's report of what it holds (JSON, ``contracts.ack``), QoS 1
``<prefix>/habits``            habit log messages (JSON), QoS 1
``<prefix>/summary/<subject>`` retained morning summary (JSON)
``<prefix>/deadletter/<sensor>`` payloads the monitor set aside, with the reason
"""

from __future__ import annotations

RESERVED = {"habits", "summary", "deadletter"}


def samples(prefix: str, sensor: str) -> str:
    return f"{prefix}/{sensor}/samples"


def status(prefix: str, sensor: str) -> str:
    return f"{prefix}/{sensor}/status"


def episodes(prefix: str, sensor: str) -> str:
    return f"{prefix}/{sensor}/episodes"


def ack(prefix: str, sensor: str) -> str:
    return f"{prefix}/{sensor}/ack"


def sender(prefix: str, sensor: str) -> str:
    return f"{prefix}/{sensor}/sender"


def habits(prefix: str) -> str:
    return f"{prefix}/habits"


def summary(prefix: str, subject: str) -> str:
    return f"{prefix}/summary/{subject}"


def deadletter(prefix: str, sensor: str) -> str:
    return f"{prefix}/deadletter/{sensor}"


def parse(prefix: str, topic: str) -> tuple[str, str] | None:
    """(sensor, leaf) for ``<prefix>/<sensor>/<leaf>``, else None."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) != 2 or parts[0] in RESERVED:
        return None
    return parts[0], parts[1]
