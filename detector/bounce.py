"""A jolt of the mattress, not of the leg: someone else moving in the bed.

A bed partner's movement reaches the shin through the mattress as a bounce mostly along gravity, and
the mattress goes on moving for a second or more after it. The shin's own twitch is a jerk of the
leg: most of its spread is across gravity (the foot and shin flick), and the leg is still again
right after it. :func:`mattress_bounce` says a short jolt is the first kind when the spread
perpendicular to gravity is less than ``PERP_FRAC_MAX`` of the whole at its peak, and over the next
``AFTER_S`` the spread stays at ``AFTER_MEDIAN_K`` times its floor (median) and peaks above
``AFTER_PEAK_K`` times it. A slow sensor's spread of three or four samples scatters more about its
floor, so the median's bound is raised by the square root of the jerk threshold's factor for that
sample count (:func:`detector.thresholds.sd_factor`: x1.13-1.22 for the 3-4 samples of 12.5 Hz, x1
from 26 Hz).

Chosen on the tuning nights (15 two-hour physio nights at 12.5-208 Hz: of the 83 twitches detected on
a partner's movement 48 are of this kind, of 684 true twitches 1; a true twitch's following 1.4 s
stay at a median 1.22 x floor, 1.36 at the 95th percentile; at 12.5 Hz, on 20 nights, 1.48 at the
95th percentile: a bound of 1.4 there would drop 10 true twitches of 841 with 33 partner jolts, the
raised 1.58-1.70 ones 1-2 with 19-25).

Session 9. Most partner jolts still taken for twitches had the mattress ringing on, but measured from
the wrong place: the tilt a partner gives the mattress holds the shin turned for seconds, so the
event's frames (and the window :func:`mattress_bounce` reads after them) run on past the ringing.
:func:`rings_on` reads the spread after the jolt's last *active* frame instead: a jolt with less than
``RING_PERP_FRAC`` of its spread across gravity, whose spread still peaks above ``RING_PEAK_K`` x the
floor from ``RING_SKIP`` frames after it (their 0.3 s windows hold none of the jolt's samples, nor
the 0.1 s a twitch takes to spring back) to ``AFTER_S`` after it, is the mattress. A true twitch's
spread there peaks at a median 1.40 x floor, 1.65 at the 95th percentile, on physio's 26-104 Hz
tuning nights (field 1.38 / 1.55; at 208 Hz 1.31 / 1.41), the partner jolts' at a median 1.99. On
the 9 physio tuning nights at 26-104 Hz it drops 12 of the 22 partner jolts taken for twitches and
none of 431 true twitches (field: 0 of 60, synthetic: 0 of 56); a window from the jolt's end itself
(``RING_SKIP`` 0) would drop 18 but 21 true twitches. At 12.5 Hz the 3-4 samples of a window scatter
so much over 1.2 s that the bound raised by ``sd_factor`` still dropped 5 of 132 true twitches for 4
partner jolts (six tuning nights): the rule is not used under ``RING_MIN_SAMPLES``.
"""

from __future__ import annotations

import numpy as np

from detector.thresholds import sd_factor
from detector.vectors import finite, median

PERP_FRAC_MAX = 0.5
AFTER_S = 1.4
AFTER_MEDIAN_K = 1.4
AFTER_PEAK_K = 3.0
#: :func:`rings_on` (physio's 26-104 Hz tuning nights, module docstring): the jolt's share of spread
#: across gravity (at its peak frame), the peak of the spread (over its floor) that still follows, and
#: the frames after the last active one skipped before looking.
RING_PERP_FRAC = 0.6
RING_PEAK_K = 1.8
RING_SKIP = 2
RING_MIN_SAMPLES = 5  # samples a window needs for it (5-7: the bound x sd_factor, 1.04-1.17)


def mattress_bounce(sd: np.ndarray, sd_perp: np.ndarray, after_ratio: np.ndarray, n: float = 16.0) -> bool:
    """``sd``/``sd_perp`` (g) over a jolt's frames; ``after_ratio``: the spread over its floor in the
    ``AFTER_S`` after it (NaN: no samples); ``n``: samples in a frame's window."""
    sd, sd_perp = finite(sd), finite(sd_perp)
    after = after_ratio[np.isfinite(after_ratio)]
    if not len(sd) or not len(after) or sd.max() <= 0:
        return False
    if sd_perp.max() >= PERP_FRAC_MAX * sd.max():
        return False
    k = AFTER_MEDIAN_K * float(np.sqrt(sd_factor(np.array([n]))[0]))
    return bool(median(after) >= k and after.max() > AFTER_PEAK_K)


def rings_on(sd: np.ndarray, sd_perp: np.ndarray, after_ratio: np.ndarray, n: float = 16.0) -> bool:
    """Whether a jolt mostly along gravity is followed by the mattress ringing on: ``sd``/``sd_perp``
    (g) over the jolt's frames, ``after_ratio`` the spread over its floor from ``RING_SKIP`` frames
    after its last active frame to ``AFTER_S`` after it, ``n`` the samples in a frame's window."""
    sd, sd_perp = finite(sd), finite(sd_perp)
    after = after_ratio[np.isfinite(after_ratio)]
    if n < RING_MIN_SAMPLES:
        return False  # 3-4 samples a window (12.5 Hz) scatter too widely over 1.2 s to tell ringing by
    if not len(sd) or not len(after) or sd.max() <= 0 or sd_perp.max() >= RING_PERP_FRAC * sd.max():
        return False
    return bool(after.max() > RING_PEAK_K * float(sd_factor(np.array([n]))[0]))
