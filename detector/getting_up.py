"""Whether a movement is getting up (``out_of_bed``), from what getting up physically is.

Walking (:mod:`detector.gait`: the shin swinging at the stride rate with heel strikes) is getting up
whatever else the sensor shows. Without gait, the shin held upright (sitting on the edge of the bed,
standing) counts as out of bed within ``UP_HOLD_S`` after walking was seen (until a movement that lay
before and after it shows the person back in bed: a cramp then can pitch the shin steep), at the start
of the recording before any lying posture was seen (the recording may begin up; the leg settled lying
before an event ends that grace, whatever the event), or when one event holds it over
``SAT_UP_DEG`` for ``SAT_UP_S`` between a lying posture before it and a new one after it (getting
up to stand and stretch a cramp without a step: fieldnights, session 13). The new posture tells it
from a cramp that pitched the shin steep and let go where it began.

"Upright" is judged by the estimated shin axis (:mod:`detector.posture`), and, once walking has been
seen, also directly: while walking, gravity points along the shin, so the mean orientation of the
walking windows (sensor coordinates) is where gravity lies for an upright shin on this strap. A shin
upright afterwards (the elevation the axis gives above ``OOB_UPRIGHT_DEG``) must also be within
``90 - OOB_UPRIGHT_DEG`` degrees of that orientation. Lying back down puts the shin some 90 deg away
from it, whatever the axis estimate says: a strap rotated off the sensor's axes can make the axis
estimate read a lying posture as steep, and then every movement in bed for the next minutes looked
like standing.
"""

from __future__ import annotations

import math

import numpy as np

from detector.vectors import state_array, state_value

#: Getting up holds the shin upright for seconds (sitting on the edge, standing, walking); a
#: movement in bed that swings it steep for less than this is no getting up.
OOB_MIN_UPRIGHT_S = 6.0
#: ... and steeper than lying with the knee drawn up or a cramp can turn it (sitting on the edge of the
#: bed puts the shin at 70-90 deg).
OOB_UPRIGHT_DEG = 65.0
UPRIGHT_FRAC = 0.25
#: Walking (``gait``) for this long makes an event getting up, whatever the shin axis says; the leg
#: upright counts as out of bed only within ``UP_HOLD_S`` after walking was seen (sitting down,
#: standing, lying back down), so a lying posture the axis misjudges as steep is no getting up.
GAIT_MIN_S = 6.0
UP_HOLD_S = 300.0
#: Without walking, an event that holds the shin over ``SAT_UP_DEG`` this long between lying before
#: it and lying after it, over ``SAT_UP_MOVED_DEG`` from where it lay, is getting up too: sitting on
#: the edge of the bed or standing to stretch a cramp. Lying down again leaves the leg somewhere new
#: (fieldnights' such trips on 120 nights: 25-170 deg); a cramp lets go close to where it began (the
#: one cramp on those nights that held the shin over 65 deg for 20 s let go 3.5 deg from it). The
#: bound is below ``OOB_UPRIGHT_DEG``: sitting and standing put the shin at 70-90 deg, and quiet
#: postures lain with the shin tilted leave the axis estimate 15-20 deg off (the stand read 55-62 deg).
SAT_UP_S = 20.0
SAT_UP_MOVED_DEG = 15.0
SAT_UP_DEG = 55.0
_COS_UP = math.cos(math.radians(90.0 - OOB_UPRIGHT_DEG))


class GettingUp:
    """State: until when upright counts as out of bed (``up_until``: inf at the start, until lying is
    seen) and the orientation of the shin while it last walked (``up_dir``, NaN before any walking)."""

    def __init__(self) -> None:
        self.up_until = np.inf
        self.up_dir = np.full(3, np.nan)

    def state(self) -> dict:
        return {"up_until": self.up_until, "up_dir": self.up_dir.copy()}

    @classmethod
    def from_state(cls, state: dict) -> GettingUp:
        g = cls()
        g.up_until = state_value(state, "up_until", float)
        g.up_dir = state_array(state, "up_dir", np.float64)
        if g.up_dir.shape != (3,):
            raise ValueError(f"up_dir: expected 3 values, got {len(g.up_dir)}")
        return g

    def upright_by_walk(self, u: np.ndarray) -> np.ndarray:
        """Per orientation (k, 3): within ``90 - OOB_UPRIGHT_DEG`` of the walking shin's (all True
        while no walking was seen)."""
        if not np.isfinite(self.up_dir).all():
            return np.ones(len(u), bool)
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(u @ self.up_dir, nan=0.0) >= _COS_UP

    def decide(
        self,
        onset: float,
        offset: float,
        walk: tuple[float, np.ndarray],
        elev: np.ndarray,
        slow: np.ndarray,
        ref: np.ndarray,
        ref_elev: float,
        frame_s: float,
        lying_deg: float,
        post_elev: float = math.nan,
        moved_deg: float = math.nan,
    ) -> bool:
        """Is the event from ``onset`` to ``offset`` getting up? ``walk``: seconds of gait and the mean
        orientation while walking; ``elev``: the shin's elevation (axis estimate) at each of the event's
        ~0.7 s mean orientations ``slow`` (k, 3); ``ref``/``ref_elev``: the posture before it and its
        elevation; ``lying_deg``: below this the posture before counts as lying; ``post_elev``, ``moved_deg``: the
        elevation of the posture after it and its angle from the one before (NaN: not known)."""
        walk_s, walk_dir = walk
        walking = walk_s >= GAIT_MIN_S
        by_walk = self.upright_by_walk(slow)
        steep = (elev > OOB_UPRIGHT_DEG) & by_walk
        upright_s = float(np.sum(steep)) * frame_s
        upright_frac = upright_s / max(frame_s, len(elev) * frame_s)
        ref_up = ref_elev > OOB_UPRIGHT_DEG and bool(self.upright_by_walk(ref[None, :])[0])
        upright = ref_up or (upright_frac > UPRIGHT_FRAC and upright_s >= OOB_MIN_UPRIGHT_S)
        if self.up_until == np.inf and ref_elev < lying_deg and (np.isfinite(ref).all() or not upright):
            # lying seen (the leg settled lying before this event, or a movement not upright from an
            # unknown posture): the grace of the recording's start is over
            self.up_until = -np.inf
        if walking:
            self.up_until = float(offset) + UP_HOLD_S
            if np.isfinite(walk_dir).all():
                self.up_dir = np.asarray(walk_dir, dtype=float)
        elif not upright and ref_elev < lying_deg and post_elev < lying_deg:
            self.up_until = -np.inf  # after walking, lying before and after a movement is being back in bed
        sat_s = float(np.sum((elev > SAT_UP_DEG) & by_walk)) * frame_s
        sat_up = sat_s >= SAT_UP_S and ref_elev < lying_deg and post_elev < lying_deg and moved_deg > SAT_UP_MOVED_DEG
        return walking or (upright and onset <= self.up_until) or sat_up
