"""The fine time grid the body is drawn on, and the few shape primitives every movement is made of.

The grid runs at about 200 Hz whatever the sensor's rate (``fine_rate``), so that the sensor's own
anti-alias filter and decimation can be applied afterwards (a 10 Hz twitch seen by a 12.5 Hz sensor is
smeared and attenuated, as it would be). Angles are in degrees, accelerations in g.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter1d

FINE_MIN_HZ = 200.0


def fine_factor(rate_hz: float) -> int:
    """Fine samples per sensor sample: the smallest integer that brings the grid to >= 200 Hz."""
    return max(1, math.ceil(FINE_MIN_HZ / rate_hz - 1e-9))


class Canvas:
    """Shin pitch and roll offsets (deg), linear acceleration in the shin frame and vertical mattress
    acceleration (g), all on the fine grid ``tau = i / fine_hz`` (seconds from the recording start)."""

    def __init__(self, duration_s: float, fine_hz: float) -> None:
        self.fine_hz = fine_hz
        self.n = int(math.ceil(duration_s * fine_hz)) + 1
        self.pitch = np.zeros(self.n)
        self.roll = np.zeros(self.n)
        self.lin = np.zeros((self.n, 3))
        self.vert = np.zeros(self.n)

    def span(self, start: float, end: float) -> slice:
        a = max(0, int(math.floor(start * self.fine_hz)))
        b = min(self.n, int(math.ceil(end * self.fine_hz)) + 1)
        return slice(a, max(a, b))

    def times(self, sl: slice) -> np.ndarray:
        return np.arange(sl.start, sl.stop) / self.fine_hz


def smoothstep(u: np.ndarray) -> np.ndarray:
    """0 -> 1 on [0, 1] with zero slope at both ends (raised cosine); clipped outside."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def plateau(t: np.ndarray, start: float, end: float, rise: float, fall: float) -> np.ndarray:
    """0 before ``start``, rising over ``rise`` to 1, held, falling over ``fall`` to 0 at ``end``."""
    up = smoothstep((t - start) / max(rise, 1e-3))
    down = 1.0 - smoothstep((t - (end - fall)) / max(fall, 1e-3))
    return up * down


def smooth_noise(rng: np.random.Generator, n: int, fine_hz: float, corner_hz: float) -> np.ndarray:
    """Unit-SD noise low-passed to about ``corner_hz`` (Gaussian kernel), smooth to second derivative."""
    if n <= 0:
        return np.zeros(0)
    sigma = fine_hz / (2.0 * np.pi * corner_hz)
    pad = int(4 * sigma) + 1
    x = gaussian_filter1d(rng.normal(size=n + 2 * pad), sigma)[pad : pad + n]
    sd = float(np.std(x))
    return x / sd if sd > 0 else x


def damped(t: np.ndarray, freq_hz: float, tau_s: float, phase: float = 0.0) -> np.ndarray:
    """A damped oscillation starting at t=0 (zero before), peak near 1, with a 10 ms soft onset."""
    tt = np.clip(t, 0.0, None)
    onset = smoothstep(tt / 0.01)
    return np.where(t >= 0.0, onset * np.exp(-tt / tau_s) * np.sin(2 * np.pi * freq_hz * tt + phase), 0.0)


def baseline(keys: list[tuple[float, float, float]], tau_n: int, fine_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Roll and pitch baselines from keyframes ``(time, roll, pitch)``: constant between keyframe pairs,
    raised-cosine transitions between consecutive keyframes (they come in pairs around each change)."""
    keys = sorted(keys)
    kt = np.array([k[0] for k in keys])
    # strictly increasing times (a change may start where the last one ended)
    kt = kt + np.arange(len(kt)) * 1e-6
    kr = np.array([k[1] for k in keys])
    kp = np.array([k[2] for k in keys])
    tau = np.arange(tau_n) / fine_hz
    i = np.clip(np.searchsorted(kt, tau, side="right") - 1, 0, len(kt) - 1)
    j = np.minimum(i + 1, len(kt) - 1)
    span = np.where(j > i, kt[j] - kt[i], 1.0)
    w = np.where(j > i, smoothstep((tau - kt[i]) / span), 0.0)
    w = np.where(tau < kt[0], 0.0, w)
    return kr[i] + (kr[j] - kr[i]) * w, kp[i] + (kp[j] - kp[i]) * w
