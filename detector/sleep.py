"""The sleep window of a night: the main block of rest, where sleep began, and where it ended.

Restlessness here is what the person did, not what the sensor shook with: per ``EPOCH_S`` epoch, the
seconds covered by leg movements that are not periodic, posture changes and getting up (a periodic
series, twitches and cramps happen asleep; a bed partner's vibration is no episode at all). The rest
block then follows the idea of GGIR's HDCZA as in :func:`detector.epochs.rest_block`.

Lying awake before sleep ends where restless movements thin out and twitches begin, which a 5-minute
median of epochs places only roughly (quiet minutes while awake look like rest). So the onset is found
by :func:`detector.sleep_states.first_sleep`, a model of lying awake, asleep and awake again (after a
cramp or a trip) from the recording's start to ``REGION_S`` after the block's start, the onset no later
than ``SEARCH_S`` after the block's start (nor than ``MIN_SLEEP_S`` before its end).

The end of sleep is a change point of the rate of restless movements on the night run backwards (lying
awake before getting up), :func:`restless_change` on the mirrored night: from the end of the recording (or
the start of the first getting up after the block), a higher rate before a lower one, the split at the
end of a movement (maximum likelihood of two Poisson rates), moved on by the expected wait from the last
restless movement (``1 / (rate before - rate after)``, at least ``MIN_WAIT_S``; at most half the pause
that follows). The window never begins before the first sample nor ends after the last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from detector.epochs import EPOCH_S, UPRIGHT_DEG, rest_block
from detector.events import Episode
from detector.rows import Rows
from detector.sleep_states import first_sleep

WAKE_KINDS = ("leg_movement", "posture_change", "out_of_bed")
SEARCH_S = 1800.0
MIN_WAIT_S = 120.0
REGION_S = 5400.0
MIN_SLEEP_S = 1200.0


def restless(episodes: Sequence[Episode]) -> list[Episode]:
    """The episodes that speak of being awake, in onset order."""
    out = [e for e in episodes if e.kind in WAKE_KINDS and not (e.kind == "leg_movement" and e.periodic)]
    return sorted(out, key=lambda e: e.start)


def restless_seconds(t0: float, n: int, episodes: Sequence[Episode]) -> np.ndarray:
    """Seconds of each of ``n`` epochs from ``t0`` covered by restless episodes."""
    busy = np.zeros(n)
    for e in restless(episodes):
        a, b = (e.start - t0) / EPOCH_S, (e.end - t0) / EPOCH_S
        for j in range(max(0, int(math.floor(a))), min(n, int(math.floor(b)) + 1)):
            busy[j] += max(0.0, min(b, j + 1.0) - max(a, float(j))) * EPOCH_S
    return busy


def restless_change(block_start: float, block_end: float, episodes: Sequence[Episode], start: float) -> float:
    """Where restless movements give way to a calmer rate after ``block_start``: used for the end of sleep,
    on the mirrored night (see the module docstring)."""
    ups = [e.end for e in episodes if e.kind == "out_of_bed" and e.end <= block_start + EPOCH_S * 2]
    t_bed = max([start, *ups])
    stop = min(block_end, block_start + REGION_S)
    ev = [(e.start, e.end) for e in restless(episodes) if t_bed <= e.start < stop and e.kind != "out_of_bed"]
    n = len(ev)
    if n == 0 or stop <= t_bed:
        return max(block_start, t_bed)
    best_ll, best_k = n * math.log(n / (stop - t_bed)), 0
    for k in range(1, n + 1):
        tau = ev[k - 1][1]
        if tau > block_start + SEARCH_S:
            break
        d1, d2 = tau - t_bed, stop - tau
        if d1 <= 0 or d2 <= 0:
            continue
        l1, l2 = k / d1, (n - k) / d2
        if l1 <= l2:
            continue
        ll = k * math.log(l1) + ((n - k) * math.log(l2) if n > k else 0.0)
        if ll > best_ll:
            best_ll, best_k = ll, k
    if best_k == 0:
        return max(block_start, t_bed)
    tau = ev[best_k - 1][1]
    l1, l2 = best_k / (tau - t_bed), (n - best_k) / (stop - tau)
    nxt = ev[best_k][0] if best_k < n else stop
    return tau + min(max(1.0 / (l1 - l2), MIN_WAIT_S), 0.5 * max(0.0, nxt - tau))


def sleep_window(
    history: Rows, episodes: Sequence[Episode], start: float | None = None, end: float | None = None
) -> tuple[float, float] | None:
    """(start, end) in Unix seconds, or None when no block of rest is long enough."""
    if not len(history):
        return None
    h = history.data
    t, angle = h[:, 0], h[:, 2]
    k = np.round((t - t[0]) / EPOCH_S).astype(int)
    n = int(k[-1]) + 1
    busy = np.ones(n)  # missing epochs count as not resting
    busy[k] = restless_seconds(float(t[0]), n, episodes)[k] / EPOCH_S
    up = np.ones(n, bool)
    up[k] = angle > UPRIGHT_DEG
    block = rest_block(busy, up)
    if block is None:
        return None
    a, b = float(t[0] + block[0] * EPOCH_S), float(t[0] + block[1] * EPOCH_S)
    first = float(t[0]) if start is None else start
    last = float(t[-1] + EPOCH_S) if end is None else end
    latest = min(a + SEARCH_S, max(a, b - MIN_SLEEP_S))
    onset = max(first_sleep(episodes, first, latest, min(b, a + REGION_S), b), first)
    # the end of sleep is the onset of the night run backwards
    mirrored = [Episode(-e.end, -e.start, e.kind, e.peak_g, e.periodic) for e in episodes]
    offset = min(-restless_change(-b, -a, mirrored[::-1], -last), last)
    if offset <= onset:  # a short block: the restless change point behind the onset
        offset = min(max(b, onset + EPOCH_S), last)
    return (onset, offset) if offset > onset else None
