"""Nothing lost whatever the broker: the monitor's end-to-end acknowledgement, against a real
Mosquitto at its DEFAULT limits (``max_queued_messages 1000``, as Debian's package and the Home
Assistant add-on ship it), the real ``legwatch monitor`` and ``legwatch replay`` and a real InfluxDB.

1. A 2-hour 52 Hz night replayed at full speed lands whole (before acknowledgements: Mosquitto
   dropped most of it, the night never ended, replay exited 0).
2. The same while the monitor is SIGKILLed and stays down 30 s (the issue's test; it is judged
   at 20 s): replay waits, nothing lost.
3. The broker stopped and started, then, with the monitor away, killed (its last save is from the
   clean stop, so the queue for the monitor is gone): the monitor says what is missing and names
   the settings, the replay sends it again, the night lands whole.
4. A publisher that knows nothing of acknowledgements (the documented payload from plain paho)
   works as before: stored, a hole in its numbering recorded as a gap at once, with the reason.
5. The collector (behind the stand-in BLE radio) keeps its disk spool until the monitor confirms,
   also while the monitor is away; replay says how much was confirmed when the monitor stops
   confirming (exit 1), and falls back to the broker, saying so, when no monitor acknowledges.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from test_faults import (
    Cli,
    Peer,
    Recording,
    assert_stored_equals_offline,
    no_tracebacks,
    pipeline_env,
    start_monitor,
    start_replay,
    wait_for,
)

from detector.synthetic import generate_night, write_csv
from helpers import run_cli, run_on_terminal
from legwatch.contracts import ack, payload, status
from legwatch.csvio import read_csv
from legwatch.monitor.checkpoint_files import Checkpoints
from legwatch.replay import WINDOW, batches
from services import DefaultMosquitto

HOURS = 2.0


@pytest.fixture
def default_mosquitto(request: pytest.FixtureRequest, tmp_path: Path) -> DefaultMosquitto:
    """A private Mosquitto with Debian's settings: persistence on, every limit at its default."""
    try:
        broker = DefaultMosquitto(tmp_path / "mosquitto-default")
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    request.addfinalizer(broker.cleanup)
    broker.start()
    return broker


