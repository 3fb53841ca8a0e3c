"""Detector rules on hand-made input: a held excursion of the leg is one contraction
(``detector.excursions``), walking is told by the shin's stride swing (``detector.gait``), an upright
shin after walking is the walking shin's orientation (``detector.getting_up``), and the slow-sensor
threshold factors are the chi-square tail they claim (``detector.thresholds``), and a strong jerk that
swings a few-sample mean far off gravity is still a twitch, and a movement ends where the leg came to rest
(``detector.episodes``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detector.episodes import CrampGrouper
from detector.events import Episode
from detector.excursions import HeldCrampGrouper
from detector.gait import gait, gait_seconds
from detector.getting_up import GettingUp
from detector.offline import detect_arrays
from helpers import SAMPLES

DOWN = [0.0, 0.0, 1.0]


def _turned(deg: float) -> list[float]:
    a = math.radians(deg)
    return [math.sin(a), 0.0, math.cos(a)]


def ep(start: float, dur: float, kind: str, pre: list[float], post: list[float], pitch: float = 0.0) -> Episode:
    return Episode(start, start + dur, kind, 0.1, extra={"_pre": pre, "_post": post, "_pitch": pitch})


def test_a_held_turn_with_movements_inside_and_a_return_is_one_contraction() -> None:
    g = HeldCrampGrouper()
    out = g.push(
        [
            ep(100.0, 3.0, "posture_change", DOWN, _turned(40), pitch=35.0),  # the leg turns (pitched) and holds
            ep(130.0, 2.0, "leg_movement", _turned(40), _turned(42)),  # strained movements inside
            ep(160.0, 4.0, "leg_movement", _turned(42), _turned(39)),
            ep(190.0, 3.0, "posture_change", _turned(39), _turned(2)),  # back close to where it was
        ]
    )
    out += g.flush()
    assert [(e.kind, e.start, e.end, e.extra["parts"]) for e in out] == [("contraction", 100.0, 193.0, 4)]


def test_no_return_or_a_return_without_movements_inside_leaves_the_episodes() -> None:
    g = HeldCrampGrouper()
    rolled = [
        ep(100.0, 3.0, "posture_change", DOWN, _turned(40)),
        ep(130.0, 2.0, "leg_movement", _turned(40), _turned(41)),
    ]
    out = g.push(rolled) + g.tick(100.0 + 300.0) + g.flush()  # never came back within MAX_S
    assert [e.kind for e in out] == ["posture_change", "leg_movement"]
    g = HeldCrampGrouper()  # rolling over (a turn about the shin's own axis), lying a while, rolling back
    roll = [
        ep(100.0, 3.0, "posture_change", DOWN, _turned(40), pitch=3.0),
        ep(130.0, 2.0, "leg_movement", _turned(40), _turned(41)),
        ep(160.0, 3.0, "posture_change", _turned(41), _turned(1), pitch=-3.0),
    ]
    assert [e.kind for e in g.push(roll) + g.flush()] == ["posture_change", "leg_movement", "posture_change"]
    g = HeldCrampGrouper()
    back = [ep(100.0, 3.0, "posture_change", DOWN, _turned(40)), ep(160.0, 3.0, "posture_change", _turned(40), DOWN)]
    assert [e.kind for e in g.push(back) + g.flush()] == ["posture_change", "posture_change"]
    g = HeldCrampGrouper()
    up = [ep(100.0, 3.0, "leg_movement", DOWN, _turned(20)), ep(120.0, 60.0, "out_of_bed", _turned(20), DOWN)]
    assert [e.kind for e in g.push(up) + g.flush()] == ["leg_movement", "out_of_bed"]  # getting up ends it


def test_rolling_over_while_the_leg_is_away_ends_the_excursion() -> None:
    """Restless minutes: a pitched turn, then rolling over (the shin 130 deg from where it started) and
    back near the start. A cramp holds the leg; it does not roll it further: no contraction."""
    g = HeldCrampGrouper()
    restless = [
        ep(529.0, 2.0, "posture_change", DOWN, _turned(57), pitch=40.0),
        ep(546.0, 2.0, "leg_movement", _turned(57), _turned(56)),
        ep(588.0, 3.0, "posture_change", _turned(56), _turned(29), pitch=-25.0),
        ep(655.0, 5.0, "posture_change", _turned(29), _turned(130), pitch=2.0),
        ep(671.0, 3.0, "posture_change", _turned(130), _turned(7), pitch=1.0),
    ]
    out = g.push(restless) + g.flush()
    assert [e.kind for e in out] == ["posture_change", "leg_movement", *["posture_change"] * 3]


def test_one_movement_then_twitches_with_the_leg_left_turned_is_no_cramp() -> None:
    """A leg movement leaves the shin 17 deg turned and two twitches follow within 10 s of each other:
    brief jerks after one movement, not a cramp's strained movements coming and going."""
    g = CrampGrouper()
    eps = [
        ep(5866.8, 6.3, "leg_movement", DOWN, _turned(17)),
        ep(5882.7, 0.2, "twitch", _turned(17), _turned(17)),
        ep(5890.6, 0.2, "twitch", _turned(17), _turned(17)),
    ]
    assert [e.kind for e in g.push(eps) + g.flush()] == ["leg_movement", "twitch", "twitch"]
    g = CrampGrouper()  # two strained movements with the leg held turned between them: a cramp
    eps = [
        ep(100.0, 4.0, "leg_movement", DOWN, _turned(17)),
        ep(108.0, 3.0, "leg_movement", _turned(17), _turned(17)),
        ep(115.0, 0.2, "twitch", _turned(17), _turned(17)),
    ]
    assert [(e.kind, e.start, e.end) for e in g.push(eps) + g.flush()] == [("contraction", 100.0, 115.2)]


