"""Movements made lying in bed: twitches, leg movements, turning over, cramps, and a partner moving the mattress.

Each class draws its own parameters from its own random generator when it is made (so a night's plan is
fixed before anything is rendered), and renders a :class:`~simnights.profiles.Track` on a uniform grid
starting from whatever posture the leg is in at that moment. ``start``/``end`` are the labelled span
(seconds of true time from the start of the recording); nothing moves outside it except the mattress
settling of a partner confounder. Sources of the numbers: ``simnights/README.md``.
"""

from __future__ import annotations

import math

import numpy as np

from simnights.postures import LYING_P, RAD, Posture, draw_lying, lever, sitting_in_bed
from simnights.profiles import Track, bandnoise, keyframes, lowpass_noise, ring, unit, window

G0 = 9.80665


class Motion:
    """One planned movement. ``kind`` is the truth label (None for a confounder, named in ``confounder``)."""

    kind: str | None = None
    confounder: str | None = None
    pre = 0.6  # s of still posture rendered before (sensor filter run-in)
    post = 1.0
    lying_weights: tuple[float, ...] = LYING_P  # the sleeper's preferences, set by the plan

    def __init__(self, rng: np.random.Generator, start: float, duration: float) -> None:
        self.rng = rng
        self.start = float(start)
        self.end = float(start + duration)
        self.end_posture_name = ""

    @property
    def span(self) -> tuple[float, float]:
        return self.start - self.pre, self.end + self.post

    def render(self, t: np.ndarray, p0: Posture) -> Track:
        raise NotImplementedError

    def _still(self, t: np.ndarray, p0: Posture, joint: str = "knee") -> Track:
        n = len(t)
        self.end_posture_name = p0.name
        return Track(
            np.full(n, p0.elev), np.full(n, p0.roll), np.full(n, p0.yaw), None, np.zeros((n, 3)), lever(self.rng, joint)
        )


