"""Small numeric helpers for the short arrays of one episode, where numpy's general functions cost
more in call overhead than in arithmetic: angles between rows of 3-vectors written out per component
(the sums keep their order, ((x + y) + z), so results are bit-identical to ``np.cross`` and
``np.linalg.norm``), and the median of values without NaN (as ``np.median`` gives it, without its
NaN and masked-array checks)."""

from __future__ import annotations

import numpy as np


def angle_rad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between the rows of ``a`` and ``b`` (broadcast), radians; NaN where undefined."""
    a, b = np.broadcast_arrays(a, b)
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    return np.arctan2(np.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)


def median(x: np.ndarray) -> float:
    """Median of a non-empty 1-d array without NaN: the middle value, or the mean of the two."""
    n = len(x)
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(x, (lo, hi))
    return float((part[lo] + part[hi]) / 2.0)
