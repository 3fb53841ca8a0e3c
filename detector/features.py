"""Frames -> per-frame movement features, with bounded context carried between batches.

For frame k (0.1 s), over the 0.3 s window of frames k-1..k+1:
- ``mean``: the mean acceleration vector (gravity plus slow motion), in g;
- ``sd``: the within-window standard deviation (all axes), in g: jerks, tremor, impacts;
- ``tilt``: the change of the window mean across 0.4 s (|mean[k+2] - mean[k-2]|), in g: slow
  rotations of the shin such as an ankle dorsiflexion.
Windows are centred, so a frame's features are ready once the frames three steps later exist.
Every sum runs over a fixed window (no running cumulative sums), so results do not depend on how
the stream was cut into batches. Missing frames count as empty. A silence longer than
``MAX_FILL_S`` starts a new segment instead of materialising empty frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detector.frames import FRAME_S, Frames

CTX = 3  # frames of context needed on each side
MAX_FILL_S = 600.0


@dataclass
class Features:
    idx: np.ndarray  # (k,) int64 frame index
    present: np.ndarray  # (k,) bool: the frame itself holds samples
    mean: np.ndarray  # (k, 3) g, NaN where the window is empty
    sd: np.ndarray  # (k,) g, NaN where undefined
    tilt: np.ndarray  # (k,) g, NaN where undefined

    def __len__(self) -> int:
        return len(self.idx)

    def take(self, sl: slice | np.ndarray) -> Features:
        return Features(self.idx[sl], self.present[sl], self.mean[sl], self.sd[sl], self.tilt[sl])

    @staticmethod
    def concat(parts: list[Features]) -> Features:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Features(np.empty(0, np.int64), np.empty(0, bool), np.empty((0, 3)), np.empty(0), np.empty(0))
        if len(parts) == 1:
            return parts[0]
        return Features(
            np.concatenate([p.idx for p in parts]),
            np.concatenate([p.present for p in parts]),
            np.concatenate([p.mean for p in parts]),
            np.concatenate([p.sd for p in parts]),
            np.concatenate([p.tilt for p in parts]),
        )


class FeatureStage:
    def __init__(self) -> None:
        # Dense buffer of frames; the first ``emitted_upto`` offset marks what has been emitted.
        self.buf: Frames | None = None
        self.next_emit: int | None = None  # absolute frame index of the next frame to emit

    def _dense(self, fr: Frames, start: int, stop: int) -> Frames:
        """Dense frames for indices start..stop-1 (empty where missing)."""
        length = stop - start
        n = np.zeros(length)
        s = np.zeros((length, 3))
        q = np.zeros((length, 3))
        pos = fr.idx - start
        n[pos] = fr.n
        s[pos] = fr.s
        q[pos] = fr.q
        return Frames(np.arange(start, stop, dtype=np.int64), n, s, q)

    def push(self, fr: Frames) -> Features:
        if not len(fr):
            return Features.concat([])
        out: list[Features] = []
        if self.buf is not None:
            gap_frames = fr.idx[0] - (self.buf.idx[-1] + 1)
            if gap_frames * FRAME_S > MAX_FILL_S:
                out.append(self.flush())
        if self.buf is None:
            # New segment: CTX empty frames of padding before the first frame.
            first = int(fr.idx[0])
            self.buf = self._dense(Frames.empty(), first - CTX, first)
            self.next_emit = first
        assert self.next_emit is not None
        new = self._dense(fr, int(self.buf.idx[-1]) + 1, int(fr.idx[-1]) + 1)
        self.buf = Frames.concat([self.buf, new])
        out.append(self._emit(final=False))
        return Features.concat(out)

    def _emit(self, final: bool) -> Features:
        buf = self.buf
        assert buf is not None and self.next_emit is not None
        if final:
            pad = self._dense(Frames.empty(), int(buf.idx[-1]) + 1, int(buf.idx[-1]) + 1 + CTX)
            buf = Frames.concat([buf, pad])
        # Frames that can be computed: next_emit .. last - CTX
        lo = self.next_emit - CTX - int(buf.idx[0])  # position of first context frame
        hi = len(buf) - CTX  # exclusive end of computable frames (positions)
        first_pos = self.next_emit - int(buf.idx[0])
        if hi <= first_pos:
            return Features.concat([])
        seg = slice(lo, hi + CTX)
        n, s, q = buf.n[seg], buf.s[seg], buf.q[seg]
        # 3-frame window sums centred on each frame (positions 1..len-2 of seg)
        n3 = sliding_window_view(n, 3).sum(axis=-1)
        s3 = sliding_window_view(s, 3, axis=0).sum(axis=-1)
        q3 = sliding_window_view(q, 3, axis=0).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean3 = s3 / n3[:, None]
            var = (q3 / n3[:, None] - mean3 * mean3).sum(axis=1) * (n3 / (n3 - 1.0))
        var = np.where(n3 >= 2, np.maximum(var, 0.0), np.nan)
        sd3 = np.sqrt(var)
        # mean3[j] is centred on seg position j+1. Frames to emit are seg positions CTX..len-CTX-1,
        # i.e. mean3 positions CTX-1 .. len-CTX-2; tilt uses mean3 at +-2.
        m = len(n) - 2 * CTX
        c = np.arange(m) + CTX - 1
        tilt = np.linalg.norm(mean3[c + 2] - mean3[c - 2], axis=1)
        feats = Features(
            idx=buf.idx[first_pos:hi].copy(),
            present=buf.n[first_pos:hi] > 0,
            mean=mean3[c],
            sd=sd3[c],
            tilt=tilt,
        )
        self.next_emit = int(buf.idx[hi - 1]) + 1
        keep_from = hi - CTX  # CTX frames of past context; the rest is not emitted yet
        self.buf = Frames(buf.idx[keep_from:], buf.n[keep_from:], buf.s[keep_from:], buf.q[keep_from:])
        if final:
            self.buf = None
            self.next_emit = None
        return feats

    def flush(self) -> Features:
        if self.buf is None:
            return Features.concat([])
        return self._emit(final=True)
