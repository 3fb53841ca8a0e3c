"""Active frames -> classified episodes, and the WASM periodic-series rule.

Segmentation. A frame belongs to an event when it is *active* (jerk or rotation above the noise
floor) or when the leg is *held* away from its resting posture (more than :func:`hold_deg` from the
reference orientation: three times the orientation noise, within 0.3-0.7 deg) without having
settled. The reference is the orientation of the last *settled* stretch: ``SETTLE_S`` without
activity or strain and without drifting. Event frames less than 0.5 s apart belong together
(AASM/WASM: a movement ends at the start of at least 0.5 s below threshold). An event's extent is
that of its active frames, corrected for how far each feature's window smears an edge, and widened
to where the shin was displaced from its posture before (onset) and from the one after (offset)
(:mod:`detector.extent`). An event is decided once ``POST`` frames after it exist.

Classification (brief: twitch < 0.5 s, leg movement 0.5-10 s, contraction > 10 s):
- the leg upright (shin near vertical: sitting up, standing, walking) -> ``out_of_bed``;
- a lasting change of orientation over ``POSTURE_DEG`` (rolling over) -> ``posture_change``;
- longer than 10 s -> ``contraction`` (a held posture with strain: the cramp);
- shorter than 0.5 s -> ``twitch``;
- otherwise a ``leg_movement`` if the shin rotated (``LM_MIN_ROT_DEG``; less, down to the hold bound,
  when most of the spread lies across gravity, a mattress bouncing under the leg moves it along
  gravity, and most of the turn came within 0.4 s, as an LM's abrupt EMG onset turns it, not the
  slow sway of a shin while sitting up) or the leg's own jerk held for most of it, else
  mattress/partner vibration (dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detector.bounce import AFTER_S, PERP_FRAC_MAX, RING_MIN_SAMPLES, RING_SKIP, mattress_bounce, rings_on
from detector.epochs import EPOCH_S
from detector.events import Episode
from detector.extent import displaced_span
from detector.frames import FRAME_S
from detector.gait import gait
from detector.getting_up import GAIT_MIN_S, GettingUp
from detector.periodic import SeriesRule, role
from detector.posture import UPRIGHT_DEG, ShinAxis, elevation_deg
from detector.thresholds import K_SD, K_TILT, Scored, concat_scored, empty_scored, sd_factor
from detector.vectors import angle_rad, finite, median, norm_rows, state_array, state_item, state_part, state_value

#: How far each feature's window reaches past an event's onset and offset (s), taken back from
#: the threshold crossings: sd over a 0.3 s window, tilt across 0.4 s of 0.3 s means.
SD_SMEAR_S = (0.2, 0.2)
TILT_SMEAR_S = (0.35, 0.35)
MIN_DUR_S = 0.05
SLOW_HALF = 3  # frames each side of the ~1 s mean orientation
SLOW_ROT_DEG = 1.0
ISO_FRAMES = 10
EXTENT_MAX_S = 2.0
MERGE_FRAMES = 5  # < 0.5 s between event frames merges them
POST_FRAMES = 20  # offset rule + time to read the posture afterwards
DECIDE_FRAMES = POST_FRAMES + 4  # frames after an event before it is decided (post + smoothing)
PRE_FRAMES = 10
SETTLE_FRAMES = 40  # 4 s
SETTLE_DEG = 1.0
#: The leg is held away from its posture beyond ``HOLD_NOISE_K`` x the tilt floor (the median angle
#: between two 0.3 s means, the spread of one mean against the settled reference too), within
#: ``HOLD_MIN_DEG``-``HOLD_DEG``: see :func:`hold_deg`.
HOLD_DEG = 0.7
HOLD_NOISE_K = 3.0
HOLD_MIN_DEG = 0.3
CRAMP_HOLD_DEG = 1.5  # a cramp holds the foot and shin turned at least this far
SPLIT_GAP_FRAMES = 30  # 3 s
CRAMP_GAP_S = 30.0
CRAMP_PAUSE_S = 1.5
CRAMP_JOIN_DEG = 3.0  # still turned this far from before the first movement: the cramp holds
CRAMP_JOIN_GAP_S = 10.0
MIN_ACTIVE_FRAMES = 2  # a real jerk spans at least two 0.3 s windows
STRAIN_FRAMES = 20  # 2 s rolling mean of sd_perp / floor
STRAIN_K = 1.25
HIST_FRAMES = max(SETTLE_FRAMES, STRAIN_FRAMES) + PRE_FRAMES
POSTURE_DEG = 35.0
#: Turning over takes the leg past ``POSTURE_DEG`` within this (s) of starting to turn: a cramp that
#: let go by turning over (fieldnights: the sleeper rolls over within 4 s of the cramp's release) was
#: one event ending in a posture change, and was called only that.
ROLL_S = 2.0
TWITCH_MAX_S = 0.5
LM_MAX_S = 10.0
ABRUPT_FRAC = 0.5
LM_MIN_ROT_DEG = 0.7  # a leg movement turns the shin (seen by ~1 s means)
CRAMP_MIN_ROT_DEG = 1.5  # a cramp holds the foot and shin turned
#: A leg movement the shin barely turns with (an ankle dorsiflexion, the other foot rubbing the shin)
#: still shows the leg's own muscle working for its whole length: the AASM/WASM LM is EMG held above
#: the resting level for 0.5-10 s, and from the shin that is a jerk perpendicular to gravity (which a
#: mattress shaken by someone else hardly makes) above the jerk threshold in at least half the event's
#: frames (its median frame at ``LM_SUSTAINED_K`` x the threshold). A partner's jolt crosses the
#: threshold in a frame or two, not for most of the event.
LM_SUSTAINED_K = 1.0
TWITCH_ISO_MAX = 1.35  # median jerk level (x floor) in the second around a twitch
#: A twitch's jerk crosses the full window's jerk threshold (``K_SD`` x the floor) in at least one
#: frame: a candidate active by the 0.4 s tilt alone is a slow sway, not a jerk. Until session 9 this
#: stood at 2.5, to drop a partner's jolts that just crossed the threshold; ``bounce.rings_on`` now
#: tells most of those by the mattress ringing on after them, and the 2.5 dropped gentle twitches of
#: the leg (tuning nights: field 11 of 60 found, physio 2 of 431, for 2 partner jolts and 3 others).
#: Under ``bounce.RING_MIN_SAMPLES`` a window (12.5 Hz), where ``rings_on`` cannot tell a partner's
#: jolt, the bound stays ``TWITCH_MIN_JERK_SLOW`` (K_SD there: physio 12.5 Hz any-episode F1 0.945 ->
#: 0.943 on tuning nights, 0.923 -> 0.920 held-out, two more false twitches each).
TWITCH_MIN_JERK = K_SD
TWITCH_MIN_JERK_SLOW = 2.5
#: A twitch that lifts the shin straight up (a jerk of the hip or knee) moves the reading along
#: gravity, which ``sd_perp`` leaves out so that a bed partner's bounce is not taken for the leg
#: (:mod:`detector.bounce`). From 26 Hz most such twitches still cross the jerk threshold across
#: gravity; at 12.5 Hz, a window of 3-4 samples and a twitch of one to three, they do not (session 12,
#: ``benchmarks/misses.py``: of the resolvable twitches missed on held-out physio 12.5 Hz nights, 21 of
#: 30 moved mostly along gravity). Under ``RING_MIN_SAMPLES`` a window, a frame whose spread along
#: gravity stands ``K_ALONG`` x its floor (one axis of noise: ``floor_sd / sqrt(2)``) x ``sd_factor``
#: is active, and a short event with no jerk across gravity is a twitch only if that spread stays under
#: ``ALONG_QUIET_K`` x its floor for ``ALONG_BEFORE_FRAMES`` before it and, from ``RING_SKIP`` frames
#: past its last active frame, ``ALONG_AFTER_FRAMES`` after: a partner's jolt comes with more bumps
#: and the mattress ringing. Chosen on the tuning nights (15 of each generator, 12.5 Hz among their
#: rates): such candidates at 12.5 Hz were 12 twitches and 65 partner jolts, of which 6 and 1 stand
#: alone so; from 26 Hz they were 23 twitches and 226 partner jolts, not told apart by these measures.
#: From 26 Hz (session 13) the rule holds only while no bed partner has been seen: fewer than
#: ``PARTNER_MIN`` signs of one within ``PARTNER_WINDOW_S`` before the event. A sign is a short jolt
#: along gravity that does not stand alone, a jolt after which the mattress bounced or rang on
#: (``bounce``), or a vibration dropped as the mattress's. Most people sleep alone on some nights, and a
#: partner who moves shows within the hour (2-10 movements an hour in the generators). Tuning nights,
#: such candidates that stand alone with no partner seen: field 10 twitches, physio 2 partner jolts,
#: synthetic 1 twitch (with one sign enough to block, 6 of those 10 field twitches were lost to the
#: leg's own vibration read as the mattress's on nights without a partner). At 12.5 Hz the partner
#: test cost more than it saved (any-episode F1 there: physio tune 0.943 -> 0.942, held 0.933 -> 0.931).
#: For its first ``PARTNER_WATCH_S`` a recording has had no time to show a partner: the candidates
#: taken for twitches then were partner jolts (tuning and held-out nights: 2 in the first minute, and
#: none of the 23 twitches before 18 minutes; on the accuracy floor's 1-hour nights 2 more at 7-8 minutes).
K_ALONG = 4.0
ALONG_QUIET_K = 1.8
ALONG_BEFORE_FRAMES = 15
ALONG_AFTER_FRAMES = 30
PARTNER_WINDOW_S = 3600.0
PARTNER_MIN = 2
PARTNER_WATCH_S = 600.0
#: ... and there a jolt along gravity within this of an active or held frame joins no event: it is an
#: event of its own (a twitch, or nothing), never a part of the leg's movements (session 13: counted as
#: activity inside a held event, such frames broke a real recording's cramp-like group apart).
JOLT_APART_FRAMES = MERGE_FRAMES + round(AFTER_S / FRAME_S)
#: A twitch is told against a resting leg's floor, the sensor's noise (1-6 mg an axis in the three
#: generators). A floor over this (g) is of movement: a recording that begins with a walk has the
#: walk's floor for its first minutes (0.23 g on the accuracy floor test's synthetic 26 Hz night; since
#: block medians enter the floor capped, ``thresholds.FLOOR_MAX_SD``, at most 0.04 g), and there a heel
#: strike stands twice above it. It changes nothing on the benchmark nights (tune, held).
TWITCH_MAX_FLOOR_G = 0.03


def _crossing(fidx: np.ndarray, ratio: np.ndarray, k: int, step: int) -> float:
    """Time (s) where ``ratio`` crosses 1 between frame k and its neighbour k+step (centres)."""
    j = k + step
    x = fidx[k]
    if 0 <= j < len(ratio) and ratio[j] <= 1.0 < ratio[k] and fidx[j] == fidx[k] + step:
        x = fidx[k] + step * (ratio[k] - 1.0) / (ratio[k] - ratio[j])
    return (x + 0.5) * FRAME_S


def _span(
    fidx: np.ndarray, ratio: np.ndarray, inner: np.ndarray, smear: tuple[float, float]
) -> tuple[float, float] | None:
    """Onset and offset (s) of the ``inner`` frames where ``ratio`` is over 1: its crossings, each
    taken back by the feature window's ``smear`` (onset, offset); None when it never is."""
    on = np.flatnonzero((ratio > 1.0) & inner)
    if not len(on):
        return None
    return _crossing(fidx, ratio, int(on[0]), -1) + smear[0], _crossing(fidx, ratio, int(on[-1]), 1) - smear[1]


