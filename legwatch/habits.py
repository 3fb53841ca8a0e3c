"""Habits a person logs by hand, with defaults and units, checked before anything is written.

The list follows what is known to influence night-time leg cramps: fluids and electrolytes,
exercise and fatigue (minutes, with an intensity), stretching before bed, medications such as
diuretics and statins (by name), caffeine and alcohol, long sitting or standing, heat or cold on
the muscle. Any other name is accepted as a custom habit.

One validation path for every way in: ``make_entry`` (the ``legwatch log`` command and each row of
``legwatch import-habits``) and ``entry_from_message`` (the JSON messages on ``<prefix>/habits``).
Values are stored in each known habit's own unit (``500ml`` of water is stored as 0.5 l), so sums
and correlations never mix units. Nothing is written until an entry has passed every check.

Which night a habit belongs to (``evening_window``): habits logged between the noon before sleep
onset and sleep onset belong to that night ("a lag of one evening").
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from legwatch.contracts import localtime
from legwatch.storage import Point, Store, tags_match

# --- what can be logged ------------------------------------------------------------------------

_MINUTES = {"min": 1.0, "mins": 1.0, "minutes": 1.0, "m": 1.0, "h": 60.0, "hours": 60.0, "s": 1 / 60}
_PORTIONS = {"glass", "glasses", "cup", "cups", "coffee", "espresso", "tea", "sachet", "sachets", "drink", "drinks"}
_PORTIONS |= {"unit", "units", "dose", "doses", "tablet", "tablets", "pill", "pills"}
_DOSES = {"dose": 1.0, "doses": 1.0, "tablet": 1.0, "tablets": 1.0, "pill": 1.0, "pills": 1.0}


class HabitError(ValueError):
    """A habit entry that will not be written; one-line message."""


@dataclass(frozen=True)
class HabitSpec:
    """A known habit: its stored unit, default amount, help, a plausibility limit and the units
    accepted on input (name -> factor to the stored unit; ``None``: any unit, stored as given)."""

    unit: str
    default: float
    help: str
    max_value: float
    units: Mapping[str, float] | None = field(default=None)


KNOWN: dict[str, HabitSpec] = {
    "water": HabitSpec(
        "l",
        0.25,
        "fluids drunk, litres (default a glass, 0.25; also ml, cl, dl, glass, oz)",
        20,
        {"l": 1.0, "ml": 0.001, "cl": 0.01, "dl": 0.1, "glass": 0.25, "glasses": 0.25, "cup": 0.25, "oz": 0.0295735},
    ),
    "electrolytes": HabitSpec(
        "dose", 1, "electrolyte or magnesium supplement, doses", 20, {**_DOSES, "sachet": 1.0, "sachets": 1.0}
    ),
    "caffeine": HabitSpec(
        "mg",
        80,
        "caffeine, mg (default a cup of coffee, 80; also cup, espresso, tea)",
        2000,
        {"mg": 1.0, "g": 1000.0, "cup": 80.0, "cups": 80.0, "coffee": 80.0, "espresso": 63.0, "tea": 40.0},
    ),
    "alcohol": HabitSpec(
        "drinks", 1, "alcoholic drinks, standard drinks", 50, {"drinks": 1.0, "drink": 1.0, "units": 1.0, "unit": 1.0}
    ),
    "exercise": HabitSpec("min", 30, "exercise, minutes; --intensity light|moderate|hard", 1440, _MINUTES),
    "stretching": HabitSpec("min", 5, "stretching, minutes (best before bed)", 600, _MINUTES),
    "medication": HabitSpec("dose", 1, "a medication by name: `log medication statin` (or diuretic, …)", 50, None),
    "heat": HabitSpec("min", 15, "heat on the muscle (bath, pad), minutes", 600, _MINUTES),
    "cold": HabitSpec("min", 10, "cold on the muscle, minutes", 600, _MINUTES),
    "sitting": HabitSpec("h", 1, "long sitting, hours", 24, {"h": 1.0, "hours": 1.0, "min": 1 / 60, "mins": 1 / 60}),
    "standing": HabitSpec("h", 1, "long standing, hours", 24, {"h": 1.0, "hours": 1.0, "min": 1 / 60, "mins": 1 / 60}),
}
#: Shorthands: ``legwatch log statin`` is ``legwatch log medication statin``.
MEDICATION_ALIASES = ("statin", "diuretic")
INTENSITIES = ("light", "moderate", "hard")
_INTENSITY_WORDS = {"easy": "light", "medium": "moderate", "vigorous": "hard", "intense": "hard", "heavy": "hard"}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MED_NAME = re.compile(r"^[a-z][a-z0-9 _.-]{0,39}$")
_NUMBER_UNIT = re.compile(r"^([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]+)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_AT_HELP = "use 21:30, 'yesterday 18:00' or 2026-01-05T21:30"
_EARLIEST = 946684800.0  # 2000-01-01: anything earlier is a typo


@dataclass(frozen=True)
class HabitEntry:
    """One validated entry; ``value`` in ``unit`` (the habit's own unit for known habits)."""

    habit: str
    value: float
    unit: str
    time: float
    note: str = ""
    name: str = ""
    intensity: str = ""
    id: str = ""

    def fields(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {"value": float(self.value), "unit": self.unit}
        for key in ("note", "name", "intensity", "id"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    def point(self, subject: str) -> Point:
        return Point("habit", {"subject": subject, "habit": self.habit}, self.fields(), self.time)

    def label(self) -> str:
        """``exercise (hard)``, ``medication statin``, ``water``."""
        text = self.habit + (f" {self.name}" if self.name else "")
        return text + (f" ({self.intensity})" if self.intensity else "")


# --- times -------------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return localtime.now() if now is None else now.astimezone(localtime.zone())


def parse_time(text: str | float | None, now: datetime | None = None, *, relative: bool = True) -> float:
    """When a habit happened, as Unix seconds.

    Accepts (local time unless a zone is given): ``21:30`` (today, or yesterday if that is more than
    5 minutes ahead), ``today 21:30``, ``yesterday 18:00``, ISO 8601 (``2026-01-05T21:30``,
    ``2026-01-05 21:30:00+01:00``), and a number of Unix seconds. ``relative=False`` (files) refuses
    the forms that depend on today's date. Refuses the future and anything before 2000.
    """
    nowdt = _now(now)
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "now")):
        return nowdt.timestamp()
    if isinstance(text, bool):
        raise HabitError(f"at: cannot read {text!r}; {_AT_HELP}")
    if isinstance(text, int | float):
        t = float(text)
        if not math.isfinite(t):
            raise HabitError(f"at: {text!r} is not a time")
    else:
        t = _parse_text_time(str(text), nowdt, relative)
    if t > nowdt.timestamp() + 300:
        raise HabitError(f"at: {text!r} is in the future")
    if t < _EARLIEST:
        raise HabitError(f"at: {text!r} is before the year 2000")
    return t


def _parse_text_time(text: str, nowdt: datetime, relative: bool) -> float:
    s = " ".join(text.strip().lower().split())
    shift: int | None = None
    for word, days in (("yesterday", -1), ("today", 0)):
        if s == word or s.startswith(word + " "):
            shift, s = days, s[len(word) :].strip()
            if not s:
                raise HabitError(f"at: say when {word}, e.g. '{word} 18:00'")
            break
    m = _CLOCK.match(s)
    if m:
        if not relative:
            raise HabitError(f"at: {text!r} needs a date here; use 2026-01-05 21:30 or ISO 8601")
        hh, mm, ss = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if hh > 23 or mm > 59 or ss > 59:
            raise HabitError(f"at: {text!r} is not a time of day")
        t = nowdt.replace(hour=hh, minute=mm, second=ss, microsecond=0) + timedelta(days=shift or 0)
        if shift is None and t > nowdt + timedelta(minutes=5):
            t -= timedelta(days=1)
        return t.timestamp()
    if shift is not None:
        raise HabitError(f"at: cannot read {text!r}; {_AT_HELP}")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        raise HabitError(f"at: {text!r} has no time of day; add one, e.g. {s}T21:30")
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise HabitError(f"at: cannot read {text!r}; {_AT_HELP}") from None
    return localtime.localize(dt).timestamp()


def evening_window(onset: float) -> tuple[float, float]:
    """The habits that belong to a night: from the last local noon before sleep onset to onset."""
    d = localtime.local(onset)
    noon = d.replace(hour=12, minute=0, second=0, microsecond=0)
    if noon.timestamp() >= onset:
        noon = (d - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    return noon.timestamp(), onset


# --- validation --------------------------------------------------------------------------------


def check_subject(subject: object) -> str:
    """A subject name as the config accepts it (non-empty, no + # /, one short line)."""
    if not isinstance(subject, str) or not subject.strip():
        raise HabitError(f"subject must be a non-empty name, got {subject!r}")
    s = subject.strip()
    if len(s) > 64 or any(c in s for c in "+#/") or any(ord(c) < 0x20 for c in s):
        raise HabitError(f"subject must be at most 64 characters without + # / or control characters, got {s!r}")
    return s


def _split_value(h: str, value: object) -> tuple[float | None, str | None, str]:
    """(number, unit given with it, medication name) from a VALUE as typed or sent."""
    if value is None or value == "":
        return None, None, ""
    if isinstance(value, bool):
        raise HabitError(f"{h}: value {value!r} is not a number")
    if isinstance(value, int | float):
        return float(value), None, ""
    text = str(value).strip()
    try:
        return float(text), None, ""
    except ValueError:
        pass
    m = _NUMBER_UNIT.match(text)
    if m and h != "medication":
        return float(m.group(1)), m.group(2).lower(), ""
    if h == "medication" and _MED_NAME.match(text.lower()):
        return None, None, text.lower()
    raise HabitError(f"{h}: value {text!r} is not a number")


def _intensity(h: str, intensity: str | None) -> str:
    if not intensity:
        return ""
    word = str(intensity).strip().lower()
    word = _INTENSITY_WORDS.get(word, word)
    if word not in INTENSITIES:
        raise HabitError(f"{h}: intensity must be light, moderate or hard, got {intensity!r}")
    if h in KNOWN and h != "exercise":
        raise HabitError(f"{h}: an intensity is for exercise (or a custom habit), not {h}")
    return word


def _unit_hint(spec: HabitSpec, number: float) -> str:
    """``; did you mean 500ml?`` for a bare number that is plausible in a smaller unit of the habit
    (of those, the one that makes it nearest the habit's usual amount: ``50`` water is ``50cl``)."""
    fits = [
        (abs(math.log(number * factor / spec.default)), unit)
        for unit, factor in (spec.units or {}).items()
        if 0.001 <= factor < 1 and unit not in ("s", "m") and 0 < number * factor <= spec.max_value
    ]
    return f"; did you mean {number:g}{min(fits)[1]}?" if fits else ""


def make_entry(
    habit: str,
    value: str | float | None = None,
    *,
    unit: str | None = None,
    at: str | float | None = None,
    note: str | None = None,
    intensity: str | None = None,
    id: str = "",
    now: datetime | None = None,
    relative_times: bool = True,
) -> HabitEntry:
    """Validate one habit entry; raises HabitError (one line) before anything is written."""
    h = (habit if isinstance(habit, str) else "").strip().lower().replace("-", "_")
    if not NAME.match(h):
        raise HabitError(f"habit name {habit!r} must be a word of letters, digits and _ (e.g. water, caffeine)")
    name = ""
    if h in MEDICATION_ALIASES:
        h, name = "medication", h
    spec = KNOWN.get(h)
    number, value_unit, med_name = _split_value(h, value)
    name = med_name or name
    if unit is not None and not isinstance(unit, str):
        raise HabitError(f"{h}: unit must be text, got {unit!r}")
    given_unit = (unit or "").strip() or None
    if value_unit and given_unit and value_unit != given_unit.lower():
        raise HabitError(f"{h}: value says {value_unit!r} but --unit says {given_unit!r}")
    given_unit = given_unit or value_unit
    u = given_unit if given_unit is not None else (spec.unit if spec else "")
    if len(u) > 16 or any(ord(c) < 0x20 for c in u):
        raise HabitError(f"{h}: unit {u!r} is too long or has control characters")
    if number is not None:
        v = number
    elif spec is None or (given_unit is not None and u.lower() in _PORTIONS):
        v = 1.0  # a custom habit, or "one glass", "one espresso"
    else:
        v, u, given_unit = spec.default, spec.unit, None
    if not math.isfinite(v) or v < 0:
        raise HabitError(f"{h}: value must be a number >= 0, got {value!r}")
    if spec is not None and spec.units is not None:
        factor = spec.units.get(u.lower()) if given_unit is not None else 1.0
        if factor is None:
            raise HabitError(f"{h}: unknown unit {u!r}; use one of {', '.join(spec.units)}")
        v, u = v * factor, spec.unit
    if spec is not None and u == spec.unit and v > spec.max_value:
        hint = _unit_hint(spec, number) if number is not None and given_unit is None else ""
        raise HabitError(f"{h}: {v:g} {spec.unit} is implausibly large (max {spec.max_value:g}){hint}")
    if note is not None and (not isinstance(note, str) or len(note) > 500 or any(c in note for c in "\n\r")):
        raise HabitError(f"{h}: note must be one line of at most 500 characters")
    note = (note or "").strip()
    if h == "medication" and not name:
        if note and _MED_NAME.match(note.lower()):
            name, note = note.lower(), ""
        else:
            raise HabitError("medication: say which one, e.g. `legwatch log medication statin`")
    t = parse_time(at, now, relative=relative_times)
    return HabitEntry(h, float(v), u, t, note, name, _intensity(h, intensity), id)


_MESSAGE_KEYS = ("subject", "habit", "value", "unit", "at", "note", "intensity", "id")


def entry_from_message(
    payload: bytes | str | Mapping, default_subject: str, now: datetime | None = None
) -> tuple[str, HabitEntry]:
    """(subject, entry) from a habit message on ``<prefix>/habits``; HabitError when it is refused.

    ``{"subject": "me", "habit": "water", "value": 0.5, "unit": "l", "at": "21:30", "note": "…",
    "intensity": "hard", "id": "…"}``: only ``habit`` is required; ``at`` as ``legwatch log --at``
    takes it (times of day are in the monitor's configured time zone) or Unix seconds; ``id`` (optional, a client's
    message id) makes a redelivered message harmless.
    """
    if isinstance(payload, Mapping):
        doc = payload
    else:
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise HabitError("habit message is not JSON") from None
    if not isinstance(doc, Mapping):
        raise HabitError("habit message must be a JSON object")
    unknown = sorted(set(doc) - set(_MESSAGE_KEYS))
    if unknown:
        raise HabitError(f"habit message: unknown key {unknown[0]!r} (known: {', '.join(_MESSAGE_KEYS)})")
    if "habit" not in doc:
        raise HabitError('habit message needs "habit", e.g. {"habit": "water", "value": 0.5}')
    for key in ("habit", "unit", "note", "intensity"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise HabitError(f"habit message: {key!r} must be a string, got {doc[key]!r}")
    value = doc.get("value")
    if isinstance(value, bool) or (value is not None and not isinstance(value, int | float | str)):
        raise HabitError(f"habit message: 'value' must be a number (or a medication name), got {value!r}")
    at = doc.get("at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float | str)):
        raise HabitError(f"habit message: 'at' must be a time string or Unix seconds, got {at!r}")
    mid = doc.get("id", "")
    if isinstance(mid, bool) or not isinstance(mid, int | str) or len(str(mid)) > 64:
        raise HabitError(f"habit message: 'id' must be a string of at most 64 characters, got {mid!r}")
    subject = check_subject(doc.get("subject") or default_subject)
    entry = make_entry(
        doc["habit"],
        value,
        unit=doc.get("unit"),
        at=at,
        note=doc.get("note"),
        intensity=doc.get("intensity"),
        id=str(mid),
        now=now,
    )
    return subject, entry


# --- storing -----------------------------------------------------------------------------------
#
# Placement is a pure rule (``place_entries``: entries + the habit points they could collide with ->
# where each goes); ``store_entries`` fetches those points (``habit_ranges``), places and writes. A
# caller holding points of its own not yet written (the monitor's batch) queries ``habit_ranges``
# itself and passes the store's points and its own to ``place_entries``.

_COMPARED = ("value", "unit", "note", "name", "intensity")
#: An entry with an ``id`` looks for that id from two days before to one day after it.
_ID_BEFORE_S = 2 * 86400.0
_ID_AFTER_S = 86400.0
#: Without an id, only the milliseconds an entry may move on to: 5 s after the last entry.
_SLIDE_S = 5.0
_MAX_SLIDE = 5000


@dataclass(frozen=True)
class HabitRange:
    """The ``habit`` points of one subject and habit with ``start <= time < end`` that entries may
    collide with: ``store.query("habit", start=r.start, end=r.end, tags=r.tags)``."""

    subject: str
    habit: str
    start: float
    end: float

    @property
    def tags(self) -> dict[str, str]:
        return {"subject": self.subject, "habit": self.habit}


@dataclass(frozen=True)
class Placed:
    """Where one entry goes: ``entry`` at its placed time (moved on by whole milliseconds), and the
    ``point`` to write, or ``None`` when it is already stored (same ``id``, or with
    ``skip_identical`` an identical entry at that millisecond)."""

    subject: str
    entry: HabitEntry
    point: Point | None

    @property
    def written(self) -> bool:
        return self.point is not None


def _groups(items: Sequence[tuple[str, HabitEntry]]) -> dict[tuple[str, str], list[int]]:
    """Indices of the entries per (subject, habit), in order of first appearance."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (subject, e) in enumerate(items):
        groups.setdefault((subject, e.habit), []).append(i)
    return groups


def _range(subject: str, habit: str, entries: Sequence[HabitEntry]) -> HabitRange:
    t0 = min(e.time for e in entries)
    t1 = max(e.time for e in entries)
    if any(e.id for e in entries):
        return HabitRange(subject, habit, t0 - _ID_BEFORE_S, t1 + _ID_AFTER_S)
    return HabitRange(subject, habit, t0, t1 + _SLIDE_S)


def habit_ranges(items: Sequence[tuple[str, HabitEntry]]) -> list[HabitRange]:
    """The stored ``habit`` points ``place_entries`` needs for ``items``: one range per (subject,
    habit), in order of first appearance."""
    return [_range(subject, habit, [items[i][1] for i in idx]) for (subject, habit), idx in _groups(items).items()]


def fetch_existing(store: Store, items: Sequence[tuple[str, HabitEntry]]) -> list[Point]:
    """The stored habit points ``items`` could collide with (one query per ``habit_ranges`` range)."""
    return [p for r in habit_ranges(items) for p in store.query("habit", start=r.start, end=r.end, tags=r.tags)]


def _in_range(p: Point, r: HabitRange) -> bool:
    """``p`` is one of the points ``store.query`` returns for ``r`` (stores compare milliseconds)."""
    return (
        p.measurement == "habit"
        and int(round(r.start * 1000.0)) <= p.time_ms < int(round(r.end * 1000.0))
        and tags_match(p.tags, r.tags)
    )


def _same(fields: Mapping[str, object], e: HabitEntry) -> bool:
    mine = e.fields()
    return all(fields.get(k, "") == mine.get(k, "") for k in _COMPARED)


def place_entries(
    items: Sequence[tuple[str, HabitEntry]], existing: Sequence[Point], *, skip_identical: bool = False
) -> list[Placed]:
    """Where each (subject, entry) goes given the ``existing`` habit points; one ``Placed`` per entry,
    in order. Pure: reads and writes nothing.

    ``existing`` holds at least the points ``habit_ranges(items)`` names (more is fine: only those
    in an entry's range count); where two share a millisecond, the later one counts. The rule:

    - an entry with an ``id`` that an existing point (or an earlier entry of this call, written)
      carries is not written again, and keeps its time;
    - an entry whose millisecond is taken, by an existing point of the same subject and habit or by
      an earlier entry of this call, moves on 1 ms (as often as needed), so two logs in the same
      second both survive;
    - ``skip_identical`` (file imports): an identical existing point at that place counts as this
      entry (not written), so importing the same file twice writes nothing the second time.

    Raises HabitError when an entry finds no free millisecond within 5000.
    """
    out: list[Placed | None] = [None] * len(items)
    for (subject, habit), idx in _groups(items).items():
        r = _range(subject, habit, [items[i][1] for i in idx])
        stored = [p for p in existing if _in_range(p, r)]
        at_ms = {p.time_ms: p.fields for p in stored}
        ids = {str(p.fields.get("id")) for p in stored if p.fields.get("id")}
        taken: set[int] = set()
        for i in idx:
            e = items[i][1]
            if e.id and e.id in ids:
                out[i] = Placed(subject, e, None)
                continue
            ms = int(round(e.time * 1000.0))
            for _ in range(_MAX_SLIDE):
                if ms in taken:
                    ms += 1
                    continue
                if ms in at_ms:
                    if skip_identical and _same(at_ms[ms], e):
                        break
                    ms += 1
                    continue
                break
            else:  # pragma: no cover - 5000 entries of one habit in 5 s
                raise HabitError(f"{habit}: too many entries at {e.time}")
            taken.add(ms)
            placed = replace(e, time=ms / 1000.0)
            if ms in at_ms:
                out[i] = Placed(subject, placed, None)
                continue
            out[i] = Placed(subject, placed, placed.point(subject))
            if e.id:
                ids.add(e.id)
    return [o for o in out if o is not None]


def to_write(placed: Sequence[Placed]) -> list[Point]:
    """The points to write for ``placed`` (those not already stored), in order."""
    return [p.point for p in placed if p.point is not None]


def store_entries(
    store: Store,
    items: Sequence[tuple[str, HabitEntry]],
    *,
    skip_identical: bool = False,
    logged: float | None = None,
) -> list[tuple[str, HabitEntry, bool]]:
    """Write entries in one ``store.write`` (all or nothing); returns (subject, entry, written).
    Each point also gets ``logged``, when it was stored (Unix s, default now: what ``legwatch log
    undo`` goes by).

    ``fetch_existing``, ``place_entries`` (the rule: a taken millisecond moves an entry on 1 ms, an
    ``id`` already stored in the two days around it is not written again, ``skip_identical``), then
    one write of ``to_write``.
    """
    placed = place_entries(items, fetch_existing(store, items), skip_identical=skip_identical)
    logged = round(time.time(), 3) if logged is None else logged
    store.write([replace(p, fields={**p.fields, "logged": float(logged)}) for p in to_write(placed)])
    return [(p.subject, p.entry, p.written) for p in placed]


def store_entry(store: Store, subject: str, entry: HabitEntry) -> HabitEntry:
    """Write one entry (moved on by 1 ms if one of the same habit holds its millisecond)."""
    return store_entries(store, [(subject, entry)])[0][1]
