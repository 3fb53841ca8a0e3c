"""Recall on fieldnights split by what the generator says about each truth event: resolvable by the
sensor or not, and the event's context (PLMS, ankle-only, hypnic jerk, REM twitch, ...).

    python benchmarks/field_resolvable.py [--nights 9] [--hours 2] [--rates 26,52,104] [--seed-offset 0]

Same nights, detection and judged matching (+-0.5 s slack) as ``accuracy.py --generator field``. A truth
event counts as found when a detection of its kind matches it. This only reads the generator's labels;
it does not feed anything back into the generator.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy import BASE_SEED, detect_night, fixed_nights

from detector.events import KINDS_COUNTED
from detector.offline import detect_arrays
from detector.scoring import JUDGED_SLACK_S, match_events


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nights", type=int, default=9)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rates", default="26,52,104")
    ap.add_argument("--seed-offset", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        rates = tuple(float(x) for x in args.rates.split(","))
    except ValueError:
        ap.error(f"--rates {args.rates!r}: expected comma-separated numbers")
    import fieldnights

    total: Counter[tuple[str, str, str]] = Counter()
    found: Counter[tuple[str, str, str]] = Counter()
    for seed, rate in fixed_nights(args.nights, rates, args.seed_offset):
        night = fieldnights.generate_night(seed, hours=args.hours, rate_hz=rate)
        episodes, _, _ = detect_night(night, detect_arrays)
        details = night.params["event_details"]
        for kind in KINDS_COUNTED:
            idx = [i for i, e in enumerate(night.events) if e.kind == kind]
            det = [e for e in episodes if e.kind == kind]
            pairs = match_events(det, [night.events[i] for i in idx], slack_s=JUDGED_SLACK_S)
            hit = {idx[j] for _, j in pairs}
            for i in idx:
                d = details[i]
                ctx = str(d.get("context") or "-") + (" ankle-only" if d.get("ankle_only") else "")
                key = (kind, "resolvable" if d["resolvable"] else "not resolvable", ctx)
                total[key] += 1
                found[key] += i in hit
    print(f"{'kind':<13} {'sensor':<15} {'context':<22} {'truth':>6} {'found':>6} {'recall':>7}")
    for kind in KINDS_COUNTED:
        for res in ("resolvable", "not resolvable"):
            keys = sorted(k for k in total if k[0] == kind and k[1] == res)
            if not keys:
                continue
            n, f = sum(total[k] for k in keys), sum(found[k] for k in keys)
            print(f"{kind:<13} {res:<15} {'(all)':<22} {n:>6} {f:>6} {f / n:>7.3f}")
            for k in keys:
                print(f"{'':<13} {'':<15} {k[2]:<22} {total[k]:>6} {found[k]:>6} {found[k] / total[k]:>7.3f}")
    first = BASE_SEED + args.seed_offset
    print(f"seeds {first}..{first + args.nights - 1}, rates {args.rates} Hz, {args.hours:g} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
