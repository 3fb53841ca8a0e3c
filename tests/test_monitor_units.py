"""The monitor's durability machinery in-process, with the MQTT broker simulated at the boundary.

- ``Journal``, ``Checkpoints``, ``Outbox``: all-or-nothing appends, torn tails, atomic checkpoints,
  a bounded outbox that survives a reopen.
- Crash simulation: a night fed batch by batch into ``Monitor`` while "the broker" (this test)
  delivers, redelivers unacknowledged messages (with the DUP flag) and the monitor "dies" (an
  exception that nothing in the monitor catches) inside the journal write, the store write, the
  acknowledgements or a checkpoint; a new ``Monitor`` on the same data directory takes over. The
  stored episodes must equal offline detection, with no phantom stream from redelivered batches of
  a finished night.
- Incremental checkpoints: a tick saves only a few of many streams, every stream is saved within
  ``checkpoint_s``, a crash after (or in the middle of) a tick that left stream files of different
  ages resumes the same state as a monitor that never crashed, an ended night is not started again
  from older journal segments or a stream file not yet removed, a damaged stream file is reported,
  a checkpoint of another version (or a pickled one of before) is refused and the journal rebuilds.
- Faults of the store (down, refusing one bad point, refusing everything), habits held with the
  rest, bad input through ``Monitor.handle`` (Hypothesis), and a poison message in the journal.
"""

from __future__ import annotations

import copy
import errno
import json
import math
import os
import pickle
import random
import struct
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.offline import detect_arrays
from detector.synthetic import generate_night
from legwatch.contracts import payload, status
from legwatch.contracts.config import load_config
from legwatch.monitor import state_file
from legwatch.monitor.checkpoint_files import FORMAT, Checkpoints, encode_state, encode_stream
from legwatch.monitor.journal import Journal
from legwatch.monitor.outbox import Outbox
from legwatch.monitor.router import Router
from legwatch.monitor.service import Monitor
from legwatch.morning import publish_summary
from legwatch.replay import batches, nominal_rate
from legwatch.storage import Point, StoreError, StoreUnavailable
from legwatch.storage.schema import episode_from_point
from legwatch.storage.sqlite import SqliteStore

PREFIX = "legwatch"

# -- durability building blocks ----------------------------------------------------------------


def test_journal_round_trip_rotation_and_torn_tail(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j")
    j.append([("a/b/samples", b"one"), ("a/b/status", b"")])
    first = j.segment
    nxt = j.rotate()
    j.append([("a/b/samples", b"two" * 1000)])
    j.close()
    # a crash in the middle of a record leaves a torn tail: it is ignored, the rest replays
    with open(j._path(nxt), "ab") as fh:
        fh.write(struct.pack("<IH", 100, 3) + b"a/b" + b"xx")
    j2 = Journal(tmp_path / "j")
    assert j2.segment == nxt + 1
    assert list(j2.replay(first)) == [
        (first, "a/b/samples", b"one"),
        (first, "a/b/status", b""),
        (nxt, "a/b/samples", b"two" * 1000),
    ]
    assert list(j2.replay(nxt)) == [(nxt, "a/b/samples", b"two" * 1000)]
    j2.drop_before(nxt)
    assert j2.segments() == [nxt, nxt + 1]
    j2.close()


def test_journal_append_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = Journal(tmp_path / "j")
    j.append([("t", b"good")])
    real_write = os.write
    calls = {"n": 0}

    def half_then_full_disk(fd: int, data) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(OSError):
        j.append([("t", b"x" * 100)])
    monkeypatch.setattr(os, "write", real_write)
    j.append([("t", b"after")])  # the retry after the disk has room again
    j.close()
    assert [(t, p) for _, t, p in Journal(tmp_path / "j").replay(0)] == [("t", b"good"), ("t", b"after")]


def test_checkpoints_are_atomic_and_a_damaged_one_is_reported(tmp_path: Path, caplog) -> None:
    c = Checkpoints(tmp_path)
    assert c.load() is None and c.load_streams() == {}
    c.save_bytes(encode_state({"journal_from": 3}))
    assert c.load()["journal_from"] == 3
    odd, long = "../shin x.ü", "s" * 400  # any topic level: the file stays in its folder, names stay distinct
    for sensor in (odd, long, "b", "B"):
        c.save_stream_bytes(sensor, encode_stream({"sensor": sensor, "journal_from": 3, "stream": sensor.upper()}))
    c.sync_streams()
    assert {p.parent for p in c.streams_folder.iterdir()} == {c.streams_folder}
    assert len(list(c.streams_folder.iterdir())) == 4 and all(len(p.name) < 200 for p in c.streams_folder.iterdir())
    assert {s: r["stream"] for s, r in c.load_streams().items()} == {
        odd: odd.upper(),
        long: long.upper(),
        "b": "B",
        "B": "B",
    }
    assert not list(tmp_path.rglob("*.tmp"))
    c.path.write_bytes(b"\x80\x05garbage")
    assert c.load() is None
    assert "cannot be read" in caplog.text
    caplog.clear()
    c.stream_path("b").write_bytes(b"\x80\x05garbage")
    c.stream_path("B").write_bytes(encode_stream({"sensor": "b", "journal_from": 3}))  # not the file of "b"
    assert set(c.load_streams()) == {odd, long}
    assert caplog.text.count("cannot be read") == 2
    c.remove_streams_except([odd])
    assert set(c.load_streams()) == {odd} and len(list(c.streams_folder.iterdir())) == 1


def test_outbox_is_bounded_ordered_and_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, max_bytes=250)
    pts = [Point("gap", {"subject": "me", "sensor": "s"}, {"duration_s": float(i)}, 1.7e9 + i) for i in range(6)]
    for p in pts:
        assert not box.full()
        box.put([p])
        if box.full():
            break
    assert box.full() and 1 < len(box) < 6
    held = len(box)
    box.close()
    box = Outbox(path, max_bytes=250)  # counts come back from the file
    assert len(box) == held and box.points == held and box.full()
    rows = box.peek(100)
    assert [p.fields["duration_s"] for _, ps in rows for p in ps] == [float(i) for i in range(held)]
    box.remove([rows[0][0]])
    assert len(box) == held - 1 and box.peek(1)[0][1][0].fields["duration_s"] == 1.0
    box.db.execute("UPDATE outbox SET body = 'not json' WHERE id = ?", (rows[1][0],))
    assert [i for i, _ in box.peek(100)] == [i for i, _ in rows[2:]]  # a damaged row is dropped
    box.close()


