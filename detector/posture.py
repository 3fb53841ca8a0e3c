"""Where the shin points: its long axis in sensor coordinates, and whether the leg is upright.

In bed the shin lies roughly horizontal, so gravity is perpendicular to the shin's long axis in
every lying posture (rolling over turns the leg about that axis). Standing, sitting and walking
put gravity along it. The axis is therefore the direction most quiet epochs are perpendicular to.
Candidates are the sensor's own axes (a strap usually aligns one with the shin), the axis in the
sensor's x-y plane most nearly perpendicular to the quiet postures (the sensor's face lies on the
shin, so its z, the face's normal, is across the shin at any turn of the strap: with one posture
seen, this is the only axis both allow), and, once the quiet postures are more than one, the normal
of the plane they lie closest to (a posture with the knee drawn up lies off it, so the scatter need
not be flat for the normal to be the axis). The candidate that leaves the most quiet epochs lying
horizontal, less those it would have upright (few quiet epochs of a night are out of bed), wins;
then it is refined on those epochs.
Only epochs before a given one are used, so a decision never depends on data that arrived later
than the event it concerns.
"""

from __future__ import annotations

import math

import numpy as np

from detector.rows import Rows
from detector.vectors import state_array, state_part, state_value

LYING_MAX_DEG = 25.0  # a quiet epoch this close to horizontal counts as lying
UPRIGHT_DEG = 50.0
#: Quiet epochs needed before the estimate is trusted; earlier events wait for them.
READY_EPOCHS = 20
#: The estimate rests on the quiet epochs of the last four hours before the event.
WINDOW_EPOCHS = 480
REFRESH = 10
_CANDIDATES = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)  # y first: the usual strap
_SIN_LYING = math.sin(math.radians(LYING_MAX_DEG))
_SIN_UPRIGHT = math.sin(math.radians(UPRIGHT_DEG))


