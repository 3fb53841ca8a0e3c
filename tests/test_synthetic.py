"""The labelled synthetic night generator: determinism, physics sanity, event rules, writers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from detector.events import KINDS_COUNTED
from detector.scoring import periodic_series_flags
from detector.synthetic import (
    DURATION_LIMITS,
    Night,
    NightSpec,
    TruthEvent,
    generate_night,
    main,
    read_truth_json,
    write_csv,
    write_truth_json,
)

KINDS = (*KINDS_COUNTED, "posture_change", "out_of_bed")


@pytest.fixture(scope="module")
def night() -> Night:
    return generate_night(11, hours=1.0, rate_hz=52.0, plm_series=3, cramps=1, twitches=8, gaps=2, partner=True)


@pytest.fixture(scope="module")
def nights() -> list[Night]:
    return [generate_night(seed, hours=0.5, rate_hz=(26.0, 52.0, 104.0)[seed % 3]) for seed in range(12)]


def _rest_mask(n: Night, margin: float = 5.0) -> np.ndarray:
    """Samples at least ``margin`` s away from every event and confounder."""
    busy = np.zeros(len(n.t), dtype=bool)
    for e in (*n.events, *n.confounders):
        i0, i1 = np.searchsorted(n.t, [e.start - margin, e.end + margin])
        busy[i0:i1] = True
    return ~busy


def test_deterministic_per_seed() -> None:
    a = generate_night(5, hours=0.5, rate_hz=52.0)
    b = generate_night(5, hours=0.5, rate_hz=52.0)
    c = generate_night(6, hours=0.5, rate_hz=52.0)
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.xyz, b.xyz)
    assert a.events == b.events and a.confounders == b.confounders
    assert (a.sleep_start, a.sleep_end) == (b.sleep_start, b.sleep_end)
    assert a.events != c.events


def test_override_does_not_change_other_draws() -> None:
    a = generate_night(5, hours=0.5, noise_mg=2.0)
    b = generate_night(5, hours=0.5, noise_mg=4.0)
    assert a.events == b.events
    assert a.params["strap_deg"] == b.params["strap_deg"]


def test_shapes_dtypes_and_timestamps(night: Night) -> None:
    n = len(night.t)
    assert night.t.dtype == np.float64 and night.t.shape == (n,)
    assert night.xyz.dtype == np.float64 and night.xyz.shape == (n, 3)
    assert np.isfinite(night.t).all() and np.isfinite(night.xyz).all()
    assert np.all(np.diff(night.t) > 0), "timestamps must be strictly increasing"
    assert n > 0.9 * 3600 * 52  # one hour less two gaps (a gap is at most 5 % of the night)
    assert 1.7e9 < night.t[0] < 1.8e9
    assert night.t[-1] - night.t[0] == pytest.approx(3600.0, abs=2.0)
    assert night.rate_hz == 52.0 and night.seed == 11


def test_default_start_is_an_evening_near_2026_01_05() -> None:
    starts = [generate_night(s, hours=0.2).t[0] for s in range(5)]
    evening = 1767652200.0  # 2026-01-05 22:30 UTC
    assert all(evening - 3601 < s < evening + 5401 for s in starts)
    assert len(set(starts)) == 5
    assert generate_night(0, hours=0.2, start=1.8e9).t[0] == pytest.approx(1.8e9, abs=0.1)


def test_gravity_is_one_g_at_rest(nights: list[Night]) -> None:
    for n in nights:
        mag = np.linalg.norm(n.xyz[_rest_mask(n)], axis=1)
        assert len(mag) > 1000
        assert np.median(mag) == pytest.approx(1.0, abs=0.05)
        assert np.percentile(mag, 1) > 0.93 and np.percentile(mag, 99) < 1.07


def test_lying_shin_is_near_horizontal() -> None:
    # Shin along sensor y, no misalignment: in bed at rest, gravity is (nearly) perpendicular to y.
    n = generate_night(3, hours=0.5, shin_axis="y", misalign_deg=0.0)
    sel = _rest_mask(n)
    for e in n.events:
        if e.kind == "out_of_bed":
            i0, i1 = np.searchsorted(n.t, [e.start - 10, e.end + 10])
            sel[i0:i1] = False
    assert np.percentile(np.abs(n.xyz[sel, 1]), 95) < 0.25


def test_noise_level_follows_the_knob() -> None:
    sds = []
    for mg in (1.5, 5.0):
        n = generate_night(2, hours=0.3, noise_mg=mg, bits=16, range_g=2.0, partner=False)
        rest = _rest_mask(n)
        # Differencing neighbours at rest removes posture; sd(diff) = sqrt(2) sd.
        d = np.diff(n.xyz, axis=0)[rest[1:] & rest[:-1]]
        sds.append(np.median(np.std(d, axis=0)) / np.sqrt(2) * 1000)
    assert sds[0] == pytest.approx(1.5, rel=0.3)
    assert sds[1] == pytest.approx(5.0, rel=0.3)


def test_events_inside_the_night_and_within_duration_limits(nights: list[Night]) -> None:
    for n in nights:
        assert n.t[0] < n.sleep_start < n.sleep_end < n.t[-1]
        assert n.events == sorted(n.events, key=lambda e: e.start)
        for e in n.events:
            assert e.kind in KINDS
            lo, hi = DURATION_LIMITS[e.kind]
            assert lo - 1e-9 <= e.duration_s <= hi + 1e-9, e
            assert n.t[0] <= e.start < e.end <= n.t[-1] + 1e-6, e
            assert e.periodic is False or e.kind == "leg_movement"
        for a, b in zip(n.events, n.events[1:], strict=False):
            assert b.start >= a.end, (a, b)
        assert n.episodes() == [e for e in n.events if e.kind in KINDS_COUNTED]


def test_kind_duration_classes(nights: list[Night]) -> None:
    ev = [e for n in nights for e in n.events]
    assert all(e.duration_s < 0.5 for e in ev if e.kind == "twitch")
    assert all(0.5 <= e.duration_s <= 10.0 for e in ev if e.kind == "leg_movement")
    assert all(e.duration_s > 10.0 for e in ev if e.kind == "contraction")


def test_requested_counts() -> None:
    n = generate_night(4, hours=1.0, cramps=2, twitches=6, plm_series=2, bathroom_trips=1)
    kinds = [e.kind for e in n.events]
    assert kinds.count("contraction") == 2
    assert kinds.count("twitch") == 6
    assert kinds.count("out_of_bed") >= 2  # the trip and the final getting up (plus any after a cramp)
    assert sum(e.periodic for e in n.events) >= 8
    quiet = generate_night(4, hours=0.5, cramps=0, twitches=0, plm_series=0, isolated_lm_per_h=0.0)
    assert not [e for e in quiet.events if e.kind in ("contraction", "twitch")]
    assert not any(e.periodic for e in quiet.events)


def _series(events: list[TruthEvent]) -> list[list[TruthEvent]]:
    """Consecutive periodic leg movements grouped while the interval stays in [10, 90] s."""
    lms = [e for e in events if e.kind in ("leg_movement", "contraction") and e.duration_s >= 0.5]
    out: list[list[TruthEvent]] = []
    cur: list[TruthEvent] = []
    for e in lms:
        if e.periodic and cur and 10.0 <= e.start - cur[-1].start <= 90.0:
            cur.append(e)
            continue
        if cur:
            out.append(cur)
        cur = [e] if e.periodic else []
    if cur:
        out.append(cur)
    return out


def test_periodic_series_follow_wasm(night: Night) -> None:
    series = _series(night.events)
    assert series, "plm_series=3 must give periodic series"
    for s in series:
        assert len(s) >= 4
        imi = np.diff([e.start for e in s])
        assert np.all((imi >= 10.0) & (imi <= 90.0))
        assert all(e.periodic for e in s)
    # The flags are exactly the WASM rule applied to the final list.
    assert [e.periodic for e in night.events] == periodic_series_flags(night.events)


def test_periodic_series_vary_between_nights(nights: list[Night]) -> None:
    counts = [sum(e.periodic for e in n.events) for n in nights]
    assert min(counts) == 0 and max(counts) >= 8
    for n in nights:
        for s in _series(n.events):
            assert len(s) >= 4


@pytest.mark.parametrize("rate", [25.0, 26.0, 52.0, 104.0, 200.0, 208.0])
def test_sample_rates(rate: float) -> None:
    n = generate_night(1, hours=0.15, rate_hz=rate, gaps=0, late_bursts=0, jitter=0.1)
    dt = np.diff(n.t)
    assert np.median(dt) == pytest.approx(1.0 / rate, rel=0.01)
    assert len(n.t) == pytest.approx(0.15 * 3600 * rate, rel=0.01)
    assert dt.max() < 2.0 / rate
    assert np.all(dt > 0)


def test_gaps_when_asked() -> None:
    n = generate_night(8, hours=1.0, gaps=3, late_bursts=0)
    gaps = [c for c in n.confounders if c.kind == "gap"]
    assert len(gaps) == 3
    dt = np.diff(n.t)
    assert int(np.sum(dt > 2.5)) == 3
    for g in gaps:  # no samples inside, and no counted event touches a gap
        assert not np.any((n.t > g.start + 0.1) & (n.t < g.end - 0.1))
        for e in n.episodes():
            assert e.end <= g.start or e.start >= g.end
    none = generate_night(8, hours=1.0, gaps=0)
    assert np.diff(none.t).max() < 2.0
    assert not [c for c in none.confounders if c.kind == "gap"]


def test_late_bursts_squeeze_timestamps() -> None:
    n = generate_night(9, hours=0.5, late_bursts=5, gaps=0, jitter=0.0)
    dt = np.diff(n.t)
    assert dt.min() < 0.1 / 52 and dt.max() > 0.2
    assert np.all(dt > 0)


def test_partner_is_not_an_event() -> None:
    n = generate_night(10, hours=0.5, partner=True, partner_bursts=10, partner_periodic=True)
    assert [c for c in n.confounders if c.kind == "partner"]
    assert all(e.kind in KINDS for e in n.events)


def test_unknown_override_is_refused() -> None:
    with pytest.raises(TypeError):
        generate_night(0, hours=0.2, no_such_knob=1)
    with pytest.raises(ValueError):
        generate_night(0, hours=0.01)


def test_spec_resolution_fills_every_knob() -> None:
    s = NightSpec(hours=2.0).resolved(np.random.default_rng(0))
    assert all(v is not None for v in vars(s).values())
    assert 1.5 <= s.noise_mg <= 5.0
    assert 2.0 * s.range_g / 2**s.bits <= 1.0e-3


def test_write_csv_parses_back(tmp_path, night: Night) -> None:
    small = Night(night.t[:5000], night.xyz[:5000], [], night.sleep_start, night.sleep_end, 52.0, 11)
    p = tmp_path / "night.csv"
    write_csv(small, p)
    lines = p.read_text().splitlines()
    assert lines[0] == "timestamp,ax,ay,az"
    assert len(lines) == 5001
    assert re.fullmatch(r"\d{10}\.\d{6},-?\d+\.\d{5},-?\d+\.\d{5},-?\d+\.\d{5}", lines[1])
    data = np.loadtxt(p, delimiter=",", skiprows=1)
    assert data.shape == (5000, 4)
    np.testing.assert_allclose(data[:, 0], small.t, atol=1e-6, rtol=0)
    np.testing.assert_allclose(data[:, 1:], small.xyz, atol=1e-5 / 2 + 1e-12, rtol=0)
    assert np.all(np.diff(data[:, 0]) > 0)


def test_truth_json_roundtrip(tmp_path, night: Night) -> None:
    p = tmp_path / "truth.json"
    write_truth_json(night, p)
    d = json.loads(p.read_text())
    assert d["seed"] == 11 and d["rate_hz"] == 52.0
    events, s0, s1 = read_truth_json(p)
    assert (s0, s1) == (night.sleep_start, night.sleep_end)
    assert len(events) == len(night.events)
    for a, b in zip(events, night.events, strict=True):
        assert a.kind == b.kind and a.periodic == b.periodic
        assert a.start == pytest.approx(b.start, abs=1e-6) and a.end == pytest.approx(b.end, abs=1e-6)
    assert {c["kind"] for c in d["confounders"]} <= {"partner", "gap", "late_burst"}


def test_cli_writes_files(tmp_path, capsys) -> None:
    out, truth = tmp_path / "n.csv", tmp_path / "t.json"
    assert main(["--seed", "3", "--hours", "0.1", "--rate", "26", "--out", str(out), "--truth", str(truth)]) == 0
    assert out.read_text().startswith("timestamp,ax,ay,az\n")
    assert json.loads(truth.read_text())["seed"] == 3
    assert "samples" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--out", str(out), "--set", "bogus=1"])
