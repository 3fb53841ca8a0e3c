"""Where sleep began: a hidden Markov model of lying awake, asleep, and awake again after sleep.

Three states on a ``BIN_S`` grid from the recording's start: ``W`` awake before the first sleep, ``S``
asleep, ``A`` awake after it (a cramp, a trip to the toilet, the restless minutes after either). ``W``
is left once, for ``S`` (a mean latency of ``LATENCY_S``); ``S`` and ``A`` alternate (sleep bouts of
``BOUT_S``, wake bouts of ``WAKE_S``). Each bin holds Poisson counts of three things the person does:

* leg movements that are not periodic and posture changes, more often awake than asleep;
* twitches, more often asleep (sleep starts, fragmentary myoclonus, REM twitches) than awake.

Getting up and cramps are awake by definition (``S`` is impossible there), and one begins from sleep at
no cost: a nocturnal cramp or the need to pass water is what wakes a sleeper, so neither speaks of
having been awake before it.

The asleep rates come from the rest block from the latest onset allowed to its end (sleep, with what
wakings it holds). The awake ones start from a few times them (a third for twitches), and a few
rounds of expectation-maximisation fit them to the night: each drawn towards the asleep one by
``PRIOR_S`` of it (few events before sleep make a poor estimate) and kept on its side of it (awake no
calmer in movements, no richer in twitches, than asleep); bins in a cramp or up count for neither. The onset is the
posterior median of leaving ``W``: the first bin where being still in ``W`` is less likely than not.

So one quiet stretch before a cramp counts as sleep, and a restless one after it as waking from it, not
as not yet asleep; and a night whose waking and sleeping differ only in twitches still has an onset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from detector.events import Episode

BIN_S = 15.0
LATENCY_S = 900.0
BOUT_S = 3600.0
WAKE_S = 300.0
PRIOR_S = 300.0
ROUNDS = 10
#: expectation-maximisation stops once no awake rate moves by more than this share
SETTLED = 0.01
#: the recording starts awake, or (rarely) already asleep
FIRST = np.array([0.95, 0.05, 0.0])
#: what is counted, and whether it is more frequent awake (True) or asleep (False)
SIGNS = {"restless": True, "posture": True, "twitch": False}
AWAKE_START = {True: 3.0, False: 0.3}
FORCED_KINDS = ("out_of_bed", "contraction")


def _what(e: Episode) -> str | None:
    if e.kind == "leg_movement" and not e.periodic:
        return "restless"
    if e.kind == "posture_change":
        return "posture"
    if e.kind == "twitch":
        return "twitch"
    return None


def _forward_backward(emit: np.ndarray, trans: np.ndarray, woken: np.ndarray, begins: np.ndarray) -> np.ndarray:
    """Posterior state probabilities per bin (scaled forward-backward; ``emit`` is the likelihood per
    state, the step into a bin where ``begins`` is ``woken``, else ``trans``). Written out for the
    three states in plain floats: a night's few hundred bins take a millisecond so."""
    e = emit.tolist()
    wake = begins.tolist()
    steps = (trans.tolist(), woken.tolist())
    nb = len(e)
    fw = [(0.0, 0.0, 0.0)] * nb
    scale = [1.0] * nb
    w, s, a = FIRST[0] * e[0][0], FIRST[1] * e[0][1], FIRST[2] * e[0][2]
    for i in range(nb):
        if i:
            t = steps[wake[i]]
            pw, ps, pa = fw[i - 1]
            w = pw * t[0][0] * e[i][0]
            s = (pw * t[0][1] + ps * t[1][1] + pa * t[2][1]) * e[i][1]
            a = (ps * t[1][2] + pa * t[2][2]) * e[i][2]
        c = (w + s + a) or 1e-300
        scale[i] = c
        fw[i] = (w / c, s / c, a / c)
    bw = [(1.0, 1.0, 1.0)] * nb
    for i in range(nb - 2, -1, -1):
        t = steps[wake[i + 1]]
        qw, qs, qa = bw[i + 1]
        ew, es, ea = e[i + 1]
        c = scale[i + 1]
        bw[i] = (
            (t[0][0] * ew * qw + t[0][1] * es * qs) / c,
            (t[1][1] * es * qs + t[1][2] * ea * qa) / c,
            (t[2][1] * es * qs + t[2][2] * ea * qa) / c,
        )
    post = np.array(fw) * np.array(bw)
    return post / np.maximum(post.sum(axis=1, keepdims=True), 1e-300)