def _jerk_recording(rate: float, amp_g: float) -> tuple[np.ndarray, np.ndarray]:
    """Ten quiet minutes lying still (2 mg noise), the shin jerked sideways by ``amp_g`` for 0.16 s at 300 s."""
    rng = np.random.default_rng(1)
    t = 1.7e9 + np.arange(0.0, 600.0, 1.0 / rate)
    xyz = np.tile(DOWN, (len(t), 1)) + rng.normal(0.0, 0.002, (len(t), 3))
    xyz[(t >= 1.7e9 + 300.0) & (t < 1.7e9 + 300.16), 0] += amp_g
    return t, xyz


@pytest.mark.parametrize("rate", [12.5, 208.0])
def test_a_strong_jerk_is_a_twitch_at_any_rate(rate: float) -> None:
    """At 12.5 Hz a 0.3 s mean holds 3-4 samples, and a 1.5 g jerk swings it 37 deg off gravity: the
    shin did not turn (its ~0.7 s means hardly move, and it ends where it began), so no posture change."""
    eps = detect_arrays(*_jerk_recording(rate, 1.5)).episodes
    assert [(e.kind, round(e.start - 1.7e9, 1)) for e in eps] == [("twitch", 300.0)]


def _movement_left_turned(seconds: float, rest_deg: float = 1.6) -> tuple[np.ndarray, np.ndarray]:
    """Lying still at 104 Hz; at 300 s the leg works for ``seconds`` (the shin swinging 4 deg, the muscle's
    jerk across it) and comes to rest ``rest_deg`` turned from where it lay: a new posture, settled."""
    rng = np.random.default_rng(2)
    t = 1.7e9 + np.arange(0.0, 600.0, 1.0 / 104.0)
    tr = t - 1.7e9 - 300.0
    inside = (tr >= 0.0) & (tr < seconds)
    ang = np.where(tr >= seconds, np.radians(rest_deg), 0.0)
    ang[inside] = np.radians(4.0) * np.sin(np.pi * 0.7 * tr[inside]) ** 2 + np.radians(rest_deg) * tr[inside] / seconds
    xyz = np.column_stack((np.sin(ang), np.zeros(len(t)), np.cos(ang))) + rng.normal(0.0, 0.002, (len(t), 3))
    xyz[inside, :2] += rng.normal(0.0, 0.03, (int(inside.sum()), 2))
    return t, xyz


