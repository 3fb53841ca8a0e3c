"""Adaptive thresholds from the signal's own noise floor.

Time is cut into blocks of ``BLOCK_S`` aligned to absolute time. Each finished block yields its
median ``sd_perp`` and median ``tilt`` (in quiet sleep these are the sensor noise); the floor used for
a block is the median of those block medians over the last ``HISTORY`` blocks, this one included,
so a restless minute cannot lift the floor; nor, as block medians enter it capped
(``FLOOR_MAX_SD``, ``FLOOR_MAX_TILT``), can a night that begins with a walk, with no history yet. A
frame is active when its ``sd_perp`` or ``tilt`` stands ``K_SD`` or ``K_TILT`` times above the floor.
Frames are held until their block is complete, which makes the result independent of batching at the
cost of up to one block of latency.

Slow sensors. ``sd_perp`` over a window of n samples scatters about the noise like
sqrt(chi2(2(n-1)) / 2(n-1)): with the 15 samples of a 52 Hz window, ``K_SD`` times the median is far
in the tail, but with the 3-4 samples of a 12.5 Hz window it is not, and noise alone would read as
twitches. So the jerk threshold of a frame is ``K_SD * floor * sd_factor(n)``, where ``sd_factor``
keeps the noise's chance of crossing it at that of ``REF_SAMPLES`` samples (1 at 26 Hz and above).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from detector.features import Features
from detector.frames import FRAME_S
from detector.vectors import median, median_of_few, run_starts, state_array, state_item, state_part

BLOCK_S = 60.0
BLOCK_FRAMES = round(BLOCK_S / FRAME_S)
HISTORY = 15
K_SD = 2.0
K_TILT = 4.0
MIN_VALID = 100  # frames a block needs before its medians are trusted
FLOOR_MIN_SD = 0.0008  # g: quantisation floor guard
FLOOR_MIN_TILT = 0.0004
#: A block median enters the history at most this high (g, rad): a still shin's sensor noise and
#: quantisation stand well below (floors of at most 10 mg and 11 mrad on every generator's nights,
#: 12.5-208 Hz), while a block spent walking (200-300 mg, 400-900 mrad) would otherwise become the floor
#: of a night that begins with a walk, and hide that walk (session 9: a walk at the start of a synthetic
#: night, seeds +19000, found only once capped; nothing else changed on any generator).
FLOOR_MAX_SD = 0.04
FLOOR_MAX_TILT = 0.04
REF_SAMPLES = 8  # a 0.3 s window at 26 Hz
TAIL_P = 0.9999


#: ``sd_factor`` for windows of 0..REF_SAMPLES samples (1 from there on): the quantile ``TAIL_P`` over
#: the median of sqrt(chi2(d) / d), d = 2 (n - 1) degrees of freedom (n >= 2), relative to that at
#: ``REF_SAMPLES``, at least 1. Computed once with scipy.stats.chi2.ppf (importing scipy.stats costs
#: about a second, more than detecting a night):
#: ``r = sqrt(chi2.ppf(TAIL_P, d) / chi2.ppf(0.5, d)); max(r / r[REF_SAMPLES], 1)``.
_SD_FACTOR = np.array([2.0403, 2.0403, 2.0403, 1.4814, 1.2774, 1.1652, 1.0921, 1.0398, 1.0])


def sd_factor(n: np.ndarray) -> np.ndarray:
    """How much higher a frame's jerk threshold stands, for its window's sample count ``n``."""
    k = np.clip(np.nan_to_num(n, nan=0.0), 0, REF_SAMPLES).astype(np.int64)
    return _SD_FACTOR[k]


@dataclass
class Scored:
    feats: Features
    score: np.ndarray  # (k,) max of sd_perp/(K_SD*floor_sd), tilt/(K_TILT*floor_tilt); NaN if undefined
    active: np.ndarray  # (k,) bool
    floor_sd: np.ndarray  # (k,) g
    floor_tilt: np.ndarray  # (k,) g

    def __len__(self) -> int:
        return len(self.feats)

    def take(self, sl: slice) -> Scored:
        return Scored(self.feats.take(sl), self.score[sl], self.active[sl], self.floor_sd[sl], self.floor_tilt[sl])

    def state(self) -> dict:
        return {
            "feats": self.feats.state(),
            "score": self.score.copy(),
            "active": self.active.copy(),
            "floor_sd": self.floor_sd.copy(),
            "floor_tilt": self.floor_tilt.copy(),
        }

    @classmethod
    def from_state(cls, state: dict) -> Scored:
        sc = cls(
            state_part(state, "feats", Features.from_state),
            state_array(state, "score", np.float64),
            state_array(state, "active", np.bool_),
            state_array(state, "floor_sd", np.float64),
            state_array(state, "floor_tilt", np.float64),
        )
        if not len(sc.feats) == len(sc.score) == len(sc.active) == len(sc.floor_sd) == len(sc.floor_tilt):
            raise ValueError(": the arrays differ in length")
        return sc


def empty_scored() -> Scored:
    e = np.empty(0)
    return Scored(Features.concat([]), e, np.empty(0, bool), e, e)


def concat_scored(parts: list[Scored]) -> Scored:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_scored()
    if len(parts) == 1:
        return parts[0]
    return Scored(
        Features.concat([p.feats for p in parts]),
        np.concatenate([p.score for p in parts]),
        np.concatenate([p.active for p in parts]),
        np.concatenate([p.floor_sd for p in parts]),
        np.concatenate([p.floor_tilt for p in parts]),
    )


class ThresholdStage:
    def __init__(self) -> None:
        self.pending = Features.concat([])  # the frames of the block still open
        self.hist_sd: deque[float] = deque(maxlen=HISTORY)
        self.hist_tilt: deque[float] = deque(maxlen=HISTORY)
        self.last_floor = (0.003, 0.002)

    def state(self) -> dict:
        """The frames of the open block, the block medians of the history, the floor last used."""
        return {
            "pending": self.pending.state(),
            "hist_sd": list(self.hist_sd),
            "hist_tilt": list(self.hist_tilt),
            "last_floor": list(self.last_floor),
        }

    @classmethod
    def from_state(cls, state: dict) -> ThresholdStage:
        st = cls()
        st.pending = state_part(state, "pending", Features.from_state)
        st.hist_sd = deque(_floats(state, "hist_sd", HISTORY), maxlen=HISTORY)
        st.hist_tilt = deque(_floats(state, "hist_tilt", HISTORY), maxlen=HISTORY)
        if len(st.hist_sd) != len(st.hist_tilt):
            raise ValueError("hist_tilt: not as long as hist_sd")
        fsd, ftilt = _floats(state, "last_floor", 2, exact=True)
        st.last_floor = (fsd, ftilt)
        return st

    def push(self, feats: Features) -> Scored:
        if not len(feats):
            return empty_scored()
        buf = Features.concat([self.pending, feats])
        blocks = buf.idx // BLOCK_FRAMES
        last = int(np.searchsorted(blocks, blocks[-1]))  # the last block stays open
        self.pending = buf.take(slice(last, None))
        return self._close(buf.take(slice(0, last)))

    def flush(self) -> Scored:
        f, self.pending = self.pending, Features.concat([])
        return self._close(f)

    def _close(self, f: Features) -> Scored:
        """Score the frames of complete blocks, block by block in time order."""
        if not len(f):
            return empty_scored()
        blocks = f.idx // BLOCK_FRAMES
        starts = run_starts(blocks)
        sizes = np.diff(np.append(starts, len(f)))
        valid = np.isfinite(f.sd_perp) & np.isfinite(f.tilt) & f.present
        med_sd, med_tilt = _block_medians(f.sd_perp, valid, starts, sizes), _block_medians(f.tilt, valid, starts, sizes)
        floors = np.empty((len(starts), 2))
        for i in range(len(starts)):
            if med_sd[i] == med_sd[i]:  # the block had MIN_VALID valid frames
                self.hist_sd.append(min(float(med_sd[i]), FLOOR_MAX_SD))
                self.hist_tilt.append(min(float(med_tilt[i]), FLOOR_MAX_TILT))
            if self.hist_sd:
                fsd = max(median_of_few(self.hist_sd), FLOOR_MIN_SD)
                ftilt = max(median_of_few(self.hist_tilt), FLOOR_MIN_TILT)
                self.last_floor = (fsd, ftilt)
            floors[i] = self.last_floor
        floor_sd, floor_tilt = np.repeat(floors[:, 0], sizes), np.repeat(floors[:, 1], sizes)
        with np.errstate(invalid="ignore"):
            score = np.fmax(f.sd_perp / (K_SD * floor_sd * sd_factor(f.n)), f.tilt / (K_TILT * floor_tilt))
        active = np.nan_to_num(score, nan=0.0) > 1.0
        return Scored(f, score, active, floor_sd, floor_tilt)


def _floats(state: dict, key: str, most: int, exact: bool = False) -> list[float]:
    v = state_item(state, key)
    if not isinstance(v, list) or not all(type(x) is float for x in v) or len(v) > most or (exact and len(v) != most):
        raise ValueError(f"{key}: expected a list of {'' if exact else 'at most '}{most} floats")
    return list(v)


def _block_medians(x: np.ndarray, valid: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Median of the valid values of each block; NaN where fewer than ``MIN_VALID`` are valid.

    Blocks whose frames are all there and valid (nearly all of them) are done together, as rows
    of one array; the others one by one."""
    out = np.full(len(starts), np.nan)
    nvalid = np.add.reduceat(valid, starts) if len(starts) else np.zeros(0, int)
    full = (sizes == BLOCK_FRAMES) & (nvalid == BLOCK_FRAMES)
    if full.any():
        out[full] = median(x[starts[full][:, None] + np.arange(BLOCK_FRAMES)])
    for i in np.flatnonzero(~full & (nvalid >= MIN_VALID)):
        v = x[starts[i] : starts[i] + sizes[i]][valid[starts[i] : starts[i] + sizes[i]]]
        out[i] = median(v)
    return out
