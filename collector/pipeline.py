"""Decoded notifications to host-timed samples to batches of about one second.

:class:`Pipeline` gives every decoded sample a host Unix time (:mod:`collector.clock`: the sensor's
own clock where frames carry one, else the nominal rate, anchored on arrival times), keeps time
strictly increasing, and cuts the stream into batches like ``legwatch replay`` does: about
``batch_s`` of samples each, and a cut at every hole longer than ``batch_s`` (a reconnect, lost
samples), so each batch is evenly spaced where the sensor was and holes stay holes. Each finished
batch goes to ``emit(t, xyz, rate, scale)``.

Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from legwatch.contracts import payload

from .clock import NominalTimeline, SensorTimeline

__all__ = ["Pipeline", "batch_rate"]

Emit = Callable[[np.ndarray, np.ndarray, float, float], None]


def batch_rate(t: np.ndarray, nominal: float, tolerance_s: float = 2e-4) -> tuple[np.ndarray, float]:
    """Times and header rate for one batch. Where the batch is evenly spaced to within
    ``tolerance_s`` (the sensor's own spacing, slightly off the nominal rate), its times are put
    exactly on the payload's grid at its own rate, so it travels at 6 bytes per sample; otherwise
    the times are kept and the nominal rate is used (the payload then carries per-sample
    deviations, 8 bytes per sample)."""
    n = len(t)
    if n < 2 or t[-1] <= t[0]:
        return t, nominal
    rate = float(np.float32((n - 1) / float(t[-1] - t[0])))
    if not 0.1 <= rate <= 10000:
        return t, nominal
    snapped = payload.grid(float(t[0]), n, rate)
    if np.max(np.abs(snapped - t)) <= tolerance_s:
        return snapped, rate
    return t, nominal


class Pipeline:
    """Per-sensor stream state that lives across connections (see the module docstring)."""

    def __init__(self, emit: Emit, *, batch_s: float = 1.0) -> None:
        self.emit = emit
        self.batch_s = batch_s
        self.rate = 0.0
        self.scale = payload.DEFAULT_SCALE
        self.sensor_timeline = SensorTimeline()
        self.nominal_timeline: NominalTimeline | None = None
        self.last_t: float | None = None
        self._t: list[np.ndarray] = []
        self._xyz: list[np.ndarray] = []
        self._count = 0
        self._oldest_arrival: float | None = None
        #: Counters: samples in, batches out, frames whose times had to be pushed past the
        #: previous sample (should stay 0).
        self.samples = 0
        self.batches = 0
        self.overlaps = 0

    # -- segments (one per connection) ------------------------------------------------------------

    def start_segment(self, *, rate: float, range_g: float) -> None:
        """A new connection streams at nominal ``rate`` Hz with full scale ``range_g``."""
        self.flush()
        self.rate = float(rate)
        self.scale = max(float(range_g), 8.0) / 32768.0
        if self.nominal_timeline is None:
            self.nominal_timeline = NominalTimeline(self.rate)
        else:
            self.nominal_timeline.rate_hz = self.rate
        self.nominal_timeline.new_segment()
        self.sensor_timeline.new_segment()

    def end_segment(self) -> None:
        """The connection ended: send what is pending now."""
        self.flush()

    def set_rate(self, rate: float) -> None:
        """The sensor reported its actual rate mid-connection."""
        if rate > 0 and not math.isclose(rate, self.rate):
            self.flush()
            self.rate = float(rate)
            if self.nominal_timeline is not None:
                self.nominal_timeline.set_rate(rate)

    # -- samples ----------------------------------------------------------------------------------

    def add(self, samples: np.ndarray, timestamps: np.ndarray | None, arrival: float) -> None:
        """One notification's samples (``(n, 3)`` g) with sensor times (Unix s) or ``None``."""
        n = int(samples.shape[0])
        if n == 0:
            return
        if self.rate <= 0:
            self.start_segment(rate=_guess_rate(timestamps), range_g=8.0)
        spacing = 0.25 / self.rate
        not_before = None if self.last_t is None else self.last_t + spacing
        if timestamps is not None:
            t = self.sensor_timeline.map(timestamps, arrival, not_before)
        else:
            assert self.nominal_timeline is not None
            t = self.nominal_timeline.map(n, arrival, not_before)
        if not_before is not None and t[0] < not_before:  # safety net; the mappers prevent it
            self.overlaps += 1
            t = t + (not_before - t[0])
        if self._count and t[0] - float(self._t[-1][-1]) > self.batch_s:
            self.flush()  # a hole: the next batch starts after it
        self._t.append(t)
        self._xyz.append(np.asarray(samples, dtype=np.float64))
        self._count += n
        self.samples += n
        self.last_t = float(t[-1])
        if self._oldest_arrival is None:
            self._oldest_arrival = arrival
        per = self._per_batch()
        if self._count >= per:
            while self._count >= per:
                self._emit_first(per)
            if self._count:
                self._oldest_arrival = arrival

    def poll(self, now: float) -> None:
        """Send a partial batch whose first samples arrived more than two batch lengths ago (a
        stream that stalled)."""
        if self._count and self._oldest_arrival is not None and now - self._oldest_arrival > 2 * self.batch_s:
            self.flush()

    def flush(self) -> None:
        """Send everything pending as one batch (or several, if it is long)."""
        per = self._per_batch()
        while self._count:
            self._emit_first(min(per, self._count))

    # -- internals --------------------------------------------------------------------------------

    def _per_batch(self) -> int:
        rate = self.rate if self.rate > 0 else 1.0
        return max(1, min(payload.MAX_SAMPLES, round(rate * self.batch_s)))

    def _emit_first(self, k: int) -> None:
        t = np.concatenate(self._t)
        xyz = np.concatenate(self._xyz)
        # a batch ends where its times stray more than the payload allows from the nominal grid
        # (a hole, or a clock correction piling up)
        k = max(1, min(k, payload.fit(t[:k], self.rate)))
        head_t, head_xyz = t[:k], xyz[:k]
        rest_t, rest_xyz = t[k:], xyz[k:]
        self._t = [rest_t] if len(rest_t) else []
        self._xyz = [rest_xyz] if len(rest_t) else []
        self._count = len(rest_t)
        if not self._count:
            self._oldest_arrival = None
        self.batches += 1
        head_t, rate = batch_rate(head_t, self.rate)
        self.emit(head_t, head_xyz, rate, self.scale)


def _guess_rate(timestamps: np.ndarray | None) -> float:
    if timestamps is not None and len(timestamps) > 1:
        dt = float(np.median(np.diff(timestamps)))
        if dt > 0:
            return 1.0 / dt
    return 50.0