def test_a_movement_that_leaves_the_leg_turned_ends_when_the_leg_comes_to_rest() -> None:
    """The leg rests 1.6 deg turned after an 8.4 s movement: displaced from its old posture long after it
    stopped, which must not stretch the movement past 10 s into a contraction."""
    (e,) = detect_arrays(*_movement_left_turned(8.4)).episodes
    assert e.kind == "leg_movement"
    assert abs(e.end - (1.7e9 + 308.4)) < 0.5


def _swing(deg: float, hz: float, seconds: float = 30.0) -> np.ndarray:
    t = np.arange(0.0, seconds, 0.1)
    a = np.radians(deg) * np.sin(2 * np.pi * hz * t)
    return np.column_stack((np.sin(a), np.cos(a), np.zeros_like(a)))


def test_gait_is_a_stride_swing_with_heel_strikes() -> None:
    jolts = np.full(300, 0.2)
    assert gait_seconds(_swing(20.0, 0.9), jolts) >= 20.0
    assert gait_seconds(_swing(20.0, 0.9), np.full(300, 0.005)) == 0.0  # no heel strikes: not walking
    assert gait_seconds(_swing(1.5, 1.5), jolts) == 0.0  # a cramp's shaking turns the shin a degree or two
    assert gait_seconds(_swing(20.0, 0.1), jolts) == 0.0  # a slow turn is no stride
    assert gait_seconds(_swing(20.0, 0.9, seconds=3.0), jolts[:30]) == 0.0  # too short to tell
    # a shuffling stride swings the shin a few degrees, but its heel strikes jolt it hard
    assert gait_seconds(_swing(5.0, 0.9), np.full(300, 0.2)) >= 20.0
    assert gait_seconds(_swing(5.0, 0.9), np.full(300, 0.1)) == 0.0
    assert gait_seconds(_swing(3.0, 0.9), np.full(300, 0.1)) == 0.0
    # a cramp held in bed with the leg straining and wobbling at about the stride rate: the swing of a
    # stride, but the 0.3 s spread of a struggle (up to 0.10 g), not of heel strikes (0.17 g and more)
    assert gait_seconds(_swing(8.0, 1.0), np.full(300, 0.1)) == 0.0
    assert gait_seconds(_swing(8.0, 1.0), np.full(300, 0.17)) >= 20.0
    # ... or straining harder, each 6 s window's spread 0.12-0.15 g (fieldnights, an 8-h night at 26 Hz:
    # such a cramp was called out_of_bed); a walk's windows hold a median of 0.145 g and more (0.168 g on the
    # tuning nights, benchmarks/walks.py)
    assert gait_seconds(_swing(6.0, 0.9), np.full(300, 0.13)) == 0.0
    # a walk that begins softly (its first steps 0.12 g) is still a walk
    assert gait_seconds(_swing(6.0, 0.9), np.r_[np.full(80, 0.12), np.full(220, 0.2)]) >= 20.0


