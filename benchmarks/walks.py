"""Getting up on labelled nights: walks found, out_of_bed calls while in bed, and how hard the heel
strikes of what looked like walking jolted the shin.

    python benchmarks/walks.py [--generator synthetic|physio|field|all] [--nights N] [--hours H]
                               [--rates 26,52,104] [--split tune|held] [--seed-offset N]
                               [--rotation NAME] [--list]

Nights and seeds are those of ``benchmarks/accuracy.py`` (``--rotation``: one of its rotations of the
strap). Per generator: the walks found (a truth out_of_bed that an out_of_bed call overlaps), the calls
that overlap no truth out_of_bed (the person stayed in bed), and, over every event with windows that
swing and jolt like a stride (:func:`detector.gait.walking_windows`), the median 0.3 s spread of those
windows: the smallest such median among events over a truth walk and the largest among events in bed.
``WALK_SD_G`` lies between them (session 14, 30 tuning nights each: walks 0.168 g and more; a cramp held
in bed on an 8-h field night, 0.127 g). ``--list`` prints each walk missed and each call in bed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import (
    GENERATORS,
    ROTATIONS,
    detect_night,
    fixed_nights,
    generator,
    nights_asked,
    out_of_bed_checks,
    overlapping,
)

import detector.episodes as episodes
from detector.gait import walking_windows
from detector.getting_up import GettingUp
from detector.offline import detect_arrays


class _Span:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end


def _near(ev: Any, among: list[Any], t0: float) -> list[tuple[float, float, str]]:
    return [(round(e.start - t0, 1), round(e.end - e.start, 1), e.kind) for e in overlapping(ev, among)]


def run(gen: str, nights: list[tuple[int, float]], hours: float, rot: np.ndarray | None, listing: bool) -> dict:
    """The tally of one generator's nights."""
    last: list[float] = [float("nan")]  # the median spread of the walking windows of the last gait call
    asked: list[tuple[float, float, float]] = []  # (onset, offset, that spread) of each event decided
    real_gait, real_decide = episodes.gait, GettingUp.decide

    def gait_spy(u: np.ndarray, sd: np.ndarray) -> tuple[float, np.ndarray]:
        _, jolts = walking_windows(u, sd)
        last[0] = float(np.median(jolts)) if len(jolts) else float("nan")
        return real_gait(u, sd)

    def decide_spy(self: GettingUp, onset: float, offset: float, *args: Any, **kw: Any) -> bool:
        asked.append((onset, offset, last[0]))
        last[0] = float("nan")  # an event too short for gait is asked without a call
        return real_decide(self, onset, offset, *args, **kw)

    tally: dict[str, Any] = {"walks": 0, "found": 0, "in_bed": 0, "walk_min": np.inf, "bed_max": -np.inf}
    make = generator(gen)
    episodes.gait, GettingUp.decide = gait_spy, decide_spy
    try:
        for seed, rate in nights:
            night = make(seed, hours, rate)
            asked.clear()
            det, _, _ = detect_night(night, detect_arrays, rot)
            oob = out_of_bed_checks(det, night)
            tally["walks"] += oob["walks"]
            tally["found"] += oob["walks_found"]
            tally["in_bed"] += oob["in_bed_calls"]
            walks = [e for e in night.events if e.kind == "out_of_bed"]
            calls = [e for e in det if e.kind == "out_of_bed"]
            t0 = float(night.t[0])
            if listing:
                for w in (w for w in walks if not overlapping(w, calls, slack=0.0)):
                    print(f"  {gen} {seed} {rate:g} Hz  walk missed at {w.start - t0:.1f} s: {_near(w, det, t0)}")
                for c in (c for c in calls if not overlapping(c, walks, slack=0.0)):
                    print(
                        f"  {gen} {seed} {rate:g} Hz  call in bed at {c.start - t0:.1f} s: {_near(c, night.events, t0)}"
                    )
            for onset, offset, spread in asked:
                if np.isfinite(spread):
                    key = "walk_min" if overlapping(_Span(onset, offset), walks, slack=0.0) else "bed_max"
                    tally[key] = (min if key == "walk_min" else max)(tally[key], spread)
    finally:
        episodes.gait, GettingUp.decide = real_gait, real_decide
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="all", choices=(*GENERATORS, "all"))
    ap.add_argument("--nights", type=int, default=30)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rates", default="26,52,104", help="sample rates, Hz, comma-separated")
    ap.add_argument("--split", choices=("tune", "held"), default="tune")
    ap.add_argument("--seed-offset", type=int, help="add this to every seed (overrides --split)")
    ap.add_argument("--rotation", choices=sorted(ROTATIONS), help="the strap rotated so (as accuracy.py)")
    ap.add_argument("--list", action="store_true", help="list every walk missed and call in bed")
    args = ap.parse_args(argv)
    rates, offset = nights_asked(ap, args)
    nights = fixed_nights(args.nights, rates, offset)
    rot = ROTATIONS[args.rotation] if args.rotation else None
    for gen in GENERATORS if args.generator == "all" else (args.generator,):
        t = run(gen, nights, args.hours, rot, args.list)
        walk = f">= {t['walk_min']:.3f} g" if np.isfinite(t["walk_min"]) else "none"
        bed = f"<= {t['bed_max']:.3f} g" if np.isfinite(t["bed_max"]) else "none"
        print(
            f"{gen:<10} walks found {t['found']}/{t['walks']}, calls in bed {t['in_bed']}; walking windows'"
            f" median spread: over walks {walk}, in bed {bed}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
