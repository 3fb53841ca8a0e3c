"""Grafana dashboards: well formed, current, and every query proven against a real InfluxDB.

Every panel, annotation and template-variable query in dashboards/*.json runs against the real
InfluxDB (1.6, over the same v1 ``/query`` API that InfluxDB 2 serves to Grafana) holding two nights
that the project's own code generated (``detector.synthetic``), detected (``detector.offline``) and
turned into points (``legwatch.storage.schema``), plus habit entries (``legwatch.habits``) on the days before
and sensor health reports (``status`` points: battery_pct, rssi_dbm, connected, as ``legwatch monitor``
stores them from the collector's status messages; ``tests/test_sensor_health.py`` proves that path). Grafana's macros
are substituted the way Grafana does, and each query must return at least one row; with a subject
that has no data, every query filtered by subject must return none. Grafana itself does not run here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from legwatch.storage import StoreError
from legwatch.storage.influx import InfluxStore, quote_ident

ROOT = Path(__file__).resolve().parents[1]
DASH_DIR = ROOT / "dashboards"
DATASOURCE = {"type": "influxdb", "uid": "legwatch-influx"}
EXPECTED_UIDS = {"night.json": "legwatch-night", "trends.json": "legwatch-trends", "habits.json": "legwatch-habits"}
SUBJECT, SENSOR = "alice", "shin-left"
NIGHT_STARTS = (1767648600.0, 1767648600.0 + 86400 + 1800)  # 2026-01-05 21:30 UTC, next day 22:00
BUILTINS = {"timeFilter", "__interval", "__interval_ms", "__from", "__to"}
# $var, ${var}, ${var:format}, [[var]]
MACRO = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")

DASHBOARDS: dict[str, dict[str, Any]] = {
    p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASH_DIR.glob("*.json"))
}


# -- walking the dashboards -----------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # "panel 'Leg activity' A", "annotation 'Twitch'", "variable 'sensor'"
    text: str
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.where}"


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])  # collapsed rows


def queries(name: str, dashboard: dict[str, Any]) -> list[Query]:
    out = []
    for p in panels(dashboard):
        for t in p.get("targets", []):
            out.append(Query(name, f"panel {p['title']!r} {t['refId']}", t["query"], t))
    for a in dashboard["annotations"]["list"]:
        out.append(Query(name, f"annotation {a['name']!r}", a["target"]["query"], a))
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            out.append(Query(name, f"variable {v['name']!r}", v["query"], v))
    return out


ALL_QUERIES = [q for name, d in DASHBOARDS.items() for q in queries(name, d)]
DATA_QUERIES = [q for q in ALL_QUERIES if not q.where.startswith("variable")]


def grafana_regex_escape(value: str) -> str:
    """How Grafana formats a single variable value for a regex (``=~ /^$var$/``)."""
    return re.sub(r"([\\^$*+?.()|\[\]{}/])", r"\\\1", value)


def render(text: str, variables: dict[str, str], start_ms: int, end_ms: int, interval_s: int = 60) -> str:
    """Substitute Grafana's macros and template variables as Grafana sends them to InfluxDB."""
    values = {
        "timeFilter": f"time >= {start_ms}ms and time <= {end_ms}ms",
        "__interval": f"{interval_s // 60}m" if interval_s % 60 == 0 else f"{interval_s}s",
        "__interval_ms": str(interval_s * 1000),
        "__from": str(start_ms),
        "__to": str(end_ms),
        **variables,
    }

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise AssertionError(f"${name} is neither a Grafana macro nor a variable of the dashboard")
        return values[name]

    return MACRO.sub(sub, text)