def test_upright_after_walking_is_the_walking_shins_orientation() -> None:
    seconds, walk_dir = gait(_swing(20.0, 0.9), np.full(300, 0.2))
    assert seconds >= 20.0 and abs(walk_dir @ [0.0, 1.0, 0.0]) > 0.9  # gravity along the shin (sensor y)
    up = GettingUp()
    walk = (seconds, walk_dir)
    assert up.decide(100.0, 130.0, walk, np.full(300, 80.0), _swing(20.0, 0.9), walk_dir, 80.0, 0.1, 50.0)
    lying = np.tile([1.0, 0.0, 0.0], (50, 1))  # gravity across the shin: lying down
    # an axis estimate that misreads this lying posture as steep does not make it standing
    assert not up.decide(200.0, 205.0, (0.0, np.full(3, np.nan)), np.full(50, 80.0), lying, lying[0], 80.0, 0.1, 50.0)
    sitting = np.tile([0.0, 0.94, 0.34], (80, 1))  # the shin 70 deg up, on the edge of the bed
    assert up.decide(260.0, 268.0, (0.0, np.full(3, np.nan)), np.full(80, 70.0), sitting, lying[0], 0.0, 0.1, 50.0)
    assert not up.decide(900.0, 908.0, (0.0, np.full(3, np.nan)), np.full(80, 70.0), sitting, lying[0], 0.0, 0.1, 50.0)
    assert GettingUp.from_state(up.state()).state()["up_dir"].tolist() == up.up_dir.tolist()


def test_once_back_lying_after_a_walk_a_steep_shin_is_no_longer_out_of_bed() -> None:
    """Within ``UP_HOLD_S`` of a walk an upright shin counts as out of bed (sitting down, standing), but
    not once a movement lay before and after in bed: a cramp there that pitches the shin steep along the
    walking shin's orientation is in bed (physio +41000, 26 Hz: one cramp was 8 out_of_bed calls)."""
    seconds, walk_dir = gait(_swing(20.0, 0.9), np.full(300, 0.2))
    no_walk = (0.0, np.full(3, np.nan))
    lying = np.tile([1.0, 0.0, 0.0], (50, 1))
    steep = np.tile(walk_dir, (80, 1))

    def after_walk(lay_back: bool) -> bool:
        up = GettingUp()
        assert up.decide(
            100.0, 130.0, (seconds, walk_dir), np.full(300, 80.0), _swing(20.0, 0.9), walk_dir, 80.0, 0.1, 50.0
        )
        if lay_back:
            assert not up.decide(
                200.0, 203.0, no_walk, np.full(30, 5.0), lying[:30], lying[0], 5.0, 0.1, 50.0, 5.0, 30.0
            )
        return up.decide(260.0, 268.0, no_walk, np.full(80, 80.0), steep, lying[0], 5.0, 0.1, 50.0, 80.0, 60.0)

    assert after_walk(lay_back=False)  # sitting up on the edge again, still getting up
    assert not after_walk(lay_back=True)


def test_the_grace_of_the_recordings_start_ends_with_the_leg_lying_settled_before_an_event() -> None:
    """Before any lying was seen, an upright shin counts as out of bed (the recording may begin with the
    person up), but not once the leg lay settled before the event: a sensor mounted at any angle, one
    posture lain in for the first 15 minutes, leaves the axis estimate free to read the next posture as
    steep, and the first roll-over and every movement after it were called getting up (field +1000,
    seed 20261130, 12.5 Hz: 3 calls in bed)."""
    no_walk = (0.0, np.full(3, np.nan))
    steep = np.tile([0.0, 0.94, 0.34], (80, 1))
    unknown = np.full(3, np.nan)
    lying = np.array([1.0, 0.0, 0.0])
    assert GettingUp().decide(20.0, 28.0, no_walk, np.full(80, 75.0), steep, unknown, 0.0, 0.1, 50.0, 75.0, 40.0)
    up = GettingUp()
    assert not up.decide(915.0, 923.0, no_walk, np.full(80, 75.0), steep, lying, 10.0, 0.1, 50.0, 75.0, 80.0)
    # ... nor the movements made in the posture read as steep
    assert not up.decide(1034.0, 1042.0, no_walk, np.full(80, 75.0), steep, steep[0], 75.0, 0.1, 50.0, 75.0, 1.0)


