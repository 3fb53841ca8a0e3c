"""Write nights of the independent generator (simnights) as legwatch CSV plus a truth JSON, to look at or detect.

    python benchmarks/nights_physio.py OUT_DIR [--nights N] [--hours H] [--rates 12.5,26,52,104,208]
                                       [--seed S] [--knob name=value ...] [--summary-only] [--plot]

Night ``i`` has seed ``S + i`` and the ``i``-th rate (cycling). Each night gives ``night_XX.csv``
(``timestamp,ax,ay,az``: Unix seconds with 6 decimals, g with 5), which ``legwatch detect`` reads, and
``night_XX.truth.json`` (events with kind, start, end, duration_s, periodic; the sleep window; the
confounders; every resolved knob and per-event details such as whether a cramp has a tremor). Knobs are
passed through to ``simnights.generate_night`` (values parsed as JSON where they parse, else strings).
Prints one line per night: file, rate, samples, events per kind, the PLMS index (periodic leg movements
in sleep per hour of sleep), seconds to generate (wall clock and CPU); then, over all nights, per kind:
count, duration (min / median / max, s) and how far the sensor's reading moved inside the span against
its noise (``seen_g`` / noise: 10th percentile, median, share below 4x the noise). ``--summary-only``
writes no files (OUT_DIR is then ignored). ``--plot`` also draws ``night_XX.png``: the three axes over the
night with every labelled event and confounder shaded, the sleep window marked.
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

from detector.synthetic import Night
from simnights import generate_night


def write_csv(night: Night, path: Path) -> None:
    data = np.column_stack([night.t, night.xyz])
    np.savetxt(
        path, data, fmt=["%.6f", "%.5f", "%.5f", "%.5f"], delimiter=",", header="timestamp,ax,ay,az", comments=""
    )


def truth(night: Night) -> dict[str, Any]:
    return {
        "generator": "simnights",
        "seed": night.seed,
        "rate_hz": night.rate_hz,
        "sleep_start": round(night.sleep_start, 6),
        "sleep_end": round(night.sleep_end, 6),
        "events": [e.to_dict() for e in night.events],
        "confounders": [e.to_dict() for e in night.confounders],
        "params": night.params,
    }


COLOURS = {
    "twitch": "tab:red",
    "leg_movement": "tab:blue",
    "contraction": "tab:purple",
    "posture_change": "tab:green",
    "out_of_bed": "tab:orange",
}


def plot(night: Night, path: Path) -> None:
    """The night's three axes (g) against minutes, labelled events shaded by kind (periodic ones darker),
    confounders grey, the sleep window dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = night.t[0]
    minutes = (night.t - t0) / 60.0
    fig, ax = plt.subplots(figsize=(18, 5))
    ax.plot(minutes, night.xyz, lw=0.4)
    for e in night.events:
        ax.axvspan(
            (e.start - t0) / 60, (e.end - t0) / 60 + 0.03, color=COLOURS[e.kind], alpha=0.8 if e.periodic else 0.35
        )
    for c in night.confounders:
        ax.axvspan((c.start - t0) / 60, (c.end - t0) / 60 + 0.03, color="grey", alpha=0.2)
    for edge in (night.sleep_start, night.sleep_end):
        ax.axvline((edge - t0) / 60, color="k", ls="--", lw=0.8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.5) for c in COLOURS.values()]
    ax.legend(handles, list(COLOURS), loc="upper right", fontsize=8)
    ax.set_xlabel("minutes")
    ax.set_ylabel("g")
    ax.set_title(f"simnights seed {night.seed}, {night.rate_hz:g} Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _knob(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--knob wants name=value, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to write into (created)")
    ap.add_argument("--nights", type=int, default=5)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--rates", default="12.5,26,52,104,208", help="comma-separated sample rates, cycled")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--knob", type=_knob, action="append", default=[], help="name=value passed to generate_night")
    ap.add_argument("--summary-only", action="store_true", help="generate and summarise, write nothing")
    ap.add_argument("--plot", action="store_true", help="also draw night_XX.png (the night with its labels)")
    args = ap.parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",") if r]
    except ValueError:
        ap.error(f"--rates: not a list of numbers: {args.rates!r}")
    if not rates or any(not 12.5 <= r <= 208 for r in rates):
        ap.error("--rates must be within 12.5-208 Hz")
    if args.nights < 1 or args.hours <= 0:
        ap.error("--nights must be >= 1 and --hours > 0")
    knobs = dict(args.knob)
    if not args.summary_only:
        args.out.mkdir(parents=True, exist_ok=True)
    durations: dict[str, list[float]] = {}
    snr: dict[str, list[float]] = {}
    for i in range(args.nights):
        rate = rates[i % len(rates)]
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            night = generate_night(args.seed + i, hours=args.hours, rate_hz=rate, **knobs)
        except (TypeError, ValueError) as exc:
            print(f"nights_physio: {exc}", file=sys.stderr)
            return 2
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        stem = args.out / f"night_{i:02d}"
        if not args.summary_only:
            write_csv(night, stem.with_suffix(".csv"))
            stem.with_suffix(".truth.json").write_text(json.dumps(truth(night), indent=1))
            if args.plot:
                plot(night, stem.with_suffix(".png"))
        noise_g = night.params["sensor_noise_mg"] / 1000.0
        for e, d in zip(night.events, night.params["event_details"], strict=True):
            durations.setdefault(e.kind, []).append(e.duration_s)
            snr.setdefault(e.kind, []).append(d["seen_g"] / noise_g)
        counts = Counter(e.kind for e in night.events)
        periodic = sum(e.periodic for e in night.events)
        in_sleep = sum(e.periodic and night.sleep_start <= e.start < night.sleep_end for e in night.events)
        plmsi = in_sleep / ((night.sleep_end - night.sleep_start) / 3600.0)
        print(
            f"{stem.name}.csv  {rate:6.1f} Hz  {len(night.t):8d} samples  "
            + "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f"  (periodic {periodic}, PLMS index {plmsi:.1f}/h)  generated in {took:.2f} s ({cpu:.2f} s CPU)"
        )
    print(
        f"{'kind':16s} {'count':>6s} {'min s':>8s} {'median s':>9s} {'max s':>8s}"
        f" {'seen/noise p10':>15s} {'median':>7s} {'< 4x noise':>11s}"
    )
    for kind in sorted(durations):
        d, r = np.array(durations[kind]), np.array(snr[kind])
        print(
            f"{kind:16s} {len(d):6d} {d.min():8.2f} {np.median(d):9.2f} {d.max():8.2f} "
            f"{np.percentile(r, 10):15.1f} {np.median(r):7.1f} {100 * np.mean(r < 4):10.1f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