# -- a simulated broker around in-process monitors ----------------------------------------------


class Crash(BaseException):
    """The monitor process dies here (nothing in the monitor catches a BaseException)."""


class FakeConnection:
    """Stands in for ``legwatch.mqtt.connection.Connection`` (tested against the real broker in
    test_mqtt_connection.py): records acknowledgements and publications."""

    generation = 0

    def __init__(self) -> None:
        self.acked: set[int] = set()
        self.published: list[tuple[str, bytes | str]] = []
        self.ack_hook = None

    def ack(self, mid: int, qos: int, generation: int) -> None:
        if self.ack_hook:
            self.ack_hook()
        if generation == self.generation:
            self.acked.add(mid)

    def publish(self, topic, body, qos=1, retain=False):
        self.published.append((topic, body))
        return SimpleNamespace(wait_for_publish=lambda *a, **k: True, is_published=lambda: True, mid=0, rc=0)

    def publish_wait(self, topic, body, qos=1, retain=False, timeout=10.0) -> None:
        self.published.append((topic, body))

    def wait_published(self, timeout: float) -> int:
        return 0

    def close(self) -> None:
        pass


def config(tmp_path: Path, **extra: str):
    env = {"LEGWATCH_MQTT_URL": "mqtt://127.0.0.1:1", "LEGWATCH_DATA_DIR": str(tmp_path / "data")}
    env.update(extra)
    return load_config(env=env)


def night_messages(seed: int, hours: float, rate: float, sensor: str) -> tuple[list[tuple[str, bytes]], list]:
    """A night as the collector publishes it, and what offline detection finds in it."""
    night = generate_night(seed, hours=hours, rate_hz=rate)
    t, xyz = payload.quantize(night.t, night.xyz)
    order = np.argsort(t, kind="stable")
    t, xyz = t[order], xyz[order]
    r = nominal_rate(t)
    msgs = [(f"{PREFIX}/{sensor}/status", status.online())]
    msgs += [
        (f"{PREFIX}/{sensor}/samples", payload.encode(sensor, i, t[sl], xyz[sl], r))
        for i, sl in enumerate(batches(t, rate=r))
    ]
    msgs.append((f"{PREFIX}/{sensor}/status", status.offline()))
    return msgs, detect_arrays(t, xyz).episodes


def key(e) -> tuple:
    return (round(e.start, 3), e.kind, e.periodic, e.in_sleep, round(e.end, 3))


def stored(store, sensor: str) -> list[tuple]:
    pts = store.query("episode", tags={"sensor": sensor})
    per = Counter((p.tags["kind"], p.time_ms) for p in pts)
    assert not per or max(per.values()) == 1, "duplicate episode points"
    return sorted(key(episode_from_point(p)) for p in pts)


class Broker:
    """Delivers messages in order in batches, keeps what is unacknowledged, redelivers it (DUP set)
    to the next monitor after a crash, as Mosquitto does for a persistent session."""

    def __init__(self, msgs: list[tuple[str, bytes]], rng: random.Random) -> None:
        self.msgs = delivered(msgs)
        self.rng = rng
        self.next = 0  # first message never delivered
        self.delivered: set[int] = set()

    def redeliver(self, acked: set[int]) -> list:
        out = []
        for m in self.msgs[: self.next]:
            if m.mid not in acked:
                out.append(SimpleNamespace(**{**vars(m), "dup": True}))
        return out

    def fresh(self, n: int) -> list:
        out = self.msgs[self.next : self.next + n]
        self.next += len(out)
        return out


def run_with_crashes(tmp_path: Path, msgs, crash_plan: list[tuple[str, int]], seed: int, checkpoint_every: int = 37):
    """Feed ``msgs`` through monitors; the n-th call of the named step of the current monitor crashes.
    Returns the store and the last monitor."""
    rng = random.Random(seed)
    store = SqliteStore(tmp_path / "store.sqlite")
    broker = Broker(msgs, rng)
    acked: set[int] = set()
    plan = list(crash_plan)
    monitors = 0
    while True:
        monitors += 1
        assert monitors < 20
        client = FakeConnection()
        client.acked = acked
        mon = Monitor(config(tmp_path), store, client_id="crashy", checkpoint_s=3600)
        mon.connection = client
        step, after = plan.pop(0) if plan else ("", 0)
        calls = Counter()

        def maybe_crash(name: str, step: str = step, after: int = after, calls: Counter = calls) -> None:
            calls[name] += 1
            if name == step and calls[name] == after:
                raise Crash(name)

        def wrap(obj, attr: str, name: str) -> None:
            real = getattr(obj, attr)

            def wrapped(*a, **k):
                maybe_crash(name)
                return real(*a, **k)

            setattr(obj, attr, wrapped)

        wrap(mon.journal, "append", "journal")
        wrap(mon.checkpoints, "save_bytes", "checkpoint")  # the global state
        wrap(mon.checkpoints, "save_stream_bytes", "checkpoint")  # one stream

        def ack_hook(mon: Monitor = mon) -> None:
            maybe_crash("ack")
            if mon.nights:  # the night is stored, its last messages not yet acknowledged
                maybe_crash("ack_after_night")

        client.ack_hook = ack_hook
        real_store_write = store.write

        def store_write(points, _real=real_store_write):
            maybe_crash("store")
            return _real(points)

        fake = SimpleNamespace(write=store_write, query=store.query, ping=store.ping, close=store.close)
        mon.store = mon.delivery.store = fake
        try:
            mon.restore()
            queue = broker.redeliver(acked)
            n = 0
            while True:
                if not queue:
                    queue = broker.fresh(rng.randint(1, 40))
                    if not queue:
                        break
                take = queue[: rng.randint(1, 40)]
                queue = queue[len(take) :]
                mon.handle([(0.0, mon.connection.generation, m) for m in take])
                n += 1
                if n % checkpoint_every == 0:
                    with mon.lock:  # a tick that saves every stream, one (the oldest), or only the global state
                        mon.checkpointer.tick(streams=rng.choice([None, 1, 0]))
            mon.stop()
            return store, mon
        except Crash:
            mon.journal.close()  # the process is gone; its files stay as they are
            mon.outbox.close()


