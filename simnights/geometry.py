"""Rigid-body geometry of the shin: orientations, the sensor's mounting, and the specific force a segment feels.

World frame: ``X`` along the bed towards its head, ``Y`` to the left, ``Z`` up. Shin frame: ``x`` along the
tibia from the ankle towards the knee, ``y`` anterior (out of the front of the shin), ``z = x cross y``.
An orientation is three angles: ``elev`` (the elevation of the shin axis above the horizontal, rad; 90 deg
is a vertical shank with the knee on top), ``roll`` (rotation about the shin axis; 0 = the front of the
shin facing the ceiling when the shank is horizontal) and ``yaw`` (heading about world ``Z``), plus an
optional small rotation vector ``delta`` in the shin frame (twitches, bulging muscle, tremor) applied last.
"""

from __future__ import annotations

import numpy as np

G0 = 9.80665  # m/s^2 per g
_R0 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # shin -> world when supine, straight


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def rotvec_matrix(v: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation matrices (n, 3, 3) of rotation vectors ``v`` (n, 3), rad."""
    v = np.asarray(v, dtype=float)
    ang = np.linalg.norm(v, axis=-1)
    safe = np.where(ang > 1e-12, ang, 1.0)
    k = v / safe[..., None]
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    z = np.zeros_like(kx)
    K = np.stack([np.stack([z, -kz, ky], -1), np.stack([kz, z, -kx], -1), np.stack([-ky, kx, z], -1)], -2)
    s, c = np.sin(ang)[..., None, None], (1.0 - np.cos(ang))[..., None, None]
    eye = np.broadcast_to(np.eye(3), K.shape)
    return eye + s * K + c * (K @ K)


def shin_to_world(elev: np.ndarray, roll: np.ndarray, yaw: np.ndarray, delta: np.ndarray | None = None) -> np.ndarray:
    """Rotation matrices (n, 3, 3) taking shin-frame vectors to the world frame."""
    elev, roll, yaw = (np.asarray(a, dtype=float) for a in (elev, roll, yaw))
    r = _rz(yaw) @ _ry(-elev) @ _R0 @ _rx(roll)
    if delta is not None:
        r = r @ rotvec_matrix(delta)
    return r


def gravity_in_shin(elev: float, roll: float) -> np.ndarray:
    """The +1 g 'up' a still accelerometer reads, in the shin frame (yaw does not matter)."""
    r = shin_to_world(np.array([elev]), np.array([roll]), np.array([0.0]))[0]
    return r.T @ np.array([0.0, 0.0, 1.0])


def specific_force(
    t: np.ndarray, rot: np.ndarray, pivot: np.ndarray, lever: np.ndarray, extra_shin: np.ndarray | None = None
) -> np.ndarray:
    """Specific force (g) in the shin frame at the sensor, on a uniform grid ``t``.

    ``rot`` (n, 3, 3) shin -> world; ``pivot`` (n, 3) the world position (m) of the joint the shin turns
    about; ``lever`` (3,) the sensor's position relative to the pivot in the shin frame (m). The sensor's
    acceleration is differentiated twice from its position, so rotation gives its tangential and
    centripetal parts consistently. ``extra_shin`` (n, 3) adds vibration felt in the shin frame (g).
    """
    pos = pivot + rot @ lever
    dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
    acc = np.gradient(np.gradient(pos, dt, axis=0), dt, axis=0) / G0
    f_world = acc + np.array([0.0, 0.0, 1.0])
    f = np.einsum("nji,nj->ni", rot, f_world)  # R^T f
    if extra_shin is not None:
        f = f + extra_shin
    return f


def angles_of(rot: np.ndarray) -> tuple[float, float, float]:
    """(elev, roll, yaw) of one shin -> world rotation (inverse of :func:`shin_to_world` without delta)."""
    elev = float(np.arcsin(np.clip(rot[2, 0], -1.0, 1.0)))
    yaw = float(np.arctan2(rot[1, 0], rot[0, 0]))
    roll = float(np.arctan2(-rot[2, 2], rot[2, 1]))
    return elev, roll, yaw


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation drawn uniformly from SO(3) (via a random unit quaternion)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def mounting(rng: np.random.Generator, style: str) -> np.ndarray:
    """Sensor -> shin rotation for a mounting ``style``.

    ``aligned``: the sensor's ``y`` along the shin, ``z`` out of the skin, a few degrees off;
    ``rotated``: that, turned by any angle about the shin axis (the strap slid round the calf);
    ``upside_down``: the sensor's ``y`` pointing down the shin (strapped on the other way up), any roll;
    ``arbitrary``: any orientation at all.
    """
    # base: sensor y -> shin x (along the shin), sensor z -> shin y (anterior), sensor x -> shin z
    base = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    wobble = rotvec_matrix(rng.normal(0.0, np.radians(4.0), size=(1, 3)))[0]
    if style == "aligned":
        return wobble @ base
    if style == "rotated":
        spin = rotvec_matrix(np.array([[rng.uniform(-np.pi, np.pi), 0.0, 0.0]]))[0]
        return spin @ wobble @ base
    if style == "upside_down":
        flip = rotvec_matrix(np.array([[0.0, np.pi, 0.0]]))[0]  # about the anterior axis: shin x -> -x, z -> -z
        spin = rotvec_matrix(np.array([[rng.uniform(-np.pi, np.pi), 0.0, 0.0]]))[0]
        return spin @ flip @ wobble @ base
    if style == "arbitrary":
        return random_rotation(rng)
    raise ValueError(f"unknown mounting style {style!r} (aligned, rotated, upside_down, arbitrary)")
