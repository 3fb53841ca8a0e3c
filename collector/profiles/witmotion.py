"""WitMotion BLE 5.0 IMUs (WT901BLECL, BWT901BLE5.0): ``55 61`` packets on a UART-like service.

Sources: WITMOTION/WitBluetooth_BWT901BLE5_0 - ``Python/BWT901BLE5.0_python_sdk/device_model.py``
(UUIDs, ``onDataReceived``/``processData``, ``get_readBytes``/``get_writeBytes``, unlock/save) and
``Android_Java/wit-example-ble5/app/src/main/java/com/wit/example/ble5/components/``
``Bwt901bleResolver.java`` (stream buffering, ``55 71`` register replies) and
``Bwt901bleProcessor.java`` (scaling, battery register 0x64 in 1/100 V, temperature 0x40).

The sensor streams by itself once notifications are on:

* ``55 61`` + nine little-endian int16: ax, ay, az, wx, wy, wz, roll, pitch, yaw (20 bytes, no
  checksum, no timestamp). g = v / 32768 x 16; deg/s = v / 32768 x 2000; deg = v / 32768 x 180.
* ``55 71 <reg lo> <reg hi>`` + eight int16: the reply to a register read ``FF AA 27 <reg> 00``,
  registers reg .. reg+7.

Packets may be split across notifications, or several may share one: the decoder buffers and
resynchronises on the ``55 61``/``55 71`` header, dropping anything else.

Not an accelerometer: WitMotion's WTVB01-BT50 vibration sensor uses the same ffe5/ffe4/ffe9 UUIDs,
a name that starts with "WT" and the same ``55 61`` header, but 28-byte packets of velocity (mm/s),
angle, temperature, displacement (µm) and frequency (its manual §5.2; WitMotion's
``Wtvb01Resolver.cs``). Read as a WT901 packet it would give small, wrong "accelerations". A scan
does not offer a device named ``WTVB...``, and the decoder refuses a stream of 28-byte ``55 61``
packets with :class:`~collector.profiles.base.NotAnAccelerometer`.

Commands (to ``ffe9``): ``FF AA <reg> <lo> <hi>``; unlock ``FF AA 69 88 B5`` (10 s), save
``FF AA 00 00 00``, output rate ``FF AA 03 <code> 00``, read ``FF AA 27 <reg> 00``. WitMotion's
``writeReg`` waits 100 ms between unlock, write and save (:attr:`command_interval_s`).

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .base import (
    ControlLink,
    Decoded,
    Decoder,
    NotAnAccelerometer,
    Profile,
    ProfileError,
    StreamSettings,
    char_properties,
    char_uuid,
    normalize_uuid,
    register_profile,
    uuid16,
)

__all__ = [
    "ACC_SCALE_G",
    "ANGLE_SCALE_DEG",
    "GYRO_SCALE_DPS",
    "OUTPUT_RATES_HZ",
    "REG_BATTERY",
    "REG_RATE",
    "REG_TEMPERATURE",
    "WIT_NOTIFY",
    "WIT_SERVICE",
    "WIT_WRITE",
    "WitMotionDecoder",
    "WitMotionProfile",
    "battery_percent",
    "rate_code",
    "read_register_command",
    "save_command",
    "set_rate_command",
    "unlock_command",
    "write_register_command",
]

# device_model.py / BleUUID.java: note the ...805f9a34fb base, not the SIG ...805f9b34fb.
WIT_SERVICE = "0000ffe5-0000-1000-8000-00805f9a34fb"
WIT_NOTIFY = "0000ffe4-0000-1000-8000-00805f9a34fb"
WIT_WRITE = "0000ffe9-0000-1000-8000-00805f9a34fb"

VIBRATION_PACKET_LEN = 28  # WTVB01-BT50: 55 61 + 13 int16
#: Advertised-name prefixes of WitMotion devices that are not accelerometers (WTVB01 vibration sensors).
NOT_ACCELEROMETER_PREFIXES = ("WTVB",)
ACC_SCALE_G = 16.0 / 32768.0
GYRO_SCALE_DPS = 2000.0 / 32768.0
ANGLE_SCALE_DEG = 180.0 / 32768.0

HEADER = 0x55
DATA_FLAG = 0x61
REGISTER_FLAG = 0x71
PACKET_LEN = 20

REG_SAVE = 0x00
REG_RATE = 0x03
REG_READ = 0x27
REG_TEMPERATURE = 0x40
REG_BATTERY = 0x64
REG_UNLOCK = 0x69

#: Output-rate register codes (RRATE, 0x03), from the WIT standard protocol register map. The BLE
#: models are documented up to 50 Hz; faster codes exist but are unconfirmed over BLE.
OUTPUT_RATES_HZ: dict[int, float] = {
    0x01: 0.2,
    0x02: 0.5,
    0x03: 1.0,
    0x04: 2.0,
    0x05: 5.0,
    0x06: 10.0,
    0x07: 20.0,
    0x08: 50.0,
    0x09: 100.0,
    0x0A: 125.0,
    0x0B: 200.0,
}
#: Special rate codes: one packet on request / no output.
RATE_SINGLE = 0x0C
RATE_OFF = 0x0D


def write_register_command(register: int, value: int) -> bytes:
    """``FF AA <reg> <value lo> <value hi>`` (``get_writeBytes``)."""
    if not 0 <= register <= 0xFF or not -0x8000 <= value <= 0xFFFF:
        raise ProfileError(f"WitMotion register write out of range: reg={register:#x} value={value}")
    v = value & 0xFFFF
    return bytes([0xFF, 0xAA, register, v & 0xFF, v >> 8])


def read_register_command(register: int) -> bytes:
    """``FF AA 27 <reg> 00`` (``get_readBytes``); the reply is a ``55 71`` packet."""
    if not 0 <= register <= 0xFF:
        raise ProfileError(f"WitMotion register out of range: {register:#x}")
    return bytes([0xFF, 0xAA, REG_READ, register, 0x00])


def unlock_command() -> bytes:
    """``FF AA 69 88 B5``: allows register writes for 10 s."""
    return write_register_command(REG_UNLOCK, 0xB588)


def save_command() -> bytes:
    """``FF AA 00 00 00``: save the configuration to flash."""
    return write_register_command(REG_SAVE, 0x0000)


def rate_code(rate_hz: float) -> int:
    """Code of the slowest output rate at or above ``rate_hz`` (the fastest code if none is)."""
    for code, hz in sorted(OUTPUT_RATES_HZ.items(), key=lambda kv: kv[1]):
        if hz >= rate_hz - 1e-9:
            return code
    return max(OUTPUT_RATES_HZ, key=OUTPUT_RATES_HZ.__getitem__)


def set_rate_command(rate_hz: float) -> bytes:
    """``FF AA 03 <code> 00`` for the rate :func:`rate_code` picks."""
    return write_register_command(REG_RATE, rate_code(rate_hz))


def battery_percent(volts: float) -> float:
    """Battery charge estimate from cell voltage, WitMotion's table (``Bwt901bleProcessor.getEqPercent``)."""
    if volts > 5.5:
        xs = [6.5, 6.8, 7.35, 7.75, 8.5, 8.8]
        ys = [0, 10, 30, 60, 90, 100]
    else:
        xs = [3.4, 3.5, 3.68, 3.7, 3.73, 3.77, 3.79, 3.82, 3.87, 3.93, 3.96, 3.99]
        ys = [0, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90, 100]
    return float(np.interp(volts, xs, ys))


