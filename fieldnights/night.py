"""``generate_night``: plan the night, draw the body on the fine grid, put the sensor and its clock on it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from detector.events import KINDS_COUNTED
from detector.synthetic import Night, TruthEvent
from fieldnights import bed, upright
from fieldnights.body import specific_force
from fieldnights.canvas import Canvas, baseline, fine_factor
from fieldnights.clock import Clock
from fieldnights.knobs import Knobs, stream
from fieldnights.periodic import periodic_flags
from fieldnights.plan import NightPlan, lying_posture, make_plan, nearest_turn
from fieldnights.schedule import Item
from fieldnights.sensor import electronics, filter_and_decimate, mount

TRUTH_KINDS = (*KINDS_COUNTED, "posture_change", "out_of_bed")
#: an event is resolvable when its peak change of the clean output exceeds this many noise SDs (and 2 LSB)
RESOLVABLE_SD = 5.0


def generate_night(seed: int, *, hours: float = 8.0, rate_hz: float = 52.0, **knobs: Any) -> Night:
    """A labelled night, deterministic from ``seed``. Knobs: see ``fieldnights.knobs.Knobs``."""
    unknown = set(knobs) - Knobs.names()
    if unknown:
        raise TypeError(f"fieldnights.generate_night: unknown knob(s) {', '.join(sorted(unknown))}")
    if not (hours > 0 and math.isfinite(hours)):
        raise ValueError(f"fieldnights: hours must be positive, got {hours!r}")
    if not (5.0 <= rate_hz <= 1000.0):
        raise ValueError(f"fieldnights: rate_hz {rate_hz!r} outside 5-1000 Hz")
    k = Knobs(**knobs).resolve(seed, hours)
    plan = make_plan(k, hours, seed)
    factor = fine_factor(rate_hz)
    fine_hz = rate_hz * factor
    cv = Canvas(plan.duration, fine_hz)
    roll_b, pitch_b, details = _draw(cv, plan, seed)
    bed.vital_signs(cv, stream(seed, "vitals"), k.heart_bpm, k.bcg_mg, k.breath_per_min)
    in_bed = np.ones(cv.n, dtype=bool)
    for it in plan.items:
        if it.kind == "out_of_bed":
            in_bed[cv.span(it.start, it.end)] = False
    f = specific_force(cv, roll_b, pitch_b, in_bed)
    del in_bed
    del roll_b, pitch_b
    tau = np.arange(cv.n) / fine_hz
    slips = [it for it in plan.items if it.kind == "strap_slip"]
    slip = (slips[0].start, slips[0].end - slips[0].start, slips[0].info["deg"]) if slips else None
    phase = int(stream(seed, "decimation").integers(0, factor))
    cutoff = k.bandwidth * rate_hz
    # the sensor's filter is linear and the mounting a rotation (a slip lasts seconds), so the two commute:
    # filter on the fine grid in the shin's frame, then turn the output samples into the sensor's axes
    clean = filter_and_decimate(f, factor, cutoff, fine_hz, phase)
    del f
    w = tau[phase::factor][: len(clean)]
    clean = mount(clean, w, np.asarray(k.mounting), slip)
    keep = w < plan.duration
    gaps = [it for it in plan.items if it.kind == "gap"]
    for g in gaps:
        keep &= ~((w >= g.start) & (w < g.end))
    clean, w = clean[keep], w[keep]
    lsb = 2.0 * k.range_g / 2**k.bits
    truth = sorted((it for it in plan.items if it.kind in TRUTH_KINDS), key=lambda it: it.start)
    for it in truth:
        details[id(it)].update(_resolvability(it, clean, w, k.noise_mg * 1e-3, lsb))
    xyz = electronics(
        clean,
        w,
        stream(seed, "electronics"),
        noise_mg=k.noise_mg,
        bias_mg=k.bias_mg,
        gain_error=k.gain_error,
        wander_mg=k.offset_wander_mg,
        range_g=k.range_g,
        bits=k.bits,
    )
    clock = Clock(k.start_unix, k.drift_ppm, k.wander_s, stream(seed, "clock"))
    t = clock.stamps(w, rate_hz, k.jitter, stream(seed, "jitter"))

    def on_clock(x: float) -> float:
        return float(clock.at(x))

    events = [TruthEvent(on_clock(it.start), on_clock(it.end), it.kind) for it in truth]
    flags = periodic_flags(events)
    events = [TruthEvent(e.start, e.end, e.kind, periodic=f) for e, f in zip(events, flags, strict=True)]
    confounders = sorted(
        (TruthEvent(on_clock(it.start), on_clock(it.end), it.kind) for it in plan.items if it.kind not in TRUTH_KINDS),
        key=lambda e: e.start,
    )
    params: dict[str, Any] = {
        **k.to_params(),
        "hours": hours,
        "rate_hz": rate_hz,
        "fine_rate_hz": fine_hz,
        "decimation": factor,
        "decimation_phase": phase,
        "filter_cutoff_hz": cutoff,
        "lsb_g": lsb,
        "sleep_start_s": plan.sleep_start,
        "sleep_end_s": plan.sleep_end,
        "rem_periods_s": [list(x) for x in plan.rem],
        "event_details": [details[id(it)] for it in truth],
        "confounder_details": [
            {"kind": it.kind, **_plain(it.info)}
            for it in sorted(plan.items, key=lambda x: x.start)
            if it.kind not in TRUTH_KINDS
        ],
    }
    return Night(
        t=t,
        xyz=xyz,
        events=events,
        sleep_start=on_clock(plan.sleep_start),
        sleep_end=on_clock(plan.sleep_end),
        rate_hz=rate_hz,
        seed=seed,
        confounders=confounders,
        params=params,
    )


def _draw(cv: Canvas, plan: NightPlan, seed: int) -> tuple[np.ndarray, np.ndarray, dict[int, dict]]:
    """Every item onto the canvas, in time order; the baseline posture from the keyframes it leaves."""
    rng = stream(seed, "postures")
    lying = plan.initial_posture
    keys: list[tuple[float, float, float]] = [(0.0, *lying)]
    details: dict[int, dict] = {}
    for it in sorted(plan.items, key=lambda x: x.start):
        info = it.info
        if it.kind == "posture_change":
            new = _new_posture(rng, lying, info["context"])
            keys += [(it.start, *lying), (it.end, *new)]
            info["from"], info["to"] = list(lying), list(new)
            lying = new
            bed.roll_over(cv, it)
        elif it.kind == "out_of_bed":
            trip, new = upright.keyframes(it, lying, lying_posture(rng))
            keys += trip
            info["from"], info["to"] = list(lying), list(new)
            lying = new
            upright.draw(cv, it)
        elif it.kind == "contraction":
            res = info["residual_deg"]
            new = (lying[0] + res[1], lying[1] + res[0])
            keys += [(it.end - info["release_s"], *lying), (it.end, *new)]
            lying = new
            bed.cramp(cv, it)
        elif it.kind == "leg_movement":
            bed.leg_movement(cv, it)
        elif it.kind == "twitch":
            bed.twitch(cv, it)
        elif it.kind == "partner":
            bed.partner(cv, it)
        if it.kind in TRUTH_KINDS:
            details[id(it)] = {"kind": it.kind, **_plain(info)}
    roll_b, pitch_b = baseline(keys, cv.n, cv.fine_hz)
    return roll_b, pitch_b, details


def _new_posture(rng: np.random.Generator, old: tuple[float, float], context: str) -> tuple[float, float]:
    """A lying posture clearly different from ``old`` (a roll-over turns the shin at least 30 deg)."""
    if context == "legs_down":
        return (float(old[0] + rng.normal(0, 5)), float(rng.normal(2.0, 3.0)))
    for _ in range(50):
        roll, pitch = lying_posture(rng)
        roll = nearest_turn(roll, old[0])
        if abs(roll - old[0]) >= 30.0:
            return roll, pitch
    return (old[0] + 90.0, old[1])


def _resolvability(it: Item, clean: np.ndarray, w: np.ndarray, noise_g: float, lsb: float) -> dict[str, Any]:
    """Peak change of the noise-free sensor output over the event against the level just before it."""
    a, b = np.searchsorted(w, [it.start, it.end + 0.2])
    p0, p1 = np.searchsorted(w, [it.start - 1.0, it.start - 0.05])
    if b <= a:
        return {"resolvable": False, "peak_change_mg": 0.0, "why": "no samples"}
    ref = clean[p0:p1].mean(axis=0) if p1 > p0 else clean[a]
    peak = float(np.max(np.linalg.norm(clean[a:b] - ref, axis=1)))
    need = max(RESOLVABLE_SD * noise_g, 2.0 * lsb)
    out: dict[str, Any] = {"resolvable": bool(peak >= need), "peak_change_mg": round(peak * 1e3, 3)}
    if not out["resolvable"]:
        out["why"] = f"peak change {peak * 1e3:.2f} mg < {need * 1e3:.2f} mg ({RESOLVABLE_SD:g} noise SD, 2 LSB)"
    return out


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, v in info.items():
        if key == "shape_seed":
            continue
        if isinstance(v, (np.floating, np.integer, np.bool_)):
            v = v.item()
        elif isinstance(v, float):
            v = round(v, 6)
        out[key] = v
    return out
