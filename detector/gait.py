"""Walking, seen without knowing how the sensor sits: the shin swings back and forth at the stride rate
(and its harmonic at the step rate).

Over an event's frames, the 0.3 s mean orientation (unit gravity, sensor coordinates) swings about its
average in one plane as the shin pendulums through each stride. :func:`gait_seconds` projects the swing
on its main direction (radians), and in windows of ``WINDOW_S`` asks for most of the swing's power in
the stride band (``BAND_HZ``), at least ``MIN_SWING_DEG`` of it (RMS), and the jolts of heel strikes (a
median 0.3 s spread of ``MIN_SD_G``): a shin in bed does not swing and jolt at the stride rate for
seconds on end (a partner's bouncing does not turn it, a cramp's shaking turns it a degree or two). Heel
strikes jolt the shin at every step: the walking windows of all three generators' walks hold a median
0.3 s spread of 0.17-0.45 g, while a cramp held in bed, its leg straining and wobbling a few degrees at
about the stride rate, reaches 0.10 g (on ``fieldnights`` two such cramps were called out_of_bed while
the bound was 0.04 g). The walking windows together must hold a median spread of ``WALK_SD_G``: one
cramp on an 8-h fieldnight strained harder, its four walking-like windows at 0.12-0.15 g, and was called
out_of_bed (the walks' medians over their windows, 30 tuning nights of each generator: 0.168 g and more;
`benchmarks/walks.py`). A short or shuffling stride swings the shin less, but then its heel strikes
still jolt it hard: a window whose median spread reaches ``STRONG_SD_G`` needs only
``MIN_SWING_STRONG_DEG`` of swing (movements in bed on the tuning nights of both generators never held a
spread of 0.15 g for 6 s while swinging more than 2.4 deg at the stride rate). It returns how many
seconds of the event looked like walking; :func:`gait` also returns the shin's mean orientation over
those seconds, which is where gravity points along an upright shin in sensor coordinates whatever the
strap's rotation.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detector.frames import FRAME_S
from detector.vectors import finite, median

WINDOW_S = 6.0
STEP_S = 2.0
BAND_HZ = (0.5, 2.5)
MIN_SWING_DEG = 4.0
MIN_SD_G = 0.12  # heel strikes: the 0.3 s spread (median over the window) of a walking shin
MIN_BAND_FRAC = 0.5
STRONG_SD_G = 0.15  # heel strikes this hard ...
MIN_SWING_STRONG_DEG = 3.0  # ... make a smaller stride swing enough
WALK_SD_G = 0.15  # the walking windows' median spread: heel strikes of a walk, not a strained cramp's
_W = round(WINDOW_S / FRAME_S)
_STEP = round(STEP_S / FRAME_S)
_F = np.fft.rfftfreq(_W, FRAME_S)
_BAND = (BAND_HZ[0] <= _F) & (BAND_HZ[1] >= _F)
_ABOVE = _F >= 0.25
_HANN = np.hanning(_W)


def gait_seconds(u: np.ndarray, sd: np.ndarray) -> float:
    """Seconds of walking in unit orientations ``u`` (k, 3) and spreads ``sd`` (k,) g, one per 0.1 s
    frame (NaN: gaps)."""
    return gait(u, sd)[0]


def walking_windows(u: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The windows that swing and jolt like a stride, each alone: their orientations (m, W, 3) and
    their median 0.3 s spreads (m,), g (none when the event is shorter than a window)."""
    none = (np.zeros((0, _W, 3)), np.zeros(0))
    if len(u) < _W:
        return none
    sd = finite(sd)
    if np.count_nonzero(sd >= MIN_SD_G) < _W // 2:  # no window's median can reach MIN_SD_G: most events
        return none
    starts = np.arange(0, len(u) - _W + 1, _STEP)
    jolts = median(sliding_window_view(sd, _W)[::_STEP], axis=1)  # each window's, as np.median
    starts, jolts = starts[jolts >= MIN_SD_G], jolts[jolts >= MIN_SD_G]
    win = np.stack([u[s : s + _W] for s in starts]) if len(starts) else none[0]  # (m, W, 3)
    good = np.isfinite(win).all(axis=(1, 2))
    if not good.any():
        return none
    win, jolts = win[good], jolts[good]
    d = win - win.mean(axis=1, keepdims=True)
    # the main direction of the swing in each window: the top right-singular vector
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    s = np.einsum("mwk,mk->mw", d, vt[:, 0, :])
    s = (s - s.mean(axis=1, keepdims=True)) * _HANN
    p = np.abs(np.fft.rfft(s, axis=1)) ** 2
    band = p[:, _BAND].sum(axis=1)
    above = p[:, _ABOVE].sum(axis=1)
    # RMS of the swing in the band (Parseval, Hann window power ~ 3/8)
    rms = np.sqrt(2.0 * band / (_W * _W * 0.375))
    swing = np.where(jolts >= STRONG_SD_G, math.radians(MIN_SWING_STRONG_DEG), math.radians(MIN_SWING_DEG))
    walking = (band >= MIN_BAND_FRAC * np.maximum(above, 1e-30)) & (rms >= swing)
    return win[walking], jolts[walking]


def gait(u: np.ndarray, sd: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds of walking (as :func:`gait_seconds`) and the mean unit orientation of the walking
    windows (NaN when there were none): the :func:`walking_windows`, when together they hold a median
    spread of ``WALK_SD_G``."""
    win, jolts = walking_windows(u, sd)
    if not len(jolts) or float(median(jolts)) < WALK_SD_G:  # (jolts are finite)
        return 0.0, np.full(3, np.nan)
    m = win.mean(axis=(0, 1))
    return float(len(jolts)) * STEP_S, m / np.linalg.norm(m)
