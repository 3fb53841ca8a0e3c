"""The morning summary over MQTT, with Home Assistant MQTT discovery so it shows up there by itself.

Retained, QoS 1:

- ``<prefix>/summary/<subject>``: the summary as one flat JSON object (``state_payload``);
- ``<prefix>/summary/<subject>/availability``: ``online`` (published with every summary);
- ``homeassistant/sensor/legwatch_<subject>/<object>/config``: one discovery config per number
  (``SENSORS``), all on one device ``legwatch_<subject>``; ``<subject>`` is reduced to
  ``[a-zA-Z0-9_-]`` for ids and topics;
- the health of the night's sensor (``SENSOR_HEALTH``), read straight from its retained status
  ``<prefix>/<sensor>/status`` (``battery_pct``, ``rssi_dbm``, ``connected``: README "MQTT status"):
  ``homeassistant/sensor/legwatch_<subject>/<sensor>_battery/config`` (battery %),
  ``.../<sensor>_signal/config`` (signal strength, dBm) and
  ``homeassistant/binary_sensor/legwatch_<subject>/<sensor>_connected/config`` (connectivity), as
  diagnostic entities of the same device. They have no availability topic: a sensor that is offline
  shows "disconnected", and its last battery level.

A night with too little data publishes ``null`` for its counts; Home Assistant shows them as
"unknown" instead of zero (a template rendering ``None`` is HA's "no value").
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from legwatch import __version__
from legwatch.contracts import topics
from legwatch.summary import habit_text

HA_PREFIX = "homeassistant"


@dataclass(frozen=True)
class SensorDef:
    """One discovered sensor: which key of the state payload it shows, and how."""

    object_id: str
    name: str
    key: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = "measurement"
    icon: str | None = None


SENSORS: tuple[SensorDef, ...] = (
    SensorDef("episodes", "Episodes last night", "episodes", "episodes", icon="mdi:shoe-print"),
    SensorDef("contractions", "Contractions last night", "contractions", "episodes", icon="mdi:lightning-bolt"),
    SensorDef("leg_movements", "Leg movements last night", "leg_movements", "episodes", icon="mdi:walk"),
    SensorDef("twitches", "Twitches last night", "twitches", "episodes", icon="mdi:pulse"),
    SensorDef("plm_index", "Periodic leg movement index", "plm_index", "/h", icon="mdi:chart-bell-curve"),
    SensorDef("longest_contraction", "Longest contraction", "longest_contraction_s", "s", "duration"),
    SensorDef("sleep_duration", "Sleep duration", "sleep_hours", "h", "duration"),
    SensorDef("sleep_start", "Fell asleep", "sleep_start", None, "timestamp", None),
    SensorDef("sleep_end", "Woke up", "sleep_end", None, "timestamp", None),
    SensorDef("coverage", "Data coverage", "coverage_pct", "%", icon="mdi:signal"),
    SensorDef("status", "Night status", "status", None, None, None, "mdi:information-outline"),
)


@dataclass(frozen=True)
class HealthDef:
    """One health entity of a sensor, read from the sensor's status topic."""

    suffix: str
    component: str  # "sensor" or "binary_sensor"
    name: str
    value_template: str
    unit: str | None
    device_class: str


SENSOR_HEALTH: tuple[HealthDef, ...] = (
    HealthDef("battery", "sensor", "battery", "{{ value_json.battery_pct }}", "%", "battery"),
    HealthDef("signal", "sensor", "signal", "{{ value_json.rssi_dbm }}", "dBm", "signal_strength"),
    HealthDef(
        "connected", "binary_sensor", "connected", "{{ 'ON' if value_json.connected else 'OFF' }}", None, "connectivity"
    ),
)

#: Keys of the state payload offered as attributes of the ``episodes`` and ``status`` sensors.
ATTRIBUTES = ("night_of", "reason", "compared", "usual_episodes", "contraction_times", "habits", "disclaimer")


