"""Simulated 52 Hz sensors for the monitor load benchmark (started by ``benchmarks/run.py``).

    python benchmarks/publisher.py --url URL --data NIGHT.npz --first K --count M --total N \
        --seconds S --start T0 --out OUT.json

Sensors ``bench-K`` .. ``bench-(K+M-1)`` each replay their own stretch of a recorded night (the
quantized samples in NIGHT.npz) at real time: one binary v1 batch of ~1 s (~52 samples) per sensor
per second, QoS 1, consecutive sequence numbers, as ``legwatch replay``/the collector cut them.
Sensor ``i`` of ``N`` publishes at ``T0 + i/N + j`` for its ``j``-th batch, so the load is spread
evenly over each second, as unsynchronised sensors would be. Payloads are encoded before ``T0``.
Several sensors share one MQTT connection (the monitor sees one subscription either way). Writes
OUT.json: each message's publish time (``time.monotonic()``) and how late it went out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENSORS_PER_CLIENT = 50


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--first", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--total", type=int, required=True)
    ap.add_argument("--seconds", type=int, required=True)
    ap.add_argument("--start", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--prefix", default="legwatch")
    args = ap.parse_args()

    from legwatch.contracts import payload, topics
    from legwatch.mqtt.connection import Connection
    from legwatch.replay import batches, nominal_rate

    night = np.load(args.data)
    t, xyz = night["t"], night["xyz"]
    rate = nominal_rate(t[:10000])
    slices = list(batches(t, rate=rate))
    room = len(slices) - args.seconds - 1
    plan = []  # (due, sensor index, topic, payload)
    for k in range(args.first, args.first + args.count):
        sensor = f"bench-{k}"
        first = (k * 997) % max(1, room)  # each sensor its own stretch of the night
        topic = topics.samples(args.prefix, sensor)
        phase = k / args.total
        for j in range(args.seconds):
            sl = slices[first + j]
            data = payload.encode(sensor, j, t[sl], xyz[sl], rate)
            plan.append((args.start + phase + j, k, topic, data))
    plan.sort(key=lambda p: p[0])

    n_clients = max(1, -(-args.count // SENSORS_PER_CLIENT))
    conns = [
        Connection(args.url, f"bench-pub-{args.first}-{i}", persistent=False, max_inflight=1000)
        for i in range(n_clients)
    ]
    for conn in conns:
        conn.connect()

    pub_t = np.empty(len(plan))
    late = np.empty(len(plan))
    for i, (due, k, topic, data) in enumerate(plan):
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        conns[(k - args.first) // SENSORS_PER_CLIENT].publish(topic, data, qos=1)
        now = time.monotonic()
        pub_t[i] = now
        late[i] = now - due
    deadline = time.monotonic() + 60
    unconfirmed = [conn.wait_published(max(0.0, deadline - time.monotonic())) for conn in conns]
    for conn in conns:
        conn.close()
    Path(args.out).write_text(
        json.dumps(
            {
                "published": len(plan),
                "acked": len(plan) - sum(unconfirmed),
                "pub_t": pub_t.tolist(),
                "late_ms_p50": float(np.median(late) * 1000) if len(late) else None,
                "late_ms_max": float(late.max() * 1000) if len(late) else None,
                "bytes": sum(len(p[3]) for p in plan),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
