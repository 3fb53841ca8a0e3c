"""One Bluetooth LE connection to a sensor: characteristics, handshake, notifications, stop.

:class:`SensorSession` works on a connected bleak client (``BleakClient`` or anything with its
``services``/``start_notify``/``write_gatt_char``/``read_gatt_char``/``stop_notify`` API) and a
device profile (:class:`collector.profiles.Profile`), without knowing which profile it is:

1. picks the data and control characteristics with the profile's ``resolve_characteristics``;
2. reads Battery Level (0x2A19) and Device Information (0x180A) where the sensor has them;
3. enables notifications/indications on the control characteristic first where the profile's
   replies arrive there (``profile.control_notifications``), then on the data characteristic;
4. runs the profile's start sequence, ``await profile.start(link)``, on a :class:`SessionLink`:
   writes to the control characteristic (with or without response as the profile says), the
   replies :meth:`Profile.on_control` made of control messages, the requested rate and range.
   The default sequence writes ``start_commands`` ``command_interval_s`` apart; a profile with a
   negotiation (e.g. a control point that offers settings) overrides ``start``.

What the connection streams - nominal rate and range, decoder settings, whether frames carry a
sensor clock or a raw device millisecond counter - comes from the profile too
(``stream_settings``, ``device_ms_clock``).

The notification callback does no work: it stamps the host time and hands ``(host_time_ns,
bytes)`` to ``on_frame`` (which enqueues); decoding happens in the collector's consumer. A control
message the profile reads as "the sensor stopped streaming by itself" sets
:attr:`SensorSession.stopped_by_sensor`. Where a profile's replies come on the data characteristic
(``profile.replies_on_data``, MetaWear), data notifications are offered to ``on_control`` too.

Duplicates: bleak >= 3.0.2 on BlueZ can call a notification callback twice per notification after a
reconnect (hbldh/bleak#2002, open). A notification byte-identical to the one before it, arriving
within :data:`DUPLICATE_WINDOW_NS`, is that second call and is dropped (:attr:`SensorSession.
duplicates` counts them) on every profile; Polar frames also carry a timestamp and NUS frames a
sequence number, whose decoders drop a repeated frame wherever it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .clock import DeviceMillis
from .profiles import Decoded, Decoder, HandshakeError, Profile, ProfileError, StreamSettings, sig
from .profiles.base import char_properties, char_uuid, normalize_uuid

log = logging.getLogger("legwatch.collector.gatt")

__all__ = ["HandshakeError", "SensorSession", "SessionLink", "StreamSettings", "stream_settings"]


def stream_settings(profile: Profile, rate_hz: float, range_g: float) -> StreamSettings:
    """Nominal rate, range and decoder settings of ``profile`` for the requested ones."""
    return profile.stream_settings(rate_hz, range_g)


FrameSink = Callable[["SensorSession", int, bytes], None]

#: A notification byte-identical to the previous one within this many ns is a doubled callback
#: (real consecutive samples differ: sensor noise alone changes the low bits).
DUPLICATE_WINDOW_NS = 5_000_000


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
        name: str | None = None,
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
        self._device_ms = DeviceMillis() if profile.device_ms_clock else None
        self.on_frame = on_frame
        self.reply_timeout_s = reply_timeout_s
        self.io_timeout_s = io_timeout_s
        #: ``time.monotonic()`` of the last data notification (the watchdog reads it).
        self.last_frame = time.monotonic()
        self.frames = 0
        #: doubled notification callbacks dropped (see the module docstring)
        self.duplicates = 0
        self._last_data: bytes | None = None
        self._last_ns = 0
        self.info: dict[str, Any] = {"name": name} if name else {}
        self.stopped_by_sensor = asyncio.Event()
        self._replies: asyncio.Queue[Any] = asyncio.Queue()
        self._data_char: Any = None
        self._control_char: Any = None
        self._notifying: list[Any] = []
        #: What the profile's start/stop sequence works through.
        self.link = SessionLink(self)

    # -- callbacks (must not block) ---------------------------------------------------------------

    def _on_data(self, _char: Any, data: bytearray) -> None:
        now_ns = time.time_ns()
        raw = bytes(data)
        if raw == self._last_data and now_ns - self._last_ns < DUPLICATE_WINDOW_NS:
            self.duplicates += 1
            return
        self._last_data, self._last_ns = raw, now_ns
        self.last_frame = time.monotonic()
        self.frames += 1
        if self.profile.replies_on_data:
            self._on_control(_char, data)
        self.on_frame(self, now_ns, raw)

    def _on_control(self, _char: Any, data: bytearray) -> None:
        try:
            event = self.profile.on_control(self.decoder, bytes(data))
        except ProfileError as exc:
            log.warning("%s: ignoring a control message: %s", self.profile.name, exc)
            return
        if event is None:
            return
        if event.warning:
            log.warning("%s: %s", self.profile.name, event.warning)
        if event.stopped:
            self.stopped_by_sensor.set()
        if event.reply is not None:
            self._replies.put_nowait(event.reply)

    def sensor_times(self, decoded: Decoded) -> np.ndarray | None:
        """The sensor's own clock for each decoded sample (seconds), or ``None`` without one.

        Usually the decoder's timestamps (Unix seconds on the sensor clock). Where the profile has
        a ``device_ms_clock``: the board's millisecond counter, unwrapped, plus ``i / rate`` (the
        raw clock, not the decoder's own host-anchored estimate, so that :mod:`collector.clock`
        maps exactly one clock).
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
        await self.profile.start(self.link)
        self.last_frame = time.monotonic()
        self.info["rate"] = self.rate
        return self.info

    async def stop(self) -> None:
        """Best effort: stop commands, then notifications off (the link may already be gone)."""
        if not getattr(self.client, "is_connected", False):
            return
        with contextlib.suppress(Exception):
            await self.profile.stop(self.link)
        for char in reversed(self._notifying):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.stop_notify(char), 2.0)
        self._notifying.clear()

    async def write(self, data: bytes, *, response: bool | None = None) -> None:
        """Write a command to the control characteristic, with or without response as asked, else
        as the profile says (or, where it does not say, as the characteristic's properties offer)."""
        if response is None:
            response = self.profile.write_response
        if response is None:
            response = "write" in char_properties(self._control_char)
        await self._io(self.client.write_gatt_char(self._control_char, data, response=response))

    async def read_battery(self) -> int | None:
        """Battery Level (0x2A19) in %, or ``None`` where there is none or it cannot be read. Also
        asks the sensor for its own battery report where the profile has one
        (``profile.battery_commands()``: WitMotion's register 0x64, MetaWear's battery state),
        which arrives later as a decoded ``battery_percent``."""
        if self._control_char is not None:
            for command in self.profile.battery_commands():
                try:
                    await self.write(command)
                except Exception as exc:  # a failed battery request is not worth a reconnect
                    log.debug("battery request %s failed: %s", command.hex(" "), exc)
                    break
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

    # -- helpers ----------------------------------------------------------------------------------

    async def _io(self, awaitable: Any, timeout: float | None = None) -> Any:
        return await asyncio.wait_for(awaitable, timeout or self.io_timeout_s)