@pytest.fixture(scope="module")
def short_night():
    return night_messages(19, 0.6, 26.0, "shin-crash")


@pytest.mark.parametrize(
    "plan",
    [
        [],
        [("journal", 40), ("store", 30), ("ack", 500), ("checkpoint", 2)],
        [("ack_after_night", 1), ("store", 1)],  # the night is stored, its last acks never sent
        [("checkpoint", 1), ("checkpoint", 3), ("journal", 1), ("store", 5)],
    ],
    ids=["no-crash", "mixed", "end-of-night", "checkpoints"],
)
def test_crashes_anywhere_lose_and_duplicate_nothing(tmp_path: Path, short_night, plan) -> None:
    msgs, offline = short_night
    store, mon = run_with_crashes(tmp_path, msgs, plan, seed=len(plan))
    assert stored(store, "shin-crash") == sorted(key(e) for e in offline)
    assert not mon.streams, "a redelivered batch of the finished night started a phantom stream"
    assert not mon.rejected
    (night,) = store.query("night", tags={"sensor": "shin-crash"})
    assert night.fields["episodes"] == sum(1 for e in offline if e.counted and e.in_sleep)
    store.close()


# -- incremental checkpoints ---------------------------------------------------------------------


def delivered(msgs: list[tuple[str, bytes]], first_mid: int = 1) -> list:
    """MQTT messages as the broker delivers them, with packet ids from ``first_mid``."""
    return [
        SimpleNamespace(topic=t, payload=p, qos=1, retain=False, dup=False, mid=first_mid + i)
        for i, (t, p) in enumerate(msgs)
    ]


def interleave(*lists: list) -> list:
    """Round robin over the lists, as several sensors publish at once."""
    out = []
    for i in range(max(map(len, lists))):
        out += [xs[i] for xs in lists if i < len(xs)]
    return out


