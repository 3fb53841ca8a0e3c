"""The detector service: MQTT sample batches in, episodes out (store and MQTT events).

One ``StreamDetector`` per sensor. Messages are taken off the network thread into a queue and
handled in batches by one worker: each batch is first appended to the journal (fsynced), then run
through the detectors, its results written to the store in one request (or to the on-disk outbox
when the store is down), and only then are its messages acknowledged (MQTT manual ack) and the
episode events published. Every ``checkpoint_s`` the streams' state is checkpointed and the
journal restarted, so a monitor killed at any moment resumes exactly where it was: checkpoint plus
journal, then the broker's redeliveries (duplicates are recognised by sequence number).

Malformed payloads are counted per kind, logged once per kind, set aside on the dead-letter topic
and acknowledged; they never stop the service. A sensor's ``offline`` status ends its night: the
stream is flushed, the sleep window found, the episodes rewritten with their final flags and a
``night`` point written.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from detector.durability import Checkpoints, Journal, Outbox
from detector.stream import Night, StreamDetector, Update
from legwatch import mqtt as lwmqtt
from legwatch import payload, schema, topics
from legwatch.config import Config
from legwatch.storage import Point, Store, StoreUnavailable

log = logging.getLogger("legwatch.monitor")


@dataclass
class SensorStream:
    detector: StreamDetector = field(default_factory=StreamDetector)
    last_seq: int | None = None
    batches: int = 0


class Monitor:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        *,
        client_id: str | None = None,
        exit_after_nights: int | None = None,
        on_night: Callable[[str, str, Night], None] | None = None,
        checkpoint_s: float = 10.0,
        outbox_max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.prefix = cfg["mqtt.topic_prefix"]
        self.client_id = client_id or cfg["mqtt.client_id"] or "legwatch-monitor"
        self.streams: dict[str, SensorStream] = {}
        self.stats: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.nights: list[tuple[str, str, Night]] = []
        self.exit_after_nights = exit_after_nights
        self.on_night = on_night
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.client = None
        self.inbox: queue.Queue = queue.Queue()
        self.pending_points: list[Point] = []
        self.pending_events: list[tuple[str, str]] = []
        self.latencies: deque[float] = deque(maxlen=20000)
        self.checkpoint_s = checkpoint_s
        state = cfg.data_dir / "monitor" / self.client_id
        self.journal = Journal(state / "journal")
        self.checkpoints = Checkpoints(state)
        self.outbox = Outbox(state / "outbox.sqlite", max_bytes=outbox_max_bytes)
        self.journal_from = self.journal.segment
        self._last_checkpoint = time.monotonic()
        self._threads: list[threading.Thread] = []
        self._outbox_said = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._restore()
        for target, name in ((self._work, "monitor-worker"), (self._drain_outbox, "monitor-outbox")):
            th = threading.Thread(target=target, name=name, daemon=True)
            th.start()
            self._threads.append(th)
        url = self.cfg["mqtt.url"]
        client, addr = lwmqtt.make_client(
            url,
            self.client_id,
            protocol=self.cfg["mqtt.protocol"],
            persistent=True,
            manual_ack=True,
            ca_file=self.cfg["mqtt.ca_file"],
        )
        self.client = client
        sensors = [s.strip() for s in self.cfg["monitor.sensors"].split(",") if s.strip()] or ["+"]

        def on_connect(c, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                return
            subs = []
            for s in sensors:
                subs += [(topics.samples(self.prefix, s), 1), (topics.status(self.prefix, s), 1)]
            subs.append((topics.habits(self.prefix), 1))  # habit log messages (phone, Home Assistant)
            c.subscribe(subs)
            log.info("monitor subscribed to %s", ", ".join(t for t, _ in subs))

        def on_disconnect(c, userdata, flags, reason_code, properties):
            if not self.stop_event.is_set():
                log.warning("lost the MQTT broker (%s); reconnecting", reason_code)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = self._on_message
        # connect() chains on_connect after the CONNACK, which subscribes (and again on reconnects)
        lwmqtt.connect(client, addr)

    def stop(self) -> None:
        if self.stop_event.is_set():
            self.done.set()
            return
        self.stop_event.set()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        for th in self._threads:
            if th is not threading.current_thread():
                th.join(timeout=30)
        with self.lock:
            self._checkpoint()
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
        self.inbox.put((time.monotonic(), msg))

    # -- the worker: journal, detect, store, acknowledge, publish --------------------------------
    def _work(self) -> None:
        while not self.stop_event.is_set():
            try:
                first = self.inbox.get(timeout=0.2)
            except queue.Empty:
                self._maybe_checkpoint()
                continue
            batch = [first]
            deadline = time.monotonic() + 0.02
            while len(batch) < 1000 and time.monotonic() < deadline:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                self._process(batch)
            except Exception:  # never let the worker die
                log.exception("unexpected error in the monitor worker")
            self._maybe_checkpoint()

    def _process(self, batch: list) -> None:
        journaled = [(m.topic, bytes(m.payload)) for _, m in batch if self._stateful(m.topic)]
        with self.lock:
            self.journal.append(journaled)
            acks = []
            for received, msg in batch:
                try:
                    ok = self._handle(msg)
                except Exception:  # one bad message must not stop the others
                    log.exception("unexpected error handling %s; set aside", msg.topic)
                    self._reject(msg, "internal", "internal error")
                    ok = True
                if ok:
                    acks.append((received, msg))
            if not self._flush_pending():
                return  # stopping while the store and the outbox are unavailable: no acks, redelivery
        now = time.monotonic()
        for received, msg in acks:
            if self.client is not None and msg.mid is not None:
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
        while self.outbox.full():
            self._say_outbox(force=True)
            if self.stop_event.wait(1.0):
                self.pending_points = pts
                return False
        self.outbox.put(pts)
        self.stats["points_held"] += len(pts)
        self._say_outbox()
        return True

    def _say_outbox(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._outbox_said > 30:
            self._outbox_said = now
            full = " (full: no longer acknowledging, the broker keeps the rest)" if self.outbox.full() else ""
            log.warning(
                "holding %d points in %d batches (%.1f MB) for the store%s",
                self.outbox.points,
                len(self.outbox),
                self.outbox.bytes / 1e6,
                full,
            )

    def _drain_outbox(self) -> None:
        delay = 1.0
        while not self.stop_event.wait(delay if len(self.outbox) else 0.5):
            if not len(self.outbox):
                delay = 1.0
                continue
            try:
                for ids_points in self.outbox.peek(20):
                    i, pts = ids_points
                    self.store.write(pts)
                    self.outbox.remove([i])
                    self.stats["points"] += len(pts)
                delay = 0.1
                if not len(self.outbox):
                    log.warning("store is back: every held result is written")
            except StoreUnavailable:
                delay = min(delay * 2, 30.0)
                self._say_outbox()
            except Exception:
                log.exception("writing held results failed; retrying")
                delay = min(delay * 2, 30.0)

    def _publish_events(self) -> None:
        events, self.pending_events = self.pending_events, []
        if self.client is None:
            return
        for topic, body in events:
            self.client.publish(topic, body, qos=1)

    # -- checkpoints -------------------------------------------------------------------------
    def _maybe_checkpoint(self) -> None:
        if time.monotonic() - self._last_checkpoint >= self.checkpoint_s:
            with self.lock:
                self._checkpoint()

    def _checkpoint(self) -> None:
        """Save every stream's state, then start the journal afresh (call with the lock held)."""
        nxt = self.journal.rotate()
        self.checkpoints.save({"version": 1, "streams": self.streams, "journal_from": nxt})
        self.journal.drop_before(nxt)
        self.journal_from = nxt
        self._last_checkpoint = time.monotonic()
        self.stats["checkpoints"] += 1

    def _restore(self) -> None:
        state = self.checkpoints.load()
        start = 0
        if state is not None:
            self.streams = state.get("streams", {})
            start = int(state.get("journal_from", 0))
        n = 0
        with self.lock:
            for topic, data in self.journal.replay(start):
                msg = SimpleNamespace(topic=topic, payload=data, qos=1, retain=False, mid=None)
                self._handle(msg)
                n += 1
            self.pending_events = []  # published before the restart (consumers dedupe by sensor+start)
            self._flush_pending()
            if state is not None or n:
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
        if leaf == "samples":
            return self._samples(sensor, msg)
        if leaf == "status":
            return self._status(sensor, msg)
        return True

    def _reject(self, msg, kind: str, message: str) -> None:
        self.rejected[kind] += 1
        if self.rejected[kind] == 1:
            log.warning("set aside a %s payload on %s: %s (further ones are counted)", kind, msg.topic, message)
        sensor = (topics.parse(self.prefix, msg.topic) or ("unknown", ""))[0]
        if self.client is not None:
            self.client.publish(
                topics.deadletter(self.prefix, sensor),
                json.dumps({"topic": msg.topic, "reason": kind, "message": message, "hex": msg.payload[:512].hex()}),
                qos=1,
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
        st = self.streams.setdefault(sensor, SensorStream())
        if st.last_seq is not None:
            diff = (batch.seq - st.last_seq) % 2**32
            if diff == 0 or diff > 2**31:
                self._reject(msg, "duplicate" if diff == 0 else "out_of_order", f"sequence {batch.seq}")
                return True
            if diff > 1:
                self.stats["batches_missing"] += diff - 1
        st.last_seq = batch.seq
        st.batches += 1
        up = st.detector.push(batch.t, batch.xyz)
        self.stats["batches"] += 1
        self.stats["samples"] += len(batch)
        return self._store_update(sensor, up)

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
        try:
            state = json.loads(msg.payload or b"{}").get("state")
        except (ValueError, AttributeError):
            self._reject(msg, "malformed_status", "status is not a JSON object")
            return True
        if state != "offline" or sensor not in self.streams:
            return True
        st = self.streams[sensor]
        up, night = st.detector.finish()
        subject = self.cfg.subject_for(sensor)
        self._store_update(sensor, up)
        self.pending_points += schema.night_points(subject, sensor, night)
        if not self._flush_pending():  # the summary below reads the night back from the store
            return False
        del self.streams[sensor]
        self.nights.append((subject, sensor, night))
        log.info("night of %s/%s stored: %s", subject, sensor, night.summary()["counts"])
        self._publish_summary(subject, sensor, night)
        if self.on_night:
            self.on_night(subject, sensor, night)
        if self.exit_after_nights is not None and len(self.nights) >= self.exit_after_nights:
            threading.Thread(target=self.stop, daemon=True).start()
        return True

    # -- habits and the morning summary (legwatch.habits, legwatch.homeassistant) -------------
    def _habit(self, msg) -> bool:
        """Store one habit message (validated as ``legwatch log`` validates); set bad ones aside."""
        from legwatch.habits import HabitError, entry_from_message, store_entries

        if not msg.payload:  # an empty message clears a retained one: nothing to log
            return True
        try:
            if msg.retain:
                raise HabitError("habit messages must not be retained (it would be logged again on every restart)")
            subject, entry = entry_from_message(msg.payload, self.cfg["subject"])
        except HabitError as exc:
            self.rejected["bad_habit"] += 1
            log.warning("set aside a habit message: %s", exc)
            if self.client is not None:
                self.client.publish(
                    topics.deadletter(self.prefix, "habits"),
                    json.dumps(
                        {"topic": msg.topic, "reason": "bad_habit", "message": str(exc), "hex": msg.payload[:512].hex()}
                    ),
                    qos=1,
                )
            return True
        try:
            ((_, _, written),) = store_entries(self.store, [(subject, entry)])
            self.stats["habits" if written else "habits_duplicate"] += 1
        except StoreUnavailable:  # held with the batch's other results (outbox) until the store returns
            self.pending_points.append(entry.point(subject))
            self.stats["habits"] += 1
        return True

    def _publish_summary(self, subject: str, sensor: str, night: Night) -> None:
        """Publish the retained morning summary with Home Assistant discovery; never fails the night."""
        if self.client is None or night.start is None:
            return
        from legwatch import homeassistant, summary

        try:
            s = summary.build(self.store, subject, sensor=sensor, start=night.start)
            homeassistant.publish_summary(self.client, self.prefix, s, wait=5.0)
            self.stats["summaries"] += 1
        except Exception:  # the night is stored; a summary that fails must not undo that
            log.exception("could not publish the morning summary of %s/%s", subject, sensor)


def wait_idle(monitor: Monitor, timeout: float) -> bool:
    """Wait until the monitor has finished (``exit_after_nights`` reached)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if monitor.done.wait(0.2):
            return True
    return False
