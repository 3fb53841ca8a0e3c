"""Twitch or leg movement: how the detector's episode edges sit against the truth's, per confusion.

    python benchmarks/durations.py [--generator physio|field|synthetic] [--nights N] [--hours H]
                                   [--rates 26,52,104] [--split tune|held] [--seed-offset N] [--list]
                                   [--cache DIR]

A twitch lasts under 0.5 s, a leg movement 0.5-10 s (AASM/WASM), and the detector tells them apart by
the duration it measures. For every truth twitch and leg movement this pairs the detected twitch or
leg movement that overlaps it most (+-0.5 s slack, as judged) and prints, per truth kind and detected
kind, how many there are and the median onset error, offset error and measured duration against the
truth's, by sample rate; ``--list`` prints each confusion (twitch read as a leg movement and back).
Nights and seeds are those of ``benchmarks/accuracy.py``; ``--cache DIR`` keeps the generated nights
there (pickles) so that repeated runs only detect.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import RATES, detect_night, fixed_nights, generator, nights_asked

from detector.scoring import JUDGED_SLACK_S

PAIRED = ("twitch", "leg_movement")


def cached_night(gen_name: str, seed: int, hours: float, rate: float, cache: Path | None):
    """The night of ``generator(gen_name)``, from ``cache`` when it holds it."""
    path = cache / f"{gen_name}_{seed}_{hours:g}_{rate:g}.pkl" if cache else None
    if path is not None and path.exists():
        return pickle.loads(path.read_bytes())
    night = generator(gen_name)(seed, hours, rate)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(night))
    return night


def pair_rows(night, detected: list[Any]) -> list[dict[str, Any]]:
    """Each truth twitch / leg movement with the twitch or leg movement detected over it (most overlap)."""
    det = [e for e in detected if e.kind in PAIRED]
    details = night.params.get("event_details") or [{} for _ in night.events]
    rows = []
    for i, g in enumerate(night.events):
        if g.kind not in PAIRED:
            continue
        near = [d for d in det if d.start <= g.end + JUDGED_SLACK_S and d.end >= g.start - JUDGED_SLACK_S]
        best = max(near, key=lambda d: min(d.end, g.end) - max(d.start, g.start)) if near else None
        rows.append(
            {
                "truth": g.kind,
                "det": best.kind if best else "missed",
                "rate": night.rate_hz,
                "seed": night.seed,
                "start": g.start,
                "dur": g.end - g.start,
                "det_dur": (best.end - best.start) if best else np.nan,
                "on_err": (best.start - g.start) if best else np.nan,
                "off_err": (best.end - g.end) if best else np.nan,
                "style": str(details[i].get("style", "strong" if details[i].get("strong") else "gentle"))
                if details[i]
                else "-",
                "rot": float(best.extra.get("rotation_deg", np.nan)) if best else np.nan,
                "n_near": len(near),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="physio", choices=("physio", "field", "synthetic"), help="which nights")
    ap.add_argument("--nights", type=int, default=9, help="nights (rates cycle through --rates)")
    ap.add_argument("--hours", type=float, default=2.0, help="hours per night")
    ap.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES), help="sample rates, Hz, comma-separated")
    ap.add_argument("--split", choices=("tune", "held"), default="tune", help="seeds as benchmarks/accuracy.py")
    ap.add_argument("--seed-offset", type=int, help="add this to every seed (overrides --split)")
    ap.add_argument("--list", action="store_true", help="list every twitch/leg-movement confusion")
    ap.add_argument("--cache", type=Path, help="keep generated nights in this folder")
    args = ap.parse_args(argv)
    rates, offset = nights_asked(ap, args)
    from detector.offline import detect_arrays

    rows: list[dict[str, Any]] = []
    for seed, rate in fixed_nights(args.nights, rates, offset):
        night = cached_night(args.generator, seed, args.hours, rate, args.cache)
        episodes, _, _ = detect_night(night, detect_arrays)
        rows += pair_rows(night, episodes)
    print(f"{args.generator} nights: seeds offset {offset}, {args.nights} x {args.hours:g} h at {args.rates} Hz")
    print(
        f"{'truth':<13}{'detected':<13}{'rate':>6}{'n':>5}{'truth dur':>10}{'det dur':>9}"
        f"{'onset err':>10}{'offset err':>11}"
    )
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["truth"], r["det"], r["rate"])].append(r)
    for (t, d, rate), rs in sorted(groups.items()):
        med = {k: float(np.nanmedian([r[k] for r in rs])) if d != "missed" else np.nan for k in ("det_dur", "on_err")}
        med["off_err"] = float(np.nanmedian([r["off_err"] for r in rs])) if d != "missed" else np.nan
        dur = float(np.median([r["dur"] for r in rs]))
        print(
            f"{t:<13}{d:<13}{rate:>6g}{len(rs):>5}{dur:>10.2f}{med['det_dur']:>9.2f}{med['on_err']:>+10.2f}{med['off_err']:>+11.2f}"
        )
    if args.list:
        for r in rows:
            if r["det"] in PAIRED and r["det"] != r["truth"]:
                print(
                    f"  seed {r['seed']} {r['rate']:>5g} Hz t={r['start']:9.2f} {r['truth']:<12} {r['style']:<7} "
                    f"dur {r['dur']:.2f} -> {r['det']:<12} dur {r['det_dur']:.2f} onset {r['on_err']:+.2f} "
                    f"offset {r['off_err']:+.2f} rot {r['rot']:.1f} near {r['n_near']}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
