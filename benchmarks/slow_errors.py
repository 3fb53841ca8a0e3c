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

Each false negative also carries what the frames over it showed (``--list``): the peak spread across
gravity over its floor against the frame's jerk threshold (``thr``: 1 is the threshold), and the peak
whole spread, along gravity too, over the same floor (``all``). A twitch missed with ``all`` far above
``thr`` moved the shin along gravity, which the jerk feature ignores (a mattress shaken by someone
else moves the leg that way too). The summary counts the resolvable ones missed so: ``along gravity``
when the whole spread peaked at 4x its floor or more while no frame crossed the jerk threshold.

``resolvable only`` scores again without the truth events the generator says the sensor could not
resolve (physio: ``seen_g`` under 4x the noise, as ``misses.py``; field: ``resolvable`` False): how
far the detector is from what the sensor saw.

Nights and seeds are those of ``benchmarks/accuracy.py --rates R`` (every night at the one rate).

Session 9 (helper A), 12.5 Hz, nine 2-h nights each, tuning seeds (held-out, +1000): any F1 physio
0.948 (0.925), field 0.770 (0.792), synthetic 0.980 (0.975); resolvable only 0.963 (0.953), 0.948
(0.929), 0.980 (0.975). Physio's false negatives are gentle twitches (57 of 72; held-out 84 of 123,
about half of them under 4x the noise) and ankle leg movements (14; 26); of the resolvable twitches
missed, 14 of 31 (23 of 48) are along-gravity jerks, most of the rest stand at 0.5-0.95 of the
threshold with little more along gravity. Its false positives are a partner's movements (24 of 28;
held-out 10 of 27, where 11 lie in a walk: on one night the standing between strides, which the
shin-axis estimate reads at 42 deg, under the 65 deg the getting-up rule asks). Field's false
negatives are nearly all events its sensor did not resolve (107 of 124; 76 of 104); of the
resolvable twitches missed, 7 of 17 (9 of 24) are along-gravity jerks.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import detect_night, fixed_nights, generator, nights_asked, overlapping
from durations import cached_night

from detector.events import KINDS_COUNTED
from detector.features import Features, FeatureStage
from detector.frames import FRAME_S, Framer, Frames
from detector.offline import detect_arrays
from detector.scoring import JUDGED_SLACK_S, match_events
from detector.thresholds import K_SD, Scored, ThresholdStage, concat_scored, sd_factor

#: A missed twitch moved the shin "along gravity" when its whole spread peaked at this many floors.
ALONG_K = 4.0


def scored_frames(night) -> Scored:
    """The detector's scored frames of a night (as ``accuracy.detect_night`` rounds it)."""
    t, xyz = np.round(night.t, 6), np.round(night.xyz, 5)
    framer, feats, thr = Framer(), FeatureStage(), ThresholdStage()
    fr, _ = framer.push(t, xyz)
    f = Features.concat([feats.push(Frames.concat([fr, framer.flush()])), feats.flush()])
    return concat_scored([thr.push(f), thr.flush()])


def _peaks(sc: Scored, times: np.ndarray, t0: float, t1: float) -> tuple[float, float]:
    """Over the frames of t0-0.15..t1+0.15 s: the peak jerk over its threshold, and the peak whole
    spread over the jerk floor."""
    a, b = np.searchsorted(times, (t0 - 0.15, t1 + 0.15))
    if b <= a:
        return 0.0, 0.0
    f = sc.feats
    thr = np.nan_to_num(f.sd_perp[a:b] / (K_SD * sc.floor_sd[a:b] * sd_factor(f.n[a:b])))
    whole = np.nan_to_num(f.sd[a:b] / sc.floor_sd[a:b])
    return float(thr.max()), float(whole.max())


def resolvable(gen: str, night, i: int) -> bool:
    """Whether the generator says the sensor could resolve truth event i (always, without a say)."""
    details = night.params.get("event_details") or []
    d = details[i] if i < len(details) else {}
    if gen == "physio":
        noise_g = float(night.params.get("sensor_noise_mg", 1.0)) / 1000.0
        return float(d.get("seen_g", np.inf)) / noise_g >= 4.0
    if gen == "field":
        return bool(d.get("resolvable", True))
    return True


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


