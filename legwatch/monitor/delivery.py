"""Results to the store, or to the outbox while the store is away.

``Delivery.deliver(points)`` writes a batch's results to the store in one request; when the store
is down (or refuses the request) they go to the on-disk ``Outbox`` instead, and a background thread
writes them, oldest first, with backoff, once it is back. Either way the results are durable when
``deliver`` returns True, and only then does the monitor acknowledge the messages they came from
(the delivery tracking of Telegraf's outputs is the model). Only a full outbox holds ``deliver`` up,
so the broker keeps the rest (back-pressure); ``deliver`` returns False only when the monitor stops
meanwhile.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from legwatch.monitor.outbox import Outbox
from legwatch.storage import Point, Store, StoreError, StoreUnavailable

log = logging.getLogger("legwatch.monitor")

#: Longest wait between two attempts to write held results.
MAX_RETRY_S = 10.0
#: How often (at most) the monitor says what it holds while the store is away.
SAY_EVERY_S = 15.0
#: At most this many points per write of held results.
DRAIN_POINTS = 5000
_GLOBAL_REFUSAL = re.compile(r"HTTP (401|403|404)\b")


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _refuses_everything(exc: StoreError) -> bool:
    """Authentication, permission or a missing database: retry later (someone fixes the setup)."""
    return bool(_GLOBAL_REFUSAL.search(str(exc)))


def retry(what: str, fn: Callable[[], None], stop: threading.Event) -> bool:
    """Run ``fn`` until it succeeds (a full disk, say); False when ``stop`` is set first."""
    said = False
    while True:
        try:
            fn()
            if said:
                log.warning("%s works again", what)
            return True
        except Exception as exc:  # disk full, I/O error, database locked
            if not said:
                log.error("%s failed (%s); retrying", what, exc)
                said = True
        if stop.wait(1.0):
            return False


class Delivery:
    def __init__(self, store: Store, outbox: Outbox, stats: Counter[str], stop: threading.Event) -> None:
        self.store = store
        self.outbox = outbox
        self.stats = stats
        self.stop = stop
        self._said = 0.0
        self._full_said = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """The thread that writes held results when the store is back."""
        self._thread = threading.Thread(target=self._drain, name="monitor-outbox", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def held(self) -> int:
        """Batches of results waiting in the outbox."""
        return len(self.outbox)

    def deliver(self, points: Sequence[Point]) -> bool:
        """Store ``points`` or hold them in the outbox; False only when stopping before either."""
        if not points:
            return True
        pts = list(points)
        if not len(self.outbox):
            try:
                self.store.write(pts)
                self.stats["points"] += len(pts)
                return True
            except StoreUnavailable as exc:
                log.warning("store unavailable (%s); holding results on disk until it returns", exc)
            except StoreError as exc:
                log.error("the store refused a write (%s); holding the results on disk and retrying", exc)
            self._said = 0.0  # say what is held right away, then every SAY_EVERY_S
        while self.outbox.full():
            if not self._full_said:
                self._full_said = True
                self.say(force=True)
            if self.stop.wait(0.5):
                return False
        if self._full_said:
            self._full_said = False
            log.warning("the outbox has room again; acknowledging messages again")
        if not retry("holding results in the outbox", lambda: self.outbox.put(pts), self.stop):
            return False
        self.stats["points_held"] += len(pts)
        self.say()
        return True

    def say(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._said > SAY_EVERY_S:
            self._said = now
            full = ""
            if self.outbox.full():
                full = " (full: no longer acknowledging MQTT messages, the broker keeps the rest)"
            log.warning(
                "holding %d points in %d batches (%s of at most %s) until the store is back%s",
                self.outbox.points,
                len(self.outbox),
                _size(self.outbox.bytes),
                _size(self.outbox.max_bytes),
                full,
            )

    def _drain(self) -> None:
        delay = 0.5
        while not self.stop.wait(delay):
            if not len(self.outbox):
                delay = 0.5
                continue
            try:
                self.drain_once()
                delay = 0.0
                if not len(self.outbox):
                    log.warning("the store is back: every held result is written")
                    delay = 0.5
            except StoreUnavailable as exc:
                delay = min(max(2 * delay, 1.0), MAX_RETRY_S)
                log.debug("held results not written yet (%s); next attempt in %.0f s", exc, delay)
                self.say()
            except Exception:
                log.exception("writing held results failed; retrying")
                delay = min(max(2 * delay, 1.0), MAX_RETRY_S)

    def drain_once(self) -> None:
        """Write the oldest held batches (up to ``DRAIN_POINTS`` points) in one request."""
        rows, n = [], 0
        for i, pts in self.outbox.peek(500):
            if rows and n + len(pts) > DRAIN_POINTS:
                break
            rows.append((i, pts))
            n += len(pts)
        if not rows:
            return
        pts = [p for _, ps in rows for p in ps]
        try:
            self.store.write(pts)
        except StoreError as exc:
            if isinstance(exc, StoreUnavailable):
                raise
            if _refuses_everything(exc):
                raise StoreUnavailable(str(exc)) from None
            # bad data in one point must not hold up the others: write them one by one, set aside
            # only what the store refuses on its own
            pts = self._write_singly(pts, exc)
        self.outbox.remove([i for i, _ in rows])
        self.stats["points"] += len(pts)

    def _write_singly(self, pts: list[Point], first: StoreError) -> list[Point]:
        written = []
        for p in pts:
            try:
                self.store.write([p])
                written.append(p)
            except StoreUnavailable:
                raise
            except StoreError as exc:
                if _refuses_everything(exc):
                    raise StoreUnavailable(str(exc)) from None
                self.stats["points_refused"] += 1
                log.error("the store refuses a %s point at %.3f and it is dropped: %s", p.measurement, p.time, exc)
        log.warning("wrote %d of %d held points one by one after: %s", len(written), len(pts), first)
        return written
