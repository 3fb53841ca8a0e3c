"""Frames -> per-frame movement features, with bounded context carried between batches.

For frame k (0.1 s), over the 0.3 s window of frames k-1..k+1:
- ``mean``: the mean acceleration vector (gravity plus slow motion), in g;
- ``sd``: the within-window standard deviation (all axes), in g;
- ``sd_perp``: the part of that spread perpendicular to gravity, in g: jerks, tremor and impacts
  of the leg itself, but not the vertical bounce of a mattress shaken by someone else;
- ``tilt``: the angle between the window means 0.4 s apart (mean[k+2] vs mean[k-2]), in radians:
  rotations of the shin such as an ankle dorsiflexion, blind to vertical vibration;
- ``n``: the number of samples in the window (3-4 at 12.5 Hz, 15-16 at 52 Hz), which sets how
  widely ``sd_perp`` scatters about the noise (see ``thresholds``).
Windows are centred, so a frame's features are ready once the frames three steps later exist.
Every sum runs over a fixed window (no running cumulative sums), so results do not depend on how
the stream was cut into batches. Missing frames count as empty. A silence longer than
``MAX_FILL_S`` starts a new segment instead of materialising empty frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detector.frames import FRAME_S, Frames
from detector.vectors import angle_rad, norm_rows, state_array, state_item, state_part, state_value

CTX = 3  # frames of context needed on each side
MAX_FILL_S = 600.0


@dataclass
class Features:
    idx: np.ndarray  # (k,) int64 frame index
    present: np.ndarray  # (k,) bool: the frame itself holds samples
    mean: np.ndarray  # (k, 3) g, NaN where the window is empty
    sd: np.ndarray  # (k,) g, NaN where undefined
    sd_perp: np.ndarray  # (k,) g, NaN where undefined
    tilt: np.ndarray  # (k,) rad, NaN where undefined
    n: np.ndarray  # (k,) samples in the 0.3 s window

    def __len__(self) -> int:
        return len(self.idx)

    def take(self, sl: slice | np.ndarray) -> Features:
        return Features(
            self.idx[sl], self.present[sl], self.mean[sl], self.sd[sl], self.sd_perp[sl], self.tilt[sl], self.n[sl]
        )

    def state(self) -> dict:
        return {f: getattr(self, f).copy() for f in _FIELDS}

    @classmethod
    def from_state(cls, state: dict) -> Features:
        f = cls(
            state_array(state, "idx", np.int64),
            state_array(state, "present", np.bool_),
            state_array(state, "mean", np.float64, 3),
            state_array(state, "sd", np.float64),
            state_array(state, "sd_perp", np.float64),
            state_array(state, "tilt", np.float64),
            state_array(state, "n", np.float64),
        )
        if len({len(getattr(f, name)) for name in _FIELDS}) != 1:
            raise ValueError(": the arrays differ in length")
        return f

    @staticmethod
    def concat(parts: list[Features]) -> Features:
        parts = [p for p in parts if len(p)]
        if not parts:
            e = np.empty(0)
            return Features(np.empty(0, np.int64), np.empty(0, bool), np.empty((0, 3)), e, e, e, e)
        if len(parts) == 1:
            return parts[0]
        return Features(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("idx", "present", "mean", "sd", "sd_perp", "tilt", "n")


def _wsum(x: np.ndarray) -> np.ndarray:
    """Sums over 3-frame windows along axis 0 (fixed order: independent of batching)."""
    return x[:-2] + x[1:-1] + x[2:]  # ((a + b) + c): the order a window sum takes


def compute(n: np.ndarray, s: np.ndarray, q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    """Features for positions CTX..len-CTX-1 of dense frame arrays."""
    n3, s3, q3, c3 = _wsum(n), _wsum(s), _wsum(q), _wsum(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean3 = s3 / n3[:, None]
        corr = n3 / (n3 - 1.0)
        cxx = (q3[:, 0] / n3 - mean3[:, 0] ** 2) * corr
        cyy = (q3[:, 1] / n3 - mean3[:, 1] ** 2) * corr
        czz = (q3[:, 2] / n3 - mean3[:, 2] ** 2) * corr
        cxy = (c3[:, 0] / n3 - mean3[:, 0] * mean3[:, 1]) * corr
        cxz = (c3[:, 1] / n3 - mean3[:, 0] * mean3[:, 2]) * corr
        cyz = (c3[:, 2] / n3 - mean3[:, 1] * mean3[:, 2]) * corr
        var = np.maximum(cxx + cyy + czz, 0.0)
        g = mean3 / norm_rows(mean3)[:, None]
        gx, gy, gz = g[:, 0], g[:, 1], g[:, 2]
        var_par = gx * gx * cxx + gy * gy * cyy + gz * gz * czz + 2 * (gx * gy * cxy + gx * gz * cxz + gy * gz * cyz)
        var_perp = np.clip(var - var_par, 0.0, None)
    ok = n3 >= 2
    sd = np.where(ok, np.sqrt(var), np.nan)
    sd_perp = np.where(ok, np.sqrt(var_perp), np.nan)
    # mean3[j] is centred on position j+1; emitted positions CTX..len-CTX-1 are mean3[CTX-1 .. len-CTX-2]
    m = len(n) - 2 * CTX
    ci = slice(CTX - 1, CTX - 1 + m)  # (slices, not index arrays: views, no gather)
    tilt = angle_rad(mean3[CTX + 1 : CTX + 1 + m], mean3[CTX - 3 : CTX - 3 + m])  # mean3[ci + 2], mean3[ci - 2]
    return mean3[ci], sd[ci], sd_perp[ci], tilt, n3[ci]


class FeatureStage:
    def __init__(self) -> None:
        self.buf: Frames | None = None
        self.next_emit: int | None = None  # absolute frame index of the next frame to emit

    def state(self) -> dict:
        """The frames kept for context and not yet emitted (None between segments)."""
        return {"buf": None if self.buf is None else self.buf.state(), "next_emit": self.next_emit}

    @classmethod
    def from_state(cls, state: dict) -> FeatureStage:
        st = cls()
        st.buf = None if state_item(state, "buf") is None else state_part(state, "buf", Frames.from_state)
        st.next_emit = state_value(state, "next_emit", int, none_ok=(st.buf is None))
        return st

    @staticmethod
    def _dense(fr: Frames, start: int, stop: int) -> Frames:
        """Dense frames for indices start..stop-1 (empty where missing)."""
        length = stop - start
        if len(fr) == length and length and fr.idx[0] == start and fr.idx[-1] == stop - 1:
            return fr  # no frame missing (indices strictly increase)
        n = np.zeros(length)
        s = np.zeros((length, 3))
        q = np.zeros((length, 3))
        c = np.zeros((length, 3))
        pos = fr.idx - start
        n[pos] = fr.n
        s[pos] = fr.s
        q[pos] = fr.q
        c[pos] = fr.c
        return Frames(np.arange(start, stop, dtype=np.int64), n, s, q, c)

    def push(self, fr: Frames) -> Features:
        if not len(fr):
            return Features.concat([])
        out: list[Features] = []
        if self.buf is not None:
            gap_frames = fr.idx[0] - (self.buf.idx[-1] + 1)
            if gap_frames * FRAME_S > MAX_FILL_S:
                out.append(self.flush())
        if self.buf is None:
            first = int(fr.idx[0])
            self.buf = self._dense(Frames.empty(), first - CTX, first)
            self.next_emit = first
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
        first_pos = self.next_emit - int(buf.idx[0])
        hi = len(buf) - CTX  # exclusive end of computable positions
        if hi <= first_pos:
            return Features.concat([])
        seg = slice(first_pos - CTX, hi + CTX)
        mean, sd, sd_perp, tilt, n3 = compute(buf.n[seg], buf.s[seg], buf.q[seg], buf.c[seg])
        feats = Features(buf.idx[first_pos:hi].copy(), buf.n[first_pos:hi] > 0, mean, sd, sd_perp, tilt, n3)
        self.next_emit = int(buf.idx[hi - 1]) + 1
        k = hi - CTX  # keep CTX frames of past context; the rest is not emitted yet
        self.buf = Frames(buf.idx[k:], buf.n[k:], buf.s[k:], buf.q[k:], buf.c[k:])
        if final:
            self.buf = None
            self.next_emit = None
        return feats

    def flush(self) -> Features:
        if self.buf is None:
            return Features.concat([])
        return self._emit(final=True)
