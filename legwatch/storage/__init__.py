"""Storage behind one small interface (``Store``) with two real implementations.

- ``influx.InfluxStore``: InfluxDB over the v1 HTTP API (``/write`` line protocol, ``/query`` InfluxQL),
  served by InfluxDB 1.x natively, 2.x through its compatibility endpoints, 3 Core natively.
- ``sqlite.SqliteStore``: an embedded SQLite file with the same point model, the default when no
  InfluxDB is configured.
- ``schema``: detector results and habits as points of the InfluxDB schema, and back.

``open_store`` picks one from the configuration. May import ``legwatch.contracts`` and ``detector``
(the result types the schema maps), never the monitor or the application.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from legwatch.storage.base import Point, Store, StoreError, StoreUnavailable, tags_match

if TYPE_CHECKING:
    from legwatch.contracts.config import Config

__all__ = ["Point", "Store", "StoreError", "StoreUnavailable", "open_store", "tags_match"]
log = logging.getLogger("legwatch.storage")


def open_store(cfg: Config, *, tolerate_down: bool = False) -> Store:
    """The configured store: InfluxDB when ``influx.url`` is set, else the SQLite file in the data
    directory. ``tolerate_down``: an InfluxDB that is down now is fine (the monitor holds results
    until it returns); otherwise that is a one-line error (``StoreUnavailable``)."""
    if cfg["influx.url"]:
        from legwatch.storage.influx import InfluxStore

        store = InfluxStore(
            cfg["influx.url"],
            cfg["influx.db"],
            token=cfg["influx.token"] or None,
            username=cfg["influx.username"] or None,
            password=cfg["influx.password"] or None,
        )
        try:
            store.ensure_database()
        except StoreUnavailable as exc:
            if not tolerate_down:
                raise
            log.warning("InfluxDB is not reachable yet (%s); results are held until it is", exc)
        return store
    from legwatch.storage.sqlite import SqliteStore

    return SqliteStore(cfg.make_dir() / "legwatch.sqlite")
