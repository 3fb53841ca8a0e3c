"""The independent night generator (simnights): determinism, labels, durations, rates, gravity, range, shapes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.events import KINDS_COUNTED
from detector.synthetic import Night
from helpers import assert_seeded
from simnights import generate_night

KINDS = (*KINDS_COUNTED, "posture_change", "out_of_bed")


@pytest.fixture(scope="module")
def night() -> Night:
    return generate_night(7, hours=1.0, rate_hz=52.0, partner=True, gaps=2, cramps=2, out_of_bed=1)


@pytest.fixture(scope="module")
def nights() -> list[Night]:
    rates = (12.5, 26.0, 52.0, 104.0, 208.0)
    return [generate_night(100 + i, hours=0.75, rate_hz=r) for i, r in enumerate(rates)]


def _rest(n: Night, margin: float = 5.0) -> np.ndarray:
    busy = np.zeros(len(n.t), dtype=bool)
    for e in [*n.events, *n.confounders]:
        busy |= (n.t > e.start - margin) & (n.t < e.end + margin)
    return ~busy


def test_same_seed_same_night_other_seed_other_night() -> None:
    assert_seeded(generate_night)


def test_one_knob_changes_only_itself() -> None:
    a = generate_night(5, hours=0.5, rate_hz=52.0, range_g=8.0)
    b = generate_night(5, hours=0.5, rate_hz=52.0, range_g=2.0)
    assert a.events == b.events
    assert {k: v for k, v in a.params.items() if k != "sensor_range_g"} == {
        k: v for k, v in b.params.items() if k != "sensor_range_g"
    }


def test_shapes_and_types(night: Night) -> None:
    assert night.t.dtype == np.float64 and night.xyz.shape == (len(night.t), 3)
    assert np.all(np.diff(night.t) > 0)
    assert night.t[0] > 1.7e9  # Unix seconds
    assert night.seed == 7 and night.rate_hz == 52.0
    assert {e.kind for e in night.events} <= set(KINDS)
    assert {c.kind for c in night.confounders} <= {"partner", "gap", "strap_slip", "sitting_up"}
    for knob in ("sleep_latency_s", "cramps", "mount", "partner", "gaps", "sensor_noise_mg", "sensor_range_g"):
        assert knob in night.params


def test_labels_lie_inside_the_recording_and_do_not_overlap(nights: list[Night]) -> None:
    for n in nights:
        assert n.t[0] < n.sleep_start < n.sleep_end < n.t[-1]
        ev = sorted(n.events, key=lambda e: e.start)
        assert all(n.t[0] <= e.start < e.end <= n.t[-1] for e in ev)
        assert all(a.end < b.start for a, b in itertools.pairwise(ev))


def test_durations_follow_the_definitions(nights: list[Night]) -> None:
    limits = {
        "twitch": (0.0, 0.5),
        "leg_movement": (0.5, 10.0),
        "contraction": (10.0, 600.0),
        "posture_change": (1.0, 6.0),
        "out_of_bed": (60.0, 1200.0),
    }
    seen = set()
    for n in nights:
        for e in n.events:
            lo, hi = limits[e.kind]
            assert lo < e.duration_s < hi, e
            seen.add(e.kind)
    assert seen == set(KINDS)


def test_no_event_inside_a_gap(night: Night) -> None:
    gaps = [c for c in night.confounders if c.kind == "gap"]
    assert gaps, "the fixture asks for gaps"
    for g in gaps:
        inside = (night.t > g.start + 0.1) & (night.t < g.end - 0.1)
        assert not inside.any()  # the samples are really missing
        assert not any(e.start < g.end and g.start < e.end for e in night.events)


def _wasm_flags(events, lo: float, breakers=("contraction", "posture_change", "out_of_bed")) -> list[bool]:
    """Periodic flags recomputed here: >= 4 consecutive LMs, onset intervals in [lo, 90] s, broken by any
    event of a kind in ``breakers``."""
    ev = sorted(events, key=lambda e: e.start)
    flags = {id(e): False for e in ev}
    run: list = []
    for e in [*ev, None]:
        breaks = e is None or e.kind in breakers
        if e is not None and e.kind == "leg_movement":
            if run and lo <= e.start - run[-1].start <= 90.0:
                run.append(e)
                continue
            breaks = True
        if breaks:
            if len(run) >= 4:
                for r in run:
                    flags[id(r)] = True
            run = [e] if e is not None and e.kind == "leg_movement" else []
    return [flags[id(e)] for e in ev if e.kind == "leg_movement"]


def test_periodic_flags_follow_the_wasm_rule_under_any_reading_of_it(nights: list[Night]) -> None:
    total = 0
    for n in nights:
        lms = sorted((e for e in n.events if e.kind == "leg_movement"), key=lambda e: e.start)
        mine = [e.periodic for e in lms]
        assert mine == _wasm_flags(n.events, 10.0) == _wasm_flags(n.events, 5.0)
        assert mine == _wasm_flags(n.events, 10.0, breakers=())  # whether other movements end a series or not
        total += sum(mine)
        assert not any(e.periodic for e in n.events if e.kind != "leg_movement")
    assert total >= 8


@pytest.mark.parametrize("rate", [12.5, 25.0, 52.0, 100.0, 208.0])
def test_the_sample_rate_is_honoured(rate: float) -> None:
    n = generate_night(21, hours=0.25, rate_hz=rate, gaps=0)
    measured = (len(n.t) - 1) / (n.t[-1] - n.t[0])
    assert measured == pytest.approx(rate, rel=0.02)  # the oscillator is off by up to 1.5 %
    assert n.rate_hz == rate
    assert float(np.median(np.diff(n.t))) == pytest.approx(1 / rate, rel=0.05)


def test_rates_outside_the_range_and_unknown_knobs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"12\.5-208"):
        generate_night(1, hours=0.1, rate_hz=10.0)
    with pytest.raises(ValueError, match=r"12\.5-208"):
        generate_night(1, hours=0.1, rate_hz=400.0)
    with pytest.raises(TypeError, match="unknown knob"):
        generate_night(1, hours=0.1, cramp=1)
    with pytest.raises(ValueError, match="mount"):
        generate_night(1, hours=0.1, mount="sideways")
    with pytest.raises(ValueError, match="lying_weights"):
        generate_night(1, hours=0.1, lying_weights=(1.0, 0.0))


def test_gravity_is_about_one_g_at_rest(nights: list[Night]) -> None:
    for n in nights:
        rest = _rest(n)
        assert rest.mean() > 0.3
        mag = np.linalg.norm(n.xyz[rest], axis=1)
        assert abs(float(np.median(mag)) - 1.0) < 0.08  # offsets of up to 40 mg per axis, gains of 2 %
        assert float(np.std(n.xyz[rest][:200], axis=0).max()) < 0.012  # noise 1-6 mg, quantisation


def test_noise_level_is_the_one_asked_for() -> None:
    for mg in (1.0, 6.0):
        n = generate_night(8, hours=0.3, rate_hz=52.0, noise_mg=mg, bits=16, partner=False)
        rest = _rest(n)
        both = rest[1:] & rest[:-1]  # consecutive samples, both at rest
        d = np.diff(n.xyz, axis=0)[both]
        measured = np.std(d, axis=0).mean() / np.sqrt(2) * 1000.0
        assert measured == pytest.approx(mg, rel=0.25)


def test_values_clip_at_the_range_and_sit_on_the_quantisation_grid() -> None:
    n2 = generate_night(9, hours=0.5, rate_hz=208.0, range_g=2.0, bits=12, out_of_bed=2, filter="none")
    lsb = 4.0 / 2**12
    assert np.abs(n2.xyz).max() <= 2.0
    assert np.isclose(n2.xyz.max(), 2.0 - lsb) or np.isclose(n2.xyz.min(), -2.0)  # heel strikes clip
    assert np.allclose(n2.xyz / lsb, np.round(n2.xyz / lsb))
    n8 = generate_night(9, hours=0.5, rate_hz=208.0, range_g=8.0, bits=16, out_of_bed=2, filter="none")
    assert np.abs(n8.xyz).max() <= 8.0
    assert np.abs(n8.xyz).max() > 2.0  # the same strikes, unclipped


@pytest.mark.parametrize("mount", ["aligned", "rotated", "upside_down", "arbitrary"])
def test_any_mounting_reads_the_same_magnitude(mount: str) -> None:
    kw = {"hours": 0.5, "rate_hz": 52.0, "out_of_bed": 1, "cramps": 0}
    ref = generate_night(12, mount="aligned", **kw)
    n = generate_night(12, mount=mount, **kw)
    assert n.events == ref.events
    rest = _rest(n)
    assert abs(np.median(np.linalg.norm(n.xyz[rest], axis=1)) - 1.0) < 0.08
    # upright out of bed the shin points up: the sensor's y reads +1 g strapped the right way up
    trip = next(e for e in n.events if e.kind == "out_of_bed")
    mid = (n.t > trip.start + 0.4 * trip.duration_s) & (n.t < trip.start + 0.6 * trip.duration_s)
    y_ref, y = float(np.median(ref.xyz[mid, 1])), float(np.median(n.xyz[mid, 1]))
    assert y_ref > 0.6
    if mount in ("aligned", "rotated"):
        assert y > 0.6
    elif mount == "upside_down":
        assert y < -0.6
    if mount != "aligned":
        assert not np.allclose(np.median(n.xyz[rest], axis=0), np.median(ref.xyz[rest], axis=0), atol=0.05)


def _angle(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1))))


def test_cramps_with_and_without_a_tremor() -> None:
    kw = {"hours": 0.75, "rate_hz": 104.0, "cramps": 2, "noise_mg": 2.0, "bits": 16, "out_of_bed": 0}
    with_t = generate_night(31, cramp_tremor=True, **kw)
    without = generate_night(31, cramp_tremor=False, **kw)
    assert with_t.events == without.events and np.array_equal(with_t.t, without.t)
    cramps = [e for e in without.events if e.kind == "contraction"]
    hz = [d["tremor_hz"] for d in with_t.params["event_details"] if d["kind"] == "contraction"]
    assert len(cramps) == len(hz) >= 1
    assert all(d["tremor_hz"] is None for d in without.params["event_details"] if d["kind"] == "contraction")
    # the tremor is the only difference: inside each cramp, at its frequency; nothing elsewhere
    diff = with_t.xyz - without.xyz
    quiet = np.ones(len(diff), dtype=bool)
    for e, f0 in zip(cramps, hz, strict=True):
        assert 20.0 <= e.duration_s <= 180.0 and 7.0 <= f0 <= 18.0
        m = (with_t.t > e.start) & (with_t.t < e.end)
        quiet &= ~((with_t.t > e.start - 2) & (with_t.t < e.end + 2))
        spec = np.abs(np.fft.rfft(diff[m], axis=0)).sum(axis=1)
        f = np.fft.rfftfreq(int(m.sum()), 1 / with_t.rate_hz)
        assert abs(f[np.argmax(spec)] - f0) < 1.0
        assert 0.003 < float(np.sqrt((diff[m] ** 2).sum(axis=1).mean())) < 0.05
    assert np.abs(diff[quiet]).max() < 1e-3
    for b in cramps:  # a held change of orientation inside, back close to where it was after
        before = np.median(without.xyz[(without.t > b.start - 3) & (without.t < b.start - 0.5)], axis=0)
        held = np.median(without.xyz[(without.t > b.start + 5) & (without.t < b.end - 5)], axis=0)
        after = np.median(without.xyz[(without.t > b.end + 0.5) & (without.t < b.end + 2.5)], axis=0)
        assert _angle(before, held) > 5.0 and _angle(before, after) < _angle(before, held)


def test_getting_up_walks_with_a_gait_cadence() -> None:
    n = generate_night(41, hours=0.75, rate_hz=52.0, out_of_bed=1, cramps=0)
    trips = [e for e in n.events if e.kind == "out_of_bed"]
    assert trips
    details = [d for d in n.params["event_details"] if d["kind"] == "out_of_bed"]
    for e, d in zip(trips, details, strict=True):
        assert 60.0 <= d["walk_s"] <= 200.0 and 1.6 <= d["cadence"] <= 2.0
        m = (n.t > e.start) & (n.t < e.end)
        mag = np.linalg.norm(n.xyz[m], axis=1)
        mag -= mag.mean()
        f = np.fft.rfftfreq(len(mag), 1 / n.rate_hz)
        spec = np.abs(np.fft.rfft(mag))
        peak = f[np.argmax(spec * (f > 0.5))]
        stride = d["cadence"] / 2
        assert min(abs(peak - stride), abs(peak - 2 * stride)) < 0.15  # stride or step frequency


def test_a_strap_slip_turns_the_reading_but_not_its_magnitude() -> None:
    n = generate_night(3, hours=1.5, rate_hz=52.0, strap_slips=2, sitting_up=0)
    slips = [c for c in n.confounders if c.kind == "strap_slip"]
    asleep = [e for e in n.events if e.kind == "posture_change" and n.sleep_start < e.start < n.sleep_end]
    assert len(slips) == min(2, len(asleep)) >= 1
    turns = {(e.start, e.end) for e in n.events if e.kind == "posture_change"}
    for c in slips:
        assert (c.start, c.end) in turns  # it happens while the leg turns over
        after = n.xyz[(n.t > c.end + 2) & (n.t < c.end + 5)]
        assert abs(np.linalg.norm(np.median(after, axis=0)) - 1.0) < 0.08


def test_a_still_leg_shows_the_heartbeat_and_breathing_below_the_noise() -> None:
    quiet = generate_night(13, hours=0.3, rate_hz=52.0, noise_mg=1.0, bits=16, heart_mg=0.0, breath_mg=0.0)
    body = generate_night(13, hours=0.3, rate_hz=52.0, noise_mg=1.0, bits=16, heart_mg=1.5, breath_mg=0.8)
    rest = _rest(body)
    d = (body.xyz - quiet.xyz)[rest]
    rms = float(np.sqrt((d**2).sum(axis=1).mean())) * 1000.0
    assert 0.3 < rms < 2.5


def test_the_accuracy_benchmarks_confounder_knobs_are_understood() -> None:
    n = generate_night(2, hours=0.5, rate_hz=26.0, partner=True, gaps=2, late_bursts=6, cramps=3, clock="host")
    assert n.params["sensor_late_bursts"] == 6 and n.params["gaps"] == 2 and n.params["partner"] is True
    assert sum(c.kind == "gap" for c in n.confounders) == 2
    assert sum(e.kind == "contraction" for e in n.events) >= 2  # as many as fit in half an hour
    steps = np.diff(n.t)
    assert np.all(steps > 0) and steps.min() < 0.1 / 26.0  # held-back packets arrive in a burst


def test_a_nights_cramps_alternate_with_and_without_a_tremor_by_default() -> None:
    n = generate_night(17, hours=1.5, rate_hz=26.0, cramps=2, out_of_bed=0)
    forced = generate_night(17, hours=1.5, rate_hz=26.0, cramps=2, out_of_bed=0, cramp_tremor=True)
    assert n.events == forced.events  # the choice changes nothing else
    tremors = [d["tremor"] for d in n.params["event_details"] if d["kind"] == "contraction"]
    assert sorted(tremors) == [False, True]
    assert all(d["tremor"] for d in forced.params["event_details"] if d["kind"] == "contraction")


def test_sitting_up_in_bed_is_two_posture_changes_and_not_out_of_bed() -> None:
    n = generate_night(5, hours=1.0, rate_hz=52.0, sitting_up=1)
    (stay,) = [c for c in n.confounders if c.kind == "sitting_up"]
    assert 30.0 <= stay.duration_s <= 240.0
    near = [e for e in n.events if e.end > stay.start - 3 and e.start < stay.end + 3]
    assert [e.kind for e in near] == ["posture_change", "posture_change"]
    before = n.xyz[(n.t > near[0].start - 8) & (n.t < near[0].start - 1)].mean(axis=0)
    during = n.xyz[(n.t > stay.start + 2) & (n.t < stay.end - 2)].mean(axis=0)
    assert np.degrees(np.arccos(np.dot(before, during) / np.linalg.norm(before) / np.linalg.norm(during))) > 10


@pytest.mark.parametrize("clock", ["host", "sensor"])
def test_labels_sit_on_the_recordings_clock_despite_oscillator_drift(clock: str) -> None:
    # 1.5 % fast: 54 s over the hour in the sensor's own timestamps
    n = generate_night(19, hours=1.0, rate_hz=52.0, clock=clock, osc_error=0.015, strong_twitch_frac=1.0)
    strong = [e for e, d in zip(n.events, n.params["event_details"], strict=True) if d.get("strong")]
    assert len(strong) >= 5
    for e in strong:
        w = (n.t > e.start - 2.0) & (n.t < e.end + 2.0)
        rest = np.median(n.xyz[(n.t > e.start - 2.0) & (n.t < e.start - 0.3)], axis=0)
        peak = n.t[w][np.argmax(np.linalg.norm(n.xyz[w] - rest, axis=1))]
        assert e.start - 0.1 <= peak <= e.end + 0.15


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    hours=st.floats(0.05, 0.4),
    rate=st.floats(12.5, 208.0),
    range_g=st.sampled_from([2.0, 4.0, 8.0, 16.0]),
)
def test_any_seed_length_rate_and_range_give_a_well_formed_night(
    seed: int, hours: float, rate: float, range_g: float
) -> None:
    n = generate_night(seed, hours=hours, rate_hz=rate, range_g=range_g, partner=True, gaps=2, cramps=2)
    assert np.all(np.diff(n.t) > 0) and np.isfinite(n.xyz).all() and np.abs(n.xyz).max() <= range_g
    assert n.t[0] < n.sleep_start < n.sleep_end < n.t[-1]
    ev = sorted(n.events, key=lambda e: e.start)
    assert all(n.t[0] <= e.start < e.end <= n.t[-1] for e in ev)
    assert all(a.end < b.start for a, b in itertools.pairwise(ev))
