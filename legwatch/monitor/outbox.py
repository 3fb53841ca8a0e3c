"""The monitor's outbox: results the store could not take (InfluxDB down) wait on disk, bounded, in
order, in an SQLite file, and are written when it returns (``delivery.Delivery`` drains it). Writes
are idempotent, so a result written twice is stored once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from legwatch.storage import Point

log = logging.getLogger("legwatch.monitor")


def _encode_points(points: Sequence[Point]) -> str:
    return json.dumps([[p.measurement, dict(p.tags), dict(p.fields), p.time_ms] for p in points])


def _decode_points(text: str) -> list[Point]:
    return [Point(m, tags, fields, ms / 1000.0) for m, tags, fields, ms in json.loads(text)]


class Outbox:
    """Points waiting for the store, in an SQLite file, oldest first, bounded in bytes."""

    def __init__(self, path: Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, n INTEGER, body TEXT)")
        row = self.db.execute("SELECT COUNT(*), COALESCE(SUM(n), 0), COALESCE(SUM(LENGTH(body)), 0) FROM outbox")
        self.batches, self.points, self.bytes = row.fetchone()

    def __len__(self) -> int:
        return self.batches

    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def put(self, points: Sequence[Point]) -> None:
        body = _encode_points(points)
        with self.lock:
            self.db.execute("INSERT INTO outbox (n, body) VALUES (?, ?)", (len(points), body))
            self.batches += 1
            self.points += len(points)
            self.bytes += len(body)

    def peek(self, limit: int = 50) -> list[tuple[int, list[Point]]]:
        with self.lock:
            rows = self.db.execute("SELECT id, body FROM outbox ORDER BY id LIMIT ?", (limit,)).fetchall()
        out = []
        for i, b in rows:
            try:
                out.append((i, _decode_points(b)))
            except (ValueError, TypeError) as exc:  # a damaged row must not block the ones behind it
                log.error("outbox row %d cannot be read (%s); dropped", i, exc)
                self.remove([i])
        return out

    def remove(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self.lock:
            marks = ",".join("?" * len(ids))
            q = f"SELECT COUNT(*), SUM(n), SUM(LENGTH(body)) FROM outbox WHERE id IN ({marks})"
            b, n, size = (v or 0 for v in self.db.execute(q, list(ids)).fetchone())
            self.db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", list(ids))
            self.batches -= b
            self.points -= n
            self.bytes -= size

    def close(self) -> None:
        self.db.close()
