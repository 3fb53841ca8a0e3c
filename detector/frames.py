"""Samples -> fixed 0.1 s frames (count, per-axis sums, sums of squares and cross products), and gaps.

Frames are aligned to absolute time (index = floor(t / FRAME_S)), so cutting a stream into
batches anywhere gives exactly the same frames: the last, possibly incomplete, frame of a batch
stays open until a later sample arrives. Every later stage works on frames, which makes the
detector independent of the sample rate (25-200 Hz) and of uneven timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detector.vectors import run_starts, state_array, state_value

FRAME_S = 0.1
#: A silence longer than this between two samples is reported as a gap.
GAP_S = 2.0


@dataclass
class Frames:
    """Sparse frames: only indices that hold samples."""

    idx: np.ndarray  # (k,) int64
    n: np.ndarray  # (k,) float64 sample counts
    s: np.ndarray  # (k, 3) sums
    q: np.ndarray  # (k, 3) sums of squares
    c: np.ndarray  # (k, 3) sums of cross products xy, xz, yz

    @staticmethod
    def empty() -> Frames:
        return Frames(np.empty(0, np.int64), np.empty(0), np.empty((0, 3)), np.empty((0, 3)), np.empty((0, 3)))

    def __len__(self) -> int:
        return len(self.idx)

    def state(self) -> dict:
        return {"idx": self.idx.copy(), "n": self.n.copy(), "s": self.s.copy(), "q": self.q.copy(), "c": self.c.copy()}

    @classmethod
    def from_state(cls, state: dict) -> Frames:
        fr = cls(
            state_array(state, "idx", np.int64),
            state_array(state, "n", np.float64),
            state_array(state, "s", np.float64, 3),
            state_array(state, "q", np.float64, 3),
            state_array(state, "c", np.float64, 3),
        )
        if not len(fr.n) == len(fr.s) == len(fr.q) == len(fr.c) == len(fr.idx):
            raise ValueError(": the arrays differ in length")
        return fr

    @staticmethod
    def concat(parts: list[Frames]) -> Frames:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Frames.empty()
        if len(parts) == 1:
            return parts[0]
        return Frames(
            np.concatenate([p.idx for p in parts]),
            np.concatenate([p.n for p in parts]),
            np.concatenate([p.s for p in parts]),
            np.concatenate([p.q for p in parts]),
            np.concatenate([p.c for p in parts]),
        )


class Framer:
    """Accumulates samples into frames; drops out-of-order and non-finite samples (counted).

    The samples of the last, still open frame are kept raw and summed together with the rest of
    their frame when it closes, so the floating-point sums do not depend on where batches were cut.
    """

    def __init__(self) -> None:
        self.last_t: float | None = None
        self.pend_t = np.empty(0)
        self.pend_xyz = np.empty((0, 3))
        self.dropped = 0

    def push(self, t: np.ndarray, xyz: np.ndarray) -> tuple[Frames, list[tuple[float, float]]]:
        t = np.asarray(t, dtype=np.float64).ravel()
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        prev = -np.inf if self.last_t is None else self.last_t
        # (a NaN or infinity anywhere makes the sum non-finite or a step not increasing; t[-1] finite
        # bounds the rest: what _accepted finds, without its passes)
        if len(t) and t[0] > prev and np.isfinite(t[-1]) and (t[1:] > t[:-1]).all() and np.isfinite(xyz.sum()):
            ok = np.ones(len(t), bool)  # the usual batch, finite and increasing: what _accepted finds, sooner
        else:
            ok = self._accepted(t, xyz)
        if not ok.all():
            self.dropped += int((~ok).sum())
            t, xyz = t[ok], xyz[ok]
        if len(t) == 0:
            return Frames.empty(), []
        gaps: list[tuple[float, float]] = []
        tt = t if self.last_t is None else np.concatenate(([self.last_t], t))
        for i in np.flatnonzero(np.diff(tt) > GAP_S):
            gaps.append((float(tt[i]), float(tt[i + 1])))
        self.last_t = float(t[-1])
        if len(self.pend_t):
            t = np.concatenate((self.pend_t, t))
            xyz = np.concatenate((self.pend_xyz, xyz))
        b = np.floor(t / FRAME_S).astype(np.int64)
        last = int(np.searchsorted(b, b[-1]))
        self.pend_t, self.pend_xyz = t[last:], xyz[last:]
        return _to_frames(b[:last], xyz[:last]), gaps

    def _accepted(self, t: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        """Which samples are kept: finite, and later than every sample before them."""
        ok = np.isfinite(t) & np.isfinite(xyz).all(axis=1)
        if len(t):
            # A sample must be later than every sample before it (strictly increasing stream).
            prev = -np.inf if self.last_t is None else self.last_t
            run_max = np.maximum.accumulate(np.concatenate(([prev], np.where(ok, t, -np.inf))))
            ok &= t > run_max[:-1]
        return ok

    def state(self) -> dict:
        """The last accepted sample time, the raw samples of the open frame, the dropped count."""
        return {
            "last_t": self.last_t,
            "pend_t": self.pend_t.copy(),
            "pend_xyz": self.pend_xyz.copy(),
            "dropped": self.dropped,
        }

    @classmethod
    def from_state(cls, state: dict) -> Framer:
        fr = cls()
        fr.last_t = state_value(state, "last_t", float, none_ok=True)
        fr.pend_t = state_array(state, "pend_t", np.float64)
        fr.pend_xyz = state_array(state, "pend_xyz", np.float64, 3)
        fr.dropped = state_value(state, "dropped", int)
        if len(fr.pend_t) != len(fr.pend_xyz):
            raise ValueError("pend_xyz: not as long as pend_t")
        return fr

    def flush(self) -> Frames:
        b = np.floor(self.pend_t / FRAME_S).astype(np.int64)
        out = _to_frames(b, self.pend_xyz)
        self.pend_t, self.pend_xyz = np.empty(0), np.empty((0, 3))
        return out


def _to_frames(b: np.ndarray, xyz: np.ndarray) -> Frames:
    if len(b) == 0:
        return Frames.empty()
    starts = run_starts(b)
    n = np.diff(np.concatenate((starts, [len(b)]))).astype(np.float64)
    # the products xy, xz, yz as rows (written in place, summed along them: a fifth less time than
    # stacking them as columns; the same sums, in the same order)
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    cross = np.empty((3, len(b)))
    np.multiply(x, y, out=cross[0])
    np.multiply(x, z, out=cross[1])
    np.multiply(y, z, out=cross[2])
    return Frames(
        b[starts],
        n,
        np.add.reduceat(xyz, starts, axis=0),
        np.add.reduceat(xyz * xyz, starts, axis=0),
        np.add.reduceat(cross, starts, axis=1).T,
    )
