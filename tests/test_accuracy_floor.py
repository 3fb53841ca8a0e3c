"""An accuracy floor: a few fixed short nights of EACH generator (``detector.synthetic``, which the
detector is tuned on, and ``simnights`` and ``fieldnights``, written independently of it and of each
other), at every sample rate from
12.5 to 208 Hz, scored as the project is judged (event by event, +-0.5 s slack, pooled per kind).
A change that loses accuracy fails here; the full figures are ``benchmarks/accuracy.py``'s.

The floors sit a little under what was measured when they were set (``benchmarks/accuracy.py``
prints the same scores on more and longer nights), so they catch a loss, not noise.
"""

from __future__ import annotations

import numpy as np
import pytest

import fieldnights
import simnights
from detector.offline import detect_arrays
from detector.scoring import JUDGED_SLACK_S, Scores, score
from detector.synthetic import generate_night

NIGHTS = [(20260105, 12.5), (20260106, 26.0), (20260107, 52.0), (20260108, 104.0), (20260109, 208.0)]
HOURS = 1.0
#: Pooled judged F1 floors per generator (measured when set: synthetic 0.93 / 0.99 / 1.00 / 0.99,
#: simnights 0.91 / 0.83 / 1.00 / 0.89 for twitch / leg_movement / contraction / any; simnights' leg
#: movement and any-episode floors raised once those rose on held-out seeds too (issue 14, session 5:
#: here 0.91 / 0.94 / 1.00 / 0.94); the twitch floor once the mattress-bounce rule raised held-out twitch
#: F1 too (session 6: here 0.94 / 0.94 / 1.00 / 0.95)); the leg-movement floor once the displacement
#: edges (detector/extent.py) raised held-out leg-movement F1 (session 8: physio held-out 0.925 ->
#: 0.940, seeds +11000 0.942 -> 0.955; here 0.95 / 0.94 / 1.00 / 0.96); twitch, contraction and any
#: once held-out rose with the merged session-8 rules (physio held-out 0.931 / 0.909 / 0.960 -> 0.939 /
#: 1.000 / 0.964; here 0.95 / 0.94 / 1.00 / 0.96).
FLOORS = {
    "synthetic": {"twitch": 0.90, "leg_movement": 0.96, "contraction": 0.90, "any": 0.96},
    "physio": {"twitch": 0.92, "leg_movement": 0.92, "contraction": 0.90, "any": 0.93},
    # fieldnights (session 6; here 0.69 / 0.92 / 1.00 / 0.89): its twitches are small fragmentary
    # myoclonus that the 0.3 s jerk windows dilute (README, "Measured accuracy"); this floor guards
    # what is found, it is not the goal
    "field": {"twitch": 0.62, "leg_movement": 0.88, "contraction": 0.80, "any": 0.85},
}
#: Median |sleep onset error| over each generator's nights, in minutes: a bound on losing the onset
#: (session 8's model of lying awake, asleep and awake again), not the target (5 min on 2-h nights,
#: ``benchmarks/sleep_onset.py``); these 1-h nights leave the model little sleep to learn from.
ONSET_MAX_MIN = 10.0
#: The same night with the sensor strapped upside down scores within this of upright.
ROTATED_MAX_DIFF = 0.02


def _night(generator: str, seed: int, rate: float):
    if generator == "synthetic":
        return generate_night(seed, hours=HOURS, rate_hz=rate, partner=True, gaps=1, cramps=3)
    if generator == "field":
        return fieldnights.generate_night(seed, hours=HOURS, rate_hz=rate)
    return simnights.generate_night(seed, hours=HOURS, rate_hz=rate)


def _detect(night, rotation: np.ndarray | None = None):
    xyz = night.xyz if rotation is None else night.xyz @ rotation.T
    return detect_arrays(np.round(night.t, 6), np.round(xyz, 5))


