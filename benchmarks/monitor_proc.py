"""One monitor process for the load benchmark (started by ``benchmarks/run.py``, pinned to one core).

    python benchmarks/monitor_proc.py --url mqtt://127.0.0.1:PORT --data-dir DIR --out OUT.json

Runs the real ``legwatch.monitor.service.Monitor`` (public interface only: ``Monitor(cfg, store,
client_id=...)``, ``start()``, ``stop()``, ``stats``, and ``latency_ms()`` where it exists) with a
SQLite store in ``DIR``. A sampler thread records ``(time.monotonic(), stats["batches"])`` every
``--sample-ms`` whenever the count changed, so the parent can tell when each published batch had
been processed (CLOCK_MONOTONIC is shared by all processes of the machine). Prints ``ready`` once
started; then reads two lines from stdin: the window ``START END`` (monotonic seconds) over which
to take CPU time and RSS, and the number of batches to wait for before it stops. Writes OUT.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process, bytes."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--client-id", default="bench-monitor")
    ap.add_argument("--sample-ms", type=float, default=2.0)
    ap.add_argument("--drain-timeout", type=float, default=60.0)
    ap.add_argument("--checkpoint-s", type=float, help="monitor.checkpoint_s (default: the monitor's own)")
    args = ap.parse_args()

    from legwatch.contracts.config import load_config
    from legwatch.monitor.service import Monitor
    from legwatch.storage import open_store

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    overrides = {"mqtt.url": args.url, "data_dir": args.data_dir, "monitor.checkpoint_s": args.checkpoint_s}
    cfg = load_config(None, overrides=overrides, env=env)
    store = open_store(cfg)
    mon = Monitor(cfg, store, client_id=args.client_id)
    samples: list[tuple[float, int]] = []
    stop_sampling = threading.Event()
    step = args.sample_ms / 1000.0

    def sampler() -> None:
        last = -1
        while not stop_sampling.is_set():
            n = mon.stats["batches"]
            if n != last:
                samples.append((time.monotonic(), n))
                last = n
            time.sleep(step)

    rss_start = proc_status()
    mon.start()
    th = threading.Thread(target=sampler, name="bench-sampler", daemon=True)
    th.start()
    print("ready", flush=True)

    start, end = (float(x) for x in sys.stdin.readline().split())
    window: dict[str, float] = {}

    def take_window() -> None:
        time.sleep(max(0.0, start - time.monotonic()))
        window["cpu0"], window["t0"], window["rss0"] = cpu_s(), time.monotonic(), proc_status()["VmRSS"]
        time.sleep(max(0.0, end - time.monotonic()))
        window["cpu1"], window["t1"], window["rss1"] = cpu_s(), time.monotonic(), proc_status()["VmRSS"]

    wt = threading.Thread(target=take_window, name="bench-window", daemon=True)
    wt.start()
    expect = int(sys.stdin.readline())
    wt.join()
    deadline = time.monotonic() + args.drain_timeout
    while mon.stats["batches"] < expect and time.monotonic() < deadline:
        time.sleep(0.01)
    drained_at = time.monotonic()
    stop_sampling.set()
    th.join()
    samples.append((time.monotonic(), mon.stats["batches"]))
    latency = mon.latency_ms() if hasattr(mon, "latency_ms") else {}
    stats = dict(mon.stats)
    status = proc_status()
    t_stop = time.monotonic()
    mon.stop()
    store.close()
    out = {
        "samples": samples,
        "stats": stats,
        "rejected": dict(getattr(mon, "rejected", {})),
        "monitor_latency_ms": latency,
        "window": window,
        "drained_at": drained_at,
        "expect": expect,
        "rss_start": rss_start.get("VmRSS"),
        "rss_peak": status.get("VmHWM"),
        "rss_end": status.get("VmRSS"),
        "stop_s": time.monotonic() - t_stop,
        "cpus": sorted(os.sched_getaffinity(0)),
        "checkpoint_s": getattr(getattr(mon, "checkpointer", mon), "checkpoint_s", None),
        "pid": os.getpid(),
    }
    Path(args.out).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
