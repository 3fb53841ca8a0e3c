"""Collector building blocks without radio or broker: clock mapping, the spool, batching, status messages."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from collector.clock import ClockMapper, DeviceMillis, NominalTimeline, SensorTimeline
from collector.pipeline import Pipeline, batch_rate
from collector.spool import Spool
from legwatch.contracts import payload

T0 = 1_767_650_000.0  # a night in January 2026


def latencies(rng: np.random.Generator, n: int, floor: float = 0.003, mean: float = 0.02) -> np.ndarray:
    """BLE delivery delays: a floor plus an exponential tail, never negative."""
    return floor + rng.exponential(mean, n)


def run_sensor_clock(
    sensor_time, true_times: np.ndarray, per: int, lat: np.ndarray, timeline=None
) -> tuple[np.ndarray, SensorTimeline]:
    timeline = timeline or SensorTimeline()
    out = []
    last = None
    for f in range(len(true_times) // per):
        true = true_times[f * per : (f + 1) * per]
        t = timeline.map(sensor_time(true), float(true[-1] + lat[f]), None if last is None else last + 1e-4)
        if last is not None:
            assert t[0] > last, f"time went backwards at frame {f}"
        last = float(t[-1])
        out.append(t)
    return np.concatenate(out), timeline


# -- (f) clock mapping ------------------------------------------------------------------------------


def test_sensor_clock_follows_offset_and_drift_through_jitter() -> None:
    """A Polar clock an hour off and 150 ppm fast, 10-sample frames, jittery delivery: mapped
    times sit a few ms after the true sampling time (the smallest latency), all night."""
    rng = np.random.default_rng(1)
    rate, per = 52.0, 10
    true = T0 + np.arange(int(1800 * rate)) / rate
    lat = latencies(rng, len(true) // per)
    mapped, tl = run_sensor_clock(lambda t: (t - T0) * (1 + 150e-6) + T0 - 3600.5, true, per, lat)
    err = mapped - true[: len(mapped)]
    settled = err[int(10 * rate) :]
    assert settled.min() > -0.001 and settled.max() < 0.015, (settled.min(), settled.max())
    assert abs(np.median(settled) - 0.003) < 0.002  # the latency floor
    spacing = np.diff(mapped)
    assert np.all(spacing > 0)
    assert np.median(spacing) == pytest.approx(1 / rate, rel=1e-3)  # host seconds, drift removed
    assert tl.mapper.reanchors == 0


def test_sensor_clock_reset_and_jump_reanchor() -> None:
    """A sensor whose clock restarts at 2000-01-01 (reboot) and later jumps forward an hour: each
    re-anchors at once, time never runs backwards, samples stay on the host clock."""
    rng = np.random.default_rng(2)
    rate, per = 50.0, 5
    true = T0 + np.arange(int(120 * rate)) / rate

    def sensor_time(t: np.ndarray) -> np.ndarray:
        s = t.copy()
        s[t >= T0 + 40] -= T0 + 40 - 946_684_800.0  # reboot: back to the PMD epoch
        s[t >= T0 + 80] += 3600.0  # someone sets the clock
        return s

    mapped, tl = run_sensor_clock(sensor_time, true, per, latencies(rng, len(true) // per, mean=0.005))
    assert tl.mapper.resets == 1 and tl.mapper.jumps == 1
    err = mapped - true[: len(mapped)]
    assert np.abs(err).max() < 0.06
    assert np.all(np.diff(mapped) > 0)


def test_sensor_clock_ignores_late_bursts() -> None:
    """Notifications held back 1.5 s by link retransmissions and then delivered in a burst do
    not move the mapping (the lower envelope ignores late frames)."""
    rng = np.random.default_rng(3)
    rate, per = 52.0, 4
    true = T0 + np.arange(int(60 * rate)) / rate
    lat = latencies(rng, len(true) // per, mean=0.005)
    frame_end = true[per - 1 :: per]
    held = (frame_end > T0 + 30) & (frame_end < T0 + 31.5)
    lat[: len(held)][held] += (T0 + 31.5) - frame_end[held]
    mapped, tl = run_sensor_clock(lambda t: t + 12.0, true, per, lat)
    err = mapped - true[: len(mapped)]
    assert np.abs(err[int(5 * rate) :]).max() < 0.02
    assert tl.mapper.reanchors == 0


@pytest.mark.parametrize("true_rate", [49.5, 50.0, 50.6])
def test_nominal_clock_learns_the_real_rate(true_rate: float) -> None:
    """WitMotion-style: no timestamps, the sensor's real rate is up to ~1 % off its nominal 50 Hz;
    after a minute the rate correction is learnt and times are within a few ms, never raw
    arrival times (which jitter by tens of ms)."""
    rng = np.random.default_rng(4)
    per = 3
    true = T0 + np.arange(int(400 * true_rate)) / true_rate
    tl = NominalTimeline(50.0)
    lat = latencies(rng, len(true) // per)
    out, last = [], None
    for f in range(len(true) // per):
        t = tl.map(per, float(true[(f + 1) * per - 1] + lat[f]), None if last is None else last + 1e-4)
        assert last is None or t[0] > last
        last = float(t[-1])
        out.append(t)
    err = np.concatenate(out) - true[: per * len(out)]
    assert np.abs(err[: int(60 * true_rate)]).max() < 0.1
    late = err[int(120 * true_rate) :]
    assert late.min() > 0 and late.max() < 0.012, (late.min(), late.max())
    assert tl.mapper.rho == pytest.approx(50.0 / true_rate - 1, abs=2e-4)
    # spacing is the sensor's, not the radio's: evenly spaced within a frame and across frames
    assert np.std(np.diff(np.concatenate(out)[int(120 * true_rate) :])) < 2e-4


def test_nominal_clock_reconnect_leaves_an_honest_hole() -> None:
    """A reconnect 30 s later starts a new segment at the host time: a 30 s hole, no squeezing,
    and the learnt rate correction is kept."""
    rng = np.random.default_rng(5)
    tl = NominalTimeline(50.0)
    times = []
    for seg_start in (T0, T0 + 100.0 + 30.0):
        tl.new_segment()
        for f in range(0, 5000, 5):
            true_last = seg_start + (f + 4) / 50.0
            times.append(tl.map(5, true_last + float(latencies(rng, 1)[0])))
    t = np.concatenate(times)
    gaps = np.diff(t)
    big = np.flatnonzero(gaps > 1.0)
    assert len(big) == 1
    assert gaps[big[0]] == pytest.approx(30.0 + 0.02, abs=0.05)
    assert np.all(gaps > 0)


def test_nominal_clock_records_lost_samples_as_a_gap() -> None:
    """Two seconds of notifications never sent (the sensor's buffer overflowed): the count falls
    behind arrival times, which after a second of persistent lateness re-anchors: the stream shows
    a ~2 s hole instead of compressing the rest of the night."""
    rng = np.random.default_rng(6)
    rate, per = 50.0, 5
    true = T0 + np.arange(int(60 * rate)) / rate
    tl = NominalTimeline(rate)
    out, kept = [], []
    for f in range(len(true) // per):
        idx = np.arange(f * per, (f + 1) * per)
        if T0 + 20 <= true[idx[0]] < T0 + 22:
            continue
        out.append(tl.map(per, float(true[idx[-1]] + latencies(rng, 1)[0])))
        kept.append(idx)
    t, idx = np.concatenate(out), np.concatenate(kept)
    err = t - true[idx]
    assert tl.mapper.gaps == 1
    assert np.abs(err[true[idx] > T0 + 24]).max() < 0.03  # back on time after the re-anchor
    assert np.all(np.diff(t) > 0)
    hole = np.diff(t).max()
    assert 1.0 < hole < 2.1


@pytest.mark.parametrize("timed", [True, False])
def test_clock_output_stays_evenly_spaced_through_delays_and_bursts(timed: bool) -> None:
    """A loaded host: notifications held up to 0.4 s, then delivered back to back. Corrections
    are spread over the samples, so no two samples come closer than 90 % of their spacing."""
    rng = np.random.default_rng(9)
    rate, per = 52.0, 10
    true = T0 + np.arange(int(120 * rate)) / rate
    frame_end = true[per - 1 :: per]
    arrival = frame_end + latencies(rng, len(frame_end), mean=0.004)
    for start in range(40, len(arrival), 97):  # a stall every ~19 s, then a burst
        arrival[start : start + 20] = np.maximum(arrival[start : start + 20], arrival[start] + 0.4)
    timeline = SensorTimeline() if timed else NominalTimeline(rate)
    out = []
    for f in range(len(frame_end)):
        chunk = true[f * per : (f + 1) * per]
        t = timeline.map(chunk + 7.0, float(arrival[f])) if timed else timeline.map(per, float(arrival[f]))
        out.append(t)
    t = np.concatenate(out)
    assert np.diff(t).min() >= 0.9 / rate
    assert np.abs(t - true[: len(t)]).max() < 0.05
    assert timeline.mapper.reanchors == 0


def test_device_millis_unwraps_and_notices_a_reboot() -> None:
    clock = DeviceMillis()
    assert clock.seconds(2**32 - 500) == pytest.approx((2**32 - 500) / 1000)
    assert clock.seconds(500) == pytest.approx((2**32 + 500) / 1000)  # wrapped: time went on
    assert clock.seconds(120) == pytest.approx(0.12)  # went back: the board rebooted


def test_clock_mapper_never_maps_before_not_before() -> None:
    m = ClockMapper()
    t = m.map(np.array([10.0, 10.02]), arrival=T0, not_before=T0 + 5)
    assert t[0] >= T0 + 5 and t[1] - t[0] == pytest.approx(0.02)


# -- (e) and (d) spool ------------------------------------------------------------------------------


def test_spool_bound_drops_oldest_with_a_warning(tmp_path, caplog) -> None:
    spool = Spool(tmp_path / "s", max_bytes=450, warn_interval_s=0)
    with caplog.at_level(logging.WARNING, logger="legwatch.collector.spool"):
        for i in range(10):
            spool.append(lambda seq, i=i: bytes([i]) * 100)
    assert spool.pending() == [6, 7, 8, 9]
    assert spool.bytes == 400 and spool.dropped == 6
    assert sorted(p.name for p in (tmp_path / "s").glob("*.lwb")) == [f"{s:020d}.lwb" for s in (6, 7, 8, 9)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "dropped the 1 oldest" in warnings[0]
    assert sum(int(w.split("dropped the ")[1].split()[0]) for w in warnings) == 6
    assert "6 dropped since start" in warnings[-1]
    assert spool.read(6) == bytes([6]) * 100 and spool.read(0) is None


def test_spool_warning_is_rate_limited_but_counts_everything(tmp_path, caplog) -> None:
    spool = Spool(tmp_path / "s", max_bytes=250, warn_interval_s=3600)
    with caplog.at_level(logging.WARNING, logger="legwatch.collector.spool"):
        for _ in range(8):
            spool.append(lambda seq: b"x" * 100)
        spool.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # the first drop, then the rest summed up at close
    assert "dropped the 1 oldest" in warnings[0] and "dropped the 5 oldest" in warnings[1]
    assert "6 dropped since start" in warnings[1]


def test_spool_resumes_and_continues_numbering_after_a_clean_restart(tmp_path) -> None:
    d = tmp_path / "s"
    spool = Spool(d, boot_id="boot-a")
    for _ in range(5):
        spool.append(lambda seq: f"batch {seq}".encode())
    spool.ack(0)
    spool.ack(1)
    spool.close()
    again = Spool(d, boot_id="boot-b")
    assert again.pending() == [2, 3, 4] and again.resumed == 3
    assert again.read(3) == b"batch 3"
    assert again.next_seq == 5
    for seq in (2, 3, 4):
        again.ack(seq)
    again.close()
    third = Spool(d, boot_id="boot-c")
    assert third.pending() == [] and third.next_seq == 5  # an empty spool still remembers


def test_spool_after_a_crash_continues_exactly_on_the_same_boot(tmp_path) -> None:
    d = tmp_path / "s"
    spool = Spool(d, boot_id="boot-a", reserve=64)
    for _ in range(3):
        spool.append(lambda seq: b"x")
    for seq in spool.pending():
        spool.ack(seq)
    # no close(): the process was killed; the page cache (same boot) still has the exact state
    assert Spool(d, boot_id="boot-a").next_seq == 3


def test_spool_after_a_power_cut_never_reuses_a_number(tmp_path) -> None:
    d = tmp_path / "s"
    spool = Spool(d, boot_id="boot-a", reserve=64)
    for _ in range(3):
        spool.append(lambda seq: b"x")
    for seq in spool.pending():
        spool.ack(seq)
    state = json.loads((d / "state.json").read_text())
    assert state["reserved"] >= 64 and not state["clean"]
    # A different boot without a clean close: the exact number may be stale on disk; the
    # fsynced reservation is not.
    state["next_seq"] = 1  # what a power cut could leave
    (d / "state.json").write_text(json.dumps(state))
    after = Spool(d, boot_id="boot-b")
    assert after.next_seq == state["reserved"] > 3


def test_spool_ignores_leftover_temporary_files(tmp_path) -> None:
    d = tmp_path / "s"
    d.mkdir()
    (d / f"{7:020d}.lwb.tmp").write_bytes(b"half")
    (d / f"{5:020d}.lwb").write_bytes(b"whole")
    spool = Spool(d)
    assert spool.pending() == [5] and spool.next_seq == 6
    assert not list(d.glob("*.tmp"))


# -- batching -------------------------------------------------------------------------------------


def test_pipeline_batches_about_one_second_with_holes_cut() -> None:
    out: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    p = Pipeline(lambda t, x, r, s: out.append((t, x, r, s)), batch_s=1.0)
    p.start_segment(rate=50.0, range_g=8.0)
    rng = np.random.default_rng(7)
    arrival = T0
    for f in range(30):  # 3 s at 50 Hz in frames of 5
        arrival = T0 + (f * 5 + 4) / 50 + 0.003 + rng.exponential(0.01)
        p.add(np.full((5, 3), f / 100.0), None, arrival)
    p.end_segment()
    p.start_segment(rate=50.0, range_g=8.0)  # reconnect 10 s later
    for f in range(20):
        p.add(np.full((5, 3), 1.0), None, arrival + 10 + f * 0.1)
    p.flush()
    sizes = [len(b[0]) for b in out]
    assert sizes == [50, 50, 50, 50, 50]
    t = np.concatenate([b[0] for b in out])
    assert np.all(np.diff(t) > 0)
    assert np.diff(t).max() > 9.5  # the hole is still there
    # each batch encodes evenly spaced (no per-sample offsets) once the clock has settled
    data = payload.encode("s", 0, out[2][0], out[2][1], out[2][2], out[2][3])
    assert data[1] & payload.FLAG_OFFSETS == 0
    assert out[0][3] == payload.DEFAULT_SCALE


def test_batch_rate_snaps_even_batches_onto_the_grid_and_keeps_uneven_ones() -> None:
    t = T0 + np.arange(52) / 51.93 + np.random.default_rng(8).normal(0, 2e-5, 52)
    snapped, rate = batch_rate(t, 52.0)
    assert rate == pytest.approx(51.93, rel=1e-4)
    assert np.abs(snapped - t).max() < 2e-4
    data = payload.encode("s", 0, snapped, np.zeros((52, 3)), rate)
    assert data[1] & payload.FLAG_OFFSETS == 0  # 6 bytes per sample
    assert np.array_equal(payload.decode(data).t, snapped)
    uneven = t.copy()
    uneven[10:] += 0.01
    same, rate = batch_rate(uneven, 52.0)
    assert rate == 52.0 and same is uneven
    assert batch_rate(t[:1], 52.0)[1] == 52.0


def test_pipeline_splits_where_times_stray_from_the_grid() -> None:
    """A clock correction piling up inside one batch (here 10 % slower for a while) or a short
    hole makes the batch end where the payload's +-32.767 ms allowance would be exceeded."""
    out: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    p = Pipeline(lambda t, x, r, s: out.append((t, x, r, s)), batch_s=1.0)
    p.start_segment(rate=50.0, range_g=8.0)
    t = T0 + np.cumsum(np.r_[0, np.full(49, 0.018), 0.4, np.full(49, 0.02)])
    p.sensor_timeline.map = lambda ts, arrival, not_before=None: ts  # take these times as they are
    for i in range(0, 100, 5):
        p.add(np.zeros((5, 3)), t[i : i + 5], float(t[i + 4]))
    p.flush()
    got = np.concatenate([b[0] for b in out])
    assert len(got) == 100
    for b in out:
        payload.decode(payload.encode("s", 0, b[0], b[1], b[2], b[3]))  # every batch encodes
    assert len(out) >= 3


# -- status messages (legwatch.contracts.status) ----------------------------------------------------


def test_status_messages_keep_their_wire_form_and_parse_back() -> None:
    from legwatch.contracts import status

    online = status.build("online", source="collector", sensor="shin-left", battery=None, rssi=-61, link="connected")
    doc = json.loads(online)
    assert list(doc) == ["state", "time", "source", "sensor", "rssi", "link"]  # None left out, time second
    assert doc["state"] == "online" and abs(doc["time"] - round(doc["time"], 3)) < 1e-9
    assert status.will("collector", "collector connection lost", marked=False) == (
        b'{"state": "offline", "source": "collector", "reason": "collector connection lost"}'
    )
    assert (
        status.will("replay") == b'{"state": "offline", "will": true, "source": "replay", "reason": "connection lost"}'
    )
    parsed = status.parse(online)
    assert parsed.online and not parsed.is_will and parsed.time == doc["time"] and parsed.fields["rssi"] == -61
    assert status.parse(status.will("collector", marked=False)).is_will  # no time: a will
    assert status.parse(status.will("replay")).is_will
    assert not status.parse(status.offline(source="replay")).is_will
    assert status.parse(b'{"state": "sleeping"}').state == "sleeping"  # a future state: read, not refused
    for bad, message in [
        (b"[1]", "status is not a JSON object"),
        (b"\xff", "status is not a JSON object"),
        (b'{"state": 1}', 'status needs "state": "online" or "offline"'),
    ]:
        with pytest.raises(status.StatusError, match=message):
            status.parse(bad)