def _awake_spans(episodes: Sequence[Episode], start: float, nb: int) -> np.ndarray:
    """Bins inside getting up or a cramp."""
    awake = np.zeros(nb, bool)
    for e in episodes:
        if e.kind in FORCED_KINDS and e.end > start:
            awake[max(0, int((e.start - start) // BIN_S)) : max(0, min(nb, int((e.end - start) // BIN_S) + 1))] = True
    return awake


def first_sleep(episodes: Sequence[Episode], start: float, latest: float, stop: float, block_end: float) -> float:
    """Where sleep began: ``start`` is bed entry (the recording's start), ``latest`` the latest onset
    allowed, ``stop`` the end of the modelled region, ``block_end`` the end of the rest block; the
    asleep rates come from ``latest`` to ``block_end``."""
    nb = int(math.ceil((stop - start) / BIN_S))
    if nb < 2:
        return min(start, latest)
    awake = _awake_spans(episodes, start, nb)
    counts = {k: np.zeros(nb) for k in SIGNS}
    asleep = dict.fromkeys(SIGNS, 0.5)
    for e in episodes:
        k = _what(e)
        if k is None:
            continue
        i = int((e.start - start) // BIN_S)
        if 0 <= i < nb and not awake[i]:  # what happens in a cramp or up is no sign either way
            counts[k][i] += 1
        if latest <= e.start < block_end:
            asleep[k] += 1
    asleep = {k: n / max(block_end - latest, 600.0) for k, n in asleep.items()}
    awake_rate = {k: asleep[k] * AWAKE_START[up] for k, up in SIGNS.items()}
    p_ws, p_sa, p_as = BIN_S / LATENCY_S, BIN_S / BOUT_S, BIN_S / WAKE_S
    trans = np.array([[1 - p_ws, p_ws, 0.0], [0.0, 1 - p_sa, p_sa], [0.0, p_as, 1 - p_as]])
    woken = trans.copy()
    woken[1] = (0.0, 0.0, 1.0)  # a cramp or getting up wakes a sleeper at no cost
    begins = np.zeros(nb, bool)
    begins[1:] = awake[1:] & ~awake[:-1]
    w_bins = max(1, min(nb, int((latest - start) // BIN_S) + 1))  # W no later than ``latest``
    post = np.zeros((nb, 3))
    for _ in range(ROUNDS):
        log_e = np.zeros((nb, 3))
        for k in SIGNS:
            for s, lam in ((0, awake_rate[k]), (1, asleep[k]), (2, awake_rate[k])):
                log_e[:, s] += counts[k] * math.log(lam * BIN_S) - lam * BIN_S
        log_e[awake, 1] = -np.inf
        log_e[w_bins:, 0] = -np.inf
        post = _forward_backward(np.exp(log_e - log_e.max(axis=1, keepdims=True)), trans, woken, begins)
        p_awake = np.where(awake, 0.0, post[:, 0] + post[:, 2])  # no counts there, so no exposure either
        moved = 0.0
        for k, up in SIGNS.items():
            a = (float(p_awake @ counts[k]) + asleep[k] * PRIOR_S) / (float(p_awake.sum()) * BIN_S + PRIOR_S)
            a = max(a, asleep[k]) if up else min(a, asleep[k])
            moved, awake_rate[k] = max(moved, abs(a / awake_rate[k] - 1.0)), a
        if moved < SETTLED:
            break
    left = np.flatnonzero(post[:, 0] < 0.5)
    return start + float(left[0] if len(left) else w_bins) * BIN_S
