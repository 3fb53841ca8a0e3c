"""``legwatch status``: will tonight work? One row per check, each ``ok``, ``warn`` or ``fail``.

The checks, in order: the configuration (where it came from, the subject, the data directory);
the MQTT broker (a throw-away, non-persistent connection); the store (InfluxDB answers, or the
SQLite file opens and can be written; no point is written, though a missing data folder, SQLite
file or InfluxDB 1.x database is created as the monitor would); a Bluetooth adapter on this machine
(``/sys/class/bluetooth/hci*``; only a warning: the collector may run elsewhere); each sensor's
retained status on the broker (online or offline, since when, battery) beside the last night the
store holds for it; and whether the monitor is storing data (it publishes no status of its own, so
its sign of life is the newest ``activity`` point of the last 10 minutes).

The row builders are plain functions of what was observed (testable without servers);
:func:`run` observes and calls them. Nothing here imports bleak or keeps any state.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legwatch.contracts import localtime

if TYPE_CHECKING:
    from legwatch.contracts.config import Config
    from legwatch.contracts.status import Status
    from legwatch.storage import Point, Store

__all__ = [
    "FAIL",
    "OK",
    "WARN",
    "Check",
    "bluetooth_check",
    "broker_check",
    "config_check",
    "monitor_check",
    "ready",
    "render_text",
    "report",
    "run",
    "sensor_checks",
    "store_check",
]

OK, WARN, FAIL = "ok", "warn", "fail"
#: how long to collect retained sensor statuses after subscribing
LISTEN_S = 1.5
#: the monitor counts as storing data when an ``activity`` point is at most this old
MONITOR_FRESH_S = 600.0
#: a sensor battery at or below this (percent) gets a warning
LOW_BATTERY_PCT = 20.0
BLUETOOTH_ROOT = "/sys/class/bluetooth"

_FIX_COLLECT = "start `legwatch collect` on the Bluetooth host (or its systemd service) before bed"


@dataclass(frozen=True)
class Check:
    """One row: ``name``, ``state`` (ok/warn/fail), a one-line ``detail``, ``fix`` ("" when ok)."""

    name: str
    state: str
    detail: str
    fix: str = ""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _when(ts: float, now: float) -> str:
    """``2026-12-01 22:41 CET (12 min ago)`` in the configured time zone."""
    stamp = localtime.local(ts).strftime("%Y-%m-%d %H:%M %Z")
    ago = now - ts
    if ago < -60:
        rel = "in the future: check the clocks"
    elif ago < 90:
        rel = "just now"
    elif ago < 5400:
        rel = f"{ago / 60:.0f} min ago"
    elif ago < 2 * 86400:
        rel = f"{ago / 3600:.0f} h ago"
    else:
        rel = f"{ago / 86400:.0f} days ago"
    return f"{stamp} ({rel})"


# --- the row builders ------------------------------------------------------------------------


def config_check(cfg: Config) -> Check:
    """Where the configuration came from, whose legs, and the data directory (created if missing)."""
    from legwatch.contracts.config import ConfigError

    where = "defaults and LEGWATCH_* variables" if cfg.source == "defaults" else cfg.source
    try:
        folder = cfg.make_dir()
    except ConfigError as exc:
        return Check(
            "configuration",
            FAIL,
            _one_line(exc),
            "point data_dir (LEGWATCH_DATA_DIR or --data-dir) at a folder this user can write",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check(
            "configuration",
            FAIL,
            f"data_dir {folder} is not writable by this user",
            "fix its permissions, or point data_dir (LEGWATCH_DATA_DIR) elsewhere",
        )
    return Check(
        "configuration",
        OK,
        f"from {where}; subject {cfg['subject']!r}; data in {folder}; times in {localtime.label()}",
    )


def broker_check(
    cfg: Config,
    *,
    listen_s: float = LISTEN_S,
    connection_factory: Callable[..., Any] | None = None,
) -> tuple[Check, dict[str, Status | str] | None]:
    """Connect once (non-persistent, a random client id), collect the retained statuses on
    ``<prefix>/+/status`` for ``listen_s``, close. Returns the row and, when connected, each
    sensor's status (or the reason it could not be read); ``None`` when not connected."""
    url = cfg["mqtt.url"]
    if not url:
        # the collector and the monitor both need one: nothing reaches the store overnight without it
        return Check(
            "broker", FAIL, "no broker configured: set LEGWATCH_MQTT_URL", "set LEGWATCH_MQTT_URL or mqtt.url"
        ), None
    from legwatch.contracts import status as status_msg
    from legwatch.contracts import topics
    from legwatch.contracts.config import ConfigError, redact_url
    from legwatch.mqtt.connection import BrokerUnavailable, Connection

    prefix = cfg["mqtt.topic_prefix"]
    seen: dict[str, Status | str] = {}
    lock = threading.Lock()

    def on_message(msg: Any) -> None:
        try:
            where = topics.parse(prefix, msg.topic)
        except UnicodeDecodeError:
            return
        if where is None or where[1] != "status" or not msg.payload:  # empty: a cleared status
            return
        try:
            value: Status | str = status_msg.parse(msg.payload)
        except status_msg.StatusError as exc:
            value = str(exc)
        with lock:
            seen[where[0]] = value

    factory = connection_factory or Connection
    fix = "start the broker (docker compose up -d mosquitto), or correct mqtt.url and its user and password"
    try:
        conn = factory(
            url,
            client_id=f"legwatch-status-{secrets.token_hex(4)}",
            persistent=False,
            protocol=cfg["mqtt.protocol"],
            ca_file=cfg["mqtt.ca_file"],
            on_message=on_message,
        )
        conn.subscribe([f"{prefix}/+/status"])  # sent with the connect: retained statuses follow
        started = time.monotonic()
        conn.connect(timeout=5)
    except ConfigError as exc:
        return Check("broker", FAIL, _one_line(exc), "correct mqtt.ca_file"), None
    except BrokerUnavailable as exc:
        return Check("broker", FAIL, _one_line(exc), fix), None
    try:
        conn.wait_subscribed(5)
        time.sleep(max(0.0, listen_s - (time.monotonic() - started)))
    finally:
        conn.close()
    with lock:
        found = dict(seen)
    return Check("broker", OK, f"connected to {redact_url(url)} (topics under {prefix}/)"), found


