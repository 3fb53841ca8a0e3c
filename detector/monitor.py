"""The detector service: MQTT sample batches in, episodes out (store and MQTT events).

One ``StreamDetector`` per sensor. A message is acknowledged (MQTT 5 / 3.1.1 manual ack) only after
everything it produced is stored, so a monitor that dies loses nothing: the broker redelivers.
Malformed payloads are counted per kind, logged once per kind, set aside on the dead-letter topic
and acknowledged; they never stop the service. A sensor's ``offline`` status ends its night: the
stream is flushed, the sleep window found, the episodes rewritten with their final flags and a
``night`` point written.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

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

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
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
        self.stop_event.set()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
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
        try:
            with self.lock:
                acked = self._handle(msg)
        except Exception:  # never let one message kill the service
            log.exception("unexpected error handling %s; set aside", msg.topic)
            self._reject(msg, "internal", "internal error")
            acked = True
        if acked:
            client.ack(msg.mid, msg.qos)

    def _handle(self, msg) -> bool:
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
        pts: list[Point] = [schema.episode_point(subject, sensor, e) for e in up.episodes]
        pts += [schema.activity_point(subject, sensor, e) for e in up.epochs]
        pts += [schema.gap_point(subject, sensor, g) for g in up.gaps]
        if not self._write(pts):
            return False
        for e in up.episodes:
            self.stats["episodes"] += 1
            if self.client is not None:
                event = {"subject": subject, "sensor": sensor, **e.to_dict()}
                self.client.publish(topics.episodes(self.prefix, sensor), json.dumps(event), qos=1)
        return True

    def _write(self, pts: list[Point]) -> bool:
        if not pts:
            return True
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                self.store.write(pts)
                return True
            except StoreUnavailable as exc:
                self.stats["store_retries"] += 1
                log.warning("store unavailable (%s); holding %d points, retrying in %.0f s", exc, len(pts), delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)
        return False

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
        if not self._store_update(sensor, up):
            return False
        if not self._write(schema.night_points(subject, sensor, night)):
            return False
        del self.streams[sensor]
        self.nights.append((subject, sensor, night))
        log.info("night of %s/%s stored: %s", subject, sensor, night.summary()["counts"])
        if self.on_night:
            self.on_night(subject, sensor, night)
        if self.exit_after_nights is not None and len(self.nights) >= self.exit_after_nights:
            threading.Thread(target=self.stop, daemon=True).start()
        return True


def wait_idle(monitor: Monitor, timeout: float) -> bool:
    """Wait until the monitor has finished (``exit_after_nights`` reached)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if monitor.done.wait(0.2):
            return True
    return False
