"""Small numeric helpers the detector's stages share: angles between rows of 3-vectors written out
per component (numpy's general functions cost more in call overhead than in arithmetic on the short
arrays of one episode; the sums keep their order, ((x + y) + z), so results are bit-identical to
``np.cross`` and ``np.linalg.norm``), the median of values without NaN (as ``np.median`` gives it,
without its NaN and masked-array checks; of a few Python floats, sorted), and where runs of equal
keys start."""

from __future__ import annotations

import numpy as np


def angle_rad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between the rows of ``a`` and ``b`` (broadcast), radians; NaN where undefined."""
    a, b = np.broadcast_arrays(a, b)
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    return np.arctan2(np.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)


def median(x: np.ndarray, axis: int = -1):
    """Median along ``axis`` of values without NaN: the middle value, or the mean of the two."""
    n = x.shape[axis]
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(x, (lo, hi), axis=axis)
    return (np.take(part, lo, axis=axis) + np.take(part, hi, axis=axis)) / 2.0


def median_of_few(xs) -> float:
    """Median of a few Python floats, as ``statistics.median`` gives it (without its 3 ms import)."""
    v = sorted(xs)
    h = len(v) // 2
    return v[h] if len(v) % 2 else (v[h - 1] + v[h]) / 2.0


def run_starts(keys: np.ndarray) -> np.ndarray:
    """Positions where a run of equal values of sorted ``keys`` (non-empty) begins."""
    return np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
