"""The InfluxDB schema: detector results and habits as points, and back.

Measurements (numbers are floats; ids live in fields, never in tags):
- ``episode``  time = onset; tags subject, sensor, kind; fields duration_s, end, peak_g,
  periodic (bool), in_sleep (bool), counted (bool)
- ``activity`` time = epoch start; tags subject, sensor; fields movement_g, angle_deg, coverage
- ``gap``      time = start of missing data; tags subject, sensor; fields duration_s, end
- ``habit``    time = when; tags subject, habit; fields value, unit, note
- ``night``    time = start of the recording; tags subject, sensor; fields sleep_start, sleep_end,
  sleep_h, counts per kind, plm_count, plm_index, coverage, samples, end
- ``status``   time = when the collector sent the sensor's status; tags subject, sensor; fields
  battery_pct, rssi_dbm (floats), connected (bool), each only where the status had it
"""

from __future__ import annotations

from detector.events import KINDS_COUNTED, Episode, Epoch, Gap
from detector.stream import Night
from legwatch.storage import Point


def episode_point(subject: str, sensor: str, e: Episode) -> Point:
    return Point(
        "episode",
        {"subject": subject, "sensor": sensor, "kind": e.kind},
        {
            "duration_s": float(round(e.duration_s, 3)),
            "end": float(e.end),
            "peak_g": float(e.peak_g),
            "periodic": bool(e.periodic),
            "in_sleep": bool(e.in_sleep),
            "counted": e.kind in KINDS_COUNTED,
        },
        e.start,
    )


def episode_from_point(p: Point) -> Episode:
    f = p.fields
    return Episode(
        start=p.time_ms / 1000.0,
        end=float(f.get("end", p.time + float(f.get("duration_s", 0.0)))),
        kind=p.tags.get("kind", "?"),
        peak_g=float(f.get("peak_g", 0.0)),
        periodic=bool(f.get("periodic", False)),
        in_sleep=bool(f.get("in_sleep", True)),
        extra={"sensor": p.tags.get("sensor", "")},
    )


def activity_point(subject: str, sensor: str, e: Epoch) -> Point:
    return Point(
        "activity",
        {"subject": subject, "sensor": sensor},
        {"movement_g": float(e.movement_g), "angle_deg": float(e.angle_deg), "coverage": float(e.coverage)},
        e.time,
    )


def gap_point(subject: str, sensor: str, g: Gap, *, reason: str | None = None) -> Point:
    """``reason``: why nobody has the data (the monitor knows it when a sender said so)."""
    fields: dict = {"duration_s": float(round(g.duration_s, 3)), "end": float(g.end)}
    if reason:
        fields["reason"] = reason
    return Point("gap", {"subject": subject, "sensor": sensor}, fields, g.start)


def status_point(subject: str, sensor: str, t: float, health: dict[str, float | bool]) -> Point:
    """A sensor's health (``legwatch.contracts.status.health_fields``) at ``t``."""
    return Point("status", {"subject": subject, "sensor": sensor}, dict(health), t)


def night_point(subject: str, sensor: str, night: Night) -> Point | None:
    if night.start is None:
        return None
    s = night.summary()
    fields: dict = {
        "end": float(night.end or night.start),
        "samples": float(night.samples),
        "coverage": float(s["coverage"] or 0.0),
        "plm_count": float(sum(1 for e in night.episodes if e.periodic and e.in_sleep)),
    }
    if night.sleep_window:
        fields["sleep_start"] = float(night.sleep_window[0])
        fields["sleep_end"] = float(night.sleep_window[1])
        fields["sleep_h"] = float(round((night.sleep_window[1] - night.sleep_window[0]) / 3600, 3))
    if night.plm_index is not None:
        fields["plm_index"] = float(round(night.plm_index, 3))
    for kind in (*KINDS_COUNTED, "posture_change", "out_of_bed"):
        fields[f"{kind}_count"] = float(sum(1 for e in night.episodes if e.kind == kind and e.in_sleep))
    fields["episodes"] = float(sum(1 for e in night.episodes if e.counted and e.in_sleep))
    return Point("night", {"subject": subject, "sensor": sensor}, fields, night.start)


def night_points(subject: str, sensor: str, night: Night) -> list[Point]:
    pts = [episode_point(subject, sensor, e) for e in night.episodes]
    pts += [activity_point(subject, sensor, e) for e in night.epochs]
    pts += [gap_point(subject, sensor, g) for g in night.gaps]
    np_ = night_point(subject, sensor, night)
    if np_ is not None:
        pts.append(np_)
    return pts
