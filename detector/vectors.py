"""Small numeric helpers the detector's stages share: angles between rows of 3-vectors and their norms
written out per component (numpy's general functions cost more in call overhead than in arithmetic
on the short arrays of one episode, and ``np.linalg.norm`` several times more on long ones; the sums
keep their order, ((x + y) + z), so results are bit-identical to ``np.cross`` and
``np.linalg.norm``), the median of values without NaN (as ``np.median`` gives it, without its NaN
and masked-array checks; of a few Python floats, sorted), where runs of equal keys start, and the
checks the stages' ``from_state`` make on the plain-data state they are given."""

from __future__ import annotations

import numpy as np


def angle_rad(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between the rows of ``a`` and ``b`` (broadcast, by the arithmetic itself), radians; NaN
    where undefined."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    return np.arctan2(np.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)


def norm_rows(m: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(m, axis=-1)`` of rows of 3 (bit-identical: numpy sums the three squares in
    order), several times faster on long arrays."""
    x, y, z = m[..., 0], m[..., 1], m[..., 2]
    return np.sqrt((x * x + y * y) + z * z)


def finite(x, nan: float = 0.0) -> np.ndarray:
    """``np.nan_to_num(x, nan=nan)`` (NaN to ``nan``, infinities to the dtype's largest finite
    values, a copy), bit-identical, without its Python-level overhead on the short arrays of one
    episode: a few C calls, and none beyond the copy and one check when all is finite."""
    out = np.array(x, copy=True)
    if out.dtype.kind not in "fc":
        return out
    if out.dtype.kind == "c":  # never in the detector; numpy's own handling of complex parts
        return np.nan_to_num(out, nan=nan)
    if not np.isfinite(out).all():
        big = np.finfo(out.dtype).max
        out[np.isnan(out)] = nan
        out[out == np.inf] = big
        out[out == -np.inf] = -big
    return out


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


# -- reading back the plain-data state of a stage (``from_state``) ----------------------------------
# Problems are ValueErrors whose one-line message starts with the path to the bad value, e.g.
# "buf.feats.idx: expected an int64 array of shape (n,), got float64 (5,)".


def state_item(state, key: str):
    """``state[key]``; ValueError when ``state`` is not a dict or lacks ``key``."""
    if not isinstance(state, dict):
        raise ValueError(f": expected a dict, got {type(state).__name__}")
    if key not in state:
        raise ValueError(f"{key}: missing")
    return state[key]


def state_array(state, key: str, dtype, width: int | None = None) -> np.ndarray:
    """A copy of ``state[key]``, which must be an array of exactly ``dtype`` and of shape (n,), or
    (n, width) when ``width`` is given."""
    a = state_item(state, key)
    want = "(n,)" if width is None else f"(n, {width})"
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{key}: expected a {np.dtype(dtype)} array of shape {want}, got {type(a).__name__}")
    if a.dtype != dtype or (a.ndim != 1 if width is None else (a.ndim != 2 or a.shape[1] != width)):
        raise ValueError(f"{key}: expected a {np.dtype(dtype)} array of shape {want}, got {a.dtype} {a.shape}")
    return a.copy()


def state_value(state, key: str, kind: type, none_ok: bool = False):
    """``state[key]``, which must be exactly of type ``kind`` (bool is no int here), or None if allowed."""
    v = state_item(state, key)
    if v is None and none_ok:
        return None
    if type(v) is not kind:
        raise ValueError(f"{key}: expected {kind.__name__}{' or None' if none_ok else ''}, got {type(v).__name__}")
    return v


def state_part(state, key: str, build):
    """``build(state[key])``, with ``key`` put in front of the path of any problem it reports."""
    part = state_item(state, key)
    try:
        return build(part)
    except ValueError as e:
        msg = str(e)
        raise ValueError(f"{key}{msg}" if msg.startswith((":", "[")) else f"{key}.{msg}") from None
