"""Shapes of what happens in bed, drawn onto the canvas as offsets of the shin's angles and as linear
accelerations. The parameters come from ``plan`` (``Item.info``); these functions only draw them.

Physiology behind each shape (README.md has the sources):
* twitch: a brief EMG burst (fragmentary myoclonus < 150 ms, hypnic jerk 75-250 ms) jolts the shin: a
  damped oscillation of the leg on the mattress and soft tissue, plus a small kick of the shin;
* leg movement (PLMS, restless movement): ankle dorsiflexion with or without knee/hip flexion, 0.5-10 s;
  at the shin a rise, a held tilt and a return, with a small jolt at the onset. Ankle-only movements
  barely move the shin (Terrill 2013: 39 % of EMG-scored LMs did not even move the toe sensor);
* roll-over: the shin turns about its long axis while the leg is lifted and dragged over the sheet;
* cramp: a sudden sustained calf contraction: the knee flexes and the leg is held in a strained
  position, with struggling and stretching movements inside, sometimes a tremor, then released;
* partner: the mattress bounces at its own resonance and tilts a little under the partner's weight.
"""

from __future__ import annotations

import numpy as np

from fieldnights.canvas import Canvas, damped, plateau, smooth_noise, smoothstep
from fieldnights.schedule import Item


def _rng(item: Item) -> np.random.Generator:
    return np.random.default_rng(int(item.info["shape_seed"]))


def _jolt(cv: Canvas, at: float, amp_g: float, freq: float, tau: float, direction, until: float) -> None:
    sl = cv.span(at, until)
    t = cv.times(sl) - at
    taper = 1.0 - smoothstep((t - (until - at - 0.04)) / 0.04)  # nothing left after ``until``
    cv.lin[sl] += (amp_g * damped(t, freq, tau) * taper)[:, None] * np.asarray(direction)[None, :]


def twitch(cv: Canvas, item: Item) -> None:
    i = item.info
    _jolt(cv, item.start, i["amp_g"], i["freq_hz"], i["tau_s"], i["direction"], item.end)
    sl = cv.span(item.start, item.end)
    t = cv.times(sl)
    d = item.end - item.start
    kick = plateau(t, item.start, item.end, 0.45 * d, 0.55 * d)
    cv.pitch[sl] += i["kick_deg"] * np.cos(i["kick_dir"]) * kick
    cv.roll[sl] += i["kick_deg"] * np.sin(i["kick_dir"]) * kick


def leg_movement(cv: Canvas, item: Item) -> None:
    i = item.info
    rng = _rng(item)
    sl = cv.span(item.start, item.end)
    t = cv.times(sl)
    shape = plateau(t, item.start + i["delay_s"], item.end, i["rise_s"], i["fall_s"])
    # the held position is not quite held: a slow unsteadiness of a few per cent, at most 3 deg
    size = min(3.0, i["wobble"] * float(np.hypot(i["pitch_deg"], i["roll_deg"])))
    wobble = size * smooth_noise(rng, len(t), cv.fine_hz, 0.7)
    cv.pitch[sl] += (i["pitch_deg"] + wobble) * shape
    cv.roll[sl] += i["roll_deg"] * shape
    _jolt(cv, item.start + i["delay_s"], i["jolt_g"], i["jolt_hz"], 0.08, i["jolt_dir"], item.end)
    if i.get("rustle_g", 0.0) > 0:  # an awake movement drags the leg over the sheet
        env = plateau(t, item.start, item.end, 0.3, 0.3)
        cv.lin[sl] += (
            i["rustle_g"]
            * env[:, None]
            * np.stack([smooth_noise(rng, len(t), cv.fine_hz, 4.0) for _ in range(3)], axis=1)
        )


def roll_over(cv: Canvas, item: Item) -> None:
    """The additive part of a posture change (the turn itself is in the baseline keyframes)."""
    i = item.info
    rng = _rng(item)
    sl = cv.span(item.start, item.end)
    t = cv.times(sl)
    d = item.end - item.start
    lift = plateau(t, item.start, item.end, 0.4 * d, 0.4 * d)
    cv.pitch[sl] += i["lift_deg"] * lift
    env = plateau(t, item.start, item.end, 0.25 * d, 0.25 * d)
    cv.lin[sl] += (
        i["rustle_g"] * env[:, None] * np.stack([smooth_noise(rng, len(t), cv.fine_hz, 3.0) for _ in range(3)], axis=1)
    )
    cv.vert[sl] += i["bounce_g"] * env * smooth_noise(rng, len(t), cv.fine_hz, 3.5)


