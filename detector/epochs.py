"""Per-epoch activity (for storage and dashboards) and the sleep window found from it.

An epoch is ``EPOCH_S`` of frames aligned to absolute time. It carries the mean movement level
(g), the mean leg angle (degrees of the shin above the horizontal, with the shin's axis estimated
from the data by ``posture.ShinAxis``), the fraction of active frames and the data coverage. Quiet
epochs feed that estimate.

The sleep window follows the idea of GGIR's HDCZA, on the leg: a 5-minute rolling median of
restlessness, rest where it is low and the leg is not upright, rest blocks joined across
interruptions shorter than ``JOIN_S`` (pieces shorter than ``MIN_PIECE_S``, the quiet minutes of
lying awake, are left out), and the longest block of at least ``MIN_BLOCK_S`` wins.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detector.events import Epoch
from detector.frames import FRAME_S
from detector.posture import ShinAxis, elevation_deg
from detector.rows import Rows
from detector.thresholds import Scored

EPOCH_S = 30.0
EPOCH_FRAMES = round(EPOCH_S / FRAME_S)
REST_MAX_ACTIVE = 0.03
QUIET_FRAC = 0.1
UPRIGHT_DEG = 50.0
JOIN_S = 3600.0
MIN_BLOCK_S = 1800.0
MIN_PIECE_S = 600.0
SMOOTH_EPOCHS = 10


@dataclass
class EpochStat:
    epoch: Epoch
    active_frac: float


class EpochStage:
    def __init__(self, axis: ShinAxis | None = None) -> None:
        self.axis = axis if axis is not None else ShinAxis()
        self.cur: int | None = None
        self.acc: list[Scored] = []
        # the whole night at EPOCH_S granularity: time, movement_g, angle_deg, coverage, active_frac
        self.history = Rows(5)

    def push(self, sc: Scored) -> list[EpochStat]:
        out: list[EpochStat] = []
        if not len(sc):
            return out
        ep = sc.feats.idx // EPOCH_FRAMES
        cuts = np.flatnonzero(np.diff(ep)) + 1
        bounds = [0, *cuts.tolist(), len(ep)]
        for a, b in itertools.pairwise(bounds):
            e = int(ep[a])
            if self.cur is not None and e != self.cur:
                out.extend(self._close())
            self.cur = e
            f = sc.feats.take(slice(a, b))
            self.acc.append(Scored(f, sc.score[a:b], sc.active[a:b], sc.floor_sd[a:b], sc.floor_tilt[a:b]))
        return out

    def _close(self) -> list[EpochStat]:
        if self.cur is None or not self.acc:
            return []
        e = self.cur
        self.cur = None
        parts, self.acc = self.acc, []
        present = np.concatenate([p.feats.present for p in parts])
        sd = np.concatenate([p.feats.sd for p in parts])
        tilt = np.concatenate([p.feats.tilt for p in parts])
        mean = np.concatenate([p.feats.mean for p in parts])
        active = np.concatenate([p.active for p in parts])
        ok = present & np.isfinite(sd) & np.isfinite(tilt)
        coverage = float(present.sum()) / EPOCH_FRAMES
        if not ok.any():
            return []
        move = float(np.mean(sd[ok]))
        g = mean[ok]
        angle = float(np.mean(elevation_deg(self.axis.axis(before_epoch=e), g)))
        frac = float(active[ok].mean())
        if frac < QUIET_FRAC and coverage > 0.5:
            gm = g.mean(axis=0)
            self.axis.add(e, gm / np.linalg.norm(gm))
        stat = EpochStat(
            Epoch(
                time=e * EPOCH_S,
                movement_g=round(move, 5),
                angle_deg=round(angle, 2),
                coverage=round(coverage, 3),
            ),
            frac,
        )
        e_ = stat.epoch
        self.history.append((e_.time, e_.movement_g, e_.angle_deg, e_.coverage, stat.active_frac))
        return [stat]

    def flush(self) -> list[EpochStat]:
        return self._close()


def history_epochs(history: Rows) -> list[Epoch]:
    return [Epoch(float(r[0]), float(r[1]), float(r[2]), float(r[3])) for r in history.data]


def sleep_window(history: Rows) -> tuple[float, float] | None:
    """(start, end) in Unix seconds, or None when no block of rest is long enough."""
    if not len(history):
        return None
    h = history.data
    t, act, angle = h[:, 0], h[:, 4], h[:, 2]
    # place epochs on a regular grid (missing epochs count as not resting)
    k = np.round((t - t[0]) / EPOCH_S).astype(int)
    grid_act = np.ones(k[-1] + 1)
    grid_up = np.ones(k[-1] + 1, bool)
    grid_act[k] = act
    grid_up[k] = angle > UPRIGHT_DEG
    smooth = _rolling_median(grid_act, SMOOTH_EPOCHS)
    rest = (smooth <= REST_MAX_ACTIVE) & ~grid_up
    if not rest.any():
        return None
    edges = np.diff(np.concatenate(([0], rest.astype(int), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    blocks: list[list[int]] = []
    for s, e in zip(starts, ends, strict=True):
        if (e - s) * EPOCH_S < MIN_PIECE_S:
            continue  # a few quiet minutes while awake in bed are no sleep
        if blocks and (s - blocks[-1][1]) * EPOCH_S < JOIN_S:
            blocks[-1][1] = e
        else:
            blocks.append([s, e])
    if not blocks:
        return None
    best = max(blocks, key=lambda b: b[1] - b[0])
    if (best[1] - best[0]) * EPOCH_S < MIN_BLOCK_S:
        return None
    return float(t[0] + best[0] * EPOCH_S), float(t[0] + best[1] * EPOCH_S)


def _rolling_median(x: np.ndarray, size: int) -> np.ndarray:
    """Centred running median with the edges repeated (as scipy.ndimage's mode="nearest")."""
    left = size // 2
    padded = np.concatenate((np.full(left, x[0]), x, np.full(size - 1 - left, x[-1])))
    return np.median(sliding_window_view(padded, size), axis=-1)
