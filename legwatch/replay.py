"""Publishing a recording over MQTT exactly as the collector would.

The recording is cut into batches of about one second (and at every silence longer than one
second), each published at QoS 1 as a binary v1 payload with consecutive sequence numbers. The
sensor is announced online (retained, with an offline last will) and marked offline at the end.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from legwatch.contracts import payload, topics
from legwatch.mqtt import connection as lwmqtt

BATCH_S = 1.0
#: At most this many published batches wait for the broker's acknowledgement (paho keeps them).
MAX_UNACKED = 2000
log = logging.getLogger("legwatch.replay")


def nominal_rate(t: np.ndarray) -> float:
    if len(t) < 2:
        return 1.0
    dt = np.diff(t)
    dt = dt[dt > 0]
    return float(1.0 / np.median(dt)) if len(dt) else 1.0


def batches(t: np.ndarray, batch_s: float = BATCH_S, rate: float | None = None) -> Iterator[slice]:
    """Slices of about ``batch_s`` each, cut also at every silence longer than ``batch_s``."""
    n = len(t)
    if n == 0:
        return
    rate = rate or nominal_rate(t)
    per = max(1, min(payload.MAX_SAMPLES, int(round(rate * batch_s))))
    cuts = set(range(per, n, per))
    cuts.update((np.flatnonzero(np.diff(t) > batch_s) + 1).tolist())
    bounds = [0, *sorted(cuts), n]
    start = 0
    for b in bounds[1:]:
        if b <= start:
            continue
        # a batch whose samples stray too far from the nominal grid is split where they do
        while start < b:
            k = max(1, payload.fit(t[start:b], rate))
            yield slice(start, start + k)
            start += k


def status_payload(state: str, **extra) -> bytes:
    return json.dumps({"state": state, "time": round(time.time(), 3), **extra}).encode()


def will_payload(source: str = "replay") -> bytes:
    """The retained ``offline`` status the broker publishes if the connection is lost."""
    return json.dumps({"state": "offline", "will": True, "source": source, "reason": "connection lost"}).encode()


def replay(
    t: np.ndarray,
    xyz: np.ndarray,
    *,
    url: str,
    sensor: str,
    prefix: str = "legwatch",
    speed: float = 0.0,
    client_id: str | None = None,
    protocol: int = 5,
    ca_file: str = "",
    first_seq: int = 0,
    progress: Callable[[int, int], None] | None = None,
    stall_timeout: float = 120.0,
) -> int:
    """Publish a recording; returns the number of batches. Waits until the broker acknowledged all.

    A broker that goes away meanwhile is waited for: paho reconnects by itself and sends again what
    the broker had not acknowledged, in order (at most ``MAX_UNACKED`` batches wait in memory). Gives
    up (``BrokerUnavailable``) only after ``stall_timeout`` seconds without any acknowledgement, and
    at once (``PublishRefused``) when the broker refuses a message (MQTT 5: e.g. not authorized).
    """
    if not payload.valid_sensor_id(sensor) or sensor in topics.RESERVED:
        raise ValueError(f"bad sensor id {sensor!r}: use 1-64 of A-Z a-z 0-9 _ . - (not a reserved word)")
    order = np.argsort(t, kind="stable")
    t, xyz = t[order], xyz[order]
    rate = nominal_rate(t)
    client, addr = lwmqtt.make_client(
        url,
        client_id or f"legwatch-replay-{sensor}",
        protocol=protocol,
        persistent=False,
        ca_file=ca_file,
        # the last will: no "time" (the broker sends it later, maybe at its own shutdown) and marked,
        # so the monitor waits for the publisher to come back before it ends the night
        will=(topics.status(prefix, sensor), will_payload()),
    )
    acked = 0
    refused: list[tuple[int, str]] = []
    last_ack = time.monotonic()
    cond = threading.Condition()
    connected = threading.Event()
    # From a lost connection until the broker has acknowledged, on the new connection, everything
    # sent before: no new batch. paho sends its unacknowledged messages again only once the CONNACK
    # is in, so a batch published meanwhile would overtake them and reach the monitor out of order.
    hold = False

    def on_publish(c, userdata, mid, reason_code, properties):
        nonlocal acked, last_ack, hold
        with cond:
            acked += 1
            last_ack = time.monotonic()
            if reason_code is not None and reason_code.is_failure:
                refused.append((mid, str(reason_code)))
            if hold and client.is_connected() and acked >= sent:
                hold = False
            cond.notify_all()

    def on_connect(c, userdata, flags, reason_code, properties):
        nonlocal hold
        if reason_code.is_failure:
            if connected.is_set():  # the first connect raises BrokerUnavailable instead
                log.warning("MQTT broker %s refused to reconnect: %s; trying again", addr.url, reason_code)
            return
        if not connected.is_set():
            connected.set()
            return
        log.warning("reconnected to MQTT broker %s; sending what it has not acknowledged", addr.url)
        with cond:
            if acked >= sent:
                hold = False
                cond.notify_all()

    def on_disconnect(c, userdata, flags, reason_code, properties):
        nonlocal hold, last_ack
        if connected.is_set() and not done:
            with cond:
                hold = True
                if acked >= sent:
                    last_ack = time.monotonic()  # the stall clock: from now
            log.warning(
                "lost MQTT broker %s (%s); holding %d unacknowledged batches and reconnecting",
                addr.url,
                reason_code,
                sent - acked,
            )

    done = False
    sent = 0
    client.on_publish = on_publish
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    lwmqtt.connect(client, addr)

    def check_refused() -> None:
        if refused:
            _, reason = refused[0]
            raise lwmqtt.PublishRefused(
                f"MQTT broker at {addr.url} refused {len(refused)} message(s) for sensor {sensor!r} ({reason}); "
                f"may this user publish to {topics.samples(prefix, sensor)}?"
            )

    def wait_until(cap: int) -> None:
        """Wait until at most ``cap`` messages are unacknowledged and the connection is good for new
        ones; give up after a long stall."""
        with cond:
            while sent - acked > cap or hold:
                check_refused()
                if time.monotonic() - last_ack > stall_timeout:
                    raise lwmqtt.BrokerUnavailable(
                        f"MQTT broker at {addr.url} acknowledged nothing for {stall_timeout:.0f} s; "
                        f"{sent - acked} messages were not delivered"
                    )
                cond.wait(0.5)
            check_refused()

    try:
        client.publish(topics.status(prefix, sensor), status_payload("online", source="replay"), qos=1, retain=True)
        sent = 1
        slices = list(batches(t, rate=rate))
        wall0 = time.monotonic()
        for i, sl in enumerate(slices):
            if speed > 0:
                due = wall0 + (t[sl.start] - t[0]) / speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            data = payload.encode(sensor, first_seq + i, t[sl], xyz[sl], rate)
            wait_until(MAX_UNACKED)  # bound what waits in paho's memory; nothing new while resyncing
            with cond:
                if sent == acked:
                    last_ack = time.monotonic()  # the stall clock runs only while something waits
                sent += 1
            client.publish(topics.samples(prefix, sensor), data, qos=1)
            if progress and (i % 200 == 0 or i == len(slices) - 1):
                progress(i + 1, len(slices))
        wait_until(MAX_UNACKED)
        with cond:
            sent += 1
        client.publish(topics.status(prefix, sensor), status_payload("offline", source="replay"), qos=1, retain=True)
        wait_until(0)
        return len(slices)
    finally:
        done = True
        client.disconnect()
        client.loop_stop()
