"""Adaptive thresholds from the signal's own noise floor.

Time is cut into blocks of ``BLOCK_S`` aligned to absolute time. Each finished block yields its
median ``sd_perp`` and median ``tilt`` (in quiet sleep these are the sensor noise); the floor used for
a block is the median of those block medians over the last ``HISTORY`` blocks, this one included,
so a restless minute cannot lift the floor. A frame is active when its ``sd_perp`` or ``tilt`` stands
``K_SD`` or ``K_TILT`` times above the floor. Frames are held until their block is complete, which
makes the result independent of batching at the cost of up to one block of latency.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from detector.features import Features
from detector.frames import FRAME_S
from detector.vectors import median, median_of_few, run_starts

BLOCK_S = 60.0
BLOCK_FRAMES = round(BLOCK_S / FRAME_S)
HISTORY = 15
K_SD = 2.0
K_TILT = 4.0
MIN_VALID = 100  # frames a block needs before its medians are trusted
FLOOR_MIN_SD = 0.0008  # g: quantisation floor guard
FLOOR_MIN_TILT = 0.0004


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
                self.hist_sd.append(float(med_sd[i]))
                self.hist_tilt.append(float(med_tilt[i]))
            if self.hist_sd:
                fsd = max(median_of_few(self.hist_sd), FLOOR_MIN_SD)
                ftilt = max(median_of_few(self.hist_tilt), FLOOR_MIN_TILT)
                self.last_floor = (fsd, ftilt)
            floors[i] = self.last_floor
        floor_sd, floor_tilt = np.repeat(floors[:, 0], sizes), np.repeat(floors[:, 1], sizes)
        with np.errstate(invalid="ignore"):
            score = np.fmax(f.sd_perp / (K_SD * floor_sd), f.tilt / (K_TILT * floor_tilt))
        active = np.nan_to_num(score, nan=0.0) > 1.0
        return Scored(f, score, active, floor_sd, floor_tilt)


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
