"""MbientLab MetaWear (MetaMotionS/RL/C) accelerometer module (module 0x03) over GATT.

Sources: mbientlab/MetaWear-SDK-Cpp ``src/metawear/sensor/cpp/accelerometer_bosch.cpp``
(config bit fields, ``FSR_BITMASKS``, ``*_FSR_SCALE``, ``mbl_mw_acc_bosch_start/stop``,
``enable/disable_acceleration_sampling``), ``accelerometer_bosch_register.h`` (register numbers,
BMI160 packed data 0x1C) and the SDK's own tests ``test/test_accelerometer_bmi160.py`` and
``test/test_accelerometer_bmi270.py`` (command bytes, BMI270 packed data register 0x05, sample
notifications); the protocol reference at https://docs.mbientlab.com/protocol-reference/.

Every packet is ``[module][register][payload]``. Streaming, as the SDK's ``stream_acc`` example:

1. (optional) connection parameters ``11 09 <min> <max> <latency> <timeout>`` (u16 each; 1.25 ms,
   1.25 ms, events, 10 ms units);
2. configure ``03 03 <acc_conf> <acc_range>``; acc_conf = odr_code | bwp << 4 | us << 7 with
   odr_code = index + 1 over 0.78125 ... 1600 Hz;
3. subscribe ``03 04 01`` (one sample per notification) or the packed register ``03 1C 01``
   (BMI160) / ``03 05 01`` (BMI270), three samples per notification;
4. enable sampling ``03 02 01 00``; 5. start ``03 01 01`` (``03 01 02`` on a BMI270 below 12.5 Hz).

Stop: ``03 01 00``, ``03 02 00 01``, then unsubscribe ``03 04 00`` (or the packed register).
Notifications: ``03 04`` + one int16 x, y, z; ``03 1C``/``03 05`` + several; divide by LSB/g
16384, 8192, 4096, 2048 for 2, 4, 8, 16 g. There is no device timestamp (timestamps ``None``).

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Decoded, Decoder, Profile, ProfileError, StreamSettings, register_profile

__all__ = [
    "BMI160",
    "BMI270",
    "LSB_PER_G",
    "METAWEAR_COMMAND",
    "METAWEAR_NOTIFY",
    "METAWEAR_SERVICE",
    "ODR_HZ",
    "MetaWearDecoder",
    "MetaWearProfile",
    "config_command",
    "connection_parameters_command",
    "module_info_command",
    "odr_index",
    "parse_module_info",
    "range_g_from_code",
    "read_config_command",
]

METAWEAR_SERVICE = "326a9000-85cb-9195-d9dd-464cfbbae75a"
METAWEAR_COMMAND = "326a9001-85cb-9195-d9dd-464cfbbae75a"
METAWEAR_NOTIFY = "326a9006-85cb-9195-d9dd-464cfbbae75a"

MODULE_ACC = 0x03
MODULE_SETTINGS = 0x11
REG_POWER_MODE = 0x01
REG_DATA_INTERRUPT_ENABLE = 0x02
REG_DATA_CONFIG = 0x03
REG_DATA_INTERRUPT = 0x04
REG_PACKED_BMI160 = 0x1C
REG_PACKED_BMI270 = 0x05
READ_BIT = 0x80  # READ_REGISTER(x) = 0x80 | x; register 0 read = module info

BMI160 = "bmi160"
BMI270 = "bmi270"
#: Module-info implementation ids of the accelerometer module (MBL_MW_MODULE_ACC_TYPE_*).
ACC_IMPLEMENTATIONS = {0: "mma8452q", 1: BMI160, 3: "bma255", 4: BMI270}

#: MblMwAccBmi160Odr / MblMwAccBmi270Odr, enum index -> Hz; the register code is index + 1.
ODR_HZ = (0.78125, 1.5625, 3.125, 6.25, 12.5, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
_ODR_12_5_INDEX = 4
RANGES_G = (2, 4, 8, 16)
#: FSR_BITMASKS (BMI160) and BMI270_FSR_BITMASKS, by range in g.
RANGE_CODES = {BMI160: {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C}, BMI270: {2: 0x00, 4: 0x01, 8: 0x02, 16: 0x03}}
#: *_FSR_SCALE: LSB per g by range in g.
LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}


def odr_index(rate_hz: float) -> int:
    """Index of the slowest ODR at or above ``rate_hz`` (1600 Hz if none is)."""
    for i, hz in enumerate(ODR_HZ):
        if hz >= rate_hz - 1e-9:
            return i
    return len(ODR_HZ) - 1


def _range_g(range_g: float) -> int:
    for g in RANGES_G:
        if g >= range_g - 1e-9:
            return g
    return RANGES_G[-1]


def _chip(chip: str) -> str:
    c = str(chip).strip().lower()
    if c not in RANGE_CODES:
        raise ProfileError(f"unknown MetaWear accelerometer {chip!r}; expected bmi160 or bmi270")
    return c


def config_command(chip: str, rate_hz: float, range_g: float) -> bytes:
    """``03 03 <acc_conf> <acc_range>`` (``mbl_mw_acc_bmi160_set_odr`` / ``..._bmi270_set_odr``,
    ``mbl_mw_acc_bosch_set_range``, ``mbl_mw_acc_bosch_write_acceleration_config``)."""
    chip = _chip(chip)
    idx = odr_index(rate_hz)
    slow = idx < _ODR_12_5_INDEX
    if chip == BMI160:  # below 12.5 Hz: undersampling on, bwp 0; else us 0, bwp 2 (normal)
        conf = (idx + 1) | ((0 if slow else 2) << 4) | ((1 if slow else 0) << 7)
    else:  # BMI270: bwp 2; acc_filter_perf (bit 7) on from 12.5 Hz up
        conf = (idx + 1) | (2 << 4) | ((0 if slow else 1) << 7)
    return bytes([MODULE_ACC, REG_DATA_CONFIG, conf, RANGE_CODES[chip][_range_g(range_g)]])


def connection_parameters_command(
    min_interval_ms: float = 7.5, max_interval_ms: float = 7.5, latency: int = 0, timeout_ms: float = 6000
) -> bytes:
    """``11 09 <min> <max> <latency> <timeout>`` (settings module), e.g. 7.5/7.5/0/6000 ms ->
    ``11 09 06 00 06 00 00 00 58 02``."""
    fields = (round(min_interval_ms / 1.25), round(max_interval_ms / 1.25), int(latency), round(timeout_ms / 10))
    if not all(0 <= f <= 0xFFFF for f in fields):
        raise ProfileError(f"MetaWear connection parameters out of range: {fields}")
    return bytes([MODULE_SETTINGS, 0x09]) + b"".join(f.to_bytes(2, "little") for f in fields)


def module_info_command() -> bytes:
    """``03 80``: read the accelerometer module info; the reply ``03 80 <impl> <rev> ...`` tells
    BMI160 (1) from BMI270 (4)."""
    return bytes([MODULE_ACC, READ_BIT])


def read_config_command() -> bytes:
    """``03 83``: read the data config; the reply ``03 83 <acc_conf> <acc_range>``."""
    return bytes([MODULE_ACC, READ_BIT | REG_DATA_CONFIG])


def parse_module_info(data: bytes) -> str | None:
    """Accelerometer chip from a module-info reply; ``None`` if the board has no such module."""
    data = bytes(data)
    if len(data) < 2 or data[0] != MODULE_ACC or data[1] != READ_BIT:
        raise ProfileError(f"not a MetaWear accelerometer module-info reply: {data[:8].hex(' ')}")
    if len(data) < 3:
        return None
    return ACC_IMPLEMENTATIONS.get(data[2], f"implementation_{data[2]}")


def range_g_from_code(chip: str, code: int) -> int:
    """Range in g from the range byte of the data config."""
    chip = _chip(chip)
    for g, c in RANGE_CODES[chip].items():
        if c == (code & 0x0F if chip == BMI160 else code & 0x07):
            return g
    raise ProfileError(f"unknown {chip} range code {code:#04x}")


class MetaWearDecoder(Decoder):
    """Decodes accelerometer notifications at the configured range (``range_g``, default 2 g, the
    BMI160's power-on range; pass what :meth:`MetaWearProfile.start_commands` configured).

    Other modules' packets decode to no samples. A module-info reply (``03 80``) sets
    :attr:`chip`; a data-config reply (``03 83``) then updates the range from the device itself.
    """

    def __init__(self, range_g: float | str = 2.0, chip: str | None = None) -> None:
        try:
            g = float(range_g)
        except (TypeError, ValueError):
            raise ProfileError(f"bad MetaWear range_g {range_g!r}") from None
        if g not in LSB_PER_G:
            raise ProfileError(f"MetaWear range_g must be 2, 4, 8 or 16, got {range_g!r}")
        self.range_g = int(g)
        self.chip = _chip(chip) if chip else None

    def feed(self, data: bytes) -> Decoded:
        data = bytes(data)
        if len(data) < 2:
            raise ProfileError(f"MetaWear packet too short ({len(data)} bytes)")
        module, register = data[0], data[1]
        extras: dict[str, Any] = {"module": module, "register": register}
        if module != MODULE_ACC:
            return Decoded.empty(**extras)
        payload = data[2:]
        if register == REG_DATA_INTERRUPT:
            if len(payload) != 6:
                raise ProfileError(f"MetaWear acceleration packet has {len(payload)} data bytes, expected 6")
        elif register in (REG_PACKED_BMI160, REG_PACKED_BMI270):
            if not payload or len(payload) % 6:
                raise ProfileError(f"MetaWear packed acceleration has {len(payload)} data bytes, not a multiple of 6")
        elif register == READ_BIT:
            chip = parse_module_info(data)
            if chip in RANGE_CODES:
                self.chip = chip
            extras["chip"] = chip
            return Decoded.empty(**extras)
        elif register == READ_BIT | REG_DATA_CONFIG and len(payload) >= 2 and self.chip:
            self.range_g = range_g_from_code(self.chip, payload[1])
            extras["range_g"] = self.range_g
            return Decoded.empty(**extras)
        else:
            return Decoded.empty(**extras)
        raw = np.frombuffer(payload, dtype="<i2").reshape(-1, 3).astype(np.float64)
        return Decoded(raw / LSB_PER_G[self.range_g], None, extras)


class MetaWearProfile(Profile):
    name = "metawear"
    service_uuid = METAWEAR_SERVICE
    data_uuid = METAWEAR_NOTIFY
    control_uuid = METAWEAR_COMMAND
    write_response = False
    name_prefixes = ("MetaWear", "MetaMotion")
    advertised_uuids = (METAWEAR_SERVICE,)
    default_rate_hz = 50.0

    def __init__(self, chip: str = BMI160, packed: bool | None = None) -> None:
        self.chip = _chip(chip)
        self.packed = packed

    def stream_settings(self, rate_hz: float, range_g: float) -> StreamSettings:
        """The ODR and range :meth:`start_commands` configure; the decoder scales at that range."""
        rate = ODR_HZ[odr_index(rate_hz)]
        g = _range_g(range_g)
        return StreamSettings(rate, float(g), False, {"range_g": g})

    def new_decoder(self, **settings: Any) -> MetaWearDecoder:
        """Settings: ``range_g`` (2/4/8/16, default 2), ``chip`` (bmi160/bmi270)."""
        settings.setdefault("chip", self.chip)
        return MetaWearDecoder(**settings)

    def _packed(self, rate_hz: float, packed: bool | None) -> bool:
        if packed is not None:
            return packed
        return self.packed if self.packed is not None else rate_hz >= 100

    def _data_register(self, chip: str, packed: bool) -> int:
        if not packed:
            return REG_DATA_INTERRUPT
        return REG_PACKED_BMI160 if chip == BMI160 else REG_PACKED_BMI270

    def start_commands(
        self, rate_hz: float, range_g: float, *, chip: str | None = None, packed: bool | None = None
    ) -> list[bytes]:
        """Connection parameters (7.5 ms), configure, subscribe, enable, start. ``chip`` defaults to
        the profile's (read it first with :func:`module_info_command`: MetaMotionS has a BMI270,
        MetaMotionRL/C a BMI160). Packed notifications are used from 100 Hz up unless told."""
        chip = _chip(chip or self.chip)
        use_packed = self._packed(rate_hz, packed)
        power = 0x02 if chip == BMI270 and odr_index(rate_hz) < _ODR_12_5_INDEX else 0x01
        return [
            connection_parameters_command(7.5, 7.5, 0, 6000),
            config_command(chip, rate_hz, range_g),
            bytes([MODULE_ACC, self._data_register(chip, use_packed), 0x01]),
            bytes([MODULE_ACC, REG_DATA_INTERRUPT_ENABLE, 0x01, 0x00]),
            bytes([MODULE_ACC, REG_POWER_MODE, power]),
        ]

    def stop_commands(self, *, chip: str | None = None, packed: bool | None = None) -> list[bytes]:
        """Stop, disable sampling, unsubscribe (both the plain and, when not told otherwise, the
        packed register, since the rate that chose between them is not known here)."""
        chip = _chip(chip or self.chip)
        commands = [
            bytes([MODULE_ACC, REG_POWER_MODE, 0x00]),
            bytes([MODULE_ACC, REG_DATA_INTERRUPT_ENABLE, 0x00, 0x01]),
        ]
        if packed is None or not packed:
            commands.append(bytes([MODULE_ACC, REG_DATA_INTERRUPT, 0x00]))
        if packed is None or packed:
            commands.append(bytes([MODULE_ACC, self._data_register(chip, True), 0x00]))
        return commands


METAWEAR = register_profile(MetaWearProfile())
