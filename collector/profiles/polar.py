"""Polar Measurement Data (PMD) profile: Polar H10, Verity Sense, OH1 accelerometer streams.

Everything here follows Polar's own SDK, polarofficial/polar-ble-sdk, Android sources under
``sources/Android/android-communications/library/src/main/java/com/polar/androidcommunications/
api/ble/model/gatt/client/pmd/`` (``BlePMDClient.kt``, ``PmdControlPointCommand.kt``,
``PmdControlPointResponse.kt``, ``PmdSetting.kt``, ``PmdDataFrame.kt``, ``PmdMeasurementType.kt``,
``model/AccData.kt``, ``model/PmdTimeStampUtils.kt``) and its unit tests.

Handshake (:meth:`PolarProfile.start`, which the collector runs): enable indications on the
control point (CP) and notifications on the data characteristic, then write CP commands *with
response*, each waiting for its reply. Replies arrive
as CP indications ``F0 op type status more params...``; a reply with ``more != 0`` continues in
further indications whose ``bytes[5:]`` are appended. Typical sequence::

    01 02                      GET ACC settings        -> parse_settings(reply.parameters)
    02 02 00 01 34 00 ...      START ACC with chosen settings (count 1 each, never FACTOR)
                               -> the START reply may carry FACTOR (float32) for compressed frames
    03 02                      STOP ACC

A START answered ERROR_ALREADY_IN_STATE (a sensor that missed the last link loss) gets a STOP
and a second START. A CP message that does not start with ``F0`` but with ``01`` is
ONLINE_MEASUREMENT_STOPPED: the device stopped the listed measurement types by itself;
:meth:`PolarProfile.on_control` tells the collector, which reconnects.

Data frames: ``[type][uint64 ns][frame type][payload]``. The timestamp counts ns since
2000-01-01T00:00:00 on the sensor clock and stamps the *last* sample; earlier samples are spread
back using the previous frame's timestamp (or 1/fs for the first frame), as PmdTimeStampUtils does.
Raw frame types 0/1/2 carry int8/int16/int24 triples in mG. Delta-compressed frames (bit 7 set)
carry a reference sample and blocks of LSB-first bit-packed deltas, then a scale factor applies.

Units of the 8-bit raw type 0 on the Verity Sense: G, not mG. Polar's ``online_measurement.pdf``
(v1.0, August 2024, Table 7) says "8-bit signed value (G for Verity Sense, mG for other devices)"
and that every sample, compressed or not, is multiplied by the FACTOR; the SDK's ``AccData.kt``
returns raw type 0 unchanged as mG for every device, but says of the Verity Sense's type 0 (its
compressed 0x80 frames) that it "arrives in G units" - and the only Verity Sense type-0 data Polar
published (the PMD specification's delta example, z = 4068 counts x 2.44e-4 = 0.99 g) is in G x
FACTOR. An int8 in mG cannot hold gravity (it saturates at 0.127 g), so an mG reading of a Verity
Sense's 8-bit frame would be wrong by 1000x. legwatch follows the document: on a Verity Sense
(advertised name or model "Polar Sense ...", :func:`is_verity_sense`) raw type 0 is G x FACTOR; on
other devices it is mG, as the SDK has it.

A frame whose timestamp repeats the previous frame's (the same frame delivered twice) decodes to
nothing.

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import (
    ControlEvent,
    ControlLink,
    Decoded,
    Decoder,
    HandshakeError,
    Profile,
    ProfileError,
    StreamSettings,
    register_profile,
)

__all__ = [
    "ACC",
    "CP_RESPONSE_CODE",
    "CP_STATUS_NAMES",
    "MEASUREMENT_TYPES",
    "OP_CODES",
    "PMD_CP",
    "PMD_DATA",
    "PMD_SERVICE",
    "POLAR_EPOCH_OFFSET_S",
    "SDK_MODE",
    "SETTING_TYPES",
    "CpResponse",
    "CpResponseAssembler",
    "MeasurementStopped",
    "PmdFrame",
    "PolarDecoder",
    "PolarProfile",
    "choose_acc_settings",
    "decode_acc_frame",
    "factor_from_start_response",
    "get_settings_command",
    "get_status_command",
    "is_verity_sense",
    "parse_cp_message",
    "parse_delta_frames",
    "parse_features",
    "parse_frame",
    "parse_settings",
    "sample_times_ns",
    "sdk_mode_off_command",
    "sdk_mode_on_command",
    "start_command",
    "stop_command",
]

# BlePMDClient.kt, companion object.
PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CP = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

#: Seconds from the Unix epoch to 2000-01-01T00:00:00Z, the zero of the PMD clock.
POLAR_EPOCH_OFFSET_S = 946_684_800

# PmdMeasurementType.kt (id & 0x3F).
MEASUREMENT_TYPES: dict[int, str] = {
    0: "ECG",
    1: "PPG",
    2: "ACC",
    3: "PPI",
    5: "GYRO",
    6: "MAGNETOMETER",
    7: "SKIN_TEMP",
    9: "SDK_MODE",
    10: "LOCATION",
    11: "PRESSURE",
    12: "TEMPERATURE",
    13: "OFFLINE_RECORDING",
    14: "OFFLINE_HR",
    15: "OFFLINE_TEMP",
}
ACC = 2
SDK_MODE = 9

# PmdControlPointCommand.kt (client to service).
OP_CODES: dict[int, str] = {
    0: "NULL_ITEM",
    1: "GET_MEASUREMENT_SETTINGS",
    2: "REQUEST_MEASUREMENT_START",
    3: "STOP_MEASUREMENT",
    4: "GET_SDK_MODE_MEASUREMENT_SETTINGS",
    5: "GET_MEASUREMENT_STATUS",
    6: "GET_SDK_MODE_STATUS",
    7: "GET_OFFLINE_RECORDING_TRIGGER_STATUS",
    8: "SET_OFFLINE_RECORDING_TRIGGER_MODE",
    9: "SET_OFFLINE_RECORDING_TRIGGER_SETTINGS",
}
#: First byte of a CP reply (PmdControlPointResponse.CONTROL_POINT_RESPONSE_CODE).
CP_RESPONSE_CODE = 0xF0
#: First byte of the service-to-client CP message ONLINE_MEASUREMENT_STOPPED.
ONLINE_MEASUREMENT_STOPPED = 0x01

# PmdControlPointResponse.PmdControlPointResponseCode.
CP_STATUS_NAMES: dict[int, str] = {
    0: "SUCCESS",
    1: "ERROR_INVALID_OP_CODE",
    2: "ERROR_INVALID_MEASUREMENT_TYPE",
    3: "ERROR_NOT_SUPPORTED",
    4: "ERROR_INVALID_LENGTH",
    5: "ERROR_INVALID_PARAMETER",
    6: "ERROR_ALREADY_IN_STATE",
    7: "ERROR_INVALID_RESOLUTION",
    8: "ERROR_INVALID_SAMPLE_RATE",
    9: "ERROR_INVALID_RANGE",
    10: "ERROR_INVALID_MTU",
    11: "ERROR_INVALID_NUMBER_OF_CHANNELS",
    12: "ERROR_INVALID_STATE",
    13: "ERROR_DEVICE_IN_CHARGER",
    14: "ERROR_DISK_FULL",
}

# PmdSetting.PmdSettingType -> (name, field size in bytes).
SETTING_TYPES: dict[int, tuple[str, int]] = {
    0: ("SAMPLE_RATE", 2),
    1: ("RESOLUTION", 2),
    2: ("RANGE", 2),
    3: ("RANGE_MILLIUNIT", 4),
    4: ("CHANNELS", 1),
    5: ("FACTOR", 4),
}
_SETTING_IDS = {name: (tid, size) for tid, (name, size) in SETTING_TYPES.items()}
_FACTOR = 5


# --------------------------------------------------------------------------------------------
# Control point: commands
# --------------------------------------------------------------------------------------------


def get_settings_command(measurement: int = ACC, *, sdk_mode_full: bool = False) -> bytes:
    """``01 <type>`` (or ``04 <type>``: every value the sensor offers in SDK mode)."""
    op = 4 if sdk_mode_full else 1
    return bytes([op, _check_type(measurement)])


def start_command(settings: Mapping[int | str, int], measurement: int = ACC) -> bytes:
    """``02 <type>`` followed by one TLV ``[setting type][count = 1][value LE]`` per setting.

    Settings are keyed by type id or name (``"SAMPLE_RATE"``...) and written in type order;
    FACTOR is never sent (``PmdSetting.serializeSelected``).
    """
    tlvs = bytearray()
    resolved: dict[int, int] = {}
    for key, value in settings.items():
        if isinstance(key, str):
            if key.upper() not in _SETTING_IDS:
                raise ProfileError(f"unknown PMD setting {key!r}")
            tid = _SETTING_IDS[key.upper()][0]
        else:
            tid = int(key)
            if tid not in SETTING_TYPES:
                raise ProfileError(f"unknown PMD setting type {key!r}")
        resolved[tid] = int(value)
    for tid in sorted(resolved):
        if tid == _FACTOR:
            continue
        size = SETTING_TYPES[tid][1]
        value = resolved[tid]
        if not 0 <= value < (1 << (8 * size)) and not (size == 4 and -(1 << 31) <= value < 0):
            raise ProfileError(f"PMD setting {SETTING_TYPES[tid][0]}={value} does not fit {size} bytes")
        tlvs += bytes([tid, 1]) + (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return bytes([2, _check_type(measurement)]) + bytes(tlvs)


def stop_command(measurement: int = ACC) -> bytes:
    """``03 <type>``."""
    return bytes([3, _check_type(measurement)])


def sdk_mode_on_command() -> bytes:
    """``02 09``: enter SDK mode (Verity Sense: more ACC rates/ranges; streams stop)."""
    return bytes([2, SDK_MODE])


def sdk_mode_off_command() -> bytes:
    """``03 09``: leave SDK mode."""
    return bytes([3, SDK_MODE])


def get_status_command() -> bytes:
    """``05``: which measurements are running."""
    return bytes([5])


def _check_type(measurement: int) -> int:
    m = int(measurement)
    if not 0 <= m <= 0xFF:
        raise ProfileError(f"PMD measurement type out of range: {measurement}")
    return m


# --------------------------------------------------------------------------------------------
# Control point: replies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpResponse:
    """A (possibly re-assembled) CP reply ``F0 op type status more params``."""

    op_code: int
    measurement_type: int
    status: int
    more: bool
    parameters: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def op_name(self) -> str:
        return OP_CODES.get(self.op_code, f"OP_{self.op_code:#04x}")

    @property
    def status_name(self) -> str:
        return CP_STATUS_NAMES.get(self.status, f"UNKNOWN_STATUS_{self.status}")

    @property
    def measurement_name(self) -> str:
        return MEASUREMENT_TYPES.get(self.measurement_type & 0x3F, f"TYPE_{self.measurement_type}")


@dataclass(frozen=True)
class MeasurementStopped:
    """CP message ``01 <types...>``: the sensor stopped these online measurements itself."""

    measurement_types: tuple[int, ...] = field(default_factory=tuple)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(MEASUREMENT_TYPES.get(t, f"TYPE_{t}") for t in self.measurement_types)


def parse_cp_message(data: bytes) -> CpResponse | MeasurementStopped:
    """One CP indication. Parameters are kept only for SUCCESS, like ``PmdControlPointResponse``."""
    data = bytes(data)
    if not data:
        raise ProfileError("empty PMD control point message")
    if data[0] != CP_RESPONSE_CODE:
        if data[0] == ONLINE_MEASUREMENT_STOPPED:
            return MeasurementStopped(tuple(b & 0x3F for b in data[1:]))
        raise ProfileError(f"unknown PMD control point message {data[:8].hex(' ')}")
    if len(data) < 4:
        raise ProfileError(f"PMD control point reply too short ({len(data)} bytes): {data.hex(' ')}")
    status = data[3]
    if status == 0:
        more = len(data) > 4 and data[4] != 0
        params = data[5:]
    else:
        more, params = False, b""
    return CpResponse(op_code=data[1], measurement_type=data[2], status=status, more=more, parameters=params)


class CpResponseAssembler:
    """Joins multi-part CP replies: continuation indications contribute their ``bytes[5:]``
    (``BlePMDClient.sendPmdCommand``). ``feed`` returns a complete reply, a
    :class:`MeasurementStopped`, or ``None`` while parts are still expected."""

    def __init__(self) -> None:
        self._pending: CpResponse | None = None

    def feed(self, data: bytes) -> CpResponse | MeasurementStopped | None:
        msg = parse_cp_message(data)
        if isinstance(msg, MeasurementStopped):
            return msg
        pending = self._pending
        if pending is not None and msg.op_code == pending.op_code and msg.ok:
            msg = CpResponse(
                op_code=pending.op_code,
                measurement_type=pending.measurement_type,
                status=pending.status,
                more=msg.more,
                parameters=pending.parameters + msg.parameters,
            )
        # A reply to another op (or an error) replaces whatever was pending.
        if msg.more:
            self._pending = msg
            return None
        self._pending = None
        return msg

    def reset(self) -> None:
        self._pending = None


def parse_settings(data: bytes) -> dict[str, list[int | float]]:
    """Setting TLVs ``[type][count][count x value]`` into ``{"SAMPLE_RATE": [52], ...}``.

    Values are little-endian signed integers as in ``PmdSetting.parsePmdSettingsData``; FACTOR is
    an IEEE-754 float32. As in the SDK, one byte or less means no settings.
    """
    data = bytes(data)
    out: dict[str, list[int | float]] = {}
    if len(data) <= 1:
        return out
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise ProfileError(f"PMD settings truncated at byte {offset}: {data.hex(' ')}")
        tid, count = data[offset], data[offset + 1]
        offset += 2
        if tid not in SETTING_TYPES:
            raise ProfileError(f"unknown PMD setting type {tid} at byte {offset - 2}")
        name, size = SETTING_TYPES[tid]
        end = offset + count * size
        if end > len(data):
            raise ProfileError(f"PMD setting {name} needs {count * size} bytes, {len(data) - offset} left")
        values = out.setdefault(name, [])
        for i in range(offset, end, size):
            chunk = data[i : i + size]
            if tid == _FACTOR:
                values.append(struct.unpack("<f", chunk)[0])
            else:
                values.append(int.from_bytes(chunk, "little", signed=True))
        offset = end
    return out


def factor_from_start_response(response: CpResponse | bytes) -> float | None:
    """The FACTOR the sensor announced in its START reply, if any (``updateSelectedFromStartResponse``)."""
    params = response.parameters if isinstance(response, CpResponse) else bytes(response)
    factors = parse_settings(params).get("FACTOR")
    return float(factors[0]) if factors else None


def parse_features(data: bytes) -> set[str]:
    """The feature bitmap read from the CP (``0F b1 b2 ...``, ``PmdMeasurementType.fromByteArray``)."""
    data = bytes(data)
    if len(data) < 3 or data[0] != 0x0F:
        raise ProfileError(f"not a PMD feature read: {data[:8].hex(' ')}")
    bits1 = {0: "ECG", 1: "PPG", 2: "ACC", 3: "PPI", 5: "GYRO", 6: "MAGNETOMETER", 7: "SKIN_TEMP"}
    bits2 = {1: "SDK_MODE", 2: "LOCATION", 3: "PRESSURE", 4: "TEMPERATURE", 5: "OFFLINE_RECORDING"}
    bits2[6] = "OFFLINE_HR"
    found = {name for bit, name in bits1.items() if data[1] >> bit & 1}
    found |= {name for bit, name in bits2.items() if data[2] >> bit & 1}
    return found


def choose_acc_settings(
    available: Mapping[str, list[int | float]], rate_hz: float, range_g: float, resolution: int = 16
) -> dict[str, int]:
    """From a GET-settings reply, the values nearest what was asked for: the lowest offered rate
    at or above ``rate_hz`` (else the highest), the lowest range at or above ``range_g`` (else the
    highest), ``resolution`` if offered (else the highest), and all channels when CHANNELS is
    listed. Settings the sensor does not list are left out."""
    chosen: dict[str, int] = {}

    def at_least(values: list[int | float], target: float) -> int:
        ints = sorted(int(v) for v in values)
        above = [v for v in ints if v >= target]
        return above[0] if above else ints[-1]

    if available.get("SAMPLE_RATE"):
        chosen["SAMPLE_RATE"] = at_least(available["SAMPLE_RATE"], rate_hz)
    if available.get("RESOLUTION"):
        res = [int(v) for v in available["RESOLUTION"]]
        chosen["RESOLUTION"] = resolution if resolution in res else max(res)
    if available.get("RANGE"):
        chosen["RANGE"] = at_least(available["RANGE"], range_g)
    if available.get("CHANNELS"):
        chosen["CHANNELS"] = max(int(v) for v in available["CHANNELS"])
    return chosen


# --------------------------------------------------------------------------------------------
# Data frames
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PmdFrame:
    """Header fields of one PMD data frame (``PmdDataFrame.kt``)."""

    measurement_type: int  # data[0] & 0x3F
    timestamp_ns: int  # ns since 2000-01-01 on the sensor clock, time of the last sample
    frame_type: int  # data[9] & 0x7F
    compressed: bool  # data[9] & 0x80
    payload: bytes


def parse_frame(data: bytes) -> PmdFrame:
    data = bytes(data)
    if len(data) < 10:
        raise ProfileError(f"PMD frame too short ({len(data)} bytes, header is 10)")
    timestamp_ns = int.from_bytes(data[1:9], "little")
    if timestamp_ns >= 1 << 63:  # > year 2292: corrupt, and beyond int64 arithmetic
        raise ProfileError(f"PMD frame timestamp {timestamp_ns} ns is out of range")
    return PmdFrame(
        measurement_type=data[0] & 0x3F,
        timestamp_ns=timestamp_ns,
        frame_type=data[9] & 0x7F,
        compressed=bool(data[9] & 0x80),
        payload=data[10:],
    )


def parse_delta_frames(payload: bytes, channels: int = 3, resolution: int = 16) -> np.ndarray:
    """Decode a delta-compressed payload into integer samples, shape ``(n, channels)``, int64.

    Layout (``BlePMDClient.parseDeltaFramesAll``): a reference sample of ``channels`` signed
    little-endian values of ``ceil(resolution / 8)`` bytes, then blocks ``[bit width][count]``
    followed by ``ceil(count * width * channels / 8)`` bytes of deltas, read LSB-first across
    bytes, sign-extended from their top bit, channel-interleaved; each sample is the previous
    one plus its delta. A block of width 0 (never seen from a device) is taken as ``count``
    zero deltas; the SDK would drop those samples.
    """
    payload = bytes(payload)
    ref_bytes = math.ceil(resolution / 8)
    ref_len = channels * ref_bytes
    if len(payload) < ref_len:
        raise ProfileError(f"compressed PMD payload shorter than its reference sample ({len(payload)} bytes)")
    ref = [int.from_bytes(payload[i : i + ref_bytes], "little", signed=True) for i in range(0, ref_len, ref_bytes)]
    ref_arr = np.asarray(ref, dtype=np.int64)
    mask = (1 << resolution) - 1
    ref_arr = ((ref_arr & mask) ^ (1 << (resolution - 1))) - (1 << (resolution - 1))
    deltas: list[np.ndarray] = []
    offset = ref_len
    while offset < len(payload):
        if offset + 2 > len(payload):
            raise ProfileError(f"compressed PMD block header truncated at byte {offset}")
        width, count = payload[offset], payload[offset + 1]
        offset += 2
        if width > 32:
            raise ProfileError(f"compressed PMD block has delta width {width} bits (max 32)")
        nbits = width * count * channels
        nbytes = (nbits + 7) // 8
        if offset + nbytes > len(payload):
            raise ProfileError(
                f"compressed PMD block needs {nbytes} bytes at byte {offset}, {len(payload) - offset} left"
            )
        if count == 0:
            continue
        if width == 0:
            deltas.append(np.zeros((count, channels), dtype=np.int64))
            continue
        raw = np.frombuffer(payload, dtype=np.uint8, count=nbytes, offset=offset)
        bits = np.unpackbits(raw, bitorder="little")[:nbits].reshape(count * channels, width)
        weights = np.left_shift(np.int64(1), np.arange(width, dtype=np.int64))
        values = bits.astype(np.int64) @ weights
        values = np.where(values >= (1 << (width - 1)), values - (1 << width), values)
        deltas.append(values.reshape(count, channels))
        offset += nbytes
    if not deltas:
        return ref_arr.reshape(1, channels)
    steps = np.concatenate(deltas, axis=0)
    return np.vstack([ref_arr, ref_arr + np.cumsum(steps, axis=0)])


_RAW_ACC_BYTES = {0: 1, 1: 2, 2: 3}


def is_verity_sense(name_or_model: str | None) -> bool:
    """Whether an advertised name or Device Information model names a Polar Verity Sense (it
    advertises as ``Polar Sense <id>``)."""
    text = " ".join(str(name_or_model or "").lower().split())
    return text.startswith("polar sense") or "verity" in text


def decode_acc_frame(frame: PmdFrame, factor: float = 1.0, *, type0_in_g: bool = False) -> np.ndarray:
    """ACC samples of one frame in g, shape ``(n, 3)`` (``AccData.kt``).

    Raw types 0/1/2: int8/int16/int24 triples in mG; ``type0_in_g`` (a Verity Sense): raw type 0
    is G x factor (see the module docstring). Compressed type 0 (0x80): mG = raw x factor
    x 1000. Compressed type 1 (0x81): mG = raw x factor (raw when factor is 1). ``factor`` is the
    float32 FACTOR of the START reply, 1.0 when none came. Unlike the SDK, values are not
    truncated to whole mG.
    """
    if frame.measurement_type != ACC:
        name = MEASUREMENT_TYPES.get(frame.measurement_type, "unknown")
        raise ProfileError(f"PMD frame carries measurement type {frame.measurement_type} ({name}), not ACC (2)")
    f32 = float(np.float32(factor))
    if frame.compressed:
        if frame.frame_type not in (0, 1):
            raise ProfileError(f"compressed ACC frame type {frame.frame_type} is not supported")
        ints = parse_delta_frames(frame.payload, channels=3, resolution=16)
        if frame.frame_type == 0:
            return ints.astype(np.float64) * f32
        return ints.astype(np.float64) * f32 / 1000.0
    size = _RAW_ACC_BYTES.get(frame.frame_type)
    if size is None:
        raise ProfileError(f"raw ACC frame type {frame.frame_type} is not supported")
    payload = frame.payload
    step = 3 * size
    if not payload or len(payload) % step:
        raise ProfileError(
            f"raw ACC type {frame.frame_type} payload of {len(payload)} bytes is not a multiple of {step}"
        )
    if size == 1:
        ints = np.frombuffer(payload, dtype="<i1").astype(np.int64)
        if type0_in_g:
            return ints.reshape(-1, 3).astype(np.float64) * f32
    elif size == 2:
        ints = np.frombuffer(payload, dtype="<i2").astype(np.int64)
    else:
        b = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
    return ints.reshape(-1, 3).astype(np.float64) / 1000.0


def sample_times_ns(previous_ns: int, frame_ns: int, n: int, sample_rate: float | None = None) -> np.ndarray | None:
    """Per-sample sensor times (ns since 2000) of a frame whose last sample is at ``frame_ns``.

    As ``PmdTimeStampUtils.getTimeStamps``: with a previous frame time, the interval is
    ``(frame - previous) / n`` and sample ``i`` is at ``previous + (i + 1) * interval``; for the
    first frame the interval is ``1 / sample_rate`` counted back from ``frame_ns``. The last sample
    is always exactly ``frame_ns``; others are rounded half-to-even like Kotlin's ``round``.

    Two departures, both only when the nominal rate is known: if the clock went backwards or
    the frame-derived interval is off the nominal by more than a factor of 2 (a lost frame, a clock
    jump), the nominal interval is used instead of the SDK's error or stretched spacing.
    Returns ``None`` when no interval can be derived (first frame, rate unknown, n > 1).
    """
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    rate = float(sample_rate) if sample_rate else 0.0
    nominal = 1e9 / rate if rate > 0 else None
    interval: float | None = None
    start: float | None = None
    if previous_ns > 0 and frame_ns > previous_ns:
        interval = (frame_ns - previous_ns) / n
        if nominal is not None and not (0.5 <= interval / nominal <= 2.0):
            interval = None
        else:
            start = previous_ns + interval
    if interval is None:
        if n == 1:
            return np.asarray([frame_ns], dtype=np.int64)
        if nominal is None:
            return None
        interval = nominal
        start = frame_ns - interval * (n - 1)
    assert start is not None
    times = np.rint(start + interval * np.arange(n - 1, dtype=np.float64)).astype(np.int64)
    return np.append(times, np.int64(frame_ns))


def ns2000_to_unix(ns: np.ndarray | int) -> np.ndarray:
    """Sensor ns since 2000-01-01 to Unix seconds (float64)."""
    arr = np.asarray(ns, dtype=np.int64)
    whole = arr // 1_000_000_000
    frac = (arr - whole * 1_000_000_000).astype(np.float64) / 1e9
    return (whole + POLAR_EPOCH_OFFSET_S).astype(np.float64) + frac


# --------------------------------------------------------------------------------------------
# Decoder and profile
# --------------------------------------------------------------------------------------------


class PolarDecoder(Decoder):
    """Per-connection PMD decoder. Keeps the FACTOR (learnt from the START reply passed to
    :meth:`feed_control`, or given), the nominal sample rate for the first frame, and the
    previous frame time per (measurement, frame type) as the SDK does."""

    def __init__(
        self,
        factor: float | str = 1.0,
        sample_rate: float | str | None = None,
        model: str | None = None,
        previous_ns: int | str | None = None,
    ) -> None:
        #: raw type 0 is G (a Verity Sense, from its name or model), else mG
        self.type0_in_g = is_verity_sense(model)
        try:
            self.factor = float(factor)
            self.sample_rate = float(sample_rate) if sample_rate not in (None, "") else None
        except (TypeError, ValueError):
            raise ProfileError(f"bad Polar setting: factor={factor!r} sample_rate={sample_rate!r}") from None
        if not math.isfinite(self.factor):
            raise ProfileError(f"bad Polar factor {factor!r}")
        try:
            #: the sensor time (ns since 2000) of the frame before the first one fed, 0: none
            self.previous_ns = int(previous_ns or 0)
        except (TypeError, ValueError):
            raise ProfileError(f"bad Polar previous frame time {previous_ns!r}") from None
        if self.previous_ns < 0:
            raise ProfileError(f"bad Polar previous frame time {previous_ns!r}")
        self._previous: dict[tuple[int, int], int] = {}
        self._cp = CpResponseAssembler()
        self.last_times_ns: np.ndarray | None = None

    def feed(self, data: bytes) -> Decoded:
        frame = parse_frame(data)
        samples = decode_acc_frame(frame, self.factor, type0_in_g=self.type0_in_g)
        key = (frame.measurement_type, frame.frame_type)
        previous = self._previous.get(key, self.previous_ns)
        if previous and frame.timestamp_ns == previous:
            return Decoded.empty(with_time=True, duplicate=True, sensor_time_ns=frame.timestamp_ns)
        self._previous[key] = frame.timestamp_ns
        times = sample_times_ns(previous, frame.timestamp_ns, samples.shape[0], self.sample_rate)
        self.last_times_ns = times
        extras: dict[str, Any] = {
            "frame_type": (0x80 if frame.compressed else 0) | frame.frame_type,
            "sensor_time_ns": frame.timestamp_ns,
            "frame_time": float(ns2000_to_unix(frame.timestamp_ns)),
        }
        if times is not None:
            extras["sample_times_ns"] = times
        timestamps = None if times is None else ns2000_to_unix(times)
        return Decoded(samples, timestamps, extras)

    def feed_control(self, data: bytes) -> CpResponse | MeasurementStopped | None:
        """Digest a CP indication; a successful ACC START reply updates :attr:`factor`."""
        msg = self._cp.feed(data)
        if isinstance(msg, CpResponse) and msg.ok:
            if msg.op_code == 2 and msg.measurement_type & 0x3F == ACC:
                factor = factor_from_start_response(msg)
                if factor is not None and math.isfinite(factor) and factor != 0.0:
                    self.factor = factor
            elif msg.op_code == 3:
                self._previous.clear()
        return msg

    def reset(self) -> None:
        self._previous.clear()
        self._cp.reset()


class PolarProfile(Profile):
    name = "polar"
    service_uuid = PMD_SERVICE
    data_uuid = PMD_DATA
    control_uuid = PMD_CP
    write_response = True
    control_notifications = True
    name_prefixes = ("Polar ",)
    advertised_uuids = (PMD_SERVICE,)
    default_rate_hz = 52.0
    timed = True

    def stream_settings(self, rate_hz: float, range_g: float) -> StreamSettings:
        """As asked until the sensor's offered settings are known (:meth:`start` then corrects them)."""
        return StreamSettings(float(rate_hz), float(range_g), True, {"sample_rate": float(rate_hz)})

    def on_control(self, decoder: Decoder, data: bytes) -> ControlEvent | None:
        """A complete CP reply is a reply; ONLINE_MEASUREMENT_STOPPED is logged, and a stop of ACC
        (or of unnamed measurements) ends the stream."""
        msg = decoder.feed_control(bytes(data))
        if isinstance(msg, MeasurementStopped):
            stopped = not msg.measurement_types or ACC in msg.measurement_types
            return ControlEvent(
                stopped=stopped, warning=f"the sensor stopped {', '.join(msg.names) or 'streaming'} by itself"
            )
        if isinstance(msg, CpResponse):
            return ControlEvent(reply=msg)
        return None

    async def start(self, link: ControlLink) -> None:
        """``GET ACC settings``, then ``START ACC`` with the nearest offered settings (the requested
        ones when the sensor offers none), each waiting for its CP reply; the START reply carries
        the FACTOR compressed frames need (``info["factor"]``). ``ALREADY_IN_STATE`` gets a STOP
        and a second START."""
        decoder = link.decoder
        assert isinstance(decoder, PolarDecoder)
        if is_verity_sense(link.info.get("model")) or is_verity_sense(link.info.get("name")):
            decoder.type0_in_g = True
        settings: dict[str, int] = {}
        reply = await self._command(link, get_settings_command(ACC), required=False)
        if reply is not None and reply.ok and reply.parameters:
            try:
                offered = parse_settings(reply.parameters)
                settings = choose_acc_settings(offered, link.rate_hz, link.range_g)
            except ProfileError as exc:
                link.log.warning("%s: unreadable ACC settings (%s); asking for the requested ones", self.name, exc)
        if not settings:
            settings = {"SAMPLE_RATE": round(link.rate_hz), "RESOLUTION": 16, "RANGE": round(link.range_g)}
        # Known before START is written, so the first data frame is decoded at the right rate.
        rate = float(settings["SAMPLE_RATE"]) if "SAMPLE_RATE" in settings else None
        range_g = float(settings["RANGE"]) if "RANGE" in settings else None
        link.set_stream(rate=rate, range_g=range_g)
        if rate is not None:
            decoder.sample_rate = rate
        command = start_command(settings)
        reply = await self._command(link, command)
        if reply is not None and reply.status == 6:  # ERROR_ALREADY_IN_STATE: restart it
            await self._command(link, stop_command(ACC), required=False)
            reply = await self._command(link, command)
        assert reply is not None
        if not reply.ok:
            raise HandshakeError(f"{self.name}: the sensor refused START ACC {command.hex(' ')}: {reply.status_name}")
        link.info["factor"] = decoder.factor

    async def _command(self, link: ControlLink, command: bytes, *, required: bool = True) -> CpResponse | None:
        """Write one CP command and wait for the reply to its op code (``None`` after
        ``link.reply_timeout_s`` unless ``required``: :class:`HandshakeError` then)."""
        link.clear_replies()  # stale replies from before
        await link.write(command)
        deadline = time.monotonic() + link.reply_timeout_s
        while True:
            try:
                reply = await link.next_reply(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                if required:
                    raise HandshakeError(
                        f"{self.name}: no control point reply to {command.hex(' ')} within {link.reply_timeout_s:.0f} s"
                    ) from None
                return None
            if isinstance(reply, CpResponse) and reply.op_code == command[0]:
                return reply

    def new_decoder(self, **settings: Any) -> PolarDecoder:
        """Settings: ``factor`` (float32 FACTOR, default 1.0), ``sample_rate`` (Hz, for the
        first frame's timestamps), ``model`` (the device's name or model: a Verity Sense reads
        raw type 0 in G), ``previous_ns`` (sensor time of the frame before the first one fed)."""
        return PolarDecoder(**settings)

    def start_commands(self, rate_hz: float, range_g: float, *, channels: int | None = None) -> list[bytes]:
        """START ACC at ``rate_hz`` (rounded), 16-bit, ``range_g`` (rounded).

        These values must be ones the sensor offers (H10: 25/50/100/200 Hz, 2/4/8 g; Verity Sense
        52 Hz, 8 g outside SDK mode). Better: send :func:`get_settings_command`, then
        ``start_command(choose_acc_settings(parse_settings(reply.parameters), rate, range))``.
        """
        settings: dict[str, int] = {
            "SAMPLE_RATE": round(rate_hz),
            "RESOLUTION": 16,
            "RANGE": round(range_g),
        }
        if channels:
            settings["CHANNELS"] = int(channels)
        return [start_command(settings)]

    def stop_commands(self) -> list[bytes]:
        return [stop_command(ACC)]


POLAR = register_profile(PolarProfile())
