"""The monitor's message journal: every state-changing MQTT message is appended (and fsynced) here
*before* it is acknowledged to the broker, so a crash after the acknowledgement loses nothing: on
restart the journal is replayed on top of the checkpoints. It is cut into numbered segments; the
monitor starts a new one at every checkpoint tick, so a checkpoint can say "everything of this
stream in segments below n is in here". Standard library only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from legwatch.files import fsync_dir

log = logging.getLogger("legwatch.monitor")
_REC = struct.Struct("<IH")  # payload length, topic length


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
        fsync_dir(self.folder)
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
