"""Habits a person logs by hand, with defaults and units, checked before anything is written.

The list follows what is known to influence night-time leg cramps: fluids and electrolytes,
exercise and fatigue, stretching before bed, medications such as diuretics and statins, caffeine
and alcohol, heat or cold on the muscle. Any other name is accepted as a custom habit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from legwatch.storage import Point


class HabitError(ValueError):
    """A habit entry that will not be written; one-line message."""


@dataclass(frozen=True)
class HabitSpec:
    unit: str
    default: float
    help: str
    max_value: float


KNOWN: dict[str, HabitSpec] = {
    "water": HabitSpec("l", 0.25, "fluids drunk, litres (default a glass, 0.25)", 20),
    "electrolytes": HabitSpec("dose", 1, "electrolyte or magnesium supplement, doses", 20),
    "caffeine": HabitSpec("mg", 80, "caffeine, mg (default a cup of coffee, 80)", 2000),
    "alcohol": HabitSpec("drinks", 1, "alcoholic drinks, standard units", 50),
    "exercise": HabitSpec("min", 30, "exercise, minutes (--note for intensity)", 1440),
    "stretching": HabitSpec("min", 5, "stretching, minutes (best before bed)", 600),
    "medication": HabitSpec("dose", 1, "a medication by name, e.g. `log medication statin`", 50),
    "heat": HabitSpec("min", 15, "heat on the muscle, minutes", 600),
    "cold": HabitSpec("min", 10, "cold on the muscle, minutes", 600),
    "sitting": HabitSpec("h", 1, "long sitting or standing, hours", 24),
}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class HabitEntry:
    habit: str
    value: float
    unit: str
    time: float
    note: str = ""
    name: str = ""

    def point(self, subject: str) -> Point:
        fields: dict = {"value": float(self.value), "unit": self.unit}
        if self.note:
            fields["note"] = self.note
        if self.name:
            fields["name"] = self.name
        return Point("habit", {"subject": subject, "habit": self.habit}, fields, self.time)


def parse_time(text: str | None, now: datetime | None = None) -> float:
    """'21:30' (today, or yesterday if that is still ahead), 'yesterday 18:00', or ISO 8601."""
    now = now or datetime.now().astimezone()
    if not text:
        return now.timestamp()
    s = text.strip().lower()
    day_shift = 0
    for word, shift in (("yesterday", -1), ("today", 0)):
        if s.startswith(word):
            day_shift = shift
            s = s[len(word) :].strip() or "12:00"
            m = re.fullmatch(r"(\d{1,2}):(\d{2})", s)
            if not m:
                raise HabitError(f"--at: cannot read {text!r}; use 21:30, 'yesterday 18:00' or 2026-01-05T21:30")
            break
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", s)
    if m:
        hh, mm = int(m.group(1)), int(m.group(2))
        if hh > 23 or mm > 59:
            raise HabitError(f"--at: {text!r} is not a time of day")
        t = now.replace(hour=hh, minute=mm, second=0, microsecond=0) + timedelta(days=day_shift)
        if day_shift == 0 and not text.strip().lower().startswith("today") and t > now + timedelta(minutes=5):
            t -= timedelta(days=1)
        return t.timestamp()
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HabitError(f"--at: cannot read {text!r}; use 21:30, 'yesterday 18:00' or 2026-01-05T21:30") from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    if dt.timestamp() > now.timestamp() + 300:
        raise HabitError(f"--at: {text!r} is in the future")
    return dt.timestamp()


def make_entry(
    habit: str,
    value: str | float | None = None,
    *,
    unit: str | None = None,
    at: str | float | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> HabitEntry:
    """Validate one habit entry; raises HabitError before anything is written."""
    h = (habit or "").strip().lower().replace("-", "_")
    if not NAME.match(h):
        raise HabitError(f"habit name {habit!r} must be a word of letters, digits and _ (e.g. water, caffeine)")
    spec = KNOWN.get(h)
    name = ""
    v: float
    if value is None or value == "":
        if spec is None:
            v = 1.0
        else:
            v = spec.default
    elif isinstance(value, int | float) and not isinstance(value, bool):
        v = float(value)
    else:
        try:
            v = float(str(value).strip())
        except ValueError:
            if h == "medication" and re.fullmatch(r"[A-Za-z][A-Za-z0-9 _-]{0,39}", str(value).strip()):
                name = str(value).strip().lower()
                v = 1.0
            else:
                raise HabitError(f"{h}: value {value!r} is not a number") from None
    if not math.isfinite(v) or v < 0:
        raise HabitError(f"{h}: value must be a number >= 0, got {value!r}")
    if spec is not None and v > spec.max_value:
        raise HabitError(f"{h}: {v:g} {spec.unit} is implausibly large (max {spec.max_value:g})")
    if h == "medication" and not name and note:
        name = note.strip().lower()
    u = unit if unit is not None else (spec.unit if spec else "")
    if len(u) > 16 or any(c in u for c in "\n\r\t"):
        raise HabitError(f"{h}: unit {u!r} is too long or has control characters")
    if note is not None and (len(note) > 500 or any(c in note for c in "\n\r")):
        raise HabitError(f"{h}: note must be one line of at most 500 characters")
    if isinstance(at, int | float) and not isinstance(at, bool):
        t = float(at)
    else:
        t = parse_time(at, now)
    return HabitEntry(h, v, u, t, note or "", name)


def store_entry(store, subject: str, entry: HabitEntry) -> HabitEntry:
    """Write an entry; a second entry of the same habit in the same millisecond moves 1 ms on."""
    t = entry.time
    for _ in range(1000):
        existing = store.query("habit", start=t, end=t + 0.001, tags={"subject": subject, "habit": entry.habit})
        if not existing:
            break
        t = round(t + 0.001, 3)
    e = HabitEntry(entry.habit, entry.value, entry.unit, t, entry.note, entry.name)
    store.write([e.point(subject)])
    return e