def _held_before_roll(rot: np.ndarray, idx: np.ndarray, onset: float) -> float:
    """Seconds from ``onset`` that the leg stayed turned (``CRAMP_MIN_ROT_DEG`` to ``POSTURE_DEG``
    from its posture before; ``rot`` per frame, at frame indices ``idx``) before it turned over: 0
    when it never was turned so, or turned over at once."""
    over = np.flatnonzero(rot > POSTURE_DEG)
    if not len(over) or not (rot[: over[0]] >= CRAMP_MIN_ROT_DEG).any():
        return 0.0
    return (float(idx[int(over[0])]) + 0.5) * FRAME_S - ROLL_S - onset


def _along_ratio(sd: np.ndarray, sd_perp: np.ndarray, floor_sd: np.ndarray) -> np.ndarray:
    """The spread along gravity over its floor (one axis of the noise whose two axes across gravity
    make ``floor_sd``), per frame (``K_ALONG``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        along = np.sqrt(np.maximum(sd**2 - sd_perp**2, 0.0)) * np.sqrt(2.0) / floor_sd
    return finite(along, nan=0.0)


def _jolts(along: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Frames whose spread along gravity (``_along_ratio``) makes them active (``K_ALONG``)."""
    return along > K_ALONG * sd_factor(n)