def node_id(subject: str) -> str:
    """``legwatch_<subject>`` with anything outside ``[a-zA-Z0-9_-]`` replaced by ``_``."""
    return "legwatch_" + re.sub(r"[^a-zA-Z0-9_-]", "_", subject)


def availability_topic(prefix: str, subject: str) -> str:
    return f"{topics.summary(prefix, subject)}/availability"


def config_topic(subject: str, object_id: str, ha_prefix: str = HA_PREFIX) -> str:
    return f"{ha_prefix}/sensor/{node_id(subject)}/{object_id}/config"


def state_payload(s: Mapping) -> dict:
    """The flat JSON published on ``<prefix>/summary/<subject>`` (numbers ``null`` when unknown)."""
    counts = s["counts"] or {}
    sw, lc, c = s["sleep_window"], s["longest_contraction"], s["comparison"]
    return {
        "subject": s["subject"],
        "sensor": s["sensor"],
        "night_of": s["night_of"],
        "status": "ok" if s["enough_data"] else "too little data",
        "reason": s["reason"],
        "episodes": s["episodes_total"],
        "twitches": counts.get("twitch"),
        "leg_movements": counts.get("leg_movement"),
        "contractions": counts.get("contraction"),
        "periodic": s["periodic_count"],
        "plm_index": s["plm_index"],
        "longest_contraction_s": (lc["duration_s"] if lc else 0.0) if s["enough_data"] else None,
        "longest_contraction_at": lc["start_iso"] if lc else None,
        "contraction_times": [e["start_iso"] for e in s["contractions"]] if s["enough_data"] else [],
        "sleep_start": sw["start_iso"],
        "sleep_end": sw["end_iso"],
        "sleep_hours": sw["hours"],
        "coverage_pct": round(s["coverage"] * 100, 1),
        "gaps": len(s["gaps"]),
        "gaps_total_s": s["gaps_total_s"],
        "usual_episodes": c["median_episodes"],
        "compared": c["tonight"],
        "habits": [habit_text(h) for h in s["habits"]],
        "published_at": time.time(),
        "disclaimer": s["disclaimer"],
    }


def discovery_configs(prefix: str, subject: str, ha_prefix: str = HA_PREFIX) -> list[tuple[str, dict]]:
    """(config topic, config payload) for every sensor of ``subject``."""
    node = node_id(subject)
    device = {
        "identifiers": [node],
        "name": f"legwatch {subject}",
        "manufacturer": "legwatch",
        "model": "Shin accelerometer night summary",
        "sw_version": __version__,
    }
    availability = [
        {
            "topic": availability_topic(prefix, subject),
            "payload_available": "online",
            "payload_not_available": "offline",
        }
    ]
    attrs = "{{ {" + ", ".join(f"'{k}': value_json.{k}" for k in ATTRIBUTES) + "} | tojson }}"
    out = []
    for d in SENSORS:
        cfg: dict = {
            "name": d.name,
            "has_entity_name": True,
            "unique_id": f"{node}_{d.object_id}",
            "default_entity_id": f"sensor.{node}_{d.object_id}",
            "state_topic": topics.summary(prefix, subject),
            "value_template": f"{{{{ value_json.{d.key} }}}}",
            "availability": availability,
            "device": device,
            "origin": {"name": "legwatch", "sw_version": __version__},
        }
        if d.unit:
            cfg["unit_of_measurement"] = d.unit
        if d.device_class:
            cfg["device_class"] = d.device_class
        if d.state_class:
            cfg["state_class"] = d.state_class
        if d.icon:
            cfg["icon"] = d.icon
        if d.object_id in ("episodes", "status"):
            cfg["json_attributes_topic"] = topics.summary(prefix, subject)
            cfg["json_attributes_template"] = attrs
        out.append((config_topic(subject, d.object_id, ha_prefix), cfg))
    return out


