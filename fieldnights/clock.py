"""Sample timestamps: the nominal rate exactly, a clock that runs a few ppm fast or slow and wanders
slowly, and jitter on every timestamp (BLE packets stamped on arrival). Truth times are put on the
same clock, so that labels line up with the samples as a scorer would align them."""

from __future__ import annotations

import numpy as np


class Clock:
    def __init__(self, start_unix: float, drift_ppm: float, wander_s: float, rng: np.random.Generator) -> None:
        self.start = start_unix
        self.drift = drift_ppm * 1e-6
        self.wander = wander_s
        self.period = float(rng.uniform(1.5, 4.0)) * 3600.0
        self.phase = float(rng.uniform(0.0, 2 * np.pi))

    def at(self, w: np.ndarray | float) -> np.ndarray | float:
        """Clock reading at physical time ``w`` (seconds from the start), without jitter."""
        wander = self.wander * (np.sin(2 * np.pi * np.asarray(w) / self.period + self.phase) - np.sin(self.phase))
        return self.start + np.asarray(w) * (1.0 + self.drift) + wander

    def stamps(self, w: np.ndarray, rate_hz: float, jitter: float, rng: np.random.Generator) -> np.ndarray:
        j = np.clip(rng.normal(size=len(w)) * jitter, -0.4, 0.4) / rate_hz
        return np.asarray(self.at(w)) + j
