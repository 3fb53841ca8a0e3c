"""Shared fixtures: real Mosquitto and InfluxDB servers, and both stores.

- ``mosquitto`` / ``influxdb`` (session): one shared server each (``tests.services`` objects with
  ``host``, ``port``, ``url``, ``workdir``, ``log_path``). Do not stop them; use the fresh ones for that.
- ``fresh_mosquitto`` / ``fresh_influxdb`` (function): a private server a test may ``stop()``,
  ``kill()`` and ``restart()`` (same port, same data).
- ``influx_store`` (function): an ``InfluxStore`` on a new, uniquely named database on ``influxdb``.
- ``sqlite_store`` (function): a ``SqliteStore`` in ``tmp_path``.

A missing server binary skips the tests that need it, except when ``CI=true``: then they fail.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from legwatch.storage import StoreError
from legwatch.storage.influx import InfluxStore, quote_ident
from legwatch.storage.sqlite import SqliteStore
from services import InfluxService, MosquittoService  # tests/ is on sys.path (pytest rootdir conftest)


def _service(
    request: pytest.FixtureRequest, cls: type[MosquittoService] | type[InfluxService], workdir: Path
) -> MosquittoService | InfluxService:
    """Start ``cls`` in ``workdir``; it is killed at teardown even if the test (or the start) fails."""
    try:
        service = cls(workdir)
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(str(exc))
    request.addfinalizer(service.cleanup)
    service.start()
    return service


@pytest.fixture(scope="session")
def mosquitto(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> MosquittoService:
    """The shared Mosquitto broker (``url`` = ``mqtt://127.0.0.1:PORT``)."""
    service = _service(request, MosquittoService, tmp_path_factory.mktemp("mosquitto"))
    assert isinstance(service, MosquittoService)
    return service


@pytest.fixture(scope="session")
def influxdb(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> InfluxService:
    """The shared InfluxDB 1.x server (``url`` = ``http://127.0.0.1:PORT``)."""
    service = _service(request, InfluxService, tmp_path_factory.mktemp("influxdb"))
    assert isinstance(service, InfluxService)
    return service


@pytest.fixture
def fresh_mosquitto(request: pytest.FixtureRequest, tmp_path: Path) -> MosquittoService:
    """A private Mosquitto broker this test may stop, kill and restart."""
    service = _service(request, MosquittoService, tmp_path / "mosquitto")
    assert isinstance(service, MosquittoService)
    return service


@pytest.fixture
def fresh_influxdb(request: pytest.FixtureRequest, tmp_path: Path) -> InfluxService:
    """A private InfluxDB server this test may stop, kill and restart."""
    service = _service(request, InfluxService, tmp_path / "influxdb")
    assert isinstance(service, InfluxService)
    return service


@pytest.fixture
def influx_store(influxdb: InfluxService) -> Iterator[InfluxStore]:
    """An ``InfluxStore`` on a fresh database (dropped afterwards) on the shared server."""
    store = InfluxStore(influxdb.url, f"test_{uuid.uuid4().hex[:12]}", timeout=5.0)
    store.ensure_database()
    yield store
    with contextlib.suppress(StoreError):  # the server may have been taken down by the test
        store.raw_query(f"DROP DATABASE {quote_ident(store.db)}")
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A ``SqliteStore`` in a file under ``tmp_path``."""
    store = SqliteStore(tmp_path / "store" / "legwatch.sqlite")
    yield store
    store.close()
