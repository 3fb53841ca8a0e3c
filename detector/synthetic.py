"""Labelled synthetic nights from a shin-worn 3-axis accelerometer, with ground truth for every event.

The generator follows the physics of the sensor and the physiology of the events rather than a fixed
template, and draws every knob from the seed, so that a detector tuned on it is not tuned to a style.

Sensor physics
--------------
* The reading is the specific force in the sensor frame: gravity (+1 g "up") projected into the frame
  plus the linear acceleration of the limb, through the sensor's own low-pass filter (2nd-order
  Butterworth at 0.3-0.5 x the output rate, applied causally on a fine time grid), then scale and offset
  errors (+-1.5 %, +-15 mg), slow drift (warm-up exponential plus hour-scale wander, a few mg), white noise
  (1.5-5 mg per axis), quantisation (12/14/16 bit at +-2..16 g, LSB <= 1 mg) and clipping at full scale.
* The shin frame: ``y`` along the shin towards the knee, ``x`` anterior, ``z`` lateral. The leg's
  orientation is the elevation ``theta`` of the shin above horizontal and its roll ``phi`` about the shin
  axis, so "up" in the shin frame is ``(cos th cos ph, sin th, cos th sin ph)``: lying supine ``phi ~ 0``,
  on a side ``+-90``, prone ``180`` with ``theta`` within about +-10 deg; standing ``theta ~ 90``.
* The sensor is strapped at a random rotation about the shin axis, with a misalignment of a few degrees,
  and the shin axis is one of the sensor's axes (``y`` most often, else ``x`` or ``z``, either sign).

Events (ground truth, :class:`TruthEvent`)
------------------------------------------
* ``twitch``: 75-450 ms biphasic transient (0.05-1 g) with a little ringing and <= 1 deg of rotation;
  clustered near sleep onset (hypnic jerks), scattered or in short myoclonic clusters during sleep.
* ``leg_movement``: 0.5-10 s rotation of the shin by 2-20 deg about a mostly medio-lateral (flexion)
  axis and back (min-jerk onset and offset; plateau, single- or double-bump shapes; small residual), with
  the lever-arm linear acceleration of that rotation and a little 8-25 Hz muscle vibration. The axis is
  drawn so that gravity sees at least ~45 % of the rotation (knee flexion while lying on the side can be
  a rotation about the vertical, which gravity cannot see).
* Periodic series (WASM 2016): runs of >= 4 (often 10-100) leg movements, onset-to-onset intervals of
  10-90 s around a per-series period (typically 20-40 s) with jitter; plus isolated movements during
  sleep and restless movements while awake. The ``periodic`` flag of the truth is recomputed from the
  final event list with :func:`detector.scoring.periodic_series_flags` (the WASM rule), so it is exact.
* ``contraction`` (cramp): 12 s to 8 min: sudden held tilt of 3-30 deg with strained slow wander,
  stretching attempts against the cramp, sometimes 5-15 Hz tremor and 1-2 Hz irregular shaking, a
  gradual release; often followed by getting up. Some cramps (``cramp_tremorless``) show no tremor the
  sensor resolves: a turn of 15-60 deg about the medio-lateral axis (knee and ankle flexing) held 20 s to
  3 min with a slow strained wander and 2-6 strained movements inside (a jolt, a push of 3-15 deg and
  back), the leg coming back close to where it was.
* ``posture_change``: 1-6 s roll of 40-180 deg about the shin axis with a knee bend and large irregular
  acceleration, ending in a new sustained posture (not an episode).
* ``out_of_bed``: sit up, sit, stand, walk (shank swing of 20-32 deg at 0.8-1 Hz stride with heel strikes
  of 0.3-1.5 g, the other foot's strikes weaker), stand or sit, come back, lie down in a new posture;
  at the start of the recording (optional) and at the end (not episodes).

Confounders (labelled as nothing; listed in ``Night.confounders`` for diagnosis): a bed partner shaking
the mattress (vertical 1-6 Hz, 3-30 mg, 1.5-60 s bursts, sometimes periodic like the partner's own leg
movements), drop-outs (gaps of seconds to minutes with no samples, kept clear of counted events and
getting up), late sample bursts (samples delivered 0.2-1.5 s late with squeezed timestamps), timestamp
jitter, a sample clock off by up to 0.2 %, drift, a faint ballistocardiogram while lying.

Not modelled: the other leg, breathing-related movements, arousals and sleep stages (the sleep window is
one block: awake in bed, asleep, awake in bed, up), sensor removal or non-wear, temperature, gyroscope.
"""

from __future__ import annotations

import argparse
import json
import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from detector.events import KINDS_COUNTED
from detector.scoring import periodic_series_flags

G0 = 9.80665
#: Default start of a night: 2026-01-05 22:30:00 UTC (plus a seed-dependent offset of -1 h..+1.5 h).
DEFAULT_START = 1767652200.0
#: Duration limits (s) of what the generator emits, per kind.
DURATION_LIMITS: dict[str, tuple[float, float]] = {
    "twitch": (0.075, 0.45),
    "leg_movement": (0.5, 10.0),
    "contraction": (10.0, 600.0),
    "posture_change": (1.0, 6.0),
    "out_of_bed": (60.0, math.inf),
}
_PAD = 0.6  # s of fine grid rendered before and after each activity (filter run-in and tail)


@dataclass(frozen=True)
class TruthEvent:
    """One labelled event (Unix seconds). ``periodic`` only for leg movements in a WASM series."""

    start: float
    end: float
    kind: str
    periodic: bool = False

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "kind": self.kind,
            "duration_s": round(self.duration_s, 6),
            "periodic": self.periodic,
        }


@dataclass
class Night:
    """A generated recording and its ground truth."""

    t: np.ndarray  # (n,) float64 Unix seconds, strictly increasing
    xyz: np.ndarray  # (n, 3) float64 g
    events: list[TruthEvent]
    sleep_start: float
    sleep_end: float
    rate_hz: float
    seed: int
    #: Things that are *not* events (kinds ``partner``, ``gap``, ``late_burst``), for diagnosis only.
    confounders: list[TruthEvent] = field(default_factory=list)
    #: The resolved generator settings (every knob, drawn or given).
    params: dict[str, Any] = field(default_factory=dict)

    def episodes(self) -> list[TruthEvent]:
        """The events of the counted kinds (twitch, leg_movement, contraction)."""
        return [e for e in self.events if e.kind in KINDS_COUNTED]


