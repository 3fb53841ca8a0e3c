"""Nothing lost: the real `legwatch monitor` and `legwatch replay` against real Mosquitto and InfluxDB
processes that the tests kill, stop and restart.

1. The monitor is SIGKILLed twice mid-night (right after a checkpoint, and between checkpoints with
   messages in its journal) and restarted with the same client id and data directory: both
   streams resume where they stopped; the stored episodes equal offline `legwatch detect`, none twice.
2. The broker is stopped and started, then killed and started, mid-night: publisher and monitor
   reconnect by themselves, the monitor's persistent session survives (clean start 0 on every
   connection), and no gap appears that offline detection does not also see.
3. InfluxDB is down for 20 s while a night streams in: consumption goes on, the results wait in the
   outbox on disk (the monitor says what it holds), and all of them are written when it is back.
   With a full outbox the monitor stops acknowledging (the broker keeps the rest) and loses nothing.
4. Bad payloads of every kind between the batches of a real replay: counted, logged once per kind,
   set aside on the dead-letter topic; the monitor keeps running and its episodes are unchanged.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import legwatch.monitor.service as monitor_module
from detector.synthetic import generate_night, write_csv
from helpers import ROOT, run_cli
from legwatch.contracts import payload
from legwatch.contracts.config import load_config
from legwatch.csvio import read_csv
from legwatch.monitor.checkpoint_files import Checkpoints
from legwatch.monitor.service import Monitor
from legwatch.replay import batches, replay
from legwatch.storage.influx import InfluxStore
from legwatch.storage.schema import episode_from_point

#: Short nights whose streamed episodes equal offline detection: sensor -> (seed, rate Hz).
NIGHTS = {"shin-a": (4, 26.0), "shin-b": (19, 52.0)}
HOURS = 0.6


# -- recordings and what offline detection finds in them ------------------------------------------


@dataclass
class Recording:
    path: Path
    offline: dict

    def episodes(self) -> list[tuple]:
        return sorted(
            (round(e["start"], 3), e["kind"], e["periodic"], e["in_sleep"], round(e["end"], 3))
            for e in self.offline["episodes"]
        )

    def gaps(self) -> list[float]:
        return sorted(round(g["start"], 3) for g in self.offline["gaps"])

    def counted(self) -> float:
        return float(sum(1 for e in self.offline["episodes"] if e["kind"] in COUNTED and e["in_sleep"]))


COUNTED = ("twitch", "leg_movement", "contraction")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    folder = tmp_path_factory.mktemp("fault-nights")
    out = {}
    for sensor, (seed, rate) in NIGHTS.items():
        path = folder / f"{sensor}.csv"
        write_csv(generate_night(seed, hours=HOURS, rate_hz=rate), path)
        offline = json.loads(run_cli("detect", str(path), "--format", "json", check=True).stdout)
        assert len(offline["episodes"]) >= 20
        out[sensor] = Recording(path, offline)
    return out


# -- running the real command line ---------------------------------------------------------------


def cli_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(values)
    return env


def pipeline_env(
    broker: Any, influxdb: Any, tmp_path: Path, name: str, *, own_prefix: bool = True, **extra: str
) -> tuple[InfluxStore, dict[str, str]]:
    """One test's pipeline: its own InfluxDB database, data folder, monitor client id
    (``mon-NAME-…``) and, with ``own_prefix``, its own topic prefix (``lwNAME…``); subject NAME."""
    store = influx_store_for(influxdb.url)
    tag = uuid.uuid4().hex[:8]
    if own_prefix:
        extra = {"LEGWATCH_MQTT_TOPIC_PREFIX": f"lw{name}{tag[:6]}", **extra}
    env = cli_env(
        LEGWATCH_MQTT_URL=broker.url,
        LEGWATCH_INFLUX_URL=influxdb.url,
        LEGWATCH_INFLUX_DB=store.db,
        LEGWATCH_SUBJECT=name,
        LEGWATCH_DATA_DIR=str(tmp_path / "data"),
        LEGWATCH_MQTT_CLIENT_ID=f"mon-{name}-{tag}",
        **extra,
    )
    return store, env


class Cli:
    """``python -m legwatch ARGS`` in the background, stdout and stderr in files (never a full pipe)."""

    def __init__(
        self, folder: Path, name: str, args: list[str], env: dict[str, str], wrap: list[str] | None = None, **popen
    ) -> None:
        self.out_path = folder / f"{name}.out"
        self.err_path = folder / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*(wrap or []), sys.executable, "-m", "legwatch", *args],
                env=env,
                cwd=popen.pop("cwd", ROOT),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                **popen,
            )

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.stderr:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.stderr[-3000:]}"
            assert time.monotonic() < deadline, f"no {needle!r} in:\n{self.stderr[-3000:]}"
            time.sleep(0.05)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"still running after {timeout} s:\n{self.stderr[-3000:]}") from None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stats(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def clis() -> list[Cli]:
    started: list[Cli] = []
    yield started
    for c in started:
        c.close()


def start_monitor(clis: list[Cli], folder: Path, env: dict[str, str], nights: int, name: str) -> Cli:
    mon = Cli(folder, name, ["monitor", "--exit-after-nights", str(nights), "-v"], env)
    clis.append(mon)
    mon.wait_log("monitor subscribed to")
    return mon


def start_replay(clis: list[Cli], folder: Path, env: dict[str, str], rec: Recording, sensor: str, speed: float) -> Cli:
    rep = Cli(folder, f"replay-{sensor}", ["replay", str(rec.path), "--sensor", sensor, "--speed", str(speed)], env)
    clis.append(rep)
    return rep


def wait_for(cond: Callable[[], bool], timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)


def assert_stored_equals_offline(store: InfluxStore, subject: str, sensor: str, rec: Recording) -> None:
    """Episodes (with their final flags), gaps and the night point equal offline detection; no
    episode is stored twice (one point per kind and onset, over every series of the sensor)."""
    points = store.query("episode", tags={"sensor": sensor})
    per_key = Counter((p.tags["kind"], p.time_ms) for p in points)
    assert per_key and max(per_key.values()) == 1, [k for k, n in per_key.items() if n > 1]
    assert {p.tags["subject"] for p in points} == {subject}
    got = sorted(
        (round(e.start, 3), e.kind, e.periodic, e.in_sleep, round(e.end, 3)) for e in map(episode_from_point, points)
    )
    assert got == rec.episodes()
    gaps = store.query("gap", tags={"sensor": sensor})
    assert sorted(round(p.time, 3) for p in gaps) == rec.gaps(), "a gap where offline detection sees none"
    (night,) = store.query("night", tags={"subject": subject, "sensor": sensor})
    assert night.fields["episodes"] == rec.counted()
    counts = store.raw_query(f'SELECT count("duration_s") FROM "episode" WHERE "sensor" = \'{sensor}\' GROUP BY "kind"')
    by_kind = {s["tags"]["kind"]: s["values"][0][1] for s in counts["results"][0]["series"]}
    assert by_kind == dict(Counter(e["kind"] for e in rec.offline["episodes"]))


def influx_store_for(url: str) -> InfluxStore:
    store = InfluxStore(url, f"faults_{uuid.uuid4().hex[:10]}", timeout=5.0)
    store.ensure_database()
    return store


def no_tracebacks(*procs: Cli) -> None:
    for p in procs:
        assert "Traceback" not in p.stderr, p.stderr[-5000:]


# -- 1. the monitor killed mid-night ---------------------------------------------------------------


def test_monitor_killed_twice_mid_night_resumes_every_stream(
    recordings: dict[str, Recording], mosquitto, influxdb, tmp_path: Path, clis: list[Cli]
) -> None:
    store, env = pipeline_env(mosquitto, influxdb, tmp_path, "kill", LEGWATCH_MONITOR_CHECKPOINT_S="1.5")
    cid = env["LEGWATCH_MQTT_CLIENT_ID"]
    state = tmp_path / "data" / "monitor" / cid
    checkpoints = Checkpoints(state)  # state.json, and streams/ with one file per stream

    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def saved_since(t0: int) -> bool:
        return all(mtime(checkpoints.stream_path(s)) > t0 for s in NIGHTS)

    first = start_monitor(clis, tmp_path, env, nights=2, name="monitor-1")
    replays = [start_replay(clis, tmp_path, env, recordings[s], s, speed=150) for s in NIGHTS]

    # Kill 1: right after both streams were checkpointed, some seconds into both nights.
    time.sleep(2.5)
    t0 = time.time_ns()
    wait_for(lambda: saved_since(t0), 10, "a checkpoint of both streams", poll=0.01)
    first.kill()
    saved = checkpoints.load_streams()
    assert set(saved) == set(NIGHTS), "killed before both streams had started"
    assert all(s["stream"]["last_seq"] > 20 for s in saved.values())
    assert checkpoints.load() is not None
    assert all(r.proc.poll() is None for r in replays), "the nights were over before the first kill"

    # Kill 2: between two checkpoints, with handled messages in the journal.
    second = start_monitor(clis, tmp_path, env, nights=2, name="monitor-2")
    assert "resumed 2 stream(s)" in second.stderr
    seen = mtime(checkpoints.path)
    wait_for(lambda: mtime(checkpoints.path) != seen, 10, "a checkpoint of the second monitor")
    time.sleep(0.75)
    # journal segments are kept only while a stream's checkpoint is older than them
    journaled = sum(p.stat().st_size for p in (state / "journal").glob("journal-*.log"))
    assert journaled > 0, "nothing journaled since the checkpoints"
    second.kill()
    assert all(r.proc.poll() is None for r in replays), "the nights were over before the second kill"

    third = start_monitor(clis, tmp_path, env, nights=2, name="monitor-3")
    assert "journaled message(s)" in third.stderr
    for r in replays:
        assert r.wait(120) == 0, r.stderr
    assert third.wait(120) == 0, third.stderr[-3000:]
    stats = third.stats()
    assert stats["nights"] == 2 and not stats["rejected"], stats
    assert stats["stats"].get("batches_missing", 0) == 0, stats
    no_tracebacks(first, second, third, *replays)
    for sensor in NIGHTS:
        assert_stored_equals_offline(store, "kill", sensor, recordings[sensor])


# -- 2. the broker restarted mid-night ------------------------------------------------------------


def connections(log: str, client_id: str) -> list[str]:
    """Mosquitto's connection lines for ``client_id``: '(p5, c0, k30)' = MQTT 5, clean start 0."""
    return re.findall(rf"New client connected from \S+ as {re.escape(client_id)} \(([^)]*)\)", log)


