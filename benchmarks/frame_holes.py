"""How often timing jitter leaves 0.1 s frames empty, and whether that merges two twitches.

    python benchmarks/frame_holes.py [--generator G] [--nights N] [--hours H] [--rates 12.5,208]
                                     [--split tune|held] [--seed-offset N] [--probe]

At 12.5 Hz samples are 80 ms apart, so a sample that arrives ~20 ms off its slot can leave a 0.1 s
frame (``detector.frames``) without one. An empty frame is not quiet (``detector.episodes``), so it
breaks the 4 s quiet run a leg must hold to settle. Per night of the benchmark generators (seeds and
rates as ``benchmarks/accuracy.py``) this prints the share of frames in *short holes* (1-3 empty frames
between frames with samples), the number of such holes, and the longer silences under and over the
2 s gap the detector reports.

``--probe``: hand-built recordings instead, lying still at 12.5 Hz with Gaussian timestamp jitter, two
strong 0.16 s jerks ``gap`` seconds apart, the first leaving the shin turned ``turn`` degrees; for 20
seeds each, how many the detector reports as fewer than two episodes (merged or lost).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import GENERATORS, HELD_OUT_OFFSET, fixed_nights, generator, nights_asked

from detector.frames import FRAME_S, GAP_S

SHORT_HOLE = 3  # frames
PROBE_SEEDS = 20


def holes(t: np.ndarray) -> dict[str, float]:
    """Empty-frame statistics of one recording's timestamps (as the CSV would round them)."""
    b = np.unique(np.floor(np.round(t, 6) / FRAME_S).astype(np.int64))
    empty = np.diff(b) - 1
    short = empty[(empty > 0) & (empty <= SHORT_HOLE)]
    longer = empty[empty > SHORT_HOLE]
    return {
        "short_pct": 100.0 * float(short.sum()) / float(b[-1] - b[0] + 1),
        "short": len(short),
        "under_gap": int((longer * FRAME_S < GAP_S).sum()),
        "gaps": int((longer * FRAME_S >= GAP_S).sum()),
    }


def probe_recording(jitter_ms: float, turn_deg: float, gap_s: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten minutes lying still at 12.5 Hz (2 mg noise), jerks of 1.5 g for 0.16 s at 300 s and 300 s + gap."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 600.0, 0.08)
    t = np.sort(t + np.clip(rng.normal(0.0, jitter_ms / 1000.0, len(t)), -0.036, 0.036))
    ang = np.where(t >= 300.2, np.radians(turn_deg), 0.0)
    xyz = np.column_stack((np.sin(ang), np.zeros(len(t)), np.cos(ang))) + rng.normal(0.0, 0.002, (len(t), 3))
    for t0 in (300.0, 300.0 + gap_s):
        xyz[(t >= t0) & (t < t0 + 0.16), 0] += 1.5
    return 1.7e9 + t, xyz


def probe() -> None:
    from detector.offline import detect_arrays

    print(f"two twitches, 12.5 Hz: recordings of {PROBE_SEEDS} seeds reported as fewer than two episodes")
    print(f"{'jitter ms':>9} {'holes %':>8} {'turn deg':>8} {'gap s':>6} {'merged':>7}")
    for jitter in (0.0, 12.0, 20.0, 30.0):
        share = np.mean([holes(probe_recording(jitter, 0.0, 8.0, s)[0])["short_pct"] for s in range(PROBE_SEEDS)])
        for turn in (0.0, 1.0, 2.0):
            for gap in (5.0, 6.0, 8.0):
                merged = sum(
                    len(detect_arrays(*probe_recording(jitter, turn, gap, s)).episodes) < 2 for s in range(PROBE_SEEDS)
                )
                print(f"{jitter:>9g} {share:>8.2f} {turn:>8g} {gap:>6g} {merged:>4}/{PROBE_SEEDS}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="all", choices=[*GENERATORS, "all"], help="which nights")
    ap.add_argument("--nights", type=int, default=6, help="nights per generator (rates cycle through --rates)")
    ap.add_argument("--hours", type=float, default=2.0, help="hours per night")
    ap.add_argument("--rates", default="12.5,208", help="sample rates, Hz, comma-separated")
    ap.add_argument(
        "--split", choices=("tune", "held"), default="tune", help=f"held: seeds offset by {HELD_OUT_OFFSET}"
    )
    ap.add_argument("--seed-offset", type=int, help="add this to every seed (overrides --split)")
    ap.add_argument("--probe", action="store_true", help="hand-built twitch pairs instead of the generators' nights")
    args = ap.parse_args(argv)
    if args.probe:
        probe()
        return 0
    rates, offset = nights_asked(ap, args)
    names = GENERATORS if args.generator == "all" else (args.generator,)
    print(f"seeds offset {offset}, {args.nights} x {args.hours:g} h at {args.rates} Hz")
    print(f"{'generator':<10} {'seed':>9} {'Hz':>5} {'short holes %':>13} {'holes':>6} {'<2 s':>5} {'gaps':>5}")
    for name in names:
        gen = generator(name)
        for seed, rate in fixed_nights(args.nights, rates, offset):
            h = holes(gen(seed, args.hours, rate).t)
            print(
                f"{name:<10} {seed:>9} {rate:>5g} {h['short_pct']:>13.2f} {h['short']:>6} "
                f"{h['under_gap']:>5} {h['gaps']:>5}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