@dataclass
class NightSpec:
    """Generator knobs. ``None`` means "draw from the seed" (ranges in the comments).

    Event counts are upper bounds: what does not fit in the night (events never overlap) is left out.
    """

    hours: float = 8.0
    rate_hz: float = 52.0
    start: float | None = None  # DEFAULT_START - 1 h .. + 1.5 h
    # sensor
    noise_mg: float | None = None  # 1.5-5 mg per axis
    drift_mg: float | None = None  # 0.5-5 mg
    range_g: float | None = None  # 2, 4, 8, 16
    bits: int | None = None  # 16 (mostly), 14, 12 (with an LSB <= 1 mg)
    bandwidth: float | None = None  # sensor low-pass cut-off as a fraction of the rate, 0.3-0.5
    shin_axis: str | None = None  # "x", "y", "z", optionally signed ("-y")
    strap_deg: float | None = None  # rotation of the sensor about the shin axis, 0-360
    misalign_deg: float | None = None  # 0-6
    jitter: float | None = None  # timestamp jitter SD as a fraction of the sample interval, 0-0.3
    # night structure
    awake_start_min: float | None = None  # awake in bed before sleep, 3-45 min (capped at 15 % of the night)
    awake_end_min: float | None = None  # awake in bed after sleep, 2-15 min (capped at 10 %)
    walk_at_start: bool | None = None  # recording starts standing/walking, then lying down
    bathroom_trips: int | None = None  # out-of-bed trips during sleep
    posture_changes_per_h: float | None = None  # during sleep, 1-4.5
    # events
    plm_series: int | None = None  # periodic series (0 on ~30 % of nights)
    plm_interval_s: float | None = None  # typical onset-to-onset interval, 12-70 s (median 27)
    isolated_lm_per_h: float | None = None  # non-periodic leg movements in sleep, 0.5-25 / h
    restless_lm_per_min: float | None = None  # leg movements while awake in bed, 0.1-1.5 / min
    lm_amplitude_deg: float | None = None  # typical leg-movement rotation of this person/night, 2.5-14
    cramps: int | None = None
    cramp_getup_prob: float | None = None  # chance a cramp is followed by getting up, 0.3-0.8
    #: chance a cramp shows no tremor the sensor resolves: a held turn of 15-60 deg for 20 s - 3 min with
    #: strained movements inside, the leg coming back close to where it was; 0.2-0.7
    cramp_tremorless: float | None = None
    twitches: int | None = None
    twitch_amp_g: float | None = None  # typical twitch peak, 0.08-0.5 g
    # confounders
    partner: bool | None = None
    partner_bursts: int | None = None
    partner_periodic: bool | None = None
    gaps: int | None = None
    late_bursts: int | None = None

    def resolved(self, rng: np.random.Generator) -> NightSpec:
        """A copy with every ``None`` drawn from ``rng``; all defaults are drawn in a fixed order, so
        giving one knob does not change the others."""
        h = self.hours
        u = rng.uniform
        d: dict[str, Any] = {}
        d["start"] = DEFAULT_START + u(-3600.0, 5400.0)
        d["noise_mg"] = u(1.5, 5.0)
        d["drift_mg"] = u(0.5, 5.0)
        d["range_g"] = float(rng.choice([2.0, 4.0, 8.0, 16.0], p=[0.3, 0.2, 0.4, 0.1]))
        d["bits"] = int(rng.choice([16, 14, 12], p=[0.8, 0.1, 0.1]))
        d["bandwidth"] = u(0.3, 0.5)
        d["shin_axis"] = str(rng.choice(["y", "-y", "x", "-x", "z", "-z"], p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.1]))
        d["strap_deg"] = u(0.0, 360.0)
        d["misalign_deg"] = u(0.0, 6.0)
        d["jitter"] = u(0.0, 0.3)
        d["awake_start_min"] = float(np.clip(rng.lognormal(math.log(12.0), 0.6), 3.0, 45.0))
        d["awake_end_min"] = u(2.0, 15.0)
        d["walk_at_start"] = bool(rng.random() < 0.5)
        d["bathroom_trips"] = int(rng.poisson(u(0.0, 1.5) * h / 8.0))
        d["posture_changes_per_h"] = u(1.0, 4.5)
        lam = 0.0 if rng.random() < 0.3 else u(1.0, 8.0)
        d["plm_series"] = int(rng.poisson(lam * h / 8.0))
        d["plm_interval_s"] = float(np.clip(rng.lognormal(math.log(27.0), 0.3), 12.0, 70.0))
        d["isolated_lm_per_h"] = float(np.clip(rng.lognormal(math.log(4.0), 0.7), 0.5, 25.0))
        d["restless_lm_per_min"] = u(0.1, 1.5)
        d["lm_amplitude_deg"] = float(np.exp(u(math.log(2.5), math.log(14.0))))
        d["cramps"] = int(rng.poisson(u(0.0, 2.5) * h / 8.0))
        d["cramp_getup_prob"] = u(0.3, 0.8)
        d["twitches"] = int(rng.poisson(np.exp(u(math.log(0.2), math.log(8.0))) * h))
        d["twitch_amp_g"] = float(np.exp(u(math.log(0.08), math.log(0.5))))
        d["partner"] = bool(rng.random() < 0.6)
        d["partner_bursts"] = int(rng.poisson(u(0.5, 5.0) * h))
        d["partner_periodic"] = bool(rng.random() < 0.25)
        d["gaps"] = 0 if rng.random() < 0.4 else 1 + int(rng.poisson(1.5 * h / 8.0))
        d["late_bursts"] = int(rng.poisson(u(0.0, 3.0) * h))
        d["cramp_tremorless"] = u(0.2, 0.7)  # drawn last: the draws above are as they were before it
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        out = replace(self, **{**d, **given})
        if out.bits == 12 or (out.bits == 14 and out.range_g > 8):
            lsb_ok = {12: 2.0, 14: 8.0}[out.bits]
            if "range_g" not in given:
                out.range_g = min(out.range_g, lsb_ok)
        if not out.partner and "partner_bursts" not in given:
            out.partner_bursts = 0
        if not out.partner and "partner_periodic" not in given:
            out.partner_periodic = False
        return out


# --------------------------------------------------------------------------------------------------
# small helpers


def _mj(x: np.ndarray) -> np.ndarray:
    """Minimum-jerk ramp 0 -> 1 on x in [0, 1] (clipped outside)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)


def _bandnoise(rng: np.random.Generator, m: int, fs: float, lo: float, hi: float, k: int = 1) -> np.ndarray:
    """(m, k) Gaussian noise band-limited to [lo, hi] Hz, unit RMS per column."""
    if m < 2:
        return np.zeros((m, k))
    f = np.fft.rfftfreq(m, 1.0 / fs)
    mask = (f >= lo) & (f <= hi)
    if not mask.any():
        mask[int(np.argmin(np.abs(f - 0.5 * (lo + hi))))] = True
    spec = (rng.standard_normal((len(f), k)) + 1j * rng.standard_normal((len(f), k))) * mask[:, None]
    x = np.fft.irfft(spec, n=m, axis=0)
    sd = x.std(axis=0)
    return x / np.where(sd > 0, sd, 1.0)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _up(theta_deg: float, phi_deg: float) -> np.ndarray:
    th, ph = math.radians(theta_deg), math.radians(phi_deg)
    return np.array([math.cos(th) * math.cos(ph), math.sin(th), math.cos(th) * math.sin(ph)])


def _wrap(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


def _rotate(v: np.ndarray, axis: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Rodrigues: rotate rows of ``v`` (m, 3) about unit ``axis`` by angles ``beta`` (m,) in radians."""
    c, s = np.cos(beta)[:, None], np.sin(beta)[:, None]
    kxv = np.cross(axis[None, :], v)
    kdv = v @ axis
    return v * c + kxv * s + axis[None, :] * (kdv[:, None] * (1.0 - c))


def _rot_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    return _rotate(np.eye(3), _unit(axis), np.full(3, angle)).T


def _lever_acc(beta: np.ndarray, axis: np.ndarray, lever: np.ndarray, fs: float) -> np.ndarray:
    """Linear acceleration (g) of a point at ``lever`` (m, shin frame) from a rotation ``beta(t)`` about
    ``axis`` through the origin: tangential beta'' n x r plus centripetal beta'^2 n x (n x r)."""
    b1 = np.gradient(beta, 1.0 / fs)
    b2 = np.gradient(b1, 1.0 / fs)
    nxr = np.cross(axis, lever)
    nxnxr = np.cross(axis, nxr)
    return (b2[:, None] * nxr[None, :] + (b1 * b1)[:, None] * nxnxr[None, :]) / G0