def test_sitting_on_the_edge_and_standing_without_a_step_between_lying_and_lying_is_getting_up() -> None:
    """Long after any walk: the shin held upright 25 s (sitting on the edge of the bed, standing to
    stretch a cramp) with the leg lying before and lying somewhere new after is getting up; 8 s of it,
    a shin that rests upright after it (an axis estimate that misreads the posture lain in next), or a
    leg that comes back where it lay (a cramp that pitched the shin steep and let go) is not."""
    no_walk = (0.0, np.full(3, np.nan))
    sitting = np.tile([0.0, 0.94, 0.34], (250, 1))
    lying = [1.0, 0.0, 0.0]

    def decide(steep_s: float, post_elev: float, moved_deg: float = 40.0, elev: float = 75.0) -> bool:
        up = GettingUp()
        up.up_until = -np.inf  # lying was seen: the grace of the recording's start is over
        k = round(steep_s / 0.1)
        return up.decide(
            900.0,
            900.0 + steep_s + 6.0,
            no_walk,
            np.r_[np.full(k, elev), np.full(60, 10.0)],
            np.vstack([sitting[:k], np.tile(lying, (60, 1))]),
            np.asarray(lying),
            5.0,
            0.1,
            50.0,
            post_elev,
            moved_deg,
        )

    assert decide(25.0, 5.0)
    assert not decide(8.0, 5.0)
    assert not decide(25.0, 75.0)
    assert not decide(25.0, 5.0, moved_deg=4.0)
    # the stand read 60 deg up by an axis estimate 15 deg off (the quiet postures lain with the shin
    # tilted: field +51000, seed 20311125, 12.5 Hz, two such trips missed) is still getting up; a shin
    # pitched 50 deg (a cramp, the knee drawn up) is not
    assert decide(25.0, 5.0, elev=60.0)
    assert not decide(25.0, 5.0, elev=50.0)


def test_slow_sensor_factors_are_the_chi_square_tail() -> None:
    from scipy.stats import chi2

    from detector.thresholds import _SD_FACTOR, REF_SAMPLES, TAIL_P

    n = np.arange(REF_SAMPLES + 1, dtype=float)
    d = 2.0 * (np.maximum(n, 2.0) - 1.0)
    r = np.sqrt(chi2.ppf(TAIL_P, d) / chi2.ppf(0.5, d))
    assert np.allclose(_SD_FACTOR, np.maximum(r / r[REF_SAMPLES], 1.0), atol=1e-4)


def test_a_bounce_along_gravity_that_rings_on_is_the_mattress() -> None:
    from detector.bounce import mattress_bounce

    quiet_after = np.full(14, 1.2)
    ringing = np.r_[np.full(4, 6.0), np.full(10, 1.6)]
    vertical = (np.array([0.02, 0.05, 0.03]), np.array([0.004, 0.01, 0.006]))  # sd, sd_perp (g)
    flick = (np.array([0.02, 0.05, 0.03]), np.array([0.015, 0.04, 0.02]))
    assert mattress_bounce(*vertical, ringing)
    assert not mattress_bounce(*vertical, quiet_after)  # the leg kicked along gravity and was still again
    assert not mattress_bounce(*flick, ringing)  # a jerk across gravity is the leg's own
    assert not mattress_bounce(*vertical, np.full(14, np.nan))  # nothing after it to tell by
    # 3 samples a window (12.5 Hz) scatter more: the same ringing is within their noise
    assert not mattress_bounce(*vertical, ringing, n=3.0)
    assert mattress_bounce(*vertical, ringing * 1.2, n=3.0)


def test_a_night_that_begins_with_a_walk_does_not_make_walking_the_noise_floor() -> None:
    """With no history yet, a first block spent walking (its median spread 0.3 g) would be the floor
    the walk is judged against, and the walk would vanish: a block median enters the history capped."""
    from detector.features import Features
    from detector.thresholds import BLOCK_FRAMES, FLOOR_MAX_SD, ThresholdStage

    k = 2 * BLOCK_FRAMES
    walking = np.arange(k) < BLOCK_FRAMES
    spread = np.where(walking, 0.3, 0.004)
    feats = Features(
        idx=np.arange(k, dtype=np.int64) + 1_000 * BLOCK_FRAMES,
        present=np.ones(k, bool),
        mean=np.tile(DOWN, (k, 1)),
        sd=spread,
        sd_perp=spread,
        tilt=np.where(walking, 0.6, 0.001),
        n=np.full(k, 15.0),
    )
    scored = ThresholdStage().push(feats)
    assert len(scored) == BLOCK_FRAMES  # the first block is scored; the second stays open
    assert scored.floor_sd.max() <= FLOOR_MAX_SD
    assert scored.active.mean() > 0.99  # the walk stands out of its own block


