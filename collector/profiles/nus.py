"""Nordic UART Service (NUS) profile for do-it-yourself boards (ESP32, nRF52840 Sense, ...).

NUS itself carries bytes; what they mean is ours to define. Firmware that wants to work with
legwatch sends one **legwatch accelerometer frame, version 1** per notification on the NUS TX
characteristic (the one with the *notify* property). All fields are little-endian.

| Offset | Size | Type          | Field      | Meaning                                                           |
|-------:|-----:|---------------|------------|-------------------------------------------------------------------|
| 0      | 1    | u8            | `magic`    | `0x4C` (ASCII `L`)                                                |
| 1      | 1    | u8            | `version`  | `1`                                                               |
| 2      | 2    | u16           | `seq`      | frame counter, +1 per frame, wraps 65535 -> 0 (loss/duplicates)   |
| 4      | 4    | u32           | `t_ms`     | device clock in ms when the *first* sample was taken; any origin  |
|        |      |               |            | (e.g. `millis()`), wraps at 2^32                                  |
| 8      | 2    | u16           | `rate_dhz` | sample rate in 0.1 Hz (`520` = 52.0 Hz, `125` = 12.5 Hz); > 0     |
| 10     | 1    | u8            | `range_g`  | full scale: raw +-32768 = +-`range_g` g (2, 4, 8, 16); > 0        |
| 11     | 1    | u8            | `count`    | N, samples in this frame, >= 1                                    |
| 12     | 6N   | N x 3 x i16   | `x, y, z`  | samples, oldest first; g = raw x `range_g` / 32768                |

A frame is ``12 + 6N`` bytes and never spans notifications: N <= (ATT MTU - 3 - 12) / 6, i.e. 1
sample at the default MTU of 23, 38 at MTU 247. Sample ``i`` was taken at
``t_ms + i x 10000 / rate_dhz`` ms. The collector maps the device clock onto Unix time (anchored
at the earliest-arriving frames, following drift up to 200 ppm, re-anchoring after a device
reboot), so timestamps keep the device's own spacing rather than radio jitter.

Optional commands the firmware may accept on the RX characteristic (*write* property):
start ``4C 01 01 <rate_dhz u16> <range_g u8>`` and stop ``4C 01 02``. Firmware that ignores them
simply streams while notifications are enabled.

UUIDs: service ``6E400001-B5A3-F393-E0A9-E50E24DCCA9E``, characteristics ``6E400002``/``6E400003``
(same suffix). Zephyr and bleak's ``uart_service.py`` call 0002 RX (central writes) and 0003 TX
(peripheral notifies); older Nordic documents swap the names, so characteristics are chosen by
their properties, not their names.

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .base import (
    Decoded,
    Decoder,
    Profile,
    ProfileError,
    char_properties,
    char_uuid,
    normalize_uuid,
    register_profile,
)

__all__ = [
    "FRAME_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "NUS_CHAR_A",
    "NUS_CHAR_B",
    "NUS_SERVICE",
    "DeviceClock",
    "NusDecoder",
    "NusFrame",
    "NusProfile",
    "encode_frame",
    "max_samples_per_frame",
    "parse_frame",
    "start_command",
    "stop_command",
]

NUS_SERVICE = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_CHAR_A = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # RX in Zephyr/bleak naming (central writes)
NUS_CHAR_B = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # TX in Zephyr/bleak naming (peripheral notifies)

MAGIC = 0x4C
FRAME_VERSION = 1
HEADER_SIZE = 12
_HEADER = struct.Struct("<BBHIHBB")
CMD_START = 0x01
CMD_STOP = 0x02


class NusFrame:
    """Fields of one legwatch NUS frame; ``raw`` is the ``(N, 3)`` int16 sample array."""

    __slots__ = ("count", "range_g", "rate_dhz", "raw", "seq", "t_ms", "version")

    def __init__(self, version: int, seq: int, t_ms: int, rate_dhz: int, range_g: int, raw: np.ndarray) -> None:
        self.version = version
        self.seq = seq
        self.t_ms = t_ms
        self.rate_dhz = rate_dhz
        self.range_g = range_g
        self.raw = raw
        self.count = int(raw.shape[0])

    @property
    def rate_hz(self) -> float:
        return self.rate_dhz / 10.0

    @property
    def samples_g(self) -> np.ndarray:
        return self.raw.astype(np.float64) * (self.range_g / 32768.0)


def parse_frame(data: bytes) -> NusFrame:
    """Validate and split one frame; :class:`ProfileError` says what is wrong."""
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise ProfileError(f"NUS frame too short ({len(data)} bytes, header is {HEADER_SIZE})")
    magic, version, seq, t_ms, rate_dhz, range_g, count = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ProfileError(f"NUS frame magic is {magic:#04x}, expected 0x4c ('L')")
    if version != FRAME_VERSION:
        raise ProfileError(f"NUS frame version {version} is not supported (this collector reads 1)")
    if count == 0:
        raise ProfileError("NUS frame has count 0")
    if rate_dhz == 0 or range_g == 0:
        raise ProfileError(f"NUS frame has rate_dhz={rate_dhz} range_g={range_g}; both must be > 0")
    expected = HEADER_SIZE + 6 * count
    if len(data) != expected:
        raise ProfileError(f"NUS frame with count {count} must be {expected} bytes, got {len(data)}")
    raw = np.frombuffer(data, dtype="<i2", offset=HEADER_SIZE).reshape(count, 3)
    return NusFrame(version, seq, t_ms, rate_dhz, range_g, raw)


def encode_frame(seq: int, t_ms: int, rate_hz: float, range_g: int, raw: Any) -> bytes:
    """Build a frame (for simulators, tests and as executable documentation for firmware)."""
    arr = np.asarray(raw)
    if arr.ndim != 2 or arr.shape[1] != 3 or not 1 <= arr.shape[0] <= 255:
        raise ProfileError(f"NUS frame needs 1..255 samples of 3 axes, got shape {arr.shape}")
    if arr.size and (arr.min() < -32768 or arr.max() > 32767):
        raise ProfileError("NUS samples must fit int16")
    rate_dhz = round(rate_hz * 10)
    if not 0 < rate_dhz <= 0xFFFF or not 0 < range_g <= 0xFF:
        raise ProfileError(f"NUS rate {rate_hz} Hz or range {range_g} g out of range")
    header = _HEADER.pack(MAGIC, FRAME_VERSION, seq & 0xFFFF, t_ms & 0xFFFFFFFF, rate_dhz, range_g, arr.shape[0])
    return header + arr.astype("<i2").tobytes()


def max_samples_per_frame(mtu: int = 23) -> int:
    """Largest N that fits one notification at this ATT MTU."""
    return max(0, min(255, (mtu - 3 - HEADER_SIZE) // 6))


def start_command(rate_hz: float, range_g: float) -> bytes:
    """Optional ``4C 01 01 <rate_dhz u16> <range_g u8>``."""
    rate_dhz = round(rate_hz * 10)
    range_int = round(range_g)
    if not 0 < rate_dhz <= 0xFFFF or not 0 < range_int <= 0xFF:
        raise ProfileError(f"NUS start: rate {rate_hz} Hz or range {range_g} g out of range")
    return bytes([MAGIC, FRAME_VERSION, CMD_START]) + rate_dhz.to_bytes(2, "little") + bytes([range_int])


def stop_command() -> bytes:
    """Optional ``4C 01 02``."""
    return bytes([MAGIC, FRAME_VERSION, CMD_STOP])


class DeviceClock:
    """Maps a wrapping u32 millisecond device clock onto Unix seconds.

    ``offset`` (Unix = device seconds + offset) starts from the first frame, assuming its last
    sample was taken as it arrived, and afterwards is the running minimum of that estimate (the
    least-delayed frame wins), allowed to creep upwards at most ``max_drift_ppm`` so a slower
    device clock is followed. A jump of more than ``jump_s`` or a clock that goes backwards (a
    reboot) re-anchors.
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, max_drift_ppm: float = 200.0, jump_s: float = 5.0
    ) -> None:
        self.clock = clock
        self.max_drift = max_drift_ppm * 1e-6
        self.jump_s = jump_s
        self.offset: float | None = None
        self._device_s = 0.0
        self._device_ref = 0.0
        self._last_raw: int | None = None
        self.reanchors = 0

    def to_unix(self, t_ms: int, span_s: float) -> float:
        """Unix time of device time ``t_ms``; ``span_s`` = time from it to the frame's last sample."""
        now = float(self.clock())
        last = self._last_raw
        step = None if last is None else (t_ms - last) % (1 << 32)
        if step is None or step >= 1 << 31:  # first frame, or the clock went backwards: reboot
            self._device_s = t_ms / 1000.0
            if self.offset is not None:
                self.reanchors += 1
            self.offset = None
        else:
            self._device_s += step / 1000.0
        self._last_raw = t_ms
        candidate = now - (self._device_s + span_s)
        if self.offset is None:
            self.offset = candidate
        else:
            ceiling = self.offset + self.max_drift * max(0.0, self._device_s - self._device_ref)
            if candidate <= ceiling:
                self.offset = candidate
            elif candidate - ceiling > self.jump_s:
                self.offset = candidate
                self.reanchors += 1
            else:
                self.offset = ceiling
        self._device_ref = self._device_s
        return self._device_s + self.offset

    def reset(self) -> None:
        self.offset = None
        self._last_raw = None


