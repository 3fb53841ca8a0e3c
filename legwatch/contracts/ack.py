"""End-to-end acknowledgement between the monitor and the senders (the collector, ``legwatch
replay``): how far the monitor's *durably handled* data reaches, and what a sender no longer has.

A broker's PUBACK only says the broker took a message; a broker at its default limits (Mosquitto:
``max_queued_messages 1000``) may still drop it before the monitor reads it, and a broker without
persistence forgets it on a restart. So the monitor says, per sensor, what it has stored, and the
sender keeps every batch until that covers it.

``<prefix>/<sensor>/ack`` (monitor -> sender, JSON, QoS 0, not retained; on change and every few
seconds while the night runs)::

    {"v": 1, "session": "9f3c...", "stored": 1234, "missing": [[1235, 1240]], "ended": false,
     "time": 1767652200.25}

``stored``: the highest sequence number up to which every batch is stored (or counted lost), or
``null`` before the first; ``missing``: ranges (inclusive) the monitor has seen beyond ``stored``
but not the ones before them, so it asks for them again; ``ended``: the night of this session
ended and is stored (the answer to an explicit ``offline`` status).

``<prefix>/<sensor>/sender`` (sender -> monitor, JSON, QoS 1, not retained; on every connect,
when the monitor asked for something the sender no longer has, and after a few seconds without
progress)::

    {"v": 1, "session": "9f3c...", "first": 1200, "sent": 1300, "lost": [[1100, 1150, "spool full"]]}

``first``: the lowest sequence number the sender still holds (its next one if it holds none);
``sent``: the highest it has sent, or ``null``; ``lost``: ranges it will never send, with why.

A sender that takes part says so in its ``online`` and ``offline`` statuses with ``"session"``
(any 1-64 character id, the same for a sender's whole sequence numbering) and ``"first"``.
Publishers that do neither (a do-it-yourself board) are handled as before: no acknowledgements,
and a sequence gap is recorded as a gap at once.

Sequence numbers are the payload's unsigned 32-bit numbers and wrap; :func:`unwrap` maps one
back onto a sender's own (unbounded) numbering. Standard library only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "VERSION",
    "AckError",
    "Report",
    "Watermark",
    "build_report",
    "build_watermark",
    "parse_report",
    "parse_watermark",
    "unwrap",
    "valid_session",
]

VERSION = 1
WRAP = 2**32
_SESSION = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
#: At most this many ranges in one message (a longer list keeps its first ones).
MAX_RANGES = 64


class AckError(ValueError):
    """An acknowledgement or sender report that cannot be used (one-line message)."""


def valid_session(session: Any) -> bool:
    return isinstance(session, str) and bool(_SESSION.match(session))


def unwrap(seq32: int, near: int) -> int:
    """The number of the form ``seq32 + k * 2**32`` closest to ``near`` (a sender's own numbering)."""
    return near + ((seq32 - near + WRAP // 2) % WRAP) - WRAP // 2


def after(a: int, b: int) -> bool:
    """32-bit sequence number ``a`` comes after ``b``."""
    return 0 < (a - b) % WRAP < WRAP // 2


@dataclass(frozen=True)
class Watermark:
    """The monitor's acknowledgement for one sensor."""

    session: str
    stored: int | None
    missing: tuple[tuple[int, int], ...] = ()
    ended: bool = False
    time: float | None = None

    def covers(self, seq32: int) -> bool:
        """Whether batch ``seq32`` (a 32-bit payload number) is stored."""
        return self.stored is not None and not after(seq32 & (WRAP - 1), self.stored)


@dataclass(frozen=True)
class Report:
    """A sender's account of what it holds."""

    session: str
    first: int
    sent: int | None = None
    lost: tuple[tuple[int, int, str], ...] = field(default=())


def _seq(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < WRAP:
        raise AckError(f"{what!r} must be an integer 0..2**32-1")
    return v


def _doc(payload: bytes | bytearray | str) -> dict:
    try:
        doc = json.loads(payload)
    except (ValueError, TypeError, RecursionError):
        raise AckError("not JSON") from None
    if not isinstance(doc, dict):
        raise AckError("not a JSON object")
    if doc.get("v") != VERSION:
        raise AckError(f"unknown version {doc.get('v')!r} (this legwatch reads v {VERSION})")
    if not valid_session(doc.get("session")):
        raise AckError("'session' must be 1-64 of A-Z a-z 0-9 _ . : -")
    return doc


def build_watermark(
    session: str, stored: int | None, missing: Iterable[tuple[int, int]] = (), *, ended: bool = False
) -> bytes:
    body = {
        "v": VERSION,
        "session": session,
        "stored": None if stored is None else stored % WRAP,
        "missing": [[lo % WRAP, hi % WRAP] for lo, hi in list(missing)[:MAX_RANGES]],
        "ended": bool(ended),
        "time": round(time.time(), 3),
    }
    return json.dumps(body).encode()


def parse_watermark(payload: bytes | bytearray | str) -> Watermark:
    doc = _doc(payload)
    stored = doc.get("stored")
    missing = doc.get("missing", [])
    if not isinstance(missing, list) or not all(isinstance(r, list) and len(r) == 2 for r in missing):
        raise AckError("'missing' must be a list of [first, last] pairs")
    t = doc.get("time")
    return Watermark(
        session=doc["session"],
        stored=None if stored is None else _seq(stored, "stored"),
        missing=tuple((_seq(a, "missing"), _seq(b, "missing")) for a, b in missing),
        ended=doc.get("ended") is True,
        time=float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None,
    )


def build_report(session: str, first: int, sent: int | None, lost: Sequence[tuple[int, int, str]] = ()) -> bytes:
    body = {
        "v": VERSION,
        "session": session,
        "first": first % WRAP,
        "sent": None if sent is None else sent % WRAP,
        "lost": [[lo % WRAP, hi % WRAP, str(why)[:200]] for lo, hi, why in list(lost)[:MAX_RANGES]],
    }
    return json.dumps(body).encode()


def parse_report(payload: bytes | bytearray | str) -> Report:
    doc = _doc(payload)
    lost = doc.get("lost", [])
    ok = isinstance(lost, list) and all(isinstance(r, list) and len(r) == 3 and isinstance(r[2], str) for r in lost)
    if not ok:
        raise AckError("'lost' must be a list of [first, last, reason]")
    sent = doc.get("sent")
    return Report(
        session=doc["session"],
        first=_seq(doc.get("first"), "first"),
        sent=None if sent is None else _seq(sent, "sent"),
        lost=tuple((_seq(a, "lost"), _seq(b, "lost"), r) for a, b, r in lost),
    )