class Clock:
    """The monitor's checkpoint clock, moved by the test."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def many_sensors(n: int, seconds: int) -> list[list]:
    """``seconds`` lists of one 1-s batch for each of ``n`` sensors (the same synthetic signal)."""
    night = generate_night(5, hours=0.1, rate_hz=26.0)
    t, xyz = payload.quantize(night.t, night.xyz)
    r = nominal_rate(t)
    cuts = list(batches(t, rate=r))[:seconds]
    out, mid = [], 0
    for i, sl in enumerate(cuts):
        msgs = []
        for k in range(n):
            mid += 1
            body = payload.encode(f"s{k:03d}", i, t[sl], xyz[sl], r)
            msgs.append(
                (
                    0.0,
                    0,
                    SimpleNamespace(
                        topic=f"{PREFIX}/s{k:03d}/samples", payload=body, qos=1, retain=False, dup=False, mid=mid
                    ),
                )
            )
        out.append(msgs)
    return out


def crash(mon: Monitor) -> None:
    """The process is gone (kill -9): no stop, no last checkpoint; its files stay as they are."""
    mon.journal.close()
    mon.outbox.close()


@pytest.fixture(scope="module")
def three_nights():
    return {s: night_messages(seed, 0.3, 26.0, s)[0] for s, seed in (("shin-a", 4), ("shin-b", 19), ("shin-c", 7))}


def test_a_checkpoint_tick_saves_only_a_few_of_many_streams(tmp_path: Path) -> None:
    clock = Clock()
    mon = Monitor(config(tmp_path), SqliteStore(":memory:"), client_id="tick", checkpoint_s=10, clock=clock)
    mon.connection = FakeConnection()
    for second in many_sensors(60, 3):
        mon.handle(second)
    clock.t += 0.25
    mon.checkpointer.maybe_tick()
    mon.checkpointer.wait_written()
    files = mon.checkpoints.load_streams()
    bound = math.ceil(60 * 0.25 / (0.8 * 10))  # every stream within 0.8 checkpoint_s
    assert 1 <= len(files) == mon.stats["streams_checkpointed"] <= bound
    saved = mon.checkpoints.load()
    assert set(saved["bases"]) == set(mon.streams) and len(mon.streams) == 60
    # the others are not saved yet: a restart replays them from the segment before their first message
    assert {b[0] for s, b in saved["bases"].items() if s not in files} == {"absent"}
    assert all(b[1] < saved["journal_from"] for s, b in saved["bases"].items() if s not in files)
    clock.t += 0.1
    mon.checkpointer.maybe_tick()  # not a tick yet
    assert mon.stats["checkpoints"] == 1
    mon.stop()  # stopping saves every stream
    assert len(mon.checkpoints.load_streams()) == 60


def test_every_stream_is_checkpointed_within_checkpoint_s(tmp_path: Path) -> None:
    clock = Clock()
    n, checkpoint_s = 40, 4.0
    mon = Monitor(config(tmp_path), SqliteStore(":memory:"), client_id="spread", checkpoint_s=checkpoint_s, clock=clock)
    mon.connection = FakeConnection()
    seconds = many_sensors(n, 30)
    saved_at: dict[str, list[float]] = {}
    born: dict[str, float] = {}
    per_tick = []
    for step in range(4 * len(seconds)):
        clock.t += 0.25
        if step % 4 == 0:  # one batch of every sensor per second: every stream always has news
            mon.handle(seconds[step // 4])
            for s in mon.streams:
                born.setdefault(s, clock.t)
        before = mon.stats["streams_checkpointed"]
        mon.checkpointer.maybe_tick()
        mon.checkpointer.wait_written()
        per_tick.append(mon.stats["streams_checkpointed"] - before)
        for s, b in mon.checkpointer.bases.items():
            if b == ("file", mon.journal.segment, mon.journal.segment):  # saved by this tick
                saved_at.setdefault(s, []).append(clock.t)
    assert set(saved_at) == set(born) and len(born) == n
    for s, times in saved_at.items():
        gaps = np.diff([born[s], *times, clock.t])
        assert gaps.max() <= checkpoint_s, (s, gaps.max())
    assert max(per_tick) <= math.ceil(n * 0.25 / (0.8 * checkpoint_s)), per_tick
    # journal segments that no stream needs any more are gone
    assert len(mon.journal.segments()) <= checkpoint_s / 0.25 + 2
    assert min(mon.journal.segments()) == mon.checkpointer.journal_from
    # half the sensors go quiet: their files stay their state, and pin no journal segment
    quiet = many_sensors(n // 2, 60)
    for step in range(4 * 3 * int(checkpoint_s)):
        clock.t += 0.25
        if step % 4 == 0:
            mon.handle(quiet[30 + step // 4])
        mon.checkpointer.maybe_tick()
        mon.checkpointer.wait_written()
    assert len(mon.journal.segments()) <= checkpoint_s / 0.25 + 2
    mon.stop()


@pytest.mark.parametrize("how", ["after-a-tick", "in-the-middle-of-a-tick"])
def test_restart_after_uneven_checkpoints_equals_a_monitor_that_never_crashed(
    tmp_path: Path, three_nights, how: str
) -> None:
    msgs = delivered(interleave(*three_nights.values()))
    cut = len(msgs) * 3 // 5
    ref_store, store = SqliteStore(tmp_path / "ref.sqlite"), SqliteStore(tmp_path / "s.sqlite")
    ref = Monitor(config(tmp_path / "ref"), ref_store, client_id="ref", checkpoint_s=3600)
    mon = Monitor(config(tmp_path / "c"), store, client_id="c", checkpoint_s=3600)
    ref.connection, mon.connection = FakeConnection(), FakeConnection()

    def feed(ms: list) -> None:
        for i in range(0, len(ms), 25):
            ref.handle([(0.0, 0, m) for m in ms[i : i + 25]])
            mon.handle([(0.0, 0, m) for m in ms[i : i + 25]])

    for i in range(0, cut, 25):
        feed(msgs[i : min(i + 25, cut)])
        with mon.lock:
            mon.checkpointer.tick(streams=1)  # one stream per tick: the others' files are older
    files = mon.checkpoints.load_streams()
    assert len({f["journal_from"] for f in files.values()}) == 3, "the three files should be of different ticks"
    if how == "after-a-tick":
        feed(msgs[cut : cut + 40])  # handled and journaled after the last tick
        cut += 40
    else:  # the tick dies after writing one stream file, before the global state that names it

        def die(blob: bytes) -> None:
            raise Crash("checkpoint")

        mon.checkpoints.save_bytes = die
        with pytest.raises(Crash), mon.lock:
            mon.checkpointer.tick(streams=1)
        newest = max(f["journal_from"] for f in mon.checkpoints.load_streams().values())
        assert newest > mon.checkpoints.load()["journal_from"]
    crash(mon)
    mon2 = Monitor(config(tmp_path / "c"), store, client_id="c", checkpoint_s=3600)
    mon2.connection = FakeConnection()
    mon2.restore()
    assert set(mon2.streams) == set(ref.streams) == set(three_nights)
    for s, want in ref.streams.items():
        got = mon2.streams[s]
        assert (got.last_seq, got.batches) == (want.last_seq, want.batches), s
        # the same detector state: flushed now (on copies), both give the same night
        (u1, n1), (u2, n2) = copy.deepcopy(got.detector).finish(), copy.deepcopy(want.detector).finish()
        assert (u1, n1) == (u2, n2) and n1.episodes, s
    assert not mon2.rejected, "a journaled message was applied twice"
    # the rest of the night: the same episodes and nights as the monitor that never crashed
    rest = msgs[cut:]
    for i in range(0, len(rest), 25):
        ref.handle([(0.0, 0, m) for m in rest[i : i + 25]])
        mon2.handle([(0.0, 0, m) for m in rest[i : i + 25]])
    assert not mon2.streams and len(mon2.nights) == 3
    for s in three_nights:
        assert stored(store, s) == stored(ref_store, s) != []
        assert len(store.query("night", tags={"sensor": s})) == 1
    ref.stop()
    mon2.stop()


def test_an_ended_night_is_not_started_again_from_older_segments(tmp_path: Path, three_nights) -> None:
    """shin-b's night ends (its publisher left and stayed away: no message in the journal says so)
    while shin-a's checkpoint is older still, so the journal keeps segments with shin-b's batches and
    a repeated ``online``; a crash before shin-b's old stream file was removed. The restart must not
    take that file, nor replay shin-b's old messages."""
    cfg = config(tmp_path, LEGWATCH_MONITOR_WILL_GRACE_S="0.2")
    store = SqliteStore(tmp_path / "s.sqlite")
    mon = Monitor(cfg, store, client_id="ended", checkpoint_s=3600, clock=Clock())  # frozen: ticks save what we say
    mon.connection = FakeConnection()
    a, b = delivered(three_nights["shin-a"][:-1]), delivered(three_nights["shin-b"][:-1], 100000)
    online_again = delivered([(f"{PREFIX}/shin-b/status", status.online())], 90000)
    will = SimpleNamespace(
        topic=f"{PREFIX}/shin-b/status", payload=b'{"state": "offline"}', qos=1, retain=True, dup=False, mid=90001
    )

    def feed(ms: list) -> None:
        for i in range(0, len(ms), 20):
            mon.handle([(0.0, 0, m) for m in ms[i : i + 20]])

    feed(interleave(a[:200], b[:200]))
    with mon.lock:
        mon.checkpointer.tick()  # both streams saved
    first = mon.journal.segment
    feed(interleave(a[200:300], online_again + b[200:300]))
    with mon.lock:
        mon.checkpointer.tick(streams=0)  # neither saved again: both replay from `first`
    stale = mon.checkpoints.stream_path("shin-b").read_bytes()
    feed([will])
    time.sleep(0.3)
    mon.end_abandoned_nights()
    assert "shin-b" not in mon.streams and "shin-b" in mon.ended and len(mon.nights) == 1
    assert not mon.checkpoints.stream_path("shin-b").exists()
    assert mon.checkpointer.journal_from == first
    old = [seg for seg, topic, _ in mon.journal.replay(0) if topic.startswith(f"{PREFIX}/shin-b/")]
    assert old and min(old) == first, "the journal should still hold shin-b's messages"
    mon.checkpoints.stream_path("shin-b").write_bytes(stale)  # its removal had not reached the disk
    crash(mon)
    mon2 = Monitor(cfg, store, client_id="ended", checkpoint_s=3600)
    mon2.connection = FakeConnection()
    mon2.restore()
    assert set(mon2.streams) == {"shin-a"} and "shin-b" in mon2.ended and not mon2.nights
    assert mon2.streams["shin-a"].last_seq == 298 and not mon2.rejected
    assert not mon2.checkpoints.stream_path("shin-b").exists()
    mon2.handle([(0.0, 0, m) for m in b[250:260]])  # the broker delivers some again: stale
    assert "shin-b" not in mon2.streams and mon2.stats["stale"] == 10
    mon2.stop()
    store.close()


