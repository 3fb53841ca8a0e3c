"""The sleep-onset model (:mod:`detector.sleep_states`) on nights built episode by episode: what it must
read as the first sleep, and what it must not let move it."""

from __future__ import annotations

import numpy as np
import pytest

from detector.events import Episode
from detector.sleep_states import first_sleep

MIN = 60.0
#: the region modelled and the bound on the onset as ``detector.sleep`` passes them for a rest block
#: starting at about 12 min and lasting to 120 min
LATEST, STOP, BLOCK_END = 42 * MIN, 102 * MIN, 120 * MIN


def _every(kind: str, first_min: float, last_min: float, step_s: float, dur_s: float = 2.0) -> list[Episode]:
    return [Episode(t, t + dur_s, kind, 0.05) for t in np.arange(first_min * MIN, last_min * MIN, step_s)]


def _night(*parts: list[Episode]) -> list[Episode]:
    return sorted((e for p in parts for e in p), key=lambda e: e.start)


def _onset_min(episodes: list[Episode]) -> float:
    return first_sleep(episodes, 0.0, LATEST, STOP, BLOCK_END) / MIN


def test_restless_minutes_then_quiet_sleep() -> None:
    night = _night(
        _every("leg_movement", 0.5, 15, 50.0),
        _every("posture_change", 1, 15, 240.0, 5.0),
        _every("leg_movement", 15.5, 120, 600.0),
    )
    assert _onset_min(night) == pytest.approx(15.0, abs=3.0)


def test_a_cramp_and_the_restless_minutes_after_it_do_not_move_the_onset() -> None:
    """Woken by a cramp 10 min into sleep and restless for 6 min after it: a waking, not sleep not yet
    begun (the rule before session 8 moved the onset past the cramp on such nights)."""
    night = _night(
        _every("leg_movement", 0.5, 15, 50.0),
        _every("posture_change", 1, 15, 240.0, 5.0),
        [Episode(25 * MIN, 25 * MIN + 70.0, "contraction", 0.3)],
        _every("leg_movement", 26.5, 32.5, 45.0),
        _every("posture_change", 27, 32, 150.0, 5.0),
        _every("leg_movement", 34, 120, 600.0),
    )
    assert _onset_min(night) == pytest.approx(15.0, abs=3.0)


def test_getting_up_soon_after_falling_asleep_does_not_move_the_onset() -> None:
    night = _night(
        _every("leg_movement", 0.5, 10, 50.0),
        _every("posture_change", 1, 10, 200.0, 5.0),
        [Episode(18 * MIN, 22 * MIN, "out_of_bed", 0.5)],
        _every("leg_movement", 22.2, 24, 50.0),
        _every("leg_movement", 26, 120, 600.0),
    )
    assert _onset_min(night) == pytest.approx(10.0, abs=3.0)


def test_twitches_mark_sleep_when_movements_do_not() -> None:
    """Leg movements at one rate all night (awake and asleep alike), twitches only once asleep."""
    night = _night(_every("leg_movement", 0.5, 120, 240.0), _every("twitch", 20, 120, 90.0, 0.2))
    assert _onset_min(night) == pytest.approx(20.0, abs=3.0)


def test_periodic_leg_movements_are_no_sign_of_waking() -> None:
    quiet = _night(_every("leg_movement", 0.5, 15, 50.0), _every("leg_movement", 15.5, 120, 600.0))
    plms = [Episode(t, t + 2.0, "leg_movement", 0.05, periodic=True) for t in np.arange(16 * MIN, 40 * MIN, 25.0)]
    assert _onset_min(_night(quiet, plms)) == pytest.approx(_onset_min(quiet), abs=0.01)


def test_never_after_the_latest_onset_allowed() -> None:
    night = _every("leg_movement", 0.5, 120, 40.0)  # restless all night long
    assert _onset_min(night) <= LATEST / MIN
