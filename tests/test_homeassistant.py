"""The morning summary over a real Mosquitto: retained summary, availability and Home Assistant
discovery configs, published on demand (`legwatch summary --publish`) and by the monitor itself
when a night ends."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from detector.events import Episode, Gap
from detector.stream import Night
from detector.synthetic import generate_night
from helpers import run_cli
from legwatch import homeassistant, summary
from legwatch.contracts.config import load_config
from legwatch.monitor.service import Monitor
from legwatch.morning import publish_summary
from legwatch.replay import replay
from legwatch.storage.schema import night_points
from legwatch.storage.sqlite import SqliteStore


def _connect(url: str, cid: str) -> mqtt.Client:
    host, port = url.removeprefix("mqtt://").split(":")
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.connect(host, int(port))
    c.loop_start()
    return c


def collect_retained(url: str, topics: list[str], expect: int, timeout: float = 10.0) -> dict[str, mqtt.MQTTMessage]:
    """Subscribe afresh and gather what the broker holds retained on ``topics``."""
    got: dict[str, mqtt.MQTTMessage] = {}
    done = threading.Event()
    c = _connect(url, f"watch-{uuid.uuid4().hex[:8]}")

    def on_message(client, userdata, msg):
        if msg.payload:
            got[msg.topic] = msg
        if len(got) >= expect:
            done.set()

    c.on_message = on_message
    c.subscribe([(t, 1) for t in topics])
    done.wait(timeout)
    time.sleep(0.2)  # anything beyond what was expected
    c.disconnect()
    c.loop_stop()
    return got


def clear_retained(url: str, topics: list[str]) -> None:
    c = _connect(url, f"clear-{uuid.uuid4().hex[:8]}")
    for t in topics:
        c.publish(t, b"", qos=1, retain=True).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def _night(onset: float, rng: np.random.Generator, coverage_gap_s: float = 0.0) -> Night:
    times = np.sort(rng.uniform(onset + 60, onset + 7 * 3600, 12))
    eps = [Episode(float(t), float(t) + 2.0, "leg_movement", 0.1, periodic=True) for t in times[2:]]
    eps += [Episode(float(times[0]), float(times[0]) + 75.0, "contraction", 0.3)]
    eps += [Episode(float(times[1]), float(times[1]) + 0.2, "twitch", 0.2)]
    gaps = [Gap(onset, onset + coverage_gap_s)] if coverage_gap_s else []
    return Night(eps, [], gaps, (onset, onset + 7.5 * 3600), 8.0, onset - 600, onset + 7.6 * 3600, 1000, 0)


def _all_topics(prefix: str, subject: str) -> list[str]:
    node = homeassistant.node_id(subject)
    return [
        f"homeassistant/sensor/{node}/+/config",
        f"homeassistant/binary_sensor/{node}/+/config",
        f"{prefix}/summary/{subject}",
        f"{prefix}/summary/{subject}/#",
    ]


HEALTH = len(homeassistant.SENSOR_HEALTH)


def _check_health(got: dict, prefix: str, subject: str, sensor: str) -> None:
    """Battery, signal and connectivity of the night's sensor, read from its status topic."""
    node = homeassistant.node_id(subject)
    health = {t: json.loads(m.payload) for t, m in got.items() if t.endswith("/config") and f"/{sensor}_" in t}
    assert set(health) == {
        f"homeassistant/sensor/{node}/{sensor}_battery/config",
        f"homeassistant/sensor/{node}/{sensor}_signal/config",
        f"homeassistant/binary_sensor/{node}/{sensor}_connected/config",
    }
    by = {t.split("/")[3].removeprefix(sensor + "_"): c for t, c in health.items()}
    assert all(c["state_topic"] == f"{prefix}/{sensor}/status" for c in by.values())
    assert all(c["device"]["identifiers"] == [node] and c["entity_category"] == "diagnostic" for c in by.values())
    assert by["battery"]["device_class"] == "battery" and by["battery"]["unit_of_measurement"] == "%"
    assert by["signal"]["device_class"] == "signal_strength" and by["signal"]["unit_of_measurement"] == "dBm"
    assert by["connected"]["device_class"] == "connectivity"
    assert len({c["unique_id"] for c in by.values()}) == 3


