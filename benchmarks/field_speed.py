"""Time to generate one labelled night with each generator, in the same run (median of repeats).

    python benchmarks/field_speed.py [--hours 2] [--rate 52] [--repeats 3]

``fieldnights`` is reported against ``detector.synthetic`` and ``simnights`` on the same night length and
rate, as a ratio (the machine's speed cancels out). Nights of seeds 1..repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _time(gen: Callable[..., object], hours: float, rate: float, repeats: int) -> float:
    gen(0, hours=min(hours, 0.1), rate_hz=rate)  # imports and first-call costs out of the way
    out = []
    for seed in range(1, repeats + 1):
        t0 = time.perf_counter()
        gen(seed, hours=hours, rate_hz=rate)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=52.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.hours <= 0 or args.rate <= 0 or args.repeats < 1:
        ap.error("--hours and --rate must be positive, --repeats at least 1")
    import fieldnights
    import simnights
    from detector import synthetic

    gens = {
        "fieldnights": fieldnights.generate_night,
        "synthetic": synthetic.generate_night,
        "simnights": simnights.generate_night,
    }
    times = {name: _time(g, args.hours, args.rate, args.repeats) for name, g in gens.items()}
    print(f"one {args.hours:g}-h night at {args.rate:g} Hz, median of {args.repeats}:")
    for name, s in times.items():
        print(f"  {name:<12} {s:6.2f} s  ({s / times['fieldnights']:.2f}x fieldnights)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
