"""One Bluetooth LE connection to a sensor: characteristics, handshake, notifications, stop.

:class:`SensorSession` works on a connected bleak client (``BleakClient`` or anything with its
``services``/``start_notify``/``write_gatt_char``/``read_gatt_char``/``stop_notify`` API):

1. picks the data and control characteristics with the profile's ``resolve_characteristics``;
2. reads Battery Level (0x2A19) and Device Information (0x180A) where the sensor has them;
3. enables notifications/indications on the control characteristic first where the profile's
   replies arrive there (Polar PMD control point), then on the data characteristic;
4. runs the start sequence: for Polar ``GET ACC settings``, then ``START ACC`` with the nearest
   offered settings, waiting for each control-point indication (the START reply carries the
   FACTOR that compressed frames need; ``ALREADY_IN_STATE`` gets a STOP and a second START); for
   the others the profile's start commands, written with or without response as the profile says,
   ``command_interval_s`` apart.

The notification callback does no work: it stamps the host time and hands ``(host_time_ns,
bytes)`` to ``on_frame`` (which enqueues); decoding happens in the collector's consumer. A Polar
``ONLINE_MEASUREMENT_STOPPED`` message sets :attr:`SensorSession.stopped_by_sensor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .clock import DeviceMillis
from .profiles import Decoded, Profile, ProfileError, metawear, polar, sig, witmotion
from .profiles.base import char_properties, char_uuid, normalize_uuid

log = logging.getLogger("legwatch.collector.gatt")

__all__ = ["HandshakeError", "SensorSession", "StreamSettings", "stream_settings"]


class HandshakeError(RuntimeError):
    """The sensor did not start streaming as asked (one-line message)."""


@dataclass
class StreamSettings:
    """What a profile will actually stream for a requested rate and range."""

    rate: float
    range_g: float
    timed: bool  # frames carry the sensor's clock
    decoder: dict[str, Any] = field(default_factory=dict)


def stream_settings(profile: Profile, rate_hz: float, range_g: float) -> StreamSettings:
    """Nominal rate, range and decoder settings of ``profile`` for the requested ones."""
    if profile.name == "polar":
        return StreamSettings(float(rate_hz), float(range_g), True, {"sample_rate": float(rate_hz)})
    if profile.name == "witmotion":
        rate = witmotion.OUTPUT_RATES_HZ[witmotion.rate_code(rate_hz)]
        return StreamSettings(rate, 16.0, False)
    if profile.name == "metawear":
        rate = metawear.ODR_HZ[metawear.odr_index(rate_hz)]
        g = next((g for g in metawear.RANGES_G if g >= range_g - 1e-9), metawear.RANGES_G[-1])
        return StreamSettings(rate, float(g), False, {"range_g": g})
    if profile.name == "nus":
        return StreamSettings(float(rate_hz), float(range_g), True)
    return StreamSettings(float(rate_hz), float(range_g), False)


FrameSink = Callable[["SensorSession", int, bytes], None]


class SensorSession:
    """Handshake and notifications of one connection (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        profile: Profile,
        *,
        rate_hz: float,
        range_g: float,
        on_frame: FrameSink,
        reply_timeout_s: float = 5.0,
        io_timeout_s: float = 10.0,
    ) -> None:
        self.client = client
        self.profile = profile
        self.requested_rate = float(rate_hz)
        self.requested_range = float(range_g)
        settings = stream_settings(profile, rate_hz, range_g)
        self.rate = settings.rate
        self.range_g = settings.range_g
        self.timed = settings.timed
        self.decoder = profile.new_decoder(**settings.decoder)
        self._device_ms = DeviceMillis() if profile.name == "nus" else None
        self.on_frame = on_frame
        self.reply_timeout_s = reply_timeout_s
        self.io_timeout_s = io_timeout_s
        #: ``time.monotonic()`` of the last data notification (the watchdog reads it).
        self.last_frame = time.monotonic()
        self.frames = 0
        self.info: dict[str, Any] = {}
        self.stopped_by_sensor = asyncio.Event()
        self._replies: asyncio.Queue[polar.CpResponse] = asyncio.Queue()
        self._data_char: Any = None
        self._control_char: Any = None
        self._notifying: list[Any] = []

    # -- callbacks (must not block) ---------------------------------------------------------------

    def _on_data(self, _char: Any, data: bytearray) -> None:
        now_ns = time.time_ns()
        self.last_frame = time.monotonic()
        self.frames += 1
        self.on_frame(self, now_ns, bytes(data))

    def _on_control(self, _char: Any, data: bytearray) -> None:
        try:
            msg = self.decoder.feed_control(bytes(data))
        except ProfileError as exc:
            log.warning("%s: ignoring a control message: %s", self.profile.name, exc)
            return
        if isinstance(msg, polar.MeasurementStopped):
            log.warning("%s: the sensor stopped %s by itself", self.profile.name, ", ".join(msg.names) or "streaming")
            if not msg.measurement_types or polar.ACC in msg.measurement_types:
                self.stopped_by_sensor.set()
        elif isinstance(msg, polar.CpResponse):
            self._replies.put_nowait(msg)

    def sensor_times(self, decoded: Decoded) -> np.ndarray | None:
        """The sensor's own clock for each decoded sample (seconds), or ``None`` without one.

        Polar frames: the profile's Unix seconds on the sensor clock. NUS frames: the board's
        millisecond counter, unwrapped, plus ``i / rate`` (the raw clock, not the profile's own
        host-anchored estimate, so that :mod:`collector.clock` maps exactly one clock).
        """
        if self._device_ms is not None and len(decoded) and "device_time_ms" in decoded.extras:
            start = self._device_ms.seconds(int(decoded.extras["device_time_ms"]))
            rate = float(decoded.extras.get("rate_hz") or self.rate)
            return start + np.arange(len(decoded), dtype=np.float64) / rate
        return decoded.timestamps

    # -- start / stop -----------------------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        """Resolve characteristics, read battery/device info, enable notifications, start the
        stream. Returns :attr:`info` (``battery``, ``firmware``, ``model``, ..., ``rate``)."""
        chars = [c for s in self.client.services for c in s.characteristics]
        data_uuid, control_uuid = self.profile.resolve_characteristics(chars)
        self._data_char = _pick(chars, data_uuid, {"notify", "indicate"})
        self._control_char = _pick(chars, control_uuid, {"write", "write-without-response"}) if control_uuid else None
        self.info.update(await self.read_device_information(chars))
        if self.profile.control_notifications and self._control_char is not None:
            await self._io(self.client.start_notify(self._control_char, self._on_control))
            self._notifying.append(self._control_char)
        await self._io(self.client.start_notify(self._data_char, self._on_data))
        self._notifying.append(self._data_char)
        if isinstance(self.profile, polar.PolarProfile):
            await self._start_polar()
        elif self._control_char is not None:
            for command in self.profile.start_commands(self.requested_rate, self.requested_range):
                await self.write(command)
                if self.profile.command_interval_s:
                    await asyncio.sleep(self.profile.command_interval_s)
        self.last_frame = time.monotonic()
        self.info["rate"] = self.rate
        return self.info

    async def stop(self) -> None:
        """Best effort: stop commands, then notifications off (the link may already be gone)."""
        if not getattr(self.client, "is_connected", False):
            return
        if self._control_char is not None:
            for command in self.profile.stop_commands():
                with contextlib.suppress(Exception):
                    await self.write(command)
        for char in reversed(self._notifying):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.stop_notify(char), 2.0)
        self._notifying.clear()

    async def write(self, data: bytes) -> None:
        """Write a command to the control characteristic, with or without response as the
        profile says (or, where it does not say, as the characteristic's properties offer)."""
        response = self.profile.write_response
        if response is None:
            response = "write" in char_properties(self._control_char)
        await self._io(self.client.write_gatt_char(self._control_char, data, response=response))

    async def read_battery(self) -> int | None:
        """Battery Level (0x2A19) in %, or ``None`` where there is none or it cannot be read."""
        chars = [c for s in self.client.services for c in s.characteristics]
        info = await self.read_device_information(chars, battery_only=True)
        return info.get("battery")

    async def read_device_information(self, chars: Iterable[Any], *, battery_only: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {}
        raw: dict[str, bytes] = {}
        for char in chars:
            uuid = normalize_uuid(char_uuid(char))
            wanted = uuid == sig.BATTERY_LEVEL or (not battery_only and uuid in sig.DEVICE_INFORMATION_FIELDS)
            if not wanted or "read" not in char_properties(char):
                continue
            try:
                value = bytes(await self._io(self.client.read_gatt_char(char), timeout=5.0))
            except Exception as exc:  # a read that fails is not worth a reconnect
                log.debug("could not read %s: %s", uuid, exc)
                continue
            if uuid == sig.BATTERY_LEVEL:
                with contextlib.suppress(ProfileError):
                    info["battery"] = sig.parse_battery_level(value)
            else:
                raw[uuid] = value
        info.update({k: v for k, v in sig.parse_device_information(raw).items() if v})
        return info

    # -- Polar ------------------------------------------------------------------------------------

    async def _start_polar(self) -> None:
        decoder = self.decoder
        assert isinstance(decoder, polar.PolarDecoder)
        settings: dict[str, int] = {}
        reply = await self._polar_command(polar.get_settings_command(polar.ACC), required=False)
        if reply is not None and reply.ok and reply.parameters:
            try:
                offered = polar.parse_settings(reply.parameters)
                settings = polar.choose_acc_settings(offered, self.requested_rate, self.requested_range)
            except ProfileError as exc:
                log.warning("polar: unreadable ACC settings (%s); asking for the requested ones", exc)
        if not settings:
            settings = {
                "SAMPLE_RATE": round(self.requested_rate),
                "RESOLUTION": 16,
                "RANGE": round(self.requested_range),
            }
        # Known before START is written, so the first data frame is decoded at the right rate.
        self.rate = float(settings.get("SAMPLE_RATE", self.rate))
        self.range_g = float(settings.get("RANGE", self.range_g))
        decoder.sample_rate = self.rate
        command = polar.start_command(settings)
        reply = await self._polar_command(command)
        if reply is not None and reply.status == 6:  # ERROR_ALREADY_IN_STATE: restart it
            await self._polar_command(polar.stop_command(polar.ACC), required=False)
            reply = await self._polar_command(command)
        assert reply is not None
        if not reply.ok:
            raise HandshakeError(f"polar: the sensor refused START ACC {command.hex(' ')}: {reply.status_name}")
        self.info["factor"] = decoder.factor

    async def _polar_command(self, command: bytes, *, required: bool = True) -> polar.CpResponse | None:
        while not self._replies.empty():  # stale replies from before
            self._replies.get_nowait()
        await self.write(command)
        deadline = time.monotonic() + self.reply_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                reply = await asyncio.wait_for(self._replies.get(), max(0.0, remaining))
            except TimeoutError:
                if required:
                    raise HandshakeError(
                        f"polar: no control point reply to {command.hex(' ')} within {self.reply_timeout_s:.0f} s"
                    ) from None
                return None
            if reply.op_code == command[0]:
                return reply

    # -- helpers ----------------------------------------------------------------------------------

    async def _io(self, awaitable: Any, timeout: float | None = None) -> Any:
        return await asyncio.wait_for(awaitable, timeout or self.io_timeout_s)


def _pick(chars: list[Any], uuid: str, wanted: set[str]) -> Any:
    """The characteristic object with ``uuid``, preferring one with a ``wanted`` property."""
    same = [c for c in chars if normalize_uuid(char_uuid(c)) == uuid]
    if not same:
        raise ProfileError(f"characteristic {uuid} not found")
    for char in same:
        if char_properties(char) & wanted:
            return char
    return same[0]
