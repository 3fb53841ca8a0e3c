"""Where the detector's misses on the physio generator come from, split by what the sensor could resolve.

    python benchmarks/misses.py [--nights N] [--hours H] [--rates 26,52,104] [--split tune|held]
                                [--seed-offset N] [--kind leg_movement] [--list]

``simnights`` records per event (``params["event_details"]``, in the order of ``night.events``) the
largest change of the noise-free reading inside the event's span as the sensor sampled it (``seen_g``),
and the event's own details (a leg movement's style, a twitch's strength, a cramp's tremor). Each truth
event the judged rule (+-0.5 s slack) leaves unmatched is put in a class of how much the sensor saw,
``seen_g`` over the sensor's noise (``sensor_noise_mg``):

* ``< 4x noise``: the reading moved less than four times its own per-sample noise: the sensor could
  not resolve it; a miss here is the generator's, not the detector's;
* ``4-10x``, ``10-30x``, ``>= 30x``: resolvable, and the detector's to find;

and by what happened (``missed``: nothing detected near it; ``detected as <kind>``; ``timing``: a
detection of the same kind overlaps but its edges are more than 0.5 s off). Nights and seeds are those
of ``benchmarks/accuracy.py`` (same ``--split``/``--seed-offset``).

Each unmatched resolvable event is also split by the direction the reading moved (from the mean of
the second before the event, over the event and 0.2 s after it): its largest change along gravity and
across it. A change mostly along gravity (over ``ALONG_K`` times the change across it) is one the
jerk feature hardly sees: that feature is the spread across gravity, because a bed partner's jolt
reaches the shin through the mattress as a bounce along gravity (session 12: the twitches missed at
12.5 Hz that lift the shin straight up, up to 0.35 g along gravity and under the noise across it).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import RATES, detect_night, fixed_nights, generator, nights_asked, overlapping

from detector.events import KINDS_COUNTED
from detector.scoring import JUDGED_SLACK_S, match_events

#: Bounds of the ``seen_g / noise`` classes; below the first the sensor could not resolve the event.
SEEN_CLASSES = (4.0, 10.0, 30.0)
ALONG_K = 2.0


def seen_class(ratio: float) -> str:
    """The class label of a ``seen_g / noise`` ratio."""
    if ratio < SEEN_CLASSES[0]:
        return f"<{SEEN_CLASSES[0]:g}x"
    for lo, hi in pairwise(SEEN_CLASSES):
        if ratio < hi:
            return f"{lo:g}-{hi:g}x"
    return f">={SEEN_CLASSES[-1]:g}x"


def _style(d: dict[str, Any]) -> str:
    if d["kind"] == "twitch":
        return "strong" if d.get("strong") else "gentle"
    if d["kind"] == "contraction":
        return "tremor" if d.get("tremor") else "no tremor"
    return str(d.get("style", "-"))


def along_across(night, start: float, end: float) -> tuple[float, float]:
    """The reading's largest change (g) along gravity and across it over ``start``..``end`` + 0.2 s,
    from its mean over the second before (gravity: that mean's direction); 0 without samples."""
    t, xyz = night.t, night.xyz
    before = xyz[(t >= start - 1.0) & (t < start)]
    during = xyz[(t >= start) & (t <= end + 0.2)]
    if not len(before) or not len(during):
        return 0.0, 0.0
    rest = before.mean(axis=0)
    g = rest / np.linalg.norm(rest)
    d = during - rest
    along = d @ g
    across = np.linalg.norm(d - along[:, None] * g[None, :], axis=1)
    return float(np.abs(along).max()), float(across.max())


def night_misses(night, detected: list[Any]) -> list[dict[str, Any]]:
    """Every truth event of a counted kind with whether it was matched, its class and what happened."""
    details = night.params.get("event_details") or [{} for _ in night.events]
    noise_g = float(night.params.get("sensor_noise_mg", 1.0)) / 1000.0
    out: list[dict[str, Any]] = []
    for kind in KINDS_COUNTED:
        idx = [i for i, e in enumerate(night.events) if e.kind == kind]
        g = [night.events[i] for i in idx]
        d = [e for e in detected if e.kind == kind]
        matched = {j for _, j in match_events(d, g, slack_s=JUDGED_SLACK_S)}
        for j, i in enumerate(idx):
            e, det = night.events[i], details[i]
            what = "found"
            if j not in matched:
                near = overlapping(e, detected, slack=JUDGED_SLACK_S)
                if any(o.kind == kind for o in near):
                    what = "timing"
                elif near:
                    what = f"detected as {near[0].kind}"
                else:
                    what = "missed"
            ratio = float(det.get("seen_g", 0.0)) / noise_g
            along, across = along_across(night, e.start, e.end) if what != "found" else (np.nan, np.nan)
            out.append(
                {
                    "kind": kind,
                    "start": e.start,
                    "dur": e.end - e.start,
                    "what": what,
                    "ratio": ratio,
                    "class": seen_class(ratio),
                    "style": _style({**det, "kind": kind}),
                    "rate": night.rate_hz,
                    "seed": night.seed,
                    "along": along / noise_g,
                    "across": across / noise_g,
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=9, help="nights (rates cycle through --rates)")
    ap.add_argument("--hours", type=float, default=2.0, help="hours per night")
    ap.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES), help="sample rates, Hz, comma-separated")
    ap.add_argument("--split", choices=("tune", "held"), default="tune", help="seeds as benchmarks/accuracy.py")
    ap.add_argument("--seed-offset", type=int, help="add this to every seed (overrides --split)")
    ap.add_argument("--kind", action="append", choices=KINDS_COUNTED, help="only these kinds (repeatable)")
    ap.add_argument("--list", action="store_true", help="also list every unmatched event")
    args = ap.parse_args(argv)
    rates, offset = nights_asked(ap, args)
    kinds = args.kind or list(KINDS_COUNTED)
    from detector.offline import detect_arrays

    gen = generator("physio")
    rows: list[dict[str, Any]] = []
    for seed, rate in fixed_nights(args.nights, rates, offset):
        night = gen(seed, args.hours, rate)
        episodes, _, _ = detect_night(night, detect_arrays)
        rows += [r for r in night_misses(night, episodes) if r["kind"] in kinds]
    print(f"physio nights: seeds offset {offset}, {args.nights} x {args.hours:g} h at {args.rates} Hz")
    classes = [seen_class(x) for x in (0.0, *SEEN_CLASSES)]
    for kind in kinds:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        print(f"\n== {kind}: truth {len(mine)}, unmatched {sum(r['what'] != 'found' for r in mine)}")
        print(f"{'seen/noise':<11}{'truth':>6}{'found':>6}  unmatched by what happened")
        for c in classes:
            cl = [r for r in mine if r["class"] == c]
            whats = Counter(r["what"] for r in cl if r["what"] != "found")
            found = sum(r["what"] == "found" for r in cl)
            print(f"{c:<11}{len(cl):>6}{found:>6}  " + ", ".join(f"{w} {n}" for w, n in whats.most_common()))
        by: dict[tuple[str, float], Counter[str]] = defaultdict(Counter)
        for r in mine:
            by[(r["style"], r["rate"])][r["what"] == "found"] += 1
        print(
            "by style and rate (found/truth): "
            + "; ".join(f"{s} {rt:g} Hz {c[True]}/{c[True] + c[False]}" for (s, rt), c in sorted(by.items()))
        )
        lost = [r for r in mine if r["what"] == "missed" and r["ratio"] >= SEEN_CLASSES[0]]
        up = sum(r["along"] > ALONG_K * r["across"] for r in lost)
        print(f"resolvable and missed, moved mostly along gravity (> {ALONG_K:g}x across): {up} of {len(lost)}")
        if args.list:
            for r in mine:
                if r["what"] != "found":
                    print(
                        f"  seed {r['seed']} {r['rate']:>5g} Hz t={r['start']:.2f} dur {r['dur']:.2f}s "
                        f"{r['style']:<9} seen/noise {r['ratio']:7.1f} along {r['along']:6.1f} "
                        f"across {r['across']:6.1f}  {r['what']}"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