def test_a_jolt_along_gravity_after_which_the_mattress_rings_on_is_someone_else() -> None:
    from detector.bounce import RING_PEAK_K, rings_on

    vertical = (np.array([0.02, 0.05, 0.03]), np.array([0.004, 0.01, 0.006]))  # sd, sd_perp (g)
    flick = (np.array([0.02, 0.05, 0.03]), np.array([0.015, 0.04, 0.02]))
    ringing = np.r_[np.full(3, 1.3), [RING_PEAK_K + 0.4, 1.6], np.full(7, 1.3)]  # from 0.2 s after the jolt
    still = np.full(12, 1.25)  # a twitch's leg is still again: the spread is back at the noise
    assert rings_on(*vertical, ringing)
    assert not rings_on(*vertical, still)
    assert not rings_on(*flick, ringing)  # most of the spread across gravity: the leg's own jerk
    assert not rings_on(*vertical, np.full(12, np.nan))  # nothing after it to tell by
    assert not rings_on(*vertical, ringing * 2.0, n=4.0)  # 12.5 Hz windows scatter too widely to tell


def _cramp_then_roll() -> tuple[np.ndarray, np.ndarray]:
    """Lying still at 104 Hz; at 300 s a cramp turns the shin 20 deg and holds it 20 s with strained
    jerks across it, and as it lets go the sleeper turns over (the leg 90 deg round in 2 s) and rests."""
    rng = np.random.default_rng(3)
    t = 1.7e9 + np.arange(0.0, 600.0, 1.0 / 104.0)
    tr = t - 1.7e9 - 300.0
    ang = np.radians(np.interp(tr, [0.0, 1.0, 20.0, 22.0], [0.0, 20.0, 20.0, 90.0]))
    xyz = np.column_stack((np.sin(ang), np.zeros(len(t)), np.cos(ang))) + rng.normal(0.0, 0.002, (len(t), 3))
    strain = (tr >= 0.0) & (tr < 20.0)
    xyz[strain, 1] += rng.normal(0.0, 0.03, int(strain.sum()))
    return t, xyz


def test_a_cramp_that_lets_go_by_turning_over_is_a_contraction() -> None:
    """One event, ending 90 deg from where it began: the 20 s the leg was held turned before it turned
    over make it a cramp, not only a posture change."""
    kinds = [e.kind for e in detect_arrays(*_cramp_then_roll()).episodes]
    assert kinds == ["contraction"], kinds


def _jolt_along_gravity(ring_g: float) -> tuple[np.ndarray, np.ndarray]:
    """Ten quiet minutes at 12.5 Hz (2 mg noise), the shin lifted straight up at 300 s: 0.3 g along
    gravity, then 0.25 g back (0.16 s); then, for ``ring_g`` > 0, the mattress ringing on at 3 Hz."""
    rng = np.random.default_rng(2)
    t = 1.7e9 + np.arange(0.0, 600.0, 1.0 / 12.5)
    xyz = np.tile(DOWN, (len(t), 1)) + rng.normal(0.0, 0.002, (len(t), 3))
    s = t - (1.7e9 + 300.0)
    k = int(np.argmax(s >= 0.0))
    xyz[k] += 0.3 * np.asarray(DOWN)
    xyz[k + 1] -= 0.25 * np.asarray(DOWN)
    after = (s > 0.2) & (s < 3.0)
    xyz[after] += (ring_g * np.sin(2 * np.pi * 3.0 * s[after]) * np.exp(-(s[after] - 0.2) / 1.5))[:, None] * DOWN
    return t, xyz


