"""Months of planted nights written straight through the storage API (``night_points`` of a detector
``Night`` with known episodes), with the habits of the evening before: running the detector over
30 full nights would be slow. Used by tests/test_experiment.py, tests/test_report.py and
benchmarks/report.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from detector.events import Episode, Gap
from detector.stream import Night
from legwatch.habits import make_entry, store_entries
from legwatch.storage import Store
from legwatch.storage.schema import night_points

NOW = datetime(2026, 11, 20, 9, 0).astimezone()


def planted_night(
    onset: float,
    rng: np.random.Generator,
    *,
    lms: int,
    cramps: int,
    twitches: int,
    periodic: int = 0,
    gap_s: float = 0.0,
    sleep_h: float = 7.5,
) -> Night:
    """A night of ``sleep_h`` hours of sleep from ``onset`` with that many episodes inside the sleep
    window (``periodic`` of the leg movements in one series 25 s apart), and one gap of ``gap_s``."""
    start, sleep_end = onset - 900, onset + sleep_h * 3600
    eps: list[Episode] = []
    for t in np.sort(rng.uniform(onset + 60, sleep_end - 120, lms)):
        eps.append(Episode(float(t), float(t) + float(rng.uniform(0.8, 4)), "leg_movement", 0.12, in_sleep=True))
    if periodic and sleep_end - 30 * periodic - 600 > onset + 600:
        t0 = float(rng.uniform(onset + 600, sleep_end - 30 * periodic - 600))
        eps += [
            Episode(t0 + 25 * i, t0 + 25 * i + 1.5, "leg_movement", 0.1, periodic=True, in_sleep=True)
            for i in range(periodic)
        ]
    for t in rng.uniform(onset + 1800, max(sleep_end - 600, onset + 1800), cramps):
        eps.append(Episode(float(t), float(t) + float(rng.uniform(20, 180)), "contraction", 0.3, in_sleep=True))
    for t in rng.uniform(onset + 60, sleep_end - 60, twitches):
        eps.append(Episode(float(t), float(t) + 0.2, "twitch", 0.2, in_sleep=True))
    eps.sort(key=lambda e: e.start)
    gaps = [Gap(start + 4000, start + 4000 + gap_s)] if gap_s else []
    dur = sleep_h + 0.5
    plm_index = periodic / sleep_h
    return Night(eps, [], gaps, (onset, sleep_end), plm_index, start, sleep_end + 900, int(dur * 3600 * 25), 0)


def evening_onset(night: str, rng: np.random.Generator) -> float:
    """Sleep onset of the night named ``night`` (its evening): around 23:00 local time."""
    d = datetime.strptime(night, "%Y-%m-%d").replace(hour=23)
    return d.astimezone().timestamp() + float(rng.uniform(-2400, 2400))


def store_month(
    store: Store,
    subject: str,
    nights: Sequence[str],
    intervention: Sequence[bool],
    *,
    habit: str = "stretching",
    factor: float = 1.0,
    seed: int = 0,
    log_habit: Sequence[bool] | None = None,
    extras: bool = False,
) -> None:
    """Store one night per date in ``nights``; on intervention nights the expected number of leg
    movements, twitches and cramps is multiplied by ``factor`` (1.0: the intervention does nothing).
    ``log_habit`` (default: ``intervention``) says on which evenings the habit is logged.
    ``extras``: also a statin every evening, water, a night with too little data and a gap."""
    rng = np.random.default_rng(seed)
    entries = []
    points = []
    for i, (night, on) in enumerate(zip(nights, intervention, strict=True)):
        onset = evening_onset(night, rng)
        f = factor if on else 1.0
        n = planted_night(
            onset,
            rng,
            lms=int(rng.poisson(40 * f)),
            cramps=int(rng.poisson(1.5 * f)),
            twitches=int(rng.poisson(12 * f)),
            periodic=int(rng.choice([0, 0, 6, 14, 30]) * (f if f < 1 else 1)),
            gap_s=900.0 if extras and i % 9 == 4 else 0.0,
            sleep_h=0.3 if extras and i == 6 else float(rng.uniform(6.0, 8.0)),
        )
        points += night_points(subject, "shin", n)
        if (log_habit[i] if log_habit is not None else on) and habit:
            entries.append((subject, make_entry(habit, None, at=onset - 5400, now=NOW)))
        if extras:
            entries.append((subject, make_entry("statin", None, at=onset - 3 * 3600, now=NOW)))
            entries.append((subject, make_entry("water", float(rng.uniform(0.2, 1.0)), at=onset - 4 * 3600, now=NOW)))
    store.write(points)
    store_entries(store, entries)


def dates(first: str, n: int) -> list[str]:
    d0 = datetime.strptime(first, "%Y-%m-%d")
    return [(d0 + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(n)]