def _visible_axis(
    rng: np.random.Generator, up: np.ndarray, base: np.ndarray, spread: float, min_vis: float = 0.45
) -> np.ndarray:
    """A rotation axis near ``base`` whose rotation gravity can see (|n x up| >= min_vis)."""
    for _ in range(40):
        n = _unit(base + rng.normal(0.0, spread, 3))
        if np.linalg.norm(np.cross(n, up)) >= min_vis:
            return n
    return _unit(np.cross(up, _unit(rng.normal(size=3)) + 0.1))


def _random_dir(rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.normal(size=3))


# --------------------------------------------------------------------------------------------------
# planning: when things happen


@dataclass
class _Act:
    start: float  # s from the start of the recording
    end: float
    kind: str
    periodic: bool = False
    p: dict[str, Any] = field(default_factory=dict)


class _Timeline:
    """Sorted, non-overlapping busy intervals."""

    def __init__(self) -> None:
        self.iv: list[tuple[float, float]] = []

    def free(self, a: float, b: float, margin: float = 0.0) -> bool:
        a, b = a - margin, b + margin
        i = bisect_left(self.iv, (a, -math.inf))
        if i < len(self.iv) and self.iv[i][0] < b:
            return False
        return not (i > 0 and self.iv[i - 1][1] > a)

    def add(self, a: float, b: float) -> None:
        insort(self.iv, (a, b))


def _place(
    rng: np.random.Generator,
    tls: Sequence[tuple[_Timeline, float]],
    lo: float,
    hi: float,
    dur: float,
    tries: int = 200,
) -> float | None:
    """A random start in [lo, hi - dur] where [start, start + dur] is free on every (timeline, margin)."""
    if hi - dur <= lo:
        return None
    for _ in range(tries):
        a = rng.uniform(lo, hi - dur)
        if all(tl.free(a, a + dur, m) for tl, m in tls):
            return a
    return None


_LYING = ((0.0, 0.35), (90.0, 0.25), (-90.0, 0.25), (180.0, 0.15))


def _lying_pose(rng: np.random.Generator) -> tuple[float, float]:
    c = float(rng.choice([p[0] for p in _LYING], p=[p[1] for p in _LYING]))
    phi = _wrap(c + rng.normal(0.0, 15.0))
    theta = rng.uniform(-2.0, 10.0) if c == 0.0 else rng.uniform(-8.0, 12.0)
    return float(theta), phi


@dataclass
class _Plan:
    T: float
    acts: list[_Act]
    sleep_start: float
    sleep_end: float
    gaps: list[tuple[float, float]]
    late: list[tuple[float, float]]
    segments: list[tuple[float, float, float]]  # (from, theta, phi) baseline postures


