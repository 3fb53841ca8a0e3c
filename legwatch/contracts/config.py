"""Configuration: a TOML file, overridden by LEGWATCH_* environment variables, overridden by flags.

Every key has a type and a default; an unknown key or a bad value raises ``ConfigError`` whose
message is one line naming the key and where it came from. Secrets (MQTT password, InfluxDB token)
are kept, but ``describe()`` and ``redact_url`` never show them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message is one line."""


def _default_data_dir() -> str:
    import platformdirs  # (imported when asked: `detect` opens no store, and it costs ~3 ms)

    return platformdirs.user_data_dir("legwatch", appauthor=False)


# key -> (type, default, environment variable or None, help)
KEYS: dict[str, tuple[type, Any, str | None, str]] = {
    "subject": (str, "me", "LEGWATCH_SUBJECT", "whose legs: the InfluxDB 'subject' tag"),
    "data_dir": (str, "", "LEGWATCH_DATA_DIR", "where the embedded SQLite store, checkpoints and spool live"),
    "timezone": (
        str,
        "",
        "LEGWATCH_TIMEZONE",
        "time zone of every time shown and typed, an IANA name (Europe/Berlin, UTC); empty: the system's",
    ),
    "mqtt.url": (str, "", "LEGWATCH_MQTT_URL", "broker, e.g. mqtt://user:pass@host:1883 or mqtts://…"),
    "mqtt.topic_prefix": (str, "legwatch", "LEGWATCH_MQTT_TOPIC_PREFIX", "root of every legwatch topic"),
    "mqtt.client_id": (str, "", "LEGWATCH_MQTT_CLIENT_ID", "fixed client id (default: legwatch-<role>)"),
    "mqtt.protocol": (int, 5, "LEGWATCH_MQTT_PROTOCOL", "MQTT protocol version: 5 or 3 (3.1.1)"),
    "mqtt.ca_file": (str, "", "LEGWATCH_MQTT_CA_FILE", "CA certificate for mqtts:// (default: system CAs)"),
    "influx.url": (str, "", "LEGWATCH_INFLUX_URL", "InfluxDB base URL; empty: embedded SQLite store"),
    "influx.db": (str, "legwatch", "LEGWATCH_INFLUX_DB", "database (1.x, 3 Core) or bucket (2.x)"),
    "influx.token": (str, "", "LEGWATCH_INFLUX_TOKEN", "API token (2.x, 3 Core); sent as 'Token …'"),
    "influx.username": (str, "", "LEGWATCH_INFLUX_USERNAME", "user for 1.x authentication"),
    "influx.password": (str, "", "LEGWATCH_INFLUX_PASSWORD", "password for 1.x authentication"),
    "monitor.sensors": (
        str,
        "+",
        "LEGWATCH_MONITOR_SENSORS",
        "sensor ids to follow, comma separated; + for all",
    ),
    "monitor.checkpoint_s": (
        float,
        10.0,
        "LEGWATCH_MONITOR_CHECKPOINT_S",
        "each stream's checkpointed state is at most this many seconds old (the journal is replayed from it)",
    ),
    "monitor.will_grace_s": (
        float,
        300.0,
        "LEGWATCH_MONITOR_WILL_GRACE_S",
        "a sensor whose publisher left with its last will: seconds without data before its night ends",
    ),
    "monitor.outbox_max_mb": (
        float,
        256.0,
        "LEGWATCH_MONITOR_OUTBOX_MAX_MB",
        "results held on disk while the store is down, at most (MB); when full, MQTT messages wait unacknowledged",
    ),
}

SECRET_KEYS = {"influx.token", "influx.password"}


