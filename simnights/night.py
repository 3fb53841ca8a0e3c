"""``generate_night``: plan a night, render every movement through the shin's geometry, pass it through the sensor.

Rendering: between movements the leg is still and the sensor reads gravity in its posture (plus its own
offsets and noise). Each movement is rendered on a fine grid (>= 4 x the output rate, >= 400 Hz) from a
little before to a little after it, its specific force differentiated from the sensor's trajectory, rotated
into the sensor's (arbitrarily mounted) frame, filtered the way the sensor filters, and read off at the
sensor's own sample instants (its oscillator is a little off nominal). Labels are mapped from true time to
the recording's timestamps by the same clock.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detector.synthetic import Night, TruthEvent
from simnights.geometry import angles_of, gravity_in_shin, mounting, rotvec_matrix, shin_to_world, specific_force
from simnights.plan import make_plan, periodic_flags
from simnights.postures import LYING, Posture, draw_lying, night_preferences
from simnights.profiles import minjerk
from simnights.sensor import Sensor

SENSOR_KNOBS = (
    "range_g",
    "bits",
    "noise_mg",
    "filter",
    "bandwidth",
    "osc_error",
    "clock",
    "packet_s",
    "jitter_ms",
    "late_bursts",
)
MOUNTS = ("aligned", "rotated", "upside_down", "arbitrary")


def _defaults(rng: np.random.Generator, hours: float) -> dict[str, Any]:
    """Every night knob, drawn from the seed (all are drawn even when given, so one knob changes only itself)."""
    seconds = hours * 3600.0
    return {
        "sleep_latency_s": float(min(rng.uniform(5, 35) * 60, 0.25 * seconds)),
        "early_wake_s": float(min(rng.uniform(3, 20) * 60, 0.15 * seconds)),
        "twitches": int(rng.uniform(10, 40) * hours),
        "strong_twitch_frac": float(rng.uniform(0.2, 0.5)),
        "plm_series": int(rng.integers(1, 4) * max(1, round(hours / 2.0))),
        "plm_len": (4, int(rng.integers(8, 30))),
        "leg_movements": int(rng.uniform(5, 20) * hours),
        "cramps": int(rng.integers(1, 3)),
        "cramp_tremor": None,  # None: some with, some without; True/False: all
        "cramp_tremor_frac": 0.5,
        "cramp_walk_frac": 0.3,
        "out_of_bed": int(rng.integers(1, 3)),
        "posture_per_h": float(rng.uniform(1.0, 4.0)),
        "restless_per_min": float(rng.uniform(0.3, 1.2)),
        "partner": bool(rng.random() < 0.5),
        "partner_per_h": float(rng.uniform(4.0, 20.0)),
        "partner_plm": bool(rng.random() < 0.25),
        "gaps": int(rng.integers(0, 3)),
        "guard_s": 3.0,
        "mount": str(rng.choice(MOUNTS, p=[0.4, 0.3, 0.15, 0.15])),
        "start_unix": float(1767300000 + int(rng.integers(0, 10**7))),
        "strap_slips": int(rng.integers(0, 2)),
        "heart_mg": float(rng.uniform(0.3, 1.5)),
        "breath_mg": float(rng.uniform(0.2, 0.8)),
        "sitting_up": int(rng.random() < 0.4),
        "lying_weights": night_preferences(rng),
    }


def resolve(rng: np.random.Generator, hours: float, knobs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(night knobs, sensor knobs) with the given ones overriding the drawn ones; unknown names refused."""
    k = _defaults(rng, hours)
    sensor_k = {name: None for name in SENSOR_KNOBS}
    for name, v in knobs.items():
        if name in k:
            if v is not None or name == "cramp_tremor":
                k[name] = v
        elif name in sensor_k:
            sensor_k[name] = v
        else:
            raise TypeError(f"generate_night: unknown knob {name!r}")
    if k["mount"] not in MOUNTS:
        raise ValueError(f"mount must be one of {MOUNTS}")
    w = np.asarray(k["lying_weights"], dtype=float)
    if w.shape != (len(LYING),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"lying_weights must be {len(LYING)} non-negative weights over {LYING}")
    k["lying_weights"] = tuple(float(x) for x in w)
    return k, sensor_k


