"""The multi-week report a person brings to a doctor (``legwatch report``), as a plain dict.

``build`` reads the period from the store in a few queries (nights, episodes, gaps, habits: no
per-night round trips, so 90 nights take about as long as a handful of summaries) and returns
what every rendering shows: the period and data coverage; per night the sleep window, cramps
(count, total and longest duration, clock times), leg movements and the periodic-movement index
against the clinical 15/h; weekly trends; the habits and medications of the period, with those the
literature links to cramps (diuretics, statins) called out; the correlation findings with their
uncertainty (``legwatch.correlate``); when in the night episodes happen; experiments in the period
(``legwatch.experiment_result``); data-quality notes; the disclaimer.

Renderings: ``legwatch.report_pdf`` (several A4 pages, black and white), ``legwatch.report_html``
(one self-contained page) and JSON (this dict).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

import numpy as np

from detector.events import KINDS_COUNTED
from legwatch import correlate
from legwatch.contracts import localtime
from legwatch.experiment import plans
from legwatch.habits import evening_window
from legwatch.storage import Point, Store
from legwatch.summary import PLM_CLINICAL, data_check, night_date

DEFAULT_DAYS = 28
MAX_DAYS = 366
DISCLAIMER = (
    "legwatch is a self-tracking tool, not a diagnosis. These numbers come from an accelerometer worn on the "
    "shin and an automatic detector; they are not a sleep study. Habits and medications are as the person "
    "logged them. Talk to a doctor about cramps that worry you, and before changing any medication."
)
#: Medications the literature links to muscle cramps: group -> (names as people log them, why).
CRAMP_MEDICATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "diuretic": (
        (
            "diuretic",
            "furosemide",
            "bumetanide",
            "torsemide",
            "hydrochlorothiazide",
            "chlorthalidone",
            "indapamide",
            "bendroflumethiazide",
            "spironolactone",
            "eplerenone",
            "amiloride",
            "triamterene",
            "water pill",
        ),
        "diuretics can lower fluid, potassium and magnesium, and are linked to leg cramps",
    ),
    "statin": (
        (
            "statin",
            "atorvastatin",
            "simvastatin",
            "rosuvastatin",
            "pravastatin",
            "lovastatin",
            "fluvastatin",
            "pitavastatin",
        ),
        "statins are linked to muscle aches and cramps",
    ),
}
CRAMP_BINS_H = 10  # hours since sleep onset, one bin each


class ReportError(ValueError):
    """Bad input to the report (one-line message)."""


def _local(ts: float) -> datetime:
    return localtime.local(ts)


def _hm(ts: float | None) -> str | None:
    return None if ts is None else _local(ts).strftime("%H:%M")


def _day(text: str, flag: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ReportError(f"{flag} must be a date like 2026-01-05, got {text!r}") from None


def _noon(d: date) -> float:
    return localtime.localize(datetime(d.year, d.month, d.day, 12)).timestamp()


def medication_group(name: str) -> str | None:
    """``diuretic`` or ``statin`` when ``name`` is one the literature links to cramps."""
    n = name.strip().lower()
    for group, (names, _why) in CRAMP_MEDICATIONS.items():
        if any(n == x or n.startswith(x + " ") for x in names):
            return group
    return None


def period(store: Store, subject: str, since: str | None, until: str | None) -> tuple[date, date]:
    """The nights covered: ``until`` (default the latest stored night) back to ``since`` (default
    four weeks)."""
    end = _day(until, "--until") if until else None
    start = _day(since, "--since") if since else None
    if end is None:
        last = store.query("night", start=None if start is None else _noon(start), tags={"subject": subject})
        if last:
            end = date.fromisoformat(night_date(last[-1].time))
        else:
            end = start + timedelta(days=DEFAULT_DAYS - 1) if start else localtime.now().date()
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ReportError(f"--since {start} is after --until {end}")
    if (end - start).days + 1 > MAX_DAYS:
        raise ReportError(f"the period is {(end - start).days + 1} days; at most {MAX_DAYS} fit one report")
    return start, end


def _night_row(n: Point, eps: Sequence[Point], gaps: Sequence[Point]) -> dict:
    f = n.fields
    reason = data_check(f)
    ok = reason is None
    counted = [e for e in eps if e.tags.get("kind") in KINDS_COUNTED and e.fields.get("in_sleep", True)]
    cramps = [e for e in counted if e.tags.get("kind") == "contraction"]
    durations = [float(e.fields.get("duration_s", 0.0)) for e in cramps]
    sleep_start, sleep_end = f.get("sleep_start"), f.get("sleep_end")
    plm = f.get("plm_index")
    longest = max(range(len(cramps)), key=lambda i: durations[i]) if cramps else None
    return {
        "night": night_date(n.time),
        "sensor": n.tags.get("sensor", ""),
        "status": "ok" if ok else "too_little_data",
        "reason": reason,
        "recording_start": _hm(n.time),
        "recording_end": _hm(float(f.get("end", n.time))),  # type: ignore[arg-type]
        "recording_h": round((float(f.get("end", n.time)) - n.time) / 3600, 2),  # type: ignore[arg-type]
        "sleep_start": sleep_start,
        "sleep_end": sleep_end,
        "sleep_start_hm": _hm(sleep_start),  # type: ignore[arg-type]
        "sleep_end_hm": _hm(sleep_end),  # type: ignore[arg-type]
        "sleep_h": f.get("sleep_h"),
        "coverage": round(float(f.get("coverage", 0.0)), 4),  # type: ignore[arg-type]
        "gaps": len(gaps),
        "gaps_s": round(sum(float(g.fields.get("duration_s", 0.0)) for g in gaps), 1),  # type: ignore[misc]
        "episodes": len(counted) if ok else None,
        "twitches": sum(1 for e in counted if e.tags.get("kind") == "twitch") if ok else None,
        "leg_movements": sum(1 for e in counted if e.tags.get("kind") == "leg_movement") if ok else None,
        "periodic": sum(1 for e in counted if e.fields.get("periodic")) if ok else None,
        "plm_index": (None if plm is None else round(float(plm), 1)) if ok else None,  # type: ignore[arg-type]
        "plm_above_clinical": (float(plm) > PLM_CLINICAL) if ok and plm is not None else None,  # type: ignore[arg-type]
        "cramps": len(cramps) if ok else None,
        "cramp_total_s": round(sum(durations), 1) if ok else None,
        "cramp_longest_s": round(durations[longest], 1) if ok and longest is not None else None,
        "cramp_times": [_hm(e.time) for e in cramps] if ok else [],
        "outside_sleep": sum(
            1 for e in eps if e.tags.get("kind") in KINDS_COUNTED and not e.fields.get("in_sleep", True)
        ),
        "_counted": counted if ok else [],
    }


def _by_sensor(points: Sequence[Point]) -> dict[str, tuple[np.ndarray, list[Point]]]:
    groups: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        groups[p.tags.get("sensor", "")].append(p)
    return {s: (np.array([p.time for p in ps]), ps) for s, ps in groups.items()}


def _within(index: Mapping[str, tuple[np.ndarray, list[Point]]], sensor: str, t0: float, t1: float) -> list[Point]:
    if sensor not in index:
        return []
    times, pts = index[sensor]
    i, j = np.searchsorted(times, [t0, t1 + 1.0], side="left")
    return pts[int(i) : int(j)]


def _mean(xs: Sequence[float]) -> float | None:
    return round(statistics.fmean(xs), 2) if xs else None


def _weekly(rows: Sequence[dict], start: date, end: date) -> list[dict]:
    out = []
    d = start
    while d <= end:
        w_end = min(d + timedelta(days=6), end)
        ok = [r for r in rows if r["status"] == "ok" and d.isoformat() <= r["night"] <= w_end.isoformat()]
        plms = [r["plm_index"] for r in ok if r["plm_index"] is not None]
        out.append(
            {
                "week_start": d.isoformat(),
                "week_end": w_end.isoformat(),
                "nights": len(ok),
                "episodes_mean": _mean([r["episodes"] for r in ok]),
                "cramps_mean": _mean([r["cramps"] for r in ok]),
                "cramps_total": sum(r["cramps"] for r in ok),
                "nights_with_cramps": sum(1 for r in ok if r["cramps"]),
                "cramp_minutes": round(sum(r["cramp_total_s"] for r in ok) / 60, 1),
                "leg_movements_mean": _mean([r["leg_movements"] for r in ok]),
                "plm_index_mean": _mean(plms),
                "nights_plm_above": sum(1 for p in plms if p > PLM_CLINICAL),
                "sleep_h_mean": _mean([float(r["sleep_h"]) for r in ok if r["sleep_h"] is not None]),
            }
        )
        d += timedelta(days=7)
    return out


def _timing(rows: Sequence[dict]) -> dict:
    """When episodes happen: per kind, counts per hour since sleep onset and per clock hour."""
    since_onset = {k: [0] * CRAMP_BINS_H for k in KINDS_COUNTED}
    clock = {k: [0] * 24 for k in KINDS_COUNTED}
    for r in rows:
        for e in r["_counted"]:
            k = e.tags.get("kind")
            h = int((e.time - float(r["sleep_start"])) // 3600)
            since_onset[k][min(max(h, 0), CRAMP_BINS_H - 1)] += 1
            clock[k][_local(e.time).hour] += 1
    return {"hours_since_sleep_onset": since_onset, "clock_hour": clock}


def _habits(habit_pts: Sequence[Point], rows: Sequence[dict]) -> dict:
    """Per habit (medications by name): evenings logged and amounts, over the nights recorded."""
    onsets = sorted({(r["night"], float(r["sleep_start"])) for r in rows if r["sleep_start"] is not None})
    windows = [evening_window(t) for _, t in onsets]
    per: dict[str, dict] = {}
    for h in habit_pts:
        habit = h.tags.get("habit", "?")
        name = str(h.fields.get("name", "")) if habit == "medication" else ""
        key = f"medication:{name}" if name else habit
        d = per.setdefault(
            key,
            {"habit": habit, "name": name, "unit": h.fields.get("unit", ""), "entries": 0, "total": 0.0, "days": set()},
        )
        d["entries"] += 1
        d["total"] += float(h.fields.get("value", 1.0))  # type: ignore[arg-type]
        d["days"].add(_local(h.time).date().isoformat())
        d.setdefault("evenings", set())
        for (night, _), (w0, w1) in zip(onsets, windows, strict=True):
            if w0 <= h.time < w1:
                d["evenings"].add(night)
    habits, meds = [], []
    for key, d in sorted(per.items()):
        item = {
            "key": key,
            "habit": d["habit"],
            "name": d["name"],
            "unit": d["unit"],
            "entries": d["entries"],
            "total": round(d["total"], 2),
            "days_logged": len(d["days"]),
            "nights_after": len(d.get("evenings", ())),
        }
        if d["habit"] == "medication":
            group = medication_group(d["name"])
            item["linked_to_cramps"] = group
            item["why"] = CRAMP_MEDICATIONS[group][1] if group else None
            meds.append(item)
        else:
            habits.append(item)
    return {"habits": habits, "medications": meds}


def _correlation(store: Store, subject: str, start: date, end: date) -> dict:
    rep = correlate.build(store, subject, since=start.isoformat(), until=end.isoformat())
    keep = ("habit", "label", "nights_with", "nights_without", "test", "finding", "verdict", "effect_text", "p", "q")
    return {
        "nights": rep["nights"],
        "enough_nights": rep["enough_nights"],
        "min_nights": rep["min_nights"],
        "findings": [{k: r.get(k) for k in keep} for r in rep["habits"]],
        "method": rep["method"],
    }


def _experiments(store: Store, subject: str, start: date, end: date, now: datetime | None) -> list[dict]:
    from legwatch.experiment_result import analyse

    out = []
    for plan in plans(store, subject):
        if plan.last < start.isoformat() or plan.start > end.isoformat():
            continue
        r = analyse(store, plan, now=now)
        keep = ("experiment", "habit", "start", "end", "state", "provisional", "nights_planned", "nights_analysed")
        keep += ("adherence", "effect", "ci", "p_value", "mean_with", "mean_without", "verdict", "verdict_text")
        out.append({k: r[k] for k in keep})
    return out


def _notes(rows: Sequence[dict], missing: Sequence[str], days: int) -> list[str]:
    notes = []
    if missing:
        shown = ", ".join(missing[:8]) + (" …" if len(missing) > 8 else "")
        notes.append(f"{len(missing)} of {days} nights have no recording: {shown}.")
    bad = [r for r in rows if r["status"] != "ok"]
    for r in bad[:12]:
        notes.append(f"Night of {r['night']} ({r['sensor']}): too little data to count, {r['reason']}.")
    if len(bad) > 12:
        notes.append(f"… and {len(bad) - 12} more nights with too little data.")
    gappy = [r for r in rows if r["gaps"]]
    if gappy:
        total = sum(r["gaps_s"] for r in gappy) / 60
        notes.append(f"{len(gappy)} night(s) had gaps in the data ({total:.0f} min without data in all).")
    dates = [r["night"] for r in rows]
    split = sorted({d for d in dates if dates.count(d) > 1})
    if split:
        notes.append(f"{len(split)} night(s) were recorded in more than one piece: {', '.join(split[:6])}.")
    outside = sum(r["outside_sleep"] for r in rows)
    if outside:
        notes.append(f"{outside} episode(s) happened outside the sleep windows and are not counted.")
    if not notes:
        notes.append("Every night of the period was recorded with enough data.")
    return notes


def build(
    store: Store,
    subject: str,
    since: str | None = None,
    until: str | None = None,
    *,
    now: datetime | None = None,
) -> dict:
    """The report for ``subject`` over the nights from ``since`` to ``until`` (YYYY-MM-DD, both included)."""
    start, end = period(store, subject, since, until)
    t0, t1 = _noon(start), _noon(end + timedelta(days=1))
    nights = store.query("night", start=t0, end=t1, tags={"subject": subject})
    last_end = max([float(n.fields.get("end", n.time)) for n in nights] + [t1])  # type: ignore[arg-type]
    episodes = _by_sensor(store.query("episode", start=t0, end=last_end + 1, tags={"subject": subject}))
    gaps = _by_sensor(store.query("gap", start=t0, end=last_end + 1, tags={"subject": subject}))
    habit_pts = store.query("habit", start=t0 - 86400, end=last_end + 1, tags={"subject": subject})
    rows = []
    for n in nights:
        sensor, e = n.tags.get("sensor", ""), float(n.fields.get("end", n.time))  # type: ignore[arg-type]
        rows.append(_night_row(n, _within(episodes, sensor, n.time, e), _within(gaps, sensor, n.time, e)))
    days = (end - start).days + 1
    all_dates = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    recorded = {r["night"] for r in rows}
    missing = [d for d in all_dates if d not in recorded]
    ok = [r for r in rows if r["status"] == "ok"]
    plms = [r["plm_index"] for r in ok if r["plm_index"] is not None]
    longest = max(ok, key=lambda r: r["cramp_longest_s"] or 0.0) if ok else None
    overview = {
        "days": days,
        "nights_recorded": len(recorded),
        "recordings": len(rows),
        "nights_with_enough_data": len({r["night"] for r in ok}),
        "nights_without_recording": len(missing),
        "coverage_mean": round(statistics.fmean(r["coverage"] for r in rows), 4) if rows else None,
        "hours_recorded": round(sum(r["recording_h"] for r in rows), 1),
        "sleep_h_mean": _mean([float(r["sleep_h"]) for r in ok if r["sleep_h"] is not None]),
        "cramps_total": sum(r["cramps"] for r in ok),
        "nights_with_cramps": len({r["night"] for r in ok if r["cramps"]}),
        "cramps_per_night": _mean([r["cramps"] for r in ok]),
        "cramp_longest_s": longest["cramp_longest_s"] if longest and longest["cramp_longest_s"] else None,
        "cramp_longest_night": longest["night"] if longest and longest["cramp_longest_s"] else None,
        "leg_movements_per_night": _mean([r["leg_movements"] for r in ok]),
        "episodes_per_night": _mean([r["episodes"] for r in ok]),
        "plm_index_median": round(statistics.median(plms), 1) if plms else None,
        "nights_plm_above": sum(1 for p in plms if p > PLM_CLINICAL),
        "plm_clinical": PLM_CLINICAL,
    }
    out = {
        "subject": subject,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "generated": localtime.in_zone(now).isoformat(timespec="seconds"),
        "overview": overview,
        "nights": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "missing_nights": missing,
        "weekly": _weekly(rows, start, end),
        "timing": _timing(ok),
        **_habits(habit_pts, rows),
        "correlation": _correlation(store, subject, start, end),
        "experiments": _experiments(store, subject, start, end, now),
        "data_quality": _notes(rows, missing, days),
        "disclaimer": DISCLAIMER,
    }
    return out
