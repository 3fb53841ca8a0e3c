"""The plan of a night: when the sleeper falls asleep and wakes, and when each movement happens.

Lying awake before sleep (latency 5-35 min) and after the final awakening (3-20 min) the leg shifts often
(leg movements, turning over, the odd twitch: 0.3-1.2 a minute). Asleep: turning over 1-4 times an hour,
twitches clustered in REM periods (and hypnic jerks at sleep onset), PLMS series in NREM, isolated leg
movements, cramps that wake the sleeper (some followed by getting up to walk it off), trips out of bed,
each followed by a few minutes of restless wake (and, 30 % of the time, a hypnic jerk on falling asleep
again). Movements never overlap: each has its span plus a guard.
Leg-movement onsets are kept at least 12 s apart and never 85-95 s apart, so that the periodic label does
not depend on whether a scorer uses AASM's 5 s or WASM's 10 s lower bound; and leg movements whose label
would depend on whether a posture change, cramp or trip out of bed ends a series are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simnights.shapes_bed import Cramp, LegMovement, Motion, PartnerMove, PostureChange, SittingUp, Twitch
from simnights.shapes_up import OutOfBed

LM_MIN_IMI = 12.0
LM_BAND_GAP = (85.0, 95.0)


@dataclass
class Plan:
    seconds: float
    sleep_start: float
    sleep_end: float
    motions: list[Motion] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    rem: list[tuple[float, float]] = field(default_factory=list)


class _Calendar:
    """Occupied spans, and the windows reserved for periodic series (only twitches/partners may go there)."""

    def __init__(self, guard: float, end: float, weights: tuple[float, ...]) -> None:
        self.guard = guard
        self.weights = weights
        self.end = end
        self.taken: list[Motion] = []
        self.busy: list[tuple[float, float]] = []
        self.series: list[tuple[float, float]] = []
        self.lm_onsets: list[float] = []

    def free(self, lo: float, hi: float, in_series_ok: bool) -> bool:
        g = self.guard
        if any(lo - g < b and a < hi + g for a, b in self.busy):
            return False
        return in_series_ok or not any(lo < b and a < hi for a, b in self.series)

    def lm_ok(self, onset: float) -> bool:
        for o in self.lm_onsets:
            d = abs(onset - o)
            if d < LM_MIN_IMI or LM_BAND_GAP[0] <= d <= LM_BAND_GAP[1]:
                return False
        return True

    def take(self, m: Motion) -> Motion:
        self.busy.append(m.span)
        self.taken.append(m)
        m.lying_weights = self.weights
        if m.kind == "leg_movement":
            self.lm_onsets.append(m.start)
        return m


def _try_place(rng, cal: _Calendar, make, lo: float, hi: float, tries: int = 60, in_series_ok: bool = False):
    """Make a motion at a random time in [lo, hi) that fits the calendar, or None."""
    if hi <= lo:
        return None
    for _ in range(tries):
        m = make(float(rng.uniform(lo, hi)))
        a, b = m.span
        if a < 1.0 or b > cal.end:
            continue
        if not cal.free(a, b, in_series_ok):
            continue
        if m.kind == "leg_movement" and not cal.lm_ok(m.start):
            continue
        return cal.take(m)
    return None


def make_plan(rng: np.random.Generator, seconds: float, k: dict) -> Plan:
    """Lay out a night of ``seconds`` from the resolved knobs ``k`` (see :func:`simnights.night.resolve`)."""
    cal = _Calendar(k["guard_s"], seconds - 1.0, tuple(k["lying_weights"]))
    s0 = k["sleep_latency_s"]
    s1 = seconds - k["early_wake_s"]
    plan = Plan(seconds, s0, s1)
    sub = lambda: np.random.default_rng(rng.integers(2**63))  # noqa: E731 - each motion its own stream

    # REM periods (twitch clusters): 1-2 of 8-25 min in the second half of each 90-min cycle
    sleep_len = s1 - s0
    for c in range(max(1, int(sleep_len // 5400) + 1)):
        a = s0 + c * 5400 + rng.uniform(0.45, 0.75) * min(5400, sleep_len)
        b = min(a + rng.uniform(480, 1500), s1 - 60)
        if b > a + 120:
            plan.rem.append((a, b))

    def in_rem(x: float) -> bool:
        return any(a <= x <= b for a, b in plan.rem)

    # trips out of bed, then cramps (some walked off)
    for _ in range(k["out_of_bed"]):
        _try_place(rng, cal, lambda x: OutOfBed(sub(), x), s0 + 300, s1 - 400)
    u_phase = rng.random()
    for i in range(k["cramps"]):
        # by default a night's cramps alternate with and without a tremor (a single one: by chance)
        u_alone = rng.random()
        if k["cramp_tremor"] is not None:
            tremor = bool(k["cramp_tremor"])
        elif k["cramps"] >= 2:
            tremor = (i % 2 == 0) == (u_phase < 0.5)
        else:
            tremor = u_alone < k["cramp_tremor_frac"]
        c = _try_place(rng, cal, lambda x, tr=tremor: Cramp(sub(), x, tr), s0 + 120, s1 - 300)
        if c is not None and rng.random() < k["cramp_walk_frac"]:
            at = c.end + c.post + cal.guard + rng.uniform(3.0, 40.0)
            _try_place(rng, cal, lambda x: OutOfBed(sub(), x), at, at + 5.0, tries=10)

    # PLMS series, in NREM
    for _ in range(k["plm_series"]):
        n = int(rng.integers(k["plm_len"][0], k["plm_len"][1] + 1))
        imi = rng.uniform(15.0, 40.0)
        dur_med = rng.uniform(0.8, 3.5)
        for _try in range(30):
            first = rng.uniform(s0 + 60, max(s0 + 61, s1 - n * imi * 1.3 - 60))
            onsets = [first]
            for _j in range(n - 1):
                onsets.append(onsets[-1] + float(np.clip(imi * rng.lognormal(0, 0.2), 12.5, 80.0)))
            lms = [LegMovement(sub(), o, float(np.clip(dur_med * rng.lognormal(0, 0.35), 0.6, 9.5))) for o in onsets]
            win = (lms[0].span[0], lms[-1].span[1])
            if in_rem(win[0]) or in_rem(win[1]) or win[1] > s1 - 30:
                continue
            if not cal.free(*win, in_series_ok=False) or not all(cal.lm_ok(m.start) for m in lms):
                continue
            for m in lms:
                cal.take(m)
            cal.series.append(win)
            break

    # hypnic jerks at sleep onset; twitches (mostly in REM); isolated LMs; turning over
    for _ in range(int(rng.integers(0, 3))):
        _try_place(rng, cal, lambda x: Twitch(sub(), x, strong=True), s0 - 120, s0 + 120)
    n_tw = k["twitches"]
    for _ in range(n_tw):
        strong = bool(rng.random() < k["strong_twitch_frac"])
        if plan.rem and rng.random() < 0.6:
            a, b = plan.rem[int(rng.integers(len(plan.rem)))]
        else:
            a, b = s0, s1
        _try_place(rng, cal, lambda x, st=strong: Twitch(sub(), x, st), a, b, in_series_ok=True)
    for _ in range(k["leg_movements"]):
        _try_place(rng, cal, lambda x: LegMovement(sub(), x), s0, s1)
    hours_asleep = sleep_len / 3600.0
    for _ in range(int(round(k["posture_per_h"] * hours_asleep))):
        _try_place(rng, cal, lambda x: PostureChange(sub(), x), s0 + 60, s1)

    # lying awake: before sleep onset, after the final awakening, and after each trip out of bed/cramp
    wake = [(2.0, s0 - 20.0), (s1 + 5.0, seconds - 5.0)]
    for m in list(cal.taken):
        if m.kind in ("out_of_bed", "contraction"):
            wake.append((m.span[1] + cal.guard, m.span[1] + cal.guard + rng.uniform(60, 300)))
    _try_place(rng, cal, lambda x: PostureChange(sub(), x), s1, s1 + 20.0)  # the final awakening turns over
    for lo, hi in wake:
        n = int(rng.poisson(max(hi - lo, 0.0) / 60.0 * k["restless_per_min"]))
        for _ in range(n):
            r = rng.random()
            if r < 0.5:
                _try_place(rng, cal, lambda x: LegMovement(sub(), x, awake=True), lo, hi)
            elif r < 0.85:
                _try_place(rng, cal, lambda x: PostureChange(sub(), x), lo, hi)
            else:
                _try_place(rng, cal, lambda x: Twitch(sub(), x, strong=bool(rng.random() < 0.3)), lo, hi)
    # falling asleep again after a night-time awakening: a hypnic jerk now and then
    for _lo, hi in wake[2:]:
        if rng.random() < 0.3:
            _try_place(rng, cal, lambda x: Twitch(sub(), x, strong=True), hi - 30.0, hi + 60.0)

    # partner: turning over now and then; sometimes their own periodic kicks
    if k["partner"]:
        for _ in range(int(round(k["partner_per_h"] * seconds / 3600.0))):
            _try_place(rng, cal, lambda x: PartnerMove(sub(), x), 30.0, seconds - 30.0, in_series_ok=True)
        if k["partner_plm"]:
            at = rng.uniform(s0, max(s0 + 1, s1 - 900))
            for _ in range(int(rng.integers(6, 25))):
                _try_place(rng, cal, lambda x: PartnerMove(sub(), x, rng.uniform(0.5, 3.0), small=True), at, at + 3,
                           tries=8, in_series_ok=True)  # fmt: skip
                at += rng.uniform(15.0, 40.0)

    # sitting up in bed awake (reading, drinking) with the knees drawn up: in bed, not out of it
    for _ in range(k["sitting_up"]):
        _place_sitting_up(rng, cal, sub, wake)

    # drop-outs, only where nothing happens
    for _ in range(k["gaps"]):
        for _try in range(60):
            d = float(rng.uniform(2.0, 90.0))
            if seconds - 60.0 - d <= 60.0:
                continue
            a = float(rng.uniform(60.0, seconds - 60.0 - d))
            if cal.free(a, a + d, in_series_ok=False) and not any(a < y and x < a + d for x, y in plan.gaps):
                plan.gaps.append((a, a + d))
                break

    motions = sorted(cal.taken, key=lambda m: m.start)
    # Leave out the few leg movements whose periodic label would depend on whether a posture change,
    # cramp or trip out of bed ends a series (it does here, as in WASM; some scorers let it run on).
    for _ in range(20):
        ev = [(m.start, m.kind) for m in motions if m.kind is not None]
        a, b = periodic_flags(ev), periodic_flags(ev, breaks=())
        idx = [m for m in motions if m.kind is not None]
        differ = {id(idx[i]) for i in range(len(ev)) if a[i] != b[i]}
        if not differ:
            break
        motions = [m for m in motions if id(m) not in differ]
    plan.motions = motions
    return plan


def _place_sitting_up(rng, cal: _Calendar, sub, windows: list[tuple[float, float]]) -> bool:
    """Sit up (a posture change), stay 30 s-4 min, lie back down (another): one reservation for all three."""
    for _ in range(40):
        lo, hi = windows[int(rng.integers(len(windows)))]
        hold = float(rng.uniform(30.0, 240.0))
        if hi - lo < hold + 20.0:
            continue
        x = float(rng.uniform(lo, hi - hold - 15.0))
        up = PostureChange(sub(), x, sit_up=True)
        stay = SittingUp(sub(), up.span[1], hold)
        down = PostureChange(sub(), stay.end + 0.6)
        if down.span[0] < stay.end:
            continue
        a, b = up.span[0], down.span[1]
        if a < 1.0 or b > cal.end or not cal.free(a, b, in_series_ok=False):
            continue
        for m in (up, stay, down):
            cal.take(m)
        return True
    return False


def periodic_flags(
    events: list[tuple[float, str]],
    min_imi: float = 10.0,
    max_imi: float = 90.0,
    breaks: tuple[str, ...] = ("contraction", "posture_change", "out_of_bed"),
) -> list[bool]:
    """WASM periodic flags for (onset, kind) in onset order: runs of >= 4 consecutive leg movements with
    onset-to-onset intervals in [min_imi, max_imi]; an event of a kind in ``breaks`` between two leg
    movements ends the run. Returns one flag per input (False for other kinds)."""
    flags = [False] * len(events)
    run: list[int] = []

    def close() -> None:
        if len(run) >= 4:
            for i in run:
                flags[i] = True

    last = -math.inf
    for i, (onset, kind) in enumerate(events):
        if kind == "leg_movement":
            if run and min_imi <= onset - last <= max_imi:
                run.append(i)
            else:
                close()
                run[:] = [i]
            last = onset
        elif kind in breaks:
            close()
            run.clear()
    close()
    return flags
