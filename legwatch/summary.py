"""The morning summary of one night, built from what the store holds.

``build`` returns a plain dict (the ``--format json`` output and the retained MQTT message are made
from it): the sleep window, episodes by kind with times and durations, the longest contraction,
the periodic-movement index, data coverage and gaps, a comparison with the person's last 14
nights, and the habits of the evening before (noon to sleep onset, the same rule as
``legwatch correlate``). A night with too little data (coverage under half, no sleep window, or
under half an hour of covered sleep) says so: its counts are ``null``, never zero.

``build`` is ``compose(fetch(store, ...))``: ``fetch`` makes the queries and returns the points
(``NightRecords``), ``compose`` turns them into the summary without touching the store or the clock.

Renderings: ``render_text`` (rich), ``legwatch.summary_html`` (a self-contained page) and
``legwatch.homeassistant`` (MQTT with Home Assistant discovery). Self-tracking, not a diagnosis:
every rendering says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from detector.events import KINDS_COUNTED
from legwatch.contracts import localtime
from legwatch.habits import evening_window
from legwatch.storage import Point, Store
from legwatch.storage.schema import episode_from_point

DISCLAIMER = "legwatch is a self-tracking tool, not a diagnosis. Talk to a doctor about cramps that worry you."
LOW_COVERAGE = 0.5
MIN_SLEEP_H = 0.5
RECENT_NIGHTS = 14
PLM_CLINICAL = 15.0
#: A sensor battery at or below this (percent) will not last a night when its drain is unknown.
LOW_BATTERY_PCT = 20.0
#: A link lost this long before the recording's end is a drop-out, not the morning's stop (s).
END_SLACK_S = 120.0
KIND_LABELS = {"twitch": "twitches", "leg_movement": "leg movements", "contraction": "contractions (cramps)"}


class SummaryError(LookupError):
    """No night to summarise (one-line message)."""


def _local(ts: float) -> datetime:
    return localtime.local(ts)  # the configured time zone (``timezone``), else the system's


def _iso(ts: float | None) -> str | None:
    return None if ts is None else _local(ts).isoformat(timespec="seconds")


def night_date(ts: float) -> str:
    """The date of the evening a night belongs to (a night starting after midnight: the day before)."""
    d = _local(ts)
    return (d if d.hour >= 12 else d - timedelta(days=1)).strftime("%Y-%m-%d")


def data_check(fields: Mapping[str, object]) -> str | None:
    """Why a stored night has too little data to count its episodes, or None when it is usable."""
    coverage = float(fields.get("coverage", 0.0) or 0.0)  # type: ignore[arg-type]
    if coverage < LOW_COVERAGE:
        return f"only {coverage * 100:.0f}% of the recording has data (at least {LOW_COVERAGE * 100:.0f}% needed)"
    if fields.get("sleep_start") is None or fields.get("sleep_end") is None:
        return "no sleep window was found in the data"
    covered = float(fields.get("sleep_h", 0.0) or 0.0) * coverage  # type: ignore[arg-type]
    if covered < MIN_SLEEP_H:
        return f"only {covered * 60:.0f} min of sleep with data (at least {MIN_SLEEP_H * 60:.0f} min needed)"
    return None


def find_night(
    store: Store, subject: str, night: str | None = None, *, sensor: str = "", start: float | None = None
) -> Point:
    """The latest stored night, the one starting on the evening of ``night`` (YYYY-MM-DD), or the one
    of ``sensor`` whose recording started at ``start`` (Unix s; the monitor's just-finished night)."""
    if start is not None:
        tags = {"subject": subject, **({"sensor": sensor} if sensor else {})}
        pts = store.query("night", start=start - 0.001, end=start + 0.002, tags=tags)
        if not pts:
            raise SummaryError(f"no night stored for {subject!r} starting at {_iso(start)}")
        return pts[-1]
    if night:
        try:
            day = localtime.localize(datetime.strptime(night, "%Y-%m-%d"))
        except ValueError:
            raise SummaryError(f"--night must be a date like 2026-01-05, got {night!r}") from None
        start = day.replace(hour=12).timestamp()
        pts = store.query("night", start=start, end=start + 86400, tags={"subject": subject})
        if not pts:
            raise SummaryError(f"no night stored for {subject!r} starting on the evening of {night}")
        return pts[-1]
    pts = store.query("night", tags={"subject": subject})
    if not pts:
        raise SummaryError(f"no nights stored yet for {subject!r}: run `legwatch import FILE` or `legwatch monitor`")
    return pts[-1]


def _habit(h: Point) -> dict:
    return {
        "habit": h.tags.get("habit"),
        "value": h.fields.get("value"),
        "unit": h.fields.get("unit", ""),
        "time": h.time,
        "time_iso": _iso(h.time),
        "note": h.fields.get("note", ""),
        "name": h.fields.get("name", ""),
        "intensity": h.fields.get("intensity", ""),
    }


def _comparison(earlier: Sequence[Point], tonight: float | None) -> dict:
    """Tonight's count against the last ``RECENT_NIGHTS`` usable nights among ``earlier`` (by time)."""
    usable = [p for p in earlier if data_check(p.fields) is None][-RECENT_NIGHTS:]
    counts = [float(p.fields.get("episodes", 0.0)) for p in usable]
    out: dict = {
        "nights": len(usable),
        "mean_episodes": round(statistics.fmean(counts), 2) if counts else None,
        "median_episodes": statistics.median(counts) if counts else None,
        "min_episodes": min(counts) if counts else None,
        "max_episodes": max(counts) if counts else None,
        "mean_contractions": round(statistics.fmean(float(p.fields.get("contraction_count", 0.0)) for p in usable), 2)
        if usable
        else None,
        "fewer_than_tonight": None,
        "tonight": None,
    }
    if tonight is not None and len(counts) >= 3:
        below = sum(1 for c in counts if c < tonight)
        above = sum(1 for c in counts if c > tonight)
        out["fewer_than_tonight"] = below
        if above >= 0.75 * len(counts):
            out["tonight"] = "fewer than usual"
        elif below >= 0.75 * len(counts):
            out["tonight"] = "more than usual"
        else:
            out["tonight"] = "about usual"
    return out


# --- fetch, then compose -----------------------------------------------------------------------


@dataclass(frozen=True)
class NightRecords:
    """Everything the summary of one night is made from, as the store returns it (each list by time).

    ``night``: the ``night`` point; ``episodes`` and ``gaps``: that night's ``episode`` and ``gap``
    points; ``habits``: the ``habit`` points of the evening before (``evening_window`` of sleep
    onset, or of the recording's start without a sleep window), ``habits_during``: those from then
    to the end of the recording; ``earlier_nights``: the subject's ``night`` points of the 90 days
    before (the comparison takes the last usable ones); ``statuses``: the sensor's ``status``
    points (battery, signal, link) from ten minutes before the recording to its end.
    """

    subject: str
    night: Point
    episodes: Sequence[Point] = ()
    gaps: Sequence[Point] = ()
    habits: Sequence[Point] = ()
    habits_during: Sequence[Point] = ()
    earlier_nights: Sequence[Point] = ()
    statuses: Sequence[Point] = ()

    @property
    def sensor(self) -> str:
        return self.night.tags.get("sensor", "")

    @property
    def start(self) -> float:
        return self.night.time

    @property
    def end(self) -> float:
        return float(self.night.fields.get("end", self.night.time))


def habits_window(night: Point) -> tuple[float, float]:
    """The evening before ``night``: ``evening_window`` of sleep onset (or of the recording's start)."""
    sleep_start = night.fields.get("sleep_start")
    onset = float(sleep_start) if sleep_start is not None else night.time  # type: ignore[arg-type]
    return evening_window(onset)


def fetch(
    store: Store,
    subject: str,
    night: str | None = None,
    *,
    sensor: str = "",
    start: float | None = None,
) -> NightRecords:
    """What the summary of a night needs from the store (the night chosen as ``find_night`` does);
    SummaryError when there is no such night."""
    n = find_night(store, subject, night, sensor=sensor, start=start)
    rec = NightRecords(subject, n)
    s, e = rec.start, rec.end
    tags = {"subject": subject, "sensor": rec.sensor}
    h0, h1 = habits_window(n)
    return replace(
        rec,
        episodes=store.query("episode", start=s, end=e + 1, tags=tags),
        gaps=store.query("gap", start=s, end=e + 1, tags=tags),
        habits=store.query("habit", start=h0, end=h1, tags={"subject": subject}),
        habits_during=store.query("habit", start=h1, end=e + 1, tags={"subject": subject}),
        earlier_nights=store.query("night", start=s - 90 * 86400, end=s - 1, tags={"subject": subject}),
        statuses=store.query("status", start=s - 600, end=e + 1, tags=tags),
    )


def sensor_health(statuses: Sequence[Point], start: float, end: float) -> dict:
    """The sensor's battery and link over the night from its ``status`` points: the last battery
    level and what the night used, the drop-outs (``connected`` false before the last
    :data:`END_SLACK_S` of the recording) and their total length, and ``warnings`` (one line each)
    when the sensor disconnected or its battery will not last another night as long as this one
    (at this night's drain; at or below :data:`LOW_BATTERY_PCT` % when the drain is unknown)."""
    battery = [(p.time, float(p.fields["battery_pct"])) for p in statuses if "battery_pct" in p.fields]  # type: ignore[arg-type]
    links = [(p.time, bool(p.fields["connected"])) for p in statuses if "connected" in p.fields]
    drops, down_s, down_since = 0, 0.0, None
    for t, up in links:
        if not up and down_since is None and t < end - END_SLACK_S:
            drops, down_since = drops + 1, t
        elif up and down_since is not None:
            down_s, down_since = down_s + t - down_since, None
    if down_since is not None:
        down_s += max(0.0, end - down_since)
    warnings = []
    if drops:
        warnings.append(
            f"The sensor disconnected {drops} time(s) during the night ({_dur(down_s)} without a link): "
            "move the receiver closer or check the sensor's battery and strap."
        )
    last = battery[-1][1] if battery else None
    used = battery[0][1] - battery[-1][1] if len(battery) > 1 else None
    if last is not None:
        hours = max((end - start) / 3600, 0.1)
        span_h = (battery[-1][0] - battery[0][0]) / 3600 if len(battery) > 1 else 0.0
        need = used / span_h * hours if used is not None and used > 0 and span_h >= 0.5 else LOW_BATTERY_PCT
        if last <= need:
            warnings.append(
                f"The sensor's battery is at {last:.0f}% and will not last another night"
                + (f" (this night used {used:.0f}%)" if used is not None and used > 0 else "")
                + ": charge it today."
            )
    return {
        "battery_pct": last,
        "battery_used_pct": used,
        "disconnects": drops,
        "disconnected_s": round(down_s, 1),
        "warnings": warnings,
    }


def compose(records: NightRecords) -> dict:
    """The summary (a plain dict, see the module) of ``records``; pure: no store, no clock."""
    n = records.night
    f = n.fields
    subject, sensor = records.subject, records.sensor
    start, end = records.start, records.end
    eps = [episode_from_point(p) for p in records.episodes]
    in_sleep = sorted((e for e in eps if e.kind in KINDS_COUNTED and e.in_sleep), key=lambda e: e.start)
    gaps = records.gaps
    coverage = float(f.get("coverage", 0.0))
    reason = data_check(f)
    enough = reason is None
    sleep_start = f.get("sleep_start")
    sleep_end = f.get("sleep_end")
    by_kind = {k: [e for e in in_sleep if e.kind == k] for k in KINDS_COUNTED}
    contractions = by_kind["contraction"]
    longest = max(contractions, key=lambda e: e.duration_s) if contractions else None
    h0, h1 = habits_window(n)
    total = len(in_sleep) if enough else None
    plm = f.get("plm_index")
    out = {
        "subject": subject,
        "sensor": sensor,
        "night_of": night_date(start),
        "status": "ok" if enough else "too_little_data",
        "enough_data": enough,
        "reason": reason,
        "recording": {
            "start": start,
            "end": end,
            "start_iso": _iso(start),
            "end_iso": _iso(end),
            "hours": round((end - start) / 3600, 2),
        },
        "sleep_window": {
            "start": sleep_start,
            "end": sleep_end,
            "hours": f.get("sleep_h"),
            "start_iso": _iso(sleep_start),  # type: ignore[arg-type]
            "end_iso": _iso(sleep_end),  # type: ignore[arg-type]
        },
        "timezone": localtime.name() or localtime.label(start),
        "coverage": round(coverage, 4),
        "gaps": [
            {
                "start": g.time,
                "end": float(g.fields.get("end", g.time)),
                "duration_s": float(g.fields.get("duration_s", 0.0)),
            }
            for g in gaps
        ],
        "gaps_total_s": round(sum(float(g.fields.get("duration_s", 0.0)) for g in gaps), 1),
        "counts": {k: len(v) for k, v in by_kind.items()} if enough else None,
        "durations_s": {k: round(sum(e.duration_s for e in v), 1) for k, v in by_kind.items()} if enough else None,
        "episodes_total": total,
        "periodic_count": sum(1 for e in in_sleep if e.periodic) if enough else None,
        "plm_index": (None if plm is None else round(float(plm), 2)) if enough else None,  # type: ignore[arg-type]
        "plm_above_clinical": (float(plm) > PLM_CLINICAL) if enough and plm is not None else None,  # type: ignore[arg-type]
        "longest_contraction": None
        if longest is None or not enough
        else {
            "start": longest.start,
            "end": longest.end,
            "start_iso": _iso(longest.start),
            "duration_s": round(longest.duration_s, 1),
            "peak_g": round(longest.peak_g, 3),
        },
        "contractions": [
            {"start": e.start, "start_iso": _iso(e.start), "duration_s": round(e.duration_s, 1)} for e in contractions
        ],
        "episodes": [e.to_dict() for e in in_sleep],
        "outside_sleep": sum(1 for e in eps if e.kind in KINDS_COUNTED and not e.in_sleep),
        "comparison": _comparison(records.earlier_nights, float(total) if total is not None else None),
        "habits_window": {"start": h0, "end": h1},
        "habits": [_habit(h) for h in records.habits],
        "habits_during_night": [_habit(h) for h in records.habits_during],
        "sensor_health": sensor_health(records.statuses, start, end),
        # how a running N-of-1 experiment stands: set by legwatch.experiment_result.annotate (needs the store)
        "experiment": None,
        "disclaimer": DISCLAIMER,
    }
    for e in out["episodes"]:
        e.pop("extra", None)
        e.pop("sensor", None)
    return out


def build(
    store: Store, subject: str, night: str | None = None, *, sensor: str = "", start: float | None = None
) -> dict:
    """The summary of the latest night of ``subject`` (or of ``night``, YYYY-MM-DD; or the night of
    ``sensor`` that started at ``start``): ``compose(fetch(...))``."""
    return compose(fetch(store, subject, night, sensor=sensor, start=start))


def activity(store: Store, s: Mapping) -> list[tuple[float, float]]:
    """(epoch start, movement in g) of the summarised night, for the timeline plot."""
    rec = s["recording"]
    pts = store.query(
        "activity", start=rec["start"] - 60, end=rec["end"] + 60, tags={"subject": s["subject"], "sensor": s["sensor"]}
    )
    return [(p.time, float(p.fields.get("movement_g", 0.0))) for p in pts]


# --- terminal ----------------------------------------------------------------------------------


def _hm(ts: float | None) -> str:
    return "—" if ts is None else _local(ts).strftime("%H:%M:%S")


def percent(fraction: float | None) -> str:
    """A coverage as text with one decimal, truncated so that a night with gaps never reads 100.0."""
    if fraction is None:
        return "—"
    return f"{int(fraction * 1000 + 1e-9) / 10:.1f}"


def _dur(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def habit_text(h: Mapping) -> str:
    """``21:30 exercise (hard): 45 min — note``."""
    label = str(h["habit"]) + (f" {h['name']}" if h.get("name") else "")
    label += f" ({h['intensity']})" if h.get("intensity") else ""
    text = f"{_local(h['time']):%a %H:%M} {label}: {float(h['value']):g} {h['unit']}".rstrip()
    return text + (f" — {h['note']}" if h.get("note") else "")


def headline(s: Mapping) -> str | None:
    """The result in one line (sleep window, counts, longest contraction, PLM index), or None when the
    night has too little data."""
    if not s["enough_data"]:
        return None
    sw, c = s["sleep_window"], s["counts"]
    one = {"contraction": "contraction (cramp)", "leg_movement": "leg movement", "twitch": "twitch"}
    counts = ", ".join(f"{c[k]} {one[k] if c[k] == 1 else KIND_LABELS[k]}" for k in one)
    lc = s["longest_contraction"]
    longest = f"longest contraction {_dur(lc['duration_s'])} at {_hm(lc['start'])}" if lc else "no contraction"
    pi = s["plm_index"]
    plm = "—" if pi is None else f"{pi:.1f}/h"
    return (
        f"In short: asleep {_hm(sw['start'])[:5]}–{_hm(sw['end'])[:5]} ({sw['hours']:.1f} h); {counts}; {longest}; "
        f"periodic-movement index {plm} (clinical threshold > {PLM_CLINICAL:.0f}/h)"
    )


def render_text(s: dict, console, *, more_hint: str = "use --format json or --format html") -> None:
    """The summary for the terminal (rich); ``more_hint``: where to see the episodes beyond the first 40."""
    from rich.table import Table

    sw = s["sleep_window"]
    console.print(f"[bold]legwatch — night of {s['night_of']}[/bold] ({s['subject']}, sensor {s['sensor']})")
    if (line := headline(s)) is not None:
        console.print(f"[bold]{line}[/bold]")
    rec = s["recording"]
    console.print(
        f"Recording: {_local(rec['start']):%Y-%m-%d} {_hm(rec['start'])} – {_hm(rec['end'])} ({rec['hours']:.1f} h); "
        f"times in {localtime.label(rec['start'])}"
    )
    if sw["start"] is not None:
        console.print(f"Sleep window: {_hm(sw['start'])} – {_hm(sw['end'])} ({sw['hours']:.1f} h)")
    else:
        console.print("Sleep window: not found in the data")
    gap_text = f", {len(s['gaps'])} gap(s), {_dur(s['gaps_total_s'])} without data" if s["gaps"] else ", no gaps"
    console.print(f"Data coverage: {percent(s['coverage'])}%{gap_text}")
    for g in s["gaps"][:10]:
        console.print(f"  gap {_hm(g['start'])} – {_hm(g['end'])} ({_dur(g['duration_s'])} without data)")
    if not s["enough_data"]:
        console.print(
            f"[bold yellow]Too little data to report this night's episodes: {s['reason']}.[/bold yellow] "
            "The counts are left out rather than shown as zero."
        )
    else:
        t = Table(title="Episodes during sleep")
        for col, justify in (("kind", "left"), ("count", "right"), ("total time", "right"), ("times", "left")):
            t.add_column(col, justify=justify)  # type: ignore[arg-type]
        for k, n in s["counts"].items():
            eps = [e for e in s["episodes"] if e["kind"] == k]
            times = ", ".join(_hm(e["start"])[:5] for e in eps[:6]) + (" …" if len(eps) > 6 else "")
            t.add_row(KIND_LABELS[k], str(n), _dur(s["durations_s"][k]) if n else "", times)
        t.add_row("[bold]total[/bold]", f"[bold]{s['episodes_total']}[/bold]", "", "")
        console.print(t)
        pi = s["plm_index"]
        console.print(
            f"Periodic leg movements: {s['periodic_count']}"
            + (f", index {pi:.1f}/h of sleep (clinical threshold > {PLM_CLINICAL:.0f}/h)" if pi is not None else "")
            + (": above it" if s["plm_above_clinical"] else "")
        )
        lc = s["longest_contraction"]
        if lc:
            console.print(f"Longest contraction: {_dur(lc['duration_s'])} at {_hm(lc['start'])}")
        else:
            console.print("No contractions (cramps) during sleep.")
    for warning in s.get("sensor_health", {}).get("warnings", []):
        console.print(f"[bold yellow]{warning}[/bold yellow]")
    if s["outside_sleep"]:
        console.print(
            f"Outside the sleep window: {s['outside_sleep']} episode(s), not counted here; `legwatch detect` "
            f"counts the whole recording, these included."
        )
    c = s["comparison"]
    if c["nights"]:
        line = (
            f"Your last {c['nights']} night(s): median {c['median_episodes']:g} episodes "
            f"(range {c['min_episodes']:g}–{c['max_episodes']:g}), mean contractions {c['mean_contractions']:g}"
        )
        if c["tonight"]:
            line += f"; tonight {s['episodes_total']}: {c['tonight']}"
        console.print(line)
    else:
        console.print("No earlier nights with enough data to compare with yet.")
    if s["enough_data"] and s["episodes"]:
        et = Table(title="Timeline")
        for col in ("start", "kind", "duration s", "peak g", "periodic"):
            et.add_column(col)
        shown = s["episodes"][:40]
        for e in shown:
            periodic = "yes" if e["periodic"] else ""
            et.add_row(_hm(e["start"]), e["kind"], f"{e['duration_s']:.1f}", f"{e['peak_g']:.3f}", periodic)
        console.print(et)
        if len(s["episodes"]) > len(shown):
            console.print(f"… and {len(s['episodes']) - len(shown)} more ({more_hint})")
    if s["habits"]:
        console.print("Habits the evening before (noon to sleep onset):")
        for h in s["habits"]:
            console.print(f"  {habit_text(h)}")
    else:
        console.print("No habits logged the evening before (`legwatch log water 0.5`, …).")
    if s["habits_during_night"]:
        console.print("Logged during the night:")
        for h in s["habits_during_night"]:
            console.print(f"  {habit_text(h)}")
    if s.get("experiment"):
        console.print(f"Experiment: {s['experiment']['line']}.")
    console.print(f"[dim]{s['disclaimer']}[/dim]")
