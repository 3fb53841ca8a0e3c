"""Sleep-window error on labelled nights, with the detections cached so a sleep rule is quick to try.

    python benchmarks/sleep_onset.py [--generator synthetic|physio|field|both|all] [--nights N] [--hours H]
                                     [--split tune|held] [--seed-offset N] [--defaults] [--cache DIR] [--list]

Each night (the seeds and rates of ``benchmarks/accuracy.py``) is run once through
``detector.offline.detect_arrays``; what the detector hands to :func:`detector.sleep.sleep_window`
(the epoch history, the episodes, the first and last sample) is kept in ``--cache`` (default
``benchmarks/.cache/``), keyed by the nights asked for and a hash of the detector's code other than
the sleep rule's (``detector/sleep*.py``). Then ``sleep_window`` of the code as it is now is run on every
cached night and its
window compared with the truth: per generator the median |onset error|, the nights off by more than
5 min, the mean |onset error|, onsets before the recording starts, nights without a window, and the
median |end error|, in minutes. ``--list`` prints every night; ``--defaults`` draws synthetic nights as a
new user's ``generate_night(seed)`` does (every knob from the seed), as ``accuracy.py --defaults``.

A change to the sleep rule is then measured in seconds rather than the minutes detection takes; a
change to detection re-runs it (the hash moves).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import accuracy  # noqa: E402  (the benchmark beside this one: seeds, rates, generators)

TARGET_MIN = accuracy.TARGET_ONSET_MIN


def detector_hash() -> str:
    """A hash of the detector's code that the sleep rule does not live in."""
    h = hashlib.sha256()
    for p in sorted((ROOT / "detector").glob("*.py")):
        if not p.name.startswith("sleep"):
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:12]


def capture(gen: str, nights: list[tuple[int, float]], hours: float, defaults: bool = False) -> list[dict[str, Any]]:
    """Run detection on each night and keep what ``sleep_window`` is given."""
    import detector.stream as stream
    from detector.offline import detect_arrays

    make = accuracy.generator(gen, defaults)
    seen: dict[str, Any] = {}
    real = stream.sleep_window

    def spy(history, episodes, start=None, end=None):
        seen["args"] = (history, list(episodes), start, end)
        return real(history, episodes, start, end)

    stream.sleep_window = spy
    rows = []
    try:
        for seed, rate in nights:
            night = make(seed, hours, rate)
            seen.clear()
            detect_arrays(np.round(night.t, 6), np.round(night.xyz, 5))
            history, episodes, start, end = seen["args"]
            rows.append(
                {
                    "seed": seed,
                    "rate": rate,
                    "args": (history, episodes, start, end),
                    "truth": (float(night.sleep_start), float(night.sleep_end)),
                    "t0": float(night.t[0]),
                }
            )
    finally:
        stream.sleep_window = real
    return rows


def cached(
    gen: str, nights: list[tuple[int, float]], hours: float, cache: Path, defaults: bool = False
) -> list[dict[str, Any]]:
    what = (gen, nights, hours, detector_hash()) + ((True,) if defaults else ())
    key = hashlib.sha256(repr(what).encode()).hexdigest()[:16]
    path = cache / f"sleep-{gen}-{key}.pkl"
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    rows = capture(gen, nights, hours, defaults)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(rows, f)
    tmp.replace(path)
    return rows


def evaluate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The window of today's ``sleep_window`` on each cached night, with its errors in minutes."""
    from detector.sleep import sleep_window

    out = []
    for r in rows:
        sw = sleep_window(*r["args"])
        res = {"seed": r["seed"], "rate": r["rate"], "truth_min": (r["truth"][0] - r["t0"]) / 60.0}
        if sw is None:
            res.update(onset=None, end=None, before=False)
        else:
            res.update(
                onset=(sw[0] - r["truth"][0]) / 60.0,
                end=(sw[1] - r["truth"][1]) / 60.0,
                before=bool(sw[0] < r["t0"] - 1e-6),
            )
        out.append(res)
    return out


def summary(name: str, res: list[dict[str, Any]]) -> str:
    on = np.array([abs(r["onset"]) for r in res if r["onset"] is not None])
    end = np.array([abs(r["end"]) for r in res if r["end"] is not None])
    none = sum(r["onset"] is None for r in res)
    before = sum(r["before"] for r in res)
    if not len(on):
        return f"{name:<10} {len(res):>6} {'-':>8} {'-':>7} {'-':>8} {before:>7} {none:>6} {'-':>8}"
    return (
        f"{name:<10} {len(res):>6} {np.median(on):>8.1f} {int(np.sum(on > TARGET_MIN)):>7d} {np.mean(on):>8.1f}"
        f" {before:>7d} {none:>6d} {np.median(end):>8.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--generator", default="all", choices=(*accuracy.GENERATORS, "both", "all"), help="whose nights (default all)"
    )
    ap.add_argument("--nights", type=int, default=24, help="nights per generator (default 24)")
    ap.add_argument("--hours", type=float, default=2.0, help="hours per night (default 2)")
    ap.add_argument("--rates", default="26,52,104", help="sample rates in Hz, comma-separated (default 26,52,104)")
    ap.add_argument("--split", choices=("tune", "held"), default="tune", help="tuning seeds or held-out ones")
    ap.add_argument("--seed-offset", type=int, help="add this to every seed (overrides --split)")
    ap.add_argument("--defaults", action="store_true", help="synthetic nights as generate_night(seed) draws them")
    ap.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache", help="where detections are kept")
    ap.add_argument("--list", action="store_true", help="print every night's errors")
    args = ap.parse_args(argv)
    if args.nights < 1 or args.hours <= 0:
        ap.error("--nights and --hours must be positive")
    rates, offset = accuracy.nights_asked(ap, args)
    gens = {"all": accuracy.GENERATORS, "both": accuracy.BOTH}.get(args.generator, (args.generator,))
    nights = accuracy.fixed_nights(args.nights, rates, offset)
    print(f"sleep window on {args.nights} x {args.hours:g} h nights per generator, seed offset {offset}, minutes")
    cols = ("nights", "onset|e|", ">5 min", "mean|e|", "before", "none", "end|e|")
    print(f"{'generator':<10} " + " ".join(f"{c:>{w}}" for c, w in zip(cols, (6, 8, 7, 8, 7, 6, 8), strict=True)))
    for gen in gens:
        res = evaluate(cached(gen, nights, args.hours, args.cache, args.defaults))
        if args.list:
            for r in res:
                on = "-" if r["onset"] is None else f"{r['onset']:+6.1f}"
                end = "-" if r["end"] is None else f"{r['end']:+6.1f}"
                head = f"  {gen:<9} {r['seed']} {r['rate']:6g} Hz"
                print(f"{head}  truth onset {r['truth_min']:5.1f}  error {on} end {end}")
        print(summary(gen, res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
