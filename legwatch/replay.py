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

End to end (``legwatch.contracts.ack``): each replay is a new ``session``; a batch leaves the spool
only once the monitor confirmed storing it, at most ``WINDOW`` beyond that are in flight (so
``speed=0`` is as fast as the monitor stores, and a broker at its default limits drops nothing),
and the replay ends when the monitor confirmed the end of the night too. It exits non-zero when the
monitor stops confirming before that; without any monitor acknowledging (see ``replay``) it goes on
with the broker's acknowledgements and warns.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from collector.publisher import Publisher
from legwatch.contracts import payload, status, topics
from legwatch.mqtt.connection import RECONNECT_MAX_S, BrokerUnavailable, PublishRefused

BATCH_S = 1.0
#: At most this many batches wait in the spool (not yet confirmed).
MAX_UNACKED = 2000
#: How many messages are in flight at a time (paho's and Mosquitto's usual in-flight limit), and
#: how many batches at most beyond what the monitor confirmed (end to end).
WINDOW = 100
#: Without any acknowledgement from a monitor this long after the first batch, go on with the
#: broker's acknowledgements only.
ACK_WAIT_S = 30.0
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


@contextlib.contextmanager
def confirmed_progress() -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar of the batches the monitor confirmed, on stderr when it is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (TextColumn("confirmed by the monitor"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("replay", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


class NotConfirmed(BrokerUnavailable):
    """The monitor confirmed storing less than was sent (one-line message)."""


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
    ack_wait_s: float = ACK_WAIT_S,
) -> int:
    """Publish a recording; returns the number of batches. Waits until the monitor confirmed
    storing all of them and the end of the night (end to end, ``contracts.ack``).

    At most ``WINDOW`` batches are in flight beyond what the monitor confirmed, so ``speed=0`` is
    as fast as the monitor stores. A broker or monitor that goes away meanwhile is waited for; what
    the monitor asks again is sent again. Gives up after ``stall_timeout`` seconds without progress:
    ``NotConfirmed`` when the monitor had acknowledged before (it says how much it confirmed),
    ``BrokerUnavailable`` when the broker took nothing; at once (``PublishRefused``) when the broker
    refuses a message (MQTT 5: e.g. not authorized). When no monitor acknowledges anything within
    ``ack_wait_s`` of the first batch (none running, or one without acknowledgements), it goes on
    with the broker's acknowledgements only, as before acknowledgements existed, and says so.
    ``progress(done, total)``: batches confirmed (or, without a monitor, taken by the broker).
    """
    if not payload.valid_sensor_id(sensor) or sensor in topics.RESERVED:
        raise ValueError(f"bad sensor id {sensor!r}: use 1-64 of A-Z a-z 0-9 _ . - (not a reserved word)")
    order = np.argsort(t, kind="stable")
    t, xyz = t[order], xyz[order]
    rate = nominal_rate(t)
    spool = MemorySpool(first_seq)
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
        ack_window=WINDOW,
        ack_wait_s=ack_wait_s,
    )
    pub.start(10.0, background=False)
    try:
        return _publish(pub, spool, t, xyz, rate, sensor, speed, progress, stall_timeout)
    finally:
        pub.close(drain_s=0)


def _publish(pub, spool, t, xyz, rate, sensor, speed, progress, stall_timeout) -> int:
    stall = _Stall(pub, stall_timeout)
    slices = list(batches(t, rate=rate))
    total = len(slices)

    def tell() -> None:
        if progress:
            progress(pub.confirmed if not pub.broker_only else pub.acked, total)

    def wait_until(done: Callable[[], bool]) -> None:
        """Wait until ``done()``; give up on a refusal or a long stall."""
        while not done():
            if pub.refused:
                raise PublishRefused(
                    f"MQTT broker at {pub.url} refused {pub.refused} message(s) for sensor {sensor!r} "
                    f"({pub.refusal}); may this user publish to {pub.samples_topic}?"
                )
            stall.check(total)
            tell()
            pub.wait_confirmed(0, 0.25)

    pub.add_status(status.online(source="replay"))
    wall0 = time.monotonic()
    for i, sl in enumerate(slices):
        if speed > 0:
            due = wall0 + (t[sl.start] - t[0]) / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if len(spool) >= MAX_UNACKED:
            wait_until(lambda: len(spool) < MAX_UNACKED)
        seq = spool.append(lambda n, sl=sl: payload.encode(sensor, n, t[sl], xyz[sl], rate))
        pub.add_batch(seq)
        if i % 200 == 0:
            tell()
    pub.add_status(status.offline(source="replay"))
    # the end: everything confirmed and the night's end too (or, without a monitor, with the broker)
    wait_until(lambda: pub.backlog == 0 and (pub.broker_only or (pub.end_to_end and pub.night_confirmed)))
    tell()
    if pub.broker_only:
        log.warning(
            "no monitor confirmed storing any of the %d batches (it waited %.0f s for an acknowledgement "
            "on %s); the broker took all of them",
            total,
            pub.ack_wait_s,
            pub.ack_topic,
        )
    else:
        log.info("the monitor confirmed storing all %d batches and the end of the night", total)
    return total


class MemorySpool:
    """What :class:`collector.publisher.Publisher` needs of a :class:`collector.spool.Spool`, in memory:
    batches by sequence number (from ``first_seq``) until they are confirmed."""

    directory = "memory"

    def __init__(self, first_seq: int = 0) -> None:
        #: this replay's numbering, for the monitor's end-to-end acknowledgement
        self.session = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._batches: dict[int, bytes] = {}
        self.next_seq = first_seq

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
    """The stall clock: how long nothing moved (the broker's or the monitor's acknowledgements)."""

    def __init__(self, pub, timeout: float) -> None:
        self.pub, self.timeout = pub, timeout
        self.seen = self._mark()
        self.since = time.monotonic()

    def _mark(self) -> tuple[int, int]:
        return (self.pub.acked, self.pub.confirmed)

    def check(self, total: int) -> None:
        now = time.monotonic()
        mark = self._mark()
        if mark != self.seen:
            self.seen, self.since = mark, now
        elif now - self.since > self.timeout:
            if self.pub.end_to_end:
                raise NotConfirmed(
                    f"the monitor confirmed storing {self.pub.confirmed} of {total} batches of sensor "
                    f"{self.pub.samples_topic.split('/')[-2]!r}"
                    f"{'' if self.pub.night_confirmed else ' and not the end of the night'}, "
                    f"then nothing more for {self.timeout:.0f} s (is the monitor running?)"
                )
            raise BrokerUnavailable(
                f"MQTT broker at {self.pub.url} acknowledged nothing for {self.timeout:.0f} s; "
                f"{self.pub.backlog} messages were not delivered"
            )
