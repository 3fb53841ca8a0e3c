"""Would a peak feature find the twitches the detector misses? Per 0.1 s frame, the largest sample of
the shin's acceleration across gravity after its 0.3 s moving mean is taken off, over the median of
that in quiet frames (no truth event or confounder within 1 s), against how often quiet frames reach
the same ratio.

    python benchmarks/twitch_peaks.py [--generator field|physio|synthetic] [--nights 6] [--hours 2]
                                      [--rates 26,52,104] [--split tune|held] [--seed-offset N]

The detector's jerk is a 0.3 s spread, which dilutes a 20-100 ms twitch; a peak is not diluted. For
each threshold (in units of the quiet median) it prints how many quiet frames reach it (per hour of
quiet: an upper bound of the false twitches such a rule would add) and the share of the truth's
twitches, missed and found by the detector (judged rule, +-0.5 s slack), whose peak reaches it.
Nights and seeds are those of ``benchmarks/accuracy.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import GENERATORS, detect_night, fixed_nights, generator, nights_asked

from detector.offline import detect_arrays
from detector.scoring import JUDGED_SLACK_S, match_events

FRAME_S = 0.1
THRESHOLDS = (2.0, 2.5, 3.0, 3.5, 4.0)


def frame_peaks(t: np.ndarray, xyz: np.ndarray, rate: float) -> np.ndarray:
    """Per 0.1 s frame from ``t[0]``, the largest deviation across gravity from the 0.3 s mean (g)."""
    dev = xyz - uniform_filter1d(xyz, max(3, round(0.3 * rate)), axis=0)
    g = uniform_filter1d(xyz, max(3, round(2.0 * rate)), axis=0)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    perp = dev - (dev * g).sum(axis=1, keepdims=True) * g
    k = np.floor((t - t[0]) / FRAME_S).astype(np.int64)
    peaks = np.zeros(int(k.max()) + 1)
    np.maximum.at(peaks, k, np.linalg.norm(perp, axis=1))
    return peaks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Would a peak feature find the twitches the detector misses?")
    ap.add_argument("--generator", default="field", choices=GENERATORS)
    ap.add_argument("--nights", type=int, default=6)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rates", default="26,52,104")
    ap.add_argument("--split", choices=("tune", "held"), default="tune")
    ap.add_argument("--seed-offset", type=int, default=None)
    args = ap.parse_args(argv)
    rates, offset = nights_asked(ap, args)
    gen = generator(args.generator)
    quiet: list[np.ndarray] = []
    ratios: dict[bool, list[float]] = {True: [], False: []}
    for seed, rate in fixed_nights(args.nights, rates, offset):
        night = gen(seed, args.hours, rate)
        t, xyz = np.round(night.t, 6), np.round(night.xyz, 5)
        peaks = frame_peaks(t, xyz, rate)
        busy = np.zeros(len(peaks), bool)
        for e in [*night.events, *night.confounders]:
            a = max(0, int((e.start - t[0]) / FRAME_S) - 10)
            busy[a : int((e.end - t[0]) / FRAME_S) + 11] = True
        floor = float(np.median(peaks[~busy]))
        quiet.append(peaks[~busy] / floor)
        episodes, _, _ = detect_night(night, detect_arrays)
        found = [e for e in episodes if e.kind == "twitch"]
        idx = [i for i, e in enumerate(night.events) if e.kind == "twitch"]
        hit = {idx[j] for _, j in match_events(found, [night.events[i] for i in idx], slack_s=JUDGED_SLACK_S)}
        for i in idx:
            e = night.events[i]
            span = peaks[int((e.start - t[0]) / FRAME_S) : int((e.end - t[0]) / FRAME_S) + 1]
            ratios[i in hit].append(float(span.max()) / floor if len(span) else 0.0)
    q = np.concatenate(quiet)
    quiet_h = len(q) * FRAME_S / 3600.0
    missed, hit_r = np.array(ratios[False]), np.array(ratios[True])
    print(f"{args.generator}: {len(missed)} twitches missed, {len(hit_r)} found; {quiet_h:.1f} h of quiet frames")
    print(f"{'peak / quiet median':>20} {'quiet frames /h':>16} {'missed reach':>13} {'found reach':>12}")
    for thr in THRESHOLDS:
        per_h = float((q >= thr).sum()) / quiet_h
        m = float(np.mean(missed >= thr)) if len(missed) else float("nan")
        f = float(np.mean(hit_r >= thr)) if len(hit_r) else float("nan")
        print(f"{thr:>20.1f} {per_h:>16.1f} {m:>13.2f} {f:>12.2f}")
    print(f"seeds from {fixed_nights(1, rates, offset)[0][0]}, rates {args.rates} Hz, {args.hours:g} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
