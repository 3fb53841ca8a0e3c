"""The detector service: MQTT sample batches in, episodes out (store and MQTT events).

One ``StreamDetector`` per sensor. Messages are taken off the network thread into a queue and
handled in batches by one worker: each batch is first appended to the journal (fsynced), then run
through the detectors, its results written to the store in one request (or to the on-disk outbox
when the store is down), and only then are its messages acknowledged (MQTT manual ack) and the
episode events published. A monitor killed at any moment resumes exactly where it was:
checkpoints plus journal, then the broker's redeliveries (duplicates are recognised by sequence
number).

Checkpoints are incremental, so no single one stalls the worker for long. Every ``CHECKPOINT_TICK_S``
(when the worker is between batches) a *tick* starts a new journal segment n, pickles the few
streams whose state on disk is oldest (each at least once per ``checkpoint_s``; a stream with no
message since its last save needs no new file) into ``streams/s-<sensor>.pkl``, each saying "replay
my messages from segment n on", and saves the small global state (``state.pkl``: the nights that
ended, and where each live stream's replay starts). A background thread writes them in order: the
stream files, then the global file, then removes the files of ended streams and the journal
segments that no file needs any more. A restart takes, per sensor, the newest valid of its stream
file and what the global file says about it, and replays each journaled message only for a sensor
whose replay starts at or before the message's segment (so an ended night is never started again
from older segments that other streams still need), then saves everything once.

The store going away never stops consumption: results wait in the outbox (bounded, on disk) and a
second thread writes them, oldest first, with backoff, when the store is back. Only a full outbox
stops the acknowledgements, so the broker keeps the rest (back-pressure). A night's morning summary
is published once everything of that night is in the store.

Malformed payloads are counted per kind, logged once per kind, set aside on the dead-letter topic
and acknowledged; they never stop the service. A sensor's ``offline`` status ends its night: the
stream is flushed, the sleep window found, the episodes rewritten with their final flags and a
``night`` point written. Batches of a finished night that the broker delivers again (the monitor
died before its acknowledgements arrived) are recognised and dropped, so they cannot start a
phantom stream.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import math
import pickle
import queue
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

from detector.stream import Night, StreamDetector, Update
from legwatch.contracts import payload, topics
from legwatch.contracts.config import Config
from legwatch.monitor.durability import Checkpoints, Journal, Outbox
from legwatch.mqtt import connection as lwmqtt
from legwatch.storage import Point, Store, StoreError, StoreUnavailable, schema, tags_match

log = logging.getLogger("legwatch.monitor")

#: Timestamps outside these bounds (2000-01-01 .. 2100-01-01) are a broken sensor clock, not data.
EARLIEST_T = 946684800.0
LATEST_T = 4102444800.0
#: Longest wait between two attempts to write held results.
MAX_RETRY_S = 10.0
#: How often the monitor says what it holds while the store is away.
SAY_EVERY_S = 15.0
#: At most this many unacknowledged messages in the monitor's hands (MQTT 5 Receive Maximum): while
#: it cannot acknowledge (full outbox), everything else waits with the broker, not in memory.
RECEIVE_MAXIMUM = 200
#: At most this many received messages wait for the worker. Some brokers send more than the Receive
#: Maximum (Mosquitto 2.0.11 loses count of its quota once acknowledgements flow), so when the worker
#: is held up the network thread waits here, and TCP leaves the rest with the broker.
INBOX_MAX = 2000
#: At most this many points per write of held results.
DRAIN_POINTS = 5000
#: How often (at most) the worker checkpoints a few streams; a quarter of ``checkpoint_s`` if shorter.
CHECKPOINT_TICK_S = 0.25
#: Pickling time per tick after which the streams that are not yet due wait for the next tick.
CHECKPOINT_BUDGET_S = 0.01
#: Checkpoint writes that may wait for the writer thread; beyond that ticks are skipped.
CHECKPOINT_QUEUE_MAX = 4
_GLOBAL_REFUSAL = re.compile(r"HTTP (401|403|404)\b")


@dataclass
class _CheckpointJob:
    """What one checkpoint tick writes, in this order (see ``Monitor._write_checkpoint``)."""

    files: list[tuple[str, bytes]]  # (sensor, pickled stream checkpoint)
    state: bytes  # the pickled global state
    gone: list[str]  # sensors whose stream file goes once the global state is durable
    drop_before: int  # journal segments below this one are no longer needed then
    keep: list[str] | None  # a full checkpoint: every stream file but these goes


@dataclass
class SensorStream:
    detector: StreamDetector = field(default_factory=StreamDetector)
    last_seq: int | None = None
    batches: int = 0
    #: wall time of the publisher's last will ("offline" without a time stamp), until data comes again
    will_since: float | None = None


def _is_will(doc: Mapping) -> bool:
    """A status the broker published for a publisher whose connection was lost (its last will),
    not the publisher's own: marked ``"will": true``, or without ``"time"`` (explicit statuses carry
    the time they were sent; a will is composed at connect time and has none)."""
    return doc.get("will") is True or "time" not in doc


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _store_refuses_everything(exc: StoreError) -> bool:
    """Authentication, permission or a missing database: retry later (someone fixes the setup)."""
    return bool(_GLOBAL_REFUSAL.search(str(exc)))


class _HabitPlacement:
    """The store as ``legwatch.habits.store_entries`` sees it inside the monitor: reads go to the real
    store (plus the points this batch still holds), writes join the batch's pending points, so habit
    entries reach the store (or the outbox) with everything else and never block the worker."""

    def __init__(self, store: Store, pending: list[Point]) -> None:
        self.store = store
        self.pending = pending
        self.captured: list[Point] = []

    def query(
        self,
        measurement: str,
        *,
        start: float | None = None,
        end: float | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        found = list(self.store.query(measurement, start=start, end=end, tags=tags))
        for p in [*self.pending, *self.captured]:
            if p.measurement != measurement or (start is not None and p.time < start):
                continue
            if (end is not None and p.time >= end) or not tags_match(p.tags, tags):
                continue
            found.append(p)
        return found

    def write(self, points: Sequence[Point]) -> None:
        self.captured.extend(points)


class Monitor:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        *,
        client_id: str | None = None,
        exit_after_nights: int | None = None,
        on_night: Callable[[str, str, Night], None] | None = None,
        checkpoint_s: float | None = None,
        outbox_max_bytes: int | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.prefix = cfg["mqtt.topic_prefix"]
        self.client_id = client_id or cfg["mqtt.client_id"] or "legwatch-monitor"
        self.streams: dict[str, SensorStream] = {}
        #: sensor -> (last sequence number, last sample time) of its last finished night
        self.ended: dict[str, tuple[int | None, float | None]] = {}
        self.stats: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.nights: list[tuple[str, str, Night]] = []
        self.exit_after_nights = exit_after_nights
        self.on_night = on_night
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.lock = threading.Lock()
        self._stopping = threading.Lock()
        self.client = None
        self.inbox: queue.Queue = queue.Queue(maxsize=INBOX_MAX)
        self._inbox_full_said = False
        self._unconfirmed: deque = deque()
        self.pending_points: list[Point] = []
        self.pending_events: list[tuple[str, str]] = []
        self.latencies: deque[float] = deque(maxlen=20000)
        self.will_grace_s = float(cfg.values.get("monitor.will_grace_s", 300.0))
        if checkpoint_s is None:
            checkpoint_s = float(cfg.values.get("monitor.checkpoint_s", 10.0))
        if outbox_max_bytes is None:
            outbox_max_bytes = int(float(cfg.values.get("monitor.outbox_max_mb", 256.0)) * 1024 * 1024)
        self.checkpoint_s = checkpoint_s
        self._tick_s = min(CHECKPOINT_TICK_S, checkpoint_s / 4)
        state = cfg.data_dir / "monitor" / self.client_id
        self.journal = Journal(state / "journal")
        self.checkpoints = Checkpoints(state)
        self.outbox = Outbox(state / "outbox.sqlite", max_bytes=outbox_max_bytes)
        #: the first journal segment a restart may need
        self.journal_from = self.journal.segment
        self._clock: Callable[[], float] = time.monotonic  # the checkpoints' clock (tests set it)
        self._last_checkpoint = self._clock()
        # -- incremental checkpoints (see _checkpoint) --
        #: live stream -> where a restart finds it: ("file", segment its file starts at, replay from)
        #: or ("absent", replay from, its ``ended`` entry then) for a stream created since it was saved
        self._bases: dict[str, tuple] = {}
        #: sensor -> since when (checkpoint clock) its state on disk is behind: a message was handled
        self._dirty: dict[str, float] = {}
        #: sensors with a stream file on disk (or on its way there)
        self._files: set[str] = set()
        #: the segment the last tick started, and the ended nights then (the base of newer streams)
        self._tick_segment = self.journal.segment
        self._tick_ended: dict[str, tuple[int | None, float | None]] = {}
        self._ckpt_jobs: queue.Queue = queue.Queue()
        self._ckpt_writer: threading.Thread | None = None
        self._ckpt_broken = False  # a write failed: only a full checkpoint puts the files right again
        self._ckpt_retry_at = 0.0
        self._threads: list[threading.Thread] = []
        self._outbox_said = 0.0
        self._full_said = False
        self._summaries_due: list[tuple[str, str, Night]] = []
        self._summary_next_try = 0.0
        self._exiting = False
        self._generation = 0  # +1 per MQTT connection: acknowledge only on the connection that delivered
        self._connected_once = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        # the outbox writer first: replaying the journal may need room in a full outbox
        self._spawn(self._drain_outbox, "monitor-outbox")
        self._restore()
        self._spawn(self._work, "monitor-worker")
        url = self.cfg["mqtt.url"]
        protocol = self.cfg["mqtt.protocol"]
        client, addr = lwmqtt.make_client(
            url,
            self.client_id,
            protocol=protocol,
            persistent=True,
            manual_ack=True,
            ca_file=self.cfg["mqtt.ca_file"],
            receive_maximum=RECEIVE_MAXIMUM,
        )
        self.client = client
        sensors = [s.strip() for s in self.cfg["monitor.sensors"].split(",") if s.strip()] or ["+"]
        wanted = []
        for s in sensors:
            wanted += [topics.samples(self.prefix, s), topics.status(self.prefix, s)]
        wanted.append(topics.habits(self.prefix))  # habit log messages (phone, Home Assistant)

        def on_connect(c, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                if self._connected_once:  # the first connect raises BrokerUnavailable instead
                    log.warning("the MQTT broker refused to reconnect: %s; trying again", reason_code)
                return
            self._generation += 1
            present = bool(getattr(flags, "session_present", False))
            if self._connected_once:
                if present:
                    log.warning("reconnected to the MQTT broker; it kept this monitor's session")
                else:
                    log.error(
                        "reconnected to the MQTT broker, but it lost this monitor's session: messages "
                        "published while the monitor was away may be missing (is broker persistence on?)"
                    )
            self._connected_once = True
            # MQTT 5: retained statuses only for a new subscription, not again on every reconnect
            c.subscribe(lwmqtt.subscriptions(wanted, protocol))
            log.info("monitor subscribed to %s (session %s)", ", ".join(wanted), "kept" if present else "new")

        def on_disconnect(c, userdata, flags, reason_code, properties):
            if self._connected_once and not self.stop_event.is_set():
                log.warning(
                    "lost the MQTT broker (%s); reconnecting by itself, %d message(s) still being handled",
                    reason_code,
                    self.inbox.qsize(),
                )

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = self._on_message
        # connect() chains on_connect after the CONNACK, which subscribes (and again on reconnects)
        lwmqtt.connect(client, addr)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        th = threading.Thread(target=target, name=name, daemon=True)
        th.start()
        self._threads.append(th)

    def stop(self) -> None:
        """Finish the batch in hand, checkpoint, disconnect. Safe to call from any thread, repeatedly."""
        self.stop_event.set()
        with self._stopping:
            if self.done.is_set():
                return
            for th in self._threads:
                if th is not threading.current_thread():
                    th.join(timeout=30)
            with self.lock:
                if self.pending_points:
                    # results that reached neither the store nor the outbox: the journal since the
                    # last checkpoint still holds their messages, and the restart replays it
                    log.warning(
                        "stopping with %d unstored result(s); the next start replays their messages",
                        len(self.pending_points),
                    )
                else:
                    self._checkpoint()
                self._ckpt_jobs.join()  # what the writer thread still had
                if self._ckpt_writer is not None:
                    self._ckpt_jobs.put(None)
            if self.client is not None:
                self._wait_published(5.0)  # episode events and dead letters of the last batches
                self.client.disconnect()
                self.client.loop_stop()
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
    def _on_message(self, client, userdata, msg) -> None:
        item = (time.monotonic(), self._generation, msg)
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

    # -- the worker: journal, detect, store, acknowledge, publish --------------------------------
    def _work(self) -> None:
        while not self.stop_event.is_set():
            try:
                first = self.inbox.get(timeout=0.2)
            except queue.Empty:
                self._idle()
                continue
            batch = [first]
            deadline = time.monotonic() + 0.02
            while len(batch) < 500 and time.monotonic() < deadline:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                self._process(batch)
            except Exception:  # never let the worker die
                log.exception("unexpected error in the monitor worker")
            self._idle()

    def _idle(self) -> None:
        try:
            if self._inbox_full_said and not self.inbox.qsize():
                self._inbox_full_said = False
                log.warning("the worker has caught up; reading messages again")
            self._end_abandoned_nights()
            self._maybe_checkpoint()
            if self._summaries_due and not len(self.outbox) and time.monotonic() >= self._summary_next_try:
                due, self._summaries_due = self._summaries_due, []
                for subject, sensor, night in due:
                    self._publish_summary(subject, sensor, night)
            if (
                self.exit_after_nights is not None
                and not self._exiting
                and len(self.nights) >= self.exit_after_nights
                and not self._summaries_due
                and not len(self.outbox)
                and not self.pending_points
            ):
                self._exiting = True
                threading.Thread(target=self.stop, name="monitor-stop", daemon=True).start()
        except Exception:
            log.exception("unexpected error in the monitor worker")

    def _end_abandoned_nights(self) -> None:
        """End the night of a sensor whose publisher left with its last will and did not come back
        within ``will_grace_s`` (a broker restart, a collector restart: they come back sooner)."""
        now = time.time()
        gone = [
            s
            for s, st in self.streams.items()
            if st.will_since is not None and now - st.will_since >= self.will_grace_s
        ]
        if not gone:
            return
        with self.lock:
            for sensor in gone:
                log.warning(
                    "no data from %s for %.0f s since its connection was lost: ending its night",
                    sensor,
                    self.will_grace_s,
                )
                if not self._end_night(sensor):
                    return
            if not self.pending_points:
                # no message marks this end in the journal: make it durable now
                self._checkpoint(streams=self._tick_quota())

    def _retry(self, what: str, fn: Callable[[], None]) -> bool:
        """Run ``fn`` until it succeeds (a full disk, say); False when stopping first."""
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
            if self.stop_event.wait(1.0):
                return False

    def _process(self, batch: list) -> None:
        journaled = [(m.topic, bytes(m.payload)) for _, _, m in batch if self._stateful(m.topic)]
        with self.lock:
            if not self._retry("writing the journal", lambda: self.journal.append(journaled)):
                return  # stopping: nothing handled, nothing acknowledged
            acks = []
            for received, gen, msg in batch:
                try:
                    ok = self._handle(msg)
                except Exception:  # one bad message must not stop the others
                    log.exception("unexpected error handling %s; set aside", msg.topic)
                    self._reject(msg, "internal", "internal error")
                    ok = True
                if ok:
                    acks.append((received, gen, msg))
            if not self._flush_pending():
                return  # stopping while the store and the outbox are unavailable: no acks, redelivery
        now = time.monotonic()
        for received, gen, msg in acks:
            # a message from an earlier connection is delivered again by the broker: acknowledging
            # its old packet id on this connection could acknowledge a different message
            if self.client is not None and msg.mid is not None and gen == self._generation:
                self.client.ack(msg.mid, msg.qos)
            self.latencies.append(now - received)
        self._publish_events()

    def _stateful(self, topic: str) -> bool:
        parsed = topics.parse(self.prefix, topic)
        return parsed is not None and parsed[1] in ("samples", "status")

    def _flush_pending(self) -> bool:
        """Store what the batch produced, or hold it in the outbox; False only when stopping."""
        pts, self.pending_points = self.pending_points, []
        if not pts:
            return True
        if not len(self.outbox):
            try:
                self.store.write(pts)
                self.stats["points"] += len(pts)
                return True
            except StoreUnavailable as exc:
                log.warning("store unavailable (%s); holding results on disk until it returns", exc)
            except StoreError as exc:
                log.error("the store refused a write (%s); holding the results on disk and retrying", exc)
            self._outbox_said = 0.0  # say what is held right away, then every SAY_EVERY_S
        while self.outbox.full():
            if not self._full_said:
                self._full_said = True
                self._say_outbox(force=True)
            if self.stop_event.wait(0.5):
                self.pending_points = pts + self.pending_points
                return False
        if self._full_said:
            self._full_said = False
            log.warning("the outbox has room again; acknowledging messages again")
        if not self._retry("holding results in the outbox", lambda: self.outbox.put(pts)):
            self.pending_points = pts + self.pending_points
            return False
        self.stats["points_held"] += len(pts)
        self._say_outbox()
        return True

    def _say_outbox(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._outbox_said > SAY_EVERY_S:
            self._outbox_said = now
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

    def _drain_outbox(self) -> None:
        delay = 0.5
        while not self.stop_event.wait(delay):
            if not len(self.outbox):
                delay = 0.5
                continue
            try:
                self._drain_once()
                delay = 0.0
                if not len(self.outbox):
                    log.warning("the store is back: every held result is written")
                    delay = 0.5
            except StoreUnavailable as exc:
                delay = min(max(2 * delay, 1.0), MAX_RETRY_S)
                log.debug("held results not written yet (%s); next attempt in %.0f s", exc, delay)
                self._say_outbox()
            except Exception:
                log.exception("writing held results failed; retrying")
                delay = min(max(2 * delay, 1.0), MAX_RETRY_S)

    def _drain_once(self) -> None:
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
            if _store_refuses_everything(exc):
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
                if _store_refuses_everything(exc):
                    raise StoreUnavailable(str(exc)) from None
                self.stats["points_refused"] += 1
                log.error("the store refuses a %s point at %.3f and it is dropped: %s", p.measurement, p.time, exc)
        log.warning("wrote %d of %d held points one by one after: %s", len(written), len(pts), first)
        return written

    def _publish_events(self) -> None:
        events, self.pending_events = self.pending_events, []
        if self.client is None:
            return
        for topic, body in events:
            self._publish(topic, body)

    def _publish(self, topic: str, body: str) -> None:
        """QoS 1; remembered until the broker has it, so that ``stop`` can wait for it."""
        info = self.client.publish(topic, body, qos=1)
        self._unconfirmed.append(info)
        while self._unconfirmed and self._unconfirmed[0].is_published():
            self._unconfirmed.popleft()

    def _wait_published(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for info in list(self._unconfirmed):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning(
                    "stopping before the broker took %d event(s)", sum(not i.is_published() for i in self._unconfirmed)
                )
                return
            with contextlib.suppress(RuntimeError, ValueError):  # not connected
                info.wait_for_publish(remaining)

    # -- checkpoints -------------------------------------------------------------------------
    def _maybe_checkpoint(self) -> None:
        now = self._clock()
        if now - self._last_checkpoint < self._tick_s:
            return
        with self.lock:
            if self.pending_points:
                return
            if self._ckpt_broken:  # a write failed: everything again, but not at every tick
                if now >= self._ckpt_retry_at:
                    self._ckpt_retry_at = now + self.checkpoint_s
                    self._checkpoint(wait=False)
                return
            if not self.journal.appended and not self._dirty:
                self._last_checkpoint = now  # nothing happened since the last tick
                return
            if self._ckpt_jobs.unfinished_tasks >= CHECKPOINT_QUEUE_MAX:
                return  # the disk is behind: the streams wait for a later tick
            self._checkpoint(wait=False, streams=self._tick_quota())

    def _tick_quota(self) -> int:
        """How many streams this tick saves (more when overdue): every one within 0.8 ``checkpoint_s``."""
        if self.checkpoint_s <= 0:
            return len(self.streams)
        elapsed = min(self._clock() - self._last_checkpoint, self.checkpoint_s)
        return math.ceil(len(self.streams) * elapsed / (0.8 * self.checkpoint_s))

    def _checkpoint(self, wait: bool = True, streams: int | None = None) -> None:
        """One checkpoint tick (call with the lock held): a new journal segment n, then ``streams``
        streams saved (None: every stream), oldest state on disk first, plus every one overdue, each
        as "replay from segment n on", and the global state (ended nights; where every live stream's
        replay starts) as of n.

        Only the pickling happens here, under the lock (consistent with the journal); the files are
        written by a background thread unless ``wait``, in order: the stream files, then the global
        file, then the files of ended streams and the journal segments nothing needs any more go.
        A crash at any point leaves a state that ``_restore`` resumes exactly.
        """
        full = streams is None or self._ckpt_broken
        nxt = self.journal.rotate()
        now = self._clock()
        bases = self._bases
        for s in [s for s in bases if s not in self.streams]:
            del bases[s]  # its night ended: the global state says so as of nxt
        for s in [s for s in self._dirty if s not in self.streams]:
            del self._dirty[s]
        for s in self.streams:
            if s not in bases:  # created since the last tick, where it was absent
                bases[s] = ("absent", self._tick_segment, self._tick_ended.get(s))
        if full:
            order = list(self.streams)
        else:
            order = [s for _, s in heapq.nsmallest(len(self._dirty), ((t, s) for s, t in self._dirty.items()))]
        due = now - max(self.checkpoint_s - 2 * self._tick_s, 0.0)
        files = []
        t0 = time.perf_counter()
        for s in order:
            if (
                not full
                and self._dirty[s] > due
                and (len(files) >= streams or time.perf_counter() - t0 > CHECKPOINT_BUDGET_S)
            ):
                break
            rec = {
                "version": 2,
                "sensor": s,
                "journal_from": nxt,
                "stream": self.streams[s],
                "ended": self.ended.get(s),
            }
            files.append((s, pickle.dumps(rec, protocol=pickle.HIGHEST_PROTOCOL)))
            bases[s] = ("file", nxt, nxt)
            self._dirty.pop(s, None)
        for s, b in bases.items():
            if b[0] == "file" and s not in self._dirty:
                bases[s] = ("file", b[1], nxt)  # no message since its file was written: still its state
        gone = [s for s in self._files if s not in self.streams]
        self._files.difference_update(gone)
        self._files.update(s for s, _ in files)
        ended = dict(self.ended)
        state = {"version": 2, "journal_from": nxt, "ended": ended, "bases": dict(bases)}
        drop = min([nxt, *(b[2] if b[0] == "file" else b[1] for b in bases.values())])
        job = _CheckpointJob(
            files=files,
            state=pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL),
            gone=gone,
            drop_before=drop,
            keep=list(self.streams) if full else None,
        )
        self._tick_segment, self._tick_ended = nxt, ended
        if wait:
            self._ckpt_jobs.join()  # checkpoints are written in order
            self._write_checkpoint(job)
        else:
            if self._ckpt_writer is None or not self._ckpt_writer.is_alive():
                self._ckpt_writer = threading.Thread(
                    target=self._write_checkpoints, name="monitor-checkpoint", daemon=True
                )
                self._ckpt_writer.start()
            self._ckpt_jobs.put(job)
        self.journal_from = drop
        self._last_checkpoint = now
        self.stats["checkpoints"] += 1
        self.stats["streams_checkpointed"] += len(files)

    def _write_checkpoints(self) -> None:
        while True:
            job = self._ckpt_jobs.get()
            try:
                if job is None:
                    return
                self._write_checkpoint(job)
            finally:
                self._ckpt_jobs.task_done()

    def _write_checkpoint(self, job: _CheckpointJob) -> None:
        if self._ckpt_broken and job.keep is None:
            return  # an earlier write failed: the bases of this one may name files that are not there
        try:
            for sensor, blob in job.files:
                self.checkpoints.save_stream_bytes(sensor, blob)
            if job.files:
                self.checkpoints.sync_streams()
            self.checkpoints.save_bytes(job.state)
            if job.keep is not None:
                self.checkpoints.remove_streams_except(job.keep)
                self.checkpoints.remove_legacy()
                if self._ckpt_broken:
                    log.warning("checkpoints are written again")
                self._ckpt_broken = False
            else:
                self.checkpoints.remove_streams(job.gone)
            self.journal.drop_before(job.drop_before)
        except Exception as exc:  # a full disk, an I/O error: the journal keeps everything meanwhile
            if not self._ckpt_broken:
                log.error("writing a checkpoint failed (%s); the journal is kept and every stream saved again", exc)
            self._ckpt_broken = True

    def _restore(self) -> None:
        """Per sensor, the newest valid of its stream file and what the global state says about it
        (absent as of its ``journal_from``, or created since a tick where it was absent); then its
        journaled messages from there on; then a full checkpoint."""
        saved = self.checkpoints.load()
        files = self.checkpoints.load_streams()
        for s in [s for s, f in files.items() if not isinstance(f.get("stream"), SensorStream)]:
            log.error("stream checkpoint %s cannot be read (no stream in it); ignored", self.checkpoints.stream_path(s))
            del files[s]
        legacy = self.checkpoints.load_legacy() if saved is None else None
        default = 0  # where the replay of sensors the global state does not name starts
        bases: dict[str, tuple] = {}
        if saved is not None:
            default = int(saved.get("journal_from", 0))
            self.ended = dict(saved.get("ended", {}))
            bases = dict(saved.get("bases", {}))
        elif legacy is not None:  # the single checkpoint file of earlier versions: read once
            log.warning(
                "resuming from %s of an earlier version; it is replaced by per-stream files",
                self.checkpoints.legacy_path,
            )
            default = int(legacy.get("journal_from", 0))
            self.streams = dict(legacy.get("streams", {}))
            self.ended = dict(legacy.get("ended", {}))
        elif files:
            log.error("the global checkpoint is missing; resuming from %d stream file(s) and the journal", len(files))
        start_at: dict[str, int] = {}
        for s in set(bases) | set(files):
            base, f = bases.get(s), files.get(s)
            if base is not None and base[0] == "file":
                _, file_from, replay_from = base
                if f is None:
                    log.error("the checkpoint of stream %s is missing; replaying what the journal holds of it", s)
                    self.streams.pop(s, None)
                    start_at[s] = 0
                    continue
                if f["journal_from"] < file_from:
                    log.error("the checkpoint of stream %s is older than the global state says; using it anyway", s)
                start = replay_from if f["journal_from"] == file_from else f["journal_from"]
            else:
                if base is not None:  # created after a tick: absent then
                    _, replay_from, ended = base
                    self.streams.pop(s, None)
                    if ended is None:
                        self.ended.pop(s, None)
                    else:
                        self.ended[s] = ended
                else:  # absent (or in the earlier version's file) as of the global state
                    replay_from = default
                start_at[s] = replay_from
                newer = f is not None and (f["journal_from"] > replay_from or (saved is None and legacy is None))
                if not newer:
                    continue  # no file, or one of an earlier night that was not removed yet
                start = f["journal_from"]  # written after the global state: newer than it
            self.streams[s] = f["stream"]
            if f.get("ended") is None:
                self.ended.pop(s, None)
            else:
                self.ended[s] = f["ended"]
            start_at[s] = start
        n = 0
        with self.lock:
            for segment, topic, data in self.journal.replay(min([default, *start_at.values()])):
                parsed = topics.parse(self.prefix, topic)
                if segment < (default if parsed is None else start_at.get(parsed[0], default)):
                    continue  # already in that sensor's checkpoint
                msg = SimpleNamespace(topic=topic, payload=data, qos=1, retain=False, dup=False, mid=None)
                try:
                    self._handle(msg)
                except Exception:  # a message that broke the monitor once must not stop every restart
                    log.exception("unexpected error replaying a journaled message on %s; skipped", topic)
                n += 1
            self.pending_events = []  # published before the restart (consumers dedupe by sensor+start)
            if not self._flush_pending():
                return  # stopped while waiting for room in the outbox: the journal is kept
            if saved is not None or legacy is not None or files or n:
                log.warning(
                    "resumed %d stream(s) from the checkpoint and %d journaled message(s)", len(self.streams), n
                )
                self._checkpoint()

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

    def _handle(self, msg) -> bool:
        if msg.topic == topics.habits(self.prefix):
            return self._habit(msg)
        parsed = topics.parse(self.prefix, msg.topic)
        if parsed is None:
            return True
        sensor, leaf = parsed
        if leaf == "samples" or leaf == "status":
            if sensor not in self._dirty:
                self._dirty[sensor] = self._clock()  # its stream on disk may be behind from now on
            return self._samples(sensor, msg) if leaf == "samples" else self._status(sensor, msg)
        return True

    def _reject(self, msg, kind: str, message: str, sensor: str | None = None) -> None:
        self.rejected[kind] += 1
        if self.rejected[kind] == 1:
            log.warning("set aside a %s payload on %s: %s (further ones are counted)", kind, msg.topic, message)
        if sensor is None:
            sensor = (topics.parse(self.prefix, msg.topic) or ("unknown", ""))[0]
        if self.client is not None:
            self._publish(
                topics.deadletter(self.prefix, sensor),
                json.dumps(
                    {"topic": msg.topic, "reason": kind, "message": message, "hex": bytes(msg.payload[:512]).hex()}
                ),
            )

    def _samples(self, sensor: str, msg) -> bool:
        try:
            batch = payload.decode(msg.payload)
        except payload.PayloadError as exc:
            self._reject(msg, exc.kind, str(exc))
            return True
        if batch.sensor != sensor:
            self._reject(msg, "sensor_mismatch", f"payload sensor {batch.sensor!r} on topic of {sensor!r}")
            return True
        first, last = float(batch.t[0]), float(batch.t[-1])
        if not (math.isfinite(first) and math.isfinite(last) and first >= EARLIEST_T and last <= LATEST_T):
            self._reject(msg, "bad_time", f"sample times {first!r}..{last!r} are not between 2000 and 2100")
            return True
        st = self.streams.get(sensor)
        if st is None:
            ended = self.ended.get(sensor)
            if ended is not None and self._of_ended_night(batch, ended):
                # delivered again after a restart: its night is already finished and stored
                self.stats["stale"] += 1
                return True
            st = self.streams[sensor] = SensorStream()
        if st.last_seq is not None:
            diff = (batch.seq - st.last_seq) % 2**32
            if diff == 0 or diff > 2**31:
                if getattr(msg, "dup", False):  # the broker's redelivery of one handled before
                    self.stats["redelivered"] += 1
                    return True
                self._reject(msg, "duplicate" if diff == 0 else "out_of_order", f"sequence {batch.seq}")
                return True
            if diff > 1:
                self.stats["batches_missing"] += diff - 1
        if st.will_since is not None:
            st.will_since = None
            log.info("data from %s again after its connection was lost: the night goes on", sensor)
        st.last_seq = batch.seq
        st.batches += 1
        up = st.detector.push(batch.t, batch.xyz)
        self.stats["batches"] += 1
        self.stats["samples"] += len(batch)
        return self._store_update(sensor, up)

    @staticmethod
    def _of_ended_night(batch: payload.Batch, ended: tuple[int | None, float | None]) -> bool:
        seq, end = ended
        if seq is not None and (seq - batch.seq) % 2**32 >= 2**31:
            return False  # a later sequence number: new data
        return end is None or float(batch.t[0]) <= end

    def _store_update(self, sensor: str, up: Update) -> bool:
        subject = self.cfg.subject_for(sensor)
        self.pending_points += [schema.episode_point(subject, sensor, e) for e in up.episodes]
        self.pending_points += [schema.activity_point(subject, sensor, e) for e in up.epochs]
        self.pending_points += [schema.gap_point(subject, sensor, g) for g in up.gaps]
        for e in up.episodes:
            self.stats["episodes"] += 1
            event = {"subject": subject, "sensor": sensor, **e.to_dict()}
            self.pending_events.append((topics.episodes(self.prefix, sensor), json.dumps(event)))
        return True

    def _status(self, sensor: str, msg) -> bool:
        if not msg.payload:  # an empty message clears a retained status
            return True
        try:
            doc = json.loads(msg.payload)
            state = doc.get("state")
        except (ValueError, AttributeError, TypeError, RecursionError):
            self._reject(msg, "malformed_status", "status is not a JSON object")
            return True
        if not isinstance(state, str):
            self._reject(msg, "malformed_status", 'status needs "state": "online" or "offline"')
            return True
        st = self.streams.get(sensor)
        if state == "online":
            if not msg.retain and not getattr(msg, "dup", False):
                self.ended.pop(sensor, None)  # a new night may reuse sequence numbers and times
            if st is not None:
                st.will_since = None
            return True
        if state != "offline" or st is None:
            return True
        if _is_will(doc):
            # the publisher's connection was lost (or the broker shut down, which sends every will):
            # it may well come back and go on; the night ends only if it stays away
            if st.will_since is None:
                st.will_since = time.time()
                log.warning(
                    "%s lost its connection (last will); its night ends if no data comes within %.0f s",
                    sensor,
                    self.will_grace_s,
                )
            return True
        return self._end_night(sensor)

    def _end_night(self, sensor: str) -> bool:
        """Flush the stream, store the night; False only when stopping before it was stored."""
        st = self.streams[sensor]
        up, night = st.detector.finish()
        subject = self.cfg.subject_for(sensor)
        self._store_update(sensor, up)
        self.pending_points += schema.night_points(subject, sensor, night)
        if not self._flush_pending():
            return False
        del self.streams[sensor]
        self.ended[sensor] = (st.last_seq, night.end)
        self.nights.append((subject, sensor, night))
        log.info("night of %s/%s stored: %s", subject, sensor, night.summary()["counts"])
        if len(self.outbox):  # the summary reads the night back from the store: once it is all there
            self._summaries_due.append((subject, sensor, night))
        else:
            self._publish_summary(subject, sensor, night)
        if self.on_night:
            self.on_night(subject, sensor, night)
        return True

    # -- habits and the morning summary (legwatch.habits, legwatch.homeassistant) -------------
    def _habit(self, msg) -> bool:
        """Store one habit message (validated as ``legwatch log`` validates); set bad ones aside.

        The entry joins the batch's results (store, or the outbox while the store is away), so a
        store that is down never stalls the worker. With the store reachable, a redelivered message
        (same ``id``) is recognised and a second entry in the same millisecond moves on 1 ms.
        """
        from legwatch.habits import HabitError, entry_from_message, store_entries

        if not msg.payload:  # an empty message clears a retained one: nothing to log
            return True
        try:
            if msg.retain:
                raise HabitError("habit messages must not be retained (it would be logged again on every restart)")
            subject, entry = entry_from_message(msg.payload, self.cfg["subject"])
        except (HabitError, ValueError, TypeError, RecursionError) as exc:
            self.rejected["bad_habit"] += 1
            if self.rejected["bad_habit"] == 1:
                log.warning("set aside a habit message: %s (further ones are counted)", exc)
            else:
                log.info("set aside a habit message: %s", exc)
            reason = str(exc) if isinstance(exc, HabitError) else f"habit message cannot be read: {exc}"
            self._reject_habit(msg, reason)
            return True
        placement = _HabitPlacement(self.store, self.pending_points)
        written = True
        try:
            if len(self.outbox):
                raise StoreUnavailable("results are waiting in the outbox")
            ((_, _, written),) = store_entries(placement, [(subject, entry)])
            self.pending_points += placement.captured
        except (StoreUnavailable, StoreError):  # placed without the store's view; held with the rest
            self.pending_points.append(entry.point(subject))
        except HabitError as exc:
            self.rejected["bad_habit"] += 1
            self._reject_habit(msg, str(exc))
            return True
        self.stats["habits" if written else "habits_duplicate"] += 1
        return True

    def _reject_habit(self, msg, reason: str) -> None:
        if self.client is not None:
            self._publish(
                topics.deadletter(self.prefix, "habits"),
                json.dumps(
                    {"topic": msg.topic, "reason": "bad_habit", "message": reason, "hex": msg.payload[:512].hex()}
                ),
            )

    def _publish_summary(self, subject: str, sensor: str, night: Night) -> None:
        """Publish the retained morning summary with Home Assistant discovery; never fails the night."""
        if self.client is None or night.start is None:
            return
        from legwatch import homeassistant, summary

        try:
            s = summary.build(self.store, subject, sensor=sensor, start=night.start)
            homeassistant.publish_summary(self.client, self.prefix, s, wait=5.0)
            self.stats["summaries"] += 1
        except StoreUnavailable as exc:  # gone again: try once more when it is back
            log.warning("the morning summary of %s/%s waits for the store: %s", subject, sensor, exc)
            self._summaries_due.append((subject, sensor, night))
            self._summary_next_try = time.monotonic() + MAX_RETRY_S
        except Exception:  # the night is stored; a summary that fails must not undo that
            log.exception("could not publish the morning summary of %s/%s", subject, sensor)


def wait_idle(monitor: Monitor, timeout: float) -> bool:
    """Wait until the monitor has finished (``exit_after_nights`` reached)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if monitor.done.wait(0.2):
            return True
    return False