def cramp(cv: Canvas, item: Item) -> None:
    """The additive part of a cramp: the held strained position, struggling, stretching, tremor."""
    i = item.info
    rng = _rng(item)
    sl = cv.span(item.start, item.end)
    t = cv.times(sl)
    hold = plateau(t, item.start, item.end, i["onset_s"], i["release_s"])
    wob_p = i["wobble_deg"] * smooth_noise(rng, len(t), cv.fine_hz, i["wobble_hz"])
    wob_r = i["wobble_deg"] * smooth_noise(rng, len(t), cv.fine_hz, i["wobble_hz"])
    cv.pitch[sl] += hold * (i["hold_pitch_deg"] + wob_p)
    cv.roll[sl] += hold * (i["hold_roll_deg"] + wob_r)
    for at, dur, dp, dr in i["efforts"]:  # stretching / struggling movements inside the cramp
        bump = plateau(t, at, at + dur, 0.35 * dur, 0.45 * dur)
        cv.pitch[sl] += dp * bump
        cv.roll[sl] += dr * bump
    # the jolt of the sudden onset
    _jolt(cv, item.start, i["onset_jolt_g"], 5.0, 0.12, i["jolt_dir"], item.start + 1.0)
    if i["tremor_g"] > 0:
        f = i["tremor_hz"] * (1.0 + 0.04 * smooth_noise(rng, len(t), cv.fine_hz, 0.3))
        phase = 2 * np.pi * np.cumsum(f) / cv.fine_hz
        drive = 1.0 + 0.5 * np.sin(2 * np.pi * 1.4 * (t - item.start))  # common drive near 1.4 Hz
        fade = np.exp(-(t - item.start) / max(i["tremor_fade_s"], 1.0))
        amp = i["tremor_g"] * hold * drive * (0.4 + 0.6 * fade)
        cv.lin[sl] += (amp * np.sin(phase))[:, None] * np.asarray(i["tremor_dir"])[None, :]


def partner(cv: Canvas, item: Item) -> None:
    """Mattress bounce (vertical, low frequency) and a small tilt that the foam gives back slowly."""
    i = item.info
    rng = _rng(item)
    sl = cv.span(item.start, item.end)
    t = cv.times(sl)
    env = plateau(t, item.start, item.end, 0.3 * (item.end - item.start), 0.3 * (item.end - item.start))
    cv.vert[sl] += i["bounce_g"] * env * smooth_noise(rng, len(t), cv.fine_hz, i["bounce_hz"])
    rec = cv.span(item.start, item.end + 5 * i["recover_s"])
    tr = cv.times(rec)
    step = smoothstep((tr - item.start) / (item.end - item.start)) * np.exp(
        -np.clip(tr - item.end, 0.0, None) / i["recover_s"]
    )
    cv.pitch[rec] += i["tilt_pitch_deg"] * step
    cv.roll[rec] += i["tilt_roll_deg"] * step


def vital_signs(cv: Canvas, rng: np.random.Generator, heart_bpm: float, bcg_mg: float, breath_per_min: float) -> None:
    """Heartbeat micro-motion (ballistocardiogram reaching the shin) and breathing, all night long.

    Drawn on a grid 8x coarser than the canvas (still >= 25 Hz, enough for the beat's 3rd harmonic) and
    interpolated onto it."""
    step = 8
    coarse_hz = cv.fine_hz / step
    tc = np.arange((cv.n + step - 1) // step + 1) / coarse_hz
    knots = max(2, int(tc[-1] / 30.0) + 2)  # slow heart-rate and breathing-rate variation over minutes
    kt = np.linspace(0.0, tc[-1], knots)
    hr = heart_bpm / 60.0 * (1.0 + 0.05 * np.interp(tc, kt, rng.normal(size=knots)))
    br = breath_per_min / 60.0 * (1.0 + 0.08 * np.interp(tc, kt, rng.normal(size=knots)))
    ph = 2 * np.pi * np.cumsum(hr) / coarse_hz
    # a BCG beat: a sharp I-J-K complex, i.e. a few harmonics of the heart rate
    beat = 1e-3 * bcg_mg * (np.sin(ph) + 0.6 * np.sin(2 * ph + 0.8) + 0.3 * np.sin(3 * ph + 1.9)) / 1.5
    bounce = 0.3e-3 * bcg_mg * np.sin(2 * ph + 0.3)
    breath = 0.01 * np.sin(2 * np.pi * np.cumsum(br) / coarse_hz)
    tau = np.arange(cv.n) / cv.fine_hz
    cv.lin[:, 0] += np.interp(tau, tc, beat)
    cv.vert += np.interp(tau, tc, bounce)
    cv.pitch += np.interp(tau, tc, breath)
