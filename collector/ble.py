"""The bleak-facing part of the collector: ``legwatch scan`` and ``legwatch collect``.

* :func:`scan` - a ``BleakScanner`` discovery with advertisement data; lists the devices a device
  profile recognises (name, address, RSSI, profile).
* :func:`collect` - finds the sensor (by address, or the first one a profile recognises), then runs
  :class:`collector.supervisor.Collector` in one ``asyncio.run()`` until SIGINT/SIGTERM.
* :class:`BleLink` - scanning for one sensor and connecting to it through
  ``bleak_retry_connector.establish_connection(BleakClientWithServiceCache, ...)``.

The seam for tests is bleak's own backend interface: ``scanner_backend`` and ``client_backend``
(subclasses of ``bleak.backends.scanner.BaseBleakScanner`` / ``bleak.backends.client.
BaseBleakClient``) go to ``BleakScanner(backend=...)`` and, through ``establish_connection``, to
``BleakClient(backend=...)``. Everything above the radio - ``BleakScanner``, ``BleakClient``,
bleak-retry-connector, the GATT objects - is the real code.

When Bluetooth is not usable (no BlueZ, no D-Bus system bus, adapter off, no permission) both
commands print one line saying so and exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

from bleak import BleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError
from bleak_retry_connector import (
    BleakClientWithServiceCache,
    close_stale_connections_by_address,
    establish_connection,
)

from legwatch.contracts import payload, topics
from legwatch.contracts.config import Config, ConfigError

from .profiles import Profile, get_profile, registered_profiles
from .supervisor import Collector, CollectorOptions, Found

log = logging.getLogger("legwatch.collector.ble")

__all__ = ["BleLink", "BluetoothUnavailable", "bluetooth_error", "collect", "discover", "scan"]


class BluetoothUnavailable(RuntimeError):
    """Bluetooth cannot be used on this machine (one-line message)."""


def bluetooth_error(exc: BaseException) -> str:
    """One line saying why Bluetooth is not usable, with the likely fix."""
    text = " ".join(str(exc).split())
    if isinstance(exc, BleakDBusError):
        name = exc.dbus_error
        if name.endswith("ServiceUnknown"):
            return "Bluetooth is not available: BlueZ (bluetoothd) is not running on the D-Bus system bus"
        if name.endswith("AccessDenied"):
            return "Bluetooth is not available: permission denied by BlueZ; add the user to the 'bluetooth' group"
        if name == "org.bluez.Error.NotReady":
            return "Bluetooth is not available: the adapter is off (rfkill unblock bluetooth; bluetoothctl power on)"
        if name == "org.bluez.Error.InProgress":
            return "Bluetooth is busy: BlueZ has another scan or connection in progress (org.bluez.Error.InProgress)"
        return f"Bluetooth error from BlueZ: {text}"
    if isinstance(exc, BleakBluetoothNotAvailableError):
        return f"Bluetooth is not available: {text}"
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        reason = text or type(exc).__name__
        return (
            f"Bluetooth is not available: cannot reach BlueZ on the D-Bus system bus ({reason}); is bluetoothd running?"
        )
    if isinstance(exc, PermissionError):
        return f"Bluetooth is not available: permission denied on the D-Bus system bus ({text})"
    if isinstance(exc, BleakError) and "adapter" in text.lower():
        return f"Bluetooth is not available: {text}"
    return f"Bluetooth is not available: {text or type(exc).__name__}"


#: What starting a scan raises when there is no usable Bluetooth.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (BleakError, OSError)


def _recognise(name: str | None, uuids: list[str], wanted: Profile | None) -> Profile | None:
    candidates = [wanted] if wanted is not None else registered_profiles()
    for profile in candidates:
        if profile.matches(name, uuids):
            return profile
    return None


async def discover(timeout: float, *, scanner_backend: type | None = None) -> list[Found]:
    """Devices seen for ``timeout`` seconds that a profile recognises, strongest first."""
    kwargs: dict[str, Any] = {"backend": scanner_backend} if scanner_backend else {}
    seen = await BleakScanner.discover(timeout=timeout, return_adv=True, **kwargs)
    found = []
    for device, adv in seen.values():
        name = adv.local_name or device.name
        profile = _recognise(name, list(adv.service_uuids), None)
        if profile is not None:
            found.append(Found(device, device.address, name, adv.rssi, profile, list(adv.service_uuids)))
    found.sort(key=lambda f: -(f.rssi if f.rssi is not None else -999))
    return found


def scan(timeout: float, console: Any, *, scanner_backend: type | None = None) -> int:
    """``legwatch scan``: print the recognised sensors nearby; exit 1 without Bluetooth."""
    try:
        found = asyncio.run(discover(timeout, scanner_backend=scanner_backend))
    except UNAVAILABLE_ERRORS as exc:
        print(f"legwatch scan: error: {bluetooth_error(exc)}", file=sys.stderr)
        return 1
    if not found:
        console.print(f"No sensor that a legwatch profile recognises was seen in {timeout:g} s.")
        return 0
    from rich.table import Table

    table = Table(title="Bluetooth LE sensors")
    for column in ("name", "address", "RSSI", "profile"):
        table.add_column(column)
    for f in found:
        table.add_row(f.name or "?", f.address, "" if f.rssi is None else f"{f.rssi} dBm", f.profile.name)
    console.print(table)
    console.print("Stream one with: legwatch collect --profile PROFILE --address ADDRESS --sensor ID")
    return 0


class BleLink:
    """Finds one sensor and connects to it (see the module docstring for the test seam)."""

    def __init__(
        self,
        profile: Profile | None,
        address: str | None,
        *,
        scanner_backend: type | None = None,
        client_backend: type | None = None,
    ) -> None:
        self.profile = profile
        self.address = address
        self.scanner_backend = scanner_backend
        self.client_backend = client_backend

    async def find(self, timeout: float) -> Found | None:
        """Scan until the sensor advertises (by address, else the first one the profile - or any
        profile - recognises); ``None`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Found] = loop.create_future()
        wanted = self.address.lower() if self.address else None

        def on_advertisement(device: Any, adv: Any) -> None:
            if result.done():
                return
            name = adv.local_name or device.name
            uuids = list(adv.service_uuids)
            if wanted is not None:
                if device.address.lower() != wanted:
                    return
                profile = self.profile or _recognise(name, uuids, None)
                if profile is None:
                    return
            else:
                profile = _recognise(name, uuids, self.profile)
                if profile is None:
                    return
            result.set_result(Found(device, device.address, name, adv.rssi, profile, uuids))

        kwargs: dict[str, Any] = {"backend": self.scanner_backend} if self.scanner_backend else {}
        async with BleakScanner(on_advertisement, **kwargs):
            try:
                return await asyncio.wait_for(result, timeout)
            except TimeoutError:
                return None

    async def connect(self, found: Found, disconnected: Callable[[Any], None], max_attempts: int) -> Any:
        """``establish_connection(BleakClientWithServiceCache, ...)`` with bleak-retry-connector's
        error classification and backoff."""
        kwargs: dict[str, Any] = {}
        if self.client_backend is not None:
            kwargs["backend"] = self.client_backend
        else:  # a connection BlueZ kept from before (another adapter, a crash) blocks a new one
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close_stale_connections_by_address(found.address), 5.0)
        return await establish_connection(
            BleakClientWithServiceCache,
            found.device,
            found.name or found.address,
            disconnected_callback=disconnected,
            max_attempts=max_attempts,
            **kwargs,
        )


def sensor_id_for(found: Found) -> str:
    """A sensor id from the device: its advertised name, else profile and address."""
    base = found.name or f"{found.profile.name}-{found.address}"
    sid = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.")[:64]
    if not sid or sid in topics.RESERVED:
        sid = re.sub(r"[^A-Za-z0-9]", "", found.address).lower() or "sensor"
    return sid


def collect(
    cfg: Config,
    profile: str | None = None,
    address: str | None = None,
    sensor: str | None = None,
    *,
    rate: float | None = None,
    range_g: float = 8.0,
    stall_s: float = 10.0,
    offline_after_s: float = 60.0,
    spool_mb: float = 64.0,
    spool_fsync: bool = False,
    scanner_backend: type | None = None,
    client_backend: type | None = None,
) -> int:
    """``legwatch collect``: stream one sensor to MQTT until SIGINT/SIGTERM (see the module doc)."""
    prof = get_profile(profile) if profile else None
    if not cfg["mqtt.url"]:
        raise ConfigError("no MQTT broker configured: set mqtt.url, LEGWATCH_MQTT_URL or --mqtt-url")
    if sensor is not None and (not payload.valid_sensor_id(sensor) or sensor in topics.RESERVED):
        raise ConfigError(f"bad sensor id {sensor!r}: use 1-64 of A-Z a-z 0-9 _ . - (not a reserved word)")
    for name, value in (("rate", rate), ("range", range_g), ("watchdog", stall_s), ("spool size", spool_mb)):
        if value is not None and not value > 0:
            raise ConfigError(f"--{name.split()[0]} must be > 0, got {value}")
    link = BleLink(prof, address, scanner_backend=scanner_backend, client_backend=client_backend)
    options = CollectorOptions(
        sensor=sensor or "pending",
        rate_hz=rate or (prof.default_rate_hz if prof else Profile.default_rate_hz),
        range_g=range_g,
        stall_s=stall_s,
        offline_after_s=max(0.0, offline_after_s),
        spool_max_bytes=int(spool_mb * 1024 * 1024),
        spool_fsync=spool_fsync,
    )
    try:
        return asyncio.run(_collect(cfg, options, link, sensor_given=sensor is not None, rate_given=rate is not None))
    except BluetoothUnavailable as exc:
        print(f"legwatch collect: error: {exc}", file=sys.stderr)
        return 1


async def _collect(
    cfg: Config, options: CollectorOptions, link: BleLink, *, sensor_given: bool, rate_given: bool
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    # The first scan tells whether Bluetooth works at all (exit 1 if not) and, without --sensor,
    # which device we stream (its id names the spool and the topics), so wait for one.
    found: Found | None = None
    while True:
        try:
            found = await link.find(options.scan_timeout_s)
        except UNAVAILABLE_ERRORS as exc:
            raise BluetoothUnavailable(bluetooth_error(exc)) from None
        if found is not None or sensor_given or stop.is_set():
            break
        log.warning("no sensor found yet; still scanning")
    if stop.is_set():
        return 0
    if found is not None:
        link.profile = link.profile or found.profile
        if not rate_given:
            options.rate_hz = found.profile.default_rate_hz
        if not sensor_given:
            options.sensor = sensor_id_for(found)
            log.info("publishing %s (%s) as sensor %r", found.name, found.address, options.sensor)
    collector = Collector(cfg, options, link, initial=found)
    stopper = asyncio.create_task(_relay_stop(stop, collector))
    try:
        code = await collector.run()
    finally:
        stopper.cancel()
    if collector.refused:
        print(f"legwatch collect: error: {collector.refused}", file=sys.stderr)
    return code


async def _relay_stop(stop: asyncio.Event, collector: Collector) -> None:
    await stop.wait()
    log.info("stopping: finishing the stream and sending what is spooled")
    collector.request_stop()