def store_check(cfg: Config) -> tuple[Check, Store | None]:
    """Open the configured store; InfluxDB must answer (``ping``; the database is created if it
    can be), a SQLite file must open and be writable. Returns the row and the open store (or None)."""
    from legwatch.contracts.config import ConfigError
    from legwatch.storage import StoreError, open_store

    influx = bool(cfg["influx.url"])
    fix = (
        "start InfluxDB, or correct influx.url, influx.db and the token or user"
        if influx
        else "point data_dir (LEGWATCH_DATA_DIR) at a folder this user can write"
    )
    try:
        store = open_store(cfg)  # InfluxDB: CREATE DATABASE (refused harmlessly on 2.x/3.x)
    except (StoreError, ConfigError, OSError) as exc:
        return Check("store", FAIL, _one_line(exc), fix), None
    try:
        store.ping()
        if influx:
            store.query("night", start=time.time() - 60)  # reading works (auth, database or bucket)
            detail = f"InfluxDB {getattr(store, 'url', '')} (db {cfg['influx.db']}) answers"
        else:
            path = Path(getattr(store, "path", ""))
            if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                store.close()
                return Check("store", FAIL, f"SQLite store {path} is not writable by this user", fix), None
            detail = f"SQLite {path} opens and is writable"
    except StoreError as exc:
        store.close()
        return Check("store", FAIL, _one_line(exc), fix), None
    return Check("store", OK, detail), store


