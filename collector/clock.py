"""Sample times: from a sensor's own timeline onto the host's Unix clock.

Notifications reach the host late by a variable radio/stack latency (a few ms, sometimes seconds
when the link retransmits), never early. So for every notification, ``arrival - sampled`` is at
least the true offset between the clocks, and the *lower envelope* of those differences over a few
seconds is the offset plus the smallest latency. :class:`ClockMapper` follows that envelope:

* A sample at source time ``u`` maps to ``theta + (u - u0) * (1 + rho)`` (host Unix seconds).
* The first notification anchors ``theta`` so its last sample maps to its arrival time.
* Afterwards ``theta`` is slewed toward the envelope (minimum over ``window_s`` seconds of
  ``arrival - mapped(last sample)``): per second of source time at most ``up_slew`` seconds later
  (a mapping that runs early) and ``down_slew`` earlier (a frame arrived *before* we said it was
  sampled, which is impossible), spread linearly over the frame's samples. So the output is
  continuous and strictly increasing (spacing stays within ``1 - down_slew`` .. ``1 + up_slew`` of
  the sensor's); radio jitter and bursts of late notifications do not move it at all.
* With ``estimate_rate`` (sensors without timestamps, whose nominal rate is off by up to a few %),
  ``rho`` is the slope of the envelope's minima over the last ``rate_window_s`` seconds.
* Re-anchoring: the source timeline going backwards (a sensor reset), running ahead of the host by
  more than ``jump_s`` (a sensor clock set forward, or a sensor faster than its nominal rate), or
  every notification for ``confirm_s`` arriving more than ``gap_s`` late (samples lost inside the
  connection, or the host clock stepped) start again from the current notification. A re-anchor
  never maps a sample before ``not_before`` (the previous sample), so time never runs backwards.

:class:`SensorTimeline` applies this to sensors that timestamp their frames (Polar: ns since 2000,
converted by the profile; NUS: device milliseconds). :class:`NominalTimeline` builds the source
timeline from the sample count and the nominal rate (WitMotion, MetaWear), one segment per
connection, so a reconnect after 30 s leaves a 30 s hole instead of squeezing samples together.

Pure numpy and the standard library; no I/O.
"""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["ClockMapper", "DeviceMillis", "NominalTimeline", "SensorTimeline"]


