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
"""

from __future__ import annotations

import numpy as np

from detector.thresholds import sd_factor
from detector.vectors import finite

PERP_FRAC_MAX = 0.5
AFTER_S = 1.4
AFTER_MEDIAN_K = 1.4
AFTER_PEAK_K = 3.0


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
    return bool(np.median(after) >= k and after.max() > AFTER_PEAK_K)
