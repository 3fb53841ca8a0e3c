"""``legwatch import FILE|FOLDER ...``: detect recorded nights and store their results.

Each file is read (any format ``legwatch.readers`` knows), checked to be a night
(``recording.problems``: one that is not is refused with a one-line reason and nothing of it is
stored) and detected in a worker process, one per core, so a folder of nights uses every core;
the parent writes each night's points to the store in turn (one writer: SQLite and InfluxDB alike)
and lists each file's result as it comes. A bad file is reported and the rest go on; the exit
status is 2 when any file was refused. A folder contributes the files in it whose content is a
recording format (others are listed as skipped).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from legwatch.contracts import localtime
from legwatch.errors import UserError
from legwatch.readers import ReadOptions, RecordingError


def expand(paths: list[str]) -> tuple[list[str], list[str]]:
    """(files to import, files skipped) from the command line's files and folders."""
    from legwatch.readers import sniff

    files, skipped = [], []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            for child in sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")):
                try:
                    known = sniff(child) is not None
                except RecordingError:
                    known = False
                (files if known else skipped).append(str(child))
        else:
            files.append(arg)
    return files, skipped


def analyse(path: str, opts: ReadOptions, subject: str, sensor: str) -> dict:
    """Read, check and detect one file (in a worker): its points and the lines that describe it, or
    its one-line error."""
    from detector.events import KINDS_COUNTED
    from detector.offline import detect_arrays
    from legwatch.recording import load, problems
    from legwatch.storage.schema import night_points
    from legwatch.summary import _hm, data_check, night_date, percent

    try:
        loaded = load(path, opts)
    except RecordingError as exc:
        return {"path": path, "error": str(exc)}
    bad = problems(loaded.t, loaded.xyz)
    if bad:
        return {"path": path, "error": f"{path}: not a night: " + "; ".join(bad) + "; nothing stored"}
    night = detect_arrays(loaded.t, loaded.xyz)
    points = night_points(subject, sensor, night)
    by_measurement: dict[str, int] = {}
    for pt in points:
        by_measurement[pt.measurement] = by_measurement.get(pt.measurement, 0) + 1
    night_pt = next((pt for pt in points if pt.measurement == "night"), None)
    lines = [f"  {loaded.describe()}"]
    if night_pt is None:
        lines.append("  the recording has no usable samples: no night was stored")
    else:
        f = night_pt.fields
        sw = night.sleep_window
        lines.append(
            f"  night of {night_date(night_pt.time)}: recording {_hm(night.start)} – {_hm(night.end)} "
            f"{localtime.short(night.start)}, "
            + (f"sleep {_hm(sw[0])} – {_hm(sw[1])} ({f['sleep_h']:.1f} h)" if sw else "no sleep window found")
            + f", coverage {percent(f['coverage'])}%, {len(night.gaps)} gap(s)"
        )
        in_sleep = {k: int(f[f"{k}_count"]) for k in KINDS_COUNTED}
        outside = sum(1 for e in night.episodes if e.counted and not e.in_sleep)
        lines.append(
            "  episodes in sleep: "
            + ", ".join(f"{k} {n}" for k, n in in_sleep.items())
            + f" (total {int(f['episodes'])}; {outside} more outside the sleep window)"
        )
        lines.append("  points written: " + ", ".join(f"{n} {m}" for m, n in sorted(by_measurement.items())))
        reason = data_check(f)
        if reason:
            lines.append(f"  note: too little data to count this night's episodes ({reason}); the summary will say so")
    return {"path": path, "points": points, "lines": lines, "subject": subject, "sensor": sensor}


def run(
    args,
    cfg,
    *,
    sensor_for: Callable[[str], str],
    open_store: Callable,
    store_name: Callable,
    workers: int | None = None,
) -> int:
    files, skipped = expand(args.files)
    if not files:
        raise UserError(
            f"no recordings among {', '.join(args.files)}" + (f" ({len(skipped)} other files)" if skipped else "")
        )
    if args.sensor and len(files) > 1:
        raise UserError("--sensor names one file's sensor; with many files each is named from its file name")
    opts = ReadOptions(units=args.units, time_unit=args.time_unit, tz=args.tz)
    jobs = []
    for f in files:
        sensor = sensor_for(f)
        jobs.append((f, opts, cfg.subject_for(sensor), sensor))
    store = None
    stored = refused = 0
    try:
        for result in _results(jobs, workers):
            if "error" in result:
                refused += 1
                print(f"legwatch import: error: {result['error']}", file=sys.stderr)
                continue
            if store is None:
                store = open_store(cfg)
            store.write(result["points"])
            stored += 1
            print(
                f"stored the night of {result['path']} for {result['subject']!r} (sensor {result['sensor']!r}) "
                f"in {store_name(store)}:"
            )
            print("\n".join(result["lines"]), flush=True)
    finally:
        if store is not None:
            store.close()
    for s in skipped:
        print(f"skipped {s}: not a recording format legwatch reads")
    if len(files) > 1:
        print(
            f"{stored} of {len(files)} files stored, {refused} refused"
            + (f", {len(skipped)} skipped" if skipped else "")
        )
    return 2 if refused else 0


def _results(jobs: list, workers: int | None):
    """Each job's result as it completes: in this process for one file, else in worker processes
    (one per core) under a progress bar on stderr."""
    if len(jobs) == 1:
        yield analyse(*jobs[0])
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    n = workers or min(
        len(jobs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    console = Console(file=sys.stderr)
    with (
        Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
        # each worker shows times in the configured zone, whatever the start method
        ProcessPoolExecutor(max_workers=max(1, n), initializer=localtime.use, initargs=(localtime.name(),)) as pool,
    ):
        task = bar.add_task("import", total=len(jobs))
        futures = {pool.submit(analyse, *job): job[0] for job in jobs}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as exc:  # a worker that died (memory): that file is reported, the rest go on
                result = {
                    "path": futures[fut],
                    "error": f"{futures[fut]}: could not be analysed ({type(exc).__name__})",
                }
            bar.advance(task)
            yield result