def _plan(s: NightSpec, rng: np.random.Generator, rng_style: np.random.Generator) -> _Plan:
    T = s.hours * 3600.0
    tl, major = _Timeline(), _Timeline()
    acts: list[_Act] = []

    def add(a: float, b: float, kind: str, **p: Any) -> _Act:
        act = _Act(a, b, kind, p=p)
        acts.append(act)
        tl.add(a, b)
        return act

    # ---- night structure
    t_bed = 0.0
    if s.walk_at_start:
        d = min(rng.uniform(60.0, 180.0), max(60.0, 0.05 * T))
        add(0.5, 0.5 + d, "out_of_bed", mode="arrive")
        major.add(0.5, 0.5 + d)
        t_bed = 0.5 + d
    sleep_start = t_bed + min(s.awake_start_min * 60.0, 0.15 * T)
    final = min(rng.uniform(60.0, 300.0), max(60.0, 0.05 * T))
    get_up = T - 0.5 - final
    add(get_up, T - 0.5, "out_of_bed", mode="leave")
    major.add(get_up, T - 0.5)
    sleep_end = get_up - min(s.awake_end_min * 60.0, 0.1 * T)
    S = sleep_end - sleep_start
    if S <= 60.0:
        raise ValueError("night too short for a sleep window")

    # ---- bathroom trips
    for _ in range(s.bathroom_trips):
        d = rng.uniform(120.0, 480.0)
        a = _place(rng, [(tl, 5.0)], sleep_start + 0.1 * S, sleep_end - 0.1 * S, d)
        if a is not None:
            add(a, a + d, "out_of_bed", mode="trip")
            major.add(a, a + d)

    # ---- cramps, some followed by getting up
    for _ in range(s.cramps):
        d = float(np.clip(rng.lognormal(math.log(60.0), 0.8), 12.0, max(12.0, min(480.0, 0.25 * S))))
        up = rng.random() < s.cramp_getup_prob
        gap, d_up = rng.uniform(5.0, 60.0), rng.uniform(60.0, 240.0)
        need = d + (gap + d_up if up else 0.0)
        a = _place(rng, [(tl, 5.0)], sleep_start + 30.0, sleep_end - 10.0, need)
        if a is None and up:
            up, need = False, d
            a = _place(rng, [(tl, 5.0)], sleep_start + 30.0, sleep_end - 10.0, need)
        if a is None:
            continue
        add(a, a + d, "contraction")
        if up:
            add(a + d + gap, a + need, "out_of_bed", mode="trip")
        major.add(a, a + need)

    # ---- periodic series
    for _ in range(s.plm_series):
        n = 4 + min(int(rng.lognormal(math.log(12.0), 0.9)), 146)
        t0 = float(np.clip(s.plm_interval_s * math.exp(rng.normal(0.0, 0.2)), 11.0, 80.0))
        imis = np.clip(t0 * np.exp(rng.normal(0.0, rng.uniform(0.05, 0.25), n - 1)), 10.3, 89.7)
        dmed = float(np.clip(rng.lognormal(math.log(2.3), 0.35), 0.8, 5.0))
        durs = np.clip(dmed * np.exp(rng.normal(0.0, 0.35, n)), 0.55, 9.5)
        durs[:-1] = np.minimum(durs[:-1], imis - 1.6)
        onsets = np.concatenate(([0.0], np.cumsum(imis)))
        placed = None
        while n >= 4 and placed is None:
            span = onsets[n - 1] + durs[n - 1]
            lo, hi = sleep_start + 20.0, sleep_end - 20.0
            for _try in range(100):
                if hi - span <= lo:
                    break
                a = rng.uniform(lo, hi - span)
                if major.free(a, a + span, 12.0) and all(
                    tl.free(a + o, a + o + du, 1.5) for o, du in zip(onsets[:n], durs[:n], strict=True)
                ):
                    placed = a
                    break
            if placed is None:
                n = n * 2 // 3 if n > 6 else n - 1
        if placed is None:
            continue
        for o, du in zip(onsets[:n], durs[:n], strict=True):
            add(placed + o, placed + o + du, "leg_movement", series=True)
        major.add(placed, placed + onsets[n - 1] + durs[n - 1])

    # ---- isolated leg movements: during sleep, and restless ones while awake in bed
    wake_parts = [(t_bed + 5.0, sleep_start), (sleep_end, get_up - 5.0)]
    n_sleep = int(rng.poisson(s.isolated_lm_per_h * S / 3600.0))
    n_wake = int(rng.poisson(s.restless_lm_per_min * sum(max(0.0, b - a) for a, b in wake_parts) / 60.0))
    for i in range(n_sleep + n_wake):
        d = float(np.clip(rng.lognormal(math.log(2.5), 0.6), 0.55, 9.8))
        if i < n_sleep:
            lo, hi = sleep_start, sleep_end
        else:
            w = np.array([max(0.0, b - a) for a, b in wake_parts])
            lo, hi = wake_parts[int(rng.choice(2, p=w / w.sum()))]
        a = _place(rng, [(tl, 1.5), (major, 12.0)], lo, hi, d, tries=50)
        if a is not None:
            add(a, a + d, "leg_movement")

    # ---- posture changes
    n_pc = [
        int(rng.poisson(s.posture_changes_per_h * S / 3600.0)),
        1 + int(rng.poisson(0.2 * max(0.0, sleep_start - t_bed) / 60.0)),
        int(rng.poisson(0.2 * max(0.0, get_up - sleep_end) / 60.0)),
    ]
    for (lo, hi), k in zip([(sleep_start, sleep_end), *wake_parts], n_pc, strict=True):
        for _ in range(k):
            mag = rng.uniform(40.0, 180.0)
            d = float(np.clip(rng.uniform(1.0, 2.5) + mag / 180.0 * rng.uniform(0.5, 3.0), 1.0, 6.0))
            a = _place(rng, [(tl, 2.0)], lo, hi, d, tries=50)
            if a is not None:
                add(a, a + d, "posture_change", mag=mag, sign=float(rng.choice([-1.0, 1.0])))

    # ---- twitches: hypnic jerks near sleep onset, myoclonic clusters or scattered during sleep
    n_tw = s.twitches
    starts: list[tuple[float, float]] = []  # (lo, hi) windows, one per twitch
    if n_tw and rng.random() < 0.6:
        k = min(n_tw, int(rng.integers(1, 5)))
        win = (sleep_start - min(300.0, sleep_start - t_bed), sleep_start + min(600.0, 0.2 * S))
        starts += [win] * k
        n_tw -= k
    if n_tw and rng.random() < 0.3:
        while n_tw > 0:
            k = min(n_tw, int(rng.integers(3, 9)))
            c = rng.uniform(sleep_start, max(sleep_start + 1.0, sleep_end - 30.0))
            starts += [(c, c + 30.0)] * k
            n_tw -= k
    starts += [(sleep_start, sleep_end)] * n_tw
    for lo, hi in starts:
        d = float(np.exp(rng.uniform(math.log(0.075), math.log(0.45))))
        a = _place(rng, [(tl, 1.5), (major, 0.0)], lo, hi, d, tries=60)
        if a is None:
            a = _place(rng, [(tl, 1.5)], sleep_start, sleep_end, d, tries=60)
        if a is not None:
            amp = float(np.clip(s.twitch_amp_g * math.exp(rng.normal(0.0, 0.5)), 0.05, 1.0))
            add(a, a + d, "twitch", amp=amp)

    acts.sort(key=lambda x: x.start)

    # ---- postures, chronologically
    stand = (90.0, 0.0)
    cur = stand if s.walk_at_start else _lying_pose(rng)
    segments = [(-math.inf, *cur)]
    z_axis = np.array([0.0, 0.0, 1.0])
    for act in acts:
        act.p["pose0"] = cur
        if act.kind in ("leg_movement", "contraction"):
            # The rotation is fixed here, so that a residual tilt becomes the next baseline posture.
            up = _up(*cur)
            if act.kind == "leg_movement":
                amp = float(np.clip(s.lm_amplitude_deg * math.exp(rng.normal(0.0, 0.45)), 2.0, 20.0))
                axis = _visible_axis(rng, up, z_axis, 0.6)
                shape = int(rng.choice(3, p=[0.45, 0.35, 0.2]))
                res = rng.uniform(-0.15, 0.15) if shape == 0 and rng.random() < 0.3 else 0.0
            else:
                amp = rng.uniform(3.0, 30.0)
                axis = _visible_axis(rng, up, np.array([0.3, 0.0, 1.0]), 0.7)
                shape, res = 0, rng.uniform(-0.2, 0.2)
                # the tremor-less, held style draws from its own generator, so every other draw of the
                # night stays what it was before the style existed
                if rng_style.random() < s.cramp_tremorless:
                    act.p["style"] = "held"
                    amp, res = rng_style.uniform(15.0, 60.0), rng_style.uniform(-0.08, 0.08)
                    # the calf pulls the foot down and bends the knee: a turn about the medio-lateral axis
                    axis = _visible_axis(rng_style, up, z_axis, 0.25)
                    act.end = act.start + float(np.clip(act.end - act.start, 20.0, 180.0))
            sign = float(rng.choice([-1.0, 1.0]))
            act.p.update(amp=amp, axis=axis, sign=sign, res=res, shape=shape)
            if res:
                u1 = _rotate(up[None, :], axis, np.array([math.radians(amp * sign * res)]))[0]
                cur = (
                    math.degrees(math.asin(float(np.clip(u1[1], -1.0, 1.0)))),
                    math.degrees(math.atan2(u1[2], u1[0])),
                )
                segments.append((act.end + 0.5 * _PAD, *cur))
            continue
        if act.kind == "posture_change":
            th1, _ = _lying_pose(rng)
            new = (th1, _wrap(cur[1] + act.p["sign"] * act.p["mag"]))
        elif act.kind == "out_of_bed":
            new = stand if act.p["mode"] == "leave" else _lying_pose(rng)
        else:
            continue
        act.p["pose1"] = new
        cur = new
        segments.append((act.end, *new))

    # ---- exact periodic flags (WASM rule on the final list)
    for act, flag in zip(acts, periodic_series_flags(acts), strict=True):
        act.periodic = flag

    # ---- drop-outs (clear of counted events and getting up: both are judged) and late sample bursts
    counted = _Timeline()
    for act in acts:
        if act.kind in KINDS_COUNTED or act.kind == "out_of_bed":
            counted.add(act.start, act.end)
    gaps: list[tuple[float, float]] = []
    gtl = _Timeline()
    for _ in range(s.gaps):
        d = float(np.exp(rng.uniform(math.log(3.0), math.log(600.0))))
        d = min(d, max(3.0, 0.05 * T))
        a = _place(rng, [(counted, 3.0), (gtl, 5.0)], 60.0, T - 60.0, d)
        if a is not None:
            gaps.append((a, a + d))
            gtl.add(a, a + d)
    late: list[tuple[float, float]] = []
    for _ in range(s.late_bursts):
        d = rng.uniform(0.2, 1.5)
        a = _place(rng, [(gtl, 3.0)], 10.0, T - 10.0, d, tries=20)
        if a is not None:
            late.append((a, d))
    gaps.sort()
    late.sort()
    return _Plan(T, acts, sleep_start, sleep_end, gaps, late, segments)


# --------------------------------------------------------------------------------------------------
# rendering: what each activity does to the shin, on a fine time grid


@dataclass
class _Piece:
    tf: np.ndarray  # fine-grid times (s from recording start)
    theta: np.ndarray | None = None  # absolute posture (deg), for transitions
    phi: np.ndarray | None = None
    beta: np.ndarray | None = None  # rotation (rad) about ``axis``, for perturbations
    axis: np.ndarray | None = None
    acc: np.ndarray | None = None  # (m, 3) linear acceleration, g, shin frame


