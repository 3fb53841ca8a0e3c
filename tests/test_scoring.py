"""Event-level scorer: hand-made cases with known tp/fp/fn, matching rules, periodic series, PLM index."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.events import Episode
from detector.scoring import (
    KindScore,
    Scores,
    format_table,
    match_events,
    periodic_series_flags,
    plm_index,
    score,
    score_periodic,
)
from detector.synthetic import TruthEvent


def T(start: float, dur: float, kind: str = "twitch", periodic: bool = False) -> TruthEvent:
    return TruthEvent(start, start + dur, kind, periodic)


def D(start: float, dur: float, kind: str = "twitch", periodic: bool = False) -> Episode:
    return Episode(start, start + dur, kind, peak_g=0.1, periodic=periodic)


def counts(s: KindScore) -> tuple[int, int, int]:
    return (s.tp, s.fp, s.fn)


def test_perfect_detection() -> None:
    truth = [T(10, 0.2), T(50, 2.0, "leg_movement"), T(100, 40.0, "contraction")]
    det = [D(e.start, e.end - e.start, e.kind) for e in truth]
    s = score(det, truth)
    for k in ("twitch", "leg_movement", "contraction"):
        assert counts(s[k]) == (1, 0, 0)
        assert s[k].f1 == 1.0
    assert counts(s["any"]) == (3, 0, 0)
    assert s.mean_f1 == 1.0
    assert s.onset_errors["any"] == [0.0, 0.0, 0.0]


def test_known_tp_fp_fn() -> None:
    truth = [T(10, 2, "leg_movement"), T(40, 2, "leg_movement"), T(70, 2, "leg_movement")]
    det = [D(10.4, 2, "leg_movement"), D(70.9, 1.5, "leg_movement"), D(200, 1, "leg_movement")]
    s = score(det, truth)["leg_movement"]
    assert counts(s) == (2, 1, 1)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("offset", "matched"),
    [(0.0, True), (0.999, True), (1.0, True), (-1.0, True), (1.001, False), (-1.05, False), (3.0, False)],
)
def test_onset_tolerance_edges(offset: float, matched: bool) -> None:
    # Twitches of 0.1 s never overlap when more than 0.1 s apart, so only the onset rule decides.
    s = score([D(100.0 + offset, 0.1)], [T(100.0, 0.1)], onset_tolerance_s=1.0)
    assert counts(s["twitch"]) == ((1, 0, 0) if matched else (0, 1, 1))


def test_tolerance_is_a_parameter() -> None:
    assert score([D(102.0, 0.1)], [T(100.0, 0.1)], onset_tolerance_s=2.5)["twitch"].tp == 1
    assert score([D(100.3, 0.1)], [T(100.0, 0.1)], onset_tolerance_s=0.25)["twitch"].tp == 0


def test_overlap_rule_for_long_events() -> None:
    truth = [T(1000.0, 60.0, "contraction")]
    # 5 s late onset, IoU = 55/62 = 0.89: matched by overlap.
    assert counts(score([D(1005.0, 57.0, "contraction")], truth)["contraction"]) == (1, 0, 0)
    # Onset 20 s late and only a third of it: IoU = 20/60 < 0.5: not matched.
    assert counts(score([D(1040.0, 20.0, "contraction")], truth)["contraction"]) == (0, 1, 1)
    # The threshold is a parameter.
    assert score([D(1040.0, 20.0, "contraction")], truth, min_overlap=0.3)["contraction"].tp == 1
    # IoU exactly 0.5 counts.
    assert score([D(1030.0, 30.0, "contraction")], truth)["contraction"].tp == 1


def test_one_to_one_two_detections_one_truth() -> None:
    s = score([D(100.0, 0.2), D(100.3, 0.2)], [T(100.1, 0.2)])
    assert counts(s["twitch"]) == (1, 1, 0)
    assert s.onset_errors["twitch"] == [pytest.approx(-0.1)]  # the closer one is kept


def test_one_to_one_one_detection_two_truths() -> None:
    s = score([D(100.0, 0.2)], [T(99.7, 0.2), T(100.5, 0.2)])
    assert counts(s["twitch"]) == (1, 0, 1)


def test_matching_is_optimal_not_greedy() -> None:
    # Greedy by distance would take X-A (0.7) first and then match nothing else; optimal gets 2 pairs.
    truth = [T(0.0, 0.1), T(1.5, 0.1)]  # A, B
    det = [D(0.7, 0.1), D(-0.95, 0.1)]  # X (fits A and B), Y (fits only A)
    s = score(det, truth)
    assert counts(s["twitch"]) == (2, 0, 0)
    assert sorted(match_events(det, truth)) == [(0, 1), (1, 0)]


def test_kinds_scored_separately_and_pooled_in_any() -> None:
    truth = [T(100.0, 2.0, "leg_movement")]
    det = [D(100.2, 0.3, "twitch")]
    s = score(det, truth)
    assert counts(s["twitch"]) == (0, 1, 0)
    assert counts(s["leg_movement"]) == (0, 0, 1)
    assert counts(s["any"]) == (1, 0, 0)


def test_non_counted_kinds_are_ignored() -> None:
    truth = [T(10, 3, "posture_change"), T(100, 300, "out_of_bed"), T(500, 2, "leg_movement")]
    det = [D(10, 3, "posture_change"), D(200, 60, "out_of_bed"), D(700, 4, "posture_change")]
    det += [D(500.1, 2, "leg_movement")]
    s = score(det, truth)
    assert counts(s["any"]) == (1, 0, 0)
    assert counts(s["leg_movement"]) == (1, 0, 0)
    # A detected posture change where a twitch was is a miss of the twitch, not a match.
    s2 = score([D(50, 2, "posture_change")], [T(50, 0.2)])
    assert counts(s2["any"]) == (0, 0, 1)


def test_empty_conventions() -> None:
    s = score([], [])
    for k in ("twitch", "leg_movement", "contraction", "any"):
        assert (s[k].precision, s[k].recall, s[k].f1) == (1.0, 1.0, 1.0)
    s = score([], [T(1, 0.2)])
    assert (s["twitch"].precision, s["twitch"].recall, s["twitch"].f1) == (1.0, 0.0, 0.0)
    s = score([D(1, 0.2)], [])
    assert (s["twitch"].precision, s["twitch"].recall, s["twitch"].f1) == (0.0, 1.0, 0.0)


def test_window_and_dict_input() -> None:
    truth = [T(10, 0.2), T(100, 0.2)]
    det = [{"start": 10.1, "end": 10.3, "kind": "twitch"}, {"start": 300.0, "end": 300.2, "kind": "twitch"}]
    assert counts(score(det, truth)["twitch"]) == (1, 1, 1)
    assert counts(score(det, truth, window=(0.0, 50.0))["twitch"]) == (1, 0, 0)


def test_scores_add_up_over_nights() -> None:
    a = score([D(10, 0.2)], [T(10, 0.2)])
    b = score([D(50, 0.2)], [T(10, 0.2)])
    total = sum([a, b], Scores())
    assert counts(total["twitch"]) == (1, 1, 1)
    assert sum([a, b]) is not None and counts(sum([a, b])["twitch"]) == (1, 1, 1)
    assert len(total.onset_errors["twitch"]) == 1


def test_format_table() -> None:
    text = format_table(score([D(10, 0.2)], [T(10.2, 0.2), T(40, 2, "leg_movement")]), title="night 1")
    lines = text.splitlines()
    assert lines[0] == "night 1"
    assert any(line.startswith("twitch") and " 1.000" in line for line in lines)
    assert any(line.startswith("leg_movement") for line in lines)
    assert any(line.startswith("any") for line in lines)
    assert "mean F1" in lines[-1]


# ---- periodic series (WASM) and PLM index


def lms(onsets: list[float], dur: float = 2.0) -> list[TruthEvent]:
    return [T(o, dur, "leg_movement") for o in onsets]


def test_series_of_four_is_periodic_three_is_not() -> None:
    assert periodic_series_flags(lms([0, 20, 40, 60])) == [True] * 4
    assert periodic_series_flags(lms([0, 20, 40])) == [False] * 3


def test_interval_limits() -> None:
    assert periodic_series_flags(lms([0, 10, 20, 30])) == [True] * 4  # 10 s is allowed
    assert periodic_series_flags(lms([0, 90, 180, 270])) == [True] * 4  # 90 s is allowed
    assert periodic_series_flags(lms([0, 20, 29, 49, 69])) == [False] * 5  # 9 s breaks it
    assert periodic_series_flags(lms([0, 20, 40, 131, 151])) == [False] * 5  # 91 s breaks it
    flags = periodic_series_flags(lms([0, 20, 40, 60, 65, 85, 105, 125]))
    assert flags == [True] * 4 + [True] * 4  # 5 s ends the first run; the next run starts anew


def test_series_breakers_and_ignored_kinds() -> None:
    ev = lms([0, 20, 40]) + [T(50, 0.2, "twitch"), T(52, 0.3, "partner")] + lms([60])
    assert periodic_series_flags(ev)[:3] == [True] * 3 and periodic_series_flags(ev)[-1] is True
    for breaker in ("posture_change", "out_of_bed"):  # WASM: a movement that is not a CLM ends it
        ev = lms([0, 20, 40]) + [T(50, 3, breaker)] + lms([60, 80, 100])
        assert not any(periodic_series_flags(ev))
    ev = lms([0, 20, 40]) + [T(50, 30, "contraction")] + lms([90, 110, 130])
    assert not any(periodic_series_flags(ev))
    ev = lms([0, 20]) + [T(40, 12, "leg_movement")] + lms([60, 80])  # over 10 s: not a candidate
    assert not any(periodic_series_flags(ev))
    ev = lms([0, 20, 40]) + [T(60, 0.3, "leg_movement")] + lms([61])  # < 0.5 s: not a leg movement
    assert periodic_series_flags(ev) == [True, True, True, False, True]


def test_series_flags_follow_input_order() -> None:
    ev = lms([60, 0, 40, 20])
    assert periodic_series_flags(ev) == [True] * 4
    ev = lms([60, 0, 40]) + [T(500, 2, "twitch")] + lms([20])
    assert periodic_series_flags(ev) == [True, True, True, False, True]


def test_plm_index() -> None:
    onsets = [100.0 + 25 * i for i in range(10)]
    ev = [T(o, 2, "leg_movement", periodic=True) for o in onsets] + [T(400, 2, "leg_movement")]
    assert plm_index(ev, 0.0, 7200.0) == pytest.approx(5.0)
    assert plm_index(ev, 150.0, 3750.0) == pytest.approx(8.0)  # 8 onsets in a 1 h window


def test_score_periodic() -> None:
    truth = [T(100.0 + 25 * i, 2, "leg_movement", periodic=True) for i in range(8)]
    truth += [T(1000, 2, "leg_movement")]
    det = [D(e.start + 0.2, 2, "leg_movement", periodic=True) for e in truth[:6]]
    det += [D(truth[6].start, 2, "leg_movement", periodic=False), D(1000, 2, "leg_movement", periodic=True)]
    ps = score_periodic(det, truth, sleep_start=0.0, sleep_end=3600.0)
    assert counts(ps.events) == (6, 1, 2)
    assert ps.index_truth == pytest.approx(8.0)
    assert ps.index_detected == pytest.approx(7.0)
    assert ps.n_matched_lm == 8
    assert ps.flag_agreement == pytest.approx(6 / 8)
    assert set(ps.to_dict()) >= {"plm_index_truth", "plm_index_detected", "periodic_f1"}


# ---- properties


event_lists = st.lists(
    st.tuples(st.floats(0, 500), st.floats(0.05, 30), st.sampled_from(["twitch", "leg_movement", "contraction"])),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(event_lists, event_lists)
def test_counts_are_consistent(tr: list, de: list) -> None:
    truth = [T(a, d, k) for a, d, k in tr]
    det = [D(a, d, k) for a, d, k in de]
    s = score(det, truth)
    for k in ("twitch", "leg_movement", "contraction"):
        assert s[k].tp + s[k].fn == sum(e.kind == k for e in truth)
        assert s[k].tp + s[k].fp == sum(e.kind == k for e in det)
    assert s["any"].n_truth == len(truth) and s["any"].n_detected == len(det)
    assert s["any"].tp >= max(s[k].tp for k in ("twitch", "leg_movement", "contraction"))
    assert score(truth, truth)["any"].f1 == 1.0


def _admissible(d: TruthEvent | Episode, g: TruthEvent, tol: float = 1.0, min_iou: float = 0.5) -> bool:
    inter = max(0.0, min(d.end, g.end) - max(d.start, g.start))
    union = (d.end - d.start) + (g.end - g.start) - inter
    return abs(d.start - g.start) <= tol + 1e-9 or (union > 0 and inter / union >= min_iou - 1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 20), st.floats(0.05, 5)), max_size=5),
    st.lists(st.tuples(st.floats(0, 20), st.floats(0.05, 5)), max_size=5),
)
def test_matching_is_maximal(tr: list, de: list) -> None:
    truth = [T(a, d) for a, d in tr]
    det = [D(a, d) for a, d in de]
    pairs = match_events(det, truth)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
    assert all(_admissible(det[i], truth[j]) for i, j in pairs)
    # Brute force: the largest admissible one-to-one matching.
    best = 0
    if len(det) <= len(truth):
        for perm in itertools.permutations(range(len(truth)), len(det)):
            best = max(best, sum(_admissible(det[i], truth[j]) for i, j in enumerate(perm)))
    else:
        for perm in itertools.permutations(range(len(det)), len(truth)):
            best = max(best, sum(_admissible(det[i], truth[j]) for j, i in enumerate(perm)))
    assert len(pairs) == best


# ---- the slack rule (how the project is judged from outside)


@pytest.mark.parametrize(("gap", "matched"), [(0.0, True), (0.49, True), (0.51, False)])
def test_slack_rule_admits_events_within_half_a_second(gap: float, matched: bool) -> None:
    truth = [T(100.0, 2.0, "leg_movement")]
    after = [D(102.0 + gap, 3.0, "leg_movement")]  # starts `gap` after the truth ends
    before = [D(100.0 - gap - 1.0, 1.0, "leg_movement")]  # ends `gap` before it starts
    for det in (after, before):
        s = score(det, truth, slack_s=0.5)
        assert counts(s["leg_movement"]) == ((1, 0, 0) if matched else (0, 1, 1))


def test_slack_rule_matches_long_events_by_overlap_and_stays_one_to_one() -> None:
    truth = [T(100.0, 60.0, "contraction")]
    det = [D(130.0, 40.0, "contraction"), D(101.0, 5.0, "contraction")]  # an onset 30 s late still overlaps
    assert counts(score(det, truth, slack_s=0.5)["contraction"]) == (1, 1, 0)
    assert counts(score(det[:1], truth)["contraction"]) == (0, 1, 1)  # the default rule wants IoU >= 0.5
