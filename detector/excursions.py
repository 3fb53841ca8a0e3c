"""Cramps without a resolvable tremor: a held excursion of the leg, seen across episodes.

A calf cramp whose tremor the sensor cannot resolve (a slow sensor, a faint tremor) still shows from the
shin as a sustained change of orientation, held 20 s to a few minutes, with strained movements inside,
after which the leg comes back close to where it was. Frame by frame the hold settles, so the episode
stream reads it as a run of leg movements, often with a posture change at each end.
:class:`HeldCrampGrouper` looks at that stream: an episode that leaves the leg turned at least
``OPEN_MIN_DEG`` (at most ``OPEN_MAX_DEG``: rolling over turns it further) from where it was before
(``_pre``) opens an excursion; a posture change of ``ROLL_DEG`` or more opens one only if much of its turn
(``PITCH_FRAC``) pitched the shin up or down (a cramp flexes the knee and ankle; rolling over turns the
shin about its own axis, and may turn it back); the episodes that follow are held with it while the leg stays away; an
episode that brings it back within ``max(RETURN_MIN_DEG, RETURN_FRAC x excursion)`` of the start closes
it, and one that leaves it turned more than ``OPEN_MAX_DEG`` from the start (rolling over while the
leg is away: a cramp holds the leg, it does not roll it further) ends it. An excursion closed within
``MIN_S``..``MAX_S`` of its start, with at least one movement between
the opening and the return, is one ``contraction``. Anything else (no return within ``MAX_S``, the leg
back without a movement, getting up) releases the episodes as they were. Orientations are unit gravity
vectors in sensor coordinates, so the rule does not depend on how the sensor is strapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detector.episodes import _episode_state, _episodes_from_state
from detector.events import Episode
from detector.vectors import angle_rad, state_part

OPEN_MIN_DEG = 8.0
OPEN_MAX_DEG = 75.0
RETURN_MIN_DEG = 5.0
RETURN_FRAC = 0.35
MIN_S = 15.0
PITCH_FRAC = 0.4
ROLL_DEG = 35.0
MAX_S = 240.0
JOINS = ("twitch", "leg_movement", "contraction", "posture_change")


def _vec(e: Episode, key: str) -> np.ndarray:
    v = np.asarray(e.extra.get(key, [np.nan] * 3), dtype=float)
    return v if v.shape == (3,) else np.full(3, np.nan)


def _deg(a: np.ndarray, b: np.ndarray) -> float:
    d = float(np.degrees(angle_rad(a[None, :], b[None, :]))[0])
    return d if np.isfinite(d) else np.nan


@dataclass
class HeldCrampGrouper:
    """State: the episodes of the open excursion (first = the opening), with their orientation notes."""

    group: list[Episode] = field(default_factory=list)

    def state(self) -> dict:
        return {"group": [_episode_state(e) for e in self.group]}

    @classmethod
    def from_state(cls, state: dict) -> HeldCrampGrouper:
        return cls(state_part(state, "group", _episodes_from_state))

    @staticmethod
    def _opens(e: Episode) -> bool:
        if e.kind not in ("leg_movement", "contraction", "posture_change"):
            return False
        exc = _deg(_vec(e, "_post"), _vec(e, "_pre"))
        # a cramp pitches the shin (the knee and ankle flex); rolling over turns it about its own axis
        pitch = abs(float(e.extra.get("_pitch", 0.0)))
        rolled = e.kind == "posture_change" and exc >= ROLL_DEG
        return bool(OPEN_MIN_DEG <= exc <= OPEN_MAX_DEG and (pitch >= PITCH_FRAC * exc or not rolled))

    def _tolerance(self) -> float:
        base = _vec(self.group[0], "_pre")
        exc = _deg(_vec(self.group[0], "_post"), base)
        return max(RETURN_MIN_DEG, RETURN_FRAC * exc)

    def _release(self) -> list[Episode]:
        """The excursion came to nothing: its episodes stand, and any after the opening may open one."""
        g, self.group = self.group, []
        return [g[0], *self.push(g[1:])] if g else []

    def _merge(self) -> Episode:
        g, self.group = self.group, []
        ex = {k: v for k, v in g[0].extra.items() if k != "_post"}
        ex["_post"] = g[-1].extra.get("_post")
        ex["parts"] = sum(int(e.extra.get("parts", 1)) for e in g)
        peak = max(e.peak_g for e in g)
        return Episode(g[0].start, max(e.end for e in g), "contraction", peak, False, g[0].in_sleep, ex)

    def push(self, eps: list[Episode]) -> list[Episode]:
        out: list[Episode] = []
        for e in eps:
            out.extend(self._one(e))
        return out

    def _one(self, e: Episode) -> list[Episode]:
        out: list[Episode] = []
        while self.group:
            base = _vec(self.group[0], "_pre")
            tol = self._tolerance()
            came_back = _deg(_vec(e, "_pre"), base) <= tol  # the leg was back before e began
            # e turned the leg further from the start than a cramp holds it: rolling over, the hold let go
            rolled_away = _deg(_vec(e, "_post"), base) > OPEN_MAX_DEG
            if e.kind not in JOINS or e.end - self.group[0].start > MAX_S or came_back or rolled_away:
                out.extend(self._release())  # which may open another excursion: look again
                continue
            self.group.append(e)
            if _deg(_vec(e, "_post"), base) <= tol:  # e brought it back
                if len(self.group) >= 3 and e.end - self.group[0].start >= MIN_S:
                    out.append(self._merge())
                else:
                    out.extend(self._release())
            return out
        if self._opens(e):
            self.group = [e]
        else:
            out.append(e)
        return out

    def tick(self, frontier: float) -> list[Episode]:
        """Release an excursion no episode still to come (starting at ``frontier`` or later) can close."""
        if self.group and frontier - self.group[0].start > MAX_S:
            return self._release()
        return []

    def frontier(self, upstream: float) -> float:
        """No episode released from now on starts before this time."""
        return min(upstream, self.group[0].start) if self.group else upstream

    def flush(self) -> list[Episode]:
        out: list[Episode] = []
        while self.group:
            out.extend(self._release())
        return out
