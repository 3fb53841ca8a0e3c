"""Adaptive thresholds from the signal's own noise floor.

Time is cut into blocks of ``BLOCK_S`` aligned to absolute time. Each finished block yields its
median ``sd_perp`` and median ``tilt`` (in quiet sleep these are the sensor noise); the floor used for
a block is the median of those block medians over the last ``HISTORY`` blocks, this one included,
so a restless minute cannot lift the floor. A frame is active when its ``sd_perp`` or ``tilt`` stands
``K_SD`` or ``K_TILT`` times above the floor. Frames are held until their block is complete, which
makes the result independent of batching at the cost of up to one block of latency.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

import numpy as np

from detector.features import Features
from detector.frames import FRAME_S

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
        self.pending: list[Features] = []
        self.block: int | None = None
        self.hist_sd: deque[float] = deque(maxlen=HISTORY)
        self.hist_tilt: deque[float] = deque(maxlen=HISTORY)
        self.last_floor = (0.003, 0.002)

    def push(self, feats: Features) -> Scored:
        if not len(feats):
            return empty_scored()
        blocks = feats.idx // BLOCK_FRAMES
        out: list[Scored] = []
        # split at block boundaries
        cuts = np.flatnonzero(np.diff(blocks)) + 1
        bounds = [0, *cuts.tolist(), len(feats)]
        for a, b in itertools.pairwise(bounds):
            blk = int(blocks[a])
            if self.block is not None and blk != self.block:
                out.append(self._close())
            self.block = blk
            self.pending.append(feats.take(slice(a, b)))
        return concat_scored(out)

    def _close(self) -> Scored:
        f = Features.concat(self.pending)
        self.pending = []
        self.block = None
        if not len(f):
            return empty_scored()
        valid = np.isfinite(f.sd_perp) & np.isfinite(f.tilt) & f.present
        if valid.sum() >= MIN_VALID:
            self.hist_sd.append(float(np.median(f.sd_perp[valid])))
            self.hist_tilt.append(float(np.median(f.tilt[valid])))
        if self.hist_sd:
            fsd = max(float(np.median(self.hist_sd)), FLOOR_MIN_SD)
            ftilt = max(float(np.median(self.hist_tilt)), FLOOR_MIN_TILT)
            self.last_floor = (fsd, ftilt)
        fsd, ftilt = self.last_floor
        with np.errstate(invalid="ignore"):
            score = np.fmax(f.sd_perp / (K_SD * fsd), f.tilt / (K_TILT * ftilt))
        active = np.nan_to_num(score, nan=0.0) > 1.0
        k = len(f)
        return Scored(f, score, active, np.full(k, fsd), np.full(k, ftilt))

    def flush(self) -> Scored:
        if not self.pending:
            return empty_scored()
        return self._close()
