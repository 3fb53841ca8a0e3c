"""Time profiles the event shapes are built from: smooth steps through keyframes, band-limited noise, rings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal


@lru_cache(maxsize=128)
def _butter(order: int, fc: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    return signal.butter(order, fc, btype=btype, fs=fs, output="sos")


def minjerk(s: np.ndarray) -> np.ndarray:
    """The minimum-jerk step 0 -> 1 on s in [0, 1] (zero velocity and acceleration at both ends)."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s * s)


def keyframes(t: np.ndarray, times: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """Minimum-jerk moves between successive (time, value) keyframes; constant before the first and after
    the last. Voluntary limb movements follow such bell-shaped velocity profiles (Flash & Hogan 1985)."""
    tk = np.asarray(times, dtype=float)
    vk = np.asarray(values, dtype=float)
    if len(tk) == 1:
        return np.full(len(t), vk[0])
    i = np.clip(np.searchsorted(tk, t, side="right") - 1, 0, len(tk) - 2)
    span = np.maximum(tk[i + 1] - tk[i], 1e-9)
    return vk[i] + (vk[i + 1] - vk[i]) * minjerk((t - tk[i]) / span)


def bandnoise(rng: np.random.Generator, n: int, fs: float, lo: float, hi: float) -> np.ndarray:
    """Unit-RMS Gaussian noise band-limited to [lo, hi] Hz (4th-order Butterworth, zero phase)."""
    hi = min(hi, 0.45 * fs)
    lo = min(lo, 0.8 * hi)
    pad = int(2 * fs / max(lo, 0.05)) + 8
    x = rng.normal(size=n + 2 * pad)
    sos = _butter(2, (lo, hi), "bandpass", fs)
    y = signal.sosfiltfilt(sos, x)[pad : pad + n]
    rms = float(np.sqrt(np.mean(y * y))) if n else 1.0
    return y / rms if rms > 0 else y


def lowpass_noise(rng: np.random.Generator, n: int, fs: float, hi: float) -> np.ndarray:
    """Unit-RMS Gaussian noise below ``hi`` Hz (slow wander)."""
    pad = int(2 * fs / max(hi, 0.02)) + 8
    x = rng.normal(size=n + 2 * pad)
    sos = _butter(2, min(hi, 0.45 * fs), "lowpass", fs)
    y = signal.sosfiltfilt(sos, x)[pad : pad + n]
    rms = float(np.sqrt(np.mean(y * y))) if n else 1.0
    return y / rms if rms > 0 else y


def ring(t: np.ndarray, at: float, freq: float, tau: float) -> np.ndarray:
    """A damped sine starting at ``at`` (peak about 1)."""
    s = t - at
    out = np.zeros_like(t)
    m = s >= 0
    out[m] = np.sin(2 * np.pi * freq * s[m]) * np.exp(-s[m] / tau)
    return out


def window(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """1 inside [start, end], minimum-jerk ramps of ``ramp`` s inside the edges, 0 outside."""
    ramp = max(min(ramp, 0.5 * (end - start)), 1e-6)
    up = minjerk((t - start) / ramp)
    down = minjerk((end - t) / ramp)
    return np.minimum(up, down)


def unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


@dataclass
class Track:
    """What one motion does on a uniform time grid: the shin's orientation, where it pivots, extra vibration.

    ``elev``/``roll``/``yaw`` (n,) rad; ``delta`` (n, 3) shin-frame rotation vector or None; ``pivot``
    (n, 3) m world position of the joint it turns about; ``lever`` (3,) sensor position relative to the
    pivot in the shin frame (m); ``extra`` (n, 3) g felt in the shin frame (tremor, impacts) or None.
    """

    elev: np.ndarray
    roll: np.ndarray
    yaw: np.ndarray
    delta: np.ndarray | None
    pivot: np.ndarray
    lever: np.ndarray
    extra: np.ndarray | None = None
