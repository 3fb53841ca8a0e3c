"""The sleep window of a night: the main block of rest, and where within reach of it sleep began.

Restlessness here is what the person did, not what the sensor shook with: per ``EPOCH_S`` epoch, the
seconds covered by leg movements that are not periodic, posture changes and getting up (a periodic
series, twitches and cramps happen asleep; a bed partner's vibration is no episode at all). The rest
block then follows the idea of GGIR's HDCZA as in :func:`detector.epochs.rest_block`.

Lying awake before sleep ends where restless movements thin out, which a 5-minute median of epochs
places only roughly (quiet minutes while awake look like rest). So the onset is refined as a change
point, from bed entry (the recording's start, or the end of the last time up for ``LONG_UP_S`` or
more before the block: a short trip to the toilet may come after the first sleep of the night) to no
later than ``SEARCH_S`` after the block's start, on a ``GRID_S`` grid. Time out of bed and during a
cramp, and the ``AWAKE_AFTER_S`` after either (falling asleep again takes minutes), count as neither
awake nor asleep: their movements are no evidence, and sleep may have begun before them. Three kinds of episode are
counted, each a Poisson process whose rate may change at the onset: leg movements that are not
periodic and posture changes (what a person lying awake does more of) and twitches (a sleep
phenomenon: hypnic jerks at sleep onset, fragmentary myoclonus and REM twitches after it; seldom seen
awake). Each kind's rate after the candidate onset is measured over the rest of the block, its rate
before it is drawn towards that by ``PRIOR_S`` seconds' worth of it (so a short stretch with a few
events is no evidence of a different rate), and the onset is the candidate of greatest likelihood.
How much each kind weighs comes from the night itself: a kind whose rate does not change adds
nothing. The kinds were chosen on three generators of nights (see README, accuracy): leg movements and
posture changes alone leave the onset of one of them 8-14 minutes off, as their rates awake and
asleep differ there by a factor of only 1.3 and 2.6.

The end of sleep is found on the night run backwards (lying awake before getting up), from the
restless movements alone: the morning's last sleep is often REM, rich in twitches, which would read
the minutes awake after it as sleep. It is the split of greatest likelihood between a higher rate
before and a lower one (two Poisson rates), no later than ``SEARCH_S`` into the block and within
``REGION_S`` of it, moved on by the expected wait from the last restless movement (``1 / (rate before
- rate after)``, at least ``MIN_WAIT_S``, at most half the pause that follows). Where a short block
leaves that end at or before the onset, the block's end stands for it. The window never begins before
the first sample nor ends after the last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from detector.epochs import EPOCH_S, MIN_PIECE_S, UPRIGHT_DEG, rest_block
from detector.events import Episode
from detector.rows import Rows

WAKE_KINDS = ("leg_movement", "posture_change", "out_of_bed")
SEARCH_S = 1800.0
MIN_WAIT_S = 120.0
REGION_S = 5400.0
GRID_S = 15.0
PRIOR_S = 300.0
LONG_UP_S = 600.0
AWAKE_KINDS = ("out_of_bed", "contraction")
AWAKE_AFTER_S = 300.0
#: The processes the onset is found from: leg movements that are not periodic, posture changes, twitches.
ONSET_KINDS = ("restless_lm", "posture_change", "twitch")


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


def _bed_entry(block_start: float, episodes: Sequence[Episode], start: float) -> float:
    """The recording's start, or the end of the last getting up before the block (and just after it)."""
    ups = [e.end for e in episodes if e.kind == "out_of_bed" and e.end <= block_start + EPOCH_S * 2]
    return max([start, *ups])


def _onset_kind(e: Episode) -> str:
    return "restless_lm" if e.kind == "leg_movement" and not e.periodic else e.kind


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping (start, end) spans joined, in order."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _lying_since(t_bed: float, x: np.ndarray, awake: Sequence[tuple[float, float]]) -> np.ndarray:
    """Seconds from ``t_bed`` to each of ``x`` outside the ``awake`` spans."""
    lying = x - t_bed
    for a, b in awake:
        lying -= np.clip(x, a, b) - a
    return lying


def sleep_onset(block_start: float, block_end: float, episodes: Sequence[Episode], start: float) -> float:
    """Where sleep began: the change point of three kinds' rates (see the module docstring)."""
    long_ups = [e.end for e in episodes if e.kind == "out_of_bed" and e.end - e.start >= LONG_UP_S]
    t_bed = max([start, *(x for x in long_ups if x <= block_start + EPOCH_S * 2)])
    awake = _merged(
        [(e.start, e.end + AWAKE_AFTER_S) for e in episodes if e.kind in AWAKE_KINDS and t_bed <= e.start < block_end]
    )
    last = min(block_start + SEARCH_S, block_end - 2 * MIN_PIECE_S)
    if last <= t_bed:
        return max(block_start, t_bed)
    taus = np.arange(t_bed, last + GRID_S / 2, GRID_S)
    if awake:
        taus = taus[~_within(taus, awake)]
    if not len(taus):
        return max(block_start, t_bed)
    d1 = _lying_since(t_bed, taus, awake)
    d2 = _lying_since(t_bed, np.array([block_end]), awake)[0] - d1
    ll = np.zeros(len(taus))
    for kind in ONSET_KINDS:
        at = np.sort([e.start for e in episodes if _onset_kind(e) == kind and t_bed <= e.start < block_end])
        if awake and len(at):
            at = at[~_within(at, awake)]
        k1 = np.searchsorted(at, taus).astype(float)
        k2 = len(at) - k1
        rate2 = (k2 + 0.5) / d2
        rate1 = (k1 + rate2 * PRIOR_S) / (d1 + PRIOR_S)
        ll += k1 * np.log(rate1) - rate1 * d1 + k2 * np.log(rate2) - rate2 * d2
    return float(taus[int(np.argmax(ll))])


def _within(x: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """Which of ``x`` lie inside one of ``spans`` (start inclusive)."""
    return np.any([(x >= a) & (x < b) for a, b in spans], axis=0)


def wake_change_point(block_start: float, block_end: float, episodes: Sequence[Episode], start: float) -> float:
    """Where a higher rate of restless movements gives way to a lower one (see the module docstring)."""
    t_bed = _bed_entry(block_start, episodes, start)
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
    onset = max(sleep_onset(a, b, episodes, first), first)
    # the end of sleep is the onset of the night run backwards
    mirrored = [Episode(-e.end, -e.start, e.kind, e.peak_g, e.periodic) for e in episodes]
    offset = min(-wake_change_point(-b, -a, mirrored[::-1], -last), last)
    if offset <= onset:
        offset = min(b, last)
    return (onset, offset) if offset > onset else None
