"""Resting postures of the shin in bed, and where the sensor sits relative to the joints the leg turns about.

Time spent per lying position (Skarpsno et al. 2017, Nat Sci Sleep 9:267, thigh/back accelerometers in
664 adults): side 54 %, back 37.5 %, front 7.3 %. On the side the knees are usually bent, which turns the
shin in the horizontal plane (its elevation stays near level); on the back the feet fall outwards
(external rotation of the leg, roll 5-40 deg); the shin lies within about +-15 deg of level, except with
the knee drawn up (foot flat on the mattress), 25-55 deg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RAD = math.pi / 180.0


@dataclass(frozen=True)
class Posture:
    elev: float  # rad
    roll: float  # rad
    yaw: float  # rad
    name: str = ""


LYING = ("side_left", "side_right", "back", "front", "back_knee_up")
LYING_P = (0.27, 0.27, 0.33, 0.07, 0.06)


def draw_lying(rng: np.random.Generator, avoid: str | None = None, weights: tuple[float, ...] = LYING_P) -> Posture:
    """A lying posture, by prevalence (``weights`` over :data:`LYING`, the published ones by default); a
    different position from ``avoid`` when given."""
    names = list(LYING)
    p = np.array(weights, dtype=float)
    if avoid is not None:
        base = avoid.replace("_knee_up", "")
        other = np.array([n.replace("_knee_up", "") != base for n in names])
        # a sleeper who only ever lies one way still turns over now and then: fall back to the prevalences
        p = p * other if (p * other).sum() > 0 else np.array(LYING_P) * other
    p /= p.sum()
    name = str(rng.choice(names, p=p))
    yaw = rng.uniform(-25, 25) * RAD
    if name == "back":
        return Posture(rng.uniform(-6, 14) * RAD, rng.choice([-1, 1]) * rng.uniform(5, 40) * RAD, yaw, name)
    if name == "back_knee_up":
        return Posture(rng.uniform(25, 55) * RAD, rng.uniform(-15, 15) * RAD, yaw, name)
    if name == "front":
        return Posture(rng.uniform(-12, 6) * RAD, (180 + rng.uniform(-30, 30)) * RAD, yaw, name)
    side = 1.0 if name == "side_left" else -1.0
    yaw += side * rng.uniform(10, 60) * RAD  # bent knee: the shin turns in the horizontal plane
    return Posture(rng.uniform(-15, 15) * RAD, side * rng.uniform(65, 115) * RAD, yaw, name)


def night_preferences(rng: np.random.Generator) -> tuple[float, ...]:
    """One sleeper's own preferences: the published prevalences reweighted (Dirichlet, concentration 4)."""
    w = rng.dirichlet(np.array(LYING_P) * 4.0 * len(LYING))
    return tuple(float(x) for x in 0.8 * w + 0.2 * np.array(LYING_P))


def lever(rng: np.random.Generator, joint: str) -> np.ndarray:
    """Sensor position relative to ``joint`` in the shin frame (m): mid-shin, 3.5 cm out on the tibia."""
    if joint == "heel":
        along = rng.uniform(0.22, 0.32)
    elif joint == "knee":
        along = -rng.uniform(0.10, 0.20)
    elif joint == "hip":
        along = -rng.uniform(0.55, 0.70)
    else:
        raise ValueError(joint)
    return np.array([along, 0.035, 0.0])


def sitting_in_bed(rng: np.random.Generator) -> Posture:
    """Sitting up in bed with the knees drawn up: the shin at 25-60 deg, its front facing up and forward."""
    return Posture(rng.uniform(25, 60) * RAD, rng.uniform(-20, 20) * RAD, rng.uniform(-25, 25) * RAD, "sitting_up")