def bluetooth_check(root: str | os.PathLike[str] = BLUETOOTH_ROOT, *, platform: str = sys.platform) -> Check:
    """An ``hci*`` adapter in sysfs (and whether rfkill blocks it); without one only a warning."""
    elsewhere = "fine if the collector runs on another machine; else plug in or enable an adapter"
    if not platform.startswith("linux"):
        return Check("bluetooth", WARN, f"cannot tell on {platform} (only Linux is checked)", elsewhere)
    base = Path(root)
    try:
        adapters = sorted(p for p in base.iterdir() if p.name.startswith("hci") and ":" not in p.name)
    except OSError:
        adapters = []
    if not adapters:
        return Check("bluetooth", WARN, f"no Bluetooth adapter on this machine (nothing in {base})", elsewhere)
    free = [a.name for a in adapters if not _rfkill_blocked(a)]
    names = ", ".join(a.name for a in adapters)
    if not free:
        return Check("bluetooth", WARN, f"adapter {names} blocked by rfkill", "rfkill unblock bluetooth")
    return Check("bluetooth", OK, f"adapter {', '.join(free)}")


def _rfkill_blocked(adapter: Path) -> bool:
    for switch in adapter.glob("rfkill*"):
        for name in ("soft", "hard"):
            try:
                if (switch / name).read_text().strip() == "1":
                    return True
            except OSError:
                continue
    return False


def _battery(fields: Mapping[str, Any]) -> float | None:
    for key in ("battery_pct", "battery"):
        value = fields.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def sensor_checks(
    statuses: Mapping[str, Status | str] | None,
    nights: Iterable[Point] | None,
    now: float,
    *,
    broker_note: str = "",
) -> list[Check]:
    """One row per sensor seen on the broker or in the store's ``night`` measurement.

    ``statuses``: sensor -> parsed retained status, or why it could not be read; ``None`` when the
    broker was not asked (``broker_note`` says why). ``nights``: the store's night points (``None``:
    the store was not available).
    """
    from legwatch.summary import night_date

    last_night: dict[str, Point] = {}
    for p in nights or ():
        sensor = p.tags.get("sensor", "")
        if sensor and (sensor not in last_night or p.time > last_night[sensor].time):
            last_night[sensor] = p
    known = dict(statuses or {})
    rows = []
    for sensor in sorted(set(known) | set(last_night)):
        parts: list[str] = []
        state, fix = OK, ""
        st = known.get(sensor)
        if st is None:
            if statuses is None:
                parts.append(f"status not checked ({broker_note})" if broker_note else "status not checked")
            else:
                parts.append("no status on the broker")
            state, fix = WARN, _FIX_COLLECT
        elif isinstance(st, str):
            parts.append(f"retained status unreadable: {st}")
            state, fix = WARN, _FIX_COLLECT
        else:
            when = f" since {_when(st.time, now)}" if st.time is not None else ""
            if st.online:
                parts.append(f"online{when}")
            elif st.is_will:
                reason = st.fields.get("reason")
                parts.append("offline: connection lost" + (f" ({reason})" if isinstance(reason, str) else "") + when)
                state, fix = WARN, _FIX_COLLECT
            else:
                parts.append(f"{st.state}{when}")
                state, fix = WARN, _FIX_COLLECT
            battery = _battery(st.fields)
            if battery is not None:
                parts.append(f"battery {battery:.0f}%")
                if battery <= LOW_BATTERY_PCT:
                    state = WARN
                    fix = "charge the sensor" + ("; then " + fix if fix else "")
        night = last_night.get(sensor)
        if night is not None:
            parts.append(f"last night stored: {night_date(night.time)}")
        elif nights is not None:
            parts.append("no night stored yet")
        rows.append(Check(f"sensor {sensor}", state, "; ".join(parts), fix))
    if not rows:
        if statuses is None:
            detail = f"not checked: {broker_note}" if broker_note else "not checked"
            fix = "configure a broker (LEGWATCH_MQTT_URL)" if "no broker" in broker_note else "fix the broker first"
        else:
            detail = "no sensor status retained on the broker and no night stored"
            fix = _FIX_COLLECT
        rows.append(Check("sensors", WARN, detail, fix))
    return rows