#: Consecutive ``55 61`` packets 28 bytes apart after which a stream is refused as a WTVB01's.
VIBRATION_VOTES = 4
#: Data packets held back at most before a stream shows its layout (then they are released).
MAX_HELD = 8
VIBRATION_MESSAGE = (
    "28-byte 55 61 packets are a WitMotion WTVB01 vibration sensor (velocity, displacement, frequency), "
    "not an accelerometer"
)


def check_not_vibration(data: bytes) -> None:
    """Refuse one notification holding a WTVB01 packet (``legwatch decode``: no stream to count on)."""
    if _vibration_packets(bytes(data)):
        raise NotAnAccelerometer(VIBRATION_MESSAGE)


def _is_header(data: bytes | bytearray, i: int) -> bool:
    return len(data) >= i + 2 and data[i] == HEADER and data[i + 1] in (DATA_FLAG, REGISTER_FLAG)


def _vibration_packets(data: bytes) -> bool:
    """Whether a notification holds WTVB01 packets: ``55 61`` whose 20-byte cut is not followed by
    another header but whose 28-byte one is (or ends the notification exactly)."""
    if len(data) < VIBRATION_PACKET_LEN or data[0] != HEADER or data[1] != DATA_FLAG:
        return False
    if _is_header(data, PACKET_LEN):
        return False
    return len(data) == VIBRATION_PACKET_LEN or _is_header(data, VIBRATION_PACKET_LEN)