class NusDecoder(Decoder):
    """Decodes legwatch NUS frames; tracks ``seq`` to report lost frames and drop duplicates."""

    def __init__(self, clock: Callable[[], float] = time.time, max_drift_ppm: float | str = 200.0) -> None:
        try:
            drift = float(max_drift_ppm)
        except (TypeError, ValueError):
            raise ProfileError(f"bad NUS setting max_drift_ppm={max_drift_ppm!r}") from None
        self.clock = DeviceClock(clock, drift)
        self._last_seq: int | None = None
        self._last_t: int | None = None
        self.lost_frames = 0
        self.duplicate_frames = 0

    def feed(self, data: bytes) -> Decoded:
        frame = parse_frame(data)
        extras: dict[str, Any] = {"seq": frame.seq, "device_time_ms": frame.t_ms, "rate_hz": frame.rate_hz}
        if self._last_seq is not None:
            if frame.seq == self._last_seq and frame.t_ms == self._last_t:
                self.duplicate_frames += 1
                return Decoded.empty(with_time=True, duplicate=True, **extras)
            gap = (frame.seq - self._last_seq - 1) % 0x10000
            if gap and gap < 0x8000:
                self.lost_frames += gap
                extras["lost_frames"] = gap
        self._last_seq, self._last_t = frame.seq, frame.t_ms
        period = 10.0 / frame.rate_dhz  # seconds
        offsets = np.arange(frame.count, dtype=np.float64) * period
        start = self.clock.to_unix(frame.t_ms, float(offsets[-1]))
        return Decoded(frame.samples_g, start + offsets, extras)

    def reset(self) -> None:
        self.clock.reset()
        self._last_seq = self._last_t = None