def _device(subject: str) -> dict:
    node = node_id(subject)
    return {
        "identifiers": [node],
        "name": f"legwatch {subject}",
        "manufacturer": "legwatch",
        "model": "Shin accelerometer night summary",
        "sw_version": __version__,
    }


def health_configs(prefix: str, subject: str, sensor: str, ha_prefix: str = HA_PREFIX) -> list[tuple[str, dict]]:
    """(config topic, config payload) for the battery, signal and connectivity of ``sensor``
    (``SENSOR_HEALTH``), on the subject's device; none for an empty or unusable sensor id."""
    if not sensor or sensor in topics.RESERVED or "/" in sensor or "+" in sensor or "#" in sensor:
        return []
    node = node_id(subject)
    sid = re.sub(r"[^a-zA-Z0-9_-]", "_", sensor)
    out = []
    for d in SENSOR_HEALTH:
        cfg: dict = {
            "name": f"{sensor} {d.name}",
            "has_entity_name": True,
            "unique_id": f"{node}_{sid}_{d.suffix}",
            "default_entity_id": f"{d.component}.{node}_{sid}_{d.suffix}",
            "state_topic": topics.status(prefix, sensor),
            "value_template": d.value_template,
            "device_class": d.device_class,
            "entity_category": "diagnostic",
            "device": _device(subject),
            "origin": {"name": "legwatch", "sw_version": __version__},
        }
        if d.unit:
            cfg["unit_of_measurement"] = d.unit
        if d.component == "sensor":
            cfg["state_class"] = "measurement"
        out.append((f"{ha_prefix}/{d.component}/{node}/{sid}_{d.suffix}/config", cfg))
    return out


def messages(prefix: str, s: Mapping, ha_prefix: str = HA_PREFIX) -> list[tuple[str, bytes]]:
    """Every retained message of one summary, in publishing order: configs (the summary's, then its
    sensor's health), state, availability."""
    subject = s["subject"]
    out = [(t, json.dumps(c).encode()) for t, c in discovery_configs(prefix, subject, ha_prefix)]
    sensor = s.get("sensor") or ""
    out += [(t, json.dumps(c).encode()) for t, c in health_configs(prefix, subject, sensor, ha_prefix)]
    out.append((topics.summary(prefix, subject), json.dumps(state_payload(s)).encode()))
    out.append((availability_topic(prefix, subject), b"online"))
    return out


def publish_summary(conn, prefix: str, s: Mapping, ha_prefix: str = HA_PREFIX, *, wait: float = 0.0) -> list:
    """Publish retained with QoS 1 on a :class:`legwatch.mqtt.connection.Connection`; returns the
    ``MQTTMessageInfo``s.

    ``wait`` > 0: wait up to that many seconds until the broker has acknowledged everything the
    connection published (so a caller that disconnects next loses nothing); on paho's own network
    thread it does not wait, which would block the acknowledgements it waits for.
    """
    infos = [conn.publish(topic, payload, qos=1, retain=True) for topic, payload in messages(prefix, s, ha_prefix)]
    if wait > 0:
        conn.wait_published(wait)
    return infos


def publish_once(cfg, s: Mapping, *, timeout: float = 10.0) -> int:
    """Connect with the configured broker, publish one summary, wait until the broker has it."""
    from legwatch.mqtt.connection import BrokerUnavailable, Connection

    with Connection(
        cfg["mqtt.url"],
        f"legwatch-summary-{node_id(s['subject'])}"[:64],
        protocol=cfg["mqtt.protocol"],
        persistent=False,
        ca_file=cfg["mqtt.ca_file"],
    ) as conn:
        conn.connect(timeout)
        infos = publish_summary(conn, cfg["mqtt.topic_prefix"], s)
        if conn.wait_published(timeout):
            raise BrokerUnavailable(f"the broker at {conn.url} did not confirm the summary in time")
    return len(infos)
