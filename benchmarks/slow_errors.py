"""The any-episode errors at one sample rate (12.5 Hz by default), split by kind and cause.

    python benchmarks/slow_errors.py [--generator physio|field|synthetic] [--nights N] [--hours H]
                                     [--rates 12.5] [--split tune|held] [--seed-offset N] [--list]
                                     [--cache DIR]

The judged any-episode F1 ignores the kind: a leg movement called a twitch still counts. What it
counts is a truth event with no detection of a counted kind within +-0.5 s (a false negative) and a
detection with no truth event there (a false positive). This splits both:

* false negatives by the truth's kind and style (physio: gentle/strong twitch, ankle/knee/... leg
  movement; field: context and whether the generator calls it resolvable), by how much the sensor saw
  (``seen_g`` over the noise, physio; the peak change, field), and by what happened: ``missed``
  (nothing near), ``merged`` (a counted detection lies there but was matched to another truth event),
  ``as <kind>`` (only an uncounted detection there: posture_change, out_of_bed);
* false positives by what lay under them: a confounder (partner, sitting up, ...), an uncounted truth
  (posture change, walk), ``split`` (a counted truth event already matched to another detection),
  or ``nothing``.

Nights and seeds are those of ``benchmarks/accuracy.py --rates R`` (every night at the one rate).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import _overlapping, detect_night, fixed_nights, generator, nights_asked
from durations import cached_night

from detector.events import KINDS_COUNTED
from detector.offline import detect_arrays
from detector.scoring import JUDGED_SLACK_S, match_events


def _truth_label(gen: str, night, i: int) -> str:
    """A truth event's kind and style, from the generator's per-event details."""
    details = night.params.get("event_details") or []
    e = night.events[i]
    d = details[i] if i < len(details) else {}
    if gen == "physio":
        style = ("strong" if d.get("strong") else "gentle") if e.kind == "twitch" else str(d.get("style", "-"))
        noise_g = float(night.params.get("sensor_noise_mg", 1.0)) / 1000.0
        r = float(d.get("seen_g", 0.0)) / noise_g
        seen = "<4x" if r < 4 else "4-10x" if r < 10 else "10-30x" if r < 30 else ">=30x"
        return f"{e.kind} {style} {seen}"
    if gen == "field":
        ctx = str(d.get("context") or "-") + (" ankle-only" if d.get("ankle_only") else "")
        return f"{e.kind} {ctx} {'resolvable' if d.get('resolvable') else 'unresolvable'}"
    return e.kind


def night_errors(gen: str, night, detected: list[Any]) -> list[dict[str, Any]]:
    """Each any-episode false negative and false positive of one night, with its cause."""
    t_idx = [i for i, e in enumerate(night.events) if e.kind in KINDS_COUNTED]
    truth = [night.events[i] for i in t_idx]
    det = [e for e in detected if e.kind in KINDS_COUNTED]
    pairs = match_events(det, truth, slack_s=JUDGED_SLACK_S)
    md, mt = {i for i, _ in pairs}, {j for _, j in pairs}
    out: list[dict[str, Any]] = []
    for j, e in enumerate(truth):
        if j in mt:
            continue
        near = _overlapping(e, detected, slack=JUDGED_SLACK_S)
        counted = [o for o in near if o.kind in KINDS_COUNTED]
        what = "merged" if counted else f"as {near[0].kind}" if near else "missed"
        out.append(
            {
                "type": "fn",
                "label": _truth_label(gen, night, t_idx[j]),
                "what": what,
                "start": e.start - night.t[0],
                "dur": e.end - e.start,
                "seed": night.seed,
            }
        )
    others = [e for e in night.events if e.kind not in KINDS_COUNTED] + list(night.confounders)
    for i, e in enumerate(det):
        if i in md:
            continue
        under = _overlapping(e, truth, slack=JUDGED_SLACK_S)
        if under:
            what = f"split {under[0].kind}"
        else:
            hit = _overlapping(e, others, slack=0.0)
            what = hit[0].kind if hit else "nothing"
        out.append(
            {
                "type": "fp",
                "label": e.kind,
                "what": what,
                "start": e.start - night.t[0],
                "dur": e.end - e.start,
                "seed": night.seed,
                "rot": float(e.extra.get("rotation_deg", np.nan)),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="physio", choices=("physio", "field", "synthetic"))
    ap.add_argument("--nights", type=int, default=6)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rates", default="12.5", help="sample rates, Hz, comma-separated (nights cycle through them)")
    ap.add_argument("--split", choices=("tune", "held"), default="tune")
    ap.add_argument("--seed-offset", type=int, help="add this to every seed (overrides --split)")
    ap.add_argument("--list", action="store_true", help="list every error")
    ap.add_argument("--cache", type=Path, help="keep generated nights in this folder")
    args = ap.parse_args(argv)
    rates, offset = nights_asked(ap, args)
    generator(args.generator)  # fail early on a missing generator
    rows: list[dict[str, Any]] = []
    n_truth = n_det = 0
    for seed, rate in fixed_nights(args.nights, rates, offset):
        night = cached_night(args.generator, seed, args.hours, rate, args.cache)
        episodes, _, _ = detect_night(night, detect_arrays)
        n_truth += sum(e.kind in KINDS_COUNTED for e in night.events)
        n_det += sum(e.kind in KINDS_COUNTED for e in episodes)
        rows.extend(night_errors(args.generator, night, episodes))
    fn = sum(r["type"] == "fn" for r in rows)
    fp = sum(r["type"] == "fp" for r in rows)
    tp = n_truth - fn
    f1 = 2 * tp / max(1, n_truth + n_det)
    print(f"{args.generator}, {args.nights} x {args.hours:g} h at {args.rates} Hz, seed offset {offset}")
    print(f"any: truth {n_truth}, detected {n_det}, fn {fn}, fp {fp}, F1 {f1:.3f}")
    for typ in ("fn", "fp"):
        c = Counter((r["label"], r["what"]) for r in rows if r["type"] == typ)
        print(f"== {typ}")
        for (label, what), k in sorted(c.items(), key=lambda x: (-x[1], x[0])):
            print(f"  {k:>4}  {label:<44} {what}")
    if args.list:
        for r in sorted(rows, key=lambda r: (r["type"], r["seed"], r["start"])):
            extra = f" rot {r['rot']:.1f}" if "rot" in r else ""
            print(
                f"{r['type']} {r['seed']} t={r['start']:8.1f} dur {r['dur']:5.2f}  {r['label']:<44} {r['what']}{extra}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
