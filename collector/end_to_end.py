"""The end-to-end half of :class:`collector.publisher.Publisher` (see its module doc): the
monitor's acknowledgements in, flow control, re-sends, lost batches reported, the ``offline``
status sent again until the monitor confirms the night ended, and the fall-back to the broker's
acknowledgements when no monitor acknowledges. A mixin: it uses the publisher's lock, outbox,
spool and connection.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any

from legwatch.contracts import ack, status

from .confirm import Confirmations


def is_offline(item: bytes) -> bool:
    """An explicit ``offline`` status (the end of a night)."""
    try:
        doc = json.loads(item)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("state") == status.OFFLINE


class EndToEnd:
    """Mixed into ``Publisher``."""

    _lock: threading.Lock
    _changed: threading.Condition
    _wake: threading.Event
    _outbox: deque
    _inflight: dict
    _unsent: Any
    _connected: bool
    _watermarks: deque
    _offline: tuple[bytes, float] | None
    _first_sent_at: float | None
    _fallback_said: bool
    _report_due: bool
    _probe_at: float
    _hold_until: float
    confirmations: Confirmations
    session: str | None
    end_to_end: bool
    night_confirmed: bool
    ack_window: int
    ack_wait_s: float
    probe_s: float
    spool: Any
    conn: Any
    log: logging.Logger
    ack_topic: str
    sender_topic: str
    status_topic: str

    @property
    def unconfirmed(self) -> int:
        """Batches sent that the monitor has not confirmed storing (end to end)."""
        with self._lock:
            return len(self.confirmations)

    @property
    def confirmed(self) -> int:
        """Batches the monitor confirmed storing."""
        return self.confirmations.confirmed

    def wait_confirmed(self, limit: int, timeout: float) -> bool:
        """Block until at most ``limit`` items wait for the broker and, end to end, at most
        ``limit`` batches for the monitor; or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._unsent() > limit or (self.end_to_end and len(self.confirmations) > limit):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._changed.wait(min(remaining, 0.1))
        return True

    def _on_message(self, msg: Any) -> None:
        try:
            wm = ack.parse_watermark(msg.payload)
        except ack.AckError as exc:
            self.log.debug("ignored an acknowledgement on %s: %s", self.ack_topic, exc)
            return
        if wm.session != self.session:
            return  # another sender's numbering (an earlier run of the same sensor)
        with self._lock:
            self._watermarks.append(wm)
        self._wake.set()

    def _process_watermarks(self) -> None:
        while True:
            with self._lock:
                if not self._watermarks:
                    return
                wm = self._watermarks.popleft()
                if not self.end_to_end:
                    self.end_to_end = True
                    if self._fallback_said:
                        self.log.warning("the monitor acknowledges again: batches stay spooled until it confirms them")
                done = self.confirmations.confirm(wm.stored) if wm.stored is not None else []
                again: list[int] = []
                for lo, hi in wm.missing:
                    again += self.confirmations.rewind(lo, hi)
                if again:
                    known = set(again)
                    rest = [x for x in self._outbox if not (isinstance(x, int) and x in known)]
                    self._outbox = deque([*again, *rest])
                if wm.ended and self._offline is not None and not self.confirmations:
                    self._offline = None
                    self.night_confirmed = True
                self._changed.notify_all()
            for seq in done:
                self.spool.ack(seq)
            if again:
                self.log.warning(
                    "the monitor asks again for batches %d-%d: sending %d batches again",
                    again[0],
                    again[-1],
                    len(again),
                )

    def _stamp(self, item: bytes) -> bytes:
        """An online or offline status with this sender's session, first batch held and last sent."""
        try:
            doc = json.loads(item)
        except ValueError:
            return item
        if not isinstance(doc, dict) or doc.get("state") not in (status.ONLINE, status.OFFLINE):
            return item
        doc["session"] = self.session
        doc["first"] = self._first_held() % ack.WRAP
        if doc["state"] == status.OFFLINE and self.confirmations.sent_hi is not None:
            doc["last"] = self.confirmations.sent_hi % ack.WRAP
        return json.dumps(doc).encode()

    def _first_held(self) -> int:
        pending = self.spool.pending()
        low = min(pending) if pending else getattr(self.spool, "next_seq", 0)
        if self.confirmations.stored is not None:
            low = max(low, self.confirmations.stored + 1)
        return low

    def _report(self) -> None:
        with self._lock:
            lost = self.confirmations.take_lost()
            sent = self.confirmations.sent_hi
        assert self.session is not None
        reason = f"not in the sender's spool ({self.spool.directory}): dropped when it was full"
        body = ack.build_report(self.session, self._first_held(), sent, [(a, b, reason) for a, b in lost])
        self.conn.publish(self.sender_topic, body, qos=1)
        for a, b in lost:
            self.log.error("batches %d-%d are lost: %s; told the monitor", a, b, reason)

    def _end_to_end_timers(self) -> None:
        now = time.monotonic()
        with self._lock:
            connected = self._connected
            waiting = bool(self.confirmations) or self._offline is not None
            stalled = now - self.confirmations.progress_at >= self.probe_s
            fall_back = (
                not self.end_to_end
                and not self._fallback_said
                and self._first_sent_at is not None
                and now - self._first_sent_at >= self.ack_wait_s
            )
            if fall_back:
                self._fallback_said = True
            resend_offline = None
            if self._offline is not None and now - self._offline[1] >= self.probe_s and connected:
                resend_offline = self._offline[0]
                self._offline = (self._offline[0], now)
        if fall_back:
            self.log.warning(
                "no monitor acknowledged anything on %s within %.0f s: going on with the broker's "
                "acknowledgements only (nothing confirms the data is stored; a broker at its default "
                "limits may drop some); batches stay spooled again once a monitor acknowledges",
                self.ack_topic,
                self.ack_wait_s,
            )
            with self._lock:
                in_flight = {x for x in self._inflight.values() if isinstance(x, int)}
                for seq in [s for s in self.confirmations.open_seqs() if s not in in_flight]:
                    self.confirmations.forget(seq)
                    self.spool.ack(seq)
                self._changed.notify_all()
            self._wake.set()
        if not connected:
            return
        if resend_offline is not None and self.end_to_end:
            self.conn.publish(self.status_topic, self._stamp(resend_offline), qos=1, retain=True)
        if self._report_due or (waiting and stalled and now - self._probe_at >= self.probe_s):
            self._report_due = False
            self._probe_at = now
            self._report()

    def _may_send(self, item: int | bytes) -> bool:
        """End to end (under the lock): a new batch only within the window beyond the watermark;
        the offline status only once everything before it is confirmed."""
        if self._broker_only():
            return True
        if isinstance(item, int):
            if self.confirmations.stored is None and time.monotonic() < self._hold_until:
                return False  # an earlier run's batches: first hear what the monitor has
            return self.confirmations.is_open(item) or len(self.confirmations) < self.ack_window
        if is_offline(item):
            if self._first_sent_at is None and not self.confirmations:
                return True  # nothing went before it (a device refused at once): nothing to confirm first
            return self.end_to_end and not self.confirmations
        return True

    @property
    def broker_only(self) -> bool:
        """Going on with the broker's acknowledgements only (no session, or no monitor acknowledges)."""
        return self._broker_only()

    def _broker_only(self) -> bool:
        """No monitor acknowledged within ``ack_wait_s``: the broker's acknowledgements only."""
        return self.session is None or (self._fallback_said and not self.end_to_end)
