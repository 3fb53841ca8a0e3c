"""What makes the monitor lose nothing: a message journal, stream checkpoints and a store outbox.

- ``Journal``: every state-changing MQTT message is appended (and fsynced) here *before* it is
  acknowledged to the broker. A crash after the acknowledgement therefore loses nothing: on restart
  the journal is replayed on top of the last checkpoint.
- ``Checkpoints``: the detector state of every stream, pickled atomically (temp file, fsync,
  rename) every ``interval`` seconds; the journal is then started afresh. Resuming needs the
  checkpoint plus the journal written since, not the whole night.
- ``Outbox``: results the store could not take (InfluxDB down) wait on disk, bounded, in order,
  and are written when it returns, with backoff. Writes are idempotent, so a result written twice
  is stored once.

Standard library only (plus pickle of the detector's own objects).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import sqlite3
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from legwatch.storage import Point

log = logging.getLogger("legwatch.monitor")
_REC = struct.Struct("<IH")  # payload length, topic length


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Journal:
    """Append-only log of (topic, payload) records, in numbered segments."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        segs = self.segments()
        self.segment = (segs[-1] + 1) if segs else 1
        self._fd = self._open(self.segment)

    def _path(self, n: int) -> Path:
        return self.folder / f"journal-{n:08d}.log"

    def segments(self) -> list[int]:
        out = []
        for p in self.folder.glob("journal-*.log"):
            try:
                out.append(int(p.stem.split("-")[1]))
            except (IndexError, ValueError):
                continue
        return sorted(out)

    def _open(self, n: int) -> int:
        return os.open(self._path(n), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, records: Sequence[tuple[str, bytes]]) -> None:
        """Append and fsync, all or nothing: a failed append (disk full) leaves the segment as it
        was, so the caller may retry without leaving a torn record in the middle."""
        if not records:
            return
        buf = bytearray()
        for topic, payload in records:
            t = topic.encode()
            buf += _REC.pack(len(payload), len(t)) + t + payload
        size = os.fstat(self._fd).st_size
        try:
            view = memoryview(buf)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise

    def rotate(self) -> int:
        """Start a new segment; returns the number of the first segment still needed."""
        os.close(self._fd)
        self.segment += 1
        self._fd = self._open(self.segment)
        _fsync_dir(self.folder)
        return self.segment

    def drop_before(self, segment: int) -> None:
        for n in self.segments():
            if n < segment:
                self._path(n).unlink(missing_ok=True)

    def replay(self, from_segment: int) -> Iterator[tuple[str, bytes]]:
        for n in self.segments():
            if n < from_segment or n == self.segment:
                continue
            data = self._path(n).read_bytes()
            pos = 0
            while pos + _REC.size <= len(data):
                plen, tlen = _REC.unpack_from(data, pos)
                end = pos + _REC.size + tlen + plen
                if end > len(data):
                    log.warning(
                        "journal segment %d ends in a torn record; ignoring its last %d bytes", n, len(data) - pos
                    )
                    break
                topic = data[pos + _REC.size : pos + _REC.size + tlen].decode("utf-8", "replace")
                yield topic, data[pos + _REC.size + tlen : end]
                pos = end

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Checkpoints:
    """The latest pickled state, replaced atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "streams.pkl"

    def load(self) -> dict[str, Any] | None:
        try:
            with open(self.path, "rb") as fh:
                return pickle.load(fh)
        except FileNotFoundError:
            return None
        except Exception as exc:  # unpickling raises almost anything on a damaged or foreign file
            log.error("checkpoint %s cannot be read (%s); starting from the journal alone", self.path, exc)
            return None

    def save(self, state: dict[str, Any]) -> None:
        self.save_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def save_bytes(self, blob: bytes) -> None:
        """Store an already pickled state (pickling needs the streams still; writing does not)."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.folder)


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
