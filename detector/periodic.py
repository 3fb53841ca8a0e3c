"""The WASM 2016 periodic-series rule, written once: the streaming detector
(``episodes.PeriodicTracker``) and the scoring of any event list (``scoring.periodic_series_flags``,
which also labels the synthetic truth) both run :class:`SeriesRule`.

What each event is to the rule (:func:`role`):

* ``candidate``: a leg movement of 0.5-10 s (a candidate leg movement, CLM);
* ``breaker``: a movement that is not a CLM ends a series (WASM: "a series ends at an IMI < 10 s or
  > 90 s, or at a movement that is not a CLM"): a ``contraction``, a ``leg_movement`` over 10 s, a
  ``posture_change``, getting up (``out_of_bed``);
* ``ignore``: anything shorter than 0.5 s (a ``twitch`` is no leg movement) and every other label.

Candidates are taken in onset order; a series is a maximal run of consecutive candidates whose
onset-to-onset intervals all lie in [10, 90] s; runs of at least 4 are periodic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

LM_MIN_S = 0.5
LM_MAX_S = 10.0
IMI_MIN_S = 10.0
IMI_MAX_S = 90.0
SERIES_MIN = 4
#: Kinds that end a series whatever their duration.
BREAKERS = ("contraction", "posture_change", "out_of_bed")
_EPS = 1e-9

T = TypeVar("T")


def role(kind: str, duration_s: float) -> str:
    """``candidate``, ``breaker`` or ``ignore`` (see the module docstring)."""
    if kind in BREAKERS:
        return "breaker"
    if kind != "leg_movement" or duration_s < LM_MIN_S - _EPS:
        return "ignore"
    return "candidate" if duration_s <= LM_MAX_S + _EPS else "breaker"


class SeriesRule(Generic[T]):
    """The rule over a stream of events in onset order. Each call returns the candidates whose flag
    became final, as ``(item, periodic)`` pairs in onset order. ``pending`` holds the candidates
    not yet decided (while ``in_series``, only the last one, already released, kept for its onset).
    """

    def __init__(
        self,
        onset: Callable[[T], float],
        pending: list[T] | None = None,
        in_series: bool = False,
        *,
        min_count: int = SERIES_MIN,
        min_imi_s: float = IMI_MIN_S,
        max_imi_s: float = IMI_MAX_S,
    ) -> None:
        self.onset = onset
        self.pending: list[T] = list(pending or [])
        self.in_series = in_series
        self.min_count, self.min_imi_s, self.max_imi_s = min_count, min_imi_s, max_imi_s

    def close(self) -> list[tuple[T, bool]]:
        """End the current run (a breaker, an interval out of range, the end of the stream)."""
        out = [] if self.in_series else [(p, False) for p in self.pending]
        self.pending, self.in_series = [], False
        return out

    def candidate(self, item: T) -> list[tuple[T, bool]]:
        out: list[tuple[T, bool]] = []
        if self.pending:
            imi = self.onset(item) - self.onset(self.pending[-1])
            if not (self.min_imi_s - _EPS <= imi <= self.max_imi_s + _EPS):
                out.extend(self.close())
        if self.in_series:
            self.pending = [item]
            out.append((item, True))
            return out
        self.pending.append(item)
        if len(self.pending) >= self.min_count:
            out.extend((p, True) for p in self.pending)
            self.pending = [self.pending[-1]]
            self.in_series = True
        return out

    def expire(self, frontier: float) -> list[tuple[T, bool]]:
        """Close the run once no candidate still to come (onset at ``frontier`` or later) could
        extend it."""
        if self.pending and frontier - self.onset(self.pending[-1]) > self.max_imi_s + _EPS:
            return self.close()
        return []