def _axis_with_lever(rng: np.random.Generator, lev: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """A rotation axis (shin frame) about which the sensor actually travels (radius >= 40 % of the lever)."""
    for _ in range(64):
        a = unit(rng.normal(size=3) + (bias if bias is not None else 0.0))
        if np.linalg.norm(np.cross(a, lev)) >= 0.4 * np.linalg.norm(lev):
            return a
    return unit(np.cross(lev, [0.0, 0.0, 1.0]) + [0.0, 0.0, 1.0])


class Twitch(Motion):
    """A myoclonic jerk (< 0.5 s): a quick rotation of the leg about any axis, mostly returning.

    Sleep starts / REM twitches: EMG bursts of 75-250 ms (hypnic jerks), the limb moving for 0.1-0.45 s.
    Gentle ones peak at 0.03-0.15 g of movement, strong ones (a hypnic jerk of the whole leg) 0.3-2 g.
    """

    kind = "twitch"

    def __init__(self, rng: np.random.Generator, start: float, strong: bool) -> None:
        d = rng.uniform(0.12, 0.45)
        super().__init__(rng, start, d)
        self.strong = strong
        self.joint = str(rng.choice(["knee", "heel", "hip"], p=[0.4, 0.35, 0.25]))
        self.lev = lever(rng, self.joint)
        self.axis = _axis_with_lever(rng, self.lev)
        self.peak_g = rng.uniform(0.3, 2.0) if strong else rng.uniform(0.03, 0.15)
        self.rise = rng.uniform(0.3, 0.55) * d
        radius = float(np.linalg.norm(np.cross(self.axis, self.lev)))
        amp = self.peak_g * G0 * self.rise**2 / (5.7735 * radius)
        self.amp = min(amp, 20 * RAD)
        self.residual = rng.uniform(-0.1, 0.4)
        self.bounce = rng.uniform(0.0, 0.35)  # overshoot on the way back (limb springing off the mattress)

    def render(self, t: np.ndarray, p0: Posture) -> Track:
        tr = self.start + self.rise
        back = self.start + self.rise + 0.6 * (self.end - tr)
        prof = keyframes(t, [self.start, tr, back, self.end], [0.0, 1.0, -self.bounce, self.residual])
        tk = self._still(t, p0, self.joint)
        tk.lever = self.lev
        tk.delta = prof[:, None] * (self.amp * self.axis)[None, :]
        return tk


class LegMovement(Motion):
    """A leg movement of 0.5-10 s (AASM/WASM LM): dorsiflexion of the ankle and toes, often with flexion at the
    knee and hip (the triple-flexion pattern of PLMS). On the shin: a rotation that rises quickly (the EMG
    onset is abrupt: 0.15-0.6 s), is held with a little wobble, and mostly returns (0.25-1.2 s); the
    tibialis anterior under the sensor contracts (low mechanomyogram vibration, 8-25 Hz). ``style``:
    ``ankle`` (the shank barely turns, 0.6-2.5 deg), ``knee`` (3-20 deg), ``hip`` (the whole leg, 3-12 deg),
    or, awake only, ``rub`` (the other foot rubbing the shin: 1.5-4 Hz, 0.5-3 deg, as people with
    restless legs do)."""

    kind = "leg_movement"

    def __init__(
        self, rng: np.random.Generator, start: float, duration: float | None = None, awake: bool = False
    ) -> None:
        if duration is None:
            duration = float(np.clip(rng.lognormal(math.log(1.8), 0.6), 0.6, 9.5))
        super().__init__(rng, start, duration)
        self.periodic = False
        self.style = str(rng.choice(["ankle", "knee", "hip"], p=[0.3, 0.55, 0.15]))
        if awake and rng.random() < 0.3:
            self.style = "rub"
        joint = {"ankle": "heel", "knee": "heel", "hip": "hip", "rub": "knee"}[self.style]
        self.joint = joint
        self.lev = lever(rng, joint)
        lo, hi = {"ankle": (0.6, 2.5), "knee": (3.0, 20.0), "hip": (3.0, 12.0), "rub": (0.5, 3.0)}[self.style]
        self.amp = rng.uniform(lo, hi) * RAD
        # mostly a flexion (about the shin's lateral axis), some roll and yaw mixed in
        self.axis = unit(np.array([0.0, 0.0, 1.0]) * rng.choice([1.0, 1.0, 1.0, -1.0]) + rng.normal(0, 0.35, 3))
        d = duration
        self.t_rise = min(rng.uniform(0.15, 0.6), 0.35 * d)
        self.t_fall = min(rng.uniform(0.25, 1.2), 0.45 * d)
        self.hold_end = rng.uniform(0.7, 1.0)
        self.residual = rng.uniform(-0.1, 0.3)
        self.wobble = rng.uniform(0.03, 0.12)
        self.mmg_g = rng.uniform(0.0015, 0.006)
        self.rub_hz = rng.uniform(1.5, 4.0)

    def render(self, t: np.ndarray, p0: Posture) -> Track:
        s0, s1 = self.start, self.end
        a, b = s0 + self.t_rise, max(s0 + self.t_rise, s1 - self.t_fall)
        fs = 1.0 / float(t[1] - t[0])
        n = len(t)
        inside = window(t, s0, s1, 0.1)
        tk = self._still(t, p0, self.joint)
        tk.lever = self.lev
        if self.style == "rub":
            prof = np.sin(2 * np.pi * self.rub_hz * (t - s0)) * window(t, s0, s1, min(0.3, 0.3 * (s1 - s0)))
            tk.delta = prof[:, None] * (self.amp * unit(self.axis + [0.5, 0.0, 0.0]))[None, :]
            return tk
        prof = keyframes(t, [s0, a, b, s1], [0.0, 1.0, self.hold_end, self.residual])
        wob = lowpass_noise(self.rng, n, fs, 3.0) * window(t, a, b, 0.2) * self.wobble
        tk.delta = (prof + wob)[:, None] * (self.amp * self.axis)[None, :]
        mmg = bandnoise(self.rng, n, fs, 8.0, 25.0) * self.mmg_g * inside
        tk.extra = np.stack([0.2 * mmg, mmg, 0.4 * mmg[::-1]], axis=1)
        return tk


class PostureChange(Motion):
    """Turning over (1.5-6 s): the leg is lifted, rolled to another lying position and set down, and the
    mattress settles. Adults make 1.6 +- 0.7 such shifts an hour (Skarpsno 2017), 2-5 in PSG video studies
    (De Koninck 1992)."""

    kind = "posture_change"

    def __init__(
        self, rng: np.random.Generator, start: float, duration: float | None = None, sit_up: bool = False
    ) -> None:
        super().__init__(rng, start, duration if duration is not None else rng.uniform(1.5, 5.5))
        self.sit_up = sit_up  # to sitting up in bed, knees drawn up (else to a lying position)
        self.lift = rng.uniform(3, 20) * RAD
        self.slide = rng.normal(0, 0.12, 3) * [1, 1, 0.2]
        self.wobble = rng.uniform(0.3, 1.5) * RAD
        self.settle_mm = rng.uniform(1.0, 6.0)
        self.settle_hz = rng.uniform(1.5, 4.0)

    def render(self, t: np.ndarray, p0: Posture) -> Track:
        target = (
            sitting_in_bed(self.rng) if self.sit_up else draw_lying(self.rng, avoid=p0.name, weights=self.lying_weights)
        )
        self.end_posture_name = target.name
        s0, s1 = self.start, self.end
        d = s1 - s0
        droll = (target.roll - p0.roll + math.pi) % (2 * math.pi) - math.pi
        dyaw = (target.yaw - p0.yaw + math.pi) % (2 * math.pi) - math.pi
        roll = keyframes(t, [s0 + 0.15 * d, s0 + 0.8 * d], [p0.roll, p0.roll + droll])
        yaw = keyframes(t, [s0 + 0.1 * d, s0 + 0.85 * d], [p0.yaw, p0.yaw + dyaw])
        mid = p0.elev + self.lift + 0.5 * (target.elev - p0.elev)
        elev = keyframes(t, [s0, s0 + 0.45 * d, s1 - 0.15 * d], [p0.elev, mid, target.elev])
        fs = 1.0 / float(t[1] - t[0])
        n = len(t)
        inside = window(t, s0, s1, 0.25 * d)
        wob = lowpass_noise(self.rng, n, fs, 1.5) * self.wobble * inside
        pivot = keyframes(t, [s0, s1 - 0.2 * d], [0.0, 1.0])[:, None] * self.slide[None, :]
        settle = ring(t, s1 - 0.5, self.settle_hz, 0.12) * window(t, s0, s1, 0.05) * self.settle_mm / 1000.0
        pivot[:, 2] += settle
        return Track(elev + wob, roll + 0.5 * wob, yaw, None, pivot, lever(self.rng, "hip"))


class Cramp(Motion):
    """A nocturnal leg cramp (a contraction of 20 s to 3 min): the calf contracts and plantar-flexes the foot,
    the sleeper wakes in pain and draws the leg up or straightens it, holds it there straining against the
    cramp (repeated pushes to stretch the calf, sometimes rubbing it), and when it lets go the leg returns
    close to where it was. ``tremor``: the contracting muscle's tremor (7-18 Hz: ankle physiological tremor
    6-9 Hz, motor-unit firing 6-25 Hz, mean 14.5 Hz in cramps), small (4-25 mg), is added."""

    kind = "contraction"

    def __init__(self, rng: np.random.Generator, start: float, tremor: bool, duration: float | None = None) -> None:
        if duration is None:
            duration = float(np.clip(rng.lognormal(math.log(60.0), 0.55), 20.0, 180.0))
        super().__init__(rng, start, duration)
        self.tremor = tremor
        self.t_on = rng.uniform(0.6, 2.0)
        self.t_off = rng.uniform(1.5, 5.0)
        sign = 1.0 if rng.random() < 0.7 else -1.0  # drawn up (knee bends) or pushed straight
        self.shift = np.array([sign * rng.uniform(8, 40), rng.uniform(-30, 30), rng.uniform(-20, 20)]) * RAD
        self.back = rng.uniform(0.0, 0.2)
        self.joint = str(rng.choice(["knee", "heel"], p=[0.6, 0.4]))
        self.shake = rng.uniform(0.05, 0.25) * RAD
        self.strains: list[tuple[float, float, float, np.ndarray]] = []
        at = self.start + self.t_on + rng.uniform(0.5, 4.0)
        while at < self.end - self.t_off - 2.0:
            dur = rng.uniform(1.0, 4.0)
            amp = rng.uniform(2.0, 8.0) * RAD
            axis = unit(np.array([0.0, 0.3, 1.0]) + rng.normal(0, 0.4, 3))
            self.strains.append((at, dur, amp, axis))
            at += dur + rng.uniform(2.0, 12.0)
        self.rub = None
        if rng.random() < 0.4 and duration > 25:
            rs = self.start + rng.uniform(0.2, 0.6) * duration
            self.rub = (rs, rng.uniform(3.0, 10.0), rng.uniform(1.5, 3.5), rng.uniform(0.2, 0.8) * RAD)
        self.tremor_hz = rng.uniform(7.0, 18.0)
        self.tremor_g = rng.uniform(0.004, 0.025)
        self.tremor_dir = unit(np.array([0.2, 1.0, 0.6]) * rng.choice([-1, 1], 3) + rng.normal(0, 0.3, 3))

    def render(self, t: np.ndarray, p0: Posture) -> Track:
        s0, s1 = self.start, self.end
        hold0, hold1 = s0 + self.t_on, s1 - self.t_off
        rest = self.shift * self.back + self.rng.normal(0, 2.0, 3) * RAD
        fs = 1.0 / float(t[1] - t[0])
        n = len(t)
        env = window(t, s0, s1, 0.5)
        drift = lowpass_noise(self.rng, n, fs, 0.2) * 2.0 * RAD * window(t, hold0, hold1, 2.0)
        ang = [
            keyframes(t, [s0, hold0, hold1, s1], [0.0, self.shift[k], self.shift[k] * 0.9, rest[k]]) for k in range(3)
        ]
        delta = np.zeros((n, 3))
        strain_env = np.zeros(n)
        for at, dur, amp, axis in self.strains:
            bump = keyframes(t, [at, at + 0.55 * dur, at + dur], [0.0, 1.0, 0.0])
            delta += (bump * amp)[:, None] * axis[None, :]
            # the leg trembles while it strains (0.05-0.25 deg at 2-6 Hz)
            delta[:, 2] += bandnoise(self.rng, n, fs, 2.0, 6.0) * bump * self.shake
            strain_env = np.maximum(strain_env, bump)
        if self.rub is not None:
            rs, rd, rf, ra = self.rub
            osc = np.sin(2 * np.pi * rf * (t - rs)) * window(t, rs, rs + rd, 0.5) * ra
            delta[:, 0] += osc
            delta[:, 2] += 0.4 * osc
        tk = Track(
            p0.elev + ang[0] + drift,
            p0.roll + ang[1],
            p0.yaw + ang[2],
            delta,
            np.zeros((n, 3)),
            lever(self.rng, self.joint),
        )
        self.end_posture_name = p0.name
        if self.tremor:
            wander = np.cumsum(lowpass_noise(self.rng, n, fs, 0.3)) / fs * 0.6
            phase = 2 * np.pi * (self.tremor_hz * (t - s0) + wander)
            amp = self.tremor_g * math.sqrt(2.0) * env * (0.7 + 0.6 * strain_env)
            tk.extra = (amp * np.sin(phase))[:, None] * self.tremor_dir[None, :]
        return tk


class SittingUp(Motion):
    """Sitting up in bed (confounder, not an event): reading or drinking with the knees drawn up, the shin at
    25-60 deg, for 30 s to 4 min, shifting a little now and then (below a leg movement's size). The
    person stays in bed; the posture changes into and out of it are labelled."""

    confounder = "sitting_up"
    pre = 0.0
    post = 0.0

    def __init__(self, rng: np.random.Generator, start: float, duration: float) -> None:
        super().__init__(rng, start, duration)

    def render(self, t: np.ndarray, p0: Posture) -> Track:
        tk = self._still(t, p0, "heel")
        fs = 1.0 / float(t[1] - t[0])
        sway = lowpass_noise(self.rng, len(t), fs, 0.3) * 0.3 * RAD * window(t, self.start, self.end, 2.0)
        tk.elev = tk.elev + sway
        return tk


class PartnerMove(Motion):
    """A bed partner moving (confounder, not an event): the mattress under the leg rises and falls a few mm,
    rings at its own resonance (2-5 Hz) and tilts a fraction of a degree; the shin itself does not move."""

    confounder = "partner"
    post = 2.0

    def __init__(
        self, rng: np.random.Generator, start: float, duration: float | None = None, small: bool = False
    ) -> None:
        super().__init__(rng, start, duration if duration is not None else rng.uniform(2.0, 10.0))
        k = 0.3 if small else 1.0
        self.bumps = [
            (rng.uniform(0, 1), rng.uniform(0.3, 1.5), rng.uniform(1.0, 8.0) * k * rng.choice([-1, 1]))
            for _ in range(int(rng.integers(1, 4)))
        ]
        self.ring_mm = rng.uniform(0.3, 2.0) * k
        self.ring_hz = rng.uniform(2.0, 5.0)
        self.tilt = rng.uniform(0.05, 0.8) * RAD * k
        self.tilt_axis = unit(np.array([rng.normal(), rng.normal(), 0.0]))

    def render(self, t: np.ndarray, p0: Posture) -> Track:
        tk = self._still(t, p0, "heel")
        d = self.end - self.start
        z = np.zeros(len(t))
        for frac, dur, mm in self.bumps:
            at = self.start + frac * max(d - dur, 0.0)
            z += keyframes(t, [at, at + dur], [0.0, mm / 1000.0])
            z += ring(t, at + dur, self.ring_hz, 0.25) * self.ring_mm / 1000.0
        z -= keyframes(t, [self.end - 0.8, self.end], [0.0, 1.0]) * z[np.searchsorted(t, self.end - 0.8) - 1]
        tilt = z / max(np.max(np.abs(z)), 1e-9) * self.tilt
        tk.pivot[:, 2] = z
        tk.delta = tilt[:, None] * self.tilt_axis[None, :]
        return tk