def test_a_jolt_along_gravity_that_stands_alone_is_a_twitch_at_12_5_hz() -> None:
    """At 12.5 Hz a twitch that lifts the shin straight up hardly crosses the jerk threshold across
    gravity; a jolt along it with the spread quiet before and after is the leg's, one whose mattress
    rings on is someone else's (episodes.K_ALONG)."""
    alone = detect_arrays(*_jolt_along_gravity(0.0)).episodes
    assert [(e.kind, round(e.start - 1.7e9)) for e in alone] == [("twitch", 300)]
    # 5 mg of ringing: the event stays a short jolt, whose spread after it is no longer the noise
    assert detect_arrays(*_jolt_along_gravity(0.005)).episodes == []


def _lone_lift(partner_at: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Forty quiet minutes at 52 Hz (2 mg noise), the shin lifted straight up at 1500 s: 0.2 g along
    gravity for 0.1 s, then 0.15 g back; before it, at each of ``partner_at`` (s), the same jolt with
    the mattress ringing on after it (3 Hz, 7 mg, 3 s): someone else's."""
    rng = np.random.default_rng(5)
    t = 1.7e9 + np.arange(0.0, 2400.0, 1.0 / 52.0)
    xyz = np.tile(DOWN, (len(t), 1)) + rng.normal(0.0, 0.002, (len(t), 3))
    s = t - 1.7e9
    for a in (*partner_at, 1500.0):
        xyz[(s >= a) & (s < a + 0.1)] += 0.2 * np.asarray(DOWN)
        xyz[(s >= a + 0.1) & (s < a + 0.2)] -= 0.15 * np.asarray(DOWN)
    for a in partner_at:
        on = (s >= a + 0.3) & (s < a + 3.3)
        xyz[on] += (0.007 * np.sin(2 * np.pi * 3.0 * (s[on] - a)))[:, None] * DOWN
    return t, xyz


def test_from_26_hz_a_lone_jolt_along_gravity_is_a_twitch_only_while_no_bed_partner_was_seen() -> None:
    """From 26 Hz a partner's jolt and a twitch that lifts the shin straight up both move the reading
    along gravity only. A jolt after which the mattress rings on is a partner's; with fewer than two
    such signs in the hour before, a jolt that stands alone is the leg's (episodes.PARTNER_MIN)."""
    alone = detect_arrays(*_lone_lift(())).episodes
    assert [(e.kind, round(e.start - 1.7e9)) for e in alone] == [("twitch", 1500)]
    assert detect_arrays(*_lone_lift((600.0, 900.0))).episodes == []
    # one sign is not enough: the leg's own vibration is sometimes read as the mattress's
    one = detect_arrays(*_lone_lift((900.0,))).episodes
    assert [(e.kind, round(e.start - 1.7e9)) for e in one] == [("twitch", 1500)]


@pytest.mark.parametrize(
    "name",
    [
        "actigraph_GGIR_actigraph_testfile.gt3x",  # 30 Hz
        "axivity_ax3_GGIRread_ax3_testfile.cwa",  # 100 Hz
        "polar_sensor_logger_VeritySense_ACC.txt",  # 52 Hz
    ],
)
def test_spread_along_gravity_alone_adds_twitches_and_changes_nothing_else_on_real_recordings(monkeypatch, name):
    """From 26 Hz a jolt along gravity alone (K_ALONG) is an event of its own, a twitch or nothing: on
    recordings written by other software (../shared/export-samples), every episode found without such
    jolts is found with them. A first version let such frames inside a held event count as its
    activity, and the ActiGraph file's first cramp-like group fell apart into a movement and twitches."""
    from detector import episodes
    from legwatch.readers import ReadOptions, read

    path = SAMPLES / name
    assert path.is_file(), f"the shared sample {name} is missing"
    rec = read(path, ReadOptions(tz="UTC"))

    def found() -> set[tuple[str, float, float]]:
        return {(e.kind, e.start, e.end) for e in detect_arrays(rec.t, rec.xyz).episodes}

    with_jolts = found()
    monkeypatch.setattr(episodes, "K_ALONG", math.inf)
    without = found()
    assert without <= with_jolts, sorted(without - with_jolts)
    assert {kind for kind, _, _ in with_jolts - without} <= {"twitch"}


def _shin_axis_error_deg(postures: np.ndarray, axis: np.ndarray) -> float:
    from detector.posture import ShinAxis

    est = ShinAxis._estimate(postures / np.linalg.norm(postures, axis=1, keepdims=True))
    return math.degrees(math.acos(min(1.0, abs(float(est @ axis)))))


def test_the_shin_axis_lies_in_the_sensors_face_plane() -> None:
    """The sensor's face lies on the shin, so the shin's axis is across its z (the face's normal), at
    any turn of the strap. Lying on the side, the strap turned 50 deg off the sensor's axes, gravity is
    across the shin and in the face plane: of the sensor's own axes only z is across it, and it was
    taken (90 deg off); and with the knee sometimes drawn up and a few epochs on the back (gravity
    along z: upright, by z), z and the axis in the face plane left as many epochs lying (field +0,
    seed 20260124: a stand to stretch a cramp read as lying). Both now give the shin's axis."""
    rng = np.random.default_rng(3)
    a = math.radians(50.0)
    shin = np.array([math.cos(a), math.sin(a), 0.0])
    across = np.cross(shin, [0.0, 0.0, 1.0])  # gravity lying on the side: across the shin, in the face plane
    side = across + rng.normal(0.0, 0.03, (120, 3))
    assert _shin_axis_error_deg(side, shin) < 5.0
    knee = math.radians(35.0)  # the knee drawn up: the shin 35 deg above the horizontal
    mixed = np.vstack(
        [
            side[:96],
            np.tile(math.cos(knee) * across + math.sin(knee) * shin, (14, 1)) + rng.normal(0.0, 0.03, (14, 3)),
            np.tile([0.0, 0.0, 1.0], (10, 1)) + rng.normal(0.0, 0.03, (10, 3)),  # on the back
        ]
    )
    assert _shin_axis_error_deg(mixed, shin) < 10.0


def test_lying_postures_with_the_knee_up_give_the_shin_axis_of_a_sensor_mounted_at_any_angle() -> None:
    """A sensor mounted at any angle (none of its axes along the shin); the first 20 quiet epochs of
    physio +45000 seed 20305124 (208 Hz), as (roll about the shin, elevation): five lying postures,
    one with the knee drawn 20 deg up. The knee fattens the postures' scatter across their plane (its
    smallest spread is not a quarter of the next), so that plane's normal was no candidate, though it
    leaves every epoch lying; the sensor's x leaves 16 of 20 lying and was taken, 90 deg off: the first
    posture read as standing and the recording's first roll-over as getting up."""
    rng = np.random.default_rng(5)
    shin = np.array([0.4, 0.53, 0.75])
    shin /= np.linalg.norm(shin)
    across = np.cross(shin, [1.0, 0.0, 0.0])
    across /= np.linalg.norm(across)
    other = np.cross(shin, across)

    def lying(roll_deg: float, elev_deg: float, n: int) -> np.ndarray:
        r, e = math.radians(roll_deg), math.radians(elev_deg)
        g = math.cos(e) * (math.cos(r) * across + math.sin(r) * other) + math.sin(e) * shin
        return np.tile(g, (n, 1)) + rng.normal(0.0, 0.003, (n, 3))

    postures = np.vstack([lying(95, 4, 1), lying(180, 5, 9), lying(0, 20, 7), lying(135, -10, 2), lying(110, 1, 1)])
    assert _shin_axis_error_deg(postures, shin) < 10.0