def _coerce(key: str, raw: Any, origin: str) -> Any:
    typ = KEYS[key][0]
    if typ is float:
        try:
            if isinstance(raw, bool):
                raise TypeError
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: {key} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{origin}: {key} must be a number above 0, got {raw!r}")
        return value
    if typ is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{origin}: {key} must be a whole number, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{origin}: {key} must be a whole number, got {raw!r}") from None
    if not isinstance(raw, str):
        raise ConfigError(f"{origin}: {key} must be a string, got {type(raw).__name__}")
    return raw


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and name != "subjects":
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs.

    Works on the text, not on a parsed URL: a password with an unencoded ``/ # ? @`` (which a URL
    parser reads as path, fragment, query or host) is hidden too. Everything before the last ``@``
    is the user info; what follows its first ``:`` is the password.
    """
    if not url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    if ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


@dataclass
class Config:
    values: dict[str, Any]
    subjects: dict[str, str] = field(default_factory=dict)
    source: str = "defaults"

    def get(self, key: str) -> Any:
        return self.values[key]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"] or _default_data_dir())

    def make_dir(self, *parts: str) -> Path:
        """``data_dir`` (or a folder in it), created if missing; ``ConfigError`` in one line when it
        cannot be (a file in the way, no permission, a parent that does not exist and cannot)."""
        path = self.data_dir.joinpath(*parts)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(f"data_dir {self.data_dir}: a file is in the way of folder {path}") from None
        except OSError as exc:
            raise ConfigError(f"data_dir {self.data_dir}: cannot create {path}: {exc.strerror}") from None
        return path

    def subject_for(self, sensor: str) -> str:
        return self.subjects.get(sensor, self.values["subject"])

    def describe(self) -> dict[str, Any]:
        """The effective configuration with secrets hidden."""
        out = {}
        for k, v in self.values.items():
            if k in SECRET_KEYS and v:
                v = "***"
            elif k.endswith(".url"):
                v = redact_url(v)
            out[k] = v
        return out


def _misparsed_userinfo(key: str, url: str) -> None:
    """An ``@`` after the host means a password with an unencoded ``/ # ?``: refuse, never guess."""
    parts = urlsplit(url)
    if "@" in parts.path + parts.query + parts.fragment:
        raise ConfigError(
            f"{key}: cannot read {redact_url(url)!r}: percent-encode / # ? @ in the user name or password"
        )


def _validate(values: dict[str, Any]) -> None:
    url = values["mqtt.url"]
    if url:
        _misparsed_userinfo("mqtt.url", url)
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ConfigError(f"mqtt.url must look like mqtt://[user:pass@]host[:port], got {redact_url(url)!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ConfigError(f"mqtt.url has a bad port: {redact_url(url)!r}") from None
    url = values["influx.url"]
    if url:
        _misparsed_userinfo("influx.url", url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"influx.url must look like http://host:8086, got {redact_url(url)!r}")
    if values["mqtt.protocol"] not in (3, 5):
        raise ConfigError(f"mqtt.protocol must be 5 or 3, got {values['mqtt.protocol']!r}")
    if values["timezone"]:
        from legwatch.contracts.localtime import TimeZoneError, parse_zone

        try:
            parse_zone(values["timezone"])
        except TimeZoneError as exc:
            raise ConfigError(f"timezone: {exc}") from None
    if not values["subject"] or any(c in values["subject"] for c in "+#/"):
        raise ConfigError(f"subject must be a non-empty name without + # /, got {values['subject']!r}")


def load_config(
    path: str | os.PathLike | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Defaults < TOML file < environment < flags (``overrides``, None values ignored)."""
    env = os.environ if env is None else env
    values = {k: spec[1] for k, spec in KEYS.items()}
    subjects: dict[str, str] = {}
    source = "defaults"
    path = path or env.get("LEGWATCH_CONFIG") or None
    if path:
        import tomllib  # (only when there is a file to read)

        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
        source = str(p)
        for key, raw in _flatten(data).items():
            if key == "subjects":
                if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
                    raise ConfigError(f"{p}: [subjects] must map sensor ids to subject names")
                subjects = dict(raw)
                continue
            if key not in KEYS:
                raise ConfigError(f"{p}: unknown key '{key}' (known: {', '.join(sorted(KEYS))})")
            values[key] = _coerce(key, raw, str(p))
    env_names = {spec[2]: k for k, spec in KEYS.items() if spec[2]}
    for name, raw in env.items():
        if not name.startswith("LEGWATCH_") or name == "LEGWATCH_CONFIG":
            continue
        if name not in env_names:
            raise ConfigError(f"unknown environment variable {name} (known: {', '.join(sorted(env_names))})")
        values[env_names[name]] = _coerce(env_names[name], raw, f"environment {name}")
    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in KEYS:
            raise ConfigError(f"unknown setting '{key}'")
        values[key] = _coerce(key, raw, "command line")
    _validate(values)
    return Config(values=values, subjects=subjects, source=source)
