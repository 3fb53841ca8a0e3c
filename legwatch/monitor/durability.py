"""What makes the monitor lose nothing: a message journal, stream checkpoints and a store outbox.

- ``Journal``: every state-changing MQTT message is appended (and fsynced) here *before* it is
  acknowledged to the broker. A crash after the acknowledgement therefore loses nothing: on restart
  the journal is replayed on top of the checkpoints. It is cut into numbered segments; the monitor
  starts a new one at every checkpoint tick, so a checkpoint can say "everything of this stream in
  segments below n is in here".
- ``Checkpoints``: the detector state, one file per stream (``streams/s-<sensor>.pkl``, holding the
  segment its replay starts at) plus one small global file (``state.pkl``: the nights that ended and,
  for every live stream, where its replay starts). Each file is replaced atomically (temp file,
  fsync, rename). The monitor writes a few stream files at a time, oldest first, so that each is
  rewritten at least every ``monitor.checkpoint_s``; segments below the oldest start still needed
  are dropped once the files that no longer need them are durable.
- ``Outbox``: results the store could not take (InfluxDB down) wait on disk, bounded, in order,
  and are written when it returns, with backoff. Writes are idempotent, so a result written twice
  is stored once.

Standard library only (plus pickle of the detector's own objects).
"""

from __future__ import annotations

import contextlib
import hashlib
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
        #: records appended to the current segment since it was opened
        self.appended = 0

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
        self.appended += len(records)

    def rotate(self) -> int:
        """Start a new segment; returns the number of the first segment still needed."""
        os.close(self._fd)
        self.segment += 1
        self._fd = self._open(self.segment)
        self.appended = 0
        _fsync_dir(self.folder)
        return self.segment

    def drop_before(self, segment: int) -> None:
        for n in self.segments():
            if n < segment:
                self._path(n).unlink(missing_ok=True)

    def replay(self, from_segment: int) -> Iterator[tuple[int, str, bytes]]:
        """(segment, topic, payload) of every record in the closed segments from ``from_segment`` on."""
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
                yield n, topic, data[pos + _REC.size + tlen : end]
                pos = end

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_atomic(path: Path, blob: bytes) -> None:
    """Replace ``path`` by ``blob``: temp file, fsync, rename (the caller fsyncs the folder)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load(path: Path, what: str) -> Any:
    """The unpickled file; None when it is missing or damaged (damage is reported)."""
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception as exc:  # unpickling raises almost anything on a damaged or foreign file
        log.error("%s %s cannot be read (%s); starting from the journal alone", what, path, exc)
        return None


def stream_file_name(sensor: str) -> str:
    """A file name for ``sensor`` (any MQTT topic level): letters, digits, ``-`` and ``_`` as they
    are, every other byte as ``%XX``; very long names are shortened with a hash."""
    enc = "".join(
        c if c.isascii() and (c.isalnum() or c in "-_") else "".join(f"%{b:02X}" for b in c.encode("utf-8", "replace"))
        for c in sensor
    )
    if len(enc) > 160:
        enc = enc[:100] + "~" + hashlib.sha256(sensor.encode("utf-8", "replace")).hexdigest()[:40]
    return f"s-{enc}.pkl"


class Checkpoints:
    """The pickled state of the monitor: one global file and one file per stream, each replaced
    atomically.

    ``state.pkl`` (``load``/``save``): the global state. ``streams/s-<sensor>.pkl``
    (``load_streams``/``save_stream_bytes``): one stream each, a dict with at least ``sensor`` and
    ``journal_from``. ``streams.pkl`` is the single file of earlier versions (``load_legacy``).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.streams_folder = folder / "streams"
        self.streams_folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "state.pkl"
        self.legacy_path = folder / "streams.pkl"

    # -- the global file ---------------------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        state = _load(self.path, "checkpoint")
        if state is not None and not isinstance(state, dict):
            log.error("checkpoint %s cannot be read (not a state); starting from the journal alone", self.path)
            return None
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.save_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def save_bytes(self, blob: bytes) -> None:
        """Store an already pickled global state (pickling needs the streams; writing does not)."""
        _write_atomic(self.path, blob)
        _fsync_dir(self.folder)

    # -- one file per stream -----------------------------------------------------------------
    def stream_path(self, sensor: str) -> Path:
        return self.streams_folder / stream_file_name(sensor)

    def save_stream_bytes(self, sensor: str, blob: bytes) -> None:
        """Store one stream's pickled checkpoint; durable once ``sync_streams`` returns."""
        _write_atomic(self.stream_path(sensor), blob)

    def sync_streams(self) -> None:
        _fsync_dir(self.streams_folder)

    def load_streams(self) -> dict[str, dict[str, Any]]:
        """sensor -> its stream checkpoint, for every file that can be read (the others are reported)."""
        out: dict[str, dict[str, Any]] = {}
        for p in sorted(self.streams_folder.glob("s-*.pkl")):
            rec = _load(p, "stream checkpoint")
            if rec is None:
                continue
            if (
                not isinstance(rec, dict)
                or not isinstance(rec.get("sensor"), str)
                or not isinstance(rec.get("journal_from"), int)
                or self.stream_path(rec["sensor"]) != p
            ):
                log.error("stream checkpoint %s cannot be read (not a stream checkpoint); ignored", p)
                continue
            out[rec["sensor"]] = rec
        return out

    def remove_streams(self, sensors: Sequence[str]) -> None:
        for s in sensors:
            self.stream_path(s).unlink(missing_ok=True)

    def remove_streams_except(self, sensors: Sequence[str]) -> None:
        """Remove every stream file (and temp file) but those of ``sensors``."""
        keep = {stream_file_name(s) for s in sensors}
        for p in self.streams_folder.iterdir():
            if p.name not in keep and (p.name.endswith(".pkl") or p.name.endswith(".tmp")):
                p.unlink(missing_ok=True)

    # -- the single file of earlier versions ---------------------------------------------------
    def load_legacy(self) -> dict[str, Any] | None:
        state = _load(self.legacy_path, "checkpoint")
        return state if isinstance(state, dict) else None

    def remove_legacy(self) -> None:
        if self.legacy_path.exists():
            self.legacy_path.unlink(missing_ok=True)
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
