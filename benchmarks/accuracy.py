"""Detection accuracy on a fixed set of labelled synthetic nights (event-level precision, recall, F1).

    python benchmarks/accuracy.py [--nights N] [--hours H] [--json results.json] [--oracle]

The nights are fixed: seeds ``BASE_SEED + i`` for night ``i``, sample rates cycling through 26, 52 and
104 Hz, every night with the confounders switched on (a bed partner shaking the mattress, two drop-outs,
late sample bursts; timestamp jitter, drift and the rest are drawn from the seed as usual) and three
cramps planted. Each night is
rounded as the CSV would be (timestamps to 1 us, g to 1e-5), run through
``detector.offline.detect_arrays`` and scored with :mod:`detector.scoring` (onset within 1 s or IoU
>= 0.5, one-to-one). Printed: one line per night, a table per rate and overall (precision, recall and F1
per kind and for ``any``), the mean F1 over the three kinds, the periodic-movement scores and the PLM
index error. ``--oracle`` feeds the truth back as the detections, to check the harness itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.events import KINDS_COUNTED
from detector.scoring import KindScore, Scores, format_table, match_events, score, score_periodic
from detector.synthetic import Night, generate_night

RATES = (26.0, 52.0, 104.0)
BASE_SEED = 20260105
#: Confounders forced on for every benchmark night, and three cramps per night (more than a usual
#: night holds) so that the contraction figures rest on more than a handful of events.
CONFOUNDERS: dict[str, Any] = {"partner": True, "gaps": 2, "late_bursts": 6, "cramps": 3}


def fixed_nights(n: int) -> list[tuple[int, float]]:
    """The (seed, rate) of each benchmark night."""
    return [(BASE_SEED + i, RATES[i % len(RATES)]) for i in range(n)]


def _detector(oracle: bool):
    if oracle:
        return None
    try:
        from detector.offline import detect_arrays
    except ImportError as exc:  # the detector is developed alongside
        raise SystemExit(f"accuracy: cannot import detector.offline.detect_arrays: {exc}") from exc
    return detect_arrays


def run_night(night: Night, detect) -> dict[str, Any]:
    t = np.round(night.t, 6)
    xyz = np.round(night.xyz, 5)
    t0 = time.perf_counter()
    if detect is None:
        episodes: list[Any] = list(night.events)
        sleep_window: tuple[float, float] | None = (night.sleep_start, night.sleep_end)
    else:
        det = detect(t, xyz)
        episodes = list(det.episodes)
        sleep_window = getattr(det, "sleep_window", None)
    elapsed = time.perf_counter() - t0
    sc = score(episodes, night.events)
    ps = score_periodic(episodes, night.events, sleep_start=night.sleep_start, sleep_end=night.sleep_end)
    sw_err = None
    if sleep_window is not None:
        sw_err = (sleep_window[0] - night.sleep_start, sleep_window[1] - night.sleep_end)
    return {
        "scores": sc,
        "periodic": ps,
        "sleep_err": sw_err,
        "seconds": elapsed,
        "samples": len(t),
        "errors": explain_errors(episodes, night),
    }


def _overlapping(ev: Any, others: list[Any], slack: float = 1.0) -> list[Any]:
    return [o for o in others if o.start < ev.end + slack and o.end > ev.start - slack]


def explain_errors(detected: list[Any], night: Night) -> Counter[str]:
    """Where the false positives and false negatives of each kind come from.

    Keys ``fp <kind>: <what>`` (what: a truth kind it lay on, a confounder, or ``nothing``) and
    ``fn <kind>: <what>`` (``detected as <kind>``, ``timing`` when a same-kind detection overlaps but
    does not match, or ``missed``).
    """
    out: Counter[str] = Counter()
    truth = night.events
    det = [e for e in detected if e.kind in KINDS_COUNTED]
    for kind in KINDS_COUNTED:
        d = [e for e in det if e.kind == kind]
        g = [e for e in truth if e.kind == kind]
        pairs = match_events(d, g)
        md, mg = {i for i, _ in pairs}, {j for _, j in pairs}
        for i, e in enumerate(d):
            if i in md:
                continue
            hit = [o.kind for o in _overlapping(e, truth)] + [c.kind for c in _overlapping(e, night.confounders)]
            what = next((k for k in (*KINDS_COUNTED, "posture_change", "out_of_bed") if k in hit), None)
            what = what or next(iter(hit), "nothing")
            out[f"fp {kind}: {what}"] += 1
        for j, e in enumerate(g):
            if j in mg:
                continue
            near = _overlapping(e, det, slack=0.5)
            if any(o.kind == kind for o in near):
                out[f"fn {kind}: timing"] += 1
            elif near:
                out[f"fn {kind}: detected as {near[0].kind}"] += 1
            else:
                out[f"fn {kind}: missed"] += 1
    return out


def _fmt_f1(s: Scores) -> str:
    return " ".join(f"{k[:5]}={s[k].f1:.2f}({s[k].n_truth})" for k in (*KINDS_COUNTED, "any"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=9, help="number of nights (rates cycle 26/52/104 Hz)")
    ap.add_argument("--hours", type=float, default=8.0, help="hours per night")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--oracle", action="store_true", help="score the truth against itself (harness check)")
    args = ap.parse_args(argv)
    detect = _detector(args.oracle)

    per_rate: dict[float, Scores] = {r: Scores() for r in RATES}
    periodic = KindScore()
    idx_err: list[float] = []
    sleep_errs: list[tuple[float, float]] = []
    rows: list[dict[str, Any]] = []
    errors: Counter[str] = Counter()
    total_s = 0.0
    total_n = 0
    print(f"{'seed':>9} {'Hz':>4}  F1 per kind (truth count)   PLMI true/det   sleep window err (min)   time")
    for seed, rate in fixed_nights(args.nights):
        night = generate_night(seed, hours=args.hours, rate_hz=rate, **CONFOUNDERS)
        r = run_night(night, detect)
        sc, ps = r["scores"], r["periodic"]
        per_rate[rate] = per_rate[rate] + sc
        periodic = periodic + ps.events
        idx_err.append(ps.index_detected - ps.index_truth)
        errors.update(r["errors"])
        total_s += r["seconds"]
        total_n += r["samples"]
        sw = "-"
        if r["sleep_err"] is not None:
            sleep_errs.append(r["sleep_err"])
            sw = f"{r['sleep_err'][0] / 60:+6.1f} {r['sleep_err'][1] / 60:+6.1f}"
        print(
            f"{seed:>9} {rate:>4.0f}  {_fmt_f1(sc)}  {ps.index_truth:5.1f}/{ps.index_detected:5.1f}  "
            f"{sw:>14}  {r['seconds']:.2f}s"
        )
        rows.append(
            {
                "seed": seed,
                "rate_hz": rate,
                "hours": args.hours,
                "scores": sc.to_dict(),
                "periodic": ps.to_dict(),
                "sleep_err_s": r["sleep_err"],
                "seconds": r["seconds"],
                "errors": dict(r["errors"]),
            }
        )

    print()
    for rate in RATES:
        if any(per_rate[rate][k].n_truth or per_rate[rate][k].n_detected for k in per_rate[rate].by_kind):
            print(format_table(per_rate[rate], title=f"== {rate:.0f} Hz"))
            print()
    overall = sum(per_rate.values(), Scores())
    print(format_table(overall, title=f"== overall ({args.nights} nights x {args.hours:g} h)"))
    print()
    print(
        f"periodic leg movements: P={periodic.precision:.3f} R={periodic.recall:.3f} F1={periodic.f1:.3f} "
        f"(tp {periodic.tp}, fp {periodic.fp}, fn {periodic.fn}); "
        f"PLM index error mean {np.mean(idx_err):+.2f}/h, mean |error| {np.mean(np.abs(idx_err)):.2f}/h"
    )
    if sleep_errs:
        e = np.abs(np.array(sleep_errs)) / 60.0
        print(
            f"sleep window |error|: start median {np.median(e[:, 0]):.1f} min, end median {np.median(e[:, 1]):.1f} min"
        )
    if errors:
        print("errors by cause (fp <detected kind>: <what lay there>, fn <truth kind>: <what happened>):")
        for key, c in sorted(errors.items(), key=lambda kv: (kv[0].split(":")[0], -kv[1])):
            print(f"  {c:>5}  {key}")
    if detect is not None and total_s > 0:
        print(f"detection time: {total_s:.2f} s for {total_n} samples ({total_n / total_s / 1e6:.2f} M samples/s)")
    print(f"MEAN F1 (twitch, leg_movement, contraction): {overall.mean_f1:.3f}")
    if args.json:
        out = {
            "nights": rows,
            "overall": overall.to_dict(),
            "per_rate": {f"{r:.0f}": per_rate[r].to_dict() for r in RATES},
            "periodic": periodic.to_dict(),
            "plm_index_error": idx_err,
            "mean_f1": overall.mean_f1,
            "errors": dict(errors),
        }
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