class SessionLink:
    """The :class:`collector.profiles.ControlLink` of one :class:`SensorSession`: what a profile's
    ``start``/``stop`` may do on the connection."""

    def __init__(self, session: SensorSession) -> None:
        self._session = session
        self.log = log

    @property
    def rate_hz(self) -> float:
        return self._session.requested_rate

    @property
    def range_g(self) -> float:
        return self._session.requested_range

    @property
    def reply_timeout_s(self) -> float:
        return self._session.reply_timeout_s

    @property
    def decoder(self) -> Decoder:
        return self._session.decoder

    @property
    def info(self) -> dict[str, Any]:
        return self._session.info

    @property
    def has_control(self) -> bool:
        return self._session._control_char is not None

    async def write(self, data: bytes, *, response: bool | None = None) -> None:
        await self._session.write(data, response=response)

    async def next_reply(self, timeout: float) -> Any:
        return await asyncio.wait_for(self._session._replies.get(), max(0.0, timeout))

    def clear_replies(self) -> None:
        replies = self._session._replies
        while not replies.empty():
            replies.get_nowait()

    def set_stream(self, *, rate: float | None = None, range_g: float | None = None) -> None:
        if rate is not None:
            self._session.rate = float(rate)
        if range_g is not None:
            self._session.range_g = float(range_g)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _pick(chars: list[Any], uuid: str, wanted: set[str]) -> Any:
    """The characteristic object with ``uuid``, preferring one with a ``wanted`` property."""
    same = [c for c in chars if normalize_uuid(char_uuid(c)) == uuid]
    if not same:
        raise ProfileError(f"characteristic {uuid} not found")
    for char in same:
        if char_properties(char) & wanted:
            return char
    return same[0]