def test_a_damaged_stream_file_is_reported_and_the_restart_goes_on(tmp_path: Path, three_nights, caplog) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    mon = Monitor(config(tmp_path), store, client_id="damaged", checkpoint_s=3600)
    mon.connection = FakeConnection()
    msgs = delivered(interleave(three_nights["shin-a"], three_nights["shin-b"]))
    for i in range(0, 400, 20):
        mon.handle([(0.0, 0, m) for m in msgs[i : i + 20]])
        if i == 200:
            with mon.lock:
                mon.checkpointer.tick()
    b_seq = mon.streams["shin-b"].last_seq
    crash(mon)
    mon.checkpoints.stream_path("shin-a").write_bytes(b"\x80\x05garbage")
    mon2 = Monitor(config(tmp_path), store, client_id="damaged", checkpoint_s=3600)
    mon2.restore()
    assert "cannot be read" in caplog.text and "shin-a is missing" in caplog.text
    assert mon2.streams["shin-b"].last_seq == b_seq
    mon2.stop()
    store.close()


@pytest.mark.parametrize("how", ["another-version", "pickled-files-of-before"])
def test_a_checkpoint_of_another_version_is_refused_and_the_journal_rebuilds(
    tmp_path: Path, three_nights, caplog, how: str
) -> None:
    """No checkpoint of another version is read, and nothing is ever unpickled: the stream is
    rebuilt from what the journal holds, with one log line saying why."""
    store = SqliteStore(tmp_path / "s.sqlite")
    mon = Monitor(config(tmp_path), store, client_id="version", checkpoint_s=3600)
    mon.connection = FakeConnection()
    msgs = delivered(interleave(three_nights["shin-a"], three_nights["shin-b"]))
    for i in range(0, 300, 20):
        mon.handle([(0.0, 0, m) for m in msgs[i : i + 20]])
    seqs = {s: st.last_seq for s, st in mon.streams.items()}
    crash(mon)  # no checkpoint was ever written: the journal holds everything
    if how == "another-version":
        (tmp_path / "data/monitor/version/state.json").write_text(json.dumps({"format": FORMAT, "version": 99}))
        rec = {"sensor": "shin-a", "journal_from": 1, "stream": {"junk": 1}}
        blob = state_file.dumps(rec, kind="stream", version=99)
        Checkpoints(tmp_path / "data/monitor/version").stream_path("shin-a").write_bytes(blob)
    else:
        planted = tmp_path / "planted"

        class Trap:
            def __reduce__(self):
                return (os.mkdir, (str(planted),))  # what unpickling a foreign file could do

        (tmp_path / "data/monitor/version/state.pkl").write_bytes(pickle.dumps({"bases": Trap()}))
        (tmp_path / "data/monitor/version/streams/s-shin-a.pkl").write_bytes(pickle.dumps(Trap()))
    caplog.clear()
    mon2 = Monitor(config(tmp_path), store, client_id="version", checkpoint_s=3600)
    mon2.restore()
    if how == "another-version":
        assert "is of version 99, this monitor reads version" in caplog.text
        assert "version 99" in caplog.text and "rebuilt from the journal" in caplog.text
    else:
        assert not planted.exists() and "a checkpoint of an earlier version" in caplog.text
    assert {s: st.last_seq for s, st in mon2.streams.items()} == seqs and not mon2.rejected
    assert set(mon2.checkpoints.load_streams()) == set(seqs)
    mon2.stop()
    store.close()


@pytest.mark.parametrize(
    "plan",
    [
        [("checkpoint", 2), ("checkpoint", 3), ("journal", 30), ("checkpoint", 4)],
        [("store", 20), ("checkpoint", 5), ("ack", 300), ("checkpoint", 1)],
    ],
    ids=["checkpoints", "mixed"],
)
def test_crashes_with_two_streams_and_uneven_checkpoints_lose_nothing(tmp_path: Path, three_nights, plan) -> None:
    nights = {s: night_messages(seed, 0.3, 26.0, s) for s, seed in (("shin-a", 4), ("shin-b", 19))}
    msgs = interleave(*(m for m, _ in nights.values()))
    store, mon = run_with_crashes(tmp_path, msgs, plan, seed=7, checkpoint_every=9)
    for s, (_, offline) in nights.items():
        assert stored(store, s) == sorted(key(e) for e in offline)
        assert len(store.query("night", tags={"sensor": s})) == 1
    assert not mon.streams and not mon.rejected
    store.close()


