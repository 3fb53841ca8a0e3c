"""How long ``legwatch report`` takes for 90 nights, against a reference measured in the same run.

    .venv/bin/python benchmarks/report.py [--nights 90] [--runs 3] [--json results.json]

A SQLite store is filled with ``--nights`` planted nights (tests/month.py: about 55 episodes a
night, gaps, a statin, water, and a stretching experiment over the first 28 nights). Measured, the
median of ``--runs``, in this process (imports warm):

- reference: the morning summary of every night of the period (``summary.build`` x N), what one
  would otherwise run to see the period night by night;
- ``report.build`` (the JSON), ``report_pdf.render_pdf`` and ``report_html.render_html`` after it.

Printed: wall-clock and CPU seconds (CPU is steadier on a shared machine) and the ratio of each to
the reference. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from month import NOW, dates, store_month  # noqa: E402

from legwatch import report, summary  # noqa: E402
from legwatch.experiment import make_plan  # noqa: E402
from legwatch.report_html import render_html  # noqa: E402
from legwatch.report_pdf import render_pdf  # noqa: E402
from legwatch.storage.sqlite import SqliteStore  # noqa: E402

CPU: dict[int, float] = {}


def _time(fn, runs: int) -> tuple[float, object]:
    """Median wall-clock seconds of ``fn`` (its median CPU seconds kept in ``CPU[id(fn)]``)."""
    times, cpu, out = [], [], None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU[id(fn)] = statistics.median(cpu)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=90)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "legwatch.sqlite")
        nights = dates("2026-08-01", args.nights)
        plan = make_plan(store, "me", "stretching", 28, seed=1, start=nights[0], now=NOW)
        schedule = list(plan.schedule) + [False] * (args.nights - 28)
        store_month(store, "me", nights, schedule, factor=0.6, seed=1, extras=True)
        fns = {
            "ref": lambda: [summary.build(store, "me", n) for n in nights],
            "build": lambda: report.build(store, "me", nights[0], nights[-1], now=NOW),
        }
        ref, _ = _time(fns["ref"], args.runs)
        t_build, doc = _time(fns["build"], args.runs)
        fns["pdf"] = lambda: render_pdf(doc)
        fns["html"] = lambda: render_html(doc)
        t_pdf, pdf = _time(fns["pdf"], args.runs)
        t_html, html = _time(fns["html"], args.runs)
        cpu = {k: CPU[id(f)] for k, f in fns.items()}
        store.close()
    res = {
        "nights": args.nights,
        "episodes": sum(r["episodes"] or 0 for r in doc["nights"]),
        "reference_summaries_s": round(ref, 3),
        "report_json_s": round(t_build, 3),
        "report_pdf_s": round(t_build + t_pdf, 3),
        "report_html_s": round(t_build + t_html, 3),
        "cpu_s": {
            "reference": round(cpu["ref"], 3),
            "report_json": round(cpu["build"], 3),
            "report_pdf": round(cpu["build"] + cpu["pdf"], 3),
            "report_html": round(cpu["build"] + cpu["html"], 3),
        },
        "pdf_bytes": len(pdf),
        "html_bytes": len(html),
    }
    print(f"{args.nights} nights, {res['episodes']} episodes; median of {args.runs} runs")
    print(f"  reference: summary of each night x {args.nights}: {ref:.2f} s (CPU {res['cpu_s']['reference']:.2f} s)")
    for key, label in (("report_json_s", "report JSON"), ("report_pdf_s", "report PDF"),
                       ("report_html_s", "report HTML")):  # fmt: skip
        c = res["cpu_s"][key.removesuffix("_s")]
        print(
            f"  {label:12s} {res[key]:.2f} s  ({res[key] / ref:.2f} x the reference); CPU {c:.2f} s "
            f"({c / res['cpu_s']['reference']:.2f} x)"
        )
    print(f"  PDF {res['pdf_bytes'] / 1024:.0f} KiB, HTML {res['html_bytes'] / 1024:.0f} KiB")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