@pytest.fixture(scope="module")
def long_night(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    path = tmp_path_factory.mktemp("ack-night") / "shin-ack.csv"
    write_csv(generate_night(11, hours=HOURS, rate_hz=52.0), path)
    offline = json.loads(run_cli("detect", str(path), "--format", "json", check=True).stdout)
    assert len(offline["episodes"]) >= 40
    return Recording(path, offline)


@pytest.fixture
def clis() -> list[Cli]:
    started: list[Cli] = []
    yield started
    for c in started:
        c.close()


def env_for(broker, influxdb, tmp_path: Path, name: str):
    """The pipeline on the default ``legwatch`` prefix (these brokers are each test's own)."""
    return pipeline_env(broker, influxdb, tmp_path, name, own_prefix=False)


def total_batches(rec: Recording) -> int:
    t, _ = read_csv(rec.path)
    return sum(1 for _ in batches(t))


def checkpointed(env: dict[str, str], sensor: str = "shin-ack") -> int:
    """The last sequence number in the monitor's checkpoint of ``sensor`` (-1 before any)."""
    state = Path(env["LEGWATCH_DATA_DIR"]) / "monitor" / env["LEGWATCH_MQTT_CLIENT_ID"]
    try:
        saved = Checkpoints(state).load_streams().get(sensor)
    except (OSError, ValueError):
        return -1
    return -1 if saved is None or saved["stream"]["last_seq"] is None else int(saved["stream"]["last_seq"])


def test_full_speed_replay_through_a_default_broker_lands_whole(
    long_night: Recording, default_mosquitto, influxdb, tmp_path: Path, clis: list[Cli]
) -> None:
    store, env = env_for(default_mosquitto, influxdb, tmp_path, "fullspeed")
    mon = start_monitor(clis, tmp_path, env, nights=1, name="monitor")
    rep = start_replay(clis, tmp_path, env, long_night, "shin-ack", speed=0)
    assert rep.wait(600) == 0, rep.stderr[-3000:]
    assert "the monitor confirmed storing all" in rep.stderr or rep.proc.returncode == 0
    assert mon.wait(120) == 0, mon.stderr[-3000:]
    stats = mon.stats()
    n = total_batches(long_night)
    assert stats["nights"] == 1 and stats["stats"]["batches"] == n, stats
    assert stats["stats"].get("batches_missing", 0) == 0 and not stats["rejected"], stats
    # flow control: the broker never had to drop anything for the monitor
    assert "Outgoing messages are being dropped" not in default_mosquitto.log_path.read_text(errors="replace")
    # live progress: per sensor, at INFO
    assert "shin-ack: online, acknowledged end to end" in mon.stderr
    no_tracebacks(mon, rep)
    assert_stored_equals_offline(store, "fullspeed", "shin-ack", long_night)


def test_monitor_sigkilled_and_down_30_s_during_a_full_speed_replay_loses_nothing(
    long_night: Recording, default_mosquitto, influxdb, tmp_path: Path, clis: list[Cli]
) -> None:
    """How the issue is judged (there with 20 s down, here 30 s as its test list asks): the same
    night through a default-configured Mosquitto at full speed, while the monitor is SIGKILLed
    and stays down, lands whole in InfluxDB."""
    store, env = env_for(default_mosquitto, influxdb, tmp_path, "killed")
    first = start_monitor(clis, tmp_path, env, nights=1, name="monitor-1")
    rep = start_replay(clis, tmp_path, env, long_night, "shin-ack", speed=0)
    n = total_batches(long_night)
    wait_for(lambda: checkpointed(env) > 300, 60, "the night under way", poll=0.1)
    first.kill()
    killed_at = checkpointed(env)
    time.sleep(30)
    # the replay waited (it does not overrun the broker) and is still there
    assert rep.proc.poll() is None, rep.stderr[-3000:]
    assert killed_at < n - 1000, "the night was nearly over when the monitor was killed"
    second = start_monitor(clis, tmp_path, env, nights=1, name="monitor-2")
    assert rep.wait(600) == 0, rep.stderr[-3000:]
    assert second.wait(120) == 0, second.stderr[-3000:]
    stats = second.stats()
    assert stats["nights"] == 1 and stats["stats"].get("batches_missing", 0) == 0, stats
    assert not stats["rejected"], stats
    log = default_mosquitto.log_path.read_text(errors="replace")
    assert "Outgoing messages are being dropped" not in log
    no_tracebacks(first, second, rep)
    assert_stored_equals_offline(store, "killed", "shin-ack", long_night)


def test_broker_restarted_then_killed_with_the_monitor_away_the_monitor_asks_again_and_nothing_is_lost(
    long_night: Recording, default_mosquitto, influxdb, tmp_path: Path, clis: list[Cli]
) -> None:
    """A clean broker restart loses nothing. Then the monitor is SIGKILLed, the replay's window
    waits in the broker's queue for it, and the broker crashes: its last save was at the clean
    stop (autosave every 30 minutes by default), so that queue is gone. The monitor comes back,
    hears from the replay how far it sent, says which batches never arrived and the broker setting
    behind it, asks for them, and the night lands whole."""
    store, env = env_for(default_mosquitto, influxdb, tmp_path, "broker")
    first = start_monitor(clis, tmp_path, env, nights=1, name="monitor-1")
    rep = start_replay(clis, tmp_path, env, long_night, "shin-ack", speed=400)
    wait_for(lambda: checkpointed(env) > 100, 60, "the night under way", poll=0.1)
    default_mosquitto.stop()  # clean: Mosquitto saves its sessions and queues
    time.sleep(2)
    default_mosquitto.start()
    time.sleep(3)
    heard = Peer(
        default_mosquitto.url,
        "listener",
        "legwatch/shin-ack/sender",
        "legwatch/shin-ack/samples",
        "legwatch/shin-ack/ack",
    )

    seen = {"read": 0, "sent": -1}

    def latest(kind: str) -> list[bytes]:
        return [body for topic, body in list(heard.heard) if topic.endswith(kind)]

    def sent_up_to() -> int:
        """The highest batch heard on the samples topic (read on from where the last call stopped)."""
        new = list(heard.heard)[seen["read"] :]
        seen["read"] += len(new)
        seqs = [payload.decode(body).seq for topic, body in new if topic.endswith("/samples")]
        seen["sent"] = max([seen["sent"], *seqs])
        return seen["sent"]

    try:
        # The monitor dies with the replay's window empty: the replay is paused until the monitor
        # has acknowledged everything it sent, so what it sends next (a whole window) can only wait
        # in the broker's queue. Killed with a full window instead, the monitor would have had
        # everything already (in its journal) and there would be nothing for the crash to lose.
        wait_for(lambda: sent_up_to() >= 0, 30, "the replay sending again after the restart", poll=0.02)
        os.kill(rep.proc.pid, signal.SIGSTOP)
        try:

            def all_acknowledged() -> bool:
                marks = [ack.parse_watermark(body).stored for body in latest("/ack")[-1:]]
                return bool(marks) and marks[-1] == sent_up_to()

            wait_for(all_acknowledged, 60, "the monitor acknowledging all the replay sent", poll=0.05)
            at_kill = sent_up_to()
            first.kill()
        finally:
            os.kill(rep.proc.pid, signal.SIGCONT)

        # the replay fills its window (the broker queues it for the monitor), then, 5 s without
        # progress, reports how far it sent: everything before that report is in the broker's queue
        def window_full() -> bool:
            docs = [json.loads(body) for body in latest("/sender")]
            full = any(d["sent"] is not None and d["sent"] - d["first"] + 1 >= WINDOW for d in docs)
            return full and sent_up_to() > at_kill

        wait_for(window_full, 30, "the replay's report of a full window, sent after the crash", poll=0.1)
    finally:
        heard.close()
    assert rep.proc.poll() is None, "the night was over before the crash"
    default_mosquitto.kill()
    time.sleep(1)
    default_mosquitto.start()
    second = start_monitor(clis, tmp_path, env, nights=1, name="monitor-2")
    assert rep.wait(600) == 0, rep.stderr[-3000:]
    assert second.wait(120) == 0, second.stderr[-3000:]
    stats = second.stats()
    assert stats["nights"] == 1 and stats["stats"].get("batches_missing", 0) == 0, stats
    assert set(stats["rejected"]) <= {"duplicate"}, stats  # QoS 1 may deliver a batch twice
    said = second.stderr
    assert "did not arrive" in said and "max_queued_messages" in said and "persistence true" in said, said[-3000:]
    assert "the monitor asks again for batches" in rep.stderr, rep.stderr[-3000:]
    no_tracebacks(first, second, rep)
    assert_stored_equals_offline(store, "broker", "shin-ack", long_night)


def test_publisher_without_acknowledgements_works_as_before(mosquitto, influxdb, tmp_path: Path, clis) -> None:
    """A do-it-yourself board: plain paho, the documented binary payload, statuses without a
    session. Its night is stored; a batch it never sent is a gap at once, with the reason said;
    the monitor publishes no acknowledgement for it."""
    store, env = pipeline_env(mosquitto, influxdb, tmp_path, "diy")
    prefix = env["LEGWATCH_MQTT_TOPIC_PREFIX"]
    night = generate_night(5, hours=0.3, rate_hz=26.0)
    t, xyz = payload.quantize(night.t, night.xyz)
    cuts = list(batches(t))
    board = Peer(mosquitto.url, f"{prefix}-board")
    listener = Peer(mosquitto.url, f"{prefix}-listener", f"{prefix}/diy-board/ack")
    try:
        mon = start_monitor(clis, tmp_path, env, nights=1, name="monitor")
        board.publish(f"{prefix}/diy-board/status", status.online(source="diy"), retain=True)
        skipped = 40
        for seq, sl in enumerate(cuts):
            if seq != skipped:
                board.publish(f"{prefix}/diy-board/samples", payload.encode("diy-board", seq, t[sl], xyz[sl], 26.0))
        board.publish(f"{prefix}/diy-board/status", status.offline(source="diy"), retain=True)
        assert mon.wait(120) == 0, mon.stderr[-3000:]
    finally:
        board.close()
        listener.close()
    stats = mon.stats()
    assert stats["nights"] == 1 and stats["stats"]["batches"] == len(cuts) - 1, stats
    assert stats["stats"]["batches_missing"] == 1 and not stats["rejected"], stats
    assert f"diy-board: batches {skipped}-{skipped} (1, ~" in mon.stderr
    assert "does not take part in acknowledgements" in mon.stderr
    assert not listener.heard, "an acknowledgement for a publisher that does not take part"
    (gap,) = [g for g in store.query("gap", tags={"sensor": "diy-board"}) if "reason" in g.fields]
    assert "max_queued_messages" in gap.fields["reason"]
    t_lost = t[cuts[skipped]]
    assert gap.time <= t_lost[0] and gap.fields["end"] >= t_lost[-1]
    episodes = store.query("episode", tags={"sensor": "diy-board"})
    assert episodes and store.query("night", tags={"sensor": "diy-board"})
    no_tracebacks(mon)


def test_watermark_and_report_round_trip_and_refuse_bad_ones() -> None:
    wm = ack.parse_watermark(ack.build_watermark("s1", 2**32 + 5, [(7, 9)], ended=True))
    assert (wm.session, wm.stored, wm.missing, wm.ended) == ("s1", 5, ((7, 9),), True)
    assert wm.covers(5) and wm.covers(2**32 + 4) and not wm.covers(6)
    rep = ack.parse_report(ack.build_report("s1", 10, 20, [(3, 4, "spool full")]))
    assert (rep.first, rep.sent, rep.lost) == (10, 20, ((3, 4, "spool full"),))
    assert ack.unwrap(3, 2**32 - 2) == 2**32 + 3 and ack.unwrap(2**32 - 1, 2**32 + 3) == 2**32 - 1
    for bad in (b"", b"[]", b'{"v": 2, "session": "a"}', b'{"v": 1, "session": "a b"}'):
        with pytest.raises(ack.AckError):
            ack.parse_watermark(bad)
    with pytest.raises(ack.AckError):
        ack.parse_report(b'{"v": 1, "session": "a", "first": -1}')
    assert np.isfinite(wm.time)


def test_collector_keeps_its_spool_until_the_monitor_confirms_and_the_monitor_away_loses_nothing(
    default_mosquitto, tmp_path: Path, sqlite_store
) -> None:
    """The collector stand-in (the real collector behind a stand-in BLE radio) with its disk spool:
    a broker's PUBACK is not enough, batches stay spooled until the monitor confirms storing them;
    while the monitor is away they pile up in the spool, not lost; the night ends confirmed."""
    import asyncio

    from test_collector import NusBoard, Radio, config, options, running, sensor_id, until

    from legwatch.monitor.service import Monitor

    sensor = NusBoard()
    radio = Radio(sensor)
    sid = sensor_id()
    cfg = config(default_mosquitto.url, tmp_path)
    monitors = [Monitor(cfg, sqlite_store, client_id=f"monitor-{sid}")]
    monitors[0].start()
    seen: dict[str, int] = {}

    async def body(c) -> None:
        assert c.spool is not None and c.publisher is not None
        await until(lambda: c.publisher.end_to_end and c.publisher.confirmed >= 4, 20)
        await asyncio.to_thread(monitors[0].stop)
        produced = c.stats["batches"]
        await asyncio.sleep(5.0)  # ~10 batches while no monitor confirms anything
        seen["during"] = len(c.spool)
        seen["broker_backlog"] = c.publisher.backlog
        seen["produced"] = c.stats["batches"] - produced
        monitors.append(Monitor(cfg, sqlite_store, client_id=f"monitor-{sid}"))
        await asyncio.to_thread(monitors[1].start)
        await until(lambda: len(c.spool) <= 2, 30)

    try:
        # drain_s: time for the last batches and the end of the night to be confirmed; generous,
        # as CI shares two cores with other work (the offline status is sent again every 5 s)
        c = asyncio.run(running(cfg, options(sid, ack_wait_s=30.0, drain_s=45.0, stall_s=5.0), radio.link(), body))
        deadline = time.monotonic() + 20
        while not monitors[1].nights and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for m in monitors:
            m.stop()
    assert seen["produced"] >= 8 and seen["during"] >= seen["produced"], seen  # spooled, unconfirmed
    assert seen["broker_backlog"] <= 2, seen  # although the broker had acknowledged them
    assert c.spool is not None and len(c.spool) == 0 and c.publisher is not None
    pub = c.publisher
    assert pub.night_confirmed, (
        pub.backlog,
        [type(x).__name__ for x in pub._outbox],
        list(pub._inflight.values()),
        pub.refused,
        pub.unconfirmed,
        pub.end_to_end,
        monitors[1].nights,
        monitors[1].stats,
    )
    total = sum(m.stats["samples"] for m in monitors)
    assert total == len(sensor.delivered)
    assert all(m.stats["batches_missing"] == 0 and not m.rejected for m in monitors)
    assert [(subject, s) for subject, s, _ in monitors[1].nights] == [("me", sid)]


def test_replay_says_how_much_the_monitor_confirmed_when_it_stops_confirming(
    mosquitto, tmp_path: Path, sqlite_store
) -> None:
    from legwatch.contracts.config import load_config
    from legwatch.monitor.service import Monitor
    from legwatch.replay import NotConfirmed, replay

    prefix = f"lwstop{uuid.uuid4().hex[:6]}"
    cfg = load_config(
        env={
            "LEGWATCH_MQTT_URL": mosquitto.url,
            "LEGWATCH_MQTT_TOPIC_PREFIX": prefix,
            "LEGWATCH_DATA_DIR": str(tmp_path),
        }
    )
    night = generate_night(3, hours=0.5, rate_hz=52.0)
    mon = Monitor(cfg, sqlite_store, client_id=f"{prefix}-monitor")
    mon.start()
    stopped: list[int] = []

    def progress(done: int, total: int) -> None:
        if done > 300 and not stopped:
            mon.stop()  # and never back
            stopped.append(done)

    try:
        with pytest.raises(NotConfirmed) as err:
            replay(
                night.t,
                night.xyz,
                url=mosquitto.url,
                sensor="shin-stop",
                prefix=prefix,
                progress=progress,
                stall_timeout=5,
            )
    finally:
        mon.stop()
    total = sum(1 for _ in batches(night.t))
    confirmed = int(str(err.value).split("confirmed storing ")[1].split(" of ")[0])
    assert stopped and stopped[0] <= confirmed < total
    assert f"of {total} batches of sensor 'shin-stop'" in str(err.value) and "not the end of the night" in str(
        err.value
    )


def test_replay_on_a_terminal_shows_a_progress_bar_of_what_the_monitor_confirmed(
    mosquitto, tmp_path: Path, sqlite_store
) -> None:
    from legwatch.contracts.config import load_config
    from legwatch.monitor.service import Monitor

    prefix = f"lwbar{uuid.uuid4().hex[:6]}"
    env = {"LEGWATCH_MQTT_URL": mosquitto.url, "LEGWATCH_MQTT_TOPIC_PREFIX": prefix, "LEGWATCH_DATA_DIR": str(tmp_path)}
    night = generate_night(4, hours=0.1, rate_hz=26.0)
    path = tmp_path / "night.csv"
    write_csv(night, path)
    total = sum(1 for _ in batches(night.t))
    mon = Monitor(load_config(env=env), sqlite_store, client_id=f"{prefix}-monitor")
    mon.start()
    try:
        code, shown = run_on_terminal(["replay", str(path), "--sensor", "shin-bar", "--speed", "0"], env, timeout=120)
    finally:
        mon.stop()
    assert code == 0, shown
    assert "confirmed by the monitor" in shown and f"{total}/{total}" in shown, shown
    assert mon.stats["batches"] >= total


def test_replay_without_any_monitor_falls_back_to_the_broker_and_says_so(mosquitto, caplog) -> None:
    from legwatch.replay import replay

    prefix = f"lwnomon{uuid.uuid4().hex[:6]}"
    night = generate_night(3, hours=0.1, rate_hz=26.0)
    with caplog.at_level("WARNING", logger="legwatch.replay"):
        n = replay(night.t, night.xyz, url=mosquitto.url, sensor="shin-alone", prefix=prefix, ack_wait_s=1.0)
    assert n == sum(1 for _ in batches(night.t))
    said = caplog.text
    assert "no monitor acknowledged anything" in said and "going on with the broker's acknowledgements" in said
    assert f"no monitor confirmed storing any of the {n} batches" in said


def test_close_waits_for_what_the_publisher_is_still_handing_to_the_broker(mosquitto) -> None:
    """A batch (or the offline status) taken from the outbox but not yet handed to paho is in
    neither the outbox nor in flight: ``drain``, and so ``close``, must still wait for it (they
    once saw nothing left, closed, and the end of the night went unconfirmed)."""
    import threading

    from collector.publisher import Publisher
    from legwatch.replay import MemorySpool

    reading, release = threading.Event(), threading.Event()

    class SlowSpool(MemorySpool):
        def read(self, seq: int) -> bytes | None:
            reading.set()
            release.wait(10)
            return super().read(seq)

    spool = SlowSpool()
    spool.session = None  # the broker's acknowledgements only: the handing over is what is tested
    seq = spool.append(lambda s: payload.encode("shin-hand", s, np.arange(4) / 4.0, np.zeros((4, 3)), 4.0))
    pub = Publisher(
        url=mosquitto.url,
        client_id=f"hand-{uuid.uuid4().hex[:6]}",
        prefix=f"lwhand{uuid.uuid4().hex[:6]}",
        sensor="shin-hand",
        spool=spool,
    )
    pub.start(background=False)
    try:
        assert reading.wait(10)
        assert pub.backlog == 1 and not pub.drain(0.3)  # being handed over: not drained
        release.set()
        assert pub.drain(10) and pub.backlog == 0
        assert pub.acked == 1 and seq not in spool.pending()
    finally:
        release.set()
        pub.close(0)
