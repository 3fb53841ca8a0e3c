"""``SqliteStore``: the embedded store used when no InfluxDB is configured.

Same point model and the same rules as ``InfluxStore`` (both validate through
``lineprotocol.normalise``): a point is identified by (measurement, tag set, time in ms); writing an
existing identity merges the fields, new values winning, exactly as InfluxDB does. One transaction
per ``write()`` call, WAL journal, safe to share between threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from legwatch.storage.base import FieldValue, Point, StoreError, StoreUnavailable, check_delete_tags, tags_match
from legwatch.storage.lineprotocol import normalise, point_sort_key, to_ms

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    tagset TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (measurement, tagset, time_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (measurement, time_ms);
"""

_UPSERT = """
INSERT INTO points (measurement, tagset, time_ms, fields) VALUES (?, ?, ?, ?)
ON CONFLICT (measurement, tagset, time_ms) DO UPDATE SET fields = legwatch_merge(fields, excluded.fields)
"""


def _dumps(value: Mapping[str, object]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _merge(old: str, new: str) -> str:
    """Union of two field sets, the new values winning (InfluxDB's duplicate-point rule)."""
    fields = json.loads(old)
    fields.update(json.loads(new))
    return _dumps(fields)


def _error(exc: sqlite3.Error, path: str) -> StoreError:
    message = f"SQLite store {path}: {' '.join(str(exc).split())}"
    # Locked, busy, disk full, I/O: the store is temporarily unusable, retrying may work.
    return StoreUnavailable(message) if isinstance(exc, sqlite3.OperationalError) else StoreError(message)


class SqliteStore:
    """A ``Store`` in one SQLite file (``":memory:"`` for a private in-memory store)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        in_memory = self.path in ("", ":memory:") or self.path.startswith("file:")
        if not in_memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path,
                timeout=30.0,
                isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE … COMMIT)
                check_same_thread=False,
                uri=self.path.startswith("file:"),
            )
            self._conn.create_function("legwatch_merge", 2, _merge, deterministic=True)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise _error(exc, self.path) from None

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"SQLite store {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on any error) under the
        lock; a SQLite error leaves as a ``StoreError``."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _error(exc, self.path) from None

    def write(self, points: Sequence[Point]) -> None:
        """Store points in one transaction (all validated first: a bad point writes nothing)."""
        rows = []
        for point in points:
            tags, fields = normalise(point)
            rows.append((point.measurement, _dumps(tags), point.time_ms, _dumps(fields)))
        if not rows:
            return
        with self._transaction() as conn:
            conn.executemany(_UPSERT, rows)

    def query(
        self,
        measurement: str,
        *,
        start: float | None = None,
        end: float | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        """Points of one measurement with start <= time < end whose tags include ``tags``, by time.

        A tag filter with an empty value matches points without that tag.
        """
        sql = "SELECT tagset, time_ms, fields FROM points WHERE measurement = ?"
        args: list[object] = [measurement]
        if start is not None:
            sql += " AND time_ms >= ?"
            args.append(to_ms(start))
        if end is not None:
            sql += " AND time_ms < ?"
            args.append(to_ms(end))
        wanted = dict(tags or {})
        with self._lock:
            try:
                rows = self._connection().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise _error(exc, self.path) from None
        points = []
        for tagset, time_ms, fields_json in rows:
            point_tags: dict[str, str] = json.loads(tagset)
            if tags_match(point_tags, wanted):
                fields: dict[str, FieldValue] = json.loads(fields_json)
                points.append(Point(measurement, point_tags, fields, time_ms / 1000.0))
        points.sort(key=point_sort_key)
        return points

    def delete(
        self,
        measurement: str,
        *,
        start: float,
        end: float,
        tags: Mapping[str, str],
    ) -> None:
        """Remove the points of one measurement with start <= time < end whose tags include ``tags``,
        in one transaction."""
        wanted = check_delete_tags(tags)
        select = "SELECT tagset, time_ms FROM points WHERE measurement = ? AND time_ms >= ? AND time_ms < ?"
        args = (measurement, to_ms(start), to_ms(end))
        with self._transaction() as conn:
            keys = [
                (measurement, tagset, time_ms)
                for tagset, time_ms in conn.execute(select, args).fetchall()
                if tags_match(json.loads(tagset), wanted)
            ]
            conn.executemany("DELETE FROM points WHERE measurement = ? AND tagset = ? AND time_ms = ?", keys)

    def ping(self) -> None:
        with self._lock:
            if self._conn is None:
                raise StoreUnavailable(f"SQLite store {self.path} is closed")
            try:
                self._conn.execute("SELECT 1").fetchone()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite store {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
