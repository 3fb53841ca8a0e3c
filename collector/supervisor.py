"""The collector's night: keep one sensor connected, stream it into the spool and out over MQTT.

:class:`Collector` runs inside one ``asyncio.run()``:

* a **connection loop** - find the sensor (a fresh scan every time), connect through the
  :class:`Link` (``bleak_retry_connector.establish_connection`` in :mod:`collector.ble`), run the
  handshake (:class:`collector.gatt.SensorSession`), then watch the link. A disconnect callback, a
  **watchdog** that sees no notification for ``stall_s`` seconds (a silent stall), or the sensor
  saying it stopped streaming by itself (a control message, as the profile reads it) ends the
  connection; the loop backs off (``backoff_min_s``
  doubling to ``backoff_max_s``, back to the minimum after a connection that streamed
  ``stable_s``) and starts again with a new scan and a new handshake. Devices forget their stream
  state on disconnect, so nothing from the old connection is reused except the clock mapping.
* a **consumer** - notification callbacks only enqueue ``(host_time_ns, bytes)``; the consumer
  decodes, maps times (:mod:`collector.clock`), batches (:mod:`collector.pipeline`), appends each
  batch to the :class:`~collector.spool.Spool` with the next sequence number and hands it to the
  :class:`~collector.publisher.Publisher`. Status messages travel through the same queue, so the
  retained status and the batches reach the broker in the order they happened.

Status (retained, ``<prefix>/<sensor>/status``): ``online`` with the sensor's health -
``battery_pct`` (Battery Service 0x180F, or the sensor's own report: WitMotion's register 0x64,
MetaWear's battery state; read again every ``battery_interval_s``), ``rssi_dbm`` (the advertisement
seen by the scan before this connection: BlueZ reports no RSSI on a connected link) and
``connected`` - plus firmware, model, rate and ``link`` (``connected``/``reconnecting``) once the
handshake is done; when the link is
lost, ``offline`` after ``offline_after_s`` seconds without it (0: at once). ``legwatch monitor``
ends a sensor's night on ``offline``, so the default grace keeps short radio drop-outs (seconds)
from splitting a night while a sensor that is gone (taken off in the morning) still ends it. A
clean stop publishes ``offline``; a crash leaves it to the MQTT last will.

A device the profile will not stream (:class:`~collector.profiles.RefusedDevice`: one that is not
an accelerometer, such as a WitMotion WTVB01 vibration sensor, or a MetaWear board with a BMA255)
is refused: the collector stops, :attr:`Collector.refused` says why and :meth:`Collector.run`
returns 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bleak.exc import BleakError

from legwatch.contracts import payload, status
from legwatch.contracts.config import Config

from .gatt import HandshakeError, SensorSession
from .pipeline import Pipeline
from .profiles import Profile, ProfileError, RefusedDevice
from .publisher import Publisher
from .spool import Spool

log = logging.getLogger("legwatch.collector")

__all__ = ["Collector", "CollectorOptions", "DeviceNotFound", "Found", "Link"]

#: Errors a connection attempt or a running connection may end with; all lead to a retry.
BLE_ERRORS: tuple[type[BaseException], ...] = (
    BleakError,
    OSError,
    EOFError,
    TimeoutError,
    ProfileError,
    HandshakeError,
)


class DeviceNotFound(LookupError):
    """No matching sensor advertised during the scan."""


@dataclass
class Found:
    """A sensor seen in a scan."""

    device: Any  # bleak BLEDevice
    address: str
    name: str | None
    rssi: int | None
    profile: Profile
    service_uuids: list[str] = field(default_factory=list)


class Link(Protocol):
    """The radio side (implemented with bleak in :class:`collector.ble.BleLink`)."""

    profile: Profile | None
    address: str | None

    async def find(self, timeout: float) -> Found | None: ...

    async def connect(self, found: Found, disconnected: Callable[[Any], None], max_attempts: int) -> Any: ...


@dataclass
class CollectorOptions:
    """Everything :class:`Collector` needs besides the configuration (defaults for real nights)."""

    sensor: str
    rate_hz: float = 52.0
    range_g: float = 8.0
    batch_s: float = 1.0
    #: Watchdog: reconnect when no notification arrived for this long.
    stall_s: float = 10.0
    #: Publish ``offline`` when the link has been down this long (0: at once).
    offline_after_s: float = 60.0
    scan_timeout_s: float = 15.0
    connect_attempts: int = 4
    handshake_timeout_s: float = 30.0
    reply_timeout_s: float = 5.0
    backoff_min_s: float = 1.0
    backoff_max_s: float = 30.0
    stable_s: float = 60.0
    battery_interval_s: float = 600.0
    queue_max: int = 100_000
    spool_max_bytes: int = 64 * 1024 * 1024
    spool_fsync: bool = False
    mqtt_wait_s: float = 5.0
    mqtt_reconnect_min_s: float = 1.0
    mqtt_reconnect_max_s: float = 30.0
    drain_s: float = 10.0
    #: without any acknowledgement from a monitor this long after the first batch, go on with the
    #: broker's acknowledgements only (``collector.publisher``)
    ack_wait_s: float = 30.0


class Collector:
    """One sensor, all night (see the module docstring)."""

    def __init__(self, cfg: Config, options: CollectorOptions, link: Link, *, initial: Found | None = None) -> None:
        if not payload.valid_sensor_id(options.sensor):
            raise ValueError(f"bad sensor id {options.sensor!r}")
        self.cfg = cfg
        self.opts = options
        self.link = link
        self.sensor = options.sensor
        self.stats: Counter[str] = Counter()
        self.info: dict[str, Any] = {}
        self.spool: Spool | None = None
        self.publisher: Publisher | None = None
        self.pipeline = Pipeline(self._emit, batch_s=options.batch_s)
        self._initial = initial
        self._queue: asyncio.Queue[tuple] | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._online = False
        self._connected = False
        #: why the device was refused (not an accelerometer), else ``None``
        self.refused: str | None = None
        self._offline_timer: asyncio.Task | None = None
        self._warned: set[str] = set()
        self.started = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop after the current step (safe from signal handlers and other threads)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self) -> int:
        """Open the spool, connect to the broker, stream until stopped; 0 on a clean stop."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._queue = asyncio.Queue(self.opts.queue_max)
        spool_dir = Path(self.cfg.data_dir) / "spool" / self.sensor
        self.spool = Spool(spool_dir, max_bytes=self.opts.spool_max_bytes, fsync=self.opts.spool_fsync)
        self.publisher = Publisher(
            url=self.cfg["mqtt.url"],
            client_id=self.cfg["mqtt.client_id"] or f"legwatch-collector-{self.sensor}",
            prefix=self.cfg["mqtt.topic_prefix"],
            sensor=self.sensor,
            spool=self.spool,
            protocol=self.cfg["mqtt.protocol"],
            ca_file=self.cfg["mqtt.ca_file"],
            reconnect_min_s=self.opts.mqtt_reconnect_min_s,
            reconnect_max_s=self.opts.mqtt_reconnect_max_s,
            ack_wait_s=self.opts.ack_wait_s,
        )
        try:
            await asyncio.to_thread(self.publisher.start, self.opts.mqtt_wait_s)
        except BaseException:
            self.spool.close()
            raise
        consumer = asyncio.create_task(self._consume(), name="legwatch-consumer")
        self.started.set()
        try:
            await self._connect_loop()
        finally:
            self._cancel_offline_timer()
            await self._queue.put(("status", self._status("offline", reason=self.refused or "collector stopped")))
            await self._queue.put(("close",))
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            drained = await asyncio.to_thread(self.publisher.close, self.opts.drain_s)
            self.spool.close()
            left = len(self.spool)
            unconfirmed = self.publisher.unconfirmed if self.publisher.end_to_end else 0
            if unconfirmed or (self.publisher.end_to_end and not self.publisher.night_confirmed):
                missing = [f"{unconfirmed} batches"] if unconfirmed else []
                if not self.publisher.night_confirmed:
                    missing.append("the end of the night")
                log.error(
                    "collector for %s stopped before the monitor confirmed storing %s; "
                    "%d batches stay in the spool and are sent again next time",
                    self.sensor,
                    " and ".join(missing),
                    left,
                )
            elif drained:
                log.info("collector for %s stopped; everything was acknowledged", self.sensor)
            else:
                log.warning(
                    "collector for %s stopped with %d batches left in the spool for next time", self.sensor, left
                )
        return 2 if self.refused else 0

    # -- connection loop --------------------------------------------------------------------------

    async def _connect_loop(self) -> None:
        assert self._stop is not None
        backoff = self.opts.backoff_min_s
        while not self._stop.is_set():
            streamed = 0.0
            try:
                streamed = await self._until_stopped(self._one_connection())
            except RefusedDevice as exc:
                self._refuse(str(exc))
                break
            except BLE_ERRORS + (DeviceNotFound,) as exc:
                self.stats["connect_failures"] += 1
                log.warning("sensor %s: %s; retrying in %.1f s", self.sensor, _one_line(exc), backoff)
            except Exception as exc:  # never let one bad connection end the night
                self.stats["connect_failures"] += 1
                log.exception("sensor %s: unexpected %s; retrying in %.1f s", self.sensor, type(exc).__name__, backoff)
            if self._stop.is_set():
                break
            if streamed >= self.opts.stable_s:
                backoff = self.opts.backoff_min_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, self.opts.backoff_max_s)

    async def _until_stopped(self, coro: Any) -> float:
        """Run ``coro``; cancel it if a stop is requested meanwhile (returns 0.0 then)."""
        assert self._stop is not None
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *BLE_ERRORS):
                await task
            return 0.0
        return task.result()

    async def _one_connection(self) -> float:
        """Scan, connect, handshake, stream until the link ends; returns seconds streamed."""
        found, self._initial = self._initial, None
        if found is None:
            found = await self.link.find(self.opts.scan_timeout_s)
        if found is None:
            what = self.link.address or (self.link.profile.name if self.link.profile else "known")
            raise DeviceNotFound(f"no {what} sensor advertising within {self.opts.scan_timeout_s:.0f} s")
        self.info.update(
            {"address": found.address, "name": found.name, "rssi": found.rssi, "profile": found.profile.name}
        )
        loop = asyncio.get_running_loop()
        disconnected = asyncio.Event()

        def on_disconnect(_client: Any) -> None:
            loop.call_soon_threadsafe(disconnected.set)

        log.info("connecting to %s (%s, RSSI %s)", found.name or found.address, found.address, found.rssi)
        client = await self.link.connect(found, on_disconnect, self.opts.connect_attempts)
        session: SensorSession | None = None
        streaming_since: float | None = None
        reason = "connection attempt failed"
        try:
            session = SensorSession(
                client,
                found.profile,
                rate_hz=self.opts.rate_hz,
                range_g=self.opts.range_g,
                on_frame=self._on_frame,
                reply_timeout_s=self.opts.reply_timeout_s,
                name=found.name,
            )
            info = await asyncio.wait_for(session.start(), self.opts.handshake_timeout_s)
            self.info.update(info)
            self.stats["handshakes"] += 1
            streaming_since = time.monotonic()
            log.info(
                "streaming from %s at %g Hz (battery %s %%, firmware %s)",
                found.name or found.address,
                session.rate,
                info.get("battery", "?"),
                info.get("firmware", "?"),
            )
            await self._link_up()
            reason = await self._watch(session, disconnected)
            return time.monotonic() - streaming_since
        except asyncio.CancelledError:
            reason = "collector stopping"
            raise
        finally:
            if session is not None and not disconnected.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.stop(), 3.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5.0)
            assert self._queue is not None
            if session is not None:
                self.stats["duplicates"] += session.duplicates
                self._queue.put_nowait(("end_segment", session))
            if streaming_since is not None:
                await self._link_down(reason)

    async def _watch(self, session: SensorSession, disconnected: asyncio.Event) -> str:
        """Wait until the connection ends; returns why."""
        assert self._stop is not None
        poll = max(0.02, min(0.2, self.opts.stall_s / 5))
        next_battery = time.monotonic() + self.opts.battery_interval_s
        while True:
            if self._stop.is_set():
                return "collector stopping"
            if self.refused:
                return "not an accelerometer"
            if disconnected.is_set():
                self.stats["disconnects"] += 1
                log.warning("sensor %s disconnected; reconnecting", self.sensor)
                return "sensor disconnected"
            if session.stopped_by_sensor.is_set():
                self.stats["sensor_stops"] += 1
                return "the sensor stopped streaming"
            idle = time.monotonic() - session.last_frame
            if idle > self.opts.stall_s:
                self.stats["stalls"] += 1
                log.warning("no data from sensor %s for %.1f s; reconnecting", self.sensor, idle)
                return "no data (stalled)"
            if time.monotonic() >= next_battery:
                next_battery = time.monotonic() + self.opts.battery_interval_s
                level = await session.read_battery()
                if level is not None and level != self.info.get("battery"):
                    self.info["battery"] = level
                    await self._queue_status(self._status("online"))
            await asyncio.sleep(poll)

    # -- status -----------------------------------------------------------------------------------

    def _status(self, state: str, **extra: Any) -> bytes:
        keys = ("profile", "address", "name", "firmware", "model", "manufacturer", "chip", "rate")
        fields = {k: self.info.get(k) for k in keys}
        fields[status.BATTERY_PCT] = self.info.get("battery")
        fields[status.RSSI_DBM] = self.info.get("rssi")
        fields[status.CONNECTED] = state == status.ONLINE and (self._connected or extra.get("link") == "connected")
        return status.build(state, source="collector", sensor=self.sensor, **fields, **extra)

    def _refuse(self, reason: str) -> None:
        if self.refused is None:
            self.refused = reason
            log.error("sensor %s refused: %s", self.sensor, reason)
        assert self._stop is not None
        self._stop.set()

    async def _queue_status(self, data: bytes) -> None:
        assert self._queue is not None
        await self._queue.put(("status", data))

    async def _link_up(self) -> None:
        self._cancel_offline_timer()
        self._online = True
        self._connected = True
        await self._queue_status(self._status("online", link="connected"))

    async def _link_down(self, reason: str) -> None:
        assert self._stop is not None
        self._connected = False
        if self._stop.is_set() or not self._online:
            return
        if self.opts.offline_after_s <= 0:
            self._online = False
            await self._queue_status(self._status("offline", link="lost", reason=reason))
            return
        await self._queue_status(self._status("online", link="reconnecting", reason=reason))
        self._cancel_offline_timer()
        self._offline_timer = asyncio.create_task(self._offline_later(reason))

    async def _offline_later(self, reason: str) -> None:
        await asyncio.sleep(self.opts.offline_after_s)
        self._online = False
        log.warning("sensor %s has been away for %.0f s; marking it offline", self.sensor, self.opts.offline_after_s)
        await self._queue_status(self._status("offline", link="lost", reason=reason))

    def _cancel_offline_timer(self) -> None:
        if self._offline_timer is not None:
            self._offline_timer.cancel()
            self._offline_timer = None

    # -- data path --------------------------------------------------------------------------------

    def _on_frame(self, session: SensorSession, host_ns: int, data: bytes) -> None:
        """Notification callback: enqueue only."""
        assert self._queue is not None
        try:
            self._queue.put_nowait(("data", session, host_ns, data))
        except asyncio.QueueFull:
            self.stats["queue_overflow"] += 1
            self._warn_once("overflow", "the decode queue is full; notifications are being dropped")

    async def _consume(self) -> None:
        assert self._queue is not None and self.publisher is not None
        current: SensorSession | None = None
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), self.opts.batch_s)
            except TimeoutError:
                item = ("tick",)  # nothing arrived: only send a partial batch that has waited
            kind = item[0]
            try:
                if kind == "data":
                    session = item[1]
                    if session is not current:
                        self.pipeline.start_segment(rate=session.rate, range_g=session.range_g)
                        current = session
                    self._decode(session, item[2], item[3])
                elif kind == "end_segment":
                    if item[1] is current:
                        self.pipeline.end_segment()
                        current = None
                elif kind == "status":
                    self.pipeline.flush()  # the status follows every sample received before it
                    self.publisher.add_status(item[1])
                elif kind == "close":
                    self.pipeline.flush()
                    return
                self.pipeline.poll(time.time())
            except Exception:  # e.g. the disk under the spool failed: say so, keep the night going
                self.stats["consumer_errors"] += 1
                log.exception("sensor %s: could not process a %s item", self.sensor, kind)
                if kind == "close":
                    return

    def _decode(self, session: SensorSession, host_ns: int, data: bytes) -> None:
        arrival = host_ns / 1e9
        try:
            decoded = session.decoder.feed(data)
        except RefusedDevice as exc:
            self._refuse(str(exc))
            return
        except ProfileError as exc:
            self.stats["decode_errors"] += 1
            self._warn_once(f"decode:{str(exc)[:40]}", f"undecodable notification ({exc}); skipped")
            return
        self.stats["frames"] += 1
        extras = decoded.extras
        if extras:
            if extras.get("output_rate_hz"):
                session.rate = float(extras["output_rate_hz"])
                self.pipeline.set_rate(session.rate)
            elif extras.get("rate_hz") and session.timed:
                session.rate = float(extras["rate_hz"])
                self.pipeline.set_rate(session.rate)
            if extras.get("battery_percent") is not None:
                level = round(float(extras["battery_percent"]))
                if level != self.info.get("battery"):
                    self.info["battery"] = level
                    self.pipeline.flush()
                    assert self.publisher is not None
                    self.publisher.add_status(self._status("online", link="connected"))
        self.pipeline.add(decoded.samples, session.sensor_times(decoded), arrival)

    def _emit(self, t: Any, xyz: Any, rate: float, scale: float) -> None:
        assert self.spool is not None and self.publisher is not None
        seq = self.spool.append(lambda seq: payload.encode(self.sensor, seq, t, xyz, rate, scale))
        self.stats["batches"] += 1
        self.stats["samples"] += len(t)
        self.publisher.add_batch(seq)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("sensor %s: %s (further ones are counted)", self.sensor, message)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
