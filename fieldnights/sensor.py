"""The accelerometer: strapped on at some rotation (which may slip once), its anti-alias low-pass and
output rate, zero-g offsets that wander slowly, sensitivity errors, white noise, full-scale range
(clipping) and quantisation."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi

from fieldnights.canvas import smoothstep


def mount(
    f_shin: np.ndarray, tau: np.ndarray, mounting: np.ndarray, slip: tuple[float, float, float] | None
) -> np.ndarray:
    """Specific force in the sensor's axes. ``slip = (start, duration, deg)``: the strap turns about the
    shin's long axis by ``deg`` over ``duration`` seconds and stays so."""
    f = f_shin
    if slip is not None:
        s, d, deg = slip
        a = np.radians(deg) * smoothstep((tau - s) / d)
        c, sn = np.cos(-a), np.sin(-a)
        f = f.copy()
        y, z = f[:, 1].copy(), f[:, 2].copy()
        f[:, 1] = c * y - sn * z
        f[:, 2] = sn * y + c * z
    # sensor = mounting^T shin, row by row (written out: faster than a matmul on a long (n, 3) array)
    return f[:, 0:1] * mounting[0] + f[:, 1:2] * mounting[1] + f[:, 2:3] * mounting[2]


def filter_and_decimate(f: np.ndarray, factor: int, cutoff_hz: float, fine_hz: float, phase: int) -> np.ndarray:
    """The sensor's digital low-pass (2nd-order Butterworth, causal) and its output samples."""
    wn = min(0.95, cutoff_hz / (fine_hz / 2.0))
    sos = butter(2, wn, output="sos")
    # start the filter settled on the first sample, as a sensor powered up a while ago
    zi = sosfilt_zi(sos)[:, :, None] * f[0][None, None, :]
    y, _ = sosfilt(sos, f, axis=0, zi=zi)
    return y[phase::factor]


def electronics(
    clean: np.ndarray,
    w: np.ndarray,
    rng: np.random.Generator,
    *,
    noise_mg: float,
    bias_mg: float,
    gain_error: float,
    wander_mg: float,
    range_g: float,
    bits: int,
) -> np.ndarray:
    """Offsets, gains, noise, clipping and quantisation on the clean output (``w``: seconds)."""
    bias = rng.uniform(-1.0, 1.0, 3) * bias_mg * 1e-3
    gain = 1.0 + rng.uniform(-1.0, 1.0, 3) * gain_error
    knots = max(2, int((w[-1] - w[0]) / 600.0) + 2)  # a new offset every ~10 min, smoothly joined
    kt = np.linspace(w[0], w[-1], knots)
    kv = rng.normal(size=(knots, 3)) * wander_mg * 1e-3
    wander = np.stack([np.interp(w, kt, kv[:, k]) for k in range(3)], axis=1)
    x = clean * gain[None, :] + bias[None, :] + wander
    x += rng.normal(size=x.shape) * noise_mg * 1e-3
    lsb = 2.0 * range_g / 2**bits
    x = np.round(x / lsb) * lsb
    return np.clip(x, -range_g, range_g - lsb)