class ClockMapper:
    """Maps a source timeline (seconds) onto host Unix time; see the module docstring."""

    def __init__(
        self,
        *,
        window_s: float = 3.0,
        up_slew: float = 0.02,
        down_slew: float = 0.10,
        gap_s: float = 1.0,
        confirm_s: float = 1.0,
        jump_s: float = 1.0,
        backstep_s: float = 0.05,
        estimate_rate: bool = False,
        max_rate_error: float = 0.05,
        bucket_s: float = 10.0,
        rate_window_s: float = 300.0,
        min_rate_span_s: float = 30.0,
    ) -> None:
        self.window_s = window_s
        self.up_slew = up_slew
        self.down_slew = down_slew
        self.gap_s = gap_s
        self.confirm_s = confirm_s
        self.jump_s = jump_s
        self.backstep_s = backstep_s
        self.estimate_rate = estimate_rate
        self.max_rate_error = max_rate_error
        self.bucket_s = bucket_s
        self.rate_window_s = rate_window_s
        self.min_rate_span_s = min_rate_span_s
        self.theta: float | None = None
        self.u0 = 0.0
        self.rho = 0.0
        #: Counters: anchors (first and after reset()), resets (source went back), jumps (source ran
        #: ahead), gaps (persistent lateness).
        self.anchors = 0
        self.resets = 0
        self.jumps = 0
        self.gaps = 0
        self._points: deque[tuple[float, float]] = deque()  # (arrival, u of last sample)
        self._last_u = 0.0
        self._last_arrival = 0.0
        self._late_since: float | None = None
        self._late_frames = 0
        # (bucket start, arrival, u, residual) of the least-late notification in the current bucket
        self._bucket: tuple[float, float, float, float] | None = None
        self._bucket_pts: deque[tuple[float, float]] = deque()

    # -- public -----------------------------------------------------------------------------------

    def map(self, u: np.ndarray, arrival: float, not_before: float | None = None) -> np.ndarray:
        """Host times of samples at source times ``u`` (increasing) whose notification arrived at
        ``arrival``; never earlier than ``not_before`` when re-anchoring."""
        u = np.asarray(u, dtype=np.float64).reshape(-1)
        if u.size == 0:
            return u.copy()
        first, last = float(u[0]), float(u[-1])
        if self.theta is None:
            self.anchors += 1
            self._anchor(first, last, arrival, not_before)
        elif first < self._last_u - self.backstep_s:
            self.resets += 1
            self._anchor(first, last, arrival, not_before)
        else:
            residual = arrival - self._at(last)
            if residual < -self.jump_s:
                self.jumps += 1
                self._anchor(first, last, arrival, not_before)
            elif self._persistently_late(residual, arrival):
                self.gaps += 1
                self._anchor(first, last, arrival, not_before)
            else:
                # Spread this frame's correction over its samples, from none at the previous
                # frame's last sample to all of it at this one's: continuous and increasing.
                theta, u0, rho, prev = self.theta, self.u0, self.rho, self._last_u
                self._track(last, arrival)
                before = theta + (u - u0) * (1.0 + rho)
                after = self.theta + (u - self.u0) * (1.0 + self.rho)
                weight = np.clip((u - prev) / (last - prev), 0.0, 1.0) if last > prev else 1.0
                self._last_u = last
                self._last_arrival = arrival
                return before + (after - before) * weight
        self._last_u = last
        self._last_arrival = arrival
        return self.theta + (u - self.u0) * (1.0 + self.rho)  # type: ignore[operator]

    def reset(self) -> None:
        """Forget the anchor (a new connection whose source timeline restarts); keep ``rho``."""
        self.theta = None
        self._points.clear()
        self._bucket = None
        self._bucket_pts.clear()
        self._late_since = None
        self._late_frames = 0

    @property
    def reanchors(self) -> int:
        return self.resets + self.jumps + self.gaps

    # -- internals --------------------------------------------------------------------------------

    def _at(self, u: float) -> float:
        assert self.theta is not None
        return self.theta + (u - self.u0) * (1.0 + self.rho)

    def _anchor(self, first: float, last: float, arrival: float, not_before: float | None) -> None:
        self.u0 = last
        self.theta = arrival
        if not_before is not None:
            start = self._at(first)
            if start < not_before:
                self.theta += not_before - start
        self._points.clear()
        self._points.append((arrival, last))
        self._bucket = None
        self._bucket_pts.clear()
        self._late_since = None
        self._late_frames = 0

    def _persistently_late(self, residual: float, arrival: float) -> bool:
        if residual <= self.gap_s:
            self._late_since = None
            self._late_frames = 0
            return False
        if self._late_since is None:
            self._late_since = arrival
        self._late_frames += 1
        return self._late_frames >= 3 and arrival - self._late_since >= self.confirm_s

    def _track(self, last: float, arrival: float) -> None:
        points = self._points
        points.append((arrival, last))
        while len(points) > 1 and points[0][0] < arrival - self.window_s:
            points.popleft()
        arr = np.fromiter((p[0] for p in points), dtype=np.float64, count=len(points))
        us = np.fromiter((p[1] for p in points), dtype=np.float64, count=len(points))
        envelope = float(np.min(arr - (self.theta + (us - self.u0) * (1.0 + self.rho))))
        # Bounded by the source time this frame covers (not by arrival times, which bunch up
        # after a delay), so samples stay at least (1 - down_slew) of their spacing apart.
        du = max(0.0, last - self._last_u)
        step = min(max(envelope, -self.down_slew * du), self.up_slew * du)
        self.theta += step  # type: ignore[operator]
        if self.estimate_rate:
            self._track_rate(last, arrival)

    def _track_rate(self, last: float, arrival: float) -> None:
        residual = arrival - self._at(last)
        bucket = self._bucket
        if bucket is not None and arrival - bucket[0] < self.bucket_s:
            if residual < bucket[3]:
                self._bucket = (bucket[0], arrival, last, residual)
            return
        self._bucket = (arrival, arrival, last, residual)
        if bucket is None:
            return
        pts = self._bucket_pts
        pts.append((bucket[1], bucket[2]))
        while pts and pts[0][0] < arrival - self.rate_window_s:
            pts.popleft()
        if len(pts) < 3 or pts[-1][1] - pts[0][1] < self.min_rate_span_s:
            return
        a = np.array([p[0] for p in pts])
        u = np.array([p[1] for p in pts])
        slope = float(np.polyfit(u - u[0], a - a[0], 1)[0])
        rho = min(max(slope - 1.0, -self.max_rate_error), self.max_rate_error)
        # Keep the current sample where it is: re-base at ``last``, then change the rate.
        self.theta = self._at(last)
        self.u0 = last
        self.rho = rho


