"""How long the leg was away from rest: an episode's edges from the shin's displacement.

A movement lasts from when the shin leaves the posture it rested in to when it comes to rest in the
posture it keeps afterwards (AASM/WASM: an LM is 0.5-10 s of muscle activity; the shin is held turned
while it lasts). The jerk and rotation-rate thresholds see the abrupt parts, the start of an ankle
dorsiflexion, say, and not the leg held turned for a second or two after it, nor its slow return:
a 2-s leg movement then reads as a 0.1-s twitch. :func:`displaced_span` takes the edges from the
0.3 s window means instead: the onset where the shin is first displaced from the posture *before*
(the mean of the frames just before the event), the offset where it is last displaced from the
posture *after* (the frames just after). A twitch that leaves the leg a few degrees from where it
was has come to rest in its new posture as soon as it is over, so it is not lengthened by the
residual, as it was when both edges were measured against the posture before. The means are read
only outside the active frames (during a jerk they carry its acceleration, not the posture), and a
displacement counts when it is held for ``HELD_FRAMES`` (one window's length: an independent mean).

Displaced means farther than ``DISPLACED_K`` times the orientation noise of a 0.3 s mean: the angle
between two independent such means (the tilt floor, their median) is sqrt(2) times that of one mean
against a well-averaged posture, so a single mean's median noise is ``floor_tilt / sqrt(2)``, and
three times a Rayleigh median is crossed by noise alone in 0.2 % of frames.
"""

from __future__ import annotations

import numpy as np

from detector.frames import FRAME_S
from detector.vectors import angle_rad, finite

DISPLACED_K = 3.0
HELD_FRAMES = 3  # held displaced for a window's length after the active frames
HALF_S = 1.5 * FRAME_S  # half the 0.3 s window of a frame's mean


def _edge(idx: np.ndarray, ratio: np.ndarray, k: int, step: int) -> float:
    """Time where ``ratio`` falls through 1 between frame k (above) and k+step (centres, s)."""
    j = k + step
    x = float(idx[k])
    if 0 <= j < len(ratio) and ratio[j] <= 1.0 < ratio[k] and idx[j] == idx[k] + step:
        x += step * (ratio[k] - 1.0) / (ratio[k] - ratio[j])
    return (x + 0.5) * FRAME_S


def _reach(r: float) -> float:
    """How far inside a mean's crossing the leg's own edge lies, for a displacement ``r`` x threshold.

    A 0.3 s mean centred at c averages the samples of c +- ``HALF_S``; after a step of r thresholds it
    crosses the threshold once 1/r of its window holds the displaced leg, that is at ``HALF_S (1 - 2/r)``
    outside the step (none for r <= 2)."""
    return HALF_S * max(0.0, 1.0 - 2.0 / r)


def displaced_span(
    idx: np.ndarray,
    u: np.ndarray,
    a0: int,
    a1: int,
    lo: int,
    hi: int,
    pre: np.ndarray | None,
    post: np.ndarray | None,
    floor_tilt: float,
) -> tuple[float | None, float | None]:
    """Onset and offset (s) of the shin's displacement around the active frames ``a0..a1``.

    ``u``: unit 0.3 s means of the buffer (frame indices ``idx``); the walk goes back from ``a0`` no
    further than ``lo`` while the shin is displaced from ``pre``, and on from ``a1`` no further than
    ``hi`` while it is displaced from ``post``. ``None`` for an edge the displacement does not move
    (the shin was not displaced at the active frame, or there is no posture to measure against).
    """
    thr = DISPLACED_K * float(floor_tilt) / np.sqrt(2.0)
    onset = offset = None
    if thr > 0 and pre is not None and np.isfinite(pre).all() and a0 > lo:
        d = finite(angle_rad(u[lo:a0], pre[None, :]), nan=0.0) / thr
        k = _held(idx[lo:a0], d, len(d) - 1, -1)
        if k is not None:
            onset = _edge(idx[lo:a0], d, k, -1) + _reach(float(d[k:].max()))
    if thr > 0 and post is not None and np.isfinite(post).all() and hi > a1:
        d = finite(angle_rad(u[a1 + 1 : hi + 1], post[None, :]), nan=0.0) / thr
        k = _held(idx[a1 + 1 : hi + 1], d, 0, 1)
        if k is not None:
            offset = _edge(idx[a1 + 1 : hi + 1], d, k, 1) - _reach(float(d[: k + 1].max()))
    return onset, offset


def _held(idx: np.ndarray, d: np.ndarray, k: int, step: int) -> int | None:
    """The far end of the run of displaced frames (``d`` > 1) from position k on in direction
    ``step``, if it lasts ``HELD_FRAMES`` or more; else None."""
    j = k
    while 0 <= j < len(d) and d[j] > 1.0 and (j == k or idx[j] == idx[j - step] + step):
        j += step
    return j - step if abs(j - k) >= HELD_FRAMES else None