def variable_values(dashboard: dict[str, Any], sensor: str) -> dict[str, str]:
    values = {"subject": grafana_regex_escape(SUBJECT), "sensor": sensor}
    for v in dashboard["templating"]["list"]:
        if v["type"] in ("textbox", "custom", "constant"):
            values[v["name"]] = v["current"]["value"]
    return values


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every returned row as {column: value} (tags of the series included)."""
    out = []
    for statement in result.get("results", []):
        for series in statement.get("series", []):
            for values in series.get("values", []):
                row = dict(series.get("tags") or {})
                row.update(zip(series["columns"], values, strict=True))
                out.append(row)
    return out


# -- the stored nights ----------------------------------------------------------------------------


@dataclass
class Stored:
    store: InfluxStore
    nights: list[Any]  # detector.stream.Night
    habits: list[Any]  # legwatch.habits.HabitEntry
    start_ms: int
    end_ms: int

    def run(self, text: str, variables: dict[str, str]) -> list[dict[str, Any]]:
        return rows(self.store.raw_query(render(text, variables, self.start_ms, self.end_ms)))


@pytest.fixture(scope="module")
def stored(influxdb: Any) -> Iterator[Stored]:
    """Two detected nights, habits on the days before, battery reports: one database for the module."""
    from detector.offline import detect_arrays
    from detector.synthetic import generate_night
    from legwatch.habits import make_entry
    from legwatch.storage.schema import night_points, status_point

    nights, points = [], []
    for seed, start in zip((3, 4), NIGHT_STARTS, strict=True):
        recording = generate_night(
            seed, hours=4.0, rate_hz=25.0, start=start, cramps=2, twitches=10, gaps=1, plm_series=1
        )
        night = detect_arrays(recording.t, recording.xyz)
        nights.append(night)
        points += night_points(SUBJECT, SENSOR, night)
        # sensor health every 15 minutes through the night, as the monitor stores the collector's reports
        t, pct = float(recording.t[0]), 96.0
        while t < float(recording.t[-1]):
            health = {"battery_pct": pct, "rssi_dbm": -60.0 - pct % 7, "connected": pct % 2 == 0}
            points.append(status_point(SUBJECT, SENSOR, t, health))
            t, pct = t + 900.0, pct - 0.5
    day = 86400.0
    habits = []
    for start in NIGHT_STARTS:
        midnight = start - start % day
        habits += [
            make_entry("water", 1.5, at=midnight + 10 * 3600),
            make_entry("caffeine", 80, at=midnight + 9 * 3600),
            make_entry("caffeine", 80, at=midnight + 14 * 3600),
            make_entry("exercise", 45, at=midnight + 17 * 3600, note="hard run"),
            make_entry("medication", "statin", at=midnight + 20 * 3600),
            make_entry("stretching", 10, at=midnight + 21 * 3600),
        ]
    points += [h.point(SUBJECT) for h in habits]

    store = InfluxStore(influxdb.url, f"dashboards_{uuid.uuid4().hex[:12]}", timeout=10.0)
    store.ensure_database()
    store.write(points)
    first = min(p.time for p in points)
    last = max(max(p.time for p in points), *(n.end for n in nights))
    try:
        yield Stored(store, nights, habits, int(first * 1000) - 3_600_000, int(last * 1000) + 3_600_000)
    finally:
        with contextlib.suppress(StoreError):
            store.raw_query(f"DROP DATABASE {quote_ident(store.db)}")
        store.close()


def test_the_stored_nights_have_what_the_dashboards_show(stored: Stored) -> None:
    """Guard: every annotation and panel below has something to find."""
    kinds = Counter(e.kind for n in stored.nights for e in n.episodes)
    assert set(kinds) >= {"twitch", "leg_movement", "contraction", "posture_change", "out_of_bed"}, kinds
    assert all(n.sleep_window for n in stored.nights)
    assert sum(len(n.gaps) for n in stored.nights) >= 1


# -- files and structure --------------------------------------------------------------------------


def test_committed_json_is_what_generate_py_writes() -> None:
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASH_DIR / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert set(generate.DASHBOARDS) == set(DASHBOARDS) == set(EXPECTED_UIDS)
    for name, build in generate.DASHBOARDS.items():
        committed = (DASH_DIR / name).read_text(encoding="utf-8")
        assert committed == generate.render(build), f"{name} is stale: run python dashboards/generate.py"


def test_uids_are_the_agreed_stable_ones_and_unique() -> None:
    uids = {name: d["uid"] for name, d in DASHBOARDS.items()}
    assert uids == EXPECTED_UIDS
    assert len(set(uids.values())) == len(uids)
    titles = [d["title"] for d in DASHBOARDS.values()]
    assert len(set(titles)) == len(titles)


def test_datasource_uid_is_the_provisioned_one() -> None:
    provisioned = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/legwatch.yml").read_text())
    (datasource,) = provisioned["datasources"]
    assert {"type": datasource["type"], "uid": datasource["uid"]} == DATASOURCE
    for q in ALL_QUERIES:
        assert q.spec["datasource"] == DATASOURCE, q.id
        if "target" in q.spec:
            assert q.spec["target"]["datasource"] == DATASOURCE, q.id


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_are_well_formed(name: str) -> None:
    dashboard = DASHBOARDS[name]
    for key in ("uid", "title", "schemaVersion", "time", "panels", "templating", "annotations"):
        assert key in dashboard, key
    ps = list(panels(dashboard))
    ids = [p["id"] for p in ps]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    boxes = []
    for p in ps:
        assert p["datasource"] == DATASOURCE, p["title"]
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for other in boxes:  # no two panels overlap on the 24-column grid
            o = other["gridPos"]
            overlap = g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and g["y"] < o["y"] + o["h"]
            assert not (overlap and o["y"] < g["y"] + g["h"]), f"{p['title']!r} overlaps {other['title']!r}"
        boxes.append(p)
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["rawQuery"] is True and t["datasource"] == DATASOURCE, p["title"]


@pytest.mark.parametrize("q", DATA_QUERIES, ids=lambda q: q.id)
def test_every_panel_and_annotation_query_has_time_filter(q: Query) -> None:
    assert "WHERE" in q.text and "$timeFilter" in q.text, q.text


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_variables_are_defined_for_every_use_and_used(name: str) -> None:
    dashboard = DASHBOARDS[name]
    defined = [v["name"] for v in dashboard["templating"]["list"]]
    assert len(defined) == len(set(defined))
    assert {"subject", "sensor"} <= set(defined)
    used = set()
    for q in queries(name, dashboard):
        used |= {m.group(1) or m.group(2) or m.group(3) for m in MACRO.finditer(q.text)}
    assert used - BUILTINS <= set(defined), f"undefined: {sorted(used - BUILTINS - set(defined))}"
    assert set(defined) <= used, f"defined but unused: {sorted(set(defined) - used)}"
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            assert v["query"].startswith("SHOW TAG VALUES FROM ") and v["datasource"] == DATASOURCE
    subject_uses = [q for q in queries(name, dashboard) if "$subject" in q.text]
    assert all('"subject" =~ /^$subject$/' in q.text for q in subject_uses)
    assert all('"sensor" =~ /^$sensor$/' in q.text for q in queries(name, dashboard) if "$sensor" in q.text)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_annotations_are_ranges_with_mapped_columns(name: str) -> None:
    names = [a["name"] for a in DASHBOARDS[name]["annotations"]["list"]]
    assert len(names) == len(set(names))
    for a in DASHBOARDS[name]["annotations"]["list"]:
        t = a["target"]
        assert t["rawQuery"] and t["fromAnnotations"], a["name"]
        for column in ("textColumn", "tagsColumn", "timeEndColumn"):
            assert f'AS "{t[column]}"' in t["query"], (a["name"], column)
    colours = [a["iconColor"] for a in DASHBOARDS[name]["annotations"]["list"]]
    assert len(colours) == len(set(colours)), "each annotation gets its own colour"


# -- every query against the stored nights --------------------------------------------------------

SENSOR_CHOICES = {
    "one sensor": grafana_regex_escape(SENSOR),
    "All": ".*",
    "multi-value": f"({grafana_regex_escape(SENSOR)}|{grafana_regex_escape('shin-right')})",
}


@pytest.mark.parametrize("q", ALL_QUERIES, ids=lambda q: q.id)
def test_every_query_returns_data(stored: Stored, q: Query) -> None:
    for label, sensor in SENSOR_CHOICES.items():
        variables = variable_values(DASHBOARDS[q.dashboard], sensor)
        got = stored.run(q.text, variables)
        assert got, f"{q.id} returned no rows with sensor = {label}:\n{render(q.text, variables, 0, 1)}"
        if q.where.startswith("variable"):
            assert {r["value"] for r in got} == {SUBJECT if q.spec["name"] == "subject" else SENSOR}


@pytest.mark.parametrize("q", [q for q in ALL_QUERIES if "$subject" in q.text], ids=lambda q: q.id)
def test_queries_really_filter_by_subject(stored: Stored, q: Query) -> None:
    variables = variable_values(DASHBOARDS[q.dashboard], ".*") | {"subject": "nobody"}
    assert stored.run(q.text, variables) == []


def annotation(dashboard: str, name: str) -> dict[str, Any]:
    (a,) = [a for a in DASHBOARDS[dashboard]["annotations"]["list"] if a["name"] == name]
    return a


def annotation_rows(stored: Stored, a: dict[str, Any]) -> list[dict[str, Any]]:
    return stored.run(a["target"]["query"], variable_values(DASHBOARDS["night.json"], ".*"))


@pytest.mark.parametrize("kind", ["twitch", "leg_movement", "contraction", "posture_change", "out_of_bed"])
def test_episode_annotations_are_the_stored_episodes_as_ms_ranges(stored: Stored, kind: str) -> None:
    (a,) = [
        a for a in DASHBOARDS["night.json"]["annotations"]["list"] if f"\"kind\" = '{kind}'" in a["target"]["query"]
    ]
    t = a["target"]
    got = annotation_rows(stored, a)
    expected = sorted((e.start, e.end) for n in stored.nights for e in n.episodes if e.kind == kind)
    assert len(got) == len(expected)
    for row, (start, end) in zip(sorted(got, key=lambda r: r["time"]), expected, strict=True):
        # Grafana takes TimeEnd as epoch milliseconds, like the time column (epoch=ms)
        assert row["time"] == round(start * 1000)
        assert row[t["timeEndColumn"]] == pytest.approx(end * 1000, abs=1)
        assert row[t["timeEndColumn"]] >= row["time"]
        assert row[t["textColumn"]] == kind
        assert row[t["tagsColumn"]] == SENSOR  # a string: Grafana splits tags on commas


def test_gap_and_sleep_onset_annotations_are_ms_ranges(stored: Stored) -> None:
    gaps = annotation_rows(stored, annotation("night.json", "Data gap"))
    expected = sorted((g.start, g.end) for n in stored.nights for g in n.gaps)
    assert [(r["time"], r["timeEnd"]) for r in sorted(gaps, key=lambda r: r["time"])] == [
        (round(s * 1000), pytest.approx(e * 1000, abs=1)) for s, e in expected
    ]
    onsets = annotation_rows(stored, annotation("night.json", "Before sleep onset"))
    assert len(onsets) == len(stored.nights)
    for row, night in zip(sorted(onsets, key=lambda r: r["time"]), stored.nights, strict=True):
        assert row["time"] == round(night.start * 1000)
        assert row["timeEnd"] == pytest.approx(night.sleep_window[0] * 1000, abs=1)
        assert row["timeEnd"] >= row["time"]


def panel_rows(stored: Stored, dashboard: str, title: str, ref: str = "A") -> list[dict[str, Any]]:
    (p,) = [p for p in panels(DASHBOARDS[dashboard]) if p["title"] == title]
    (t,) = [t for t in p["targets"] if t["refId"] == ref]
    return stored.run(t["query"], variable_values(DASHBOARDS[dashboard], ".*"))


def test_trends_show_each_nights_counts(stored: Stored) -> None:
    got = panel_rows(stored, "trends.json", "Episodes per night by kind")
    expected = [
        {k: sum(1 for e in n.episodes if e.kind == k and e.in_sleep) for k in ("twitch", "leg_movement", "contraction")}
        for n in stored.nights
    ]
    assert [{k: r[k] for k in expected[0]} for r in sorted(got, key=lambda r: r["time"])] == expected
    (average,) = panel_rows(stored, "trends.json", "Average night in the time range")
    assert average["nights"] == len(stored.nights)


def test_habits_are_summed_per_day_beside_the_next_night(stored: Stored) -> None:
    per_day = panel_rows(stored, "habits.json", "Habits per day, and the next night's episodes", "A")
    caffeine = sorted((r["time"], r["sum"]) for r in per_day if r["habit"] == "caffeine")
    days = [round((s - s % 86400) * 1000) for s in (min(h.time for h in stored.habits), NIGHT_STARTS[1])]
    assert caffeine == [(days[0], 160.0), (days[1], 160.0)]
    nights = panel_rows(stored, "habits.json", "Habits per day, and the next night's episodes", "B")
    # each night is counted in the day column (noon to noon) of the evening it started
    assert [r["time"] for r in sorted(nights, key=lambda r: r["time"])] == [d + 12 * 3_600_000 for d in days]
    assert [r["episodes next night"] for r in sorted(nights, key=lambda r: r["time"])] == [
        sum(1 for e in n.episodes if e.counted and e.in_sleep) for n in stored.nights
    ]


def test_battery_panel_shows_the_collectors_reports(stored: Stored) -> None:
    got = panel_rows(stored, "night.json", "Sensor battery")
    assert got and all(0 < r["last"] <= 100 for r in got) and {r["sensor"] for r in got} == {SENSOR}


def test_signal_and_link_panels_show_the_collectors_reports(stored: Stored) -> None:
    signal = panel_rows(stored, "night.json", "Sensor signal")
    assert signal and all(-67 <= r["last"] <= -60 for r in signal)
    link = [r["last"] for r in panel_rows(stored, "night.json", "Sensor connected") if r["last"] is not None]
    assert set(link) == {True, False}