def test_redelivery_after_the_night_ended_starts_no_phantom_stream(tmp_path: Path, short_night) -> None:
    """The night's last batches and its offline status were handled and checkpointed, but the
    acknowledgements never reached the broker, which delivers them again (without DUP: e.g. the
    broker restarted from an older persistence file)."""
    msgs, offline = short_night
    store = SqliteStore(tmp_path / "store.sqlite")
    mon = Monitor(config(tmp_path), store, client_id="phantom", checkpoint_s=3600)
    mon.connection = FakeConnection()
    wire = delivered(msgs)
    for i in range(0, len(wire), 50):
        mon.handle([(0.0, 0, m) for m in wire[i : i + 50]])
    mon.stop()
    before = stored(store, "shin-crash")
    assert before == sorted(key(e) for e in offline)
    mon2 = Monitor(config(tmp_path), store, client_id="phantom", checkpoint_s=3600)
    mon2.connection = FakeConnection()
    mon2.restore()
    mon2.handle([(0.0, 0, m) for m in wire[-30:]])
    assert not mon2.streams and mon2.stats["stale"] == 29 and not mon2.rejected
    assert stored(store, "shin-crash") == before
    # a new "online" announces new data: the same recording replayed again is taken (and overwrites)
    mon2.handle([(0.0, 0, m) for m in wire[:200]])
    assert "shin-crash" in mon2.streams and mon2.stats["batches"] == 199
    mon2.stop()
    store.close()


def test_redelivered_duplicates_are_not_dead_lettered_but_real_ones_are(tmp_path: Path, short_night) -> None:
    msgs, _ = short_night
    mon = Monitor(config(tmp_path), SqliteStore(":memory:"), client_id="dups")
    mon.connection = FakeConnection()
    wire = delivered(msgs[:10])
    mon.handle([(0.0, 0, m) for m in wire])
    again = SimpleNamespace(**{**vars(wire[5]), "dup": True})
    mon.handle([(0.0, 0, again), (0.0, 0, wire[9]), (0.0, 0, wire[3])])
    assert mon.stats["redelivered"] == 1
    assert mon.rejected == Counter({"duplicate": 1, "out_of_order": 1})
    dead = [json.loads(b) for t, b in mon.connection.published if t.startswith(f"{PREFIX}/deadletter/")]
    assert sorted(d["reason"] for d in dead) == ["duplicate", "out_of_order"]
    assert all(d["topic"] == f"{PREFIX}/shin-crash/samples" for d in dead)
    mon.stop()


def test_acks_only_on_the_connection_that_delivered(tmp_path: Path, short_night) -> None:
    msgs, _ = short_night
    mon = Monitor(config(tmp_path), SqliteStore(":memory:"), client_id="gen")
    mon.connection = FakeConnection()
    m = delivered(msgs[:3])
    mon.connection.generation = 2
    mon.handle([(0.0, 1, m[0]), (0.0, 2, m[1]), (0.0, 2, m[2])])
    assert mon.connection.acked == {2, 3}  # m[0] came on the previous connection: the broker sends it again
    mon.stop()


# -- the store: down, refusing one point, refusing everything -------------------------------------


class ScriptedStore:
    """A SqliteStore whose writes fail as ``mode`` says: 'ok', 'down', 'auth', or refusing points of
    one measurement ('bad:<measurement>'). Counts queries."""

    def __init__(self, path: Path) -> None:
        self.inner = SqliteStore(path)
        self.mode = "ok"
        self.queries = 0
        self.writes = 0

    def write(self, points):
        self.writes += 1
        if self.mode == "down":
            raise StoreUnavailable("InfluxDB POST http://db/write failed: unreachable: connection refused")
        if self.mode == "auth":
            raise StoreError("InfluxDB POST http://db/write failed: HTTP 401 Unauthorized: authorization failed")
        if self.mode.startswith("bad:") and any(p.measurement == self.mode[4:] for p in points):
            raise StoreError("InfluxDB POST http://db/write failed: HTTP 400 Bad Request: field type conflict")
        self.inner.write(points)

    def query(self, *a, **k):
        self.queries += 1
        if self.mode == "down":
            raise StoreUnavailable("down")
        return self.inner.query(*a, **k)

    def ping(self) -> None:
        pass

    def close(self) -> None:
        self.inner.close()


def test_store_down_results_and_habits_wait_in_the_outbox(tmp_path: Path, short_night) -> None:
    msgs, offline = short_night
    store = ScriptedStore(tmp_path / "s.sqlite")
    mon = Monitor(config(tmp_path), store, client_id="down", exit_after_nights=1)
    mon.on_night_stored(publish_summary, "summaries")
    mon.connection = FakeConnection()
    store.mode = "down"
    wire = delivered(msgs)
    for i in range(0, len(wire) - 1, 100):
        mon.handle([(0.0, 0, m) for m in wire[i : i + 100]])
    habit = SimpleNamespace(
        topic=f"{PREFIX}/habits", payload=b'{"habit": "water", "value": 0.5}', qos=1, retain=False, mid=9999
    )
    queries = store.queries
    mon.handle([(0.0, 0, habit), (0.0, 0, wire[-1])])
    assert store.queries == queries, "the worker asked a store it knows to be down"
    assert mon.stats["habits"] == 1 and len(mon.outbox) > 5 and mon.nights
    assert mon.connection.acked == {m.mid for m in wire} | {9999}  # consumption went on: all acknowledged
    assert mon.hooks.due and not mon.done.is_set()  # the summary and the exit wait for the store
    store.mode = "ok"
    while len(mon.outbox):
        mon.delivery.drain_once()
    mon.housekeeping()
    assert mon.done.wait(30) and mon.stats["summaries"] == 1
    assert stored(store.inner, "shin-crash") == sorted(key(e) for e in offline)
    (h,) = store.inner.query("habit")
    assert h.fields["value"] == 0.5
    store.close()


def test_one_bad_point_is_dropped_and_a_refusing_store_loses_nothing(tmp_path: Path) -> None:
    store = ScriptedStore(tmp_path / "s.sqlite")
    mon = Monitor(config(tmp_path), store, client_id="refuse")
    good = [Point("gap", {"subject": "me", "sensor": "s"}, {"duration_s": float(i)}, 1.7e9 + i) for i in range(3)]
    bad = Point("activity", {"subject": "me", "sensor": "s"}, {"movement_g": 1.0}, 1.7e9)
    store.mode = "auth"
    assert mon.delivery.deliver([*good[:2], bad]) and len(mon.outbox) == 1
    assert mon.delivery.deliver([good[2]]) and len(mon.outbox) == 2
    with pytest.raises(StoreUnavailable):  # refused as a whole: kept, retried with backoff
        mon.delivery.drain_once()
    assert len(mon.outbox) == 2
    store.mode = "bad:activity"
    mon.delivery.drain_once()
    assert not len(mon.outbox) and mon.stats["points_refused"] == 1
    assert sorted(p.fields["duration_s"] for p in store.inner.query("gap")) == [0.0, 1.0, 2.0]
    mon.stop()
    store.close()