def _grid(act: _Act, fs: float) -> tuple[np.ndarray, np.ndarray]:
    tf = np.arange(act.start - _PAD, act.end + _PAD, 1.0 / fs)
    return tf, tf - act.start


def _render_twitch(act: _Act, rng: np.random.Generator, fs: float, s: NightSpec) -> _Piece:
    tf, tau = _grid(act, fs)
    D = act.end - act.start
    inside = (tau >= 0) & (tau <= D)
    x = np.where(inside, tau / D, 0.0)
    pulse = np.where(inside, np.sin(2.0 * np.pi * x), 0.0)
    if rng.random() < 0.5:  # stronger first phase, weaker rebound
        pulse = np.where(x < 0.5, pulse, pulse * rng.uniform(0.4, 1.0))
    fr = rng.uniform(8.0, 20.0)
    ring = np.where(inside, np.exp(-tau / (D / 3.0)) * np.sin(2 * np.pi * fr * tau) * np.sin(np.pi * x), 0.0)
    wave = pulse + rng.uniform(0.0, 0.35) * ring
    wave /= max(np.max(np.abs(wave)), 1e-9)
    d1 = _random_dir(rng)
    d2 = _random_dir(rng)
    acc = act.p["amp"] * (wave[:, None] * d1[None, :] + 0.3 * np.roll(wave, int(0.02 * fs))[:, None] * d2)
    up = _up(*act.p["pose0"])
    axis = _visible_axis(rng, up, np.array([0.0, 0.0, 1.0]), 0.8)
    beta = math.radians(rng.uniform(0.0, 1.0)) * np.sin(np.pi * x) ** 2 * rng.choice([-1.0, 1.0])
    return _Piece(tf, beta=beta, axis=axis, acc=acc)


def _render_lm(act: _Act, rng: np.random.Generator, fs: float, s: NightSpec) -> _Piece:
    tf, tau = _grid(act, fs)
    D = act.end - act.start
    x = np.clip(tau / D, 0.0, 1.0)
    shape_kind = act.p["shape"]
    if shape_kind == 0:  # rise, hold, fall (possibly to a small residual tilt)
        tr = max(0.15, D * rng.uniform(0.15, 0.4))
        tfall = max(0.15, D * rng.uniform(0.2, 0.45))
        if tr + tfall > D:
            tr, tfall = tr * D / (tr + tfall), tfall * D / (tr + tfall)
        shape = _mj(tau / tr) - (1.0 - act.p["res"]) * _mj((tau - (D - tfall)) / tfall)
    elif shape_kind == 1:  # single bump, skewed
        shape = np.sin(np.pi * x ** rng.uniform(0.6, 1.6)) ** 2
    else:  # two bursts
        m = rng.uniform(0.35, 0.65)
        ov = rng.uniform(0.0, 0.15)
        x1 = np.clip(tau / (D * (m + ov)), 0.0, 1.0)
        x2 = np.clip((tau - D * (m - ov)) / (D * (1.0 - m + ov)), 0.0, 1.0)
        shape = np.sin(np.pi * x1) ** 2 + rng.uniform(0.4, 1.0) * np.sin(np.pi * x2) ** 2
        shape /= max(shape.max(), 1e-9)
    wob = 1.0 + rng.uniform(0.0, 0.15) * _bandnoise(rng, len(tau), fs, 0.3, 3.0)[:, 0] * np.sin(np.pi * x) ** 2
    beta = math.radians(act.p["amp"]) * act.p["sign"] * shape * wob
    axis = act.p["axis"]
    lever = np.array([0.0, rng.uniform(0.1, 0.35), rng.uniform(-0.05, 0.05)])
    acc = _lever_acc(beta, axis, lever, fs)
    env = np.sin(np.pi * x) ** 2
    vib = rng.uniform(0.5, 8.0) * 1e-3 * _bandnoise(rng, len(tau), fs, 8.0, 25.0)[:, 0] * env
    acc += vib[:, None] * _random_dir(rng)[None, :]
    return _Piece(tf, beta=beta, axis=axis, acc=acc)


def _render_cramp(act: _Act, rng: np.random.Generator, fs: float, s: NightSpec) -> _Piece:
    tf, tau = _grid(act, fs)
    m = len(tau)
    D = act.end - act.start
    tr = rng.uniform(0.3, 3.0)
    tfall = rng.uniform(1.0, min(10.0, D / 3.0))
    res, sign = act.p["res"], act.p["sign"]
    tilt = math.radians(act.p["amp"]) * sign
    held = _mj(tau / tr) - (1.0 - res) * _mj((tau - (D - tfall)) / tfall)
    inside = ((tau >= 0) & (tau <= D)).astype(float)
    hold_env = _mj(tau / tr) * _mj((D - tau) / tfall) * inside
    wander = math.radians(rng.uniform(0.5, 3.0)) * _bandnoise(rng, m, fs, 0.05, 0.5)[:, 0]
    beta = tilt * held + wander * hold_env
    # stretching attempts against the cramp, mostly in the second half
    for _ in range(int(rng.integers(0, 4)) if D > 20.0 else 0):
        ds = rng.uniform(2.0, 6.0)
        lo_s = max(tr, 0.3 * D)
        a = rng.uniform(lo_s, max(lo_s, D - tfall - ds))
        xs = np.clip((tau - a) / ds, 0.0, 1.0)
        beta -= sign * math.radians(rng.uniform(5.0, 20.0)) * np.sin(np.pi * xs) ** 2
    axis = act.p["axis"]
    lever = np.array([0.0, rng.uniform(0.1, 0.3), 0.0])
    acc = _lever_acc(beta, axis, lever, fs)
    # strained muscle: broadband vibration throughout
    acc += rng.uniform(1.0, 6.0) * 1e-3 * _bandnoise(rng, m, fs, 8.0, 25.0, 3) * hold_env[:, None]
    if rng.random() < 0.6:  # tremor 5-15 Hz, amplitude-modulated, slowly varying frequency
        f = rng.uniform(5.0, 15.0) * (1.0 + 0.05 * _bandnoise(rng, m, fs, 0.05, 0.5)[:, 0])
        ph = 2.0 * np.pi * np.cumsum(f) / fs
        am = np.clip(1.0 + 0.5 * _bandnoise(rng, m, fs, 0.1, 1.0)[:, 0], 0.0, None)
        trem = rng.uniform(2.0, 20.0) * 1e-3 * np.sin(ph) * am * hold_env
        acc += trem[:, None] * _random_dir(rng)[None, :]
    if rng.random() < 0.5:  # 1-2 Hz irregular shaking in bursts
        bursts = _mj(0.5 + 2.0 * _bandnoise(rng, m, fs, 0.02, 0.2)[:, 0])
        shake = rng.uniform(5.0, 50.0) * 1e-3 * _bandnoise(rng, m, fs, 1.0, 2.0, 3) * (bursts * hold_env)[:, None]
        acc += shake
    return _Piece(tf, beta=beta, axis=axis, acc=acc)


def _render_posture(act: _Act, rng: np.random.Generator, fs: float, s: NightSpec) -> _Piece:
    tf, tau = _grid(act, fs)
    D = act.end - act.start
    (th0, ph0), (th1, _) = act.p["pose0"], act.p["pose1"]
    x = np.clip(tau / D, 0.0, 1.0)
    sm = _mj(x)
    bump = np.sin(np.pi * x) ** 2
    theta = th0 + (th1 - th0) * sm + rng.uniform(5.0, 35.0) * bump
    phi = ph0 + act.p["sign"] * act.p["mag"] * sm
    acc = rng.uniform(0.03, 0.25) * _bandnoise(rng, len(tau), fs, 0.5, 5.0, 3) * bump[:, None]
    return _Piece(tf, theta=theta, phi=phi, acc=acc)