def test_broker_stopped_and_killed_mid_night_publisher_and_monitor_carry_on(
    recordings: dict[str, Recording], fresh_mosquitto, influxdb, tmp_path: Path, clis: list[Cli]
) -> None:
    rec = recordings["shin-b"]
    store, env = pipeline_env(fresh_mosquitto, influxdb, tmp_path, "broker", own_prefix=False)
    cid = env["LEGWATCH_MQTT_CLIENT_ID"]
    mon = start_monitor(clis, tmp_path, env, nights=1, name="monitor")
    rep = start_replay(clis, tmp_path, env, rec, "shin-b", speed=110)
    time.sleep(3)
    fresh_mosquitto.stop()  # clean: Mosquitto saves sessions and queued messages
    time.sleep(2)
    fresh_mosquitto.start()
    time.sleep(4)
    assert rep.proc.poll() is None, "the night was over before the second outage"
    fresh_mosquitto.kill()  # crash: what arrived since the last autosave (1 s) is gone
    time.sleep(2)
    fresh_mosquitto.start()
    assert rep.wait(120) == 0, rep.stderr
    assert mon.wait(120) == 0, mon.stderr[-3000:]
    stats = mon.stats()
    assert stats["nights"] == 1 and stats["stats"].get("batches_missing", 0) == 0, stats
    assert set(stats["rejected"]) <= {"duplicate"}, stats  # QoS 1 may deliver a batch twice
    no_tracebacks(mon, rep)
    assert_stored_equals_offline(store, "broker", "shin-b", rec)

    # Both noticed and came back by themselves; the monitor's session survived both restarts.
    assert rep.stderr.count("reconnected to MQTT broker") >= 2, rep.stderr
    assert mon.stderr.count("reconnected to the MQTT broker; it kept this monitor's session") >= 2, mon.stderr
    assert "lost this monitor's session" not in mon.stderr
    conns = connections(fresh_mosquitto.log_path.read_text(errors="replace"), cid)
    assert len(conns) >= 3 and all(c.startswith("p5, c0,") for c in conns), conns