class SensorTimeline:
    """Sensor-stamped samples (Unix seconds on the sensor clock) onto the host clock."""

    def __init__(self, mapper: ClockMapper | None = None) -> None:
        self.mapper = mapper or ClockMapper()

    def map(self, sensor_times: np.ndarray, arrival: float, not_before: float | None = None) -> np.ndarray:
        return self.mapper.map(sensor_times, arrival, not_before)

    def new_segment(self) -> None:
        """A new connection: the sensor clock keeps running, so the mapping is kept (a sensor that
        rebooted meanwhile shows up as a clock going backwards and re-anchors)."""


class NominalTimeline:
    """Samples without timestamps: source time = sample count / nominal rate, per connection."""

    def __init__(self, rate_hz: float, mapper: ClockMapper | None = None) -> None:
        if not rate_hz > 0:
            raise ValueError(f"nominal rate must be > 0 Hz, got {rate_hz!r}")
        self.rate_hz = float(rate_hz)
        self.mapper = mapper or ClockMapper(estimate_rate=True)
        self._u = 0.0

    def map(self, n: int, arrival: float, not_before: float | None = None) -> np.ndarray:
        u = self._u + np.arange(n, dtype=np.float64) / self.rate_hz
        self._u += n / self.rate_hz
        return self.mapper.map(u, arrival, not_before)

    def set_rate(self, rate_hz: float) -> None:
        """The sensor told us its actual output rate (e.g. a WitMotion register reply)."""
        if rate_hz > 0 and abs(rate_hz - self.rate_hz) > 1e-9:
            self.rate_hz = float(rate_hz)
            self.new_segment()

    def new_segment(self) -> None:
        """A new connection: the sample count restarts, the anchor is taken afresh, the rate
        correction learnt so far is kept."""
        self._u = 0.0
        self.mapper.reset()


class DeviceMillis:
    """A device's wrapping u32 millisecond clock (NUS frames) as an unwrapped timeline in seconds.

    A step forward of less than 2**31 ms is time passing (across the wrap at 2**32); a larger one
    is the clock going backwards (the board rebooted), which starts again from the raw value so
    the :class:`ClockMapper` sees the source go back and re-anchors.
    """

    def __init__(self) -> None:
        self._raw: int | None = None
        self._seconds = 0.0

    def seconds(self, raw_ms: int) -> float:
        raw_ms = int(raw_ms) & 0xFFFFFFFF
        if self._raw is None:
            self._seconds = raw_ms / 1000.0
        else:
            step = (raw_ms - self._raw) % (1 << 32)
            self._seconds = raw_ms / 1000.0 if step >= 1 << 31 else self._seconds + step / 1000.0
        self._raw = raw_ms
        return self._seconds