def _render_oob(act: _Act, rng: np.random.Generator, fs: float, s: NightSpec) -> _Piece:
    """Sit up, sit, stand, walk/stand/sit, come back, sit, lie down (per mode)."""
    tf, tau = _grid(act, fs)
    m = len(tau)
    D = act.end - act.start
    mode = act.p["mode"]
    (th0, ph0), (th1, ph1) = act.p["pose0"], act.p["pose1"]
    sit = rng.uniform(72.0, 88.0)
    stand = 90.0 + rng.uniform(-3.0, 3.0)
    head: list[tuple[str, float, float, float]] = []  # (what, duration, target theta, target phi)
    tail: list[tuple[str, float, float, float]] = []
    if mode in ("leave", "trip"):
        head = [("move", rng.uniform(2.0, 5.0), sit, 0.0), ("hold", rng.uniform(3.0, 25.0), sit, 0.0)]
        head += [("move", rng.uniform(1.0, 2.5), stand, 0.0)]
    if mode in ("arrive", "trip"):
        tail = [("move", rng.uniform(1.0, 2.5), sit, 0.0), ("hold", rng.uniform(3.0, 20.0), sit, 0.0)]
        tail += [("move", rng.uniform(2.0, 5.0), th1, ph1)]
    fixed = sum(p[1] for p in head + tail)
    if D - fixed < 20.0:  # shrink the sitting holds so there is time to walk
        k = max(0.05, 1.0 - (fixed - D + 20.0) / max(1e-9, sum(p[1] for p in head + tail if p[0] == "hold")))
        head = [(w, d * k if w == "hold" else d, a, b) for w, d, a, b in head]
        tail = [(w, d * k if w == "hold" else d, a, b) for w, d, a, b in tail]
        fixed = sum(p[1] for p in head + tail)
    middle: list[tuple[str, float, float, float]] = []
    left = max(1.0, D - fixed)
    toilet = mode == "trip"
    while left > 0.0:
        d = min(left, rng.uniform(5.0, 60.0))
        middle.append(("walk", d, stand, 0.0))
        left -= d
        if left <= 0.0:
            break
        if toilet and left > 40.0:
            toilet = False
            d = min(left - 10.0, rng.uniform(30.0, 150.0))
            seat = rng.uniform(65.0, 85.0)
            middle += [("move", 1.5, seat, 0.0), ("hold", max(1.0, d - 3.0), seat, 0.0), ("move", 1.5, stand, 0.0)]
        else:
            d = min(left, rng.uniform(3.0, 40.0))
            middle.append(("hold", d, stand, 0.0))
        left -= d
    theta = np.full(m, th0)
    phi = np.full(m, ph0)
    acc = np.zeros((m, 3))
    f_g = rng.uniform(0.8, 1.0)
    a_sw = rng.uniform(20.0, 32.0)
    h2, c2 = rng.uniform(0.0, 0.3), rng.uniform(0.0, 2 * np.pi)
    a_imp, r_contra = rng.uniform(0.3, 1.5), rng.uniform(0.15, 0.4)
    f_imp, tau_imp = rng.uniform(12.0, 25.0), rng.uniform(0.015, 0.04)
    d_imp = _unit(np.array([rng.uniform(-0.5, 0.5), 1.0, rng.uniform(-0.2, 0.2)]))
    kt = np.arange(0.0, 0.2, 1.0 / fs)
    kern = np.exp(-kt / tau_imp) * np.sin(2 * np.pi * f_imp * kt)
    kern /= max(np.max(np.abs(kern)), 1e-9)
    lever = rng.uniform(0.15, 0.3)
    t_cur, th_c, ph_c = 0.0, th0, ph0
    for what, d, th_t, ph_t in head + middle + tail:
        i0, i1 = np.searchsorted(tau, [t_cur, t_cur + d])
        tt = tau[i0:i1] - t_cur
        k = i1 - i0
        if what == "move":
            sm = _mj(tt / d)
            dph = _wrap(ph_t - ph_c)
            theta[i0:i1] = th_c + (th_t - th_c) * sm
            phi[i0:i1] = ph_c + dph * sm
            acc[i0:i1] += (
                rng.uniform(0.08, 0.35)
                * _bandnoise(rng, k, fs, 0.5, 6.0, 3)
                * (np.sin(np.pi * np.clip(tt / d, 0, 1)) ** 2)[:, None]
            )
            th_c, ph_c = th_t, ph_c + dph
        elif what == "hold":
            theta[i0:i1] = th_c + rng.uniform(0.3, 1.5) * _bandnoise(rng, k, fs, 0.1, 0.6)[:, 0]
            phi[i0:i1] = ph_c
            acc[i0:i1] += rng.uniform(2.0, 8.0) * 1e-3 * _bandnoise(rng, k, fs, 0.5, 5.0, 3)
        else:  # walk
            fvar = f_g * (1.0 + 0.04 * _bandnoise(rng, k, fs, 0.05, 0.5)[:, 0])
            ph = 2 * np.pi * np.cumsum(fvar) / fs + rng.uniform(0.0, 2 * np.pi)
            env = _mj(tt / 1.2) * _mj((d - tt) / 1.2)
            alpha = env * a_sw * (np.sin(ph) + h2 * np.sin(2 * ph + c2))
            theta[i0:i1] = th_c + alpha
            phi[i0:i1] = ph_c
            al = np.radians(alpha)
            a1 = np.gradient(al, 1.0 / fs) if k > 1 else np.zeros(k)
            a2 = np.gradient(a1, 1.0 / fs) if k > 1 else np.zeros(k)
            acc[i0:i1, 0] += lever * a2 / G0
            acc[i0:i1, 1] += lever * a1 * a1 / G0
            imp = np.zeros(k)
            for off, ratio in ((0.5 * np.pi, 1.0), (1.5 * np.pi, r_contra)):
                hits = np.flatnonzero(np.diff(np.floor((ph - off) / (2 * np.pi))) > 0) + 1
                imp[hits] += ratio * a_imp * np.clip(1.0 + 0.15 * rng.standard_normal(len(hits)), 0.5, 1.5)
            imp *= env
            acc[i0:i1] += np.convolve(imp, kern)[:k, None] * d_imp[None, :]
        t_cur += d
    i0 = int(np.searchsorted(tau, t_cur))
    theta[i0:] = th_c
    phi[i0:] = ph_c
    return _Piece(tf, theta=theta, phi=phi, acc=acc)


