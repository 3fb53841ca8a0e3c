"""Getting up: swinging the legs out to sit on the edge of the bed, standing, walking with real gait,
standing or sitting (toilet, or standing on the cramped leg to stretch the calf), coming back, lying down.

Shin pitch 0 deg is the shin horizontal on the mattress, 90 deg the shin vertical (knee above ankle).
Gait: the shank swings about +-25-30 deg in the sagittal plane once per stride (0.75-0.95 strides/s at
night), the body bounces twice per stride, and each heel strike sends a short axial shock up the shin
(README.md has the numbers and their sources).
"""

from __future__ import annotations

import numpy as np

from fieldnights.canvas import Canvas, damped, plateau, smooth_noise
from fieldnights.plan import nearest_turn
from fieldnights.schedule import Item

#: phases that move the shin from one pose to the next (the others hold a pose)
TRANSITIONS = {
    "swing_out": ("lying", "sit"),
    "stand_up": ("sit", "stand"),
    "sit_down": ("stand", "sit"),
    "lie_back": ("sit", "lying_after"),
}


def keyframes(
    item: Item, lying: tuple[float, float], lying_after: tuple[float, float]
) -> tuple[list[tuple[float, float, float]], tuple[float, float]]:
    """Baseline keyframes ``(time, roll, pitch)`` of a trip out of bed, and the lying posture it ends in
    (``lying_after`` with its roll taken the short way round from sitting on the edge)."""
    # each pose's roll taken the short way round from the one before (sitting up, then lying back)
    poses = {name: (nearest_turn(r, lying[0]), p) for name, (r, p) in item.info["poses"].items()}
    poses["lying"] = lying
    poses["lying_after"] = (nearest_turn(lying_after[0], poses["sit"][0]), lying_after[1])
    keys: list[tuple[float, float, float]] = []
    for name, a, b in item.info["phases"]:
        if name in TRANSITIONS:
            p0, p1 = TRANSITIONS[name]
            keys += [(a, *poses[p0]), (b, *poses[p1])]
        elif name in ("stretch", "toilet"):
            keys += [(a, *poses["stand"]), (a + 1.5, *poses[name]), (b - 1.5, *poses[name]), (b, *poses["stand"])]
    return keys, poses["lying_after"]


def draw(cv: Canvas, item: Item) -> None:
    rng = np.random.default_rng(int(item.info["shape_seed"]))
    g = item.info["gait"]
    for name, a, b in item.info["phases"]:
        sl = cv.span(a, b)
        t = cv.times(sl)
        if name == "walk":
            _walk(cv, sl, t, a, b, g, rng)
        elif name in ("sit", "stand", "stretch", "toilet"):
            # standing or sitting still is never quite still: sway and small shifts of weight
            env = plateau(t, a, b, 0.5, 0.5)
            cv.pitch[sl] += 1.5 * env * smooth_noise(rng, len(t), cv.fine_hz, 0.4)
            cv.lin[sl] += (
                0.01 * env[:, None] * np.stack([smooth_noise(rng, len(t), cv.fine_hz, 2.0) for _ in range(3)], 1)
            )
        else:  # a transition: effort and contact with the bed and floor
            env = plateau(t, a, b, 0.3 * (b - a), 0.3 * (b - a))
            cv.lin[sl] += (
                0.06 * env[:, None] * np.stack([smooth_noise(rng, len(t), cv.fine_hz, 3.0) for _ in range(3)], 1)
            )
            if name == "stand_up":
                # the foot takes the body's weight: one firm floor contact
                k = cv.span(b - 0.3, b + 0.2)
                cv.lin[k, 0] -= 0.4 * damped(cv.times(k) - (b - 0.3), 12.0, 0.05)


def _walk(cv: Canvas, sl: slice, t: np.ndarray, a: float, b: float, g: dict, rng: np.random.Generator) -> None:
    n = len(t)
    f = g["stride_hz"] * (1.0 + g["stride_cv"] * smooth_noise(rng, n, cv.fine_hz, 0.2))
    phi = 2 * np.pi * np.cumsum(f) / cv.fine_hz + g["phase0"]
    ramp = plateau(t, a, b, 1.5, 1.5)
    swing = (
        g["a1_deg"] * np.sin(phi) + g["a2_deg"] * np.sin(2 * phi + g["c2"]) + g["a3_deg"] * np.sin(3 * phi + g["c3"])
    )
    cv.pitch[sl] -= swing * ramp
    cv.roll[sl] += g["roll_deg"] * np.sin(phi + g["c4"]) * ramp
    cv.vert[sl] += g["bounce_g"] * np.sin(2 * phi + g["c5"]) * ramp
    # heel strikes: where the swing passes its forward extreme (phi = pi/2 mod 2 pi)
    k = np.floor((phi - np.pi / 2) / (2 * np.pi))
    strikes = np.flatnonzero(np.diff(k) > 0) + 1
    if len(strikes) == 0:
        return
    train = np.zeros(n)
    train[strikes] = g["heel_g"] * ramp[strikes] * (1.0 + 0.2 * rng.standard_normal(len(strikes)))
    kt = np.arange(int(0.25 * cv.fine_hz)) / cv.fine_hz
    kernel = damped(kt, g["heel_hz"], 0.022)
    shock = np.convolve(train, kernel)[:n]
    cv.lin[sl, 0] -= shock  # along the shin, upwards
    cv.lin[sl, 2] += 0.35 * shock  # and some forward-backward
