"""Publishing a recording over MQTT exactly as the collector would.

The recording is cut into batches of about one second (and at every silence longer than one
second), each published at QoS 1 as a binary v1 payload with consecutive sequence numbers. The
sensor is announced online (retained, with an offline last will) and marked offline at the end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from legwatch import mqtt as lwmqtt
from legwatch import payload, topics

BATCH_S = 1.0


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
) -> int:
    """Publish a recording; returns the number of batches. Waits until the broker acknowledged all."""
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
        will=(topics.status(prefix, sensor), status_payload("offline")),
    )
    acked = 0
    cond = threading.Condition()

    def on_publish(c, userdata, mid, reason_code, properties):
        nonlocal acked
        with cond:
            acked += 1
            cond.notify_all()

    client.on_publish = on_publish
    lwmqtt.connect(client, addr)
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
            client.publish(topics.samples(prefix, sensor), data, qos=1)
            sent += 1
            if progress and (i % 200 == 0 or i == len(slices) - 1):
                progress(i + 1, len(slices))
            # bound what waits in paho's memory
            with cond:
                while sent - acked > 2000:
                    cond.wait(1.0)
        client.publish(topics.status(prefix, sensor), status_payload("offline", source="replay"), qos=1, retain=True)
        sent += 1
        deadline = time.monotonic() + 60
        with cond:
            while acked < sent and time.monotonic() < deadline:
                cond.wait(0.5)
        if acked < sent:
            raise lwmqtt.BrokerUnavailable(f"broker at {addr.url} did not acknowledge {sent - acked} messages")
        return len(slices)
    finally:
        client.disconnect()
        client.loop_stop()
