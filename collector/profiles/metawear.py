"""MbientLab MetaWear boards' accelerometer module (module 0x03) over GATT: MetaMotionS (BMI270),
MetaMotionRL/C and MetaWear CPro (BMI160), MetaWear R/RG/C (MMA8452Q); the BMA255 (MetaWear RG/RPro
variants) is decoded but not started.

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
Notifications: ``03 04`` + one int16 x, y, z; packed ``03 1C`` (BMI160, BMA255) / ``03 05`` (BMI270) /
``03 12`` (MMA8452Q) + several. Bosch chips: divide by LSB/g 16384, 8192, 4096, 2048 for 2, 4, 8,
16 g (``*_FSR_SCALE``); the MMA8452Q firmware sends milli-g whatever the range
(``AccelerometerMma8452qImpl.scale()`` is 1000, MbientLab's Android SDK). There is no device
timestamp (timestamps ``None``). Before a range is configured or read, each chip is at its power-on
range: BMI160 and BMA255 2 g, BMI270 8 g (``BMI270_DEFAULT_CONFIG = a8 02``).

The board tells its chip: the module-info read ``03 80`` is answered ``03 80 <implementation>
<revision>`` on the notify characteristic (MMA8452Q 0, BMI160 1, BMA255 3, BMI270 4);
:meth:`MetaWearProfile.start` asks first and configures that chip. MMA8452Q configuration
(``test_accelerometer_mma8452q.py``): ``03 03 <fsr> 00 <odr << 3> 00 00`` (fsr 2/4/8 g = 0/1/2; ODR
800, 400, 200, 100, 50, 12.5, 6.25, 1.56 Hz = 0..7), enable ``03 02 01``, disable ``03 02 00``.

Battery (settings module, ``test_settings.py`` revision 3+): read ``11 CC``, reply ``11 8C <charge %>
<voltage mV u16>`` (e.g. ``11 8c 63 34 10`` = 99 %, 4148 mV).

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import (
    ControlEvent,
    ControlLink,
    Decoded,
    Decoder,
    Profile,
    ProfileError,
    RefusedDevice,
    StreamSettings,
    register_profile,
)

__all__ = [
    "BMA255",
    "BMI160",
    "BMI270",
    "CHIPS",
    "DEFAULT_RANGE_G",
    "LSB_PER_G",
    "METAWEAR_COMMAND",
    "METAWEAR_NOTIFY",
    "METAWEAR_SERVICE",
    "MMA8452Q",
    "ODR_HZ",
    "STREAMABLE",
    "MetaWearDecoder",
    "MetaWearProfile",
    "ModuleInfo",
    "battery_command",
    "config_command",
    "connection_parameters_command",
    "mma8452q_config_command",
    "module_info_command",
    "odr_index",
    "parse_battery_state",
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

REG_PACKED_MMA8452Q = 0x12
REG_BATTERY_STATE = 0x0C

BMI160 = "bmi160"
BMI270 = "bmi270"
BMA255 = "bma255"
MMA8452Q = "mma8452q"
#: Every accelerometer chip of a MetaWear board legwatch decodes.
CHIPS = (BMI160, BMI270, BMA255, MMA8452Q)
#: The chips whose stream :meth:`MetaWearProfile.start` configures (the BMA255's ODR bytes are not
#: verified against a vendor test, so it is refused rather than guessed).
STREAMABLE = (BMI160, BMI270, MMA8452Q)
#: Module-info implementation ids of the accelerometer module (MBL_MW_MODULE_ACC_TYPE_*).
ACC_IMPLEMENTATIONS = {0: MMA8452Q, 1: BMI160, 3: BMA255, 4: BMI270}
#: Power-on range (g) of each chip, what samples are at before a range is configured or read.
DEFAULT_RANGE_G = {BMI160: 2, BMI270: 8, BMA255: 2, MMA8452Q: 2}
#: Packed-data register of each chip.
PACKED_REGISTER = {BMI160: 0x1C, BMA255: 0x1C, BMI270: 0x05, MMA8452Q: REG_PACKED_MMA8452Q}
#: MMA8452Q firmware units: milli-g per count, whatever the range.
MMA8452Q_COUNTS_PER_G = 1000.0
#: MblMwAccMma8452qOdr, enum index -> Hz.
MMA8452Q_ODR_HZ = (800.0, 400.0, 200.0, 100.0, 50.0, 12.5, 6.25, 1.56)
MMA8452Q_RANGES_G = (2, 4, 8)

#: MblMwAccBmi160Odr / MblMwAccBmi270Odr, enum index -> Hz; the register code is index + 1.
ODR_HZ = (0.78125, 1.5625, 3.125, 6.25, 12.5, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
_ODR_12_5_INDEX = 4
RANGES_G = (2, 4, 8, 16)
#: FSR_BITMASKS (BMI160) and BMI270_FSR_BITMASKS, by range in g.
RANGE_CODES = {
    BMI160: {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C},
    BMA255: {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C},  # AccelerometerBosch.AccRange (Android SDK)
    BMI270: {2: 0x00, 4: 0x01, 8: 0x02, 16: 0x03},
}
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
    if c not in CHIPS:
        raise ProfileError(f"unknown MetaWear accelerometer {chip!r}; expected one of {', '.join(CHIPS)}")
    return c


def mma8452q_config_command(rate_hz: float, range_g: float) -> bytes:
    """``03 03 <fsr> 00 <odr << 3> 00 00`` (``mbl_mw_acc_mma8452q_set_odr/set_range`` and
    ``write_acceleration_config``): the slowest ODR at or above ``rate_hz``, the smallest range at
    or above ``range_g`` (8 g at most)."""
    odr = min(
        (i for i, hz in enumerate(MMA8452Q_ODR_HZ) if hz >= rate_hz - 1e-9),
        key=lambda i: MMA8452Q_ODR_HZ[i],
        default=0,
    )
    fsr = next((i for i, g in enumerate(MMA8452Q_RANGES_G) if g >= range_g - 1e-9), len(MMA8452Q_RANGES_G) - 1)
    return bytes([MODULE_ACC, REG_DATA_CONFIG, fsr, 0x00, odr << 3, 0x00, 0x00])


def battery_command() -> bytes:
    """``11 CC``: read the battery state (settings module revision 3 and later; the SDK's
    ``test_read_battery_state`` sends ``0xC0 | 0x0C``, and the reply comes as ``11 8C``)."""
    return bytes([MODULE_SETTINGS, 0xC0 | REG_BATTERY_STATE])


def parse_battery_state(data: bytes) -> tuple[int, int] | None:
    """``(charge %, voltage mV)`` from a ``11 8C <charge> <mV u16>`` reply; ``None`` for other packets."""
    data = bytes(data)
    if len(data) < 5 or data[0] != MODULE_SETTINGS or data[1] != READ_BIT | REG_BATTERY_STATE:
        return None
    charge = data[2]
    if charge > 100:
        raise ProfileError(f"MetaWear battery charge {charge} is above 100 %")
    return charge, int.from_bytes(data[3:5], "little")


def config_command(chip: str, rate_hz: float, range_g: float) -> bytes:
    """``03 03 <acc_conf> <acc_range>`` (``mbl_mw_acc_bmi160_set_odr`` / ``..._bmi270_set_odr``,
    ``mbl_mw_acc_bosch_set_range``, ``mbl_mw_acc_bosch_write_acceleration_config``)."""
    chip = _chip(chip)
    if chip not in (BMI160, BMI270):
        raise ProfileError(f"no Bosch data-config command for the {chip} (bmi160 and bmi270 only)")
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
    """``03 80``: read the accelerometer module info; the reply ``03 80 <impl> <rev> ...`` names the
    chip (MMA8452Q 0, BMI160 1, BMA255 3, BMI270 4)."""
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
    """Range in g from the range byte of the data config (Bosch chips)."""
    chip = _chip(chip)
    if chip not in RANGE_CODES:
        raise ProfileError(f"the {chip} has no Bosch range code")
    for g, c in RANGE_CODES[chip].items():
        if c == (code & 0x0F if chip == BMI160 else code & 0x07):
            return g
    raise ProfileError(f"unknown {chip} range code {code:#04x}")


class MetaWearDecoder(Decoder):
    """Decodes accelerometer notifications of one board.

    ``chip`` picks the scale: Bosch chips are int16 / LSB-per-g at ``range_g``; the MMA8452Q is
    milli-g whatever the range. While the chip is unknown, a packed register names it (``0x05``
    BMI270, ``0x12`` MMA8452Q, ``0x1C`` a BMI160 or BMA255) and single samples (``03 04``) are read
    as a Bosch chip's. ``range_g`` ``None`` means the chip's
    power-on range (:data:`DEFAULT_RANGE_G`: 8 g on a BMI270, 2 g on the others) until a
    data-config reply (``03 83``) says otherwise. A module-info reply (``03 80``) sets :attr:`chip`
    (and, if no range was given, that chip's power-on range); a battery reply (``11 8C``) gives
    ``extras["battery_percent"]``. Other modules' packets decode to no samples.
    """

    def __init__(self, range_g: float | str | None = None, chip: str | None = None) -> None:
        self.chip = _chip(chip) if chip else None
        self._range_given = range_g is not None
        if range_g is None:
            self.range_g = DEFAULT_RANGE_G[self.chip or BMI160]
            return
        try:
            g = float(range_g)
        except (TypeError, ValueError):
            raise ProfileError(f"bad MetaWear range_g {range_g!r}") from None
        if g not in LSB_PER_G:
            raise ProfileError(f"MetaWear range_g must be 2, 4, 8 or 16, got {range_g!r}")
        if self.chip == MMA8452Q and g > 8:
            raise ProfileError("the MMA8452Q has ranges 2, 4 and 8 g")
        self.range_g = int(g)

    def _packed_registers(self) -> tuple[int, ...]:
        if self.chip is not None:
            return (PACKED_REGISTER[self.chip],)
        return (REG_PACKED_BMI160, REG_PACKED_BMI270, REG_PACKED_MMA8452Q)

    def _scale(self, register: int) -> float:
        chip = self.chip
        if chip is None:
            chip = {REG_PACKED_BMI270: BMI270, REG_PACKED_MMA8452Q: MMA8452Q}.get(register, BMI160)
        if chip == MMA8452Q:
            return MMA8452Q_COUNTS_PER_G
        range_g = self.range_g if self._range_given else DEFAULT_RANGE_G[chip]
        return LSB_PER_G[range_g]

    def feed(self, data: bytes) -> Decoded:
        data = bytes(data)
        if len(data) < 2:
            raise ProfileError(f"MetaWear packet too short ({len(data)} bytes)")
        module, register = data[0], data[1]
        extras: dict[str, Any] = {"module": module, "register": register}
        if module == MODULE_SETTINGS:
            state = parse_battery_state(data)
            if state is not None:
                extras["battery_percent"], extras["battery_mv"] = state
            return Decoded.empty(**extras)
        if module != MODULE_ACC:
            return Decoded.empty(**extras)
        payload = data[2:]
        if register == REG_DATA_INTERRUPT:
            if len(payload) != 6:
                raise ProfileError(f"MetaWear acceleration packet has {len(payload)} data bytes, expected 6")
        elif register in self._packed_registers():
            if not payload or len(payload) % 6:
                raise ProfileError(f"MetaWear packed acceleration has {len(payload)} data bytes, not a multiple of 6")
        elif register == READ_BIT:
            chip = parse_module_info(data)
            if chip in CHIPS:
                self.chip = chip
                if not self._range_given:
                    self.range_g = DEFAULT_RANGE_G[chip]
            extras["chip"] = chip
            return Decoded.empty(**extras)
        elif register == READ_BIT | REG_DATA_CONFIG and len(payload) >= 2 and self.chip in RANGE_CODES:
            assert self.chip is not None
            self.range_g = range_g_from_code(self.chip, payload[1])
            self._range_given = True
            extras["range_g"] = self.range_g
            return Decoded.empty(**extras)
        else:
            return Decoded.empty(**extras)
        raw = np.frombuffer(payload, dtype="<i2").reshape(-1, 3).astype(np.float64)
        return Decoded(raw / self._scale(register), None, extras)


@dataclass(frozen=True)
class ModuleInfo:
    """A module-info reply (``03 80 <implementation> ...``): the accelerometer chip, ``None`` when
    the board has no accelerometer module."""

    chip: str | None


class MetaWearProfile(Profile):
    name = "metawear"
    service_uuid = METAWEAR_SERVICE
    data_uuid = METAWEAR_NOTIFY
    control_uuid = METAWEAR_COMMAND
    write_response = False
    replies_on_data = True  # module-info and battery replies come on the notify characteristic
    name_prefixes = ("MetaWear", "MetaMotion")
    advertised_uuids = (METAWEAR_SERVICE,)
    default_rate_hz = 50.0

    def __init__(self, chip: str = BMI160, packed: bool | None = None) -> None:
        self.chip = _chip(chip)
        self.packed = packed

    def stream_settings(self, rate_hz: float, range_g: float) -> StreamSettings:
        """The ODR and range :meth:`start_commands` configure for a Bosch chip (:meth:`start`
        corrects them once the board named its chip)."""
        rate = ODR_HZ[odr_index(rate_hz)]
        g = _range_g(range_g)
        return StreamSettings(rate, float(g), False, {"range_g": g})

    def new_decoder(self, **settings: Any) -> MetaWearDecoder:
        """Settings: ``range_g`` (2/4/8/16; default the chip's power-on range), ``chip``
        (bmi160/bmi270/bma255/mma8452q; default unknown until the board says, see
        :class:`MetaWearDecoder`)."""
        return MetaWearDecoder(**settings)

    def on_control(self, decoder: Decoder, data: bytes) -> ControlEvent | None:
        """A module-info reply (``03 80``) is a :class:`ModuleInfo` reply; nothing else is."""
        data = bytes(data)
        if len(data) >= 2 and data[0] == MODULE_ACC and data[1] == READ_BIT:
            return ControlEvent(reply=ModuleInfo(parse_module_info(data)))
        return None

    def battery_commands(self) -> list[bytes]:
        """``11 CC``: the board answers with its charge on the notify characteristic."""
        return [battery_command()]

    async def start(self, link: ControlLink) -> None:
        """Ask the board for its accelerometer (module info, ``03 80``), then configure and start
        that chip. A board that does not answer is taken to have the profile's chip (with a
        warning); a BMA255 or a board without an accelerometer is refused."""
        if not link.has_control:
            return
        chip = self.chip
        link.clear_replies()
        await link.write(module_info_command())
        try:
            deadline = time.monotonic() + link.reply_timeout_s
            while True:
                reply = await link.next_reply(max(0.0, deadline - time.monotonic()))
                if isinstance(reply, ModuleInfo):
                    break
            if reply.chip is None:
                raise RefusedDevice(f"{self.name}: this board has no accelerometer module")
            chip = reply.chip
        except TimeoutError:
            link.log.warning("%s: no module-info reply; assuming a %s", self.name, chip)
        if chip not in STREAMABLE:
            raise RefusedDevice(
                f"{self.name}: the board's accelerometer is a {chip}; legwatch streams {', '.join(STREAMABLE)}"
            )
        link.info["chip"] = chip
        decoder = link.decoder
        if isinstance(decoder, MetaWearDecoder):
            decoder.chip = chip
        rate, range_g = self.streamed(chip, link.rate_hz, link.range_g)
        link.set_stream(rate=rate, range_g=range_g)
        if isinstance(decoder, MetaWearDecoder):
            decoder.range_g = int(range_g)
            decoder._range_given = True
        for command in self.start_commands(link.rate_hz, link.range_g, chip=chip):
            await link.write(command)
        await link.write(battery_command())

    @staticmethod
    def streamed(chip: str, rate_hz: float, range_g: float) -> tuple[float, float]:
        """The rate (Hz) and range (g) the start commands configure on ``chip``."""
        if chip == MMA8452Q:
            odr = min((hz for hz in MMA8452Q_ODR_HZ if hz >= rate_hz - 1e-9), default=MMA8452Q_ODR_HZ[0])
            g = next((g for g in MMA8452Q_RANGES_G if g >= range_g - 1e-9), MMA8452Q_RANGES_G[-1])
            return odr, float(g)
        return ODR_HZ[odr_index(rate_hz)], float(_range_g(range_g))

    def _packed(self, rate_hz: float, packed: bool | None) -> bool:
        if packed is not None:
            return packed
        return self.packed if self.packed is not None else rate_hz >= 100

    def _data_register(self, chip: str, packed: bool) -> int:
        if not packed:
            return REG_DATA_INTERRUPT
        return PACKED_REGISTER[chip]

    def start_commands(
        self, rate_hz: float, range_g: float, *, chip: str | None = None, packed: bool | None = None
    ) -> list[bytes]:
        """Connection parameters (7.5 ms), configure, subscribe, enable, start. ``chip`` defaults to
        the profile's (:meth:`start` reads it from the board: MetaMotionS has a BMI270,
        MetaMotionRL/C a BMI160, MetaWear R/RG/C an MMA8452Q). Packed notifications are used from
        100 Hz up unless told."""
        chip = _chip(chip or self.chip)
        use_packed = self._packed(rate_hz, packed)
        if chip == MMA8452Q:
            return [
                connection_parameters_command(7.5, 7.5, 0, 6000),
                mma8452q_config_command(rate_hz, range_g),
                bytes([MODULE_ACC, self._data_register(chip, use_packed), 0x01]),
                bytes([MODULE_ACC, REG_DATA_INTERRUPT_ENABLE, 0x01]),
                bytes([MODULE_ACC, REG_POWER_MODE, 0x01]),
            ]
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
        disable = [0x00] if chip == MMA8452Q else [0x00, 0x01]
        commands = [
            bytes([MODULE_ACC, REG_POWER_MODE, 0x00]),
            bytes([MODULE_ACC, REG_DATA_INTERRUPT_ENABLE, *disable]),
        ]
        if packed is None or not packed:
            commands.append(bytes([MODULE_ACC, REG_DATA_INTERRUPT, 0x00]))
        if packed is None or packed:
            commands.append(bytes([MODULE_ACC, self._data_register(chip, True), 0x00]))
        return commands


METAWEAR = register_profile(MetaWearProfile())
