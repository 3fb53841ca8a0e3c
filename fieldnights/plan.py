"""The night's structure and what happens when, in seconds from the start of the recording.

Lying awake first (restless shifts and leg movements, maybe reading with the legs still), sleep onset
(hypnic jerks around it), sleep in 80-110 min cycles ending in REM periods (periodic leg movements in
NREM, twitch clusters in REM, roll-overs mostly around the REM periods), cramps with what follows them,
trips to the toilet, and maybe lying awake after the final awakening. Every activity gets a free spot on
the time line (``schedule.Timeline``): no two events overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fieldnights.knobs import Knobs
from fieldnights.schedule import Item, Timeline

Window = tuple[float, float]


@dataclass
class NightPlan:
    duration: float
    sleep_start: float
    sleep_end: float
    initial_posture: tuple[float, float]
    items: list[Item] = field(default_factory=list)
    rem: list[Window] = field(default_factory=list)


def logu(rng: np.random.Generator, a: float, b: float) -> float:
    return float(np.exp(rng.uniform(np.log(a), np.log(b))))


def unit(rng: np.random.Generator) -> list[float]:
    v = rng.normal(size=3)
    return (v / np.linalg.norm(v)).tolist()


def nearest_turn(angle: float, ref: float) -> float:
    """``angle`` plus whole turns, as close to ``ref`` as can be: a shin turns the short way round."""
    return float(angle + 360.0 * round((ref - angle) / 360.0))


def lying_posture(rng: np.random.Generator) -> tuple[float, float]:
    """(roll, pitch) of the shin lying in bed: on the back, either side, or prone (assumed shares)."""
    r = rng.random()
    if r < 0.4:
        return float(rng.normal(0.0, 12.0)), float(rng.normal(3.0, 4.0))
    if r < 0.9:
        side = 1.0 if r < 0.65 else -1.0
        return float(side * rng.normal(80.0, 15.0)), float(rng.normal(6.0, 8.0))
    return float(180.0 + rng.normal(0.0, 15.0)), float(rng.normal(-3.0, 4.0))


class Planner:
    def __init__(self, knobs: Knobs, hours: float, seed: int) -> None:
        self.k = knobs
        self.rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7001])
        self.dur = hours * 3600.0
        self.tl = Timeline(2.0, self.dur - 2.0)
        self.items: list[Item] = []

    # -- helpers -------------------------------------------------------------------------------
    def _seed(self) -> int:
        return int(self.rng.integers(0, 2**62))

    def _add(self, start: float, end: float, kind: str, **info) -> Item:
        info["shape_seed"] = self._seed()
        it = Item(start, end, kind, info)
        self.items.append(it)
        return it

    def _count(self, mean: float) -> int:
        return int(self.rng.poisson(max(mean, 0.0)))

    # -- shapes' parameters --------------------------------------------------------------------
    def twitch_info(self, context: str) -> tuple[float, dict]:
        r = self.rng
        if context == "hypnic":
            amp, freq, tau, kick = logu(r, 0.15, 1.5), r.uniform(4, 9), r.uniform(0.04, 0.1), r.uniform(1, 8)
        elif context == "rem":
            amp, freq, tau, kick = logu(r, 0.005, 0.15), r.uniform(5, 14), r.uniform(0.02, 0.06), logu(r, 0.05, 1.5)
        else:  # fragmentary myoclonus in NREM
            amp, freq, tau, kick = logu(r, 0.004, 0.25), r.uniform(5, 14), r.uniform(0.02, 0.06), logu(r, 0.05, 1.5)
        d = float(np.clip(4 * tau + r.uniform(0.02, 0.08), 0.12, 0.45))
        info = dict(
            context=context,
            amp_g=amp,
            freq_hz=freq,
            tau_s=tau,
            direction=unit(r),
            kick_deg=kick,
            kick_dir=r.uniform(0, 2 * np.pi),
        )
        return d, info

    def lm_duration(self, median: float, sigma: float = 0.5) -> float:
        return float(np.clip(np.exp(self.rng.normal(np.log(median), sigma)), 0.55, 9.5))

    def lm_info(self, context: str, dur: float) -> dict:
        r, k = self.rng, self.k
        ankle = context in ("plms", "isolated") and r.random() < k.lm_ankle_only
        amp = k.lm_amp_deg * float(np.exp(r.normal(0.0, 0.5)))
        if context == "restless":
            amp *= r.uniform(1.5, 3.0)
        if context == "plms" and r.random() < 0.15:  # with an arousal: a bigger movement
            amp *= r.uniform(1.5, 3.0)
            context = "plms_arousal"
        amp = min(amp, 45.0)  # drawing the knee up is about the most a leg movement in bed turns the shin
        if ankle:
            amp *= r.uniform(0.03, 0.15)
        beta = r.normal(0.0, 0.5)
        sign = 1.0 if r.random() < 0.85 else -1.0  # mostly knee/hip flexion
        return dict(
            context=context,
            ankle_only=bool(ankle),
            pitch_deg=sign * amp * np.cos(beta),
            roll_deg=amp * np.sin(beta),
            delay_s=r.uniform(0.02, 0.08),
            rise_s=min(r.uniform(0.15, 0.7), 0.35 * dur),
            fall_s=min(r.uniform(0.2, 1.2), 0.4 * dur),
            wobble=r.uniform(0.03, 0.15),
            jolt_g=logu(r, 0.002, 0.02) if ankle else logu(r, 0.003, 0.05),
            jolt_hz=r.uniform(3, 8),
            jolt_dir=unit(r),
            rustle_g=r.uniform(0.01, 0.05) if context == "restless" else 0.0,
        )

    def roll_info(self, context: str) -> tuple[float, dict]:
        r = self.rng
        d = float(r.uniform(2.0, 6.0))
        return d, dict(
            context=context, lift_deg=r.uniform(3, 20), rustle_g=logu(r, 0.02, 0.15), bounce_g=logu(r, 0.005, 0.04)
        )

    def cramp_info(self, start: float, dur: float) -> dict:
        r, k = self.rng, self.k
        onset, release = r.uniform(0.4, 2.0), r.uniform(1.0, 4.0)
        # struggling and stretching movements, one after another (about one per 20 s)
        efforts = []
        t = start + onset + float(r.uniform(0.5, 10.0))
        while True:
            d = float(r.uniform(1.5, 6.0))
            if t + d > start + dur - release - 0.5:
                break
            efforts.append((t, d, float(r.normal(0, 15)), float(r.normal(0, 8))))
            t += d + float(r.uniform(3.0, 30.0))
        tremor = r.random() < k.cramp_tremor
        tdir = np.array(unit(r)) * np.array([0.3, 1.0, 1.0])
        return dict(
            onset_s=onset,
            release_s=release,
            hold_pitch_deg=r.uniform(12, 50) * (1.0 if r.random() < 0.8 else -0.5),
            hold_roll_deg=r.normal(0, 12),
            wobble_deg=r.uniform(0.8, 4.0),
            wobble_hz=r.uniform(0.3, 1.5),
            efforts=efforts,
            onset_jolt_g=logu(r, 0.02, 0.3),
            jolt_dir=unit(r),
            tremor_g=logu(r, 0.003, 0.06) if tremor else 0.0,
            tremor_hz=r.uniform(6, 14),
            tremor_fade_s=r.uniform(10, 120),
            tremor_dir=(tdir / np.linalg.norm(tdir)).tolist(),
            residual_deg=(float(r.normal(0, 3)), float(r.normal(0, 3))),
        )

    def trip_phases(self, why: str) -> list[tuple[str, float]]:
        r = self.rng
        ph = [
            ("swing_out", r.uniform(2, 5)),
            ("sit", r.uniform(3, 40) if why == "toilet" else r.uniform(2, 15)),
            ("stand_up", r.uniform(1.2, 3)),
        ]
        if why == "toilet":
            walk = r.uniform(60, 180)
            share = r.uniform(0.35, 0.65)
            ph += [("walk", walk * share), ("toilet", r.uniform(20, 150)), ("walk", walk * (1 - share))]
        else:  # standing on the cramped leg to stretch the calf, maybe a few steps
            ph += [("stretch", r.uniform(15, 60))]
            if r.random() < 0.6:
                ph += [("walk", r.uniform(10, 60))]
        ph += [("sit_down", r.uniform(1.2, 2.5)), ("sit", r.uniform(3, 30)), ("lie_back", r.uniform(2, 5))]
        return ph

    def trip_info(self, start: float, phases: list[tuple[str, float]], why: str) -> dict:
        r = self.rng
        out, t = [], start
        for name, d in phases:
            out.append((name, float(t), float(t + d)))
            t += d
        seated_toilet = r.random() < 0.6
        poses = {
            "sit": (float(r.normal(0, 15)), float(r.uniform(70, 90))),
            "stand": (float(r.normal(0, 15)), float(r.uniform(86, 94))),
            "toilet": (float(r.normal(0, 15)), float(r.uniform(65, 85) if seated_toilet else r.uniform(86, 94))),
            "stretch": (float(r.normal(0, 10)), float(90 - r.uniform(10, 25))),
        }
        gait = dict(
            stride_hz=r.uniform(0.75, 0.95),
            stride_cv=r.uniform(0.01, 0.03),
            phase0=r.uniform(0, 2 * np.pi),
            a1_deg=r.uniform(24, 32),
            a2_deg=r.uniform(5, 10),
            a3_deg=r.uniform(1, 4),
            c2=r.uniform(0, 2 * np.pi),
            c3=r.uniform(0, 2 * np.pi),
            c4=r.uniform(0, 2 * np.pi),
            c5=r.uniform(0, 2 * np.pi),
            roll_deg=r.uniform(1, 5),
            bounce_g=r.uniform(0.12, 0.3),
            heel_g=r.uniform(0.5, 2.5),
            heel_hz=r.uniform(14, 25),
        )
        return dict(context=why, phases=out, poses=poses, gait=gait)

    # -- the night -----------------------------------------------------------------------------
    def make(self) -> NightPlan:
        k, r, dur = self.k, self.rng, self.dur
        awake0 = min(k.awake_start_min * 60.0, 0.3 * dur)
        awake1 = min(k.awake_end_min * 60.0, 0.15 * dur)
        sleep_start = max(awake0, 30.0)
        sleep_end = dur - 1.0 if awake1 <= 0 else dur - awake1
        sleep: list[Window] = [(sleep_start, sleep_end)]
        rem, nrem = self._cycles(sleep_start, sleep_end)
        reading = k.reading and awake0 >= 8 * 60.0
        initial = (
            (float(r.normal(0, 8)), float(r.uniform(20, 40) if r.random() < 0.6 else r.uniform(0, 4)))
            if reading
            else lying_posture(r)
        )
        plan = NightPlan(dur, sleep_start, sleep_end, initial, self.items, rem)
        # 1. a data gap, in sleep
        if k.gap_s > 0:
            s = self.tl.place(r, k.gap_s, nrem, margin=5.0)
            if s is not None:
                self._add(s, s + k.gap_s, "gap")
        # 2. trips to the toilet (not in the first half hour of sleep)
        late = [(max(a, sleep_start + 1800.0), b) for a, b in sleep]
        awake: list[Window] = []
        for _ in range(k.toilet_trips):
            ph = self.trip_phases("toilet")
            d = sum(x for _, x in ph)
            s = self.tl.place(r, d, late, margin=15.0)
            if s is not None:
                self._add(s, s + d, "out_of_bed", **self.trip_info(s, ph, "toilet"))
                awake += [(s - 150.0, s - 3.0), (s + d + 3.0, s + d + r.uniform(120, 900))]
        # 3. cramps and what follows them
        for _ in range(k.cramps):
            self._cramp(sleep, awake)
        # 4. periodic leg movements in NREM
        if k.plm:
            for _ in range(max(1, self._count(k.plm_series_per_h * (sleep_end - sleep_start) / 3600.0))):
                self._plm_series(nrem or sleep)
        # 5. lying awake: reading with the legs still, restless shifts and movements
        pre0 = 2.0
        if reading:
            rd = float(r.uniform(0.3, 0.7) * awake0)
            self.tl.reserve(0.0, rd)
            d, info = self.roll_info("legs_down")
            if self.tl.free(rd, rd + d):
                self.tl.reserve(rd, rd + d)
                self._add(rd, rd + d, "posture_change", **info)
            pre0 = rd + d + 2.0
        pre = [(pre0, sleep_start - 5.0)] if sleep_start - 5.0 > pre0 else []
        post = [(sleep_end + 3.0, dur - 2.0)] if awake1 > 0 else []
        for windows, scale in ((pre, 1.0), (post, 0.7), (awake, 0.8)):
            minutes = sum(max(0.0, b - a) for a, b in windows) / 60.0
            if minutes <= 0:
                continue
            for _ in range(self._count(minutes / 7.0) + (1 if minutes > 3 else 0)):
                d, info = self.roll_info("awake")
                s = self.tl.place(r, d, windows, margin=2.0)
                if s is not None:
                    self._add(s, s + d, "posture_change", **info)
            for _ in range(self._count(k.restless_lm_per_min * minutes * scale)):
                d = self.lm_duration(2.5, 0.6)
                s = self.tl.place(r, d, windows, margin=1.5)
                if s is not None:
                    self._add(s, s + d, "leg_movement", **self.lm_info("restless", d))
        # 6. hypnic jerks around sleep onset
        for _ in range(k.hypnic_jerks):
            d, info = self.twitch_info("hypnic")
            s = self.tl.place(r, d, [(sleep_start - 60.0, sleep_start + 30.0)], margin=1.0)
            if s is not None:
                self._add(s, s + d, "twitch", **info)
        # 7. roll-overs in sleep, half of them around the REM periods
        hours = (sleep_end - sleep_start) / 3600.0
        near_rem = [w for a, b in rem for w in ((a - 180.0, a + 60.0), (b - 60.0, b + 180.0))]
        for _ in range(self._count(k.posture_per_h * hours)):
            d, info = self.roll_info("sleep")
            windows = near_rem if near_rem and r.random() < 0.5 else sleep
            s = self.tl.place(r, d, [(max(a, sleep_start), min(b, sleep_end)) for a, b in windows], margin=2.0)
            if s is not None:
                self._add(s, s + d, "posture_change", **info)
        # 8. isolated leg movements, mostly in NREM
        for _ in range(self._count(k.isolated_lm_per_h * hours)):
            d = self.lm_duration(1.8)
            windows = rem if rem and r.random() < 0.15 else (nrem or sleep)
            s = self.tl.place(r, d, windows, margin=1.5)
            if s is not None:
                self._add(s, s + d, "leg_movement", **self.lm_info("isolated", d))
        # 9. twitches: clusters in REM, isolated ones anywhere in sleep
        for a, b in rem:
            for _ in range(self._count(k.rem_twitch_clusters * (b - a) / 1200.0)):
                self._twitch_cluster([(a, b)])
        for _ in range(self._count(k.twitch_per_h * hours)):
            d, info = self.twitch_info("myoclonus")
            s = self.tl.place(r, d, sleep, margin=1.0)
            if s is not None:
                self._add(s, s + d, "twitch", **info)
        # 10. things that are not events
        self._confounders()
        return plan

    def _cycles(self, s: float, e: float) -> tuple[list[Window], list[Window]]:
        r, rem, nrem = self.rng, [], []
        t, i = s, 0
        while t < e:
            c = self.k.cycle_min * 60.0 * r.uniform(0.9, 1.1)
            rl = min(40.0, 8.0 + 7.0 * i) * 60.0 * r.uniform(0.8, 1.2)
            a, b = t + c - rl, min(t + c, e)
            nrem.append((t, min(a, e)))
            if a < e:
                rem.append((a, b))
            t, i = t + c, i + 1
        return rem, [w for w in nrem if w[1] > w[0]]

    def _cramp(self, sleep: list[Window], awake: list[Window]) -> None:
        r, k = self.rng, self.k
        d = float(np.clip(np.exp(r.normal(np.log(60.0), 0.8)), 12.0, 480.0))
        getup = r.random() < k.cramp_getup
        after = float(r.uniform(3, 30))
        if getup:
            ph = self.trip_phases("cramp")
            tail = after + sum(x for _, x in ph)
        else:
            roll = r.random() < 0.6
            rd, rinfo = self.roll_info("after_cramp")
            after = float(r.uniform(3, 40))
            tail = after + rd if roll else 0.0
        s = self.tl.place(r, d + tail, sleep, margin=5.0)
        if s is None:
            return
        self._add(s, s + d, "contraction", **self.cramp_info(s, d))
        if getup:
            self._add(s + d + after, s + d + tail, "out_of_bed", **self.trip_info(s + d + after, ph, "cramp"))
        elif tail > 0:
            self._add(s + d + after, s + d + tail, "posture_change", **rinfo)
        awake.append((s + d + tail + 3.0, s + d + tail + r.uniform(60, 600)))

    def _plm_series(self, windows: list[Window]) -> None:
        r, k = self.rng, self.k
        n = int(np.clip(round(np.exp(r.normal(np.log(14.0), 0.6))), 4, 90))
        d_med = r.uniform(1.2, 3.0)
        durs = [self.lm_duration(d_med) for _ in range(n)]
        onsets = [0.0]
        for i in range(1, n):
            imi = k.plm_imi_s * float(np.exp(r.normal(0.0, 0.2)))
            if r.random() < 0.04:  # a skipped beat: the series may break here, as in real recordings
                imi *= r.uniform(1.8, 3.0)
            onsets.append(onsets[-1] + max(imi, durs[i - 1] + 2.0))
        length = onsets[-1] + durs[-1]
        arousal = r.random() < 0.12
        if arousal:
            rd, rinfo = self.roll_info("arousal")
            gap = float(r.uniform(2, 8))
            length += gap + rd
        s = self.tl.place(r, length, windows, margin=3.0)
        if s is None:
            return
        for o, d in zip(onsets, durs, strict=True):
            self._add(s + o, s + o + d, "leg_movement", **self.lm_info("plms", d))
        if arousal:
            a = s + onsets[-1] + durs[-1] + gap
            self._add(a, a + rd, "posture_change", **rinfo)

    def _twitch_cluster(self, windows: list[Window]) -> None:
        r = self.rng
        parts = [self.twitch_info("rem") for _ in range(int(r.integers(2, 9)))]
        onsets = [0.0]
        for d, _ in parts[:-1]:
            onsets.append(onsets[-1] + max(float(r.uniform(1.2, 6.0)), d + 1.0))
        s = self.tl.place(r, onsets[-1] + parts[-1][0], windows, margin=1.0)
        if s is None:
            return
        for o, (d, info) in zip(onsets, parts, strict=True):
            self._add(s + o, s + o + d, "twitch", **info)

    def _confounders(self) -> None:
        r, k = self.rng, self.k
        if k.partner:
            for _ in range(self._count(k.partner_per_h * self.dur / 3600.0)):
                d = float(r.uniform(2, 15))
                s = float(r.uniform(2.0, self.dur - d - 2.0))
                self._add(
                    s,
                    s + d,
                    "partner",
                    bounce_g=logu(r, 0.003, 0.04),
                    bounce_hz=r.uniform(1.5, 5.0),
                    tilt_pitch_deg=r.normal(0, 0.5),
                    tilt_roll_deg=r.normal(0, 0.8),
                    recover_s=r.uniform(20, 200),
                )
        if k.strap_slip:
            moves = [it for it in self.items if it.kind in ("posture_change", "out_of_bed")]
            if moves:
                m = moves[int(r.integers(len(moves)))]
                s = float(m.start + r.uniform(0, 0.5) * (m.end - m.start))
                d = float(r.uniform(0.5, 3.0))
                self._add(s, s + d, "strap_slip", deg=float(r.choice([-1, 1]) * r.uniform(4, 25)))


def make_plan(knobs: Knobs, hours: float, seed: int) -> NightPlan:
    return Planner(knobs, hours, seed).make()
