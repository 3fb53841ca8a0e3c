"""Sensor status messages: retained JSON on ``<prefix>/<sensor>/status``, built and read here.

``{"state": "online"|"offline", "time": <Unix s, ms>, ...}``: a publisher's own statuses carry the
time they were sent, then any other fields (``source``, ``sensor``, ``battery_pct``, ``link``,
``reason``, …; ``None`` values are left out). A publisher's **last will** is an ``offline`` status
composed at connect time and published by the broker when the connection is lost (Mosquitto also
sends every will when it shuts down): it has no ``"time"``, and may say ``"will": true``. A
consumer ends a night at once on an explicit ``offline``, but only waits after a will.

Sensor health (the collector's statuses): ``battery_pct`` (0-100, the sensor's battery),
``rssi_dbm`` (signal strength of the sensor's last advertisement before the connection, dBm) and
``connected`` (``true`` while the Bluetooth link streams, ``false`` while it is being re-established
and when offline). :func:`health` reads them back, checked; ``legwatch monitor`` stores them as
``status`` points (:func:`health_fields`).

Readers accept any string ``state`` (a future state is ignored, not an error); an empty payload
clears the retained status and is not a status at all (check for it before :func:`parse`).

Standard library only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BATTERY_PCT",
    "CONNECTED",
    "OFFLINE",
    "ONLINE",
    "RSSI_DBM",
    "Health",
    "Status",
    "StatusError",
    "build",
    "health",
    "health_fields",
    "offline",
    "online",
    "parse",
    "will",
]

ONLINE = "online"
OFFLINE = "offline"
#: The sensor-health fields of a status message.
BATTERY_PCT = "battery_pct"
RSSI_DBM = "rssi_dbm"
CONNECTED = "connected"


class StatusError(ValueError):
    """A status payload that cannot be used (one-line message)."""


@dataclass(frozen=True)
class Status:
    """A parsed status message."""

    state: str
    #: when the publisher sent it (Unix s); ``None`` if absent (a last will) or not a number
    time: float | None = None
    #: the broker published it for a publisher whose connection was lost: not the end of a night
    is_will: bool = False
    #: every other field, as sent
    fields: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def online(self) -> bool:
        return self.state == ONLINE

    @property
    def offline(self) -> bool:
        return self.state == OFFLINE


def build(state: str, *, stamp: bool = True, **extra: Any) -> bytes:
    """``{"state": state, "time": now, **extra}`` (``stamp=False``: no time, as in a will); ``None``
    values in ``extra`` are left out; a ``time`` in ``extra`` replaces now."""
    if state not in (ONLINE, OFFLINE):
        raise ValueError(f"a status is {ONLINE!r} or {OFFLINE!r}, not {state!r}")
    body: dict[str, Any] = {"state": state}
    if stamp:
        body["time"] = round(time.time(), 3)
    body.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps(body).encode()


def online(**extra: Any) -> bytes:
    """An ``online`` status stamped with the time now."""
    return build(ONLINE, **extra)


def offline(**extra: Any) -> bytes:
    """An explicit ``offline`` status stamped with the time now: the publisher is done."""
    return build(OFFLINE, **extra)


def will(source: str, reason: str = "connection lost", *, marked: bool = True) -> bytes:
    """The last will: ``offline`` without a time; ``marked``: also ``"will": true`` (as ``legwatch
    replay`` sends it; the collector's is unmarked)."""
    body: dict[str, Any] = {"state": OFFLINE}
    if marked:
        body["will"] = True
    body.update(source=source, reason=reason)
    return json.dumps(body).encode()


def parse(payload: bytes | bytearray | str) -> Status:
    """Read a status; ``StatusError`` if it is not a JSON object with a string ``state``."""
    try:
        doc = json.loads(payload)
        state = doc.get("state")
    except (ValueError, AttributeError, TypeError, RecursionError):
        raise StatusError("status is not a JSON object") from None
    if not isinstance(state, str):
        raise StatusError('status needs "state": "online" or "offline"')
    t = doc.get("time")
    stamp = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None
    marked = doc.get("will") is True or "time" not in doc
    return Status(
        state=state,
        time=stamp,
        is_will=state == OFFLINE and marked,
        fields={k: v for k, v in doc.items() if k not in ("state", "time")},
    )


@dataclass(frozen=True)
class Health:
    """The sensor-health fields of one status; ``None`` where the status does not say (or says
    something that is not a battery level, a signal strength or a yes/no)."""

    battery_pct: float | None = None
    rssi_dbm: float | None = None
    connected: bool | None = None

    @property
    def empty(self) -> bool:
        return self.battery_pct is None and self.rssi_dbm is None and self.connected is None


def _number(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if low <= number <= high else None


def health(doc: Status) -> Health:
    """The health fields of a parsed status: a battery level within 0-100 %, a signal strength
    within -127..20 dBm, ``connected`` a JSON boolean; anything else is left out."""
    f = doc.fields
    connected = f.get(CONNECTED)
    return Health(
        battery_pct=_number(f.get(BATTERY_PCT), 0.0, 100.0),
        rssi_dbm=_number(f.get(RSSI_DBM), -127.0, 20.0),
        connected=connected if isinstance(connected, bool) else None,
    )


def health_fields(doc: Status) -> dict[str, float | bool]:
    """``{battery_pct, rssi_dbm, connected}`` of a status, only those it has (the fields of a
    ``status`` point)."""
    h = health(doc)
    out: dict[str, float | bool] = {}
    if h.battery_pct is not None:
        out[BATTERY_PCT] = h.battery_pct
    if h.rssi_dbm is not None:
        out[RSSI_DBM] = h.rssi_dbm
    if h.connected is not None:
        out[CONNECTED] = h.connected
    return out