def _apart(idx: np.ndarray, active: np.ndarray, frames: int) -> np.ndarray:
    """Per frame (indices ``idx``): no ``active`` frame within ``frames`` of it."""
    ai = idx[active]
    if not len(ai):
        return np.ones(len(idx), bool)
    pos = np.searchsorted(ai, idx)
    after = ai[np.minimum(pos, len(ai) - 1)] - idx
    before = idx - ai[np.maximum(pos - 1, 0)]
    return ~(((after >= 0) & (after <= frames)) | ((before >= 0) & (before <= frames)))


def _alone_along(idx: np.ndarray, p0: int, last: int, along: np.ndarray) -> bool:
    """Whether the spread along gravity (``along``, per frame at frame indices ``idx``) stays under
    ``ALONG_QUIET_K`` x its floor before frame p0 and after the last active frame index ``last``
    (``K_ALONG``)."""
    b0, b1 = np.searchsorted(idx, (idx[p0] - ALONG_BEFORE_FRAMES, idx[p0] - 2), side="left")
    c0, c1 = np.searchsorted(idx, (last + 1 + RING_SKIP, last + 1 + ALONG_AFTER_FRAMES), side="left")
    around = np.concatenate([along[b0:b1], along[c0:c1]])
    return not len(around) or float(around.max()) <= ALONG_QUIET_K