class ShinAxis:
    """State: the quiet epochs kept (``rows``), the ready epoch, how many were dropped, and the
    few cached estimates (keyed by absolute window ends) so a restored object reuses exactly them."""

    def __init__(self) -> None:
        self.rows = Rows(4)  # epoch index, unit gravity x, y, z of each quiet epoch
        self.ready: int | None = None
        self.dropped = 0  # quiet epochs no longer kept
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def state(self) -> dict:
        keys = list(self._cache)
        return {
            "rows": self.rows.state(),
            "ready": self.ready,
            "dropped": self.dropped,
            "cache_keys": np.array(keys, dtype=np.int64).reshape(-1, 2),
            "cache_axes": np.array([self._cache[k] for k in keys], dtype=np.float64).reshape(-1, 3),
        }

    @classmethod
    def from_state(cls, state: dict) -> ShinAxis:
        ax = cls()
        ax.rows = state_part(state, "rows", lambda s: Rows.from_state(s, 4))
        ax.ready = state_value(state, "ready", int, none_ok=True)
        ax.dropped = state_value(state, "dropped", int)
        keys = state_array(state, "cache_keys", np.int64, 2)
        axes = state_array(state, "cache_axes", np.float64, 3)
        if len(keys) != len(axes):
            raise ValueError("cache_axes: not as long as cache_keys")
        ax._cache = {(int(lo), int(k)): a for (lo, k), a in zip(keys.tolist(), axes, strict=True)}
        return ax

    @property
    def epochs(self) -> np.ndarray:
        return self.rows.data[:, 0]

    def add(self, epoch: int, unit: np.ndarray) -> None:
        self.rows.append((epoch, *np.asarray(unit, dtype=float)))
        # keep the state bounded: decisions look back WINDOW_EPOCHS, and are never made more
        # than another WINDOW_EPOCHS after the epoch they concern
        old = int(np.searchsorted(self.epochs, epoch - 2 * WINDOW_EPOCHS))
        if old > 64:
            self.rows.drop_first(old)
            self.dropped += old
            self._cache.clear()

    def ready_epoch(self) -> int | None:
        """The epoch from which on the estimate rests on ``READY_EPOCHS`` quiet epochs."""
        if self.ready is None and len(self.rows) >= READY_EPOCHS:
            self.ready = int(self.epochs[READY_EPOCHS - 1]) + 1
        return self.ready

    def axis_for(self, epoch: int, final: bool) -> np.ndarray | None:
        """The estimate to judge an event in ``epoch`` by, or None while it is not settled yet.

        Early in a recording (fewer than ``READY_EPOCHS`` quiet epochs before the event) it waits
        until that many exist; at the end of the stream it takes what there is.
        """
        k = int(np.searchsorted(self.epochs, epoch)) + self.dropped
        if k >= READY_EPOCHS:
            return self.axis(before_epoch=epoch)
        ready = self.ready_epoch()
        if ready is not None:
            return self.axis(before_epoch=ready)
        return self.axis() if final else None

    def axis(self, before_epoch: int | None = None) -> np.ndarray:
        """Unit vector along the shin (sign arbitrary) from quiet epochs before ``before_epoch``."""
        ep = self.epochs
        if before_epoch is None:
            before_epoch = int(ep[-1]) + 1 if len(ep) else 0
        # The estimate moves slowly: recompute it only every REFRESH quiet epochs (rounding the
        # window's ends down keeps it a function of the data before ``before_epoch`` alone).
        k_abs = int(np.searchsorted(ep, before_epoch)) + self.dropped
        lo_abs = int(np.searchsorted(ep, before_epoch - WINDOW_EPOCHS)) + self.dropped
        if k_abs >= READY_EPOCHS:
            k_abs -= k_abs % REFRESH
            lo_abs -= lo_abs % REFRESH
        k, lo = k_abs - self.dropped, max(0, lo_abs - self.dropped)
        key = (lo_abs, k_abs)
        if key in self._cache:
            return self._cache[key]
        a = self._estimate(self.rows.data[lo:k, 1:4])
        if len(self._cache) > 8:
            self._cache.clear()
        self._cache[key] = a
        return a

    @staticmethod
    def _estimate(u: np.ndarray) -> np.ndarray:
        if len(u) == 0:
            return _CANDIDATES[0]
        cands = list(_CANDIDATES)
        if len(u) >= 3:
            # the sensor's face lies on the shin: the axis in its x-y plane most nearly perpendicular to
            # the quiet postures (with one posture, the only such axis), before z (the face's normal)
            _, v2 = np.linalg.eigh(u[:, :2].T @ u[:, :2])
            cands.insert(2, np.array([v2[0, 0], v2[1, 0], 0.0]))
            vals, vecs = np.linalg.eigh(u.T @ u / len(u))
            if vals[1] > 0.02:  # quiet postures that are more than one: the normal of their plane
                cands.append(vecs[:, 0])
        along = np.abs(u @ np.transpose(cands))  # one product for all
        # quiet epochs lying, less those it would have upright (few quiet epochs in a night are out of bed)
        counts = np.count_nonzero(along < _SIN_LYING, axis=0) - np.count_nonzero(along > _SIN_UPRIGHT, axis=0)
        best = cands[int(np.argmax(counts))]  # ties: the earlier (sensor y first)
        lying = u[np.abs(u @ best) < _SIN_LYING]
        if len(lying) >= 3:
            vals, vecs = np.linalg.eigh(lying.T @ lying / len(lying))
            if vals[1] > 0.02 and vals[1] > 4 * vals[0]:
                refined = vecs[:, 0]
                if abs(float(refined @ best)) > math.cos(math.radians(30)):
                    best = refined
        return best / np.linalg.norm(best)


def elevation_deg(axis: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Angle of the shin above the horizontal, degrees, for gravity vectors ``g`` (n, 3); ``axis``
    is one unit vector, or one per row of ``g``."""
    g = np.atleast_2d(g)
    gx, gy, gz = g[:, 0], g[:, 1], g[:, 2]
    ax, ay, az = (axis[..., 0], axis[..., 1], axis[..., 2])
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.abs(gx * ax + gy * ay + gz * az) / np.sqrt(gx * gx + gy * gy + gz * gz)
    return np.degrees(np.arcsin(np.minimum(np.maximum(s, 0.0), 1.0)))  # (s >= +0: as np.clip, without its Python layer)
