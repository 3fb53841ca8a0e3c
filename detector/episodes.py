"""Active frames -> classified episodes, and the WASM periodic-series rule.

A burst is a run of active frames; runs less than ``MERGE_S`` apart belong together (AASM/WASM:
a movement ends at the start of at least 0.5 s below threshold). A burst is decided once
``POST_S`` of frames after it exist, so it can be compared with the posture before and after.

Classification (brief: twitch < 0.5 s, leg movement 0.5-10 s, contraction > 10 s):
- longer than 10 s with walking-strength impacts -> ``out_of_bed`` (not an episode);
- longer than 10 s otherwise -> ``contraction``;
- a lasting change of leg orientation over ``POSTURE_DEG`` -> ``posture_change`` (not an episode);
- shorter than 0.5 s -> ``twitch``; else ``leg_movement``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from detector.events import Episode
from detector.frames import FRAME_S
from detector.thresholds import K_SD, K_TILT, Scored, concat_scored, empty_scored

MERGE_FRAMES = 5  # < 0.5 s of quiet between runs merges them
POST_FRAMES = 15  # 0.5 s offset rule + 1 s to read the posture afterwards
PRE_FRAMES = 10
POSTURE_DEG = 30.0
WALK_SD_G = 0.12
TWITCH_MAX_S = 0.5
LM_MAX_S = 10.0
IMI_MIN_S = 10.0
IMI_MAX_S = 90.0
SERIES_MIN = 4


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if not (na > 0 and nb > 0) or not (math.isfinite(na) and math.isfinite(nb)):
        return 0.0
    c = float(np.dot(a, b)) / (na * nb)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _nanmean_rows(m: np.ndarray) -> np.ndarray:
    ok = np.isfinite(m).all(axis=1)
    if not ok.any():
        return np.full(3, np.nan)
    return m[ok].mean(axis=0)


class EpisodeAssembler:
    def __init__(self) -> None:
        self.buf: Scored = empty_scored()
        self.done_upto: int = -(2**62)  # frame index up to which bursts were decided

    def push(self, sc: Scored) -> list[Episode]:
        self.buf = concat_scored([self.buf, sc])
        return self._decide(final=False)

    def flush(self) -> list[Episode]:
        out = self._decide(final=True)
        self.buf = empty_scored()
        return out

    def _decide(self, final: bool) -> list[Episode]:
        buf = self.buf
        if not len(buf):
            return []
        idx = buf.feats.idx
        act = np.flatnonzero(buf.active & (idx > self.done_upto))
        out: list[Episode] = []
        last_idx = int(idx[-1])
        keep_from_idx = last_idx - POST_FRAMES - PRE_FRAMES
        if len(act):
            breaks = np.flatnonzero(np.diff(idx[act]) > MERGE_FRAMES)
            starts = np.concatenate(([0], breaks + 1))
            ends = np.concatenate((breaks, [len(act) - 1]))
            for a, b in zip(starts, ends, strict=True):
                p0, p1 = int(act[a]), int(act[b])
                if not final and int(idx[p1]) + POST_FRAMES > last_idx:
                    keep_from_idx = min(keep_from_idx, int(idx[p0]) - PRE_FRAMES)
                    break
                out.append(self._episode(p0, p1))
                self.done_upto = int(idx[p1]) + MERGE_FRAMES
        keep = idx >= keep_from_idx
        if not keep.all():
            k0 = int(np.argmax(keep)) if keep.any() else len(idx)
            f = buf.feats.take(slice(k0, None))
            self.buf = Scored(f, buf.score[k0:], buf.active[k0:], buf.floor_sd[k0:], buf.floor_tilt[k0:])
        return out

    def _episode(self, p0: int, p1: int) -> Episode:
        buf = self.buf
        f = buf.feats
        idx = f.idx
        i0, i1 = int(idx[p0]), int(idx[p1])
        pre = (idx >= i0 - PRE_FRAMES) & (idx < i0)
        post = (idx > i1 + 4) & (idx <= i1 + POST_FRAMES)
        pre_mean = _nanmean_rows(f.mean[pre])
        post_mean = _nanmean_rows(f.mean[post])
        sl = slice(p0, p1 + 1)
        sd = np.nan_to_num(f.sd[sl])
        ref = pre_mean if np.isfinite(pre_mean).all() else _nanmean_rows(f.mean[sl])
        dev = np.linalg.norm(np.nan_to_num(f.mean[sl] - ref), axis=1)
        peak = float(np.max(np.sqrt(sd * sd + dev * dev))) if len(sd) else 0.0

        # Extent: each feature smears an event by its window (sd: one frame each side; tilt: the
        # 0.3 s mean differenced across 0.4 s, about three frames), so take back what each added.
        fidx = idx[sl]
        sd_on = f.sd[sl] > K_SD * buf.floor_sd[sl]
        tilt_on = f.tilt[sl] > K_TILT * buf.floor_tilt[sl]
        spans = []
        if sd_on.any():
            spans.append((int(fidx[sd_on][0]) + 1, int(fidx[sd_on][-1])))
        if tilt_on.any():
            spans.append((int(fidx[tilt_on][0]) + 2, int(fidx[tilt_on][-1]) - 1))
        lo = min(s[0] for s in spans) if spans else i0
        hi = max(s[1] for s in spans) if spans else i1 + 1
        onset, offset = lo * FRAME_S, hi * FRAME_S
        if offset - onset < FRAME_S:
            mid = 0.5 * (onset + offset)
            onset, offset = mid - FRAME_S / 2, mid + FRAME_S / 2
        dur = offset - onset
        dtheta = _angle_deg(pre_mean, post_mean)
        mean_sd = float(np.mean(sd)) if len(sd) else 0.0
        if dur > LM_MAX_S:
            kind = "out_of_bed" if mean_sd > WALK_SD_G else "contraction"
        elif dtheta > POSTURE_DEG:
            kind = "posture_change"
        elif dur < TWITCH_MAX_S:
            kind = "twitch"
        else:
            kind = "leg_movement"
        return Episode(
            start=round(onset, 3),
            end=round(offset, 3),
            kind=kind,
            peak_g=round(peak, 4),
            extra={"posture_change_deg": round(dtheta, 1)},
        )


@dataclass
class PeriodicTracker:
    """WASM 2016: >= 4 leg movements, onset-to-onset 10-90 s; other movements end a series.

    Leg movements are held until their periodic flag is decided, then released.
    """

    pending: list[Episode] = field(default_factory=list)
    in_series: bool = False

    def _close(self) -> list[Episode]:
        out = self.pending if not self.in_series else []
        self.pending, self.in_series = [], False
        return out

    def push(self, eps: list[Episode]) -> list[Episode]:
        out: list[Episode] = []
        for e in eps:
            if e.kind == "twitch":
                out.append(e)
                continue
            if e.kind != "leg_movement":
                out.extend(self._close())
                out.append(e)
                continue
            if self.pending:
                imi = e.start - self.pending[-1].start
                if not (IMI_MIN_S <= imi <= IMI_MAX_S):
                    out.extend(self._close())
            if self.in_series:
                ep = _periodic(e)
                self.pending = [ep]
                out.append(ep)
                continue
            self.pending.append(e)
            if len(self.pending) >= SERIES_MIN:
                out.extend(_periodic(p) for p in self.pending)
                self.pending = [self.pending[-1]]
                self.in_series = True
        return out

    def tick(self, now: float) -> list[Episode]:
        """Release a series that can no longer grow (no new onset within 90 s)."""
        if self.pending and now - self.pending[-1].start > IMI_MAX_S:
            return self._close()
        return []

    def flush(self) -> list[Episode]:
        return self._close()


def _periodic(e: Episode) -> Episode:
    return Episode(e.start, e.end, e.kind, e.peak_g, True, e.in_sleep, dict(e.extra))