def _unit(m: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return m / norm_rows(m)[..., None]


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between unit vectors (rows), degrees; NaN where undefined."""
    return np.degrees(angle_rad(a, b))


def _nanmean_rows(m: np.ndarray) -> np.ndarray:
    ok = np.isfinite(m).all(axis=1)
    n = int(np.count_nonzero(ok))
    if not n:
        return np.full(3, np.nan)
    return np.add.reduce(m[ok], axis=0) / n  # what .mean(axis=0) gives, without its Python layer


def _rest(m: np.ndarray, active: np.ndarray) -> np.ndarray | None:
    """The unit mean orientation of the frames that are not active (None if there are none)."""
    q = m[~active]
    return _unit(_nanmean_rows(q)) if len(q) else None


def _centred_mean(m: np.ndarray, half: int) -> np.ndarray:
    """Mean of rows k-half..k+half (fewer at the edges), NaN rows ignored. The rows and their count
    are summed window by window in order, as a sum over a window of under 8 gives them (a third of
    the time of ``sliding_window_view``'s sums on the short runs of one episode)."""
    n = len(m)
    ok = np.isfinite(m).all(axis=1)
    pad = np.zeros((n + 2 * half, 4))  # x, y, z and whether the row counts
    pad[half : half + n, :3] = np.where(ok[:, None], m, 0.0)
    pad[half : half + n, 3] = ok
    sums = pad[:n].copy()
    for j in range(1, 2 * half + 1):
        sums += pad[j : j + n]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[:, :3] / sums[:, 3:]


def _rolling_all(x: np.ndarray, w: int) -> np.ndarray:
    """out[k] = all(x[k-w+1 .. k]); False where the window reaches before the start."""
    out = np.zeros(len(x), bool)
    if len(x) >= w:  # no False in the window: a difference of running counts (not w reads a frame)
        false_seen = np.concatenate(([0], np.cumsum(~x, dtype=np.int64)))
        out[w - 1 :] = false_seen[w:] == false_seen[:-w]
    return out


def _rolling_median(x: np.ndarray, w: int) -> np.ndarray:
    """out[k] = median(x[k-w+1 .. k]) of values without NaN; NaN where the window reaches before
    the start (``vectors.median``: ``np.median`` imports numpy.ma, ~9 ms of every detect)."""
    out = np.full(len(x), np.nan)
    if len(x) >= w:
        out[w - 1 :] = median(sliding_window_view(x, w))
    return out


def _rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) >= w:
        out[w - 1 :] = sliding_window_view(x, w).mean(axis=-1)
    return out


def hold_deg(floor_tilt: np.ndarray | float) -> np.ndarray:
    """How far (degrees) from its reference the shin must be turned to count as held, for tilt floors
    (rad). ``HOLD_DEG`` is the bound where the 0.3 s means are noisy (a slow or noisy sensor), but an
    ankle dorsiflexion turns the shin only 0.5-2.5 deg: where the noise allows, the bound is
    ``HOLD_NOISE_K`` x the floor (three Rayleigh medians: noise alone crosses it in 0.2 % of frames),
    never under ``HOLD_MIN_DEG`` (slow drift and breathing)."""
    return np.minimum(np.maximum(HOLD_NOISE_K * np.degrees(floor_tilt), HOLD_MIN_DEG), HOLD_DEG)  # np.clip, faster


def _across(sd: np.ndarray, sd_perp: np.ndarray) -> bool:
    """Whether most of an event's spread (variance, summed over its frames) lies across gravity: the
    shin's own turn or muscle (and isotropic noise: two thirds), not a mattress bouncing along it
    (``bounce.PERP_FRAC_MAX``)."""
    tot = float(np.sum(finite(sd) ** 2))
    return tot > 0 and float(np.sum(finite(sd_perp) ** 2)) >= PERP_FRAC_MAX * tot


def _abrupt(tilt: np.ndarray, turn_deg: float) -> bool:
    """Whether the shin made most of a turn of ``turn_deg`` within 0.4 s (the tilt, rad)."""
    t = finite(tilt)
    return bool(len(t)) and float(np.degrees(t.max())) >= ABRUPT_FRAC * turn_deg


def _sustained(sd_perp: np.ndarray, floor_sd: np.ndarray) -> float:
    """The median frame's jerk over the jerk threshold of a full window (``K_SD`` x floor)."""
    if not len(sd_perp):
        return 0.0
    return float(median(finite(sd_perp / (K_SD * floor_sd), nan=0.0)))


@dataclass
class _Flags:
    u: np.ndarray  # (k, 3) unit orientation
    settled: np.ndarray
    ref: np.ndarray  # (k, 3) reference orientation in force at each frame
    held: np.ndarray
    event: np.ndarray
    lull: np.ndarray  # quiet and within CRAMP_HOLD_DEG of the reference (_split adds: not strained)
    ratio: np.ndarray  # sd_perp / floor
    along: np.ndarray  # spread along gravity / its floor (floor_sd / sqrt(2))
    jolt: np.ndarray  # active by the spread along gravity alone (K_ALONG, JOLT_APART_FRAMES)


class EpisodeAssembler:
    """State: the scored frames still needed (``buf``), the reference orientation and settled flags
    carried over its trimmed start, the frontier and the last decided frame. The shin axis is shared
    with the epoch stage and is not part of it: ``from_state`` takes the restored one."""

    def __init__(self, axis: ShinAxis | None = None) -> None:
        self.axis = axis if axis is not None else ShinAxis()
        self.buf: Scored = empty_scored()
        self.ref0 = np.full(3, np.nan)  # reference in force before the buffer's first frame
        # Settling depends on the 4 s before a frame, so for the first frames of a trimmed buffer
        # the flags computed before the trim (with that history) are carried over.
        self.settled_carry = np.zeros(0, bool)
        self.frontier = -np.inf  # no episode decided from now on starts before this time
        self.done_upto: int = -(2**62)
        self.up = GettingUp()  # whether an upright shin is getting up
        self.partner = np.zeros(0)  # times (s) of the signs of a bed partner (PARTNER_WINDOW_S)
        self.started = np.inf  # time (s) of the first frame seen (PARTNER_WATCH_S)

    def state(self) -> dict:
        return {
            "buf": self.buf.state(),
            "ref0": self.ref0.copy(),
            "settled_carry": self.settled_carry.copy(),
            "frontier": self.frontier,
            "done_upto": self.done_upto,
            "up": self.up.state(),
            "partner": self.partner.copy(),
            "started": self.started,
        }

    @classmethod
    def from_state(cls, state: dict, axis: ShinAxis | None = None) -> EpisodeAssembler:
        st = cls(axis)
        st.buf = state_part(state, "buf", Scored.from_state)
        st.ref0 = state_array(state, "ref0", np.float64)
        if st.ref0.shape != (3,):
            raise ValueError(f"ref0: expected 3 values, got {len(st.ref0)}")
        st.settled_carry = state_array(state, "settled_carry", np.bool_)
        st.frontier = state_value(state, "frontier", float)
        st.done_upto = state_value(state, "done_upto", int)
        st.up = state_part(state, "up", GettingUp.from_state)
        st.partner = state_array(state, "partner", np.float64)
        st.started = state_value(state, "started", float)
        return st

    def push(self, sc: Scored) -> list[Episode]:
        if len(sc) and self.started == np.inf:
            self.started = float(sc.feats.idx[0]) * FRAME_S
        self.buf = concat_scored([self.buf, sc])
        return self._decide(final=False)

    def flush(self) -> list[Episode]:
        out = self._decide(final=True)
        self.buf = empty_scored()
        return out

    # -- per-frame flags over the buffer -------------------------------------------------------
    def _flags(self) -> _Flags:
        f = self.buf.feats
        u = _unit(f.mean)
        # (rows of unit vectors: their sum is finite exactly where all three are; a tenth of .all(axis=1))
        quiet = f.present & ~self.buf.active & np.isfinite(u[:, 0] + u[:, 1] + u[:, 2])
        ratio = finite(f.sd_perp / self.buf.floor_sd, nan=0.0)
        strained = _rolling_mean(ratio, STRAIN_FRAMES) > STRAIN_K
        still = np.zeros(len(u), bool)
        if len(u) > SETTLE_FRAMES:
            lag = _angle_deg(u[SETTLE_FRAMES - 1 :], u[: len(u) - SETTLE_FRAMES + 1])
            still[SETTLE_FRAMES - 1 :] = finite(lag, nan=180.0) < SETTLE_DEG
        # contiguous frame indices in the window (no segment break)
        contiguous = np.zeros(len(u), bool)
        if len(u) >= SETTLE_FRAMES:
            span = f.idx[SETTLE_FRAMES - 1 :] - f.idx[: len(u) - SETTLE_FRAMES + 1]
            contiguous[SETTLE_FRAMES - 1 :] = span == SETTLE_FRAMES - 1
        settled = _rolling_all(quiet, SETTLE_FRAMES) & still & ~strained & contiguous
        nc = min(len(self.settled_carry), len(settled))
        settled[:nc] = self.settled_carry[:nc]
        # reference: orientation at the most recent settled frame (forward filled)
        last = np.where(settled, np.arange(len(u)), -1)
        last = np.maximum.accumulate(last) if len(last) else last
        ref = np.where((last >= 0)[:, None], u[np.maximum(last, 0)], self.ref0[None, :])
        dev = finite(_angle_deg(u, ref), nan=0.0)
        held = (dev > hold_deg(self.buf.floor_tilt)) & ~settled
        along = _along_ratio(f.sd, f.sd_perp, self.buf.floor_sd)
        # from RING_MIN_SAMPLES a window, a jolt along gravity next to the leg's jerk is the mattress
        # ringing on after it or the jerk's own: it must not take the frames the jerk's bounce and
        # ringing tests read after it into the event, nor count as the activity of a held leg
        # (K_ALONG, JOLT_APART_FRAMES)
        apart = _apart(f.idx, self.buf.active | held, JOLT_APART_FRAMES)
        jolt = _jolts(along, f.n) & ((f.n < RING_MIN_SAMPLES) | apart)
        event = self.buf.active | held | jolt
        lull = quiet & (dev < CRAMP_HOLD_DEG)
        return _Flags(u, settled, ref, held, event, lull, ratio, along, jolt)

    def _decide(self, final: bool) -> list[Episode]:
        buf = self.buf
        if not len(buf):
            return []
        fl = self._flags()
        idx = buf.feats.idx
        ev = np.flatnonzero(fl.event & (idx > self.done_upto))
        out: list[Episode] = []
        last_idx = int(idx[-1])
        keep_from_idx = last_idx - POST_FRAMES - HIST_FRAMES
        pending = last_idx + 1  # no event decided later can start before this frame
        if len(ev):
            breaks = np.flatnonzero(np.diff(idx[ev]) > MERGE_FRAMES)
            starts = np.concatenate(([0], breaks + 1))
            ends = np.concatenate((breaks, [len(ev) - 1]))
            for p0, p1 in self._split(ev, starts, ends, fl):
                axis = self.axis.axis_for(int(idx[p0] * FRAME_S // EPOCH_S), final)
                if axis is None or (not final and (int(idx[p1]) + DECIDE_FRAMES > last_idx or p1 == len(idx) - 1)):
                    keep_from_idx = min(keep_from_idx, int(idx[p0]) - HIST_FRAMES)
                    pending = min(pending, int(idx[p0]))
                    break
                e = self._episode(p0, p1, fl, axis)
                if e is not None:
                    out.append(e)
                self.done_upto = int(idx[p1]) + MERGE_FRAMES
        # an episode's onset may be extended back by up to EXTENT_MAX_S and the smear corrections
        self.frontier = pending * FRAME_S - EXTENT_MAX_S - 1.0
        keep = idx >= keep_from_idx
        if not keep.all():
            k0 = int(np.argmax(keep)) if keep.any() else len(idx)
            if k0 > 0:
                self.ref0 = fl.ref[k0 - 1].copy()
                self.settled_carry = fl.settled[k0 : k0 + SETTLE_FRAMES - 1].copy()
            f = buf.feats.take(slice(k0, None))
            self.buf = Scored(f, buf.score[k0:], buf.active[k0:], buf.floor_sd[k0:], buf.floor_tilt[k0:])
        return out

    def _split(self, ev: np.ndarray, starts: np.ndarray, ends: np.ndarray, fl: _Flags) -> list[tuple[int, int]]:
        """Event runs as (first, last) positions, cut where the leg lay back near its posture,
        quiet, for ``SPLIT_GAP_FRAMES``: two movements bridged by a small leftover tilt are two."""
        out: list[tuple[int, int]] = []
        for a, b in zip(starts, ends, strict=True):
            p0, p1 = int(ev[a]), int(ev[b])
            lull = fl.lull[p0 : p1 + 1] & ~self.buf.active[p0 : p1 + 1]
            if p1 - p0 + 1 > SPLIT_GAP_FRAMES and lull.sum() >= SPLIT_GAP_FRAMES:
                # not strained for most of the 2 s before (the median: one strong jerk lifts the 2-s
                # mean for 2 s after it, and the leg resting after a twitch that left it turned
                # would not split from the next movement); only for the runs long enough to split
                h0 = max(0, p0 - STRAIN_FRAMES + 1)
                lull &= ~(_rolling_median(fl.ratio[h0 : p1 + 1], STRAIN_FRAMES)[p0 - h0 :] > STRAIN_K)
            if p1 - p0 + 1 > SPLIT_GAP_FRAMES and lull.sum() >= SPLIT_GAP_FRAMES:
                edges = np.diff(np.concatenate(([0], lull.astype(np.int8), [0])))
                ls, le = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
                cur = p0
                for s0, e0 in zip(ls, le, strict=True):
                    if e0 - s0 >= SPLIT_GAP_FRAMES and s0 > 0 and e0 < len(lull):
                        act = np.flatnonzero(self.buf.active[cur : p0 + s0])
                        if len(act):
                            out.append((cur, cur + int(act[-1])))
                        cur = p0 + e0
                act = np.flatnonzero(self.buf.active[cur : p1 + 1])
                if len(act):
                    out.append((cur + int(act[0]), p1))
                continue
            out.append((p0, p1))
        return out

    def _twitch(self, p0: int, p1: int, last_act: int, iso: float, along: np.ndarray, n_win: float) -> bool:
        """Whether a short event over frames p0..p1 (its last active frame p0 + ``last_act``; ``iso``
        the jerk level of the second around it; ``along`` the spread along gravity of the buffer's
        frames, ``_along_ratio``; ``n_win`` its median samples a window) is a twitch of the leg, not a
        jolt of the bed or noise."""
        buf = self.buf
        f, idx = buf.feats, buf.feats.idx
        sl = slice(p0, p1 + 1)
        jerk = float(finite(f.sd_perp[sl] / buf.floor_sd[sl], nan=0.0).max())
        t = float(idx[p0]) * FRAME_S
        # a jerk that barely crosses the threshold for a frame or two is a jolt of the bed; with none
        # across gravity, a twitch only as a jolt along it that stands alone (K_ALONG), and from
        # RING_MIN_SAMPLES a window only while no bed partner has been seen
        weak = jerk < (TWITCH_MIN_JERK if n_win >= RING_MIN_SAMPLES else TWITCH_MIN_JERK_SLOW)
        if weak and not _jolts(along[sl], f.n[sl]).any():
            return False
        if weak and not _alone_along(idx, p0, int(idx[p0 + last_act]), along):
            self._partner_sign(t)  # a jolt along gravity among more of them: the mattress
            return False
        if float(median(buf.floor_sd[sl])) > TWITCH_MAX_FLOOR_G:
            return False  # the floor is of walking, not of a leg at rest: no twitch told against it
        if iso > TWITCH_ISO_MAX:
            return False  # a flicker within ongoing vibration, not a jerk standing alone
        if weak and n_win >= RING_MIN_SAMPLES and self._partner_seen(t):
            return False
        a0, a1 = np.searchsorted(idx, (idx[p1] + 1, idx[p1] + 1 + round(AFTER_S / FRAME_S)), side="left")
        if mattress_bounce(f.sd[sl], f.sd_perp[sl], f.sd[a0:a1] / buf.floor_sd[a0:a1], n_win):
            self._partner_sign(t)  # the mattress bounced and rang on: someone else moved
            return False
        last = int(idx[p0 + last_act])
        r0, r1 = np.searchsorted(idx, (last + 1 + RING_SKIP, last + 1 + round(AFTER_S / FRAME_S)), side="left")
        # a jolt along gravity after which the mattress rang on: someone else moved
        if rings_on(f.sd[sl], f.sd_perp[sl], f.sd[r0:r1] / buf.floor_sd[r0:r1], n_win):
            self._partner_sign(t)
            return False
        return True

    def _partner_sign(self, t: float) -> None:
        """Note a sign of a bed partner at time ``t`` (s), forgetting those over ``PARTNER_WINDOW_S`` old."""
        self.partner = np.append(self.partner[self.partner >= t - PARTNER_WINDOW_S], t)

    def _partner_seen(self, t: float) -> bool:
        """Whether ``PARTNER_MIN`` signs of a bed partner came within ``PARTNER_WINDOW_S`` before ``t``,
        or the recording is too young to tell (``PARTNER_WATCH_S``)."""
        p = self.partner
        young = t - self.started < PARTNER_WATCH_S
        return young or int(np.count_nonzero((p >= t - PARTNER_WINDOW_S) & (p < t))) >= PARTNER_MIN

    def _episode(self, p0: int, p1: int, fl: _Flags, axis: np.ndarray) -> Episode | None:
        buf = self.buf
        f = buf.feats
        idx = f.idx
        sl = slice(p0, p1 + 1)
        act = buf.active[sl] | fl.jolt[sl]
        if act.sum() < MIN_ACTIVE_FRAMES:
            return None  # a slow drift, or one frame of noise: no movement
        # extent of the active frames: threshold crossings interpolated between frames (a feature
        # value sits at its window's centre), corrected for how far each feature's window smears
        # one frame of context on each side, for the interpolation
        xs = slice(max(0, p0 - 1), min(len(idx), p1 + 2))
        sd_ratio = finite(f.sd_perp[xs] / (K_SD * buf.floor_sd[xs] * sd_factor(f.n[xs])), nan=0.0)
        tilt_ratio = finite(f.tilt[xs] / (K_TILT * buf.floor_tilt[xs]), nan=0.0)
        fidx = idx[xs].astype(float)
        inner = np.zeros(len(fidx), bool)
        inner[p0 - xs.start : p1 - xs.start + 1] = True
        spans = {
            name: span
            for name, ratio, smear in (("sd", sd_ratio, SD_SMEAR_S), ("tilt", tilt_ratio, TILT_SMEAR_S))
            if (span := _span(fidx, ratio, inner, smear)) is not None
        }
        if not spans:  # a jolt along gravity alone (K_ALONG): its extent as the jerk's
            spans["along"] = _span(fidx, fl.along[xs] / (K_ALONG * sd_factor(f.n[xs])), inner, SD_SMEAR_S)
        ref = fl.ref[p0]
        if not np.isfinite(ref).all():  # no settled posture yet: the one just before
            ref = _unit(_nanmean_rows(f.mean[max(0, p0 - PRE_FRAMES) : p0]))
        # Rotation as seen by ~1 s means: a brief jerk averages out, a turn of the shin does not.
        lo_c, hi_c = max(0, p0 - SLOW_HALF), min(len(idx), p1 + SLOW_HALF + 1)
        slow = _unit(_centred_mean(f.mean[lo_c:hi_c], SLOW_HALF))[p0 - lo_c : p1 - lo_c + 1]
        slow_rot = float(finite(_angle_deg(slow, ref[None, :]), nan=0.0).max())
        # the extent of both features, each corrected for its window: a jerk also shakes the 0.3 s
        # means, but no further than the tilt's smear takes back, and an ankle movement that barely
        # turns the shin often turns it before and after its jerk (session 9: keeping to the jerk's
        # extent unless the turn reached 0.3 s beyond it measured such movements as twitches)
        onset = min(a for a, _ in spans.values())
        offset = max(b for _, b in spans.values())
        if "sd" not in spans and slow_rot >= SLOW_ROT_DEG and offset - onset < TWITCH_MAX_S:
            # A slow, jerk-free turn too weak for the 0.4 s tilt rate to follow: take its extent
            # from where the ~1 s mean orientation is displaced by over a fifth of its maximum.
            disp = finite(_angle_deg(slow, ref[None, :]), nan=0.0)
            on = np.flatnonzero(disp > max(HOLD_DEG, 0.2 * slow_rot))
            if len(on):
                onset = min(onset, (idx[p0 + on[0]] + 0.5) * FRAME_S)
                offset = max(offset, (idx[p0 + on[-1]] + 0.5) * FRAME_S)
        # frame indices are increasing: the frames after and before the event by binary search
        # (a mask over the buffer would cost a pass over the whole night per episode offline)
        q0, q1 = np.searchsorted(idx, (idx[p1] + MERGE_FRAMES, idx[p1] + POST_FRAMES), side="right")
        post = _unit(_nanmean_rows(f.mean[q0:q1])) if q1 > q0 else fl.u[p1]
        r0, r1 = np.searchsorted(idx, (idx[p0] - PRE_FRAMES, idx[p0] - 1), side="left")
        pre = _unit(_nanmean_rows(f.mean[r0:r1])) if r1 > r0 else ref
        # the leg away from rest before and after the abrupt parts: from the posture it rested in
        # before to the one it rests in after, each the mean of the quiet frames there (the next
        # movement may follow within the second after) (detector.extent)
        on_act = np.flatnonzero(act)
        on_d, off_d = displaced_span(
            idx,
            fl.u,
            p0 + int(on_act[0]),
            p0 + int(on_act[-1]),
            p0,
            q0 - 1,
            _rest(f.mean[r0:r1], buf.active[r0:r1]),
            _rest(f.mean[q0:q1], buf.active[q0:q1]),
            float(median(buf.floor_tilt[p0 : p1 + 1])),
        )
        if on_d is not None:
            onset = max(min(onset, on_d), onset - EXTENT_MAX_S)
        if off_d is not None:
            offset = min(max(offset, off_d), offset + EXTENT_MAX_S)
        if offset - onset < MIN_DUR_S:
            mid = 0.5 * (onset + offset)
            onset, offset = mid - MIN_DUR_S / 2, mid + MIN_DUR_S / 2
        dur = offset - onset
        n_win = float(median(finite(f.n[sl], nan=0.0)))
        if dur >= TWITCH_MAX_S and not buf.active[sl].any() and n_win >= RING_MIN_SAMPLES:
            # from RING_MIN_SAMPLES a window, spread along gravity alone is a twitch or the mattress
            self._partner_sign(onset)
            return None

        dtheta = float(finite(_angle_deg(ref, post), nan=0.0))
        rot = finite(_angle_deg(fl.u[sl], ref[None, :]), nan=0.0)
        max_rot = float(rot.max()) if len(rot) else 0.0
        # upright by the ~0.7 s mean orientation: a strong jerk swings the 0.3 s means, not these
        elev = finite(elevation_deg(axis, slow), nan=0.0)
        # the elevations before (settled, and just before) and after, in one call (NaN: not known)
        e_ref, e_pre, e_post = elevation_deg(axis, np.stack([ref, pre, post])).tolist()
        ref_elev = e_ref if e_ref == e_ref else 0.0
        sd = finite(f.sd[sl])
        peak = float(sd.max()) if len(sd) else 0.0
        peak = max(peak, float(np.sin(np.radians(min(max_rot, 90.0)))))

        # how busy the second around the event was (sd relative to its floor): a jerk stands alone
        around = np.r_[max(0, p0 - ISO_FRAMES) : max(0, p0 - 1), min(len(idx), p1 + 2) : min(len(idx), p1 + ISO_FRAMES)]
        iso = float(median(finite(f.sd_perp[around] / buf.floor_sd[around], nan=1.0))) if len(around) else 1.0
        walk = gait(fl.u[sl], f.sd[sl]) if dur >= GAIT_MIN_S else (0.0, np.full(3, np.nan))
        small_turn = float(hold_deg(median(buf.floor_tilt[sl])))  # under LM_MIN_ROT_DEG, beyond the noise
        post_elev = e_post if e_post == e_post else 90.0
        if self.up.decide(onset, offset, walk, elev, slow, ref, ref_elev, FRAME_S, UPRIGHT_DEG, post_elev, dtheta):
            kind = "out_of_bed"
        elif dur > LM_MAX_S and dtheta > POSTURE_DEG and _held_before_roll(rot, idx[sl], onset) > LM_MAX_S:
            kind = "contraction"  # a cramp held over 10 s, the leg turned over only as it let go
        elif dtheta > POSTURE_DEG or (dur <= LM_MAX_S and slow_rot > POSTURE_DEG):
            kind = "posture_change"
        elif dur > LM_MAX_S:
            if slow_rot < CRAMP_MIN_ROT_DEG:  # sustained vibration that never turns the leg: the mattress
                self._partner_sign(onset)
                return None
            kind = "contraction"
        elif dur < TWITCH_MAX_S:
            if not self._twitch(p0, p1, int(on_act[-1]), iso, fl.along, n_win):
                return None
            kind = "twitch"
        elif (
            slow_rot >= LM_MIN_ROT_DEG
            or (slow_rot >= small_turn and _across(f.sd[sl], f.sd_perp[sl]) and _abrupt(f.tilt[sl], slow_rot))
            or _sustained(f.sd_perp[sl], buf.floor_sd[sl]) >= LM_SUSTAINED_K
        ):
            kind = "leg_movement"
        else:  # vibration without rotation: the mattress, not the leg
            self._partner_sign(onset)
            return None
        return Episode(
            start=round(onset, 3),
            end=round(offset, 3),
            kind=kind,
            peak_g=round(peak, 4),
            extra={
                "_pre": pre.tolist(),
                "_pitch": round(e_post - e_pre if e_post - e_pre == e_post - e_pre else 0.0, 2),
                "_post": post.tolist(),
                "posture_change_deg": round(dtheta, 1),
                "rotation_deg": round(max_rot, 1),
            },
        )


@dataclass
class CrampGrouper:
    """A cramp seldom reads as one burst: the foot is held turned while strained movements come
    and go. Consecutive movements are grouped while the leg stays turned more than
    ``CRAMP_HOLD_DEG`` away from where it was before the first of them (a leg movement returns,
    a cramp does not let go), with at most ``CRAMP_JOIN_GAP_S`` between them. A group lasting over
    10 s is one ``contraction`` if it holds a contraction or two leg movements (one movement that left the
    leg turned, followed by twitches, is no cramp); otherwise its movements stand as they are. A cramp that paused is
    continued by another contraction within ``CRAMP_JOIN_GAP_S``, and by other movements only on the
    same held-turned rule (no longer by anything within ``CRAMP_GAP_S``: after a pause the leg may
    have let go and come to rest somewhere new). A posture change or getting up ends a group.
    Movements are held until their group is decided.
    """

    group: list[Episode] = field(default_factory=list)

    def state(self) -> dict:
        return {"group": [_episode_state(e) for e in self.group]}

    @classmethod
    def from_state(cls, state: dict) -> CrampGrouper:
        return cls(state_part(state, "group", _episodes_from_state))

    def _close(self) -> list[Episode]:
        g, self.group = self.group, []
        if len(g) >= 2 and self._is_cramp(g):
            ex = {k: v for k, v in g[0].extra.items() if not k.startswith("_post")}
            ex["_post"] = g[-1].extra.get("_post")
            ex["parts"] = len(g)
            peak = max(e.peak_g for e in g)
            return [Episode(g[0].start, max(e.end for e in g), "contraction", peak, False, g[0].in_sleep, ex)]
        return g

    @staticmethod
    def _is_cramp(g: list[Episode]) -> bool:
        if not g:
            return False
        if len(g) == 1:
            return g[0].kind == "contraction"
        if all(e.kind == "twitch" for e in g):
            return False  # brief jerks with the leg at rest between them: no sustained contraction
        if "contraction" not in {e.kind for e in g} and sum(e.kind == "leg_movement" for e in g) < 2:
            return False  # one movement left the leg turned and brief jerks followed: no strain that comes and goes
        # two movements with a real pause between them stay two (a leftover tilt is no cramp)
        continuous = len(g) >= 3 or g[1].start - g[0].end <= CRAMP_PAUSE_S or "contraction" in (g[0].kind, g[1].kind)
        return continuous and max(e.end for e in g) - g[0].start > LM_MAX_S

    def _joins(self, e: Episode) -> bool:
        if not self.group or e.kind not in ("twitch", "leg_movement", "contraction"):
            return False
        last = self.group[-1]
        if e.start - last.end > CRAMP_GAP_S:
            return False
        if e.start - last.end <= CRAMP_PAUSE_S and "twitch" not in (e.kind, last.kind):
            return True  # the leg kept moving almost without a pause
        if e.start - last.end > CRAMP_JOIN_GAP_S:
            return False
        if e.kind == "contraction" and self._is_cramp(self.group):
            # A cramp that paused: a second sustained contraction within seconds is the cramp coming
            # back (cramps do not come seconds apart); any other movement continues it only while the
            # leg is still held turned: after a pause the muscle may have let go and the leg come to
            # rest somewhere new, and what follows is another movement.
            return True
        base = np.asarray(self.group[0].extra.get("_pre", [np.nan] * 3))
        held_after = np.asarray(last.extra.get("_post", [np.nan] * 3))
        held_before = np.asarray(e.extra.get("_pre", [np.nan] * 3))
        dev = _angle_deg(np.stack([held_after, held_before]), base[None, :])
        return bool(np.all(finite(dev, nan=0.0) > CRAMP_JOIN_DEG))

    def push(self, eps: list[Episode]) -> list[Episode]:
        out: list[Episode] = []
        for e in eps:
            if self._joins(e):
                self.group.append(e)
                continue
            out.extend(self._close())
            if e.kind in ("twitch", "leg_movement", "contraction"):
                self.group = [e]
            else:
                out.append(e)
        return out

    def tick(self, frontier: float) -> list[Episode]:
        """Close the group once no movement still to come (starting at ``frontier`` or later)
        could join it."""
        if self.group and frontier - self.group[-1].end > CRAMP_GAP_S:
            return self._close()
        return []

    def frontier(self, upstream: float) -> float:
        """No episode released from now on starts before this time."""
        return min(upstream, self.group[0].start) if self.group else upstream

    def flush(self) -> list[Episode]:
        return self._close()


class PeriodicTracker:
    """The WASM series rule (:mod:`detector.periodic`) over the stream of released episodes.

    Leg movements are held until their periodic flag is decided, then released; everything else
    passes straight through (a breaker after closing the run it ends).
    """

    def __init__(self, pending: list[Episode] | None = None, in_series: bool = False) -> None:
        self.rule: SeriesRule[Episode] = SeriesRule(_onset, pending, in_series)

    def state(self) -> dict:
        return {"pending": [_episode_state(e) for e in self.rule.pending], "in_series": self.rule.in_series}

    @classmethod
    def from_state(cls, state: dict) -> PeriodicTracker:
        return cls(state_part(state, "pending", _episodes_from_state), state_value(state, "in_series", bool))

    def push(self, eps: list[Episode]) -> list[Episode]:
        out: list[Episode] = []
        for e in eps:
            r = role(e.kind, e.end - e.start)
            if r == "candidate":
                out.extend(_flagged(self.rule.candidate(e)))
                continue
            if r == "breaker":
                out.extend(_flagged(self.rule.close()))
            out.append(e)
        return out

    def tick(self, frontier: float) -> list[Episode]:
        """Release a series that can no longer grow: no leg movement still to come (starting at
        ``frontier`` or later) can fall within 90 s of its last onset."""
        return _flagged(self.rule.expire(frontier))

    def flush(self) -> list[Episode]:
        return _flagged(self.rule.close())


def _onset(e: Episode) -> float:
    return e.start


def _flagged(decided: list[tuple[Episode, bool]]) -> list[Episode]:
    return [_periodic(e) if flag else e for e, flag in decided]


def _periodic(e: Episode) -> Episode:
    return Episode(e.start, e.end, e.kind, e.peak_g, True, e.in_sleep, dict(e.extra))


def _episode_state(e: Episode) -> dict:
    """An episode as plain data, its ``extra`` (working notes included) copied."""
    return {
        "start": float(e.start),
        "end": float(e.end),
        "kind": e.kind,
        "peak_g": float(e.peak_g),
        "periodic": bool(e.periodic),
        "in_sleep": bool(e.in_sleep),
        "extra": _plain(e.extra),
    }


def _episode_from_state(state: dict) -> Episode:
    extra = state_item(state, "extra")
    if not isinstance(extra, dict):
        raise ValueError(f"extra: expected a dict, got {type(extra).__name__}")
    return Episode(
        state_value(state, "start", float),
        state_value(state, "end", float),
        state_value(state, "kind", str),
        state_value(state, "peak_g", float),
        state_value(state, "periodic", bool),
        state_value(state, "in_sleep", bool),
        _plain(extra),
    )


def _episodes_from_state(states) -> list[Episode]:
    if not isinstance(states, list):
        raise ValueError(f": expected a list, got {type(states).__name__}")
    out = []
    for i, s in enumerate(states):
        try:
            out.append(_episode_from_state(s))
        except ValueError as e:
            raise ValueError(f"[{i}]{'' if str(e).startswith(':') else '.'}{e}") from None
    return out


def _plain(v):
    """A deep copy of the notes in an episode's ``extra``, as plain Python values."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, np.generic):
        return v.item()
    return v
