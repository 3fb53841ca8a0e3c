"""Publishing a recording over MQTT exactly as the collector would: through the collector's own
:class:`collector.publisher.Publisher`.

The recording is cut into batches of about one second (and at every silence longer than one
second), each published at QoS 1 as a binary v1 payload with consecutive sequence numbers, in
order. The sensor is announced online (retained, with an offline last will) and marked offline at
the end.

The publisher's spool is kept in memory here (:class:`MemorySpool`): a replay needs no durability,
as the recording is its source, and the collector's disk spool cost three to four times the CPU of
the whole replay (it rewrites its state file after every batch, under a lock the publisher's thread
needs for every read and acknowledgement), also on tmpfs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from collector.publisher import Publisher
from legwatch.contracts import payload, status, topics
from legwatch.mqtt.connection import RECONNECT_MAX_S, BrokerUnavailable, PublishRefused

BATCH_S = 1.0
#: At most this many batches wait for the broker's acknowledgement (in the spool).
MAX_UNACKED = 2000
#: How many messages are in flight at a time (paho's and Mosquitto's usual in-flight limit).
WINDOW = 100
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

    A broker that goes away meanwhile is waited for: the connection comes back by itself and sends
    again what the broker had not acknowledged, in order (at most ``MAX_UNACKED`` batches wait in the
    spool). Gives up (``BrokerUnavailable``) only after ``stall_timeout`` seconds without any
    acknowledgement, and at once (``PublishRefused``) when the broker refuses a message (MQTT 5: e.g.
    not authorized).
    """
    if not payload.valid_sensor_id(sensor) or sensor in topics.RESERVED:
        raise ValueError(f"bad sensor id {sensor!r}: use 1-64 of A-Z a-z 0-9 _ . - (not a reserved word)")
    order = np.argsort(t, kind="stable")
    t, xyz = t[order], xyz[order]
    rate = nominal_rate(t)
    spool = MemorySpool()
    pub = Publisher(
        url=url,
        client_id=client_id or f"legwatch-replay-{sensor}",
        prefix=prefix,
        sensor=sensor,
        spool=spool,
        protocol=protocol,
        ca_file=ca_file,
        window=WINDOW,
        reconnect_max_s=RECONNECT_MAX_S,
        retry_refused_s=None,
        persistent=False,
        # the last will: no "time" (the broker sends it later, maybe at its own shutdown) and
        # marked, so the monitor waits for the publisher to come back before it ends the night
        will=status.will("replay"),
        logger=log,
    )
    pub.start(10.0, background=False)
    try:
        return _publish(pub, spool, t, xyz, rate, sensor, speed, first_seq, progress, stall_timeout)
    finally:
        pub.close(drain_s=0)


def _publish(pub, spool, t, xyz, rate, sensor, speed, first_seq, progress, stall_timeout) -> int:
    stall = _Stall(pub, stall_timeout)

    def wait_until(cap: int) -> None:
        """Wait until at most ``cap`` messages are unacknowledged; give up on a refusal or a long stall."""
        while not pub.wait_backlog(cap, 0.5) or pub.refused:
            if pub.refused:
                raise PublishRefused(
                    f"MQTT broker at {pub.url} refused {pub.refused} message(s) for sensor {sensor!r} "
                    f"({pub.refusal}); may this user publish to {pub.samples_topic}?"
                )
            stall.check()

    pub.add_status(status.online(source="replay"))
    slices = list(batches(t, rate=rate))
    wall0 = time.monotonic()
    for i, sl in enumerate(slices):
        if speed > 0:
            due = wall0 + (t[sl.start] - t[0]) / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        wait_until(MAX_UNACKED)
        seq = spool.append(lambda n, sl=sl: payload.encode(sensor, first_seq + n, t[sl], xyz[sl], rate))
        pub.add_batch(seq)
        if progress and (i % 200 == 0 or i == len(slices) - 1):
            progress(i + 1, len(slices))
    wait_until(MAX_UNACKED)
    pub.add_status(status.offline(source="replay"))
    wait_until(0)
    return len(slices)


class MemorySpool:
    """What :class:`collector.publisher.Publisher` needs of a :class:`collector.spool.Spool`, in memory:
    batches by sequence number (from 0) until the broker acknowledged them."""

    directory = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[int, bytes] = {}
        self.next_seq = 0

    def append(self, build: Callable[[int], bytes]) -> int:
        """Give the next sequence number to ``build`` and keep what it returns (one writer)."""
        seq = self.next_seq
        data = build(seq)
        with self._lock:
            self._batches[seq] = data
            self.next_seq = seq + 1
        return seq

    def read(self, seq: int) -> bytes | None:
        with self._lock:
            return self._batches.get(seq)

    def ack(self, seq: int) -> None:
        with self._lock:
            self._batches.pop(seq, None)

    def pending(self) -> list[int]:
        with self._lock:
            return list(self._batches)

    def __len__(self) -> int:
        with self._lock:
            return len(self._batches)


class _Stall:
    """The stall clock: how long nothing was acknowledged while something waited."""

    def __init__(self, pub, timeout: float) -> None:
        self.pub, self.timeout = pub, timeout
        self.acked = pub.acked
        self.since = time.monotonic()

    def check(self) -> None:
        now = time.monotonic()
        if self.pub.acked != self.acked:
            self.acked, self.since = self.pub.acked, now
        elif now - self.since > self.timeout:
            raise BrokerUnavailable(
                f"MQTT broker at {self.pub.url} acknowledged nothing for {self.timeout:.0f} s; "
                f"{self.pub.backlog} messages were not delivered"
            )
