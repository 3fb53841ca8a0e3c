"""Sensor health end to end: a status message on the broker ends as the dashboard's numbers.

A sensor's status (``<prefix>/<sensor>/status``, JSON with ``battery_pct``, ``rssi_dbm``,
``connected``: README "MQTT status") published to a real Mosquitto is taken by the real monitor
service (``legwatch.monitor.service.Monitor``) and stored as a ``status`` point (tags subject,
sensor) in a real InfluxDB and in SQLite. Then the Grafana night dashboard's own query text, read
from ``dashboards/night.json`` and with Grafana's macros substituted as Grafana sends them, returns
that battery level (and the signal and link panels theirs). The collector's side - the status it
publishes from a simulated sensor's Battery Service - runs for real too, into the same monitor.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from legwatch.contracts import status, topics
from legwatch.contracts.config import load_config
from legwatch.monitor.service import Monitor
from legwatch.mqtt.connection import Connection

NIGHT = json.loads((Path(__file__).resolve().parents[1] / "dashboards" / "night.json").read_text(encoding="utf-8"))
SUBJECT = "alice"


def dashboard_query(title: str) -> str:
    """The query text of the night dashboard's panel ``title`` (refId A), as committed."""
    (p,) = [p for p in NIGHT["panels"] if p["title"] == title]
    (t,) = [t for t in p["targets"] if t["refId"] == "A"]
    return t["query"]


def as_grafana_sends(query: str, sensor: str, start_ms: int, end_ms: int) -> str:
    """Grafana's macros and the dashboard's variables (one subject, one sensor) substituted."""
    values = {
        "timeFilter": f"time >= {start_ms}ms and time <= {end_ms}ms",
        "__interval": "1m",
        "subject": re.escape(SUBJECT),
        "sensor": re.escape(sensor),
    }
    return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], query)


def influx_rows(store: Any, query: str) -> list[dict[str, Any]]:
    out = []
    for statement in store.raw_query(query).get("results", []):
        for series in statement.get("series", []):
            for values in series.get("values", []):
                out.append({**(series.get("tags") or {}), **dict(zip(series["columns"], values, strict=True))})
    return out


def sqlite_rows(store: Any, query: str, sensor: str) -> list[dict[str, Any]]:
    """SQLite has no InfluxQL: read the measurement and field the dashboard query names, for the
    subject and sensor it filters on."""
    m = re.match(r'SELECT last\("(\w+)"\) FROM "(\w+)"', query)
    assert m, query
    field, measurement = m.groups()
    assert '"subject" =~ /^$subject$/' in query and '"sensor" =~ /^$sensor$/' in query
    points = store.query(measurement, tags={"subject": SUBJECT, "sensor": sensor})
    rows = [{"time": p.time_ms, "sensor": p.tags["sensor"], "last": p.fields.get(field)} for p in points]
    return [r for r in rows if r["last"] is not None]


def monitor_for(url: str, tmp_path: Path, prefix: str, store: Any) -> Monitor:
    cfg = load_config(
        env={
            "LEGWATCH_MQTT_URL": url,
            "LEGWATCH_MQTT_TOPIC_PREFIX": prefix,
            "LEGWATCH_DATA_DIR": str(tmp_path / "data"),
            "LEGWATCH_SUBJECT": SUBJECT,
        }
    )
    return Monitor(cfg, store, client_id=f"{prefix}-monitor", checkpoint_s=3600)


def wait_for(cond: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())


