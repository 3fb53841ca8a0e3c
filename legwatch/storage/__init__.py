"""Storage behind one small interface (``Store``) with two real implementations.

- ``influx.InfluxStore``: InfluxDB over the v1 HTTP API (``/write`` line protocol, ``/query`` InfluxQL),
  served by InfluxDB 1.x natively, 2.x through its compatibility endpoints, 3 Core natively.
- ``sqlite.SqliteStore``: an embedded SQLite file with the same point model, the default when no
  InfluxDB is configured.

``open_store`` picks one from configuration. Imports only the standard library and
``legwatch.storage`` itself (``platformdirs`` only when the default SQLite path is needed).
"""

from __future__ import annotations

import os
from pathlib import Path

from legwatch.storage.base import Point, Store, StoreError, StoreUnavailable, tags_match

__all__ = ["Point", "Store", "StoreError", "StoreUnavailable", "default_sqlite_path", "open_store", "tags_match"]


def default_sqlite_path() -> Path:
    """``legwatch.sqlite`` in the user's data directory."""
    try:
        from platformdirs import user_data_dir
    except ImportError:  # pragma: no cover - platformdirs is a declared dependency
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "legwatch"
    else:
        base = Path(user_data_dir("legwatch", appauthor=False))
    return base / "legwatch.sqlite"


def open_store(
    influx_url: str | None = None,
    influx_db: str = "legwatch",
    influx_token: str | None = None,
    sqlite_path: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 10.0,
) -> Store:
    """An ``InfluxStore`` when ``influx_url`` is given, else a ``SqliteStore`` (default path if None).

    Credentials may sit in the URL (``http://user:pass@host:8086``); they are used for Basic auth and
    stripped from the URL the store shows in messages. A token wins over URL credentials.
    """
    if influx_url:
        from legwatch.storage.influx import InfluxStore

        return InfluxStore(influx_url, influx_db, token=influx_token or None, timeout=timeout)
    from legwatch.storage.sqlite import SqliteStore

    return SqliteStore(default_sqlite_path() if sqlite_path is None else sqlite_path)