def monitor_check(activity: Sequence[Point] | None, now: float) -> Check:
    """The monitor publishes no status of its own: its sign of life is recent ``activity`` points."""
    fix = "start `legwatch monitor` (or `docker compose up -d`)"
    if activity is None:
        return Check("monitor", WARN, "not checked: the store is not available", fix)
    newest = max((p.time for p in activity), default=None)
    if newest is None:
        minutes = f"{MONITOR_FRESH_S / 60:.0f}"
        return Check(
            "monitor", WARN, f"no data stored in the last {minutes} minutes (is `legwatch monitor` running?)", fix
        )
    return Check("monitor", OK, f"monitor storing data: newest activity {_when(newest, now)}")


# --- running them ----------------------------------------------------------------------------


def run(
    cfg: Config, *, listen_s: float = LISTEN_S, bluetooth_root: str | os.PathLike[str] = BLUETOOTH_ROOT
) -> list[Check]:
    """Every check against the real broker, store and machine."""
    checks = [config_check(cfg)]
    broker, statuses = broker_check(cfg, listen_s=listen_s)
    checks.append(broker)
    if checks[0].state == FAIL and not cfg["influx.url"]:
        store_row, store = Check("store", FAIL, "not checked: the data directory is not usable", checks[0].fix), None
    else:
        store_row, store = store_check(cfg)
    checks.append(store_row)
    checks.append(bluetooth_check(bluetooth_root))
    now = time.time()
    nights: list[Point] | None = None
    activity: list[Point] | None = None
    if store is not None:
        from legwatch.storage import StoreError

        try:
            nights = store.query("night")
            activity = store.query("activity", start=now - MONITOR_FRESH_S)
        except StoreError as exc:
            checks[2] = Check("store", FAIL, _one_line(exc), "check the store's permissions and health")
        finally:
            store.close()
    note = "" if statuses is not None else ("no broker configured" if not cfg["mqtt.url"] else "broker unreachable")
    checks.extend(sensor_checks(statuses, nights, now, broker_note=note))
    checks.append(monitor_check(activity, now))
    return checks


def ready(checks: Iterable[Check]) -> bool:
    """No check failed."""
    return all(c.state != FAIL for c in checks)


def report(checks: Sequence[Check]) -> dict[str, Any]:
    """``{"ready": bool, "checks": [{"name", "state", "detail", "fix"}, ...]}``."""
    return {"ready": ready(checks), "checks": [asdict(c) for c in checks]}


_STYLE = {OK: "green", WARN: "yellow", FAIL: "bold red"}


def render_text(checks: Sequence[Check], console: Any, *, width: int = 80) -> None:
    """A table at most ``width`` columns wide (the fix under each detail), then one verdict line."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="legwatch status", title_justify="left", show_lines=False, expand=False)
    table.add_column("check", no_wrap=False, max_width=22)
    table.add_column("state", no_wrap=True)
    table.add_column("detail (and what to do)", overflow="fold")
    for c in checks:
        detail = escape(c.detail)
        if c.fix and c.state != OK:
            detail += f"\n[dim]→ {escape(c.fix)}[/dim]"
        table.add_row(escape(c.name), f"[{_STYLE.get(c.state, '')}]{c.state}[/]", detail)
    w = min(console.width, width)
    console.print(table, width=w)
    failed = [c.name for c in checks if c.state == FAIL]
    warned = sum(1 for c in checks if c.state == WARN)
    if failed:
        console.print(f"[bold red]Not ready:[/] {', '.join(failed)} failed.", width=w)
    else:
        extra = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
        console.print(f"[green]Ready for tonight[/]{extra}.", width=w)