# -- 3. InfluxDB down ---------------------------------------------------------------------------


def outbox_rows(path: Path) -> tuple[int, bool]:
    """(rows held, whether the night point is among them), read while the monitor writes."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return 0, False
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        (night,) = db.execute("SELECT COUNT(*) FROM outbox WHERE body LIKE '%[\"night\", {%'").fetchone()
        return n, night > 0
    except sqlite3.OperationalError:
        return 0, False
    finally:
        db.close()


def test_influxdb_down_for_a_while_everything_is_written_when_it_returns(
    recordings: dict[str, Recording], mosquitto, fresh_influxdb, tmp_path: Path, clis: list[Cli]
) -> None:
    rec = recordings["shin-a"]
    store, env = pipeline_env(mosquitto, fresh_influxdb, tmp_path, "influx")
    cid = env["LEGWATCH_MQTT_CLIENT_ID"]
    outbox = tmp_path / "data" / "monitor" / cid / "outbox.sqlite"
    mon = start_monitor(clis, tmp_path, env, nights=1, name="monitor")
    rep = start_replay(clis, tmp_path, env, rec, "shin-a", speed=250)
    time.sleep(2)
    fresh_influxdb.stop()
    down_since = time.monotonic()
    # Consumption goes on without the store: the whole night, its night point too, waits on disk.
    assert rep.wait(60) == 0, rep.stderr
    wait_for(lambda: outbox_rows(outbox)[1], 30, "the night point in the outbox")
    held, _ = outbox_rows(outbox)
    assert held > 10
    assert mon.proc.poll() is None, "the monitor left before its results were stored"
    time.sleep(max(0.0, 20 - (time.monotonic() - down_since)))
    assert "holding results on disk until it returns" in mon.stderr
    assert re.search(r"holding \d+ points in \d+ batches", mon.stderr), mon.stderr[-3000:]
    assert outbox_rows(outbox)[0] >= held
    fresh_influxdb.start()
    assert mon.wait(60) == 0, mon.stderr[-3000:]
    assert "the store is back: every held result is written" in mon.stderr
    stats = mon.stats()
    assert stats["nights"] == 1 and not stats["rejected"] and stats["stats"]["summaries"] == 1, stats
    assert outbox_rows(outbox)[0] == 0
    no_tracebacks(mon, rep)
    assert_stored_equals_offline(store, "influx", "shin-a", rec)


def test_full_outbox_stops_acknowledging_and_loses_nothing(
    recordings: dict[str, Recording], mosquitto, fresh_influxdb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-pressure: once the outbox is full the monitor acknowledges nothing more, so the broker
    keeps what is in the monitor's session and the sender the rest of the night (end-to-end flow
    control: at most a window beyond what the monitor stored); when InfluxDB returns, all of it arrives."""
    rec = recordings["shin-a"]
    store = influx_store_for(fresh_influxdb.url)
    prefix = f"lwfull{uuid.uuid4().hex[:6]}"
    cfg = load_config(
        env={
            "LEGWATCH_MQTT_URL": mosquitto.url,
            "LEGWATCH_MQTT_TOPIC_PREFIX": prefix,
            "LEGWATCH_SUBJECT": "full",
            "LEGWATCH_DATA_DIR": str(tmp_path / "data"),
        }
    )
    fresh_influxdb.stop()
    monkeypatch.setattr(monitor_module, "INBOX_MAX", 300)
    mon = Monitor(cfg, store, client_id=f"{prefix}-monitor", exit_after_nights=1, outbox_max_bytes=6000)
    mon.start()
    acks: list[int] = []
    real_ack = mon.connection.ack
    mon.connection.ack = lambda mid, qos, gen: (acks.append(mid), real_ack(mid, qos, gen))[1]
    t, xyz = read_csv(rec.path)
    total = len(list(batches(t)))
    publisher = threading.Thread(
        target=replay, args=(t, xyz), kwargs={"url": mosquitto.url, "sensor": "shin-a", "prefix": prefix}, daemon=True
    )
    try:
        publisher.start()
        wait_for(mon.outbox.full, 60, "a full outbox")
        time.sleep(0.5)
        n = len(acks)
        time.sleep(2.5)
        assert len(acks) == n, "acknowledged while the outbox was full"
        # the broker holds the rest: beyond the batch in the worker's hands, a capped inbox here
        assert not mon.nights and mon.inbox.qsize() <= 300
        assert mon.stats["batches"] + mon.inbox.qsize() < total - 200
        # the publisher waits for the monitor (flow control) instead of filling the broker's queue
        assert publisher.is_alive()
        fresh_influxdb.start()
        publisher.join(120)
        assert not publisher.is_alive()
        assert mon.done.wait(120), dict(mon.stats)
    finally:
        mon.stop()
    assert len(acks) > n and mon.stats["points_held"] > 0 and not mon.rejected
    assert_stored_equals_offline(store, "full", "shin-a", rec)


