"""The accelerometer and its radio link: sample clock, anti-alias filter, offsets, noise, range, timestamps.

Numbers (datasheets of common MEMS parts and BLE stacks; see ``simnights/README.md``): output data rate
12.5-208 Hz with the internal oscillator off by up to +-1.5 %; a digital low-pass at 0.25-0.5 x the rate, or
simple averaging over the sample period, or none (some low-power modes alias); zero-g offset up to
+-40 mg per axis, sensitivity error +-2 %, cross-axis +-1 %; a warm-up drift of a few mg as the sensor
reaches skin temperature and a slow wander; white noise 1-6 mg RMS; full scale +-2 or +-8 g at 12 or 16
bit, values clipped at full scale. Timestamps either from the host when each BLE notification arrives
(several samples per packet, spread back at the nominal period, latency jitter, the odd stall and a few
packets held back 0.5-3 s, the ones queued behind arriving in a late burst) or from
the sensor's own sample counter (which drifts with its oscillator).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal


@lru_cache(maxsize=64)
def _butter(order: int, fc: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    return signal.butter(order, fc, btype=btype, fs=fs, output="sos")


@dataclass
class Sensor:
    rate_hz: float
    range_g: float
    bits: int
    noise_mg: float
    bias_mg: np.ndarray  # (3,)
    gain: np.ndarray  # (3, 3) sensitivity and cross-axis
    filter: str  # "butter", "average" or "none"
    bandwidth: float  # x rate, for "butter"
    osc_error: float  # true rate = nominal x (1 + osc_error)
    clock: str  # "host" or "sensor"
    packet_s: float
    latency_ms: float
    jitter_ms: float
    warmup_mg: np.ndarray  # (3,)
    warmup_tau_s: float
    wander_mg: float
    late_bursts: int  # packets held back 0.5-3 s by the radio, the ones behind arriving in a burst

    @classmethod
    def draw(cls, rng: np.random.Generator, rate_hz: float, **knobs) -> Sensor:
        def pick(name, default):
            v = knobs.get(name)
            return default() if v is None else v

        cross = rng.uniform(-0.01, 0.01, (3, 3))
        np.fill_diagonal(cross, 0.0)
        gain = np.diag(1.0 + rng.uniform(-0.02, 0.02, 3)) + cross
        return cls(
            rate_hz=float(rate_hz),
            range_g=float(pick("range_g", lambda: rng.choice([2.0, 8.0]))),
            bits=int(pick("bits", lambda: rng.choice([12, 16]))),
            noise_mg=float(pick("noise_mg", lambda: rng.uniform(1.0, 6.0))),
            bias_mg=rng.uniform(-40, 40, 3),
            gain=gain,
            filter=str(pick("filter", lambda: rng.choice(["butter", "butter", "average", "none"]))),
            bandwidth=float(pick("bandwidth", lambda: rng.uniform(0.25, 0.5))),
            osc_error=float(pick("osc_error", lambda: rng.uniform(-0.015, 0.015))),
            clock=str(pick("clock", lambda: rng.choice(["host", "sensor"]))),
            packet_s=float(pick("packet_s", lambda: rng.uniform(0.02, 0.7))),
            latency_ms=float(rng.uniform(5, 40)),
            jitter_ms=float(pick("jitter_ms", lambda: rng.uniform(1, 20))),
            warmup_mg=rng.uniform(-8, 8, 3),
            warmup_tau_s=float(rng.uniform(300, 1200)),
            wander_mg=float(rng.uniform(0.5, 3.0)),
            late_bursts=int(pick("late_bursts", lambda: rng.integers(0, 4))),
        )

    def params(self) -> dict:
        return {
            "range_g": self.range_g,
            "bits": self.bits,
            "noise_mg": round(self.noise_mg, 3),
            "filter": self.filter,
            "bandwidth": round(self.bandwidth, 3),
            "osc_error": round(self.osc_error, 5),
            "clock": self.clock,
            "packet_s": round(self.packet_s, 3),
            "jitter_ms": round(self.jitter_ms, 2),
            "late_bursts": self.late_bursts,
        }

    def sample_instants(self, seconds: float) -> np.ndarray:
        """True times (s from the start) at which the sensor samples."""
        period = 1.0 / (self.rate_hz * (1.0 + self.osc_error))
        return np.arange(0.0, seconds, period)

    def fine_rate(self) -> float:
        """Rate of the grid movements are rendered on (>= 4 x the output rate and >= 400 Hz)."""
        return max(4.0 * self.rate_hz, 400.0)

    def analog(self, x: np.ndarray, fs: float) -> np.ndarray:
        """The sensor's filter applied to a fine-grid signal (n, 3), causally, starting settled."""
        if self.filter == "none" or len(x) < 4:
            return x
        if self.filter == "average":
            k = max(1, int(round(fs / self.rate_hz)))
            c = np.cumsum(np.vstack([np.repeat(x[:1], k, axis=0), x]), axis=0)
            return (c[k:] - c[:-k]) / k
        sos = _butter(4, min(self.bandwidth * self.rate_hz, 0.45 * fs), "lowpass", fs)
        zi = signal.sosfilt_zi(sos)[:, :, None] * x[0][None, None, :]
        y, _ = signal.sosfilt(sos, x, axis=0, zi=zi)
        return y

    def digitise(self, rng: np.random.Generator, tau: np.ndarray, f: np.ndarray) -> np.ndarray:
        """True specific force at the samples (n, 3) -> what the sensor reports (g)."""
        n = len(tau)
        warm = self.warmup_mg[None, :] * (1.0 - np.exp(-tau / self.warmup_tau_s))[:, None]
        steps = rng.normal(0.0, 1.0, (max(2, int(tau[-1] / 60) + 2), 3)) if n else np.zeros((2, 3))
        walk = np.cumsum(steps, axis=0) / np.sqrt(60.0) * self.wander_mg
        wander = np.stack([np.interp(tau / 60.0, np.arange(len(walk)), walk[:, k]) for k in range(3)], axis=1)
        offset = (self.bias_mg[None, :] + warm + wander) / 1000.0
        y = np.einsum("ij,kj->ik", f, self.gain) + offset + rng.normal(0.0, self.noise_mg / 1000.0, (n, 3))
        lsb = 2.0 * self.range_g / 2**self.bits
        counts = np.clip(np.round(y / lsb), -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1)
        return counts * lsb

    def timestamps(self, rng: np.random.Generator, tau: np.ndarray, t0: float) -> np.ndarray:
        """Unix timestamps the recording carries for samples taken at true times ``tau``."""
        nominal = 1.0 / self.rate_hz
        n = len(tau)
        if self.clock == "sensor":
            idx = np.rint((tau - tau[0]) / (1.0 / (self.rate_hz * (1.0 + self.osc_error))))
            t = t0 + tau[0] + idx * nominal + rng.normal(0.0, 0.0002, n)
        else:
            k = max(1, int(round(self.packet_s * self.rate_hz)))
            last = np.minimum(np.arange(n) // k * k + k - 1, n - 1)
            npk = int(last[-1] // k + 1) if n else 0
            lat = self.latency_ms + rng.exponential(self.jitter_ms, npk)
            stalls = rng.random(npk) < 0.004
            lat[stalls] += rng.uniform(100, 600, int(stalls.sum()))
            if npk > 2 and self.late_bursts:
                held = rng.choice(npk - 1, size=min(self.late_bursts, npk - 1), replace=False)
                lat[held] += rng.uniform(500, 3000, len(held))
            # packets queue behind a stalled one and then arrive in a burst
            pk_arrive = np.maximum.accumulate(tau[np.minimum(np.arange(npk) * k + k - 1, n - 1)] + lat / 1000.0)
            arrive = pk_arrive[last // k]
            t = t0 + arrive - (last - np.arange(n)) * nominal
        # strictly increasing, as a collector would store them
        eps = 1e-6
        return np.maximum.accumulate(t - np.arange(n) * eps) + np.arange(n) * eps