@pytest.mark.parametrize("store_name", ["influx_store", "sqlite_store"])
def test_a_published_battery_level_is_what_the_dashboard_battery_query_returns(
    mosquitto: Any, tmp_path: Path, request: pytest.FixtureRequest, store_name: str
) -> None:
    store = request.getfixturevalue(store_name)
    prefix = f"lwhealth{uuid.uuid4().hex[:6]}"
    sensor = "shin-left"
    sent = time.time()
    message = status.build(
        "online", source="collector", sensor=sensor, battery_pct=73, rssi_dbm=-61, connected=True, link="connected"
    )
    monitor = monitor_for(mosquitto.url, tmp_path, prefix, store)
    monitor.start()
    pub = Connection(mosquitto.url, f"{prefix}-pub", persistent=False)
    pub.connect()
    try:
        pub.publish_wait(topics.status(prefix, sensor), message, qos=1, retain=True, timeout=10)
        assert wait_for(lambda: store.query("status", tags={"sensor": sensor})), "no status point was stored"
    finally:
        pub.publish_wait(topics.status(prefix, sensor), b"", qos=1, retain=True, timeout=10)  # clear the retained one
        pub.close()
        monitor.stop()

    (point,) = store.query("status", tags={"sensor": sensor})
    assert dict(point.tags) == {"subject": SUBJECT, "sensor": sensor}
    assert dict(point.fields) == {"battery_pct": 73.0, "rssi_dbm": -61.0, "connected": True}
    assert point.time == pytest.approx(json.loads(message)["time"], abs=1e-3)

    window = (int(sent * 1000) - 3_600_000, int(sent * 1000) + 3_600_000)
    for title, expected in (("Sensor battery", 73.0), ("Sensor signal", -61.0), ("Sensor connected", True)):
        query = dashboard_query(title)
        if store_name == "influx_store":
            got = influx_rows(store, as_grafana_sends(query, sensor, *window))
        else:
            got = sqlite_rows(store, query, sensor)
        values = [r["last"] for r in got if r["last"] is not None]
        assert values and values[-1] == expected, (title, got)
        assert {r["sensor"] for r in got} == {sensor}
    if store_name == "influx_store":  # another subject's dashboard shows none of it
        other = as_grafana_sends(dashboard_query("Sensor battery"), sensor, *window).replace(SUBJECT, "bob")
        assert influx_rows(store, other) == []


def test_malformed_health_fields_store_no_numbers(mosquitto: Any, tmp_path: Path, sqlite_store: Any) -> None:
    """A battery of 250 %, a signal in words, ``connected`` as a string: not stored as numbers."""
    prefix = f"lwhealth{uuid.uuid4().hex[:6]}"
    monitor = monitor_for(mosquitto.url, tmp_path, prefix, sqlite_store)
    monitor.start()
    pub = Connection(mosquitto.url, f"{prefix}-pub", persistent=False)
    pub.connect()
    try:
        bad = status.build("online", battery_pct=250, rssi_dbm="strong", connected="yes")
        good = status.build("online", battery_pct=40)
        pub.publish_wait(topics.status(prefix, "shin-a"), bad, qos=1, timeout=10)
        pub.publish_wait(topics.status(prefix, "shin-b"), good, qos=1, timeout=10)
        assert wait_for(lambda: sqlite_store.query("status", tags={"sensor": "shin-b"}))
    finally:
        pub.close()
        monitor.stop()
    assert sqlite_store.query("status", tags={"sensor": "shin-a"}) == []
    assert [dict(p.fields) for p in sqlite_store.query("status", tags={"sensor": "shin-b"})] == [{"battery_pct": 40.0}]


def test_the_collectors_status_reaches_the_dashboard(mosquitto: Any, tmp_path: Path, influx_store: Any) -> None:
    """The real collector, streaming from a simulated DIY board whose Battery Service reads 77 %,
    publishes its status; the real monitor stores it; the dashboard's battery query returns 77."""
    from test_collector import NusBoard, Radio, config, options, running, sensor_id

    board = NusBoard()
    sid = sensor_id()
    cfg = config(mosquitto.url, tmp_path)
    monitor = Monitor(cfg, influx_store, client_id=f"monitor-{sid}")
    monitor.start()
    started = time.time()

    async def body(c: Any) -> None:
        deadline = time.monotonic() + 20
        while not influx_store.query("status", tags={"sensor": sid}) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    try:
        asyncio.run(running(cfg, options(sid, rate_hz=board.rate), Radio(board).link(), body))
        assert wait_for(lambda: len(influx_store.query("status", tags={"sensor": sid})) >= 2)  # online, offline
    finally:
        monitor.stop()
    subject = cfg.subject_for(sid)
    window = (int(started * 1000) - 60_000, int(time.time() * 1000) + 60_000)
    query = as_grafana_sends(dashboard_query("Sensor battery"), sid, *window).replace(re.escape(SUBJECT), subject)
    got = influx_rows(influx_store, query)
    assert [r["last"] for r in got if r["last"] is not None][-1] == 77.0
    stored = influx_store.query("status", tags={"subject": subject, "sensor": sid})
    links = [p.fields["connected"] for p in stored]
    assert links[0] is True and links[-1] is False  # streaming, then the collector stopped
    assert all(p.fields["rssi_dbm"] == -58.0 for p in stored)  # the scan's RSSI
