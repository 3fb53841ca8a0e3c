"""The legwatch MQTT sample payload, version 1: compact binary, plus JSON for DIY publishers.

Binary layout (little-endian)::

    offset size type     field
    0      1    u8       version (1)
    1      1    u8       flags: bit 0 = per-sample time deviations follow the sensor id
    2      2    u16      n, number of samples (1..4096)
    4      4    u32      sequence number (per sensor, +1 per batch, wraps at 2**32)
    8      8    i64      time of the first sample, microseconds since the Unix epoch
    16     4    f32      nominal sample rate, Hz: sample i at t0 + round(i * 1e6 / rate) us
    20     4    f32      scale, g per count
    24     1    u8       L, length of the sensor id (1..64)
    25     L    utf-8    sensor id ([A-Za-z0-9_.-])
    ...    2n   i16      (flag bit 0 only) each sample's deviation from that nominal time, us
    ...    6n   3 x i16  samples x, y, z in counts

6 bytes per evenly spaced sample, 8 with per-sample deviations, 25 + L bytes of header. Times are
exact to the microsecond, so a recording with microsecond timestamps crosses the wire unchanged;
a batch whose samples stray more than 32.767 ms from the nominal grid is split by the sender.

JSON form (a payload whose first byte is ``{``)::

    {"v": 1, "sensor": "shin-left", "seq": 17, "t0": 1767652200.25, "rate": 52,
     "samples": [[0.01, -0.02, 0.99], ...]}

with acceleration in g; ``"t": [...]`` (Unix seconds per sample) may replace ``t0``/``rate``.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass

import numpy as np

VERSION = 1
MAX_SAMPLES = 4096
MAX_BYTES = 64 * 1024
FLAG_OFFSETS = 0x01
MAX_DEV_US = 32767
DEFAULT_SCALE = 1.0 / 4096.0  # +-8 g at 16 bits: 0.244 mg per count
SENSOR_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HEAD = struct.Struct("<BBHIqffB")


class PayloadError(ValueError):
    """A payload that cannot be used. ``kind`` names the class of fault for counting."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Batch:
    sensor: str
    seq: int
    t: np.ndarray  # (n,) Unix seconds
    xyz: np.ndarray  # (n, 3) g
    rate: float

    def __len__(self) -> int:
        return len(self.t)


def valid_sensor_id(sensor: str) -> bool:
    return bool(SENSOR_ID.match(sensor))


def _nominal_us(n: int, rate: float) -> np.ndarray:
    r32 = float(np.float32(rate))
    return np.round(np.arange(n) * (1e6 / r32)).astype(np.int64)


def grid(t0: float, n: int, rate: float) -> np.ndarray:
    """Timestamps of ``n`` evenly spaced samples exactly as the payload states them (6 bytes each)."""
    return (int(round(t0 * 1e6)) + _nominal_us(n, rate)) / 1e6


def fit(t: np.ndarray, rate: float) -> int:
    """How many leading samples of ``t`` fit in one payload (deviations within +-32.767 ms)."""
    n = min(len(t), MAX_SAMPLES)
    t_us = np.round(np.asarray(t[:n], dtype=np.float64) * 1e6).astype(np.int64)
    dev = t_us - t_us[0] - _nominal_us(n, rate)
    bad = np.flatnonzero(np.abs(dev) > MAX_DEV_US)
    return int(bad[0]) if len(bad) else n