def resolvable_counts(gen: str, night, detected: list[Any]) -> tuple[int, int, int]:
    """Truth, detected and matched counts of the counted kinds, without the unresolvable truth
    events and the detections that lie on them."""
    t_idx = [i for i, e in enumerate(night.events) if e.kind in KINDS_COUNTED]
    keep = [i for i in t_idx if resolvable(gen, night, i)]
    drop = [night.events[i] for i in t_idx if i not in set(keep)]
    truth = [night.events[i] for i in keep]
    det = [e for e in detected if e.kind in KINDS_COUNTED]
    pairs = match_events(det, truth, slack_s=JUDGED_SLACK_S)
    md = {i for i, _ in pairs}
    det_n = sum(1 for i, e in enumerate(det) if i in md or not overlapping(e, drop, slack=JUDGED_SLACK_S))
    return len(truth), det_n, len(pairs)


def night_errors(gen: str, night, detected: list[Any]) -> list[dict[str, Any]]:
    """Each any-episode false negative and false positive of one night, with its cause."""
    t_idx = [i for i, e in enumerate(night.events) if e.kind in KINDS_COUNTED]
    truth = [night.events[i] for i in t_idx]
    det = [e for e in detected if e.kind in KINDS_COUNTED]
    pairs = match_events(det, truth, slack_s=JUDGED_SLACK_S)
    md, mt = {i for i, _ in pairs}, {j for _, j in pairs}
    sc = scored_frames(night)
    times = (sc.feats.idx + 0.5) * FRAME_S
    out: list[dict[str, Any]] = []
    for j, e in enumerate(truth):
        if j in mt:
            continue
        near = overlapping(e, detected, slack=JUDGED_SLACK_S)
        counted = [o for o in near if o.kind in KINDS_COUNTED]
        what = "merged" if counted else f"as {near[0].kind}" if near else "missed"
        thr, whole = _peaks(sc, times, e.start, e.end)
        out.append(
            {
                "type": "fn",
                "kind": e.kind,
                "label": _truth_label(gen, night, t_idx[j]),
                "what": what,
                "start": e.start - night.t[0],
                "dur": e.end - e.start,
                "seed": night.seed,
                "thr": thr,
                "whole": whole,
                "resolvable": resolvable(gen, night, t_idx[j]),
            }
        )
    others = [e for e in night.events if e.kind not in KINDS_COUNTED] + list(night.confounders)
    for i, e in enumerate(det):
        if i in md:
            continue
        under = overlapping(e, truth, slack=JUDGED_SLACK_S)
        if under:
            what = f"split {under[0].kind}"
        else:
            hit = overlapping(e, others, slack=0.0)
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
    res = np.zeros(3, int)
    for seed, rate in fixed_nights(args.nights, rates, offset):
        night = cached_night(args.generator, seed, args.hours, rate, args.cache)
        episodes, _, _ = detect_night(night, detect_arrays)
        n_truth += sum(e.kind in KINDS_COUNTED for e in night.events)
        n_det += sum(e.kind in KINDS_COUNTED for e in episodes)
        rows.extend(night_errors(args.generator, night, episodes))
        res += resolvable_counts(args.generator, night, episodes)
    fn = sum(r["type"] == "fn" for r in rows)
    fp = sum(r["type"] == "fp" for r in rows)
    tp = n_truth - fn
    f1 = 2 * tp / max(1, n_truth + n_det)
    print(f"{args.generator}, {args.nights} x {args.hours:g} h at {args.rates} Hz, seed offset {offset}")
    print(f"any: truth {n_truth}, detected {n_det}, fn {fn}, fp {fp}, F1 {f1:.3f}")
    r_f1 = 2 * res[2] / max(1, res[0] + res[1])
    print(f"resolvable only: truth {res[0]}, detected {res[1]}, matched {res[2]}, F1 {r_f1:.3f}")
    tw = [r for r in rows if r["type"] == "fn" and r["kind"] == "twitch" and r["resolvable"]]
    along = sum(r["whole"] >= ALONG_K and r["thr"] <= 1.0 for r in tw)
    print(
        f"resolvable twitches missed: {len(tw)}, along gravity (whole >= {ALONG_K:g}x floor, under threshold): {along}"
    )
    for typ in ("fn", "fp"):
        c = Counter((r["label"], r["what"]) for r in rows if r["type"] == typ)
        print(f"== {typ}")
        for (label, what), k in sorted(c.items(), key=lambda x: (-x[1], x[0])):
            print(f"  {k:>4}  {label:<44} {what}")
    if args.list:
        for r in sorted(rows, key=lambda r: (r["type"], r["seed"], r["start"])):
            extra = f" rot {r['rot']:.1f}" if "rot" in r else f" thr {r['thr']:.2f} all {r['whole']:.1f}"
            print(
                f"{r['type']} {r['seed']} t={r['start']:8.1f} dur {r['dur']:5.2f}  {r['label']:<44} {r['what']}{extra}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
