"""End to end: a generated night replayed by the real CLI through a real Mosquitto into the real
monitor process, episodes read back from a real InfluxDB and compared with `legwatch detect`."""

import json
import time

import pytest

from detector.synthetic import generate_night, write_csv
from helpers import popen_cli, run_cli
from legwatch.storage.schema import episode_from_point


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    night = generate_night(21, hours=2.0, rate_hz=52.0)
    path = tmp_path_factory.mktemp("rec") / "night-21.csv"
    write_csv(night, path)
    return path


def test_replay_through_mosquitto_into_influx_equals_detect(recording, mosquitto, influx_store, influxdb, tmp_path):
    offline = json.loads(run_cli("detect", str(recording), "--format", "json", check=True).stdout)
    assert len(offline["episodes"]) > 0
    env = {
        "LEGWATCH_MQTT_URL": mosquitto.url,
        "LEGWATCH_INFLUX_URL": influxdb.url,
        "LEGWATCH_INFLUX_DB": influx_store.db,
        "LEGWATCH_SUBJECT": "e2e",
        "LEGWATCH_DATA_DIR": str(tmp_path),
        "LEGWATCH_MQTT_CLIENT_ID": f"monitor-{influx_store.db}",
    }
    mon = popen_cli("monitor", "--exit-after-nights", "1", env=env)
    try:
        time.sleep(1.5)  # let it subscribe
        assert mon.poll() is None, mon.stderr.read() if mon.stderr else ""
        rep = run_cli("replay", str(recording), "--sensor", "shin-e2e", env=env, check=True)
        assert "marked it offline" in rep.stdout
        out, err = mon.communicate(timeout=240)
    finally:
        if mon.poll() is None:
            mon.kill()
    assert mon.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["nights"] == 1 and not stats["rejected"]

    stored = [
        episode_from_point(p) for p in influx_store.query("episode", tags={"subject": "e2e", "sensor": "shin-e2e"})
    ]
    got = sorted((round(e.start, 3), e.kind, e.periodic, e.in_sleep, round(e.end, 3)) for e in stored)
    want = sorted(
        (round(e["start"], 3), e["kind"], e["periodic"], e["in_sleep"], round(e["end"], 3)) for e in offline["episodes"]
    )
    assert got == want
    nights = influx_store.query("night", tags={"subject": "e2e"})
    assert len(nights) == 1
    assert nights[0].fields["episodes"] == float(
        sum(1 for e in offline["episodes"] if e["kind"] in ("twitch", "leg_movement", "contraction") and e["in_sleep"])
    )
    assert influx_store.query("activity", tags={"subject": "e2e"})
