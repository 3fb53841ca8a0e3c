"""Placing activities on the night's time line so that no two overlap (with a margin between them)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Item:
    """One planned activity, in seconds from the start of the recording.

    ``kind`` is a truth kind (``twitch``, ``leg_movement``, ``contraction``, ``out_of_bed``,
    ``posture_change``) or a confounder (``partner``, ``strap_slip``, ``gap``); ``info`` holds what the
    shape needs (amplitudes, phases) and ends up in ``params["event_details"]``.
    """

    start: float
    end: float
    kind: str
    info: dict[str, Any] = field(default_factory=dict)


class Timeline:
    """Busy intervals, sorted; ``place`` finds a free spot for an activity of a given length."""

    def __init__(self, begin: float, end: float) -> None:
        self.begin, self.end = begin, end
        self._starts: list[float] = []
        self._ends: list[float] = []

    def free(self, start: float, end: float, margin: float = 1.0) -> bool:
        if start < self.begin or end > self.end:
            return False
        i = bisect.bisect_left(self._starts, end + margin)
        # intervals starting before end+margin: the last few may reach into [start-margin, ...]
        j = i - 1
        while j >= 0:
            if self._ends[j] > start - margin:
                return False
            if self._starts[j] < start - 3600.0:  # nothing lasts longer than an hour
                break
            j -= 1
        return True

    def reserve(self, start: float, end: float) -> None:
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, end)

    def place(
        self,
        rng: np.random.Generator,
        duration: float,
        windows: list[tuple[float, float]],
        margin: float = 1.0,
        tries: int = 40,
    ) -> float | None:
        """A start time in one of ``windows`` (weighted by length) where ``duration`` fits; reserved."""
        usable = [(a, b - duration) for a, b in windows if b - duration > a]
        if not usable:
            return None
        lengths = np.array([b - a for a, b in usable])
        p = lengths / lengths.sum()
        for _ in range(tries):
            a, b = usable[int(rng.choice(len(usable), p=p))]
            s = float(rng.uniform(a, b))
            if self.free(s, s + duration, margin):
                self.reserve(s, s + duration)
                return s
        return None
