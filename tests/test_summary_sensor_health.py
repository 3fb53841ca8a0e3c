"""The morning summary warns about the sensor: a link lost during the night, a battery that will
not last another night. Built from the ``status`` points ``legwatch monitor`` stores from the
collector's status messages (tests/test_sensor_health.py proves that path), in a real SQLite store,
through ``legwatch summary`` itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.stream import Night
from helpers import run_cli
from legwatch import summary
from legwatch.storage.schema import night_points, status_point
from legwatch.storage.sqlite import SqliteStore

SUBJECT, SENSOR = "me", "shin-left"
ONSET = 1767651000.0  # 2026-01-05 22:10 UTC
HOURS = 8.0


def _store(tmp_path: Path, health: list[tuple[float, dict]]) -> Path:
    store = SqliteStore(tmp_path / "legwatch.sqlite")
    night = Night([], [], [], (ONSET, ONSET + 7.5 * 3600), 0.0, ONSET - 600, ONSET + HOURS * 3600, 1000, 0)
    points = night_points(SUBJECT, SENSOR, night)
    points += [status_point(SUBJECT, SENSOR, ONSET + dt, fields) for dt, fields in health]
    points.append(status_point(SUBJECT, "other-shin", ONSET + 3600, {"connected": False, "battery_pct": 1.0}))
    store.write(points)
    store.close()
    return tmp_path


def _health(tmp_path: Path) -> dict:
    with SqliteStore(tmp_path / "legwatch.sqlite") as store:
        return summary.build(store, SUBJECT)["sensor_health"]


def test_a_dropout_during_the_night_is_warned_about_the_final_stop_is_not(tmp_path: Path) -> None:
    end = HOURS * 3600
    _store(
        tmp_path,
        [
            (-590, {"battery_pct": 80.0, "rssi_dbm": -60.0, "connected": True}),
            (3 * 3600, {"connected": False}),  # lost at 01:10
            (3 * 3600 + 600, {"battery_pct": 76.0, "rssi_dbm": -71.0, "connected": True}),  # back 10 min later
            (end - 5, {"battery_pct": 70.0, "connected": False}),  # the collector stopped in the morning
        ],
    )
    h = _health(tmp_path)
    assert h["disconnects"] == 1 and h["disconnected_s"] == 600.0
    assert h["battery_pct"] == 70.0 and h["battery_used_pct"] == 10.0
    (warning,) = h["warnings"]
    assert "disconnected 1 time(s)" in warning and "(10.0 min without a link)" in warning


def test_a_battery_that_will_not_last_another_night_is_warned_about(tmp_path: Path) -> None:
    _store(
        tmp_path,
        [
            (-590, {"battery_pct": 30.0, "connected": True}),
            (4 * 3600, {"battery_pct": 21.0, "connected": True}),
            (HOURS * 3600 - 10, {"battery_pct": 12.0, "connected": True}),
        ],
    )
    h = _health(tmp_path)
    assert h["disconnects"] == 0
    (warning,) = h["warnings"]
    assert "battery is at 12%" in warning and "will not last another night" in warning and "used 18%" in warning
    # the text summary shows it, and so does --format json
    text = run_cli("summary", "--subject", SUBJECT, "--data-dir", str(tmp_path), check=True).stdout
    assert "will not last another night" in " ".join(text.split())
    out = run_cli("summary", "--subject", SUBJECT, "--data-dir", str(tmp_path), "--format", "json", check=True)
    assert json.loads(out.stdout)["sensor_health"]["warnings"] == [warning]


@pytest.mark.parametrize(
    "readings,warned",
    [
        ([(-590, 95.0), (HOURS * 3600 - 10, 85.0)], False),  # used 10 %, 85 % left: lasts
        ([(-590, 70.0), (HOURS * 3600 - 10, 38.0)], False),  # used 32 %, 38 % left: lasts one more night
        ([(-590, 60.0), (HOURS * 3600 - 10, 25.0)], True),  # used 35 %, 25 % left: does not
        ([(HOURS * 3600 - 10, 19.0)], True),  # one reading, drain unknown: at or below 20 %
        ([(HOURS * 3600 - 10, 45.0)], False),
    ],
)
def test_battery_projection(tmp_path: Path, readings: list[tuple[float, float]], warned: bool) -> None:
    _store(tmp_path, [(dt, {"battery_pct": pct}) for dt, pct in readings])
    h = _health(tmp_path)
    assert bool(h["warnings"]) is warned, h


def test_no_status_points_no_warnings(tmp_path: Path) -> None:
    _store(tmp_path, [])
    assert _health(tmp_path) == {
        "battery_pct": None,
        "battery_used_pct": None,
        "disconnects": 0,
        "disconnected_s": 0.0,
        "warnings": [],
    }
