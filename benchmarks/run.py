"""legwatch speed and size, measured in one run against references measured in the same run.

    .venv/bin/python benchmarks/run.py [--runs 5] [--sensors 10,100,500] [--monitor-seconds 90]
                                       [--only detect,core,memory,monitor] [--json results.json]
                                       [--against DIR]

1. ``detect``: ``legwatch detect NIGHT.csv --format json`` on an 8-hour 52 Hz night (~1.5 million
   samples) as a whole process (interpreter start, imports, CSV, detection, JSON out), against
   scikit-digital-health's sleep pipeline (``peer_skdh.py``: ReadCSV -> GetDayWindowIndices ->
   Sleep) on the same file, also a whole process, alternating, median of ``--runs``. The peer runs
   in this benchmark's own virtualenv ``benchmarks/.venv-peer``, created here on first use.
   ``--against DIR`` also runs the ``legwatch detect`` of another checkout (e.g. ``git worktree
   add DIR COMMIT``, or an unpacked ``git archive``) in the same alternation, on the same files and
   interpreter: its times, its ratio to the peer, whether its output is identical to this one's,
   and this checkout's speed-up over it, each measured in the same minutes on the same machine.
2. ``core``: reading the CSV (against ``np.loadtxt``, the reader's careful path) and the detection
   core alone (``detect_arrays`` on samples in memory), against real time.
3. ``memory``: one ``StreamDetector`` fed a 2-hour and an 8-hour night in 1 s batches; what it
   retains at the end (tracemalloc), its checkpoint size and what writing its checkpoint file costs
   (the monitor writes a few such files every 0.25 s), against the 2-hour night.
4. ``monitor``: N simulated 52 Hz sensors (publisher processes, real time, 1 batch per sensor per
   second) through a real Mosquitto into ONE monitor process pinned to one core, for each N:
   whether it keeps up, per-batch latency (publish -> processed), CPU share of its core and RSS.

Everything is pinned where the machine allows: the measured process on core 0 (``taskset -c 0``),
the broker and the publishers on core 1. Nothing here is a test; numbers vary with the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import io
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # services.MosquittoService

PEER_VENV = HERE / ".venv-peer"
PEER_REQUIREMENT = "scikit-digital-health==0.17.18"
SEED = 20260105
RATE = 52.0
GOAL_DETECT_RATIO = 3.0
GOAL_P99_MS = 50.0


# --- small helpers ------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def ncpu() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def pin_prefix(core: int) -> list[str]:
    """``taskset -c CORE`` where there is such a core and taskset; else nothing."""
    if core in ncpu() and len(ncpu()) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def pin_pid(pid: int, core: int) -> None:
    if core in ncpu() and len(ncpu()) > 1 and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {core})


def legwatch_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "legwatch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "legwatch"]


def against_cmd(code: Path) -> list[str]:
    """``legwatch`` from the checkout ``code`` (first on PYTHONPATH; ``-P``: not the working
    directory's), as the console script runs it (no ``-m``: runpy)."""
    return [sys.executable, "-P", "-c", "import sys; from legwatch.cli import main; sys.exit(main())"]


def against_env(env: dict, code: Path) -> dict:
    return {**env, "PYTHONPATH": str(code)}


def timed_run(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` to completion: wall time, CPU time (user + sys) and peak RSS of that process,
    measured by ``measure.py`` (a small parent: see there why)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as d:
        figures = Path(d) / "figures.json"
        p = subprocess.run(
            [sys.executable, str(HERE / "measure.py"), str(figures), *cmd],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        out.seek(0)
        err.seek(0)
        failed = {"wall": 0.0, "cpu": 0.0, "rss": 0, "rc": p.returncode or 1}
        doc = json.loads(figures.read_text()) if figures.exists() else failed
        return {
            **doc,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace")[-2000:],
        }


def pct(xs, q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if len(xs) else float("nan")


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def kb(n: float) -> str:
    return f"{n / 1e3:.0f} kB"


# --- data ---------------------------------------------------------------------------------------


def make_night(work: Path, hours: float, seed: int = SEED) -> tuple[Path, Path]:
    """An 8-hour night as the recording CSV and as quantized arrays (.npz) for the publishers."""
    from detector.synthetic import generate_night, write_csv
    from legwatch.contracts.payload import quantize

    night = generate_night(seed, hours=hours, rate_hz=RATE)
    csv = work / f"night-{hours:g}h.csv"
    write_csv(night, csv)
    t, xyz = quantize(np.round(night.t, 6), np.round(night.xyz, 5))
    order = np.argsort(t, kind="stable")
    npz = work / f"night-{hours:g}h.npz"
    np.savez(npz, t=t[order], xyz=xyz[order])
    return csv, npz


FORMATS = {
    "repr": "Python's repr (what pandas and the csv module write: varying decimals, a few exponents)",
    "%.18e": "numpy.savetxt's default (an exponent on every field)",
}


def write_variants(csv: Path) -> dict[str, Path]:
    """The same recording with its numbers written each of the ``FORMATS`` ways."""
    from legwatch.csvio import HEADER, read_csv

    t, xyz = read_csv(csv)
    data = np.column_stack([t, xyz])
    out = {}
    for fmt in FORMATS:
        path = out[fmt] = csv.with_name(f"{csv.stem}-{'repr' if fmt == 'repr' else 'e18'}.csv")
        if fmt == "repr":
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(",".join(HEADER) + "\n")
                fh.writelines(f"{a!r},{b!r},{c!r},{d!r}\n" for a, b, c, d in data.tolist())
        else:
            np.savetxt(path, data, fmt=fmt, delimiter=",", header=",".join(HEADER), comments="")
    return out


# --- the peer's virtualenv ---------------------------------------------------------------------


def ensure_peer() -> tuple[Path | None, str]:
    """benchmarks/.venv-peer with scikit-digital-health; (python, version) or (None, why not)."""
    py = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / ".installed"
    if not (py.exists() and marker.exists() and marker.read_text().strip() == PEER_REQUIREMENT):
        say(f"  setting up {PEER_VENV.relative_to(ROOT)} with {PEER_REQUIREMENT} (first run only) ...")
        if not py.exists():
            r = subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], capture_output=True, text=True)
            if r.returncode:
                return None, f"python -m venv failed: {r.stderr.strip()[-300:]}"
        r = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", PEER_REQUIREMENT],
            capture_output=True,
            text=True,
        )
        if r.returncode:
            tail = " ".join(r.stderr.strip().splitlines()[-3:])[-400:]
            return None, f"pip install {PEER_REQUIREMENT} failed: {tail}"
        marker.write_text(PEER_REQUIREMENT + "\n")
    # pip leaves no .pyc files when PYTHONDONTWRITEBYTECODE is set; without them the peer would
    # compile numpy, scipy and pandas from source on every run (about 5 s of an 8 s run here)
    site = [str(p) for p in (PEER_VENV / "lib").glob("python3*/site-packages")]
    subprocess.run([str(py), "-m", "compileall", "-q", "-j", "0", *site], capture_output=True, check=False)
    r = subprocess.run([str(py), "-c", "import skdh; print(skdh.__version__)"], capture_output=True, text=True)
    if r.returncode:
        return None, f"import skdh failed: {r.stderr.strip().splitlines()[-1:]}"
    return py, r.stdout.strip()


# --- 1. whole-process detect against the peer ------------------------------------------------------


def bench_detect(
    csv: Path, variants: dict[str, Path], runs: int, use_peer: bool, res: dict, against: Path | None = None
) -> None:
    say("== 1. legwatch detect, whole process, 8-hour 52 Hz night from CSV to episodes")
    n_samples = csv.read_bytes().count(b"\n") - 1
    size = csv.stat().st_size
    say(f"  file: {n_samples:,} samples, {mb(size)}; pinned: {' '.join(pin_prefix(0)) or 'no'}")
    lw_cmd = [*pin_prefix(0), *legwatch_cmd(), "detect", str(csv), "--format", "json"]
    peer_py, peer_info = ensure_peer() if use_peer else (None, "skipped (--no-peer)")
    peer_cmd = [*pin_prefix(0), str(peer_py), str(HERE / "peer_skdh.py"), str(csv)] if peer_py else None
    if peer_py is None:
        say(f"  peer: NOT MEASURED: {peer_info}")
    else:
        say(f"  peer: scikit-digital-health {peer_info} in {PEER_VENV.relative_to(ROOT)}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    lw, peer = [], []
    # .pyc files as an installed package has them (pip compiles at install, as it did the peer's);
    # with PYTHONDONTWRITEBYTECODE set, an editable checkout would compile from source every run
    pkgs = [str(code / d) for code in (ROOT, against) if code for d in ("legwatch", "detector", "collector")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *pkgs], capture_output=True, check=False)
    first = timed_run(lw_cmd, env)  # warm-up: page cache
    if first["rc"]:
        say(f"  legwatch detect FAILED (exit {first['rc']}): {first['stderr'].strip()[-500:]}")
        return
    base_cmd = base_env = None
    if against is not None:
        base_cmd = [*pin_prefix(0), *against_cmd(against), *lw_cmd[-4:]]
        base_env = against_env(env, against)
        w = timed_run(base_cmd, base_env)
        if w["rc"]:
            say(f"  --against {against}: detect FAILED (exit {w['rc']}): {w['stderr'].strip()[-300:]}")
            base_cmd = None
        else:
            say(f"  against  : the checkout in {against}, alternating with this one")
    base: list[dict] = []
    peer_fail = None
    if peer_cmd:
        w = timed_run(peer_cmd)
        if w["rc"]:
            peer_fail = f"exit {w['rc']}: {w['stderr'].strip().splitlines()[-1:]}"
            say(f"  peer FAILED on this file ({peer_fail}): no ratio")
            peer_cmd = None
    for _ in range(runs):
        lw.append(timed_run(lw_cmd, env))
        if base_cmd:
            base.append(timed_run(base_cmd, base_env))
        if peer_cmd:
            peer.append(timed_run(peer_cmd))
    out = json.loads(lw[-1]["stdout"])
    lw_wall = statistics.median(r["wall"] for r in lw)
    lw_cpu = statistics.median(r["cpu"] for r in lw)
    res["detect"] = {
        "samples": n_samples,
        "bytes": size,
        "runs": runs,
        "walls": [r["wall"] for r in lw],
        "wall_median": lw_wall,
        "cpu_median": lw_cpu,
        "rss_max": max(r["rss"] for r in lw),
        "samples_per_s": n_samples / lw_wall,
        "counts": out.get("counts"),
        "sleep": [out.get("sleep_start"), out.get("sleep_end")],
        "peer": peer_info if peer_py else None,
        "peer_problem": None if peer_py and not peer_fail else (peer_fail or peer_info),
    }
    say(
        f"  legwatch : median {lw_wall:.2f} s wall ({_list(r['wall'] for r in lw)}), "
        f"{lw_cpu:.2f} s CPU, peak RSS {mb(max(r['rss'] for r in lw))}, "
        f"{n_samples / lw_wall / 1e6:.2f} M samples/s"
    )
    if peer:
        pw = statistics.median(r["wall"] for r in peer)
        pc = statistics.median(r["cpu"] for r in peer)
        pout = json.loads(peer[-1]["stdout"].strip().splitlines()[-1])
        res["detect"].update(
            peer_walls=[r["wall"] for r in peer],
            peer_wall_median=pw,
            peer_cpu_median=pc,
            peer_rss_max=max(r["rss"] for r in peer),
            peer_out=pout,
            ratio_wall=pw / lw_wall,
            ratio_cpu=pc / lw_cpu,
        )
        say(
            f"  skdh     : median {pw:.2f} s wall ({_list(r['wall'] for r in peer)}), "
            f"{pc:.2f} s CPU, peak RSS {mb(max(r['rss'] for r in peer))}, {n_samples / pw / 1e6:.2f} M samples/s"
        )
        verdict = "goal met" if pw / lw_wall >= GOAL_DETECT_RATIO else "goal NOT met"
        say(
            f"  ratio    : legwatch is {pw / lw_wall:.2f}x faster than skdh in wall time "
            f"({pc / lw_cpu:.2f}x in CPU time); goal >= {GOAL_DETECT_RATIO:g}x: {verdict}"
        )
        if out.get("sleep_start") and pout.get("tso_start"):
            say(
                f"  sanity   : legwatch sleep window {(out['sleep_end'] - out['sleep_start']) / 60:.0f} min from "
                f"{_hm(out['sleep_start'])}; skdh sleep opportunity {pout.get('tso_duration_min') or 0:.0f} min "
                f"from {_hm(pout['tso_start'])} (naive clock = UTC here)"
            )
    if base:
        res["detect"]["against"] = _say_against(against, lw, base, peer)
    say(f"  legwatch counts: {out.get('counts')}")
    if peer_cmd:
        # the same night written with Python's repr (what pandas and the csv module write): the
        # goal holds there too, so it is measured as the plain file is (alternating, --runs each)
        variant = variants["repr"]
        lw_v, peer_v, base_v = [], [], []
        for _ in range(runs):
            lw_v.append(timed_run([*lw_cmd[:-3], str(variant), "--format", "json"], env))
            if base_cmd:
                base_v.append(timed_run([*base_cmd[:-3], str(variant), "--format", "json"], base_env))
            peer_v.append(timed_run([*peer_cmd[:-1], str(variant)]))
        failed = [r for r in lw_v + peer_v if r["rc"]]
        if failed:
            say(f"  repr night: a run FAILED (exit {failed[0]['rc']}): {failed[0]['stderr'].strip()[-300:]}")
        else:
            a, b = (statistics.median(r["wall"] for r in x) for x in (lw_v, peer_v))
            ac, bc = (statistics.median(r["cpu"] for r in x) for x in (lw_v, peer_v))
            res["detect"]["repr"] = {
                "walls": [r["wall"] for r in lw_v],
                "peer_walls": [r["wall"] for r in peer_v],
                "wall_median": a,
                "cpu_median": ac,
                "peer_wall_median": b,
                "peer_cpu_median": bc,
                "ratio_wall": b / a,
                "ratio_cpu": bc / ac,
            }
            verdict = "goal met" if b / a >= GOAL_DETECT_RATIO else "goal NOT met"
            say(
                f"  repr     : the same night as {FORMATS['repr']}: legwatch median {a:.2f} s wall "
                f"({_list(r['wall'] for r in lw_v)}), {ac:.2f} s CPU; skdh {b:.2f} s wall "
                f"({_list(r['wall'] for r in peer_v)}), {bc:.2f} s CPU"
            )
            say(
                f"  ratio    : {b / a:.2f}x faster in wall time ({bc / ac:.2f}x in CPU time); "
                f"goal >= {GOAL_DETECT_RATIO:g}x: {verdict}"
            )
            if base_v:
                res["detect"]["repr"]["against"] = _say_against(against, lw_v, base_v, peer_v)


def _say_against(against: Path | None, lw: list[dict], base: list[dict], peer: list[dict]) -> dict:
    """The other checkout's figures from the same alternation, said and returned."""
    bw, bc = (statistics.median(r[k] for r in base) for k in ("wall", "cpu"))
    lw_wall, lw_cpu = (statistics.median(r[k] for r in lw) for k in ("wall", "cpu"))
    same = all(r["stdout"] == lw[-1]["stdout"] for r in (*lw, *base))
    doc = {
        "code": str(against),
        "walls": [r["wall"] for r in base],
        "wall_median": bw,
        "cpu_median": bc,
        "speedup_wall": bw / lw_wall,
        "speedup_cpu": bc / lw_cpu,
        "identical_output": same,
    }
    line = f"  against  : median {bw:.2f} s wall ({_list(r['wall'] for r in base)}), {bc:.2f} s CPU"
    if peer:
        pw = statistics.median(r["wall"] for r in peer)
        doc["ratio_wall"] = pw / bw
        line += f", {pw / bw:.2f}x faster than skdh"
    say(line)
    say(
        f"  speed-up : this checkout takes {lw_wall / bw:.0%} of its wall time ({lw_cpu / bc:.0%} of its CPU "
        f"time); output {'identical' if same else 'DIFFERENT'}"
    )
    return doc


def _list(xs) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def _hm(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M")


# --- 2. reading and the detection core in memory -------------------------------------------------


def bench_core(csv: Path, variants: dict[str, Path], res: dict) -> None:
    from detector.offline import OFFLINE_BATCH, detect_arrays
    from legwatch.contracts.payload import quantize
    from legwatch.csvio import read_csv

    say("== 2. reading the CSV and the detection core alone (in memory, this process)")
    reads = []
    for _ in range(3):
        t0 = time.perf_counter()
        t, xyz = read_csv(csv)
        reads.append(time.perf_counter() - t0)
    raw = csv.read_bytes()
    t0 = time.perf_counter()
    ref = np.loadtxt(io.BytesIO(raw[raw.index(b"\n") + 1 :]), delimiter=",", ndmin=2)
    loadtxt_s = time.perf_counter() - t0
    same = bool(np.array_equal(ref[:, 0], t) and np.array_equal(ref[:, 1:], xyz))
    del ref, raw
    n = len(t)
    r = min(reads)
    say(
        f"  read_csv : {r:.3f} s ({n / r / 1e6:.1f} M rows/s); np.loadtxt {loadtxt_s:.3f} s: "
        f"{loadtxt_s / r:.1f}x faster, {'identical' if same else 'DIFFERENT'} values"
    )
    formats = {}
    for fmt, what in FORMATS.items():
        variant = variants[fmt]
        t0 = time.perf_counter()
        tv, xv = read_csv(variant)
        rv = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = np.loadtxt(variant, delimiter=",", skiprows=1, ndmin=2)
        lv = time.perf_counter() - t0
        ulp = float(np.max(np.abs(np.column_stack([tv, xv]) - ref) / np.spacing(np.abs(ref))))
        formats[fmt] = {"read_s": rv, "loadtxt_s": lv, "max_ulp": ulp}
        say(
            f"  {fmt:>9}: read_csv {rv:.3f} s, np.loadtxt {lv:.3f} s: {lv / rv:.1f}x faster; values "
            + ("identical" if ulp == 0 else f"within {ulp:g} ulp")
            + f" ({what})"
        )
        del tv, xv, ref
    t, xyz = quantize(t, xyz)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        night = detect_arrays(t, xyz)  # as `legwatch detect` runs it
        runs.append(time.perf_counter() - t0)
    core = statistics.median(runs)
    span = float(t[-1] - t[0])
    t0 = time.perf_counter()
    detect_arrays(t, xyz, batch=int(RATE))
    streamed = time.perf_counter() - t0
    res["core"] = {
        "read_s": r,
        "loadtxt_s": loadtxt_s,
        "read_identical": same,
        "formats": formats,
        "detect_s": core,
        "samples_per_s": n / core,
        "x_real_time": span / core,
        "streamed_1s_batches_s": streamed,
        "streamed_samples_per_s": n / streamed,
        "episodes": len(night.episodes),
    }
    say(
        f"  detect_arrays (as detect runs it, {OFFLINE_BATCH:,}-sample pieces): median {core:.3f} s = "
        f"{n / core / 1e6:.2f} M samples/s, "
        f"{span / core:,.0f}x real time ({n / core / RATE:,.0f} sensors' worth per core)"
    )
    say(
        f"  detect_arrays (1 s batches, as the monitor feeds it): {streamed:.2f} s = "
        f"{n / streamed / 1e6:.2f} M samples/s, {span / streamed:,.0f}x real time, "
        f"{streamed / (span / 1.0) * 1e3:.2f} ms per batch; {streamed / core:.1f}x the time in large pieces"
    )
    if "detect" in res:
        whole = res["detect"]["wall_median"]
        say(
            f"  share of the whole-process detect ({whole:.2f} s): reading {r / whole:.0%}, "
            f"detection {core / whole:.0%}, the rest (interpreter, imports, quantize, JSON) "
            f"{max(0.0, whole - r - core) / whole:.0%}"
        )


# --- 3. memory per stream ---------------------------------------------------------------------------


def bench_memory(work: Path, streams: int, res: dict) -> None:
    from detector.stream import StreamDetector
    from detector.synthetic import generate_night
    from legwatch.contracts.config import KEYS
    from legwatch.contracts.payload import quantize
    from legwatch.monitor.checkpoint_files import encode_stream
    from legwatch.monitor.checkpointer import CHECKPOINT_TICK_S as tick
    from legwatch.monitor.router import SensorStream
    from legwatch.replay import batches

    every = KEYS["monitor.checkpoint_s"][1]  # the default: each stream saved at least this often
    say("== 3. memory per stream: one StreamDetector fed in 1 s batches (tracemalloc)")
    out = {}
    for hours in (2.0, 8.0):
        night = generate_night(SEED + 1, hours=hours, rate_hz=RATE)
        t, xyz = quantize(np.round(night.t, 6), np.round(night.xyz, 5))
        slices = list(batches(t))
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        det = StreamDetector()
        t0 = time.perf_counter()
        for sl in slices:
            det.push(t[sl], xyz[sl])
        el = time.perf_counter() - t0
        gc.collect()  # what the stream keeps, not garbage waiting for the collector
        cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        stream = SensorStream(detector=det, last_seq=len(slices) - 1, batches=len(slices))
        state = len(encode_stream({"sensor": "s", "journal_from": 1, "stream": stream.state(), "ended": None}))
        ckpt_s, ckpt_bytes = _checkpoint_cost(work, stream, streams)
        out[hours] = {
            "batches": len(slices),
            "retained": cur - base,
            "peak": peak - base,
            "state_bytes": state,
            "episodes": len(det.episodes),
            "push_s_traced": el,
            "checkpoint_s": ckpt_s,
            "checkpoint_bytes": ckpt_bytes,
        }
        say(
            f"  {hours:g} h night ({len(slices):,} batches): retained {kb(cur - base)}, peak {kb(peak - base)}, "
            f"checkpoint state {kb(state)}, {len(det.episodes)} episodes kept; one stream's checkpoint file "
            f"(state + npz + fsync) {ckpt_s * 1e3:.1f} ms: {streams} streams every {every:g} s are "
            f"{streams / every * ckpt_s * 1e3:.0f} ms/s in ~{math.ceil(streams * tick / every)}-stream ticks "
            f"every {tick:g} s, {mb(ckpt_bytes)} on disk"
        )
    a, b = out[2.0], out[8.0]
    say(
        f"  8 h / 2 h: retained {b['retained'] / a['retained']:.2f}x, "
        f"checkpoint state {b['state_bytes'] / a['state_bytes']:.2f}x, "
        f"peak {b['peak'] / a['peak']:.2f}x (the night is 4x longer); 500 streams at 8 h: "
        f"~{mb(500 * b['retained'])} retained"
    )
    res["memory"] = {f"{k:g}h": v for k, v in out.items()}


def _checkpoint_cost(work: Path, stream, streams: int) -> tuple[float, int]:
    """One stream's checkpoint as the monitor writes it (its state as data, npz, temp file, fsync,
    rename), median of 20, and the bytes of ``streams`` such files."""
    from legwatch.monitor.checkpoint_files import Checkpoints, encode_stream

    ck = Checkpoints(work / "ckpt")
    times = []
    for i in range(20):
        t0 = time.perf_counter()
        rec = {"sensor": f"s{i}", "journal_from": 1, "stream": stream.state(), "ended": None}
        ck.save_stream_bytes(f"s{i}", encode_stream(rec))
        times.append(time.perf_counter() - t0)
    size = ck.stream_path("s0").stat().st_size
    shutil.rmtree(work / "ckpt")
    return statistics.median(times), size * streams


# --- 4. the monitor under load ------------------------------------------------------------------------


def bench_monitor(
    npz: Path, work: Path, sensors: list[int], seconds: int, inflight: int, checkpoint_s: float | None, res: dict
) -> None:
    from services import MosquittoService

    class BenchMosquitto(MosquittoService):
        def _write_config(self) -> None:
            super()._write_config()
            text = self.config_path.read_text().replace(
                "max_inflight_messages 100", f"max_inflight_messages {inflight}"
            )
            self.config_path.write_text(text)

    say(
        f"== 4. the monitor: N simulated 52 Hz sensors -> Mosquitto -> ONE monitor process "
        f"({' '.join(pin_prefix(0)) or 'not pinned'}), {seconds} s each"
    )
    say(f"  broker: Mosquitto, persistence on, max_inflight_messages {inflight}; broker and publishers on core 1")
    res["monitor"] = {}
    for n in sensors:
        broker = BenchMosquitto(work / f"mosquitto-{n}")
        try:
            broker.start()
            pin_pid(broker.pid, 1)
            r = _monitor_run(broker.url, npz, work / f"mon-{n}", n, seconds, checkpoint_s)
        finally:
            broker.cleanup()
        res["monitor"][str(n)] = r
        _say_monitor(n, r)


def _monitor_run(url: str, npz: Path, work: Path, n: int, seconds: int, checkpoint_s: float | None) -> dict:
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    mon_out = work / "monitor.json"
    logs = contextlib.ExitStack()
    mon = subprocess.Popen(
        [
            *pin_prefix(0),
            sys.executable,
            str(HERE / "monitor_proc.py"),
            "--url",
            url,
            "--data-dir",
            str(work / "data"),
            "--out",
            str(mon_out),
            *(["--checkpoint-s", str(checkpoint_s)] if checkpoint_s else []),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=logs.enter_context((work / "monitor.log").open("wb")),
        text=True,
        env=env,
    )
    try:
        line = mon.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"monitor did not start: {(work / 'monitor.log').read_text()[-800:]}")
        time.sleep(1.0)  # its subscription
        procs = max(1, min(4, -(-n // 125)))
        per = -(-n // procs)
        start = time.monotonic() + 6.0 + n / 250  # encoding and connecting first
        pubs = []
        for i in range(procs):
            first, count = i * per, min(per, n - i * per)
            if count <= 0:
                continue
            cmd = [
                *pin_prefix(1),
                sys.executable,
                str(HERE / "publisher.py"),
                "--url",
                url,
                "--data",
                str(npz),
                "--first",
                str(first),
                "--count",
                str(count),
                "--total",
                str(n),
                "--seconds",
                str(seconds),
                "--start",
                f"{start:.6f}",
                "--out",
                str(work / f"pub-{i}.json"),
            ]
            pubs.append(subprocess.Popen(cmd, stderr=logs.enter_context((work / f"pub-{i}.log").open("wb")), env=env))
        end = start + seconds
        mon.stdin.write(f"{start:.6f} {end:.6f}\n")
        mon.stdin.flush()
        for p in pubs:
            p.wait(timeout=seconds + 180)
        pub = [json.loads((work / f"pub-{i}.json").read_text()) for i in range(len(pubs))]
        total = sum(p["published"] for p in pub)
        mon.stdin.write(f"{total}\n")
        mon.stdin.flush()
        mon.wait(timeout=240)
    finally:
        if mon.poll() is None:
            mon.kill()
            mon.wait()
        logs.close()
    m = json.loads(mon_out.read_text())
    return _analyse(n, seconds, start, end, pub, m)


def _analyse(n: int, seconds: int, start: float, end: float, pub: list[dict], m: dict) -> dict:
    pub_t = np.sort(np.concatenate([np.asarray(p["pub_t"]) for p in pub]))
    total = len(pub_t)
    st = np.asarray(m["samples"], dtype=float).reshape(-1, 2)
    ts, cs = st[:, 0], st[:, 1]
    processed = int(cs[-1]) if len(cs) else 0
    # FIFO: the k-th batch published counts as processed when the monitor's batch counter reaches k
    k = np.arange(1, total + 1)
    idx = np.searchsorted(cs, k, side="left")
    done = idx < len(cs)
    lat = ts[idx[done]] - pub_t[done]
    # backlog over time: published minus processed, at every counter sample within the window
    in_win = (ts >= start) & (ts <= end + 1.0)
    backlog = np.searchsorted(pub_t, ts[in_win], side="right") - cs[in_win]
    by_end = int(cs[np.searchsorted(ts, end, side="right") - 1]) if np.any(ts <= end) else 0
    pub_by_end = int(np.searchsorted(pub_t, end, side="right"))
    w = m.get("window", {})
    wall = w.get("t1", 0) - w.get("t0", 0)
    cpu = (w.get("cpu1", 0) - w.get("cpu0", 0)) / wall if wall > 0 else float("nan")
    gaps = np.diff(ts[in_win]) if in_win.sum() > 1 else np.array([])
    # when the slow batches happened: seconds into the window of each burst of batches over the goal
    slow_t = pub_t[done][lat > GOAL_P99_MS / 1000] - start
    bursts = []
    for x in np.sort(slow_t):
        if bursts and x - bursts[-1][1] < 1.0:
            bursts[-1][1], bursts[-1][2] = x, bursts[-1][2] + 1
        else:
            bursts.append([x, x, 1])
    return {
        "sensors": n,
        "seconds": seconds,
        "published": total,
        "acked_by_broker": sum(p["acked"] for p in pub),
        "processed": processed,
        "processed_by_window_end": by_end,
        "published_by_window_end": pub_by_end,
        "backlog_max": int(backlog.max()) if len(backlog) else None,
        "backlog_at_end": pub_by_end - by_end,
        "drain_s": m["drained_at"] - end,
        "latency_ms": {
            "p50": pct(lat, 50) * 1000,
            "p99": pct(lat, 99) * 1000,
            "max": float(lat.max() * 1000) if len(lat) else float("nan"),
            "n": int(len(lat)),
        },
        "monitor_latency_ms": m.get("monitor_latency_ms"),
        "cpu_share": cpu,
        "rss_start": m.get("rss_start"),
        "rss_window": [w.get("rss0"), w.get("rss1")],
        "rss_peak": m.get("rss_peak"),
        "publish_late_ms_max": max(p["late_ms_max"] for p in pub),
        "slow_bursts": [(round(a, 1), int(c)) for a, _, c in bursts],
        "sample_gap_ms_p50": float(np.median(gaps) * 1000) if len(gaps) else None,
        "stats": m.get("stats"),
        "checkpoint_s": m.get("checkpoint_s"),
        "rejected": m.get("rejected"),
        "samples_per_s": (m.get("stats", {}).get("samples", 0)) / seconds,
        "bytes_per_s": sum(p["bytes"] for p in pub) / seconds,
    }


def _say_monitor(n: int, r: dict) -> None:
    rate = r["published"] / r["seconds"]
    keeps = r["processed"] >= r["published"] and r["backlog_at_end"] <= max(2, n // 20)
    lat = r["latency_ms"]
    own = r.get("monitor_latency_ms") or {}
    say(
        f"  N={n:>4}: published {r['published']:,} batches ({rate:.0f}/s = {rate / n:.2f}/sensor/s, "
        f"{r['samples_per_s'] / 1000:.1f} k samples/s, {r['bytes_per_s'] / 1e3:.0f} kB/s); processed "
        f"{r['processed']:,} (checkpoint every {r.get('checkpoint_s')} s); "
        f"backlog max {r['backlog_max']}, at the end {r['backlog_at_end']}; "
        f"{'keeps up' if keeps else 'FALLS BEHIND'} (processed/published "
        f"{r['processed_by_window_end'] / max(1, r['published_by_window_end']):.3f} at the window's end, "
        f"drained {r['drain_s']:.2f} s after)"
    )
    say(
        f"          latency publish->processed: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
        f"max {lat['max']:.0f} ms "
        f"(goal p99 < {GOAL_P99_MS:g} ms: {'met' if lat['p99'] < GOAL_P99_MS else 'NOT met'}); "
        + (f"monitor's own receive->ack p50 {own.get('p50')} ms, p99 {own.get('p99')} ms" if own else "")
    )
    if r["slow_bursts"]:
        shown = ", ".join(f"{a:g} s ({c})" for a, c in r["slow_bursts"][:12])
        more = f" and {len(r['slow_bursts']) - 12} more" if len(r["slow_bursts"]) > 12 else ""
        say(f"          batches over {GOAL_P99_MS:g} ms came in bursts at {shown}{more} into the window")
    cpu = r["cpu_share"]
    say(
        f"          CPU {cpu:.1%} of one core ({cpu / n * 1000:.2f} ms CPU per sensor-second; "
        f"~{n / cpu:,.0f} sensors per core if linear); RSS {mb(r['rss_window'][0] or 0)} -> "
        f"{mb(r['rss_window'][1] or 0)} over the window, peak {mb(r['rss_peak'] or 0)}"
    )


# --- main ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="whole-process runs of each side (default 5)")
    ap.add_argument("--sensors", default="10,100,500", help="monitor loads (default 10,100,500)")
    ap.add_argument("--monitor-seconds", type=int, default=90, help="seconds of publishing per load (default 90)")
    ap.add_argument("--inflight", type=int, default=100, help="Mosquitto max_inflight_messages (default 100)")
    ap.add_argument(
        "--checkpoint-s", type=float, help="the monitor's checkpoint interval (default: its own; a diagnostic)"
    )
    ap.add_argument("--only", default="detect,core,memory,monitor", help="sections to run")
    ap.add_argument("--no-peer", action="store_true", help="do not set up or run scikit-digital-health")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    ap.add_argument(
        "--against",
        metavar="DIR",
        type=Path,
        help="detect: also time the legwatch of another checkout DIR, alternating (an A/B in one run)",
    )
    args = ap.parse_args(argv)
    only = {s.strip() for s in args.only.split(",")}
    say(
        f"legwatch benchmarks, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}: "
        f"{platform.processor() or platform.machine()}, "
        f"{len(ncpu())} cores, Python {platform.python_version()}, numpy {np.__version__}"
    )
    res: dict = {"date": dt.datetime.now().astimezone().isoformat(), "cores": len(ncpu())}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="legwatch-bench-") as tmp:
        work = Path(tmp)
        csv, npz = make_night(work, 8.0)
        variants = write_variants(csv) if only & {"detect", "core"} else {}
        if "detect" in only:
            bench_detect(csv, variants, args.runs, not args.no_peer, res, args.against)
        if "core" in only:
            bench_core(csv, variants, res)
        if "memory" in only:
            bench_memory(work, max([int(x) for x in args.sensors.split(",") if x.strip()] or [500]), res)
        if "monitor" in only:
            sensors = [int(x) for x in args.sensors.split(",") if x.strip()]
            bench_monitor(npz, work, sensors, args.monitor_seconds, args.inflight, args.checkpoint_s, res)
    say(f"done in {time.perf_counter() - t_all:.0f} s; peak RSS of this process {mb(_self_peak())}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


def _self_peak() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    sys.exit(main())