def _render_held_cramp(act: _Act, rng: np.random.Generator, fs: float, s: NightSpec) -> _Piece:
    """A cramp without a tremor the sensor resolves: the shin turned and held, a slow strained wander,
    2-6 strained movements (a jolt, then a push of 3-15 deg and back) inside, and the release back
    close to where it was."""
    tf, tau = _grid(act, fs)
    m = len(tau)
    D = act.end - act.start
    tr = rng.uniform(0.5, 3.0)
    tfall = rng.uniform(1.0, min(5.0, D / 4.0))
    res, sign = act.p["res"], act.p["sign"]
    held = _mj(tau / tr) - (1.0 - res) * _mj((tau - (D - tfall)) / tfall)
    inside = ((tau >= 0) & (tau <= D)).astype(float)
    hold_env = _mj(tau / tr) * _mj((D - tau) / tfall) * inside
    wander = math.radians(rng.uniform(0.05, 2.0)) * _bandnoise(rng, m, fs, 0.02, 0.2)[:, 0] * hold_env
    beta = math.radians(act.p["amp"]) * sign * held + wander
    acc = np.zeros((m, 3))
    lo_s, hi_s = tr + 1.0, D - tfall - 1.0
    for _ in range(int(rng.integers(2, 7))):
        ds = rng.uniform(1.0, 5.0)
        if hi_s - ds <= lo_s:
            break
        a = rng.uniform(lo_s, hi_s - ds)
        xs = np.clip((tau - a) / ds, 0.0, 1.0)
        beta += float(rng.choice([-1.0, 1.0])) * math.radians(rng.uniform(3.0, 15.0)) * np.sin(np.pi * xs) ** 2
        jd = rng.uniform(0.3, 1.0)
        jolt = np.clip((tau - a) / jd, 0.0, 1.0)
        env = np.sin(np.pi * jolt) ** 2 * ((tau >= a) & (tau <= a + jd))
        acc += rng.uniform(0.01, 0.06) * _bandnoise(rng, m, fs, 2.0, 8.0, 3) * env[:, None]
    axis = act.p["axis"]
    lever = np.array([0.0, rng.uniform(0.1, 0.3), 0.0])
    acc += _lever_acc(beta, axis, lever, fs)
    # the strain itself sits above what the sensor resolves, or barely reaches it
    acc += rng.uniform(0.0, 2.0) * 1e-3 * _bandnoise(rng, m, fs, 15.0, 40.0, 3) * hold_env[:, None]
    return _Piece(tf, beta=beta, axis=axis, acc=acc)


_RENDER = {
    "twitch": _render_twitch,
    "leg_movement": _render_lm,
    "contraction": _render_cramp,
    "posture_change": _render_posture,
    "out_of_bed": _render_oob,
}


def _mount_matrix(s: NightSpec, rng: np.random.Generator) -> np.ndarray:
    """R with v_sensor = R @ v_shin: strap rotation about the shin axis, misalignment, axis assignment."""
    r_strap = _rot_matrix(np.array([0.0, 1.0, 0.0]), math.radians(s.strap_deg))
    r_mis = _rot_matrix(_random_dir(rng), math.radians(s.misalign_deg))
    name = s.shin_axis.strip().lower()
    sign = -1.0 if name.startswith("-") else 1.0
    target = {"x": 0, "y": 1, "z": 2}[name.lstrip("+-")]
    perms = []
    for p in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        for sg in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).T.reshape(-1, 3):
            m = np.zeros((3, 3))
            m[list(p), [0, 1, 2]] = sg
            if np.linalg.det(m) > 0 and m[target, 1] == sign:
                perms.append(m)
    perm = perms[int(rng.integers(len(perms)))]
    return perm @ r_mis @ r_strap


def _render(
    s: NightSpec, plan: _Plan, rng: np.random.Generator, rng_noise: np.random.Generator, rng_style: np.random.Generator
) -> tuple:
    rate = s.rate_hz * (1.0 + rng.uniform(-2e-3, 2e-3))  # the sensor's clock is not exact
    n = int(plan.T * rate)
    t = (np.arange(n) + rng.uniform(0.0, 1.0)) / rate
    fs = max(400.0, 4.0 * s.rate_hz)
    sos = signal.butter(2, min(s.bandwidth * s.rate_hz, 0.45 * fs), fs=fs, output="sos")
    zi0 = signal.sosfilt_zi(sos)

    def lpf(x: np.ndarray) -> np.ndarray:
        x2 = x.reshape(len(x), -1)
        out = np.empty_like(x2)
        for j in range(x2.shape[1]):
            out[:, j], _ = signal.sosfilt(sos, x2[:, j], zi=zi0 * x2[0, j])
        return out.reshape(x.shape)

    seg_t = np.array([g[0] for g in plan.segments])
    k = np.searchsorted(seg_t, t, "right") - 1
    theta = np.array([g[1] for g in plan.segments])[k]
    phi = np.array([g[2] for g in plan.segments])[k]
    acc = np.zeros((n, 3))
    perturb: list[tuple[int, int, np.ndarray, np.ndarray]] = []
    for act in plan.acts:
        pc = _RENDER[act.kind](act, rng, fs, s)
        if act.p.get("style") == "held":  # rendered above all the same, to keep the later draws
            pc = _render_held_cramp(act, rng_style, fs, s)
        i0, i1 = np.searchsorted(t, [pc.tf[0], pc.tf[-1]])
        ts = t[i0:i1]
        if i1 <= i0:
            continue
        if pc.theta is not None and pc.phi is not None:
            theta[i0:i1] = np.interp(ts, pc.tf, lpf(pc.theta))
            phi[i0:i1] = np.interp(ts, pc.tf, lpf(pc.phi))
        if pc.beta is not None and pc.axis is not None:
            # Up to end + PAD/2, where the baseline takes over (with any residual tilt, see _plan).
            j1 = int(np.searchsorted(t, act.end + 0.5 * _PAD))
            perturb.append((int(i0), j1, np.interp(t[i0:j1], pc.tf, lpf(pc.beta)), pc.axis))
        if pc.acc is not None:
            fa = lpf(pc.acc)
            for j in range(3):
                acc[i0:i1, j] += np.interp(ts, pc.tf, fa[:, j])
    th, ph = np.radians(theta), np.radians(phi)
    cth = np.cos(th)
    up = np.column_stack((cth * np.cos(ph), np.sin(th), cth * np.sin(ph)))
    del th, ph, cth
    for i0, i1, beta, axis in perturb:
        up[i0:i1] = _rotate(up[i0:i1], axis, beta)

    # bed partner: vertical mattress vibration (along "up"), no tilt
    confounders: list[tuple[float, float, str]] = []
    bursts: list[tuple[float, float, float]] = []
    for _ in range(s.partner_bursts):
        d = float(np.clip(rng.lognormal(math.log(6.0), 0.9), 1.5, 60.0))
        bursts.append((rng.uniform(0.0, plan.T - d), d, float(np.exp(rng.uniform(math.log(3.0), math.log(30.0))))))
    if s.partner_periodic:
        a = rng.uniform(0.0, 0.8 * plan.T)
        period = rng.uniform(15.0, 40.0)
        for _ in range(int(rng.integers(10, 61))):
            a += period * math.exp(rng.normal(0.0, 0.1))
            if a > plan.T - 5.0:
                break
            bursts.append((a, rng.uniform(1.0, 3.0), rng.uniform(3.0, 15.0)))
    for a, d, amp_mg in bursts:
        i0, i1 = np.searchsorted(t, [a, a + d])
        if i1 - i0 < 4:
            continue
        lo = rng.uniform(1.0, 4.0)
        hi = min(lo + rng.uniform(0.5, 2.0), 6.0)
        tt = t[i0:i1] - a
        ramp = min(rng.uniform(0.3, 2.0), d / 3)
        env = _mj(tt / ramp) * _mj((d - tt) / ramp)
        av = amp_mg * 1e-3 * _bandnoise(rng, i1 - i0, rate, lo, hi)[:, 0] * env
        acc[i0:i1] += av[:, None] * up[i0:i1]
        confounders.append((a, a + d, "partner"))

    # faint ballistocardiogram while lying (mostly along the shin)
    hr = rng.uniform(50.0, 75.0) / 60.0
    bcg_amp = rng.uniform(0.0, 0.8) * 1e-3
    if bcg_amp > 0:
        lying = np.abs(theta) < 45.0
        phs = 2 * np.pi * hr * t + 0.4 * np.sin(2 * np.pi * t / rng.uniform(200.0, 600.0))
        bcg = bcg_amp * (np.sin(phs) + 0.5 * np.sin(2 * phs + 1.0)) * lying
        acc[:, 1] += bcg

    f = up + acc
    del up, acc
    R = _mount_matrix(s, rng)
    xyz = f @ R.T
    # calibration errors, drift, noise
    scale = 1.0 + rng.uniform(-0.015, 0.015, 3)
    bias = rng.uniform(-0.015, 0.015, 3)
    tc = np.arange(0.0, plan.T + 20.0, 10.0)
    drift = np.zeros((len(tc), 3))
    dm = s.drift_mg * 1e-3
    for j in range(3):
        drift[:, j] = rng.uniform(-dm, dm) * (1.0 - np.exp(-tc / rng.uniform(300.0, 2400.0)))
        for _ in range(3):
            drift[:, j] += rng.uniform(0.0, dm / 2) * np.sin(
                2 * np.pi * tc / rng.uniform(3600.0, 8 * 3600.0) + rng.uniform(0, 2 * np.pi)
            )
    xyz *= scale
    xyz += bias
    for j in range(3):
        xyz[:, j] += np.interp(t, tc, drift[:, j])
    sd = s.noise_mg * 1e-3 * rng.uniform(0.85, 1.15, 3)
    xyz += rng_noise.standard_normal((n, 3)) * sd
    lsb = 2.0 * s.range_g / 2**s.bits
    np.round(xyz / lsb, out=xyz)
    xyz *= lsb
    np.clip(xyz, -s.range_g, s.range_g - lsb, out=xyz)

    # timestamps: jitter, late bursts (squeezed after a delay), strictly increasing
    dt = 1.0 / rate
    rep = t + np.clip(rng.normal(0.0, s.jitter * dt, n), -0.45 * dt, 0.45 * dt)
    for a, d in plan.late:
        i0, i1 = np.searchsorted(t, [a, a + d])
        rep[i0:i1] = a + d + (t[i0:i1] - a) * 0.02
        confounders.append((a, a + d, "late_burst"))
    eps = 2e-5
    ramp = np.arange(n) * eps
    rep = np.maximum.accumulate(rep - ramp) + ramp
    keep = np.ones(n, dtype=bool)
    for a, b in plan.gaps:
        i0, i1 = np.searchsorted(t, [a, b])
        keep[i0:i1] = False
        confounders.append((a, b, "gap"))
    info = {"rate_actual_hz": rate, "lsb_g": lsb, "bias_g": bias.tolist(), "scale": scale.tolist()}
    return rep[keep], xyz[keep], sorted(confounders), info