def test_stop_with_unstored_results_keeps_the_journal(tmp_path: Path, short_night) -> None:
    """Stopping while the store is down and the outbox is full: no checkpoint over results that
    are nowhere, so the next start replays their messages from the journal."""
    msgs, offline = short_night
    store = ScriptedStore(tmp_path / "s.sqlite")
    store.mode = "down"
    mon = Monitor(config(tmp_path), store, client_id="full", outbox_max_bytes=3000)
    mon.connection = FakeConnection()
    wire = delivered(msgs)
    mon.stop_event.set()  # stopping: a full outbox makes _process give up instead of waiting
    done = 0
    while not mon.outbox.full():
        mon.handle([(0.0, 0, m) for m in wire[done : done + 100]])
        done += 100
    mon.handle([(0.0, 0, m) for m in wire[done : done + 100]])
    assert mon.pending and not (mon.connection.acked & {m.mid for m in wire[done : done + 100]})
    mon.stop_event.clear()
    mon.stop()
    store.mode = "ok"
    mon2 = Monitor(config(tmp_path), store, client_id="full")
    mon2.connection = FakeConnection()
    mon2.restore()
    rest = [SimpleNamespace(**{**vars(m), "dup": m.mid not in mon.connection.acked}) for m in wire[done:]]
    for i in range(0, len(rest), 100):
        mon2.handle([(0.0, 0, m) for m in rest[i : i + 100]])
    while len(mon2.outbox):
        mon2.delivery.drain_once()
    assert stored(store.inner, "shin-crash") == sorted(key(e) for e in offline)
    mon2.stop()
    store.close()


def test_a_poison_message_in_the_journal_does_not_stop_the_restart(tmp_path: Path, short_night, monkeypatch) -> None:
    msgs, _ = short_night
    store = SqliteStore(":memory:")
    mon = Monitor(config(tmp_path), store, client_id="poison", checkpoint_s=3600)
    mon.connection = FakeConnection()
    m = delivered(msgs[:5])
    mon.handle([(0.0, 0, x) for x in m])
    mon.journal.close()
    boom = {"n": 0}
    real = Router._samples

    def explode_once(self, sensor, msg, out):
        boom["n"] += 1
        if boom["n"] == 2:
            raise RuntimeError("a bug that only this message triggers")
        return real(self, sensor, msg, out)

    monkeypatch.setattr(Router, "_samples", explode_once)
    mon2 = Monitor(config(tmp_path), store, client_id="poison")
    mon2.restore()
    assert mon2.streams["shin-crash"].batches == 3
    mon2.stop()


# -- bad input, fuzzed ---------------------------------------------------------------------------

GOOD = payload.encode("fz", 7, 1.7e9 + np.arange(26) / 26.0, np.tile([0.0, 0.0, 1.0], (26, 1)), 26.0)


KEYS = ["v", "sensor", "seq", "t0", "rate", "t", "samples", "state", "habit", "value", "at", "id", "unit", "note"]


def _flip(changes: list[tuple[int, int]]) -> bytes:
    data = bytearray(GOOD)
    for i, v in changes:
        data[i] = v
    return bytes(data)


def _mutations() -> st.SearchStrategy[bytes]:
    scalars = st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20) | st.just("fz")
    docs = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
        max_leaves=20,
    )
    return st.one_of(
        st.binary(max_size=300),
        st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=6).map(_flip),
        st.integers(0, len(GOOD)).map(lambda n: GOOD[:n]),
        docs.map(lambda doc: json.dumps(doc).encode()),
        st.just(b"[" * 3000),
        st.just(b'{"habit": ' + b"[" * 3000),
    )


@pytest.fixture(scope="module")
def fuzz_monitor(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    mon = Monitor(config(tmp), SqliteStore(tmp / "s.sqlite"), client_id="fuzz")
    mon.connection = FakeConnection()
    yield mon
    mon.stop()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=_mutations(),
    leaf=st.sampled_from(["fz/samples", "fz/status", "habits", "other/samples"]),
    retain=st.booleans(),
)
def test_random_payloads_never_break_the_monitor(fuzz_monitor: Monitor, data: bytes, leaf: str, retain: bool) -> None:
    mon = fuzz_monitor
    msg = SimpleNamespace(topic=f"{PREFIX}/{leaf}", payload=data, qos=1, retain=retain, dup=False, mid=1)
    before = sum(mon.rejected.values()) + mon.stats["batches"] + mon.stats["habits"] + mon.stats["redelivered"]
    published = len(mon.connection.published)
    mon.handle([(0.0, 0, msg)])  # must not raise, must acknowledge
    assert 1 in mon.connection.acked
    mon.connection.acked.clear()
    after = sum(mon.rejected.values()) + mon.stats["batches"] + mon.stats["habits"] + mon.stats["redelivered"]
    if after > before and mon.stats["batches"] + mon.stats["habits"] == 0:
        # set aside: exactly once on the dead-letter topic
        dead = [t for t, _ in mon.connection.published[published:] if "/deadletter/" in t]
        assert len(dead) == 1
    assert "internal" not in mon.rejected, "a payload raised inside the monitor"