def generate_night(seed: int, *, hours: float = 2.0, rate_hz: float = 52.0, **knobs: Any) -> Night:
    """A labelled night from the physiological model (see ``simnights/README.md`` for every shape and knob)."""
    if not 12.5 <= rate_hz <= 208.0:
        raise ValueError("rate_hz must be within 12.5-208 Hz")
    if hours <= 0:
        raise ValueError("hours must be positive")
    rng = np.random.default_rng(seed)
    k, sensor_k = resolve(rng, hours, knobs)
    sensor = Sensor.draw(np.random.default_rng(rng.integers(2**63)), rate_hz, **sensor_k)
    mount = mounting(np.random.default_rng(rng.integers(2**63)), k["mount"])
    seconds = hours * 3600.0
    plan = make_plan(np.random.default_rng(rng.integers(2**63)), seconds, k)
    render_rng = np.random.default_rng(rng.integers(2**63))
    body_rng = np.random.default_rng(rng.integers(2**63))
    slips = _strap_slips(body_rng, plan, k["strap_slips"])

    tau = sensor.sample_instants(seconds)
    seen: dict[int, float] = {}
    f = _render(plan, sensor, mount, tau, draw_lying(render_rng, weights=k["lying_weights"]), slips, seen)
    f += _heart_and_breath(body_rng, tau, f, mount, k["heart_mg"], k["breath_mg"])
    xyz = sensor.digitise(render_rng, tau, f)
    keep = np.ones(len(tau), dtype=bool)
    for a, b in plan.gaps:
        keep &= ~((tau >= a) & (tau < b))
    t = sensor.timestamps(render_rng, tau, k["start_unix"])
    tau, t, xyz = tau[keep], t[keep], xyz[keep]
    step = max(1, len(tau) // 2000)
    slope, icpt = np.polyfit(tau[::step], t[::step], 1)

    def clock(x: float) -> float:
        return float(icpt + slope * x)

    labelled = [m for m in plan.motions if m.kind is not None]
    flags = periodic_flags([(m.start, m.kind) for m in labelled])
    events = [
        TruthEvent(clock(m.start), clock(m.end), m.kind, periodic=bool(p)) for m, p in zip(labelled, flags, strict=True)
    ]
    confounders = [  # a partner's mattress rings on for about a second after the movement
        TruthEvent(clock(m.start), clock(m.end + (1.0 if m.confounder == "partner" else 0.0)), m.confounder)
        for m in plan.motions
        if m.kind is None
    ]
    confounders += [TruthEvent(clock(a), clock(b), "gap") for a, b in plan.gaps]
    confounders += [TruthEvent(clock(m.start), clock(m.end), "strap_slip") for m in plan.motions if id(m) in slips]
    confounders.sort(key=lambda e: e.start)
    params: dict[str, Any] = {"generator": "simnights", "hours": hours, "rate_hz": rate_hz, **k}
    params["plm_len"] = list(k["plm_len"])
    params["lying_weights"] = dict(zip(LYING, (round(w, 4) for w in k["lying_weights"]), strict=True))
    params.update({f"sensor_{n}": v for n, v in sensor.params().items()})
    params["rem_periods"] = [[round(clock(a), 3), round(clock(b), 3)] for a, b in plan.rem]
    params["event_details"] = [{**_detail(m, clock), "seen_g": round(seen.get(id(m), 0.0), 4)} for m in labelled]
    return Night(
        t=t,
        xyz=xyz,
        events=events,
        sleep_start=clock(plan.sleep_start),
        sleep_end=clock(plan.sleep_end),
        rate_hz=float(rate_hz),
        seed=int(seed),
        confounders=confounders,
        params=params,
    )


def _detail(m, clock) -> dict[str, Any]:
    d: dict[str, Any] = {"start": round(clock(m.start), 3), "kind": m.kind}
    for name in ("strong", "tremor", "style", "walk_s", "sit_s", "cadence"):
        if hasattr(m, name):
            v = getattr(m, name)
            d[name] = v if isinstance(v, bool | str) else round(float(v), 3)
    if m.kind == "contraction":
        d["tremor_hz"] = round(float(m.tremor_hz), 2) if m.tremor else None
    return d


def _strap_slips(rng: np.random.Generator, plan, n: int) -> dict[int, float]:
    """The strap slides round the calf during ``n`` of the night's turnings-over: id(motion) -> angle (rad)."""
    turns = [m for m in plan.motions if m.kind == "posture_change" and plan.sleep_start < m.start < plan.sleep_end]
    picked = rng.choice(len(turns), size=min(n, len(turns)), replace=False) if turns else []
    return {id(turns[i]): float(rng.choice([-1, 1]) * np.radians(rng.uniform(10, 45))) for i in picked}


def _spin(f: np.ndarray, s: np.ndarray | float) -> np.ndarray:
    """Shin-frame vectors seen from a strap turned by ``s`` about the shin axis (Rx(-s) f)."""
    c, si = np.cos(s), np.sin(s)
    out = f.copy()
    out[:, 1] = c * f[:, 1] + si * f[:, 2]
    out[:, 2] = -si * f[:, 1] + c * f[:, 2]
    return out


def _heart_and_breath(rng, tau, f, mount, heart_mg: float, breath_mg: float) -> np.ndarray:
    """What the body itself does to a still leg: the ballistocardiogram (each heartbeat jolts the body along
    its length, 0.3-1.5 mg at the shin, 48-72 beats a minute) and breathing (the mattress rises and falls
    0.2-0.8 mg, 11-18 breaths a minute)."""
    n = len(tau)
    dt = np.diff(tau, prepend=tau[0])
    hr = rng.uniform(0.8, 1.2) * (1.0 + 0.04 * np.sin(2 * np.pi * tau / rng.uniform(300, 900)))
    th = 2 * np.pi * np.cumsum(hr * dt)
    beat = np.sin(th) + 0.6 * np.sin(2 * th + 1.0) + 0.3 * np.sin(3 * th + 2.0)
    br = rng.uniform(11, 18) / 60.0
    breath = np.sin(2 * np.pi * np.cumsum(br * (1.0 + 0.1 * np.sin(tau / 97.0)) * dt))
    along = mount[0] / np.linalg.norm(mount[0])  # the shin axis in the sensor frame
    up = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)
    out = (heart_mg / 1000.0 / 1.2) * beat[:, None] * along[None, :]
    out += (breath_mg / 1000.0) * breath[:, None] * up
    return out if n else np.zeros((0, 3))