# -- 4. bad input between the batches of a real replay ----------------------------------------------


class Peer:
    """A plain MQTT 5 client: publishes at QoS 1 and waits for the broker; collects what it hears."""

    def __init__(self, url: str, name: str, *subscriptions: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        self.heard: list[tuple[str, bytes]] = []
        subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.heard.append((m.topic, m.payload))
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.connect(host, int(port))
        self.client.loop_start()
        if subscriptions:
            self.client.subscribe([(t, 1) for t in subscriptions])
            assert subscribed.wait(10), "no SUBACK"

    def count(self, prefix: str) -> int:
        return sum(1 for t, _ in list(self.heard) if t.startswith(prefix))

    def publish(self, topic: str, data: bytes, retain: bool = False) -> None:
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_bad_input_during_a_real_replay_is_set_aside_and_changes_nothing(
    recordings: dict[str, Recording], mosquitto, influxdb, tmp_path: Path, clis: list[Cli]
) -> None:
    rec = recordings["shin-b"]
    store, env = pipeline_env(mosquitto, influxdb, tmp_path, "bad")
    prefix = env["LEGWATCH_MQTT_TOPIC_PREFIX"]
    t, xyz = payload.quantize(*read_csv(rec.path))
    total = len(list(batches(t)))
    real = payload.encode("shin-b", 3, t[:52], xyz[:52], 52.0)
    stray = payload.encode("shin-x", 1, t[:52], xyz[:52], 52.0)
    samples, status, habits = (f"{prefix}/shin-b/samples", f"{prefix}/shin-b/status", f"{prefix}/habits")
    other = f"{prefix}/shin-dup/samples"
    garbage = [
        (samples, b"\x01\x07" + bytes(40), "malformed"),  # unknown flags
        (samples, b'{"v": 1, "sensor": "shin-b", "samples": [[1, 2', "malformed"),
        (samples, b"", "truncated"),
        (samples, real[:-7], "truncated"),
        (samples, b"\x01" * 70_000, "oversize"),
        (samples, b"\x09" + real[1:], "version"),
        (
            samples,
            b'{"v": 2, "sensor": "shin-b", "seq": 1, "t0": 1767650000, "rate": 52, "samples": [[0,0,1]]}',
            "version",
        ),
        (samples, stray, "sensor_mismatch"),
        (samples, payload.encode("shin-b", 9, t[:52] - 1.2e9, xyz[:52], 52.0), "bad_time"),
        (samples, real, "out_of_order"),  # batch 3 again, long after the stream passed it
        (status, b"\x00\xffnot json", "malformed_status"),
        (status, b'{"state": ["offline"]}', "malformed_status"),
        (habits, b"\xde\xad\xbe\xef", "bad_habit"),
        (habits, b'{"habit": "water", "value": -3}', "bad_habit"),
        (habits, b'{"habit": "water", "at": "tomorrow"}', "bad_habit"),
    ]
    peer = Peer(mosquitto.url, f"{prefix}-garbage")
    dead = Peer(mosquitto.url, f"{prefix}-deadletter", f"{prefix}/deadletter/#", samples)
    try:
        mon = start_monitor(clis, tmp_path, env, nights=1, name="monitor")
        rep = start_replay(clis, tmp_path, env, rec, "shin-b", speed=300)
        # the stream is well past batch 3 before the first garbage arrives (the broker keeps the order)
        wait_for(lambda: dead.count(samples) > 50, 30, "the replay under way")
        rounds = 0
        expected: Counter[str] = Counter()
        # garbage until shortly before the end of the night (after its "offline" the monitor leaves)
        while dead.count(samples) < total - 300:
            assert rep.proc.poll() is None, rep.stderr
            rounds += 1
            for topic, data, kind in garbage:
                peer.publish(topic, data)
                expected[kind] += 1
            # on a second sensor's stream: a new batch, the same again, and an older one
            for seq in (rounds, rounds, rounds - 1):
                peer.publish(other, payload.encode("shin-dup", seq, t[:52], xyz[:52], 52.0))
            expected.update(["duplicate", "out_of_order"])
            time.sleep(0.3)
        assert rounds >= 3
        assert rep.wait(60) == 0, rep.stderr
        assert mon.wait(120) == 0, mon.stderr[-3000:]
        dead_topic = f"{prefix}/deadletter/"
        wait_for(lambda: dead.count(dead_topic) >= sum(expected.values()), 10, "every payload on the dead-letter topic")
    finally:
        peer.close()
        dead.close()
    stats = mon.stats()
    assert stats["rejected"] == dict(expected), stats
    assert stats["nights"] == 1 and stats["stats"].get("batches_missing", 0) == 0
    reasons = Counter(
        (topic.rsplit("/", 1)[1], json.loads(body)["reason"])
        for topic, body in dead.heard
        if topic.startswith(dead_topic)
    )
    for kind, n in expected.items():
        where = "habits" if kind == "bad_habit" else ("shin-dup" if kind == "duplicate" else None)
        got = sum(v for (sensor, reason), v in reasons.items() if reason == kind and (where is None or sensor == where))
        assert got == n, (kind, reasons)
    # logged once per kind, never a traceback
    warnings = [line for line in mon.stderr.splitlines() if " WARNING " in line and "set aside a" in line]
    assert Counter(re.search(r"set aside a (\w+)", w).group(1) for w in warnings) == {
        ("habit" if k == "bad_habit" else k): 1 for k in expected
    }
    no_tracebacks(mon, rep)
    assert_stored_equals_offline(store, "bad", "shin-b", rec)
