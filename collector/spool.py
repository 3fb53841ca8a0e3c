"""The on-disk spool: every sample batch is written here before it is published, and removed only
after the broker acknowledged it, so a broker outage or a collector restart loses nothing.

Layout of ``<data_dir>/spool/<sensor>/``:

* ``<seq>.lwb`` - one file per batch, named by its sequence number (20 digits, so names sort in
  sequence order), holding the exact binary v1 payload that is published. Written to a temporary
  name and renamed into place (``os.replace``), so a file is either complete or absent.
* ``state.json`` - ``{"next_seq", "reserved", "boot_id", "clean", "session"}``: the next sequence
  number, rewritten (renamed into place) after every batch so a restart continues the numbering;
  ``session`` names this numbering for the monitor's end-to-end acknowledgement
  (``legwatch.contracts.ack``), made once and kept.

A batch leaves the spool when its publisher says so (``ack``): when the monitor confirms storing
it, or, with no monitor acknowledging, when the broker took it.

Durability (fsync policy): by default batch files and the state are *not* fsynced one by one
(an SD card by the bed should not flush every second); the kernel writes them within its
writeback interval (~5-30 s). What is guaranteed:

* a process crash (or ``kill -9``) loses nothing: the page cache survives;
* a power cut may lose the batches of the last writeback interval that were not yet acknowledged,
  but never leaves a torn file, and never *reuses* a sequence number: every ``reserve`` batches the
  state is fsynced with ``reserved`` = a number beyond any sequence handed out until the next fsync,
  and after an unclean shutdown on a different boot (``/proc/sys/kernel/random/boot_id``) numbering
  resumes from ``reserved`` (a visible gap of at most ``reserve`` batches instead of duplicates);
* a clean shutdown (:meth:`Spool.close`) fsyncs the state, and numbering resumes exactly.

``fsync=True`` fsyncs every batch file and its directory before the batch is published.

The spool is bounded: when a new batch would take it over ``max_bytes`` (payload bytes; on disk
each file also occupies at least one filesystem block), the oldest batches are deleted first and a
warning says how many were dropped. Thread-safe: the collector appends from its event loop, the
publisher acknowledges from its own thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from legwatch.files import write_atomic

log = logging.getLogger("legwatch.collector.spool")

__all__ = ["Spool", "current_boot_id"]

SUFFIX = ".lwb"
STATE = "state.json"
_NAME = re.compile(r"^(\d{1,20})\.lwb$")


def current_boot_id() -> str:
    """This boot's id (Linux); empty where the kernel does not tell."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class Spool:
    """Batches waiting for the broker's acknowledgement, oldest first."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 64 * 1024 * 1024,
        fsync: bool = False,
        reserve: int = 64,
        boot_id: str | None = None,
        warn_interval_s: float = 30.0,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.fsync = fsync
        self.reserve = max(1, int(reserve))
        self.boot_id = current_boot_id() if boot_id is None else boot_id
        self.warn_interval_s = warn_interval_s
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}
        self.bytes = 0
        #: Batches deleted unsent because the spool was full, since this object was created.
        self.dropped = 0
        #: Largest number of batches held at once (for tests and the log).
        self.high_water = 0
        self._dropped_unreported = 0
        self._drop_range: tuple[int, int] | None = None
        self._last_warning = -1e9
        self._load()

    # -- startup ----------------------------------------------------------------------------------

    def _load(self) -> None:
        found: list[tuple[int, int]] = []
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            m = _NAME.match(path.name)
            if not m:
                continue
            size = path.stat().st_size
            if size == 0:  # cannot happen with rename-into-place, but never publish an empty batch
                path.unlink()
                continue
            found.append((int(m.group(1)), size))
        for seq, size in sorted(found):
            self._sizes[seq] = size
            self.bytes += size
        self.high_water = len(self._sizes)
        #: Batches found on disk when this spool was opened (left by an earlier run).
        self.resumed = len(self._sizes)
        state = self._read_state()
        kept = state.get("session")
        self.session: str = kept if isinstance(kept, str) and kept else secrets.token_hex(8)
        floor = max(self._sizes) + 1 if self._sizes else 0
        exact = int(state.get("next_seq", 0))
        reserved = int(state.get("reserved", exact))
        same_boot = bool(self.boot_id) and state.get("boot_id") == self.boot_id
        if not state or state.get("clean") or same_boot:
            start = exact
        else:
            start = max(exact, reserved)
            if start > exact:
                log.warning(
                    "spool %s: unclean shutdown on an earlier boot; sequence numbers resume at %d "
                    "(up to %d numbers skipped so none is reused)",
                    self.directory,
                    start,
                    start - exact,
                )
        self._next_seq = max(start, floor)
        self._reserved = self._next_seq + self.reserve
        self._write_state(clean=False, sync=True)
        if self._sizes:
            log.info(
                "spool %s: resuming %d unsent batches (%d bytes); next sequence number %d",
                self.directory,
                len(self._sizes),
                self.bytes,
                self._next_seq,
            )

    def _read_state(self) -> dict:
        try:
            data = json.loads((self.directory / STATE).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("spool state %s unreadable (%s); numbering continues after the spooled batches", STATE, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self, *, clean: bool, sync: bool) -> None:
        state = {
            "next_seq": self._next_seq,
            "reserved": self._reserved,
            "boot_id": self.boot_id,
            "clean": clean,
            "session": self.session,
            "time": round(time.time(), 3),
        }
        self._write_file(self.directory / STATE, json.dumps(state).encode(), sync=sync)

    def _write_file(self, path: Path, data: bytes, *, sync: bool) -> None:
        write_atomic(path, data, sync=sync, sync_dir=sync)

    # -- use --------------------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}{SUFFIX}"

    def append(self, build: Callable[[int], bytes]) -> int:
        """Give the next sequence number to ``build``, store what it returns; returns the number."""
        with self._lock:
            seq = self._next_seq
            data = build(seq)
            self._make_room(len(data))
            self._write_file(self.path(seq), data, sync=self.fsync)
            self._sizes[seq] = len(data)
            self.bytes += len(data)
            self.high_water = max(self.high_water, len(self._sizes))
            self._next_seq = seq + 1
            bump = self._next_seq >= self._reserved
            if bump:
                self._reserved = self._next_seq + self.reserve
            self._write_state(clean=False, sync=bump or self.fsync)
        self._report_drops()
        return seq

    def read(self, seq: int) -> bytes | None:
        """The stored payload, or ``None`` if it was acknowledged or dropped meanwhile."""
        with self._lock:
            if seq not in self._sizes:
                return None
        try:
            return self.path(seq).read_bytes()
        except FileNotFoundError:
            return None

    def ack(self, seq: int) -> None:
        """The broker has the batch: forget it."""
        with self._lock:
            size = self._sizes.pop(seq, None)
            if size is None:
                return
            self.bytes -= size
        with contextlib.suppress(FileNotFoundError):
            self.path(seq).unlink()

    def pending(self) -> list[int]:
        """Sequence numbers still waiting, oldest first."""
        with self._lock:
            return list(self._sizes)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sizes)

    def close(self) -> None:
        """Clean shutdown: persist the exact next sequence number (fsynced)."""
        self._report_drops(force=True)
        with self._lock:
            self._write_state(clean=True, sync=True)

    # -- bound ------------------------------------------------------------------------------------

    def _make_room(self, incoming: int) -> None:
        while self._sizes and self.bytes + incoming > self.max_bytes:
            oldest = next(iter(self._sizes))  # insertion order is sequence order
            self.bytes -= self._sizes.pop(oldest)
            with contextlib.suppress(FileNotFoundError):
                self.path(oldest).unlink()
            self.dropped += 1
            self._dropped_unreported += 1
            lo = oldest if self._drop_range is None else self._drop_range[0]
            self._drop_range = (lo, oldest)

    def _report_drops(self, force: bool = False) -> None:
        with self._lock:
            if not self._dropped_unreported:
                return
            now = time.monotonic()
            if not force and now - self._last_warning < self.warn_interval_s:
                return
            count, (lo, hi) = self._dropped_unreported, self._drop_range or (0, 0)
            self._dropped_unreported = 0
            self._drop_range = None
            self._last_warning = now
            total, size = self.dropped, self.bytes
        log.warning(
            "spool %s is full (%d of %d bytes): dropped the %d oldest unsent batches (seq %d-%d); "
            "%d dropped since start",
            self.directory,
            size,
            self.max_bytes,
            count,
            lo,
            hi,
            total,
        )