def _render(
    plan,
    sensor: Sensor,
    mount: np.ndarray,
    tau: np.ndarray,
    posture: Posture,
    slips: dict[int, float],
    seen: dict[int, float],
) -> np.ndarray:
    """True specific force in the sensor frame (g) at each sample instant; ``seen[id(motion)]`` is set to the
    largest change of the (noise-free) reading inside each labelled span, as the sensor sampled it."""
    f = np.empty((len(tau), 3))
    fs = sensor.fine_rate()
    prev = 0
    for m in plan.motions:
        a, b = m.span
        i0, i1 = int(np.searchsorted(tau, a)), int(np.searchsorted(tau, b))
        f[prev:i0] = gravity_in_shin(posture.elev, posture.roll) @ mount
        tg = a + np.arange(int((b - a) * fs) + 2) / fs
        tk = m.render(tg, posture)
        rot = shin_to_world(tk.elev, tk.roll, tk.yaw, tk.delta)
        fsh = specific_force(tg, rot, tk.pivot, tk.lever, tk.extra)
        used = mount
        if id(m) in slips:  # the strap turns round the shin while the leg turns over
            fsh = _spin(fsh, slips[id(m)] * minjerk((tg - m.start) / (m.end - m.start)))
            mount = rotvec_matrix(np.array([[slips[id(m)], 0.0, 0.0]]))[0] @ mount
        fse = sensor.analog(np.einsum("ni,ij->nj", fsh, used), fs)
        for c in range(3):
            f[i0:i1, c] = np.interp(tau[i0:i1], tg, fse[:, c])
        j0, j1 = int(np.searchsorted(tau, m.start)), int(np.searchsorted(tau, m.end))
        if j1 > j0:  # how far the reading moved from its still value before, as sampled (noise-free)
            seen[id(m)] = float(np.linalg.norm(f[j0:j1] - f[max(i0, j0 - 1)], axis=1).max())
        el, ro, ya = angles_of(rot[-1])
        posture = Posture(el, ro, ya, m.end_posture_name)
        prev = i1
    f[prev:] = gravity_in_shin(posture.elev, posture.roll) @ mount
    return f