# --------------------------------------------------------------------------------------------------
# public API


def generate_night(seed: int = 0, *, hours: float = 8.0, rate_hz: float = 52.0, **overrides: Any) -> Night:
    """Generate one labelled night. Deterministic for a seed and the given overrides (NightSpec fields)."""
    if not (0.1 <= hours <= 48.0):
        raise ValueError(f"hours must be in [0.1, 48], got {hours}")
    if not (1.0 <= rate_hz <= 2000.0):
        raise ValueError(f"rate_hz must be in [1, 2000], got {rate_hz}")
    spec = NightSpec(hours=float(hours), rate_hz=float(rate_hz), **overrides)
    rng_spec, rng_plan, rng_render, rng_noise, rng_style = (
        np.random.default_rng(ss) for ss in np.random.SeedSequence(seed).spawn(5)
    )
    s = spec.resolved(rng_spec)
    plan = _plan(s, rng_plan, rng_style)
    rel_t, xyz, conf, info = _render(s, plan, rng_render, rng_noise, rng_style)
    t0 = float(s.start)
    events = [TruthEvent(t0 + a.start, t0 + a.end, a.kind, bool(a.periodic)) for a in plan.acts]
    return Night(
        t=t0 + rel_t,
        xyz=xyz,
        events=events,
        sleep_start=t0 + plan.sleep_start,
        sleep_end=t0 + plan.sleep_end,
        rate_hz=float(s.rate_hz),
        seed=int(seed),
        confounders=[TruthEvent(t0 + a, t0 + b, k) for a, b, k in conf],
        params={**asdict(s), **info},
    )


def write_csv(night: Night, path: str | Path) -> None:
    """Write ``timestamp,ax,ay,az`` (timestamp with 6 decimals, g with 5), formatted in large blocks."""
    data = np.column_stack((night.t, night.xyz))
    row = "%.6f,%.5f,%.5f,%.5f\n"
    chunk = 100_000
    with open(path, "w", encoding="ascii", newline="") as fh:
        fh.write("timestamp,ax,ay,az\n")
        for i in range(0, len(data), chunk):
            blk = data[i : i + chunk]
            fh.write((row * len(blk)) % tuple(blk.ravel().tolist()))


def truth_dict(night: Night) -> dict[str, Any]:
    """The ground truth as a JSON-ready dict."""
    params = {k: v for k, v in night.params.items() if isinstance(v, str | int | float | bool | list)}
    return {
        "seed": night.seed,
        "rate_hz": night.rate_hz,
        "start": float(night.t[0]) if len(night.t) else None,
        "end": float(night.t[-1]) if len(night.t) else None,
        "sleep_start": night.sleep_start,
        "sleep_end": night.sleep_end,
        "events": [e.to_dict() for e in night.events],
        "confounders": [e.to_dict() for e in night.confounders],
        "params": params,
    }


def write_truth_json(night: Night, path: str | Path) -> None:
    """Write the ground truth (events, sleep window, confounders, settings) as JSON."""
    Path(path).write_text(json.dumps(truth_dict(night), indent=1) + "\n", encoding="utf-8")


def read_truth_json(path: str | Path) -> tuple[list[TruthEvent], float, float]:
    """Read back ``(events, sleep_start, sleep_end)`` from :func:`write_truth_json` output."""
    d = json.loads(Path(path).read_text(encoding="utf-8"))
    ev = [TruthEvent(e["start"], e["end"], e["kind"], bool(e.get("periodic", False))) for e in d["events"]]
    return ev, float(d["sleep_start"]), float(d["sleep_end"])


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m detector.synthetic", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--rate", type=float, default=52.0, help="sample rate, Hz (25-200)")
    ap.add_argument("--out", required=True, help="CSV file to write")
    ap.add_argument("--truth", help="JSON file for the ground truth")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a NightSpec knob, e.g. --set gaps=3"
    )
    args = ap.parse_args(argv)
    overrides: dict[str, Any] = {}
    names = {f.name for f in fields(NightSpec)} - {"hours", "rate_hz"}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in names:
            ap.error(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}")
        overrides[key] = _parse_value(value)
    night = generate_night(args.seed, hours=args.hours, rate_hz=args.rate, **overrides)
    write_csv(night, args.out)
    if args.truth:
        write_truth_json(night, args.truth)
    counts = {k: sum(e.kind == k for e in night.events) for k in (*KINDS_COUNTED, "posture_change", "out_of_bed")}
    print(f"{args.out}: {len(night.t)} samples, " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
