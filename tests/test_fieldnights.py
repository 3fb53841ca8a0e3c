"""The third, independent night generator (fieldnights): determinism, clock, gravity, range, labels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from detector.scoring import periodic_series_flags
from detector.synthetic import Night
from fieldnights import generate_night
from fieldnights.periodic import periodic_flags
from helpers import assert_seeded

KINDS = ("twitch", "leg_movement", "contraction", "posture_change", "out_of_bed")


@pytest.fixture(scope="module")
def nights() -> list[Night]:
    rates = (12.5, 26.0, 52.0, 104.0, 208.0, 52.0)
    return [generate_night(300 + i, hours=0.75, rate_hz=r) for i, r in enumerate(rates)]


@pytest.fixture(scope="module")
def busy() -> Night:
    """A night with one of everything asked for."""
    return generate_night(
        11,
        hours=1.5,
        rate_hz=52.0,
        cramps=2,
        toilet_trips=1,
        plm=True,
        partner=True,
        gap_s=30.0,
        strap_slip=True,
        hypnic_jerks=2,
        awake_start_min=20.0,
        awake_end_min=10.0,
    )


def _rest(n: Night, margin: float = 5.0) -> np.ndarray:
    busy = np.zeros(len(n.t), dtype=bool)
    for e in [*n.events, *n.confounders]:
        busy |= (n.t > e.start - margin) & (n.t < e.end + margin + (300.0 if e.kind == "partner" else 0.0))
    return ~busy


def test_same_seed_same_night_other_seed_other_night() -> None:
    assert_seeded(generate_night)


def test_a_sensor_knob_leaves_the_events_alone() -> None:
    a = generate_night(5, hours=0.5, rate_hz=52.0, range_g=8.0)
    b = generate_night(5, hours=0.5, rate_hz=52.0, range_g=2.0)
    assert a.events == b.events and a.sleep_start == b.sleep_start
    assert {k: v for k, v in a.params.items() if k not in ("range_g", "lsb_g", "event_details")} == {
        k: v for k, v in b.params.items() if k not in ("range_g", "lsb_g", "event_details")
    }


def test_bad_knobs_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown knob"):
        generate_night(1, hours=0.1, cramp=1)
    with pytest.raises(ValueError, match="rotation"):
        generate_night(1, hours=0.1, mounting=np.diag([1.0, 1.0, -1.0]))


@pytest.mark.parametrize("i", range(6))
def test_timestamps_increase_at_the_asked_rate(nights: list[Night], i: int) -> None:
    n = nights[i]
    dt = np.diff(n.t)
    assert n.t.dtype == np.float64 and n.xyz.shape == (len(n.t), 3)
    assert np.all(dt > 0)
    assert np.median(dt) == pytest.approx(1.0 / n.rate_hz, rel=0.01)  # jitter moves single intervals
    regular = dt[dt < 2.5 / n.rate_hz]  # all but a data gap (jitter moves a stamp by at most 0.4 interval)
    # the clock runs at most 80 ppm off and wanders by at most 0.3 s over 1.5-4 h: under 0.05 % in all
    assert np.mean(regular) == pytest.approx(1.0 / n.rate_hz, rel=5e-4)
    assert n.params["rate_hz"] == n.rate_hz and n.t[0] > 1.7e9
    missing = n.params["gap_s"] if any(c.kind == "gap" for c in n.confounders) else 0.0
    assert len(n.t) == pytest.approx((2700.0 - missing) * n.rate_hz, rel=2e-3)


def test_clock_drift_and_jitter_are_those_asked() -> None:
    a = generate_night(8, hours=1.0, rate_hz=26.0, drift_ppm=80.0, wander_s=0.0, jitter=0.0, gap_s=0.0)
    b = generate_night(8, hours=1.0, rate_hz=26.0, drift_ppm=0.0, wander_s=0.0, jitter=0.2, gap_s=0.0)
    assert a.t[-1] - a.t[0] == pytest.approx((len(a.t) - 1) / 26.0 * (1 + 80e-6), abs=1e-6)
    assert np.std(np.diff(b.t)) * 26.0 == pytest.approx(0.2 * np.sqrt(2), rel=0.1)
    # the labels are on the same clock as the samples: the last event moves with the drift
    assert a.events[-1].start - a.t[0] == pytest.approx((b.events[-1].start - b.t[0]) * (1 + 80e-6), abs=0.05)
    assert a.events[-1].start - b.events[-1].start > 0.5 * 80e-6 * (b.events[-1].start - b.t[0])


@pytest.mark.parametrize("i", range(6))
def test_gravity_is_one_g_at_rest(nights: list[Night], i: int) -> None:
    n = nights[i]
    g = np.linalg.norm(n.xyz[_rest(n)], axis=1)
    assert len(g) > 0.2 * len(n.t)
    assert np.median(g) == pytest.approx(1.0, abs=0.02)
    assert np.mean(np.abs(g - 1.0) < 0.05) > 0.95


def test_range_clipping_and_quantisation() -> None:
    knobs = dict(hours=0.75, rate_hz=104.0, toilet_trips=2, hypnic_jerks=2, awake_start_min=3.0)
    lsb = 4.0 / 2**12
    clipped = 0
    for seed in range(21, 26):  # walking and hypnic jerks go past 2 g on most such nights
        wide = generate_night(seed, range_g=8.0, bits=16, **knobs)
        narrow = generate_night(seed, range_g=2.0, bits=12, **knobs)
        assert narrow.params["lsb_g"] == lsb
        assert np.all(narrow.xyz >= -2.0) and np.all(narrow.xyz <= 2.0 - lsb)
        steps = narrow.xyz / lsb
        assert np.allclose(steps, np.round(steps), atol=1e-6)
        over = np.abs(wide.xyz) > 2.05
        assert np.all(np.abs(narrow.xyz[over]) >= 2.0 - lsb - 1e-9)
        clipped += int(over.sum())
        if clipped:
            break
    assert clipped > 0


def test_events_lie_in_the_recording_and_do_not_overlap(nights: list[Night], busy: Night) -> None:
    for n in [*nights, busy]:
        ev = n.events
        assert ev == sorted(ev, key=lambda e: e.start)
        assert all(n.t[0] <= e.start < e.end <= n.t[-1] for e in ev)
        assert all(a.end < b.start for a, b in itertools.pairwise(ev))
        for e in ev:
            d = e.end - e.start
            assert e.kind in KINDS
            assert {"twitch": d < 0.5, "leg_movement": 0.5 <= d <= 10.0, "contraction": d > 10.0}.get(e.kind, True)
            if e.kind == "out_of_bed":
                assert d > 20.0
        gaps = [c for c in n.confounders if c.kind == "gap"]
        assert not any(g.start < e.end and e.start < g.end for g in gaps for e in ev)
        assert len(n.params["event_details"]) == len(ev)
        assert [d["kind"] for d in n.params["event_details"]] == [e.kind for e in ev]
        assert all(isinstance(d["resolvable"], bool) for d in n.params["event_details"])


def test_periodic_flags_follow_the_wasm_rule(nights: list[Night], busy: Night) -> None:
    for n in [*nights, busy]:
        flags = [e.periodic for e in n.events]
        assert flags == periodic_series_flags(n.events) == periodic_flags(n.events)
    assert sum(e.periodic for e in busy.events) >= 4


def test_the_sleep_window(nights: list[Night], busy: Night) -> None:
    for n in [*nights, busy]:
        assert n.t[0] < n.sleep_start < n.sleep_end <= n.t[-1] + 1.0
    assert busy.sleep_start - busy.t[0] == pytest.approx(20 * 60.0, abs=1.0)
    assert busy.t[-1] - busy.sleep_end == pytest.approx(10 * 60.0, abs=1.0)


def test_a_gap_is_a_gap(busy: Night) -> None:
    (g,) = [c for c in busy.confounders if c.kind == "gap"]
    jump = np.max(np.diff(busy.t))
    assert jump == pytest.approx(30.0, abs=0.1)
    i = int(np.argmax(np.diff(busy.t)))
    assert busy.t[i] < g.start < g.end < busy.t[i + 1]


def test_every_kind_appears_over_a_few_nights(nights: list[Night], busy: Night) -> None:
    seen = {e.kind for n in [*nights, busy] for e in n.events}
    assert seen == set(KINDS)
    assert {"partner", "gap", "strap_slip"} <= {c.kind for c in busy.confounders}
    contexts = {d.get("context") for d in busy.params["event_details"]}
    assert {"plms", "hypnic", "toilet"} <= contexts


def test_a_rotated_sensor_keeps_the_events() -> None:
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([1.0, -1.0, -1.0])
    a = generate_night(9, hours=0.5, rate_hz=52.0, mounting="upright", range_g=8.0)
    b = generate_night(9, hours=0.5, rate_hz=52.0, mounting=turn, range_g=8.0)
    assert a.events == b.events
    assert not np.allclose(a.xyz, b.xyz, atol=0.1)
    na, nb = np.linalg.norm(a.xyz, axis=1), np.linalg.norm(b.xyz, axis=1)
    assert np.median(np.abs(na - nb)) < 0.01  # the same movement, seen along other axes
    # at rest, the sensor's axes are the shin's turned by the mounting
    rest = _rest(a)
    assert np.median(np.abs(a.xyz[rest] @ turn - b.xyz[rest])) < 0.02


def test_events_are_in_the_signal(busy: Night) -> None:
    """Each resolvable event changes the signal more than the noise does in the seconds before it."""
    for e, d in zip(busy.events, busy.params["event_details"], strict=True):
        if not d["resolvable"]:
            continue
        inside = (busy.t >= e.start) & (busy.t <= e.end + 0.2)
        before = (busy.t >= e.start - 1.0) & (busy.t < e.start - 0.05)
        if not before.any():
            continue
        change = np.max(np.linalg.norm(busy.xyz[inside] - busy.xyz[before].mean(axis=0), axis=1))
        assert change > 3 * busy.params["noise_mg"] * 1e-3, (e, d)


def test_the_night_is_of_the_asked_length() -> None:
    n = generate_night(1, hours=1.25, rate_hz=12.5, gap_s=0.0)
    assert n.t[-1] - n.t[0] == pytest.approx(4500.0, abs=1.0)


def test_a_cramp_is_held_with_movements_one_after_another(busy: Night) -> None:
    cramps = [d for d in busy.params["event_details"] if d["kind"] == "contraction"]
    assert len(cramps) == 2
    for d in cramps:
        efforts = sorted(d["efforts"])
        assert all(a[0] + a[1] < b[0] for a, b in itertools.pairwise(efforts))
        assert 6.0 <= abs(d["hold_pitch_deg"]) <= 50.0


def test_lying_in_bed_the_shin_is_never_near_vertical() -> None:
    from fieldnights.body import IN_BED_MAX_PITCH_DEG, in_bed_pitch

    pitch = np.linspace(-30.0, 150.0, 1000)
    lying = in_bed_pitch(pitch, np.ones(1000, dtype=bool))
    assert lying.max() < IN_BED_MAX_PITCH_DEG and np.all(np.diff(lying) > 0)
    assert np.array_equal(lying[pitch <= 60.0], pitch[pitch <= 60.0])
    assert np.array_equal(in_bed_pitch(pitch, np.zeros(1000, dtype=bool)), pitch)  # sitting and standing


def test_the_shin_turns_the_short_way_round(busy: Night) -> None:
    """A roll-over turns the shin at most half a turn, and nothing turns it while nothing happens."""
    for d in busy.params["event_details"]:
        if d["kind"] == "posture_change":
            assert 0.0 < abs(d["to"][0] - d["from"][0]) <= 180.0 + 1e-9 or d["context"] == "legs_down"
        if d["kind"] in ("posture_change", "out_of_bed"):
            assert abs(d["to"][0] - d["from"][0]) <= 360.0
    # between events the shin's orientation holds still: gravity's direction changes little in a minute
    rest = _rest(busy, margin=2.0)
    x = busy.xyz / np.linalg.norm(busy.xyz, axis=1)[:, None]
    step = int(60 * busy.rate_hz)
    moving = np.concatenate([[0], np.cumsum(~rest)])
    both = (moving[step + 1 :] - moving[: -step - 1]) == 0  # at rest all the minute from i to i + step
    both &= (busy.t[step:] - busy.t[:-step]) < 61.0  # and no data gap in it
    turn = np.degrees(np.arccos(np.clip(np.sum(x[:-step] * x[step:], axis=1), -1, 1)))[both]
    assert np.quantile(turn, 0.99) < 3.0