class NusProfile(Profile):
    name = "nus"
    service_uuid = NUS_SERVICE
    data_uuid = NUS_CHAR_B
    control_uuid = NUS_CHAR_A
    write_response = None
    name_prefixes = ("legwatch",)
    advertised_uuids = (NUS_SERVICE,)
    default_rate_hz = 52.0
    timed = True
    #: Frames carry ``t_ms``: the collector maps that raw clock itself rather than :class:`DeviceClock`'s estimate.
    device_ms_clock = True

    def resolve_characteristics(self, characteristics: Iterable[Any]) -> tuple[str, str | None]:
        """The NUS characteristic that notifies carries data; the one that takes writes, commands."""
        nus = {NUS_CHAR_A, NUS_CHAR_B}
        data = control = None
        for char in characteristics:
            uuid = normalize_uuid(char_uuid(char))
            if uuid not in nus:
                continue
            props = char_properties(char)
            if data is None and props & {"notify", "indicate"}:
                data = uuid
            elif control is None and props & {"write", "write-without-response"}:
                control = uuid
        if data is None:
            raise ProfileError("nus: no NUS characteristic with the notify property")
        return data, control

    def new_decoder(self, **settings: Any) -> NusDecoder:
        """Settings: ``clock`` (callable returning Unix seconds), ``max_drift_ppm``."""
        return NusDecoder(**settings)

    def start_commands(self, rate_hz: float, range_g: float) -> list[bytes]:
        return [start_command(rate_hz, range_g)]

    def stop_commands(self) -> list[bytes]:
        return [stop_command()]


NUS = register_profile(NusProfile())