class WitMotionDecoder(Decoder):
    """Buffers the byte stream across notifications and cuts it into 20-byte packets.

    ``feed`` returns the acceleration of every complete ``55 61`` packet (timestamps ``None``);
    ``extras`` carries ``gyro_dps`` and ``angle_deg`` for those packets, and ``registers``
    (``{"0x64": 412, ...}``) plus ``battery_v``/``battery_percent``/``output_rate_hz`` when a
    register reply arrives. ``dropped_bytes`` counts garbage skipped while resynchronising.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped_bytes = 0
        self.registers: dict[int, int] = {}
        self._vibration_votes = 0
        #: bytes skipped since the end of the last data packet (None: the last packet was a register reply)
        self._since_data: int | None = None
        #: data packets held back until one is seen followed by a header 20 bytes on (a WT901's
        #: layout), so a WTVB01's packets never come out as samples
        self._held: list[bytes] | None = []
        self._confirmed = False

    def feed(self, data: bytes) -> Decoded:
        buf = self._buf
        buf += bytes(data)
        data_packets: list[bytes] = []
        register_packets: list[bytes] = []
        i = 0
        n = len(buf)
        while n - i >= 2:
            if buf[i] == HEADER and buf[i + 1] in (DATA_FLAG, REGISTER_FLAG):
                if n - i < PACKET_LEN:
                    break
                packet = bytes(buf[i : i + PACKET_LEN])
                self._vote(packet[1] == DATA_FLAG)
                if self._held is not None and self._confirmed:
                    data_packets += self._held
                    self._held = None
                if packet[1] == DATA_FLAG and self._held is not None:
                    self._held.append(packet)  # until the next header shows the packets are 20 bytes apart
                    if len(self._held) > MAX_HELD:
                        data_packets += self._held
                        self._held = None
                else:
                    (data_packets if packet[1] == DATA_FLAG else register_packets).append(packet)
                self._since_data = 0 if packet[1] == DATA_FLAG else None
                i += PACKET_LEN
                continue
            nxt = buf.find(HEADER, i + 1)
            if nxt < 0:
                nxt = n
            self._skipped(nxt - i)
            i = nxt
        if n - i == 1 and buf[i] != HEADER:
            self._skipped(1)
            i += 1
        del buf[:i]

        return self._decode(data_packets, register_packets)

    def _decode(self, data_packets: list[bytes], register_packets: list[bytes]) -> Decoded:
        extras: dict[str, Any] = {}
        if data_packets:
            words = np.frombuffer(b"".join(data_packets), dtype="<i2").reshape(-1, PACKET_LEN // 2)
            values = words[:, 1:].astype(np.float64)
            samples = values[:, 0:3] * ACC_SCALE_G
            extras["gyro_dps"] = values[:, 3:6] * GYRO_SCALE_DPS
            extras["angle_deg"] = values[:, 6:9] * ANGLE_SCALE_DEG
        else:
            samples = np.zeros((0, 3), dtype=np.float64)
        if register_packets:
            extras.update(self._registers(register_packets))
        return Decoded(samples, None, extras)

    def _skipped(self, count: int) -> None:
        self.dropped_bytes += count
        if self._since_data is not None:
            self._since_data += count

    def _vote(self, is_data: bool) -> None:
        """At a packet header: was the previous data packet 20 bytes back (a WT901's) or 28 (a
        WTVB01's: its last 8 bytes were skipped)? :data:`VIBRATION_VOTES` of the latter in a row
        refuse the stream."""
        if self._since_data == 0:
            self._vibration_votes = 0
            self._confirmed = True
        elif is_data and self._since_data == VIBRATION_PACKET_LEN - PACKET_LEN:
            self._vibration_votes += 1
            if self._vibration_votes >= VIBRATION_VOTES:
                raise NotAnAccelerometer(VIBRATION_MESSAGE)

    def _registers(self, packets: list[bytes]) -> dict[str, Any]:
        found: dict[int, int] = {}
        for packet in packets:
            first = int.from_bytes(packet[2:4], "little")
            values = np.frombuffer(packet, dtype="<i2", offset=4)
            for k, v in enumerate(values.tolist()):
                found[(first + k) & 0xFFFF] = int(v)
        self.registers.update(found)
        out: dict[str, Any] = {"registers": {f"{reg:#04x}": val for reg, val in sorted(found.items())}}
        if REG_BATTERY in found:
            volts = found[REG_BATTERY] / 100.0
            out["battery_v"] = volts
            out["battery_percent"] = battery_percent(volts)
        if REG_TEMPERATURE in found:
            out["temperature_c"] = found[REG_TEMPERATURE] / 100.0
        if REG_RATE in found:
            out["output_rate_hz"] = OUTPUT_RATES_HZ.get(found[REG_RATE] & 0xFF)
        return out

    def flush(self) -> Decoded:
        """The data packets still held back (a stream that ended before it showed its layout)."""
        held, self._held = self._held or [], None
        return self._decode(held, [])

    @property
    def pending_bytes(self) -> int:
        """Bytes buffered waiting for the rest of a packet."""
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()
        self.registers.clear()
        self._vibration_votes = 0
        self._since_data = None
        self._held = []
        self._confirmed = False


class WitMotionProfile(Profile):
    name = "witmotion"
    service_uuid = WIT_SERVICE
    data_uuid = WIT_NOTIFY
    control_uuid = WIT_WRITE
    write_response = None
    command_interval_s = 0.1
    name_prefixes = ("WT", "BWT")
    advertised_uuids = ()
    default_rate_hz = 50.0

    def stream_settings(self, rate_hz: float, range_g: float) -> StreamSettings:
        """The output rate :func:`rate_code` picks, at the fixed +-16 g (``range_g`` is ignored)."""
        return StreamSettings(OUTPUT_RATES_HZ[rate_code(rate_hz)], 16.0, False)

    def matches(self, device_name: str | None, service_uuids: Iterable[str]) -> bool:
        """By name (``WT901BLE...``) or by a ``ffe5``/``ffe4``/``ffe9`` 16-bit UUID on either base;
        never a WTVB vibration sensor (same UUIDs, not an accelerometer)."""
        if device_name and device_name.strip().upper().startswith(NOT_ACCELEROMETER_PREFIXES):
            return False
        if any(uuid16(u) in ("ffe5", "ffe4", "ffe9") for u in service_uuids):
            return True
        return super().matches(device_name, ())

    def resolve_characteristics(self, characteristics: Iterable[Any]) -> tuple[str, str | None]:
        """``ffe4`` (notify) and ``ffe9`` (write), matched on their 16-bit part only."""
        data = control = None
        for char in characteristics:
            short = uuid16(char_uuid(char))
            props = char_properties(char)
            can_notify = not props or bool(props & {"notify", "indicate"})
            if short == "ffe4" and data is None and can_notify:
                data = normalize_uuid(char_uuid(char))
            elif short == "ffe9" and control is None:
                control = normalize_uuid(char_uuid(char))
        if data is None:
            raise ProfileError("witmotion: notify characteristic ffe4 not found")
        return data, control

    def new_decoder(self, **settings: Any) -> WitMotionDecoder:
        if settings:
            raise ProfileError(f"witmotion takes no decoder settings, got {', '.join(sorted(settings))}")
        return WitMotionDecoder()

    def start_commands(self, rate_hz: float, range_g: float) -> list[bytes]:
        """Unlock, set the output rate (without saving to flash, so reconnects do not wear it),
        then read back the rate and battery registers. The stream itself needs no start command.
        ``range_g`` is ignored: the BLE 5.0 models scale acceleration to +-16 g."""
        return [
            unlock_command(),
            set_rate_command(rate_hz),
            read_register_command(REG_RATE),
            read_register_command(REG_BATTERY),
        ]

    async def start(self, link: ControlLink) -> None:
        """Refuse a device named like a WTVB vibration sensor, then write :meth:`start_commands`."""
        name = str(link.info.get("name") or "")
        if name.strip().upper().startswith(NOT_ACCELEROMETER_PREFIXES):
            raise NotAnAccelerometer(f"{name} is a WitMotion vibration sensor (WTVB), not an accelerometer")
        await super().start(link)

    def battery_commands(self) -> list[bytes]:
        """Read the battery-voltage register 0x64 (the reply's ``battery_percent``)."""
        return [read_register_command(REG_BATTERY)]

    def configure_commands(self, rate_hz: float) -> list[bytes]:
        """Persist the output rate: unlock, set, save (WitMotion's ``writeReg`` sequence). The
        datasheet asks for a power cycle afterwards. Use once, not on every connection."""
        return [unlock_command(), set_rate_command(rate_hz), save_command()]

    def stop_commands(self) -> list[bytes]:
        """Nothing: the sensor streams while connected; disconnecting stops it."""
        return []


WITMOTION = register_profile(WitMotionProfile())