@pytest.fixture(scope="module", params=["synthetic", "physio", "field"])
def results(request):
    out = []
    for seed, rate in NIGHTS:
        night = _night(request.param, seed, rate)
        out.append((night, _detect(night)))
    return request.param, out


def test_pooled_f1_stays_above_the_floor(results):
    generator, nights = results
    pooled = sum((score(det.episodes, n.events, slack_s=JUDGED_SLACK_S) for n, det in nights), Scores())
    got = {k: round(pooled[k].f1, 3) for k in FLOORS[generator]}
    low = {k: (got[k], floor) for k, floor in FLOORS[generator].items() if got[k] < floor}
    assert not low, f"{generator}: F1 below the floor (got, floor): {low}; all: {got}"


def test_every_getting_up_found_and_none_in_bed(results):
    generator, nights = results
    for n, det in nights:
        ups = [e for e in n.events if e.kind == "out_of_bed"]
        calls = [e for e in det.episodes if e.kind == "out_of_bed"]
        in_bed = [c for c in calls if not any(w.start < c.end and w.end > c.start for w in ups)]
        # every getting up, with a walk or without a step (fieldnights stands to stretch a cramp: the
        # 12.5 Hz night's, found since session 13)
        missed = [w for w in ups if not any(c.start < w.end and c.end > w.start for c in calls)]
        assert not in_bed, f"{generator} {n.rate_hz:g} Hz: out_of_bed while in bed at {[c.start for c in in_bed]}"
        assert not missed, f"{generator} {n.rate_hz:g} Hz: getting up not found at {[w.start for w in missed]}"


def test_sleep_window_inside_the_recording(results):
    generator, nights = results
    found = [(n, det.sleep_window) for n, det in nights if det.sleep_window is not None]
    assert len(found) >= 3, f"{generator}: a sleep window on only {len(found)} of {len(nights)} 1-h nights"
    for n, (a, b) in found:  # never before the recording starts, nor after it ends
        assert n.t[0] - 1e-6 <= a < b <= n.t[-1] + 1e-6


def test_sleep_onset_stays_near_the_truth(results):
    generator, nights = results
    errors = [abs(det.sleep_window[0] - n.sleep_start) / 60.0 for n, det in nights if det.sleep_window]
    got = float(np.median(errors))
    assert got <= ONSET_MAX_MIN, f"{generator}: median sleep onset error {got:.1f} min > {ONSET_MAX_MIN:g}"


def test_upside_down_scores_as_upright():
    seed, rate = NIGHTS[2]
    night = _night("physio", seed, rate)
    upright = score(_detect(night).episodes, night.events, slack_s=JUDGED_SLACK_S)["any"].f1
    flipped = score(_detect(night, np.diag([1.0, -1.0, -1.0])).episodes, night.events, slack_s=JUDGED_SLACK_S)
    assert abs(flipped["any"].f1 - upright) <= ROTATED_MAX_DIFF


def test_strap_rotated_obliquely_gets_up_only_when_walking():
    """A strap rotated 40 deg off the sensor's axes (about x+y+z) on a 2-h 12.5 Hz night with a walk
    half an hour in: the shin-axis estimate read the lying posture after it as steep, and three
    movements in bed within the next minutes were called out_of_bed (issue 14, session 6)."""
    k = np.ones(3) / np.sqrt(3.0)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    a = np.radians(40.0)
    rot = np.eye(3) + np.sin(a) * kx + (1.0 - np.cos(a)) * kx @ kx
    night = simnights.generate_night(NIGHTS[0][0], hours=2.0, rate_hz=NIGHTS[0][1])
    calls = [e for e in _detect(night, rot).episodes if e.kind == "out_of_bed"]
    walks = [e for e in night.events if e.kind == "out_of_bed"]
    assert walks
    in_bed = [c.start - night.t[0] for c in calls if not any(w.start < c.end and w.end > c.start for w in walks)]
    assert not in_bed, f"out_of_bed while in bed at {in_bed} s"
    assert all(any(c.start < w.end and c.end > w.start for c in calls) for w in walks)
