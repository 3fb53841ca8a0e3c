"""The monitor service through its public interface against a real Mosquitto: what it follows.

A monitor keeps a persistent MQTT session, so the broker remembers its subscriptions across
restarts. When its configuration is narrowed (``monitor.sensors``, or another topic prefix), the
subscriptions of the earlier run must go: the sensors it was told to ignore are neither delivered
nor stored, also when their messages were queued while it was down.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np

from legwatch.contracts import payload, status, topics
from legwatch.contracts.config import load_config
from legwatch.monitor.service import Monitor
from legwatch.mqtt.connection import Connection
from legwatch.storage.sqlite import SqliteStore
from services import MosquittoService

T0 = 1.7e9


def _batch(sensor: str, seq: int) -> bytes:
    t = T0 + seq + np.arange(26) / 26.0
    return payload.encode(sensor, seq, t, np.tile([0.0, 0.0, 1.0], (26, 1)), 26.0)


def _monitor(url: str, tmp_path: Path, prefix: str, sensors: str, store: SqliteStore) -> Monitor:
    cfg = load_config(
        env={
            "LEGWATCH_MQTT_URL": url,
            "LEGWATCH_MQTT_TOPIC_PREFIX": prefix,
            "LEGWATCH_MONITOR_SENSORS": sensors,
            "LEGWATCH_DATA_DIR": str(tmp_path / "data"),
        }
    )
    return Monitor(cfg, store, client_id=f"{prefix}-monitor", checkpoint_s=3600)


def _wait(cond, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_a_narrowed_configuration_drops_the_old_subscriptions(mosquitto: MosquittoService, tmp_path: Path) -> None:
    prefix = f"lwsub{uuid.uuid4().hex[:6]}"
    store = SqliteStore(tmp_path / "s.sqlite")
    pub = Connection(mosquitto.url, f"{prefix}-pub", persistent=False)
    pub.connect()
    try:
        first = _monitor(mosquitto.url, tmp_path, prefix, "shin-a,shin-b", store)
        first.start()
        for sensor in ("shin-a", "shin-b"):
            pub.publish_wait(topics.status(prefix, sensor), status.online(), timeout=10)
            pub.publish_wait(topics.samples(prefix, sensor), _batch(sensor, 0), timeout=10)
        assert _wait(lambda: first.stats["batches"] == 2), first.stats
        assert set(first.streams) == {"shin-a", "shin-b"}
        first.stop()

        # while no monitor runs the broker queues shin-b's batch for the persistent session
        pub.publish_wait(topics.samples(prefix, "shin-b"), _batch("shin-b", 1), timeout=10)
        second = _monitor(mosquitto.url, tmp_path, prefix, "shin-a", store)
        second.start()
        try:
            assert set(second.streams) == {"shin-a", "shin-b"}  # both resumed from the checkpoint
            pub.publish_wait(topics.samples(prefix, "shin-b"), _batch("shin-b", 2), timeout=10)
            pub.publish_wait(topics.samples(prefix, "shin-a"), _batch("shin-a", 1), timeout=10)
            assert _wait(lambda: second.stats["batches"] == 1), second.stats  # shin-a's batch arrived
            time.sleep(0.5)  # time for anything of shin-b that the broker might still send
            assert second.stats["batches"] == 1 and second.streams["shin-b"].last_seq == 0
            # shin-b's new batch was never sent: the broker no longer holds that subscription
            assert second.stats["ignored"] == 0
        finally:
            second.stop()
    finally:
        pub.close()
        store.close()
