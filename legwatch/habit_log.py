"""Looking after the habit log: list entries with an ID, delete one by ID, undo the last one logged.

An entry's ID is the same in both stores (InfluxDB has no row id): the first 8 hex digits of
SHA-256 over ``<habit>@<time in ms>``. Habit and millisecond (with the subject) are exactly what
identifies a ``habit`` point, and ``legwatch log`` moves a second entry of the same habit in the same
millisecond on by 1 ms, so every stored entry of a subject has its own ID, stable for as long as it
is stored, whatever the store.

"The last entry logged" (``legwatch log undo``) is the one with the latest ``logged`` field (Unix
seconds when ``legwatch log`` or ``legwatch import-habits`` stored it); entries that came another
way (over MQTT, before the field existed) count by their own time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from legwatch.contracts import localtime
from legwatch.errors import UserError
from legwatch.storage import Point, Store

ID_LENGTH = 8
DEFAULT_DAYS = 30


def entry_id(habit: str, time_ms: int) -> str:
    """The ID of the habit entry of ``habit`` at ``time_ms``."""
    return hashlib.sha256(f"{habit}@{time_ms}".encode()).hexdigest()[:ID_LENGTH]


def point_id(p: Point) -> str:
    return entry_id(p.tags.get("habit", ""), p.time_ms)


def _day(text: str, flag: str) -> datetime:
    try:
        return localtime.localize(datetime.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise UserError(f"{flag} must be a date like 2026-01-05, got {text!r}") from None


def window(since: str | None, until: str | None, *, days: int = DEFAULT_DAYS) -> tuple[float | None, float | None]:
    """(start, end) in Unix seconds: from the start of ``since`` to the end of ``until`` (inclusive).
    Neither given: the last ``days`` days; only ``until``: everything up to it."""
    start: float | None = None
    if since:
        start = _day(since, "--since").timestamp()
    elif not until:
        midnight = (localtime.now() - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight.timestamp()
    end = None
    if until:
        end = (_day(until, "--until") + timedelta(days=1)).timestamp()
        if start is not None and end <= start:
            raise UserError(f"--until {until} is before --since {since}")
    return start, end


def as_dict(p: Point) -> dict:
    """One entry as ``habits --format json`` prints it."""
    f = p.fields
    return {
        "id": point_id(p),
        "habit": p.tags.get("habit", ""),
        "time": p.time_ms / 1000.0,
        "time_local": localtime.local(p.time).isoformat(timespec="seconds"),
        "value": f.get("value"),
        "unit": f.get("unit", ""),
        "name": f.get("name", ""),
        "intensity": f.get("intensity", ""),
        "note": f.get("note", ""),
        "logged": f.get("logged"),
    }


def entries(
    store: Store,
    subject: str,
    *,
    since: str | None = None,
    until: str | None = None,
    habit: str | None = None,
) -> list[Point]:
    """The subject's habit points in the window (``window``), of one habit when given, by time."""
    start, end = window(since, until)
    tags = {"subject": subject}
    if habit:
        tags["habit"] = habit.strip().lower().replace("-", "_")
    return store.query("habit", start=start, end=end, tags=tags)


def _label(d: Mapping) -> str:
    """``exercise (hard)``, ``medication statin``, ``water``."""
    text = str(d["habit"]) + (f" {d['name']}" if d.get("name") else "")
    return text + (f" ({d['intensity']})" if d.get("intensity") else "")


def describe(p: Point | Mapping) -> str:
    """``water 0.5 l at 2026-01-05 21:30 CET (id 1a2b3c4d)``."""
    d = as_dict(p) if isinstance(p, Point) else p
    label = _label(d)
    value = d["value"]
    amount = f"{float(value):g} {d['unit']}".strip() if isinstance(value, int | float) else ""
    when = localtime.local(d["time"]).strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"{label} {amount} at {when} (id {d['id']})".replace("  ", " ")


def find(store: Store, subject: str, wanted: str) -> Point:
    """The subject's entry with ID ``wanted`` (any stored time); ``UserError`` when none has it."""
    key = wanted.strip().lower()
    if len(key) != ID_LENGTH or any(c not in "0123456789abcdef" for c in key):
        raise UserError(f"an entry ID is {ID_LENGTH} hex digits as `legwatch habits` shows them, got {wanted!r}")
    hits = [p for p in store.query("habit", tags={"subject": subject}) if point_id(p) == key]
    if not hits:
        raise UserError(f"no habit entry {key} for {subject!r}: `legwatch habits --since DATE` lists them with IDs")
    if len(hits) > 1:  # pragma: no cover - two entries whose IDs collide in 32 bits
        raise UserError(f"{len(hits)} entries share ID {key}: delete them with a store tool")
    return hits[0]


def remove(store: Store, subject: str, p: Point) -> None:
    """Delete exactly the point ``p`` (its subject, habit and millisecond)."""
    t = p.time_ms / 1000.0
    store.delete(
        "habit", start=t, end=(p.time_ms + 1) / 1000.0, tags={"subject": subject, "habit": p.tags.get("habit", "")}
    )


def _logged(p: Point) -> float:
    value = p.fields.get("logged")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else p.time


def last_logged(points: Sequence[Point]) -> Point | None:
    """The entry logged last (latest ``logged`` field, else its own time); ties: the later time."""
    return max(points, key=lambda p: (_logged(p), p.time_ms), default=None)


def undo(store: Store, subject: str) -> Point:
    """Delete the entry logged last and return it; ``UserError`` when there is none."""
    p = last_logged(store.query("habit", tags={"subject": subject}))
    if p is None:
        raise UserError(f"no habit entries stored for {subject!r}: nothing to undo")
    remove(store, subject, p)
    return p


def render_text(points: Sequence[Point], console, *, heading: str) -> None:
    """The entries as a table (ID, time with zone, habit, amount with unit, note) within 80 columns."""
    from rich.table import Table

    console.print(heading)
    if not points:
        console.print("No habit entries in that range.")
        return
    zone = localtime.short(points[-1].time)
    t = Table()
    t.add_column("id", no_wrap=True)
    t.add_column(f"time ({zone})", no_wrap=True)
    t.add_column("habit", overflow="fold")
    t.add_column("amount", justify="right", no_wrap=True)
    t.add_column("note", overflow="fold")
    for p in points:
        d = as_dict(p)
        label = _label(d)
        value = d["value"]
        amount = f"{float(value):g} {d['unit']}".strip() if isinstance(value, int | float) else ""
        t.add_row(d["id"], localtime.local(p.time).strftime("%Y-%m-%d %H:%M"), label, amount, str(d["note"]))
    console.print(t)
    console.print(f"Times in {localtime.label(points[-1].time)}. `legwatch habits delete ID` removes one entry.")
