"""Publishing spooled batches and status messages over MQTT, in order, acknowledged.

One ordered outbox holds sequence numbers of spooled batches and status messages, in the order the
collector produced them. A worker thread hands at most ``window`` of them at a time to paho
(QoS 1); a batch leaves the spool only when its PUBACK arrives (``on_publish``), so nothing the
broker has not confirmed is ever forgotten. While the broker is away nothing new is handed over
(the spool, not paho's memory, holds the backlog); after a reconnect paho first re-sends what was
in flight (same message ids) and only when all of it is acknowledged does the worker continue,
so batches reach the broker in sequence order and none is sent twice by us (QoS 1 may still
duplicate one whose PUBACK was lost in the outage; consumers dedup by sequence number).

The client uses a fixed id and a persistent session (``legwatch.mqtt.connection.make_client``), the sensor's
status topic as its retained ``offline`` last will, and connects in the background: an unreachable
broker at startup is not an error (the spool fills and is sent later); a broker that *refuses* the
connection (bad credentials, not authorised) is: :class:`legwatch.mqtt.connection.BrokerUnavailable`.

paho calls back on its network thread while holding its own locks, so callbacks only record
events and wake the worker; only the worker calls ``publish``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from legwatch.contracts import topics
from legwatch.mqtt import connection as lwmqtt

from .spool import Spool

log = logging.getLogger("legwatch.collector.mqtt")

__all__ = ["Publisher", "status_payload"]

#: CONNACK reason codes that retrying will not fix (MQTT 5 values; paho maps 3.1.1 codes onto them).
REFUSALS = {0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C}


def status_payload(state: str, *, stamp: bool = True, **extra: Any) -> bytes:
    """``{"state": "online"|"offline", "time": ..., ...}`` as ``legwatch replay`` publishes it."""
    body: dict[str, Any] = {"state": state}
    if stamp:
        body["time"] = round(time.time(), 3)
    body.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps(body).encode()


class Publisher:
    """Sends a :class:`~collector.spool.Spool` and status messages to the broker; see the module doc."""

    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        prefix: str,
        sensor: str,
        spool: Spool,
        protocol: int = 5,
        ca_file: str = "",
        window: int = 32,
        keepalive: int = 30,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        retry_refused_s: float = 10.0,
    ) -> None:
        self.spool = spool
        self.samples_topic = topics.samples(prefix, sensor)
        self.status_topic = topics.status(prefix, sensor)
        self.window = max(1, min(int(window), 100))
        self.keepalive = keepalive
        self.protocol = protocol
        self.retry_refused_s = retry_refused_s
        will = status_payload("offline", stamp=False, source="collector", reason="collector connection lost")
        self.client, self.addr = lwmqtt.make_client(
            url, client_id, protocol=protocol, persistent=True, ca_file=ca_file, will=(self.status_topic, will)
        )
        self.client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._outbox: deque[int | bytes] = deque(spool.pending())
        self._inflight: dict[int, int | bytes] = {}
        self._acks: deque[tuple[int, bool, str]] = deque()
        self._connected = False
        self._resync = False
        self._paused_until = 0.0
        self._closing = False
        self._wake = threading.Event()
        self._first_answer = threading.Event()
        self._refusal: str | None = None
        self._thread = threading.Thread(target=self._run, name="legwatch-publisher", daemon=True)
        #: Counters for logs and tests.
        self.published = 0
        self.acked = 0
        self.connects = 0

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, wait_s: float = 5.0) -> None:
        """Connect in the background; wait up to ``wait_s`` for the first answer."""
        kwargs: dict[str, Any] = {"keepalive": self.keepalive}
        if self.protocol == 5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = lwmqtt.SESSION_EXPIRY_S
            kwargs["clean_start"] = False
            kwargs["properties"] = props
        self.client.connect_async(self.addr.host, self.addr.port, **kwargs)
        self.client.loop_start()
        self._thread.start()
        if not self._first_answer.wait(wait_s):
            log.warning(
                "MQTT broker at %s does not answer yet; batches are spooled to %s until it does",
                self.addr.url,
                self.spool.directory,
            )
        elif self._refusal:
            self.close(drain_s=0)
            raise lwmqtt.BrokerUnavailable(f"MQTT broker at {self.addr.url} refused the connection: {self._refusal}")

    def close(self, drain_s: float = 5.0) -> bool:
        """Wait up to ``drain_s`` for everything to be acknowledged, then disconnect cleanly (no
        last will). Returns whether the outbox was empty."""
        drained = self.drain(drain_s) if drain_s > 0 else self.backlog == 0
        with self._lock:
            self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()
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

    @property
    def backlog(self) -> int:
        """Items not yet acknowledged (waiting or in flight)."""
        with self._lock:
            return len(self._outbox) + len(self._inflight)

    def drain(self, timeout: float) -> bool:
        """Block until the outbox is empty and everything is acknowledged, or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while self.backlog:
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.02)
        return True

    # -- paho callbacks (network thread): record and wake ----------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if reason_code.value in REFUSALS:
                self._refusal = str(reason_code)
            log.warning("MQTT broker at %s refused the connection: %s", self.addr.url, reason_code)
            self._first_answer.set()
            return
        with self._lock:
            self._connected = True
            self._resync = bool(self._inflight)  # let paho re-send those first
            backlog = len(self._outbox) + len(self._inflight)
        self.connects += 1
        self._refusal = None
        log.info("connected to MQTT broker %s; %d messages to send", self.addr.url, backlog)
        self._first_answer.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            was, self._connected = self._connected, False
            self._resync = True
            closing = self._closing
        if was and not closing:
            log.warning("lost the MQTT broker at %s (%s); spooling until it returns", self.addr.url, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
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
            self._pump()

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
                    # The broker refused this one (e.g. not authorised): keep it, retry later.
                    self._outbox.appendleft(item)
                    self._paused_until = time.monotonic() + self.retry_refused_s
            if not ok:
                log.error("MQTT broker refused a message on %s: %s; retrying later", self.samples_topic, reason)
                continue
            self.acked += 1
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
                item = self._outbox.popleft()
            if isinstance(item, int):
                data = self.spool.read(item)
                if data is None:  # dropped from a full spool meanwhile
                    continue
                info = self.client.publish(self.samples_topic, data, qos=1)
            else:
                info = self.client.publish(self.status_topic, item, qos=1, retain=True)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                # NO_CONN: paho keeps the message and sends it on reconnect; anything else: retry later.
                with self._lock:
                    self._outbox.appendleft(item)
                log.warning("paho could not take a message (%s); retrying", mqtt.error_string(info.rc))
                time.sleep(0.1)
                return
            with self._lock:
                self._inflight[info.mid] = item
            self.published += 1
