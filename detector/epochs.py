"""Per-epoch activity (for storage and dashboards) and the sleep window found from it.

An epoch is ``EPOCH_S`` of frames aligned to absolute time. It carries the mean movement level
(g), the mean leg angle (degrees of the shin above the horizontal, with the shin's axis estimated
from the data by ``posture.ShinAxis``), the fraction of active frames and the data coverage. Quiet
epochs feed that estimate.

The main block of rest (:func:`rest_block`, used by :mod:`detector.sleep` for the sleep window)
follows the idea of GGIR's HDCZA, on the leg: a 5-minute rolling median of restlessness, rest where
it is low and the leg is not upright, rest blocks joined across interruptions shorter than
``JOIN_S`` (pieces shorter than ``MIN_PIECE_S``, the quiet minutes of lying awake, are left out),
and the longest block of at least ``MIN_BLOCK_S`` wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detector.events import Epoch
from detector.frames import FRAME_S
from detector.posture import ShinAxis, elevation_deg
from detector.rows import Rows
from detector.thresholds import Scored, concat_scored, empty_scored
from detector.vectors import median, run_starts, state_part

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
    """State: the frames of the open epoch and the night's epoch history. The shin axis is shared
    with the episode assembler and is not part of it: ``from_state`` takes the restored one."""

    def __init__(self, axis: ShinAxis | None = None) -> None:
        self.axis = axis if axis is not None else ShinAxis()
        self.open: Scored = empty_scored()  # the frames of the epoch still open
        # the whole night at EPOCH_S granularity: time, movement_g, angle_deg, coverage, active_frac
        self.history = Rows(5)

    def state(self) -> dict:
        return {"open": self.open.state(), "history": self.history.state()}

    @classmethod
    def from_state(cls, state: dict, axis: ShinAxis | None = None) -> EpochStage:
        st = cls(axis)
        st.open = state_part(state, "open", Scored.from_state)
        st.history = state_part(state, "history", lambda s: Rows.from_state(s, 5))
        return st

    def push(self, sc: Scored) -> list[EpochStat]:
        if not len(sc):
            return []
        buf = concat_scored([self.open, sc])
        ep = buf.feats.idx // EPOCH_FRAMES
        last = int(np.searchsorted(ep, ep[-1]))  # the last epoch stays open
        self.open = buf.take(slice(last, None))
        return self._close(buf.take(slice(0, last)))

    def flush(self) -> list[EpochStat]:
        sc, self.open = self.open, empty_scored()
        return self._close(sc)

    def _close(self, sc: Scored) -> list[EpochStat]:
        """The stats of complete epochs. Sums are vectorised; the shin axis is updated epoch by
        epoch, since each epoch's angle uses the estimate from the quiet epochs before it."""
        if not len(sc):
            return []
        f = sc.feats
        ep = f.idx // EPOCH_FRAMES
        starts = run_starts(ep)
        coverage = np.add.reduceat(f.present, starts) / EPOCH_FRAMES
        ok = f.present & np.isfinite(f.sd) & np.isfinite(f.tilt)
        pos = np.cumsum(ok) - ok  # position of each frame among the ok ones
        n_ok = np.add.reduceat(ok, starts)
        keep = n_ok > 0  # an epoch without one usable frame is not reported
        if not keep.any():
            return []
        starts_ok = pos[starts][keep]  # each kept epoch's first ok frame
        sd, g, active = f.sd[ok], f.mean[ok], sc.active[ok]
        n = n_ok[keep].astype(float)
        move = np.add.reduceat(sd, starts_ok) / n
        gm = np.add.reduceat(g, starts_ok, axis=0) / n[:, None]
        frac = np.add.reduceat(active, starts_ok) / n
        epochs, coverage = ep[starts][keep], coverage[keep]
        axes = np.empty((len(epochs), 3))
        for i, e in enumerate(epochs.tolist()):
            axes[i] = self.axis.axis(before_epoch=e)
            if frac[i] < QUIET_FRAC and coverage[i] > 0.5:
                self.axis.add(e, gm[i] / np.sqrt(gm[i] @ gm[i]))
        sizes = np.diff(np.append(starts_ok, len(sd)))
        elev = elevation_deg(np.repeat(axes, sizes, axis=0), g)
        angle = np.add.reduceat(elev, starts_ok) / n
        rows = np.column_stack((epochs * EPOCH_S, np.round(move, 5), np.round(angle, 2), np.round(coverage, 3), frac))
        out = []
        for r in rows.tolist():
            self.history.append(r)
            out.append(EpochStat(Epoch(time=r[0], movement_g=r[1], angle_deg=r[2], coverage=r[3]), r[4]))
        return out


def history_epochs(history: Rows) -> list[Epoch]:
    return [Epoch(float(r[0]), float(r[1]), float(r[2]), float(r[3])) for r in history.data]


def rest_block(activity: np.ndarray, upright: np.ndarray) -> tuple[int, int] | None:
    """The main block of rest as (first, end) epoch positions on a regular epoch grid, or None.

    ``activity`` is each epoch's restless fraction, ``upright`` whether the leg was upright in it."""
    if not len(activity):
        return None
    smooth = _rolling_median(activity, SMOOTH_EPOCHS)
    rest = (smooth <= REST_MAX_ACTIVE) & ~upright
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
    return int(best[0]), int(best[1])


def _rolling_median(x: np.ndarray, size: int) -> np.ndarray:
    """Centred running median with the edges repeated (as scipy.ndimage's mode="nearest")."""
    left = size // 2
    padded = np.concatenate((np.full(left, x[0]), x, np.full(size - 1 - left, x[-1])))
    return median(sliding_window_view(padded, size))
