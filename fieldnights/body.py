"""From the shin's angles and accelerations to the specific force an accelerometer on it feels.

Shin frame: x along the shin (knee to ankle), y to the side, z out of the front of the shin. Pitch is the
shin's elevation (0 horizontal, 90 deg vertical with the ankle below the knee), roll its turn about its
own long axis (0 with the front of the shin up). At rest the specific force is gravity's reaction,
``[-sin(pitch), sin(roll) cos(pitch), cos(roll) cos(pitch)]`` (1 g). Turning the shin also moves the
sensor: tangential and centripetal acceleration with the sensor 0.25 m below the knee for pitch and
0.04 m off the shin's axis for roll (assumptions: an adult shin).
"""

from __future__ import annotations

import numpy as np

from fieldnights.canvas import Canvas

G = 9.80665
KNEE_TO_SENSOR_M = 0.25
AXIS_TO_SENSOR_M = 0.04


#: lying in bed, the ankle cannot go much more than this far below the knee (the foot stays on the mattress
#: with the knee drawn up; a vertical shin needs the foot off the bed): pitch is softly limited to it
IN_BED_MAX_PITCH_DEG = 75.0


def in_bed_pitch(pitch: np.ndarray, in_bed: np.ndarray) -> np.ndarray:
    """Pitch with a smooth (C1) saturation above 60 deg towards ``IN_BED_MAX_PITCH_DEG`` where in bed."""
    knee = IN_BED_MAX_PITCH_DEG - 15.0
    over = in_bed & (pitch > knee)
    if over.any():
        pitch = pitch.copy()
        pitch[over] = knee + 15.0 * np.tanh((pitch[over] - knee) / 15.0)
    return pitch


def specific_force(cv: Canvas, roll_base: np.ndarray, pitch_base: np.ndarray, in_bed: np.ndarray) -> np.ndarray:
    """(n, 3) specific force in the shin frame, in g (``in_bed``: the samples where the person lies)."""
    th = np.radians(in_bed_pitch(pitch_base + cv.pitch, in_bed))
    ph = np.radians(roll_base + cv.roll)
    dt = 1.0 / cv.fine_hz
    th_d = np.gradient(th, dt)
    th_dd = np.gradient(th_d, dt)
    ph_dd = np.gradient(np.gradient(ph, dt), dt)
    ct = np.cos(th)
    up = np.stack([-np.sin(th), np.sin(ph) * ct, np.cos(ph) * ct], axis=1)
    f = up * (1.0 + cv.vert)[:, None]
    f[:, 2] -= KNEE_TO_SENSOR_M * th_dd / G
    f[:, 0] -= KNEE_TO_SENSOR_M * th_d**2 / G
    f[:, 1] += AXIS_TO_SENSOR_M * ph_dd / G
    f += cv.lin
    return f
