"""The stored nights: a list with counts and coverage, and deleting one night's points.

A night is one ``night`` point (one sensor's recording) with its ``episode``, ``activity`` and
``gap`` points from the recording's start to its end. ``NIGHT`` on the command line is the date of
the evening it started (as ``legwatch summary --night``), in the configured time zone; several
recordings of that evening (two sensors, or one split by a long drop-out) are all that night unless
``--sensor`` picks one. Deleting removes those points from the store (InfluxDB or SQLite) and never
the habits: they belong to the person's days, not to a recording.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from legwatch.contracts import localtime
from legwatch.errors import UserError
from legwatch.storage import Point, Store
from legwatch.summary import data_check, night_date, percent

#: What a night is made of besides its ``night`` point (all tagged subject and sensor).
MEASUREMENTS = ("episode", "activity", "gap")


def _date(text: str, flag: str) -> datetime:
    try:
        return localtime.localize(datetime.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise UserError(f"{flag} must be a date like 2026-01-05, got {text!r}") from None


def _end(p: Point) -> float:
    value = p.fields.get("end", p.time)
    return float(value) if isinstance(value, int | float) else p.time


def stored(
    store: Store, subject: str, *, since: str | None = None, until: str | None = None, sensor: str = ""
) -> list[Point]:
    """The subject's ``night`` points whose evening is from ``since`` to ``until`` (dates, inclusive)."""
    start = _date(since, "--since").replace(hour=12).timestamp() if since else None
    end = (_date(until, "--until") + timedelta(days=1)).replace(hour=12).timestamp() if until else None
    tags = {"subject": subject, **({"sensor": sensor} if sensor else {})}
    return store.query("night", start=start, end=end, tags=tags)


def row(p: Point, gaps: int) -> dict:
    """One night as ``nights --format json`` prints it."""
    f = p.fields
    reason = data_check(f)

    def num(key: str) -> float | None:
        value = f.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    counts = {k: int(num(f"{k}_count") or 0) for k in ("twitch", "leg_movement", "contraction")}
    return {
        "night": night_date(p.time),
        "sensor": p.tags.get("sensor", ""),
        "start": p.time,
        "end": _end(p),
        "start_local": localtime.local(p.time).isoformat(timespec="seconds"),
        "end_local": localtime.local(_end(p)).isoformat(timespec="seconds"),
        "hours": round((_end(p) - p.time) / 3600, 2),
        "sleep_h": num("sleep_h"),
        "coverage": num("coverage"),
        "gaps": gaps,
        "enough_data": reason is None,
        "reason": reason,
        "episodes": int(num("episodes") or 0) if reason is None else None,
        "counts": counts if reason is None else None,
        "plm_index": num("plm_index") if reason is None else None,
    }


def rows(store: Store, subject: str, nights: Sequence[Point]) -> list[dict]:
    """``row`` for each night, with its number of gaps (one ``gap`` query for them all)."""
    if not nights:
        return []
    gaps = store.query("gap", start=nights[0].time, end=max(_end(n) for n in nights) + 1, tags={"subject": subject})
    out = []
    for n in nights:
        sensor, t0, t1 = n.tags.get("sensor", ""), n.time, _end(n) + 1
        count = sum(1 for g in gaps if g.tags.get("sensor", "") == sensor and t0 <= g.time < t1)
        out.append(row(n, count))
    return out


def render_text(items: Sequence[Mapping], console, *, subject: str) -> None:
    """The nights as a table within 80 columns, units in the headers, times with their zone."""
    from rich import box
    from rich.table import Table

    if not items:
        console.print(f"No nights stored for {subject!r}: `legwatch import FILE` or `legwatch monitor` stores them.")
        return
    zone = localtime.short(items[-1]["start"])
    t = Table(title=f"Stored nights of {subject!r}", title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True)
    t.add_column("night", no_wrap=True)
    t.add_column("sensor", overflow="fold", min_width=6, max_width=16)
    t.add_column(f"recorded\n({zone})", no_wrap=True)
    t.add_column("sleep\n(h)", justify="right", no_wrap=True)
    t.add_column("episodes\n(sleep)", justify="right", no_wrap=True)
    t.add_column("cramps", justify="right", no_wrap=True)
    t.add_column("data\n(%)", justify="right", no_wrap=True)
    t.add_column("gaps", justify="right", no_wrap=True)
    for r in items:
        start, end = localtime.local(r["start"]), localtime.local(r["end"])
        span = f"{start:%H:%M}–{end:%H:%M}" + ("" if end.date() <= start.date() + timedelta(days=1) else " +")
        sleep = "—" if r["sleep_h"] is None else f"{r['sleep_h']:.1f}"
        episodes = "too few" if not r["enough_data"] else str(r["episodes"])
        cramps = "" if not r["enough_data"] else str(r["counts"]["contraction"])
        t.add_row(r["night"], r["sensor"], span, sleep, episodes, cramps, percent(r["coverage"]), str(r["gaps"]))
    console.print(t)
    if any(not r["enough_data"] for r in items):
        console.print("too few: too little data that night to count its episodes (`legwatch summary` says why).")
    console.print(
        f"Times in {localtime.label(items[-1]['start'])}. Episodes and cramps counted during sleep. "
        "`legwatch summary --night DATE` shows one; `legwatch nights delete DATE` removes one."
    )


def _tags(subject: str, n: Point) -> dict[str, str]:
    sensor = n.tags.get("sensor", "")
    return {"subject": subject, **({"sensor": sensor} if sensor else {})}


def points_to_delete(store: Store, subject: str, nights: Sequence[Point]) -> dict[str, int]:
    """How many points of each measurement deleting ``nights`` removes."""
    counts = {"night": len(nights)}
    for m in MEASUREMENTS:
        counts[m] = sum(len(store.query(m, start=n.time, end=_end(n) + 1, tags=_tags(subject, n))) for n in nights)
    return counts


def delete(store: Store, subject: str, nights: Sequence[Point]) -> None:
    """Remove each night's episode, activity and gap points, then its ``night`` point (last, so a
    delete cut short leaves the night listed and can be run again)."""
    for n in nights:
        tags = _tags(subject, n)
        for m in MEASUREMENTS:
            store.delete(m, start=n.time, end=_end(n) + 1, tags=tags)
        store.delete("night", start=n.time, end=(n.time_ms + 1) / 1000.0, tags=tags)


def find(store: Store, subject: str, night: str, sensor: str = "") -> list[Point]:
    """The nights of the evening ``night`` (YYYY-MM-DD); ``UserError`` when none is stored."""
    _date(night, "NIGHT")
    found = [p for p in stored(store, subject, since=night, until=night, sensor=sensor) if night_date(p.time) == night]
    if not found:
        which = f" from sensor {sensor!r}" if sensor else ""
        raise UserError(f"no night of {night}{which} stored for {subject!r}: `legwatch nights` lists them")
    return found


def describe(p: Point) -> str:
    """``2026-01-05 (sensor shin, 22:58–07:01 CET)``."""
    start, end = localtime.local(p.time), localtime.local(_end(p))
    return f"{night_date(p.time)} (sensor {p.tags.get('sensor', '')}, {start:%H:%M}–{end:%H:%M} {start:%Z})"
