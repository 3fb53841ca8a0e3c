"""Small vector helpers on rows of 3-vectors, written out per component: ``np.cross`` and
``np.linalg.norm`` cost more in call overhead than in arithmetic on the short arrays of one
episode, and the sums here keep their order ((x + y) + z), so results are bit-identical to theirs."""

from __future__ import annotations

import numpy as np


def angle_rad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between the rows of ``a`` and ``b`` (broadcast), radians; NaN where undefined."""
    a, b = np.broadcast_arrays(a, b)
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    return np.arctan2(np.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)