def quantize(
    t: np.ndarray, xyz: np.ndarray, scale: float = DEFAULT_SCALE, *, in_place: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """What a recording looks like after crossing the wire: whole microseconds, whole counts.
    ``in_place``: overwrite ``t`` and ``xyz`` where they are writable float64 arrays (a reader's
    own, used for nothing else), sparing the allocation of a second night in memory."""
    sc = float(np.float32(scale))
    t_q = _scaled(t, 1e6, in_place)
    np.round(t_q, out=t_q)
    t_q /= 1e6
    v = _scaled(xyz, 1 / sc, in_place) if sc == 2.0 ** round(np.log2(sc)) else np.asarray(xyz, np.float64) / sc
    np.round(v, out=v)
    if v.size and (v.min() < -32768 or v.max() > 32767):  # (two reads instead of a pass that writes)
        np.clip(v, -32768, 32767, out=v)
    v *= sc
    return t_q, v


def _scaled(a: np.ndarray, factor: float, in_place: bool) -> np.ndarray:
    """``a * factor`` as float64: into ``a`` itself when allowed and possible, else a new array."""
    if in_place and isinstance(a, np.ndarray) and a.dtype == np.float64 and a.flags.writeable and a.flags.c_contiguous:
        a *= factor
        return a
    return np.asarray(a, dtype=np.float64) * factor


def encode(sensor: str, seq: int, t: np.ndarray, xyz: np.ndarray, rate: float, scale: float = DEFAULT_SCALE) -> bytes:
    """One batch as a binary v1 payload. Evenly spaced batches carry no per-sample times."""
    if not valid_sensor_id(sensor):
        raise PayloadError("sensor", f"bad sensor id {sensor!r}: use 1-64 of A-Z a-z 0-9 _ . -")
    t = np.asarray(t, dtype=np.float64)
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    n = len(t)
    if not 1 <= n <= MAX_SAMPLES or len(xyz) != n:
        raise PayloadError("size", f"a batch holds 1..{MAX_SAMPLES} samples with one timestamp each")
    t_us = np.round(t * 1e6).astype(np.int64)
    t0_us = int(t_us[0])
    dev = t_us - t0_us - _nominal_us(n, rate)
    flags = 0
    devs = b""
    if np.any(dev != 0):
        if np.max(np.abs(dev)) > MAX_DEV_US:
            raise PayloadError("size", "samples stray over 32.767 ms from the nominal rate: split the batch")
        flags |= FLAG_OFFSETS
        devs = dev.astype("<i2").tobytes()
    sc = float(np.float32(scale))
    counts = np.clip(np.round(xyz / sc), -32768, 32767).astype("<i2")
    sid = sensor.encode()
    head = _HEAD.pack(VERSION, flags, n, seq & 0xFFFFFFFF, t0_us, rate, scale, len(sid))
    return head + sid + devs + counts.tobytes()


def decode(data: bytes) -> Batch:
    """A binary or JSON payload -> Batch; raises PayloadError (kind, one-line message)."""
    if len(data) > MAX_BYTES:
        raise PayloadError("oversize", f"payload of {len(data)} bytes exceeds {MAX_BYTES}")
    if data[:1] == b"{":
        return _decode_json(data)
    if len(data) < _HEAD.size:
        raise PayloadError("truncated", f"payload of {len(data)} bytes is shorter than the header")
    version, flags, n, seq, t0_us, rate, scale, slen = _HEAD.unpack_from(data)
    if version != VERSION:
        raise PayloadError("version", f"unsupported payload version {version}")
    if flags & ~FLAG_OFFSETS:
        raise PayloadError("malformed", f"unknown flags 0x{flags:02x}")
    if not 1 <= n <= MAX_SAMPLES:
        raise PayloadError("malformed", f"sample count {n} outside 1..{MAX_SAMPLES}")
    if not (math.isfinite(rate) and 0.1 <= rate <= 10000) or not (math.isfinite(scale) and 0 < scale < 1):
        raise PayloadError("malformed", "sample rate or scale out of range")
    pos = _HEAD.size
    try:
        sensor = data[pos : pos + slen].decode()
    except UnicodeDecodeError:
        raise PayloadError("malformed", "sensor id is not UTF-8") from None
    if not valid_sensor_id(sensor):
        raise PayloadError("malformed", "bad sensor id")
    pos += slen
    need = pos + (2 * n if flags & FLAG_OFFSETS else 0) + 6 * n
    if len(data) != need:
        kind = "truncated" if len(data) < need else "malformed"
        raise PayloadError(kind, f"payload is {len(data)} bytes, header says {need}")
    t_us = t0_us + _nominal_us(n, rate)
    if flags & FLAG_OFFSETS:
        t_us = t_us + np.frombuffer(data, "<i2", n, pos).astype(np.int64)
        pos += 2 * n
    t = t_us / 1e6
    xyz = np.frombuffer(data, "<i2", 3 * n, pos).reshape(n, 3).astype(np.float64) * float(scale)
    return Batch(sensor, int(seq), t, xyz, float(rate))


def _decode_json(data: bytes) -> Batch:
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("malformed", f"invalid JSON: {exc}") from None
    except RecursionError:  # "[[[[…": nested deeper than the parser goes
        raise PayloadError("malformed", "invalid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise PayloadError("malformed", "JSON payload must be an object")
    if obj.get("v", VERSION) != VERSION:
        raise PayloadError("version", f"unsupported payload version {obj.get('v')!r}")
    sensor = obj.get("sensor")
    if not isinstance(sensor, str) or not valid_sensor_id(sensor):
        raise PayloadError("malformed", "JSON payload needs a valid 'sensor'")
    seq = obj.get("seq", 0)
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**32:
        raise PayloadError("malformed", "'seq' must be an integer 0..2**32-1")
    try:
        xyz = np.asarray(obj["samples"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise PayloadError("malformed", "'samples' must be a list of [ax, ay, az]") from None
    if xyz.ndim != 2 or xyz.shape[1] != 3 or not 1 <= len(xyz) <= MAX_SAMPLES or not np.isfinite(xyz).all():
        raise PayloadError("malformed", f"'samples' must hold 1..{MAX_SAMPLES} finite [ax, ay, az]")
    n = len(xyz)
    rate = obj.get("rate")
    if "t" in obj:
        try:
            t = np.asarray(obj["t"], dtype=np.float64)
        except (TypeError, ValueError):
            raise PayloadError("malformed", "'t' must be a list of numbers") from None
        if t.shape != (n,) or not np.isfinite(t).all() or (n > 1 and np.any(np.diff(t) <= 0)):
            raise PayloadError("malformed", "'t' must hold one increasing timestamp per sample")
        if rate is None:
            rate = (n - 1) / (t[-1] - t[0]) if n > 1 else 1.0
    else:
        t0 = obj.get("t0")
        if not isinstance(t0, int | float) or isinstance(t0, bool) or not math.isfinite(t0):
            raise PayloadError("malformed", "JSON payload needs 't0' (Unix seconds) or 't'")
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0.1 <= rate <= 10000:
            raise PayloadError("malformed", "JSON payload needs 'rate' (Hz) with 't0'")
        t = float(t0) + np.arange(n) / float(rate)
    return Batch(sensor, seq, t, xyz, float(rate))


def encode_json(batch: Batch) -> bytes:
    return json.dumps(
        {
            "v": VERSION,
            "sensor": batch.sensor,
            "seq": batch.seq,
            "t": [round(float(x), 6) for x in batch.t],
            "rate": batch.rate,
            "samples": np.round(batch.xyz, 6).tolist(),
        }
    ).encode()
