"""What lands when a night is replayed at full speed through a Mosquitto at its DEFAULT limits
(``max_queued_messages 1000``, persistence on: Debian's package), optionally with the monitor
SIGKILLed and down for a while. A measurement of delivery, not a test (the tests are
``tests/test_end_to_end_ack.py``); ``--code DIR`` runs another checkout (e.g. one from before the
end-to-end acknowledgement) against the same broker settings and night, to compare.

    .venv/bin/python benchmarks/default_broker.py --hours 2 [--kill-after 300 --down 20] [--code DIR]

Prints one JSON object: the replay's exit status and seconds, batches and episodes stored against
what the recording holds and offline detection finds, whether the night ended (a ``night`` point),
and how many times Mosquitto logged that it dropped messages.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from detector.synthetic import generate_night, write_csv  # noqa: E402
from legwatch.csvio import read_csv  # noqa: E402
from legwatch.replay import batches  # noqa: E402
from legwatch.storage.sqlite import SqliteStore  # noqa: E402
from services import DefaultMosquitto  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(
        description="What lands when a night is replayed at full speed through a Mosquitto at its default limits."
    )
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--code", default=str(ROOT), help="checkout whose legwatch runs (default: this one)")
    ap.add_argument("--kill-after", type=float, default=0.0, help="SIGKILL the monitor this many s into the replay")
    ap.add_argument("--down", type=float, default=20.0, help="and start it again this many s later")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="legwatch-default-broker-"))
    csv = work / "night.csv"
    write_csv(generate_night(args.seed, hours=args.hours, rate_hz=52.0), csv)
    t, _ = read_csv(csv)
    total = sum(1 for _ in batches(t))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    env["PYTHONPATH"] = args.code
    offline = json.loads(
        subprocess.run(
            [sys.executable, "-m", "legwatch", "detect", str(csv), "--format", "json"],
            env=env,
            cwd=args.code,
            capture_output=True,
            check=True,
        ).stdout
    )
    broker = DefaultMosquitto(work / "mosquitto")
    broker.start()
    env.update(
        LEGWATCH_MQTT_URL=broker.url,
        LEGWATCH_DATA_DIR=str(work / "data"),
        LEGWATCH_SUBJECT="bench",
        LEGWATCH_MQTT_CLIENT_ID="bench-monitor",
    )

    def monitor(name: str) -> subprocess.Popen:
        err = open(work / f"{name}.err", "wb")  # noqa: SIM115 (the process writes it)
        mon = subprocess.Popen(
            [sys.executable, "-m", "legwatch", "monitor", "--exit-after-nights", "1"],
            env=env,
            cwd=args.code,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        time.sleep(3)  # subscribed
        return mon

    mons = [monitor("monitor-1")]
    t0 = time.monotonic()
    rep = subprocess.Popen(
        [sys.executable, "-m", "legwatch", "replay", str(csv), "--sensor", "shin", "--speed", "0"],
        env=env,
        cwd=args.code,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "replay.err", "wb"),  # noqa: SIM115
    )
    if args.kill_after:
        time.sleep(args.kill_after)
        mons[0].kill()
        mons[0].wait()
        time.sleep(args.down)
        mons.append(monitor("monitor-2"))
    try:
        code = rep.wait(args.timeout)
    except subprocess.TimeoutExpired:
        rep.kill()
        code = None
    replay_s = time.monotonic() - t0
    try:
        mons[-1].wait(120)
        ended_by_itself = True
    except subprocess.TimeoutExpired:
        mons[-1].kill()
        ended_by_itself = False
    mons[-1].wait()
    store = SqliteStore(work / "data" / "legwatch.sqlite")
    episodes = store.query("episode", tags={"sensor": "shin"})
    nights = store.query("night", tags={"sensor": "shin"})
    store.close()
    dropped = broker.log_path.read_text(errors="replace").count("Outgoing messages are being dropped")
    broker.cleanup()
    print(
        json.dumps(
            {
                "code": args.code,
                "hours": args.hours,
                "batches": total,
                "monitor_killed_after_s": args.kill_after or None,
                "replay_exit": code,
                "replay_s": round(replay_s, 1),
                "episodes_offline": len(offline["episodes"]),
                "episodes_stored": len({(p.tags["kind"], p.time_ms) for p in episodes}),
                "night_stored": bool(nights),
                "monitor_exited_after_the_night": ended_by_itself,
                "mosquitto_dropped_lines": dropped,
                "workdir": str(work),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