def test_interleaved_garbage_changes_nothing(tmp_path: Path, short_night) -> None:
    """Every kind of bad payload between the batches of a real night: all set aside, each kind
    logged once, the episodes exactly those of offline detection."""
    msgs, offline = short_night
    store = SqliteStore(tmp_path / "s.sqlite")
    mon = Monitor(config(tmp_path), store, client_id="garbage")
    mon.connection = FakeConnection()
    good = delivered(msgs)
    real = msgs[5][1]
    other = payload.encode("someone-else", 1, 1.7e9 + np.arange(5) / 26, np.zeros((5, 3)), 26.0)
    old = payload.encode("shin-crash", 1, 8e8 + np.arange(5) / 26, np.zeros((5, 3)), 26.0)
    samples, status, habits = f"{PREFIX}/shin-crash/samples", f"{PREFIX}/shin-crash/status", f"{PREFIX}/habits"
    bad = [
        (samples, b"\x01\x02garbage" * 3, "malformed"),
        (samples, real[: len(real) // 2], "truncated"),
        (samples, b"\x01" + bytes(70_000), "oversize"),
        (samples, b"\x02" + real[1:], "version"),
        (samples, b'{"v": 1, "sensor": ', "malformed"),
        (samples, other, "sensor_mismatch"),
        (samples, old, "bad_time"),
        (samples, real, "out_of_order"),  # sequence 4 again, long after
        (status, b"not json", "malformed_status"),
        (status, b'{"state": 3}', "malformed_status"),
        (habits, b"\xff\xfe garbage", "bad_habit"),
        (habits, b'{"habit": "water", "value": "lots"}', "bad_habit"),
        (habits, b"[" * 100000, "bad_habit"),
    ]
    rng = random.Random(3)
    mid = 100000
    expected = Counter()
    batch: list = []
    for i, m in enumerate(good):
        batch.append(m)
        if i > 20 and rng.random() < 0.05:
            for topic, data, kind in rng.sample(bad, 4):
                mid += 1
                batch.append(SimpleNamespace(topic=topic, payload=data, qos=1, retain=False, dup=False, mid=mid))
                expected[kind] += 1
        if len(batch) >= 30:
            mon.handle([(0.0, 0, x) for x in batch])
            batch = []
    mon.handle([(0.0, 0, x) for x in batch])
    assert mon.rejected == expected
    assert stored(store, "shin-crash") == sorted(key(e) for e in offline)
    assert len(mon.connection.acked) == len(good) + sum(expected.values())
    dead = Counter(json.loads(b)["reason"] for t, b in mon.connection.published if "/deadletter/" in t)
    assert dead == expected
    mon.stop()
    store.close()


def test_a_last_will_ends_the_night_only_if_the_publisher_stays_away(tmp_path: Path, short_night) -> None:
    """Mosquitto sends every client's last will when it shuts down, so a will is no end of night:
    data coming again goes on with the same stream; only a publisher that stays away past
    ``monitor.will_grace_s`` has its night ended (and checkpointed)."""
    msgs, _ = short_night
    store = SqliteStore(tmp_path / "s.sqlite")
    mon = Monitor(config(tmp_path, LEGWATCH_MONITOR_WILL_GRACE_S="0.3"), store, client_id="will")
    mon.connection = FakeConnection()
    wire = delivered(msgs)
    status = f"{PREFIX}/shin-crash/status"
    will = SimpleNamespace(
        topic=status,
        payload=b'{"state": "offline", "source": "collector", "reason": "collector connection lost"}',
        qos=1,
        retain=True,
        dup=False,
        mid=90001,
    )
    replay_will = SimpleNamespace(
        topic=status,
        payload=json.dumps({"state": "offline", "will": True, "time": 1.7e9}).encode(),
        qos=1,
        retain=True,
        dup=False,
        mid=90002,
    )
    mon.handle([(0.0, 0, m) for m in wire[:300]])
    mon.handle([(0.0, 0, will)])
    mon.housekeeping()
    assert "shin-crash" in mon.streams and mon.streams["shin-crash"].will_since is not None and not mon.nights
    mon.handle([(0.0, 0, m) for m in wire[300:600]])  # the publisher is back: same stream
    assert mon.streams["shin-crash"].will_since is None and mon.stats["batches"] == 599 and not mon.rejected
    mon.handle([(0.0, 0, replay_will)])
    time.sleep(0.4)
    checkpoints = mon.stats["checkpoints"]
    mon.housekeeping()
    assert not mon.streams and len(mon.nights) == 1 and mon.stats["checkpoints"] == checkpoints + 1
    assert store.query("night", tags={"sensor": "shin-crash"})
    mon.stop()
    store.close()


def test_json_nested_too_deeply_is_a_payload_error_not_a_crash() -> None:
    with pytest.raises(payload.PayloadError) as exc:
        payload.decode(b'{"samples": ' + b"[" * 5000)
    assert exc.value.kind == "malformed"


def test_a_new_night_started_by_later_batches_is_checkpointed_with_its_ended_entry(tmp_path: Path, short_night) -> None:
    """Batches with later sequence numbers after a night ended (no ``online`` in between) start a
    new stream while the last night's entry in ``ended`` stays: both go into the checkpoint."""
    msgs, _ = short_night
    store = SqliteStore(tmp_path / "s.sqlite")
    mon = Monitor(config(tmp_path), store, client_id="again", checkpoint_s=3600)
    mon.connection = FakeConnection()
    wire = delivered(msgs)
    for i in range(0, len(wire), 100):
        mon.handle([(0.0, 0, m) for m in wire[i : i + 100]])
    assert not mon.streams and "shin-crash" in mon.ended
    seq, end = mon.ended["shin-crash"]
    later = [
        (
            f"{PREFIX}/shin-crash/samples",
            payload.encode(
                "shin-crash", seq + 1 + k, end + 60 + k + np.arange(26) / 26.0, np.tile([0.0, 0.0, 1.0], (26, 1)), 26.0
            ),
        )
        for k in range(3)
    ]
    mon.handle([(0.0, 0, m) for m in delivered(later, 50000)])
    assert mon.streams["shin-crash"].last_seq == seq + 3 and mon.ended["shin-crash"] == (seq, end)
    with mon.lock:
        mon.checkpointer.tick()
    crash(mon)
    mon2 = Monitor(config(tmp_path), store, client_id="again", checkpoint_s=3600)
    mon2.restore()
    assert mon2.streams["shin-crash"].last_seq == seq + 3 and mon2.ended["shin-crash"] == (seq, end)
    mon2.stop()
    store.close()
