"""Where the monitor's checkpoints live on disk, and in which format (no pickle).

- ``state.json``: the global state (the nights that ended and, for every live stream, where its
  replay starts), plain JSON with ``format`` and ``version``.
- ``streams/s-<sensor>.npz``: one stream each, written by ``legwatch.monitor.state_file`` (numpy
  arrays plus a JSON description, read with ``allow_pickle=False``): the detector's state as data
  plus the stream's bookkeeping (``sensor``, ``journal_from``, ...).

Each file is replaced atomically (temp file, fsync, rename). A file of another version, damaged or
foreign, is refused with one log line; the stream is then rebuilt from what the journal holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from legwatch.files import fsync_dir, write_atomic
from legwatch.monitor import state_file

log = logging.getLogger("legwatch.monitor")
#: The version of both files; another one is refused (and the journal rebuilds the streams).
VERSION = 3
FORMAT = "legwatch-monitor-state"


def stream_file_name(sensor: str) -> str:
    """A file name for ``sensor`` (any MQTT topic level): letters, digits, ``-`` and ``_`` as they
    are, every other byte as ``%XX``; very long names are shortened with a hash."""
    enc = "".join(
        c if c.isascii() and (c.isalnum() or c in "-_") else "".join(f"%{b:02X}" for b in c.encode("utf-8", "replace"))
        for c in sensor
    )
    if len(enc) > 160:
        enc = enc[:100] + "~" + hashlib.sha256(sensor.encode("utf-8", "replace")).hexdigest()[:40]
    return f"s-{enc}.npz"


def encode_state(state: dict[str, Any]) -> bytes:
    """The global state as the bytes of ``state.json``."""
    return json.dumps({"format": FORMAT, "version": VERSION, **state}, allow_nan=False).encode()


def encode_stream(record: dict[str, Any]) -> bytes:
    """One stream's checkpoint (plain data: see ``state_file``) as the bytes of its file."""
    return state_file.dumps(record, kind="stream", version=VERSION)


class Checkpoints:
    """The global file and one file per stream, each replaced atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.streams_folder = folder / "streams"
        self.streams_folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "state.json"
        for old in (folder / "state.pkl", folder / "streams.pkl", *self.streams_folder.glob("s-*.pkl")):
            if old.exists():  # written by a version that pickled its state: never unpickled
                log.error("ignoring %s: a checkpoint of an earlier version; the journal rebuilds its streams", old)
                old.unlink(missing_ok=True)

    # -- the global file ---------------------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        """The global state; None when there is none or it cannot be used (which is logged)."""
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("checkpoint %s cannot be read (%s); starting from the journal alone", self.path, exc)
            return None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            log.error("checkpoint %s cannot be read (not a legwatch checkpoint); starting from the journal", self.path)
            return None
        if doc.get("version") != VERSION:
            log.error(
                "checkpoint %s is of version %r, this monitor reads version %d; starting from the journal alone",
                self.path,
                doc.get("version"),
                VERSION,
            )
            return None
        return doc

    def save_bytes(self, blob: bytes) -> None:
        """Store an encoded global state (``encode_state``)."""
        write_atomic(self.path, blob)
        fsync_dir(self.folder)

    # -- one file per stream -----------------------------------------------------------------
    def stream_path(self, sensor: str) -> Path:
        return self.streams_folder / stream_file_name(sensor)

    def save_stream_bytes(self, sensor: str, blob: bytes) -> None:
        """Store one stream's encoded checkpoint (``encode_stream``); durable once ``sync_streams`` returns."""
        write_atomic(self.stream_path(sensor), blob)

    def sync_streams(self) -> None:
        fsync_dir(self.streams_folder)

    def load_streams(self) -> dict[str, dict[str, Any]]:
        """sensor -> its stream checkpoint, for every file that can be read (the others are reported)."""
        out: dict[str, dict[str, Any]] = {}
        for p in sorted(self.streams_folder.glob("s-*.npz")):
            try:
                rec = state_file.loads(p.read_bytes(), kind="stream", version=VERSION)
            except (OSError, state_file.StateFileError) as exc:
                log.error("stream checkpoint %s cannot be read (%s); its stream is rebuilt from the journal", p, exc)
                continue
            if (
                not isinstance(rec.get("sensor"), str)
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
            if p.name not in keep and (p.name.endswith(".npz") or p.name.endswith(".tmp")):
                p.unlink(missing_ok=True)
