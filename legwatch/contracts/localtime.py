"""The time zone every time a person reads is shown in (and local times they type are read in).

Configured by ``timezone`` (TOML) or ``LEGWATCH_TIMEZONE``: an IANA name such as ``Europe/Berlin``
or ``UTC``; empty (the default) means the system's own zone. The command line calls ``use`` once
with the configured name; every rendering then goes through ``local``/``now``/``label``, so the
summary, the habit log, correlate, detect, nights and status all agree, and each says which zone
its times are in.

Process-wide on purpose: one command, one person, one zone. ``use(None)`` (tests) returns to the
system zone.
"""

from __future__ import annotations

import os
import zoneinfo
from datetime import datetime, tzinfo

_ZONE: tzinfo | None = None  # None: the system's zone (whatever ``astimezone()`` gives)
_NAME = ""


class TimeZoneError(ValueError):
    """An unknown time zone name (one-line message)."""


def parse_zone(name: str) -> tzinfo | None:
    """The zone named ``name`` (None for "" = the system's); ``TimeZoneError`` when it is unknown."""
    name = name.strip()
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        raise TimeZoneError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin, America/New_York or UTC"
        ) from None


def use(name: str | None) -> None:
    """Show and read times in zone ``name`` from now on ("" or None: the system's zone)."""
    global _ZONE, _NAME
    _ZONE = parse_zone(name or "")
    _NAME = (name or "").strip()


def zone() -> tzinfo:
    """The zone in use (the system's, as a fixed tzinfo of now, when none is configured)."""
    return _ZONE if _ZONE is not None else datetime.now().astimezone().tzinfo  # type: ignore[return-value]


def local(ts: float) -> datetime:
    """Unix seconds as an aware datetime in the zone in use."""
    return datetime.fromtimestamp(ts, _ZONE) if _ZONE is not None else datetime.fromtimestamp(ts).astimezone()


def now() -> datetime:
    """Now, aware, in the zone in use."""
    return datetime.now(_ZONE) if _ZONE is not None else datetime.now().astimezone()


def in_zone(when: datetime | None = None) -> datetime:
    """``when`` (default now) as an aware datetime in the zone in use; a naive one is read there."""
    if when is None:
        return now()
    if when.tzinfo is None:
        return localize(when)
    return when.astimezone(zone())


def localize(naive: datetime) -> datetime:
    """A naive wall-clock datetime read in the zone in use."""
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=_ZONE) if _ZONE is not None else naive.astimezone()


def _system_name() -> str:
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and "/" in tz and not tz.startswith("/"):
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return ""
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else ""


def name() -> str:
    """The IANA name in use (the configured one, else the system's when it can be told), or ""."""
    return _NAME or _system_name()


def label(ts: float | None = None) -> str:
    """How the zone is shown next to times: ``Europe/Berlin (CET, UTC+01:00)``, ``UTC`` (at ``ts``,
    default now: the abbreviation and offset change with daylight saving time)."""
    d = local(ts) if ts is not None else now()
    abbr = d.strftime("%Z")
    off = d.strftime("%z")
    offset = f"UTC{off[:3]}:{off[3:]}" if off else ""
    iana = name()
    if iana in ("UTC", "Etc/UTC", "Etc/UCT", "Universal", "Zulu") and off == "+0000":
        return "UTC"
    parts = [p for p in (abbr if abbr and not abbr.startswith(("+", "-")) else "", offset) if p]
    if iana:
        return f"{iana} ({', '.join(parts)})" if parts else iana
    return ", ".join(parts) or "local time"


def short(ts: float | None = None) -> str:
    """The zone in a few characters for table headers: ``CET``, ``UTC``, ``UTC+05:30``."""
    d = local(ts) if ts is not None else now()
    abbr = d.strftime("%Z")
    if abbr and not abbr.startswith(("+", "-")):
        return abbr
    off = d.strftime("%z")
    return f"UTC{off[:3]}:{off[3:]}" if off else "local"