def _check_discovery(got: dict, prefix: str, subject: str, state: dict) -> None:
    node = homeassistant.node_id(subject)
    sensor = state["sensor"]
    configs = {t: json.loads(m.payload) for t, m in got.items() if t.endswith("/config") and f"/{sensor}_" not in t}
    assert len(configs) == len(homeassistant.SENSORS)
    assert all(m.retain for m in got.values())  # every message is retained
    ids = set()
    for topic, cfg in configs.items():
        obj = topic.split("/")[3]
        assert topic == f"homeassistant/sensor/{node}/{obj}/config"
        assert cfg["unique_id"] == f"{node}_{obj}" and cfg["unique_id"] not in ids
        ids.add(cfg["unique_id"])
        assert cfg["default_entity_id"] == f"sensor.{node}_{obj}" and "object_id" not in cfg
        assert cfg["state_topic"] == f"{prefix}/summary/{subject}"
        key = re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", cfg["value_template"]).group(1)
        assert key in state, key
        assert cfg["device"]["identifiers"] == [node] and cfg["device"]["manufacturer"] == "legwatch"
        assert cfg["availability"] == [
            {
                "topic": f"{prefix}/summary/{subject}/availability",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ]
        assert cfg["name"]
    by = {t.split("/")[3]: c for t, c in configs.items()}
    assert by["longest_contraction"]["device_class"] == "duration"
    assert by["longest_contraction"]["unit_of_measurement"] == "s"
    assert by["sleep_duration"]["device_class"] == "duration" and by["sleep_duration"]["unit_of_measurement"] == "h"
    assert by["sleep_start"]["device_class"] == "timestamp" and "state_class" not in by["sleep_start"]
    assert by["sleep_end"]["device_class"] == "timestamp"
    for obj in ("episodes", "contractions", "leg_movements", "twitches", "plm_index", "coverage"):
        assert by[obj]["state_class"] == "measurement", obj
        assert by[obj]["unit_of_measurement"]
    assert "state_class" not in by["status"] and "device_class" not in by["status"]
    assert by["episodes"]["json_attributes_topic"] == f"{prefix}/summary/{subject}"
    assert got[f"{prefix}/summary/{subject}/availability"].payload == b"online"


def test_summary_publish_cli_retained_with_discovery(mosquitto, tmp_path):
    subject = f"ha{uuid.uuid4().hex[:8]}"
    prefix = f"lw{uuid.uuid4().hex[:6]}"
    store = SqliteStore(tmp_path / "legwatch.sqlite")
    onset = time.time() - 2 * 86400
    store.write(night_points(subject, "shin", _night(onset, np.random.default_rng(1))))
    store.close()
    env = {"LEGWATCH_MQTT_URL": mosquitto.url, "LEGWATCH_MQTT_TOPIC_PREFIX": prefix}
    try:
        p = run_cli("summary", "--publish", "--subject", subject, "--data-dir", str(tmp_path), env=env, check=True)
        assert f"on {prefix}/summary/{subject} with {len(homeassistant.SENSORS) + HEALTH} Home Assistant" in p.stderr
        assert "Sleep window" in p.stdout  # the text summary is still printed
        got = collect_retained(mosquitto.url, _all_topics(prefix, subject), len(homeassistant.SENSORS) + HEALTH + 2)
        state_msg = got[f"{prefix}/summary/{subject}"]
        assert state_msg.retain and state_msg.qos == 1
        state = json.loads(state_msg.payload)
        _check_discovery(got, prefix, subject, state)
        _check_health(got, prefix, subject, "shin")
        assert state["status"] == "ok" and state["episodes"] == 12
        assert (state["contractions"], state["twitches"], state["leg_movements"]) == (1, 1, 10)
        assert state["longest_contraction_s"] == 75.0 and state["plm_index"] == 8.0
        assert state["sleep_hours"] == 7.5 and state["coverage_pct"] == 100.0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", state["sleep_start"])
        assert "not a diagnosis" in state["disclaimer"]
    finally:
        clear_retained(mosquitto.url, [t for t in _published(prefix, subject)])


def _published(prefix: str, subject: str, sensor: str = "shin") -> list[str]:
    node = homeassistant.node_id(subject)
    topics = [f"homeassistant/sensor/{node}/{d.object_id}/config" for d in homeassistant.SENSORS]
    topics += [t for t, _ in homeassistant.health_configs(prefix, subject, sensor)]
    return [*topics, f"{prefix}/summary/{subject}", f"{prefix}/summary/{subject}/availability"]


def test_too_little_data_publishes_unknown_not_zero(sqlite_store):
    onset = time.time() - 86400
    sqlite_store.write(night_points("ha", "shin", _night(onset, np.random.default_rng(2), coverage_gap_s=6 * 3600)))
    s = summary.build(sqlite_store, "ha")
    state = homeassistant.state_payload(s)
    assert state["status"] == "too little data" and "of the recording has data" in state["reason"]
    for key in ("episodes", "contractions", "leg_movements", "twitches", "plm_index", "longest_contraction_s"):
        assert state[key] is None, key  # HA renders None as "unknown", never 0
    msgs = homeassistant.messages("legwatch", s)
    assert [t for t, _ in msgs[-2:]] == ["legwatch/summary/ha", "legwatch/summary/ha/availability"]


def test_node_id_is_sanitised():
    assert homeassistant.node_id("Ana María.2") == "legwatch_Ana_Mar_a_2"
    assert homeassistant.config_topic("a b", "episodes") == "homeassistant/sensor/legwatch_a_b/episodes/config"


def test_monitor_publishes_the_summary_when_the_night_ends(mosquitto, tmp_path):
    subject = f"mon{uuid.uuid4().hex[:8]}"
    prefix = f"lw{uuid.uuid4().hex[:6]}"
    cfg = load_config(
        env={
            "LEGWATCH_MQTT_URL": mosquitto.url,
            "LEGWATCH_MQTT_TOPIC_PREFIX": prefix,
            "LEGWATCH_SUBJECT": subject,
            "LEGWATCH_DATA_DIR": str(tmp_path),
        }
    )
    store = SqliteStore(tmp_path / "legwatch.sqlite")
    mon = Monitor(cfg, store, client_id=f"{prefix}-monitor", exit_after_nights=1)
    mon.on_night_stored(publish_summary, "summaries")  # as `legwatch monitor` registers it
    night = generate_night(5, hours=1.0, rate_hz=25.0, cramps=1, gaps=0)
    mon.start()
    try:
        replay(night.t, night.xyz, url=mosquitto.url, sensor="shin-ha", prefix=prefix, speed=0)
        assert mon.done.wait(60), mon.stats
        got = collect_retained(mosquitto.url, _all_topics(prefix, subject), len(homeassistant.SENSORS) + HEALTH + 2)
    finally:
        mon.stop()
        clear_retained(mosquitto.url, _published(prefix, subject, "shin-ha"))
    assert mon.stats["summaries"] == 1
    state = json.loads(got[f"{prefix}/summary/{subject}"].payload)
    _check_discovery(got, prefix, subject, state)
    _check_health(got, prefix, subject, "shin-ha")
    (stored,) = store.query("night", tags={"subject": subject})
    store.close()
    assert state["sensor"] == "shin-ha" and state["status"] == "ok"
    assert state["episodes"] == stored.fields["episodes"]
    assert state["contractions"] == stored.fields["contraction_count"]
    assert state["sleep_hours"] == stored.fields["sleep_h"]
    assert state["coverage_pct"] == pytest.approx(stored.fields["coverage"] * 100, abs=0.1)
