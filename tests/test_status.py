"""``legwatch status``: the before-bed check, run as a user runs it, against a real Mosquitto and real stores."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from helpers import run_cli
from legwatch import readiness
from legwatch.contracts import status as status_msg
from legwatch.contracts.status import Status
from legwatch.mqtt.connection import Connection
from legwatch.storage import Point
from legwatch.storage.sqlite import SqliteStore

NAMES = {"configuration", "broker", "store", "bluetooth", "monitor"}


def _env(data_dir: Path, mqtt_url: str = "", prefix: str = "", **extra: str) -> dict[str, str]:
    env = {"LEGWATCH_DATA_DIR": str(data_dir), **extra}
    if mqtt_url:
        env["LEGWATCH_MQTT_URL"] = mqtt_url
    if prefix:
        env["LEGWATCH_MQTT_TOPIC_PREFIX"] = prefix
    return env


def _status_json(env: dict[str, str]) -> tuple[int, dict, str]:
    p = run_cli("status", "--format", "json", env=env, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout), p.stderr


def _by_name(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["checks"]}


def _prefix() -> str:
    return f"lwstatus{uuid.uuid4().hex[:8]}"


def test_ready_with_a_broker_and_a_sqlite_store(mosquitto, tmp_path):
    code, doc, _ = _status_json(_env(tmp_path / "data", mosquitto.url, _prefix()))
    assert code == 0
    assert doc["ready"] is True
    checks = _by_name(doc)
    assert set(checks) >= NAMES
    assert "sensors" in checks or any(n.startswith("sensor ") for n in checks)
    for c in doc["checks"]:
        assert set(c) == {"name", "state", "detail", "fix"}
        assert c["state"] in ("ok", "warn", "fail")
        assert "\n" not in c["detail"]
        assert c["fix"] or c["state"] == "ok"
    assert checks["configuration"]["state"] == "ok"
    assert str(tmp_path / "data") in checks["configuration"]["detail"]
    assert checks["broker"]["state"] == "ok"
    assert checks["store"]["state"] == "ok" and "SQLite" in checks["store"]["detail"]
    assert checks["bluetooth"]["state"] in ("ok", "warn")  # never fail: the collector may run elsewhere
    assert checks["monitor"]["state"] == "warn"
    assert "is `legwatch monitor` running?" in checks["monitor"]["detail"]
    # nothing was written to the store
    with SqliteStore(tmp_path / "data" / "legwatch.sqlite") as store:
        assert all(store.query(m) == [] for m in ("activity", "night", "episode", "habit", "gap"))


def test_text_table_fits_80_columns(mosquitto, tmp_path):
    p = run_cli("status", env=_env(tmp_path / "data", mosquitto.url, _prefix()), timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    for word in ("configuration", "broker", "store", "bluetooth", "monitor", "Ready for tonight"):
        assert word in p.stdout


def test_no_broker_configured_is_not_ready(tmp_path):
    code, doc, _ = _status_json(_env(tmp_path / "data"))
    assert code == 1 and doc["ready"] is False
    broker = _by_name(doc)["broker"]
    assert broker["state"] == "fail"
    assert broker["detail"] == "no broker configured: set LEGWATCH_MQTT_URL"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_broker_that_is_not_there_fails_in_one_line(tmp_path, fmt):
    url = "mqtt://sleeper:hunter2-secret@127.0.0.1:1"
    p = run_cli("status", "--format", fmt, env=_env(tmp_path / "data", url), timeout=60)
    assert p.returncode == 1
    out = p.stdout + p.stderr
    assert "Traceback" not in out
    assert "hunter2" not in out
    if fmt == "json":
        doc = json.loads(p.stdout)
        assert doc["ready"] is False
        broker = _by_name(doc)["broker"]
        assert broker["state"] == "fail"
        assert "\n" not in broker["detail"] and "127.0.0.1:1" in broker["detail"]
        assert "sleeper:***@" in broker["detail"]
        assert broker["fix"]
    else:
        assert "fail" in p.stdout and "Not ready" in p.stdout
        assert max(len(line) for line in p.stdout.splitlines()) <= 80


def _publish_retained(url: str, topic: str, payload: bytes) -> None:
    conn = Connection(url, client_id=f"test-status-{uuid.uuid4().hex[:8]}", persistent=False)
    conn.connect(timeout=5)
    try:
        conn.publish_wait(topic, payload, retain=True, timeout=5)
    finally:
        conn.close()


def test_a_retained_sensor_status_shows_with_its_battery(mosquitto, tmp_path):
    prefix = _prefix()
    data = tmp_path / "data"
    now = time.time()
    _publish_retained(mosquitto.url, f"{prefix}/shin-left/status", status_msg.online(source="collector", battery=87))
    _publish_retained(mosquitto.url, f"{prefix}/shin-right/status", status_msg.offline(battery_pct=12))
    # a stored night for shin-left, and the monitor's fresh activity
    night_start = now - 86400
    with SqliteStore(data / "legwatch.sqlite") as store:
        store.write(
            [
                Point("night", {"subject": "me", "sensor": "shin-left"}, {"end": night_start + 28800.0}, night_start),
                Point("activity", {"subject": "me", "sensor": "shin-left"}, {"movement_g": 0.01}, now - 60),
            ]
        )
    try:
        code, doc, _ = _status_json(_env(data, mosquitto.url, prefix))
    finally:
        for sensor in ("shin-left", "shin-right"):
            _publish_retained(mosquitto.url, f"{prefix}/{sensor}/status", b"")
    assert code == 0
    checks = _by_name(doc)
    left = checks["sensor shin-left"]
    assert left["state"] == "ok"
    assert "online since" in left["detail"] and "battery 87%" in left["detail"]
    assert "last night stored: " in left["detail"]
    right = checks["sensor shin-right"]
    assert right["state"] == "warn"
    assert "offline since" in right["detail"] and "battery 12%" in right["detail"]
    assert "no night stored yet" in right["detail"]
    assert "charge the sensor" in right["fix"]
    assert checks["monitor"]["state"] == "ok"
    assert checks["monitor"]["detail"].startswith("monitor storing data")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_data_dir_that_is_a_file_fails_in_one_line(tmp_path, fmt):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    p = run_cli("status", "--format", fmt, env=_env(blocker), timeout=60)
    assert p.returncode == 1
    assert "Traceback" not in p.stdout + p.stderr
    if fmt == "json":
        checks = _by_name(json.loads(p.stdout))
        config = checks["configuration"]
        assert config["state"] == "fail"
        assert "\n" not in config["detail"] and "a file is in the way" in config["detail"]
        assert checks["store"]["state"] == "fail"
    else:
        assert "a file is in the way" in p.stdout and "Not ready" in p.stdout


def test_a_bad_config_key_exits_2_in_one_line(tmp_path):
    p = run_cli("status", env={"LEGWATCH_NO_SUCH_KEY": "1", "LEGWATCH_DATA_DIR": str(tmp_path)}, timeout=60)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "LEGWATCH_NO_SUCH_KEY" in p.stderr


def test_influxdb_store(influxdb, tmp_path):
    db = f"test_status_{uuid.uuid4().hex[:8]}"
    code, doc, _ = _status_json(_env(tmp_path / "data", LEGWATCH_INFLUX_URL=influxdb.url, LEGWATCH_INFLUX_DB=db))
    assert code == 1
    assert [c["name"] for c in doc["checks"] if c["state"] == "fail"] == ["broker"]  # none configured here
    store = _by_name(doc)["store"]
    assert store["state"] == "ok" and "InfluxDB" in store["detail"]


def test_an_influxdb_that_is_down_fails(tmp_path):
    env = _env(tmp_path / "data", LEGWATCH_INFLUX_URL="http://127.0.0.1:1", LEGWATCH_INFLUX_PASSWORD="pw-secret-9")
    code, doc, stderr = _status_json({**env, "LEGWATCH_INFLUX_USERNAME": "u"})
    assert code == 1
    checks = _by_name(doc)
    assert checks["store"]["state"] == "fail" and "\n" not in checks["store"]["detail"]
    assert checks["monitor"]["state"] == "warn"
    assert "pw-secret-9" not in json.dumps(doc) + stderr


# --- the row builders, without servers -------------------------------------------------------


def test_bluetooth_adapter_in_sysfs(tmp_path):
    assert readiness.bluetooth_check(tmp_path / "missing", platform="linux").state == "warn"
    root = tmp_path / "bluetooth"
    (root / "hci0" / "rfkill3").mkdir(parents=True)
    (root / "hci0:70").mkdir()  # a connection entry, not an adapter
    (root / "hci0" / "rfkill3" / "soft").write_text("0\n")
    (root / "hci0" / "rfkill3" / "hard").write_text("0\n")
    row = readiness.bluetooth_check(root, platform="linux")
    assert row.state == "ok" and row.detail == "adapter hci0"
    (root / "hci0" / "rfkill3" / "soft").write_text("1\n")
    row = readiness.bluetooth_check(root, platform="linux")
    assert row.state == "warn" and "rfkill" in row.fix
    assert readiness.bluetooth_check(root, platform="darwin").state == "warn"


def test_sensor_rows():
    now = 1_767_650_000.0
    statuses: dict[str, Status | str] = {
        "a": status_msg.parse(status_msg.build("online", time=now - 300, battery_pct=55)),
        "b": status_msg.parse(status_msg.will("collector")),
        "c": "status is not a JSON object",
    }
    rows = {r.name: r for r in readiness.sensor_checks(statuses, [], now)}
    assert rows["sensor a"].state == "ok" and "battery 55%" in rows["sensor a"].detail
    assert "5 min ago" in rows["sensor a"].detail
    assert rows["sensor b"].state == "warn" and "connection lost" in rows["sensor b"].detail
    assert rows["sensor c"].state == "warn" and "unreadable" in rows["sensor c"].detail
    nights = [Point("night", {"subject": "me", "sensor": "d"}, {"end": now - 3600}, now - 30000)]
    (row,) = readiness.sensor_checks(None, nights, now, broker_note="no broker configured")
    assert row.name == "sensor d" and "status not checked" in row.detail and "last night stored" in row.detail
    (row,) = readiness.sensor_checks({}, [], now)
    assert row.name == "sensors" and row.state == "warn"


def test_monitor_row():
    now = 1_767_650_000.0
    assert readiness.monitor_check(None, now).state == "warn"
    assert readiness.monitor_check([], now).state == "warn"
    p = Point("activity", {"subject": "me", "sensor": "a"}, {"movement_g": 0.0}, now - 30)
    assert readiness.monitor_check([p], now).state == "ok"
