"""Every setting of a night: given as a keyword, or drawn from the seed (ranges and sources in README.md).

Each knob is drawn from its own random stream (``stream(seed, name)``), so giving one knob does not
change how any other is drawn: the same seed with ``range_g=2`` and ``range_g=8`` has the same events.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent random stream for one purpose of one night."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])


@dataclass
class Knobs:
    """``None`` means "draw from the seed". Ranges are in the comments; see README.md for why."""

    # sensor
    noise_mg: float | None = None  # white noise per axis, 1-6 mg
    bias_mg: float | None = None  # largest constant zero-g offset per axis, 0-8 mg
    gain_error: float | None = None  # largest per-axis sensitivity error, 0-0.8 %
    offset_wander_mg: float | None = None  # slow thermal wander of the offsets, 0.3-3 mg
    range_g: float | None = None  # 2, 4 or 8
    bits: int | None = None  # 12, 14 or 16
    bandwidth: float | None = None  # anti-alias cut-off as a fraction of the rate, 0.2-0.45
    mounting: Any = None  # "upright", "strap", "random" or a 3x3 rotation (sensor axes in the shin frame)
    strap_slip: bool | None = None  # the strap turns a few degrees once in the night (25 % of nights)
    # clock
    jitter: float | None = None  # timestamp jitter SD as a fraction of the sample interval, 0-0.3
    drift_ppm: float | None = None  # sensor clock rate error, -80..80 ppm
    wander_s: float | None = None  # slow clock wander amplitude, 0-0.3 s
    gap_s: float | None = None  # one data gap of this length (0: none; 35 % of nights 3-90 s)
    # night structure
    start_unix: float | None = None  # recording start, 21:30-00:30 UTC on 2026-01-05 + seed days
    awake_start_min: float | None = None  # lying awake before sleep onset: 5-40 min (15 %: 1-5 min)
    reading: bool | None = None  # part of that time reading with knees raised and legs still (30 %)
    awake_end_min: float | None = None  # lying awake after the final awakening: 0 (35 %) or 2-30 min
    cycle_min: float | None = None  # sleep cycle length, 80-110 min
    posture_per_h: float | None = None  # roll-overs per hour of sleep, 0.8-3
    # events
    plm: bool | None = None  # a night with periodic leg movements in sleep (45 %)
    plm_series_per_h: float | None = None  # series per hour of sleep on PLM nights, 0.4-1.5
    plm_imi_s: float | None = None  # this night's typical onset-to-onset interval, 15-40 s
    lm_amp_deg: float | None = None  # this person's typical shin rotation in a leg movement, 1.5-10 deg
    lm_ankle_only: float | None = None  # share of leg movements that barely move the shin, 0.1-0.45
    isolated_lm_per_h: float | None = None  # non-periodic leg movements in sleep, 1-8 per hour
    restless_lm_per_min: float | None = None  # leg movements while lying awake, 0.1-0.6 per minute
    twitch_per_h: float | None = None  # isolated twitches in sleep (fragmentary myoclonus), 2-12 per hour
    rem_twitch_clusters: float | None = None  # clusters of twitches per REM period, 0-4
    hypnic_jerks: int | None = None  # at sleep onset: 0 (55 %), 1 (30 %), 2 (15 %)
    cramps: int | None = None  # per night: 0 (30 %), 1 (40 %), 2 (22 %), 3 (8 %)
    cramp_tremor: float | None = None  # chance a cramp shows a tremor at the shin, 0.2-0.8
    cramp_getup: float | None = None  # chance a cramp is followed by standing on the leg, 0.2-0.6
    toilet_trips: int | None = None  # getting up at night, Poisson with mean 0.3 per hour of sleep
    # things that are not events
    partner: bool | None = None  # a bed partner (50 %)
    partner_per_h: float | None = None  # partner movements per hour, 2-10
    heart_bpm: float | None = None  # 50-75
    bcg_mg: float | None = None  # heartbeat micro-motion at the shin, 0.3-1.5 mg
    breath_per_min: float | None = None  # 11-18

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def resolve(self, seed: int, hours: float) -> Knobs:
        """A copy with every ``None`` drawn from the seed."""
        out = Knobs(**asdict(self))
        for name, draw in _DRAWS.items():
            rng = stream(seed, "knob:" + name)
            value = draw(rng, hours)  # always drawn, so one knob given leaves the others alone
            if getattr(out, name) is None:
                setattr(out, name, value)
        out.mounting = _mounting(out.mounting, stream(seed, "knob:mounting_matrix"))
        return out

    def to_params(self) -> dict[str, Any]:
        d = asdict(self)
        d["mounting"] = np.asarray(self.mounting).round(12).tolist()
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in d.items()}


def _u(a: float, b: float):
    return lambda rng, hours: float(rng.uniform(a, b))


def _p(p: float):
    return lambda rng, hours: bool(rng.random() < p)


def _choice(values, probs):
    return lambda rng, hours: values[int(rng.choice(len(values), p=probs))]


def _awake_start(rng: np.random.Generator, hours: float) -> float:
    return float(rng.uniform(5.0, 40.0) if rng.random() < 0.85 else rng.uniform(1.0, 5.0))


def _awake_end(rng: np.random.Generator, hours: float) -> float:
    return 0.0 if rng.random() < 0.35 else float(rng.uniform(2.0, 30.0))


def _gap(rng: np.random.Generator, hours: float) -> float:
    return float(rng.uniform(3.0, 90.0)) if rng.random() < 0.35 else 0.0


def _start(rng: np.random.Generator, hours: float) -> float:
    day0 = 1767571200.0  # 2026-01-05 00:00 UTC
    return day0 + 86400.0 * int(rng.integers(0, 60)) + rng.uniform(21.5, 24.5) * 3600.0


def _toilet(rng: np.random.Generator, hours: float) -> int:
    return int(min(3, rng.poisson(0.3 * hours)))


_DRAWS = {
    "noise_mg": _u(1.0, 6.0),
    "bias_mg": _u(0.0, 8.0),
    "gain_error": _u(0.0, 0.008),
    "offset_wander_mg": _u(0.3, 3.0),
    "range_g": _choice([2.0, 4.0, 8.0], [0.35, 0.25, 0.4]),
    "bits": _choice([12, 14, 16], [0.25, 0.15, 0.6]),
    "bandwidth": _u(0.2, 0.45),
    "mounting": _choice(["strap", "random"], [0.6, 0.4]),
    "strap_slip": _p(0.25),
    "jitter": _u(0.0, 0.3),
    "drift_ppm": _u(-80.0, 80.0),
    "wander_s": _u(0.0, 0.3),
    "gap_s": _gap,
    "start_unix": _start,
    "awake_start_min": _awake_start,
    "reading": _p(0.3),
    "awake_end_min": _awake_end,
    "cycle_min": _u(80.0, 110.0),
    "posture_per_h": _u(0.8, 3.0),
    "plm": _p(0.45),
    "plm_series_per_h": _u(0.4, 1.5),
    "plm_imi_s": _u(15.0, 40.0),
    "lm_amp_deg": lambda rng, hours: float(np.exp(rng.uniform(np.log(1.5), np.log(10.0)))),
    "lm_ankle_only": _u(0.1, 0.45),
    "isolated_lm_per_h": _u(1.0, 8.0),
    "restless_lm_per_min": _u(0.1, 0.6),
    "twitch_per_h": _u(2.0, 12.0),
    "rem_twitch_clusters": _u(0.0, 4.0),
    "hypnic_jerks": _choice([0, 1, 2], [0.55, 0.3, 0.15]),
    "cramps": _choice([0, 1, 2, 3], [0.3, 0.4, 0.22, 0.08]),
    "cramp_tremor": _u(0.2, 0.8),
    "cramp_getup": _u(0.2, 0.6),
    "toilet_trips": _toilet,
    "partner": _p(0.5),
    "partner_per_h": _u(2.0, 10.0),
    "heart_bpm": _u(50.0, 75.0),
    "bcg_mg": _u(0.3, 1.5),
    "breath_per_min": _u(11.0, 18.0),
}


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def axis_angle(axis: np.ndarray, deg: float) -> np.ndarray:
    """Rotation matrix about ``axis`` by ``deg`` (Rodrigues)."""
    k = np.asarray(axis, dtype=float)
    k = k / np.linalg.norm(k)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    a = np.radians(deg)
    return np.eye(3) + np.sin(a) * kx + (1.0 - np.cos(a)) * kx @ kx


def _mounting(value: Any, rng: np.random.Generator) -> np.ndarray:
    """The sensor's axes in the shin frame (columns), as a rotation matrix."""
    strap_turn = rng.uniform(0.0, 360.0)
    flipped = rng.random() < 0.25
    tilt_axis = rng.normal(size=3)
    tilt = rng.uniform(0.0, 8.0)
    face = rng.choice([0.0, 0.0, 25.0, -25.0])  # on the front of the shin or a little to one side
    rand = _random_rotation(rng)
    if isinstance(value, str):
        if value == "upright":
            return np.eye(3)
        if value == "random":
            return rand
        if value == "strap":
            # the sensor face on the front of the shin (shin z), turned about that normal, maybe upside down
            m = axis_angle(np.array([1.0, 0.0, 0.0]), face) @ axis_angle(np.array([0.0, 0.0, 1.0]), strap_turn)
            if flipped:
                m = m @ np.diag([1.0, -1.0, -1.0])
            return axis_angle(tilt_axis, tilt) @ m
        raise ValueError(f"fieldnights: mounting {value!r}: expected 'upright', 'strap', 'random' or a 3x3 rotation")
    m = np.asarray(value, dtype=float)
    if m.shape != (3, 3) or not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
        raise ValueError("fieldnights: mounting must be a proper 3x3 rotation matrix")
    return m
