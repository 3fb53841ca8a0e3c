"""The morning summary of one night, built from what the store holds.

Self-tracking, not a diagnosis: every rendering says so.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from detector.events import KINDS_COUNTED
from legwatch.schema import episode_from_point
from legwatch.storage import Point, Store

DISCLAIMER = "legwatch is a self-tracking tool, not a diagnosis. Talk to a doctor about cramps that worry you."
LOW_COVERAGE = 0.5


class SummaryError(LookupError):
    """No night to summarise (one-line message)."""


def _local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts).astimezone()


def find_night(store: Store, subject: str, night: str | None = None) -> Point:
    """The latest stored night, or the one starting on the evening of ``night`` (YYYY-MM-DD)."""
    if night:
        try:
            day = datetime.strptime(night, "%Y-%m-%d").astimezone()
        except ValueError:
            raise SummaryError(f"--night must be a date like 2026-01-05, got {night!r}") from None
        start = day.replace(hour=12).timestamp()
        pts = store.query("night", start=start, end=start + 86400, tags={"subject": subject})
        if not pts:
            raise SummaryError(f"no night stored for {subject!r} starting on {night}")
        return pts[-1]
    pts = store.query("night", tags={"subject": subject})
    if not pts:
        raise SummaryError(f"no nights stored yet for {subject!r}: run `legwatch import FILE` or `legwatch monitor`")
    return pts[-1]


def build(store: Store, subject: str, night: str | None = None) -> dict:
    n = find_night(store, subject, night)
    f = n.fields
    sensor = n.tags.get("sensor", "")
    start, end = n.time, float(f.get("end", n.time))
    eps = [
        episode_from_point(p)
        for p in store.query("episode", start=start, end=end + 1, tags={"subject": subject, "sensor": sensor})
    ]
    counted = [e for e in eps if e.kind in KINDS_COUNTED and e.in_sleep]
    by_kind = {k: [e for e in counted if e.kind == k] for k in KINDS_COUNTED}
    gaps = store.query("gap", start=start, end=end + 1, tags={"subject": subject, "sensor": sensor})
    coverage = float(f.get("coverage", 0.0))
    contractions = by_kind["contraction"]
    longest = max(contractions, key=lambda e: e.duration_s) if contractions else None
    # recent nights for comparison
    recent = store.query("night", start=start - 14 * 86400 - 3600, end=start, tags={"subject": subject})
    recent_counts = [float(p.fields.get("episodes", 0.0)) for p in recent if float(p.fields.get("coverage", 0)) >= 0.5]
    habits = store.query("habit", start=start - 86400, end=end, tags={"subject": subject})
    sleep_start = f.get("sleep_start")
    sleep_end = f.get("sleep_end")
    enough = coverage >= LOW_COVERAGE and sleep_start is not None
    out = {
        "subject": subject,
        "sensor": sensor,
        "night_of": _local(start).strftime("%Y-%m-%d")
        if _local(start).hour >= 12
        else (_local(start) - timedelta(days=1)).strftime("%Y-%m-%d"),
        "recording": {"start": start, "end": end},
        "sleep_window": {"start": sleep_start, "end": sleep_end, "hours": f.get("sleep_h")},
        "enough_data": enough,
        "coverage": round(coverage, 4),
        "gaps": [
            {
                "start": g.time,
                "end": float(g.fields.get("end", g.time)),
                "duration_s": float(g.fields.get("duration_s", 0.0)),
            }
            for g in gaps
        ],
        "counts": {k: len(v) for k, v in by_kind.items()},
        "episodes_total": len(counted),
        "periodic_count": sum(1 for e in counted if e.periodic),
        "plm_index": f.get("plm_index"),
        "longest_contraction": None
        if longest is None
        else {"start": longest.start, "end": longest.end, "duration_s": round(longest.duration_s, 1)},
        "episodes": [e.to_dict() for e in sorted(counted, key=lambda e: e.start)],
        "outside_sleep": sum(1 for e in eps if e.kind in KINDS_COUNTED and not e.in_sleep),
        "comparison": {
            "nights": len(recent_counts),
            "mean_episodes": round(statistics.fmean(recent_counts), 2) if recent_counts else None,
            "median_episodes": statistics.median(recent_counts) if recent_counts else None,
        },
        "habits": [
            {
                "habit": h.tags.get("habit"),
                "value": h.fields.get("value"),
                "unit": h.fields.get("unit", ""),
                "time": h.time,
                "note": h.fields.get("note", ""),
                "name": h.fields.get("name", ""),
            }
            for h in habits
        ],
        "disclaimer": DISCLAIMER,
    }
    for e in out["episodes"]:
        e.pop("extra", None)
    return out


def _hm(ts: float | None) -> str:
    return "—" if ts is None else _local(ts).strftime("%H:%M:%S")


def render_text(s: dict, console) -> None:
    from rich.table import Table

    sw = s["sleep_window"]
    console.print(f"[bold]legwatch — night of {s['night_of']}[/bold] ({s['subject']}, sensor {s['sensor']})")
    if sw["start"] is not None:
        console.print(f"Sleep window: {_hm(sw['start'])} – {_hm(sw['end'])} ({sw['hours']:.1f} h)")
    else:
        console.print("Sleep window: not found in the data")
    console.print(f"Data coverage: {s['coverage'] * 100:.1f}%" + (f", {len(s['gaps'])} gap(s)" if s["gaps"] else ""))
    for g in s["gaps"][:10]:
        console.print(f"  gap {_hm(g['start'])} – {_hm(g['end'])} ({g['duration_s']:.0f} s without data)")
    if not s["enough_data"]:
        console.print("[yellow]Too little data to report this night's episodes reliably.[/yellow]")
    t = Table(title="Episodes during sleep")
    t.add_column("kind")
    t.add_column("count", justify="right")
    for k, v in s["counts"].items():
        t.add_row(k.replace("_", " "), str(v))
    console.print(t)
    pi = s["plm_index"]
    console.print(
        f"Periodic leg movements: {s['periodic_count']}"
        + (f", index {pi:.1f}/h of sleep" + (" (above the clinical 15/h)" if pi > 15 else "") if pi is not None else "")
    )
    lc = s["longest_contraction"]
    if lc:
        console.print(f"Longest contraction: {lc['duration_s']:.0f} s at {_hm(lc['start'])}")
    c = s["comparison"]
    if c["nights"]:
        console.print(
            f"Recent nights ({c['nights']}): mean {c['mean_episodes']} episodes; tonight {s['episodes_total']}"
        )
    else:
        console.print("No earlier nights to compare with yet.")
    if s["episodes"]:
        et = Table(title="Timeline")
        for col in ("start", "kind", "duration s", "peak g", "periodic"):
            et.add_column(col)
        shown = s["episodes"][:40]
        for e in shown:
            et.add_row(
                _hm(e["start"]),
                e["kind"],
                f"{e['duration_s']:.1f}",
                f"{e['peak_g']:.3f}",
                "yes" if e["periodic"] else "",
            )
        console.print(et)
        if len(s["episodes"]) > len(shown):
            console.print(f"… and {len(s['episodes']) - len(shown)} more (use --format json)")
    if s["habits"]:
        console.print("Habits logged the day before:")
        for h in s["habits"]:
            extra = f" {h['name']}" if h["name"] else ""
            console.print(f"  {_hm(h['time'])} {h['habit']}{extra}: {h['value']:g} {h['unit']}")
    console.print(f"[dim]{s['disclaimer']}[/dim]")
