"""Getting up: sitting up on the edge of the bed, standing, walking (with gait), coming back and lying down.

Labelled ``out_of_bed`` from the moment the leg starts to leave its lying position to the moment it lies
still again. Upright postures use roll = 180 deg so that the front of the shin faces the heading ``yaw``
and an elevation below 90 deg means the knee is ahead of the ankle.

Gait (shank-mounted inertial sensors; Aminian 2002 J Biomech 35:689, Lafortune 1991 J Biomech, Catalfamo
2010 Sensors 10:5683): the shank swings about 15-22 deg forward of vertical at heel strike to 25-40 deg
behind at toe-off, stance about 60 % of the stride and a quick swing (peak shank rate 250-400 deg/s);
each heel strike sends an axial shock of about 1-3 g up the tibia (more barefoot), ringing 15-30 Hz for a
few tens of ms. Cadence 1.6-2.0 steps/s (a slow night-time walk), stride-time variability 1.5-4 %.
"""

from __future__ import annotations

import math

import numpy as np

from simnights.postures import RAD, Posture, draw_lying, lever
from simnights.profiles import Track, keyframes, lowpass_noise, minjerk, ring, window
from simnights.shapes_bed import Motion


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


class OutOfBed(Motion):
    """A trip out of bed with 60-180 s of walking (1-3 bouts, standing pauses between, turning round; in 40 %
    of trips with two bouts or more, a sit of 30-120 s on the toilet or a chair between the first two)."""

    kind = "out_of_bed"

    def __init__(self, rng: np.random.Generator, start: float, walk_s: float | None = None) -> None:
        self.t_situp = rng.uniform(3.0, 8.0)
        self.t_sit = rng.uniform(3.0, 40.0)
        self.t_stand = rng.uniform(1.5, 3.0)
        self.t_still = rng.uniform(1.0, 5.0)
        walk = walk_s if walk_s is not None else rng.uniform(60.0, 180.0)
        nb = int(rng.integers(1, 4))
        parts = rng.dirichlet(np.full(nb, 4.0)) * walk
        self.bouts: list[tuple[float, float | None]] = []  # (walking s, turn at fraction or None)
        self.pauses: list[float] = []
        for i, w in enumerate(parts):
            self.bouts.append((float(max(w, 12.0)), float(rng.uniform(0.3, 0.7)) if rng.random() < 0.6 else None))
            if i < nb - 1:
                self.pauses.append(float(rng.uniform(3.0, 30.0)))
        # a sit on the toilet (or a chair) between two bouts in 40 % of trips: down, 30-120 s, up, still
        self.toilet: tuple[float, float, float, float, float] | None = None
        if nb >= 2 and rng.random() < 0.4:
            down, hold, up, still = (
                rng.uniform(1.5, 3.0),
                rng.uniform(30, 120),
                rng.uniform(1.5, 3.0),
                rng.uniform(1, 3),
            )
            self.toilet = (down, hold, up, still, rng.uniform(70, 95) * RAD)
            self.pauses[0] = down + hold + up + still
        self.sit_s = self.toilet[1] if self.toilet is not None else 0.0
        self.t_sitdown = rng.uniform(1.5, 3.0)
        self.t_backsit = rng.uniform(2.0, 20.0)
        self.t_liedown = rng.uniform(3.0, 8.0)
        total = (
            self.t_situp + self.t_sit + self.t_stand + self.t_still
            + sum(b for b, _ in self.bouts) + sum(self.pauses) + self.t_still
            + self.t_sitdown + self.t_backsit + self.t_liedown
        )  # fmt: skip
        super().__init__(rng, start, total)
        self.walk_s = float(sum(b for b, _ in self.bouts))
        self.cadence = rng.uniform(1.6, 2.0)  # steps/s
        self.stride_m = rng.uniform(0.8, 1.2)
        self.a_hs = rng.uniform(15.0, 22.0) * RAD
        self.a_to = rng.uniform(25.0, 40.0) * RAD
        self.stance = rng.uniform(0.58, 0.64)
        self.impact_g = rng.uniform(0.8, 3.0)
        self.impact_hz = rng.uniform(15.0, 30.0)
        self.impact_tau = rng.uniform(0.012, 0.03)
        self.cv = rng.uniform(0.015, 0.04)
        self.elev_sit = rng.uniform(68.0, 98.0) * RAD
        self.side = rng.choice([-1.0, 1.0])
        self.walk_windows: list[tuple[float, float]] = []

    def _gait_angle(self, phase: np.ndarray) -> np.ndarray:
        """Shank angle ahead of vertical (rad, + = ankle ahead of knee) through one stride (phase in [0, 1))."""
        p = phase % 1.0
        st = self.stance
        out = np.empty_like(p)
        m = p < st
        out[m] = self.a_hs + (-self.a_to - self.a_hs) * (0.5 - 0.5 * np.cos(np.pi * p[m] / st))
        out[~m] = -self.a_to + (self.a_hs + self.a_to) * minjerk((p[~m] - st) / (1.0 - st))
        return out

    def render(self, t: np.ndarray, p0: Posture) -> Track:
        rng = self.rng
        n = len(t)
        fs = 1.0 / float(t[1] - t[0])
        up_roll = p0.roll + _wrap(math.pi - p0.roll)
        yaw_up = p0.yaw + self.side * rng.uniform(70, 110) * RAD
        kt: list[float] = [self.start]
        ke: list[float] = [p0.elev]
        kr: list[float] = [p0.roll]
        ky: list[float] = [p0.yaw]

        def key(dt: float, e: float, r: float, y: float) -> None:
            kt.append(kt[-1] + dt)
            ke.append(e)
            kr.append(r)
            ky.append(y)

        key(self.t_situp, self.elev_sit, up_roll, yaw_up)
        key(self.t_sit, self.elev_sit, up_roll, yaw_up)
        key(0.45 * self.t_stand, self.elev_sit - rng.uniform(12, 25) * RAD, up_roll, yaw_up)
        key(0.55 * self.t_stand, 90 * RAD, up_roll, yaw_up)
        key(self.t_still, 90 * RAD, up_roll, yaw_up)
        yaw = yaw_up
        turns: list[float] = []
        self.walk_windows = []
        for i, (dur, turn) in enumerate(self.bouts):
            w0 = kt[-1]
            self.walk_windows.append((w0, w0 + dur))
            if turn is not None:
                turns.append(w0 + turn * dur - 1.0)
            key(dur, 90 * RAD, up_roll, yaw)
            if i == 0 and self.toilet is not None:
                down, hold, up, still, el = self.toilet
                key(0.5 * down, el - rng.uniform(12, 25) * RAD, up_roll, yaw)
                key(0.5 * down, el, up_roll, yaw)
                key(hold, el, up_roll, yaw)
                key(0.45 * up, el - rng.uniform(12, 25) * RAD, up_roll, yaw)
                key(0.55 * up, 90 * RAD, up_roll, yaw)
                key(still, 90 * RAD, up_roll, yaw)
            elif i < len(self.pauses):
                key(self.pauses[i], 90 * RAD, up_roll, yaw)
        key(self.t_still, 90 * RAD, up_roll, yaw)
        key(0.5 * self.t_sitdown, self.elev_sit - rng.uniform(12, 25) * RAD, up_roll, yaw)
        key(0.5 * self.t_sitdown, self.elev_sit, up_roll, yaw)
        key(self.t_backsit, self.elev_sit, up_roll, yaw)
        target = draw_lying(rng, weights=self.lying_weights)
        self.end_posture_name = target.name
        key(self.t_liedown, target.elev, target.roll + round((up_roll - target.roll) / (2 * math.pi)) * 2 * math.pi,
            target.yaw + round((yaw - target.yaw) / (2 * math.pi)) * 2 * math.pi)  # fmt: skip
        elev = keyframes(t, kt, ke)
        roll = keyframes(t, kt, kr)
        yawv = keyframes(t, kt, ky)
        for at in turns:  # turning round inside a bout: 180 deg over about 2 s
            yawv = yawv + math.pi * minjerk((t - at) / 2.0)
        # gait
        env = np.zeros(n)
        for w0, w1 in self.walk_windows:
            env = np.maximum(env, window(t, w0, w1, 1.0 / (self.cadence / 2.0)))
        f_stride = self.cadence / 2.0
        jitter = 1.0 + self.cv * lowpass_noise(rng, n, fs, 0.5 * f_stride)
        phase = np.cumsum(f_stride * jitter * (env > 0)) / fs
        alpha = self._gait_angle(phase) * env
        sway = lowpass_noise(rng, n, fs, 0.5) * 1.0 * RAD * window(t, kt[3], kt[-3], 1.0) * (1 - env)
        elev = elev + alpha + sway
        # the knee travels along the heading while walking, bobbing twice a stride
        speed = self.stride_m * f_stride * env
        pivot = np.zeros((n, 3))
        pivot[:, 0] = np.cumsum(speed * np.cos(yawv)) / fs
        pivot[:, 1] = np.cumsum(speed * np.sin(yawv)) / fs
        pivot[:, 2] = 0.02 * np.cos(4 * np.pi * phase) * env
        # heel strikes: axial shock rings up the tibia at each new stride
        extra = np.zeros((n, 3))
        strikes = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1
        for i in strikes:
            if env[i] < 0.5:
                continue
            lo, hi = i, min(n, i + int(0.2 * fs))
            shock = ring(t[lo:hi], t[i], self.impact_hz, self.impact_tau) * self.impact_g * rng.uniform(0.7, 1.3)
            extra[lo:hi, 0] += shock
            extra[lo:hi, 1] += 0.3 * shock
        return Track(elev, roll, yawv, None, pivot, lever(rng, "knee"), extra)
