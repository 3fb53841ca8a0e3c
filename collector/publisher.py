"""Publishing spooled batches and status messages over MQTT, in order, acknowledged.

One ordered outbox holds sequence numbers of spooled batches and status messages, in the order the
collector produced them. A worker thread hands at most ``window`` of them at a time to paho
(QoS 1); a batch leaves the spool only when its PUBACK arrives (``on_published``), so nothing the
broker has not confirmed is ever forgotten. While the broker is away nothing new is handed over
(the spool, not paho's memory, holds the backlog); after a reconnect paho first re-sends what was
in flight (same message ids) and only when all of it is acknowledged does the worker continue,
so batches reach the broker in sequence order and none is sent twice by us (QoS 1 may still
duplicate one whose PUBACK was lost in the outage; consumers dedup by sequence number).

The connection (:class:`legwatch.mqtt.connection.Connection`) has a fixed id and by default a
persistent session, the sensor's status topic as its retained ``offline`` last will, and connects
in the background: an unreachable broker at startup is not an error (the spool fills and is sent
later); a broker that *refuses* the connection (bad credentials, not authorised) is:
:class:`legwatch.mqtt.connection.BrokerUnavailable`. ``legwatch replay`` uses the same publisher
with a connect that must succeed (``start(background=False)``) and refusals that end it
(``retry_refused_s=None``).

**End to end** (when the spool has a ``session``, as the collector's :class:`~collector.spool.Spool`
and ``legwatch replay``'s memory spool do): a PUBACK is not enough, since a broker at its default
limits may still drop the message before the monitor reads it. The publisher subscribes to the
monitor's acknowledgement of this sensor (``legwatch.contracts.ack``) and keeps every batch in the
spool until the monitor's watermark covers it; at most ``ack_window`` batches beyond the watermark
are in flight (flow control: no sender overruns a broker's queue, whatever its limits); a range the
monitor asks for again is sent again (``collector.confirm``); a batch the spool no longer has is
reported as lost (``<prefix>/<sensor>/sender``), as are, on every connect and after ``probe_s``
without progress, the first batch held and the last sent. Its ``online`` and ``offline`` statuses
carry the ``session`` and the ``first`` batch held; the ``offline`` waits until every batch before it
is confirmed and is sent again every ``probe_s`` until the monitor confirms the night ended. When no
monitor has acknowledged anything ``ack_wait_s`` after the first batch was sent (no monitor yet, or
one that does not acknowledge), the publisher says so once and falls back to the broker's
acknowledgements (as before acknowledgements existed) until a monitor's first acknowledgement.

paho calls back on its network thread while holding its own locks, so callbacks only record
events and wake the worker; only the worker publishes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from legwatch.contracts import ack, status, topics
from legwatch.mqtt.connection import Connection

from .confirm import Confirmations
from .end_to_end import EndToEnd, is_offline

log = logging.getLogger("legwatch.collector.mqtt")

__all__ = ["BatchStore", "Publisher"]

#: After a restart with batches left in the spool, wait at most this long for the monitor's
#: acknowledgement before sending them (so what it has already is not sent again).
RESUME_WAIT_S = 3.0


class BatchStore(Protocol):
    """What the publisher needs of a :class:`~collector.spool.Spool` (``legwatch replay`` keeps its
    batches in memory instead)."""

    directory: Any

    def pending(self) -> list[int]: ...

    def read(self, seq: int) -> bytes | None: ...

    def ack(self, seq: int) -> None: ...


class Publisher(EndToEnd):
    """Sends a :class:`~collector.spool.Spool` and status messages to the broker; see the module doc.

    ``retry_refused_s``: a message the broker refuses (MQTT 5 PUBACK error, e.g. not authorised)
    is kept and tried again after this long; ``None``: nothing more is sent, and ``refused`` and
    ``refusal`` say so (the owner gives up). ``will``: the last will's payload (default: the
    collector's). ``logger``: where connection events are logged. ``ack_window``, ``ack_wait_s``,
    ``probe_s``: the end-to-end acknowledgement (module doc), used when ``spool.session`` is set.
    """

    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        prefix: str,
        sensor: str,
        spool: BatchStore,
        protocol: int = 5,
        ca_file: str = "",
        window: int = 32,
        keepalive: int = 30,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        retry_refused_s: float | None = 10.0,
        persistent: bool = True,
        will: bytes | None = None,
        logger: logging.Logger | None = None,
        ack_window: int = 100,
        ack_wait_s: float = 30.0,
        probe_s: float = 5.0,
    ) -> None:
        self.spool = spool
        self.samples_topic = topics.samples(prefix, sensor)
        self.status_topic = topics.status(prefix, sensor)
        self.ack_topic = topics.ack(prefix, sensor)
        self.sender_topic = topics.sender(prefix, sensor)
        #: the end-to-end session (``contracts.ack``), None: only the broker's acknowledgements
        self.session: str | None = getattr(spool, "session", None)
        self.ack_window = max(1, int(ack_window))
        self.ack_wait_s = ack_wait_s
        self.probe_s = probe_s
        self.window = max(1, min(int(window), 100))
        self.retry_refused_s = retry_refused_s
        self.log = logger or log
        if will is None:
            will = status.will("collector", "collector connection lost", marked=False)
        self.conn = Connection(
            url,
            client_id,
            protocol=protocol,
            persistent=persistent,
            ca_file=ca_file,
            will=(self.status_topic, will),
            keepalive=keepalive,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
            on_connected=self._on_connected,
            on_lost=self._on_lost,
            on_published=self._on_published,
            on_message=self._on_message,
        )
        if self.session is not None:
            self.conn.subscribe([self.ack_topic], qos=1)
        self.url = self.conn.url
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified when something was acknowledged
        self._outbox: deque[int | bytes] = deque(spool.pending())
        self._inflight: dict[int, int | bytes] = {}
        #: the worker took an item from the outbox and is handing it to paho: it is in neither
        #: the outbox nor ``_inflight`` until then, yet not sent (``drain`` must still wait for it)
        self._in_hand = False
        self._acks: deque[tuple[int, bool, str]] = deque()
        self._connected = False
        self._resync = False
        self._paused_until = 0.0
        self._closing = False
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="legwatch-publisher", daemon=True)
        # -- end to end --
        self.confirmations = Confirmations()
        self._watermarks: deque[ack.Watermark] = deque()
        #: a monitor acknowledges this session: flow control and spool until confirmed
        self.end_to_end = False
        self._first_sent_at: float | None = None
        self._fallback_said = False
        self._offline: tuple[bytes, float] | None = None  # the offline status sent, waiting to be confirmed
        self._report_due = False
        self._probe_at = 0.0
        #: batches an earlier run left in the spool wait this long for the monitor's first word on
        #: where it stands (the monitor may have stored them already)
        self._hold_until = 0.0
        #: the monitor confirmed the end of the night (its acknowledgement with ``ended``)
        self.night_confirmed = False
        #: Counters for logs and tests.
        self.published = 0
        self.acked = 0
        self.connects = 0
        #: messages the broker refused, and its last reason
        self.refused = 0
        self.refusal: str | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, wait_s: float = 5.0, *, background: bool = True) -> None:
        """Connect in the background; wait up to ``wait_s`` for the first answer.
        ``background=False``: the broker must answer within ``wait_s`` (else ``BrokerUnavailable``)."""
        answered = self.conn.connect(wait_s, background=background)
        self._thread.start()
        if not answered:
            self.log.warning(
                "MQTT broker at %s does not answer yet; batches are spooled to %s until it does",
                self.url,
                self.spool.directory,
            )

    def close(self, drain_s: float = 5.0) -> bool:
        """Wait up to ``drain_s`` for everything to be acknowledged (end to end: an ``offline``
        status also confirmed by the monitor), then disconnect cleanly (no last will). Returns
        whether the outbox was empty."""
        deadline = time.monotonic() + drain_s
        drained = self.drain(drain_s) if drain_s > 0 else self.backlog == 0
        while drained and self._offline is not None and not self.night_confirmed and time.monotonic() < deadline:
            time.sleep(0.05)
        with self._lock:
            self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.conn.close()
        return drained

    # -- producer side (any thread) ---------------------------------------------------------------

    def add_batch(self, seq: int) -> None:
        """A batch was spooled under ``seq``."""
        with self._lock:
            self._outbox.append(seq)
        self._wake.set()

    def add_status(self, payload: bytes) -> None:
        """A retained status message, sent after everything added before it."""
        with self._lock:
            self._outbox.append(bytes(payload))
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected

    def _unsent(self) -> int:
        """Items not acknowledged by the broker (under the lock): waiting, being handed to paho, in flight."""
        return len(self._outbox) + int(self._in_hand) + len(self._inflight)

    @property
    def backlog(self) -> int:
        """Items not yet acknowledged by the broker (waiting or in flight)."""
        with self._lock:
            return self._unsent()

    def drain(self, timeout: float) -> bool:
        """Block until the outbox is empty and everything is acknowledged, or ``timeout`` passed."""
        return self.wait_backlog(0, timeout)

    def wait_backlog(self, limit: int, timeout: float) -> bool:
        """Block until at most ``limit`` items are unacknowledged, or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._unsent() > limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._changed.wait(min(remaining, 0.1))
        return True

    # -- connection callbacks (network thread): record and wake ----------------------------------

    def _on_connected(self, session_present: bool, first: bool) -> None:
        with self._lock:
            self._connected = True
            self._resync = bool(self._inflight)  # let paho re-send those first
            backlog = self._unsent()
        self.connects += 1
        if self.session is not None:
            self._report_due = True  # tell the monitor where this sender stands (it answers)
            with self._lock:
                if first and self._outbox and self.confirmations.stored is None:
                    self._hold_until = time.monotonic() + RESUME_WAIT_S
        if first:
            self.log.info("connected to MQTT broker %s; %d messages to send", self.url, backlog)
        else:
            self.log.warning(
                "reconnected to MQTT broker %s; sending what it has not acknowledged (%d messages to send)",
                self.url,
                backlog,
            )
        self._wake.set()

    def _on_lost(self, reason: Any) -> None:
        with self._lock:
            self._connected = False
            self._resync = True
            closing = self._closing
            backlog = self._unsent()
        if not closing:
            self.log.warning(
                "lost MQTT broker %s (%s); holding %d unacknowledged messages and reconnecting",
                self.url,
                reason,
                backlog,
            )

    def _on_published(self, mid: int, reason_code: Any) -> None:
        ok = not getattr(reason_code, "is_failure", False)
        with self._lock:
            self._acks.append((mid, ok, str(reason_code)))
        self._wake.set()

    # -- worker -----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            with self._lock:
                if self._closing:
                    return
            self._process_acks()
            if self.session is not None:
                self._process_watermarks()
            self._pump()
            if self.session is not None:
                self._end_to_end_timers()

    def _process_acks(self) -> None:
        while True:
            with self._lock:
                if not self._acks:
                    return
                mid, ok, reason = self._acks.popleft()
                item = self._inflight.pop(mid, None)
                if item is None:
                    continue
                if not ok:
                    # The broker refused this one (e.g. not authorised): keep it; retry later, or never.
                    self._outbox.appendleft(item)
                    self.refused += 1
                    self.refusal = reason
                    wait = float("inf") if self.retry_refused_s is None else self.retry_refused_s
                    self._paused_until = time.monotonic() + wait
                else:
                    self.acked += 1
                    if isinstance(item, int) and not self._broker_only():
                        item = None  # stays in the spool until the monitor confirms it
                    elif isinstance(item, int):
                        self.confirmations.forget(item)
                self._changed.notify_all()
            if not ok:
                if self.retry_refused_s is not None:
                    self.log.error(
                        "MQTT broker refused a message on %s: %s; retrying later", self.samples_topic, reason
                    )
                continue
            if isinstance(item, int):
                self.spool.ack(item)

    def _pump(self) -> None:
        while True:
            with self._lock:
                if not self._connected or self._closing or not self._outbox:
                    return
                if self._resync:
                    if self._inflight:
                        return
                    self._resync = False
                if len(self._inflight) >= self.window or time.monotonic() < self._paused_until:
                    return
                item = self._outbox[0]
                if self.session is not None and not self._may_send(item):
                    return
                self._outbox.popleft()
                self._in_hand = True
            try:
                handed = self._hand_over(item)
            finally:
                with self._changed:
                    self._in_hand = False
                    self._changed.notify_all()
            if not handed:
                return

    def _hand_over(self, item: int | bytes) -> bool:
        """Publish one item taken from the outbox: into ``_inflight`` (or done with: the monitor has
        it, the spool lost it); False: paho would not take it, it is back in the outbox."""
        if isinstance(item, int):
            if self.session is not None and self.confirmations.covered(item):
                self.spool.ack(item)  # the monitor has it already (spooled by an earlier run)
                return True
            data = self.spool.read(item)
            if data is None:  # dropped from a full spool meanwhile
                with self._lock:
                    if self.session is not None:
                        self.confirmations.missing_from_spool(item)
                        self._report_due = True
                return True
            info = self.conn.publish(self.samples_topic, data, qos=1)
        else:
            if self.session is not None:
                item = self._stamp(item)
            info = self.conn.publish(self.status_topic, item, qos=1, retain=True)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN: paho keeps the message and sends it on reconnect; anything else: retry later.
            with self._lock:
                self._outbox.appendleft(item)
            self.log.warning("paho could not take a message (%s); retrying", mqtt.error_string(info.rc))
            time.sleep(0.1)
            return False
        with self._lock:
            self._inflight[info.mid] = item
            if self.session is not None:
                if self._first_sent_at is None:
                    self._first_sent_at = time.monotonic()
                if isinstance(item, int):
                    self.confirmations.sent(item)
                elif is_offline(item):
                    self._offline = (item, time.monotonic()) if self.end_to_end else None
                else:  # a later status (a new night's online): the earlier offline is history
                    self._offline = None
        self.published += 1
        return True
