"""The monitor service (``legwatch monitor``): lifecycle and MQTT around the other modules here.

Where one sample batch goes: ``Connection`` (legwatch.mqtt.connection) calls ``_on_message`` on
paho's network thread, which queues it for the worker. The worker takes a few queued messages at a
time (``handle``): appends them to the ``journal`` (fsynced), lets the ``router`` turn each into
points and events (the sensor's ``StreamDetector`` runs there), hands the points to ``delivery``
(the store in one request, or the on-disk ``outbox`` when the store is down), and only then
acknowledges the messages (MQTT manual ack) and publishes the episode events. Between batches it
checkpoints a few streams (``checkpointer``), ends the nights of sensors that left and stayed away,
and runs the application's hooks of stored nights (``hooks``). A monitor killed at any moment
resumes exactly where it was: checkpoints plus journal, then the broker's redeliveries (duplicates
are recognised by sequence number).

Malformed payloads are counted per kind, logged once per kind, set aside on the dead-letter topic
and acknowledged; they never stop the service. A sensor's ``offline`` status ends its night: the
stream is flushed, the sleep window found, the episodes rewritten with their final flags and a
``night`` point written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from legwatch.contracts import topics
from legwatch.contracts.config import Config
from legwatch.habits import HabitError, fetch_existing, place_entries, to_write
from legwatch.monitor.checkpoint_files import Checkpoints
from legwatch.monitor.checkpointer import Checkpointer
from legwatch.monitor.delivery import Delivery, retry
from legwatch.monitor.hooks import NightHook, NightHooks, NightStored
from legwatch.monitor.journal import Journal
from legwatch.monitor.outbox import Outbox
from legwatch.monitor.periodic import Periodic, PeriodicTask, Tick
from legwatch.monitor.progress import Progress
from legwatch.monitor.router import NightEnd, Routed, Router
from legwatch.mqtt.connection import Connection
from legwatch.storage import Point, Store, StoreError, StoreUnavailable

log = logging.getLogger("legwatch.monitor")

#: At most this many unacknowledged messages in the monitor's hands (MQTT 5 Receive Maximum): while
#: it cannot acknowledge (full outbox), everything else waits with the broker, not in memory.
RECEIVE_MAXIMUM = 200
#: At most this many received messages wait for the worker. Some brokers send more than the Receive
#: Maximum (Mosquitto 2.0.11 loses count of its quota once acknowledgements flow), so when the worker
#: is held up the network thread waits here, and TCP leaves the rest with the broker.
INBOX_MAX = 2000
#: The worker handles at most this many queued messages at a time, gathered for at most BATCH_WAIT_S.
BATCH_MAX = 500
BATCH_WAIT_S = 0.02
#: How often the acknowledgement of every live stream is published again (``contracts.ack``; QoS 0,
#: so one lost on the way is replaced by the next).
HEARTBEAT_S = 2.0
#: How often (at most) the monitor logs where each sensor stands, when nothing changed.
PROGRESS_S = 60.0


class Monitor:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        *,
        client_id: str | None = None,
        exit_after_nights: int | None = None,
        checkpoint_s: float | None = None,
        outbox_max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.prefix = cfg["mqtt.topic_prefix"]
        self.client_id = client_id or cfg["mqtt.client_id"] or "legwatch-monitor"
        self.exit_after_nights = exit_after_nights
        self.stats: Counter[str] = Counter()
        self.router = Router(cfg, self.stats)
        self.stop_event = threading.Event()
        self.done = threading.Event()
        #: held while messages are handled and while a checkpoint is taken (journal and streams agree)
        self.lock = threading.Lock()
        self._stopping = threading.Lock()
        #: the MQTT connection (set by ``start``; tests may set a stand-in with the same methods)
        self.connection: Any = None
        self.inbox: queue.Queue = queue.Queue(maxsize=INBOX_MAX)
        self._inbox_full_said = False
        #: results of handled messages not yet durable (in the store or the outbox)
        self.pending: list[Point] = []
        #: (topic, body) to publish once the results are durable: episode events, dead letters
        self.outgoing: list[tuple[str, str]] = []
        self.latencies: deque[float] = deque(maxlen=20000)
        if checkpoint_s is None:
            checkpoint_s = float(cfg.values.get("monitor.checkpoint_s", 10.0))
        if outbox_max_bytes is None:
            outbox_max_bytes = int(float(cfg.values.get("monitor.outbox_max_mb", 256.0)) * 1024 * 1024)
        self.state_dir = cfg.make_dir("monitor", self.client_id)
        self.journal = Journal(self.state_dir / "journal")
        self.checkpoints = Checkpoints(self.state_dir)
        self.outbox = Outbox(self.state_dir / "outbox.sqlite", max_bytes=outbox_max_bytes)
        self.delivery = Delivery(store, self.outbox, self.stats, self.stop_event)
        self.checkpointer = Checkpointer(
            self.router, self.journal, self.checkpoints, self.stats, checkpoint_s=checkpoint_s, clock=clock
        )
        self.hooks = NightHooks(self.stats)
        self.periodic = Periodic(self.stats, clock)
        self._worker: threading.Thread | None = None
        self._exiting = False
        #: sensors whose acknowledgement is due once the results in hand are durable
        self.ack_due: set[str] = set()
        self._heartbeat_at = 0.0
        self.progress = Progress(self.router, clock)

    # -- what the router keeps, for callers and tests ------------------------------------------
    @property
    def streams(self):
        return self.router.streams

    @property
    def ended(self):
        return self.router.ended

    @property
    def rejected(self) -> Counter[str]:
        return self.router.rejected

    @property
    def nights(self):
        return self.router.nights

    def on_night_stored(self, hook: NightHook, name: str) -> None:
        """Call ``hook`` once each night is in the store (see ``hooks``); successes count as ``stats[name]``."""
        self.hooks.add(hook, name)

    def every(self, task: PeriodicTask, name: str, every_s: float) -> None:
        """Call ``task`` between batches at most once every ``every_s`` seconds (see ``periodic``)."""
        self.periodic.add(task, name, every_s)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        # the outbox writer first: replaying the journal may need room in a full outbox
        self.delivery.start()
        self.restore()
        self._worker = threading.Thread(target=self._work, name="monitor-worker", daemon=True)
        self._worker.start()
        if self.connection is None:
            self.connection = Connection(
                self.cfg["mqtt.url"],
                self.client_id,
                protocol=self.cfg["mqtt.protocol"],
                persistent=True,
                manual_ack=True,
                ca_file=self.cfg["mqtt.ca_file"],
                receive_maximum=RECEIVE_MAXIMUM,
                state_dir=self.state_dir,
            )
        conn = self.connection
        conn.on_message = self._on_message
        conn.on_connected = self._on_connected
        conn.on_lost = self._on_lost
        conn.subscribe(self.router.topic_filters())
        conn.connect()

    def _on_connected(self, session_present: bool, first: bool) -> None:
        if not first:
            if session_present:
                log.warning("reconnected to the MQTT broker; it kept this monitor's session")
            else:
                log.error(
                    "reconnected to the MQTT broker, but it lost this monitor's session: messages "
                    "published while the monitor was away may be missing (Mosquitto: set persistence true, "
                    "and persistent_client_expiration longer than the monitor is ever away); senders that "
                    "take part in acknowledgements send them again"
                )
        filters = ", ".join(self.router.topic_filters())
        log.info("monitor subscribed to %s (session %s)", filters, "kept" if session_present else "new")

    def _on_lost(self, reason: object) -> None:
        if not self.stop_event.is_set():
            log.warning(
                "lost the MQTT broker (%s); reconnecting by itself, %d message(s) still being handled",
                reason,
                self.inbox.qsize(),
            )

    def stop(self) -> None:
        """Finish the batch in hand, checkpoint, disconnect. Safe to call from any thread, repeatedly."""
        self.stop_event.set()
        with self._stopping:
            if self.done.is_set():
                return
            if self._worker is not None and self._worker is not threading.current_thread():
                self._worker.join(timeout=30)
            self.delivery.join(timeout=30)
            with self.lock:
                if self.pending:
                    # results that reached neither the store nor the outbox: the journal since the
                    # last checkpoint still holds their messages, and the restart replays it
                    log.warning(
                        "stopping with %d unstored result(s); the next start replays their messages",
                        len(self.pending),
                    )
                else:
                    self.checkpointer.tick()
                self.checkpointer.close()
            if self.connection is not None:
                left = self.connection.wait_published(5.0)  # episode events and dead letters
                if left:
                    log.warning("stopping before the broker took %d event(s)", left)
                self.connection.close()
            self.journal.close()
            self.outbox.close()
            self.done.set()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self.done.wait(1.0):
                pass
        finally:
            self.stop()

    # -- messages ----------------------------------------------------------------------------
    def _on_message(self, msg: Any) -> None:
        item = (time.monotonic(), self.connection.generation, msg)
        while True:
            try:
                self.inbox.put(item, timeout=0.5)
                return
            except queue.Full:
                if not self._inbox_full_said:
                    self._inbox_full_said = True
                    log.warning("%d messages wait for the worker; reading no more until it catches up", INBOX_MAX)
                if self.stop_event.is_set():
                    return  # not acknowledged: the broker delivers it again

    def _work(self) -> None:
        while not self.stop_event.is_set():
            try:
                first = self.inbox.get(timeout=0.2)
            except queue.Empty:
                self.housekeeping()
                continue
            batch = [first]
            deadline = time.monotonic() + BATCH_WAIT_S
            while len(batch) < BATCH_MAX and time.monotonic() < deadline:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                self.handle(batch)
            except Exception:  # never let the worker die
                log.exception("unexpected error in the monitor worker")
            self.housekeeping()

    def handle(self, batch: list[tuple[float, int, Any]]) -> None:
        """Journal, route, store, acknowledge and publish (received time, connection generation,
        message) items; nothing is acknowledged when the monitor stops before their results are durable."""
        journaled = [(m.topic, bytes(m.payload)) for _, _, m in batch if self.router.sensor_of(m.topic)]
        with self.lock:
            if not retry("writing the journal", lambda: self.journal.append(journaled), self.stop_event):
                return  # stopping: nothing handled, nothing acknowledged
            acks = []
            for received, gen, msg in batch:
                try:
                    ok = self._apply(msg)
                except Exception:  # one bad message must not stop the others
                    log.exception("unexpected error handling %s; set aside", msg.topic)
                    out = Routed()
                    self.router.reject(msg, out, "internal", "internal error")
                    self.outgoing += out.publish
                    ok = True
                if ok:
                    acks.append((received, gen, msg))
            if not self._flush():
                return  # stopping while the store and the outbox are unavailable: no acks, redelivery
        now = time.monotonic()
        conn = self.connection
        for received, gen, msg in acks:
            if conn is not None and msg.mid is not None:
                # acknowledged only on the connection that delivered it (see Connection.ack)
                conn.ack(msg.mid, msg.qos, gen)
            self.latencies.append(now - received)
        self._publish_outgoing()
        self._publish_acks()

    def _apply(self, msg: Any) -> bool:
        """Route one message and collect its results; False only when stopping before the night it
        ended was stored."""
        sensor = self.router.sensor_of(msg.topic)
        if sensor is not None:
            self.checkpointer.mark(sensor)
        out = self.router.route(msg)
        self.pending += out.points
        self.outgoing += out.publish
        self.ack_due |= out.acks
        if out.habit is not None:
            self._place_habit(msg, *out.habit)
        if out.night_end is not None:
            return self._store_night(out.night_end)
        return True

    def _flush(self) -> bool:
        if not self.delivery.deliver(self.pending):
            return False
        self.pending = []
        return True

    def _store_night(self, end: NightEnd) -> bool:
        if not self._flush():
            return False
        self.router.commit_night(end)
        event = NightStored(end.subject, end.sensor, end.night, self.store, self.connection, self.prefix)
        self.hooks.night_stored(event, ready=not self.delivery.held())
        return True

    def _place_habit(self, msg: Any, subject: str, entry: Any) -> None:
        """Place a habit entry among what the store and this batch hold (``habits.place_entries``);
        it joins the batch's results, so a store that is down never stalls the worker. With the store
        reachable, a redelivered message (same ``id``) is recognised and a second entry in the same
        millisecond moves on 1 ms."""
        items = [(subject, entry)]
        written = True
        try:
            if self.delivery.held():
                raise StoreUnavailable("results are waiting in the outbox")
            mine = [p for p in self.pending if p.measurement == "habit"]  # place_entries keeps those in range
            (placed,) = place_entries(items, [*fetch_existing(self.store, items), *mine])
            self.pending += to_write([placed])
            written = placed.written
        except (StoreUnavailable, StoreError):  # placed without the store's view; held with the rest
            self.pending.append(entry.point(subject))
        except HabitError as exc:
            out = Routed()
            self.router.reject_habit(msg, out, str(exc))
            self.outgoing += out.publish
            return
        self.stats["habits" if written else "habits_duplicate"] += 1

    def _publish_outgoing(self) -> None:
        out, self.outgoing = self.outgoing, []
        if self.connection is None:
            return
        for topic, body in out:
            self.connection.publish(topic, body, qos=1)

    def _publish_acks(self, sensors: set[str] | None = None) -> None:
        """The acknowledgement of each sensor in ``sensors`` (default: those due): how far its
        stored data reaches. Only call with the results in hand durable."""
        if sensors is None:
            sensors, self.ack_due = self.ack_due, set()
        if self.connection is None:
            return
        for sensor in sorted(sensors):
            body = self.router.watermark(sensor)
            if body is not None:
                self.connection.publish(topics.ack(self.prefix, sensor), body, qos=0)
                self.stats["acks_sent"] += 1

    # -- between batches -----------------------------------------------------------------------
    def housekeeping(self) -> None:
        """What the worker does between batches: abandoned nights, a checkpoint tick, due hooks, exit."""
        try:
            if self._inbox_full_said and not self.inbox.qsize():
                self._inbox_full_said = False
                log.warning("the worker has caught up; reading messages again")
            self.end_abandoned_nights()
            with self.lock:
                if not self.pending:
                    self.checkpointer.maybe_tick()
                    now = time.monotonic()
                    if now - self._heartbeat_at >= HEARTBEAT_S:
                        self._heartbeat_at = now
                        self._publish_acks(set(self.streams) | self.ack_due)
                        self.ack_due = set()
            self.progress.maybe_log()
            self.hooks.run_due(ready=not self.delivery.held())
            if not self.delivery.held():
                self.periodic.run_due(Tick(self.store, self.connection, self.prefix))
            if (
                self.exit_after_nights is not None
                and not self._exiting
                and len(self.nights) >= self.exit_after_nights
                and not self.hooks.due
                and not self.delivery.held()
                and not self.pending
            ):
                self._exiting = True
                threading.Thread(target=self.stop, name="monitor-stop", daemon=True).start()
        except Exception:
            log.exception("unexpected error in the monitor worker")

    def end_abandoned_nights(self) -> None:
        """End the nights of sensors whose publisher left with its last will and stayed away."""
        gone = self.router.abandoned(time.time())
        if not gone:
            return
        with self.lock:
            for sensor in gone:
                log.warning(
                    "no data from %s for %.0f s since its connection was lost: ending its night",
                    sensor,
                    self.router.will_grace_s,
                )
                out = Routed()
                self.router.end_night(sensor, out)
                self.pending += out.points
                self.outgoing += out.publish
                assert out.night_end is not None
                if not self._store_night(out.night_end):
                    return
            if not self.pending:
                # no message marks this end in the journal: make it durable now
                self.checkpointer.tick(streams=self.checkpointer.quota())

    # -- a restart -----------------------------------------------------------------------------
    def restore(self) -> None:
        """The checkpointed streams, then each sensor's journaled messages from where its checkpoint
        ends, then a full checkpoint."""
        default, start_at, found = self.checkpointer.restore()
        n = 0
        with self.lock:
            for segment, topic, data in self.journal.replay(min([default, *start_at.values()])):
                parsed = topics.parse(self.prefix, topic)
                if segment < (default if parsed is None else start_at.get(parsed[0], default)):
                    continue  # already in that sensor's checkpoint
                msg = SimpleNamespace(
                    topic=topic, payload=data, qos=1, retain=False, dup=False, mid=None, journaled=True
                )
                try:
                    self._apply(msg)
                except Exception:  # a message that broke the monitor once must not stop every restart
                    log.exception("unexpected error replaying a journaled message on %s; skipped", topic)
                n += 1
            self.outgoing = []  # published before the restart (consumers dedupe by sensor+start)
            self.ack_due = set(self.streams)  # said again once connected (and every HEARTBEAT_S)
            if not self._flush():
                return  # stopped while waiting for room in the outbox: the journal is kept
            if found or n:
                log.warning(
                    "resumed %d stream(s) from the checkpoint and %d journaled message(s)",
                    len(self.streams),
                    n,
                )
                self.checkpointer.tick()

    def latency_ms(self) -> dict[str, float]:
        """Median and 99th percentile of receive-to-acknowledge time of recent messages."""
        if not self.latencies:
            return {}
        xs = sorted(self.latencies)
        return {
            "p50": round(1000 * xs[len(xs) // 2], 2),
            "p99": round(1000 * xs[min(len(xs) - 1, int(0.99 * len(xs)))], 2),
            "n": len(xs),
        }
