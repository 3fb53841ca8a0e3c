"""Write legwatch's Grafana dashboards (night.json, trends.json, habits.json) next to this file.

    python dashboards/generate.py          # rewrite the JSON files
    python dashboards/generate.py --check  # exit 1 if a committed file differs from what this writes

The JSON files are what Grafana provisions (deploy/grafana/provisioning/dashboards/legwatch.yml);
this script is only how they are kept consistent. Standard library only; it imports nothing from
legwatch. tests/test_dashboards.py runs every query below against a real InfluxDB holding a
detected night, and checks that the committed files are what this script writes.

Every query is raw InfluxQL on the datasource with the fixed uid ``legwatch-influx`` (InfluxDB 2 through
its v1 compatibility API), filtered by ``$timeFilter`` and by the ``subject``/``sensor`` variables as
regular expressions (``"subject" =~ /^$subject$/``), so "All" (``.*``) and multi-value selections work.
The schema (README.md, "InfluxDB schema"): ``episode`` at onset with field ``end`` in Unix seconds,
``activity`` per 30 s epoch, ``gap``, ``habit``, ``night`` at the start of the recording, and
``status`` (fields ``battery_pct``, ``rssi_dbm``, ``connected``; tags ``subject``, ``sensor``), which
``legwatch monitor`` stores from each sensor's status messages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "influxdb", "uid": "legwatch-influx"}
SCHEMA_VERSION = 39
TAGS = ["legwatch"]

WHO = '"subject" =~ /^$subject$/'
LEG = '"sensor" =~ /^$sensor$/'
WHERE = f"WHERE {WHO} AND {LEG} AND $timeFilter"

# One colour per episode kind, used for annotations and series alike.
KIND_COLOURS = {
    "twitch": "#F2CC0C",
    "leg_movement": "#5794F2",
    "contraction": "#F2495C",
    "posture_change": "#B877D9",
    "out_of_bed": "#FF9830",
}
KIND_NAMES = {
    "twitch": "Twitch",
    "leg_movement": "Leg movement",
    "contraction": "Contraction (cramp)",
    "posture_change": "Posture change (not counted)",
    "out_of_bed": "Out of bed (not counted)",
}


# -- building blocks ------------------------------------------------------------------------------


def target(query: str, ref: str = "A", *, fmt: str = "time_series", alias: str = "") -> dict[str, Any]:
    t: dict[str, Any] = {
        "refId": ref,
        "datasource": DS,
        "rawQuery": True,
        "resultFormat": fmt,
        "query": query,
    }
    if alias:
        t["alias"] = alias
    return t


def panel(
    kind: str,
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[dict[str, Any]],
    *,
    description: str = "",
    unit: str = "",
    defaults: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    interval: str = "",
) -> dict[str, Any]:
    x, y, w, h = grid
    field_defaults: dict[str, Any] = dict(defaults or {})
    if unit:
        field_defaults["unit"] = unit
    if custom:
        field_defaults["custom"] = custom
    p: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {"defaults": field_defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if interval:
        p["interval"] = interval
    return p


def by_name(name: str, **props: Any) -> dict[str, Any]:
    """A field override for the series/field called ``name``."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in props.items()],
    }


def lines(fill: int = 10, *, points: str = "never", bars: bool = False, stack: bool = False) -> dict[str, Any]:
    return {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else fill,
        "showPoints": points,
        "pointSize": 6,
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }


TS_OPTIONS = {
    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
    "tooltip": {"mode": "multi", "sort": "none"},
}


def stat_options(text_mode: str = "value_and_name") -> dict[str, Any]:
    return {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": text_mode,
        "colorMode": "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
    }


def annotation(
    name: str,
    query: str,
    colour: str,
    *,
    text: str = "text",
    tags: str = "tags",
    time_end: str = "timeEnd",
    enable: bool = True,
) -> dict[str, Any]:
    """An InfluxQL annotation: time = the point's time; ``time_end`` (epoch ms) makes it a region."""
    return {
        "name": name,
        "datasource": DS,
        "enable": enable,
        "hide": False,
        "iconColor": colour,
        "target": {
            "refId": "Anno",
            "datasource": DS,
            "rawQuery": True,
            "fromAnnotations": True,
            "textEditor": True,
            "query": query,
            "textColumn": text,
            "tagsColumn": tags,
            "timeEndColumn": time_end,
            "titleColumn": "",
        },
    }


def query_variable(
    name: str, label: str, query: str, *, include_all: bool = False, multi: bool = False
) -> dict[str, Any]:
    v: dict[str, Any] = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": query,
        "definition": query,
        "refresh": 1,  # on dashboard load (SHOW TAG VALUES takes no time range)
        "sort": 1,
        "regex": "",
        "hide": 0,
        "includeAll": include_all,
        "multi": multi,
        "current": {},
        "options": [],
    }
    if include_all:
        v["allValue"] = ".*"
    return v


def who_and_leg(measurement: str) -> list[dict[str, Any]]:
    return [
        query_variable("subject", "Person", f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "subject"'),
        query_variable(
            "sensor",
            "Sensor",
            f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "sensor" WHERE {WHO}',
            include_all=True,
            multi=True,
        ),
    ]


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[dict[str, Any]],
    variables: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    time_from: str,
) -> dict[str, Any]:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "timezone": "browser",
        "time": {"from": time_from, "to": "now"},
        "refresh": "",
        "links": [
            {"type": "dashboards", "tags": TAGS, "asDropdown": True, "title": "legwatch", "includeVars": True},
        ],
        "templating": {"list": variables},
        "annotations": {"list": annotations},
        "panels": panels,
    }


NOT_A_DIAGNOSIS = "legwatch is a self-tracking tool, not a diagnosis."

# -- Night ----------------------------------------------------------------------------------------


def night() -> dict[str, Any]:
    episodes = [
        annotation(
            KIND_NAMES[kind],
            f'SELECT "end" * 1000 AS "timeEnd", "kind" AS "text", "sensor" AS "tags" FROM "episode" '
            f"WHERE \"kind\" = '{kind}' AND {WHO} AND {LEG} AND $timeFilter",
            colour,
            enable=kind in ("twitch", "leg_movement", "contraction"),
        )
        for kind, colour in KIND_COLOURS.items()
    ]
    others = [
        annotation(
            "Data gap",
            f'SELECT "end" * 1000 AS "timeEnd", "duration_s" AS "text", "sensor" AS "tags" FROM "gap" {WHERE}',
            "#8E8E8E",
        ),
        # InfluxQL cannot move a point: the night point is stamped at the start of the recording, so
        # the region runs from there to sleep onset. Onset and end are in the "Sleep window" panel.
        annotation(
            "Before sleep onset",
            f'SELECT "sleep_start" * 1000 AS "timeEnd", "sleep_h" AS "text", "sensor" AS "tags" FROM "night" {WHERE}',
            "#73BF69",
        ),
    ]
    panels = [
        panel(
            "stat",
            "Sleep window",
            (0, 0, 12, 5),
            [
                target(
                    'SELECT last("sleep_start") * 1000 AS "fell asleep", last("sleep_end") * 1000 AS "woke", '
                    'last("sleep_h") AS "hours asleep", last("plm_index") AS "PLM index", '
                    f'last("coverage") AS "coverage" FROM "night" {WHERE}',
                    fmt="table",
                )
            ],
            description="From the last night that starts in the time range. The PLM index counts periodic "
            "leg movements per hour of sleep (clinical threshold 15/h). " + NOT_A_DIAGNOSIS,
            overrides=[
                by_name("fell asleep", unit="dateTimeAsLocal"),
                by_name("woke", unit="dateTimeAsLocal"),
                by_name("hours asleep", unit="h", decimals=1),
                by_name("PLM index", unit="none", decimals=1),
                by_name("coverage", unit="percentunit", decimals=0),
            ],
            options=stat_options(),
        ),
        panel(
            "stat",
            "Episodes in the time range",
            (12, 0, 12, 5),
            [
                target(
                    f'SELECT count("duration_s") AS "episodes" FROM "episode" {WHERE} GROUP BY "kind"',
                    alias="$tag_kind",
                )
            ],
            description="Every detected episode by kind, in or out of the sleep window.",
            overrides=[by_name(kind, color={"mode": "fixed", "fixedColor": c}) for kind, c in KIND_COLOURS.items()],
            options=stat_options(),
        ),
        panel(
            "timeseries",
            "Leg activity",
            (0, 5, 24, 8),
            [
                target(
                    f'SELECT max("movement_g") FROM "activity" {WHERE} GROUP BY time($__interval), "sensor" fill(null)',
                    alias="$tag_sensor",
                )
            ],
            description="Movement level per 30 s epoch (acceleration, g). Episodes are the coloured regions.",
            unit="suffix: g",
            custom=lines(),
            options=TS_OPTIONS,
            interval="30s",
        ),
        panel(
            "timeseries",
            "Leg angle",
            (0, 13, 24, 7),
            [
                target(
                    f'SELECT mean("angle_deg") FROM "activity" {WHERE} GROUP BY time($__interval), "sensor" fill(null)',
                    alias="$tag_sensor",
                )
            ],
            description="Elevation of the shin per epoch: about 0° lying, 90° standing.",
            unit="degree",
            custom=lines(0),
            options=TS_OPTIONS,
            interval="30s",
        ),
        panel(
            "timeseries",
            "Data coverage",
            (0, 20, 12, 6),
            [
                target(
                    f'SELECT min("coverage") FROM "activity" {WHERE} GROUP BY time($__interval), "sensor" fill(null)',
                    alias="$tag_sensor",
                )
            ],
            description="Share of each epoch with samples; gaps are the grey regions.",
            unit="percentunit",
            defaults={"min": 0, "max": 1},
            custom=lines(),
            options=TS_OPTIONS,
            interval="30s",
        ),
        panel(
            "timeseries",
            "Sensor battery",
            (12, 20, 6, 6),
            [
                target(
                    f'SELECT last("battery_pct") FROM "status" {WHERE} GROUP BY time($__interval), "sensor" fill(none)',
                    alias="$tag_sensor",
                )
            ],
            description="Battery level the collector reports (measurement status, field battery_pct).",
            unit="percent",
            defaults={
                "min": 0,
                "max": 100,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 20}],
                },
            },
            custom={**lines(0, points="always"), "thresholdsStyle": {"mode": "line"}},
            options=TS_OPTIONS,
            interval="30s",
        ),
        panel(
            "timeseries",
            "Sensor signal",
            (18, 20, 6, 6),
            [
                target(
                    f'SELECT last("rssi_dbm") FROM "status" {WHERE} GROUP BY time($__interval), "sensor" fill(none)',
                    alias="$tag_sensor",
                )
            ],
            description="Signal strength of the sensor's advertisement before each connection (field rssi_dbm). "
            "Below about -85 dBm links drop: move the receiver closer.",
            unit="dBm",
            defaults={
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": -85}],
                },
            },
            custom={**lines(0, points="always"), "thresholdsStyle": {"mode": "line"}},
            options=TS_OPTIONS,
            interval="30s",
        ),
        panel(
            "state-timeline",
            "Sensor connected",
            (0, 26, 24, 4),
            [
                target(
                    f'SELECT last("connected") FROM "status" {WHERE} '
                    'GROUP BY time($__interval), "sensor" fill(previous)',
                    alias="$tag_sensor",
                )
            ],
            description="Whether the sensor's Bluetooth link was streaming (field connected); red stretches are "
            "drop-outs, and what the sensor measured then is missing.",
            defaults={
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "true": {"text": "connected", "color": "green", "index": 0},
                            "false": {"text": "disconnected", "color": "red", "index": 1},
                        },
                    }
                ]
            },
            options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "legend": {"showLegend": False}},
            interval="30s",
        ),
        panel(
            "table",
            "Episodes",
            (0, 30, 24, 10),
            [
                target(
                    'SELECT "kind", "duration_s" AS "duration (s)", "peak_g" AS "peak (g)", "periodic", '
                    f'"in_sleep" AS "in sleep", "sensor" FROM "episode" {WHERE}',
                    fmt="table",
                )
            ],
            description="Periodic: part of a series of at least 4 leg movements 10-90 s apart (AASM/WASM).",
            options={"showHeader": True, "sortBy": [{"displayName": "Time", "desc": False}]},
        ),
    ]
    return dashboard(
        "legwatch-night",
        "legwatch · Night",
        "One night: leg activity and angle, episodes as regions by kind, gaps, sleep window, sensor battery, "
        "signal and link. " + NOT_A_DIAGNOSIS,
        panels,
        who_and_leg("activity"),
        episodes + others,
        "now-12h",
    )


# -- Trends ---------------------------------------------------------------------------------------


def trends() -> dict[str, Any]:
    per_night = f'FROM "night" {WHERE} GROUP BY "sensor"'
    panels = [
        panel(
            "stat",
            "Average night in the time range",
            (0, 0, 24, 4),
            [
                target(
                    'SELECT mean("episodes") AS "episodes", mean("contraction_count") AS "contractions", '
                    'mean("plm_index") AS "PLM index", mean("sleep_h") AS "hours asleep", '
                    f'mean("coverage") AS "coverage", count("episodes") AS "nights" FROM "night" {WHERE}',
                    fmt="table",
                )
            ],
            description="Means over the nights that start in the time range (episodes in the sleep window).",
            defaults={"decimals": 1},
            overrides=[
                by_name("coverage", unit="percentunit", decimals=0),
                by_name("hours asleep", unit="h"),
                by_name("nights", decimals=0),
            ],
            options=stat_options(),
        ),
        panel(
            "timeseries",
            "Episodes per night by kind",
            (0, 4, 24, 9),
            [
                target(
                    'SELECT "twitch_count" AS "twitch", "leg_movement_count" AS "leg_movement", '
                    f'"contraction_count" AS "contraction" {per_night}',
                    alias="$col",
                )
            ],
            description="Counted episodes inside the sleep window, one bar per night (at the start of the recording).",
            custom=lines(bars=True, stack=True),
            overrides=[
                by_name(kind, color={"mode": "fixed", "fixedColor": KIND_COLOURS[kind]})
                for kind in ("twitch", "leg_movement", "contraction")
            ],
            options=TS_OPTIONS,
        ),
        panel(
            "timeseries",
            "Periodic leg movement index",
            (0, 13, 12, 8),
            [target(f'SELECT "plm_index" {per_night}', alias="$tag_sensor")],
            description="Periodic leg movements per hour of sleep; the line marks 15/h, the usual clinical "
            "threshold. " + NOT_A_DIAGNOSIS,
            unit="none",
            defaults={
                "min": 0,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "green", "value": None}, {"color": "red", "value": 15}],
                },
            },
            custom={**lines(0, points="always"), "thresholdsStyle": {"mode": "line"}},
            options=TS_OPTIONS,
        ),
        panel(
            "timeseries",
            "Data coverage per night",
            (12, 13, 12, 8),
            [target(f'SELECT "coverage" {per_night}', alias="$tag_sensor")],
            description="Share of the recording with samples. Nights with little coverage count fewer episodes.",
            unit="percentunit",
            defaults={"min": 0, "max": 1},
            custom=lines(0, points="always"),
            options=TS_OPTIONS,
        ),
        panel(
            "timeseries",
            "Hours asleep",
            (0, 21, 24, 7),
            [target(f'SELECT "sleep_h" {per_night}', alias="$tag_sensor")],
            description="Length of the sleep window found in the data.",
            unit="h",
            defaults={"min": 0},
            custom=lines(bars=True),
            options=TS_OPTIONS,
        ),
    ]
    return dashboard(
        "legwatch-trends",
        "legwatch · Trends",
        "Nights over weeks: episodes by kind, periodic leg movement index, coverage. " + NOT_A_DIAGNOSIS,
        panels,
        who_and_leg("night"),
        [],
        "now-90d",
    )


# -- Habits ---------------------------------------------------------------------------------------


def habits() -> dict[str, Any]:
    # Days start at midnight in $tz; a night (stamped at the start of its recording, in the evening or
    # just after midnight) is counted in the day from noon to noon, so it sits beside the day before.
    habit_days = (
        'SELECT sum("value") FROM "habit" '
        f"WHERE {WHO} AND $timeFilter GROUP BY time(1d), \"habit\" fill(none) tz('$tz')"
    )
    next_night = "GROUP BY time(1d, 12h) fill(none) tz('$tz')"
    tz = {
        "type": "textbox",
        "name": "tz",
        "label": "Time zone for days",
        "query": "UTC",
        "current": {"text": "UTC", "value": "UTC"},
        "options": [{"selected": True, "text": "UTC", "value": "UTC"}],
        "hide": 0,
        "description": "IANA time zone name where your days start, e.g. Europe/Berlin",
    }
    panels = [
        panel(
            "timeseries",
            "Habits per day, and the next night's episodes",
            (0, 0, 24, 10),
            [
                target(habit_days, "A", alias="$tag_habit"),
                target(f'SELECT sum("episodes") AS "episodes next night" FROM "night" {WHERE} {next_night}', "B"),
            ],
            description="Bars: each habit's daily total in its own unit. Line: counted episodes in the sleep "
            "window of the night that followed (right axis). Going together is not cause and effect: "
            "`legwatch correlate` says how sure a link is. " + NOT_A_DIAGNOSIS,
            custom=lines(bars=True),
            overrides=[
                by_name(
                    "episodes next night",
                    **{
                        "custom.drawStyle": "line",
                        "custom.showPoints": "always",
                        "custom.fillOpacity": 0,
                        "custom.axisPlacement": "right",
                        "color": {"mode": "fixed", "fixedColor": "#F2495C"},
                    },
                )
            ],
            options=TS_OPTIONS,
        ),
        panel(
            "timeseries",
            "Episodes per night by kind",
            (0, 10, 24, 8),
            [
                target(
                    'SELECT sum("twitch_count") AS "twitch", sum("leg_movement_count") AS "leg_movement", '
                    f'sum("contraction_count") AS "contraction" FROM "night" {WHERE} {next_night}'
                )
            ],
            description="Counted episodes in the sleep window, in the same day columns as the habits above.",
            custom=lines(bars=True, stack=True),
            overrides=[
                by_name(kind, color={"mode": "fixed", "fixedColor": KIND_COLOURS[kind]})
                for kind in ("twitch", "leg_movement", "contraction")
            ],
            options=TS_OPTIONS,
        ),
        panel(
            "table",
            "Habit log",
            (0, 18, 24, 9),
            [
                target(
                    f'SELECT "value", "unit", "name", "note" FROM "habit" WHERE {WHO} AND $timeFilter GROUP BY "habit"',
                    fmt="table",
                )
            ],
            description="Every entry, as logged with `legwatch log`, over MQTT or from Home Assistant.",
            options={"showHeader": True, "sortBy": [{"displayName": "Time", "desc": True}]},
        ),
    ]
    return dashboard(
        "legwatch-habits",
        "legwatch · Habits",
        "Habits per day beside the episodes of the night that followed. " + NOT_A_DIAGNOSIS,
        panels,
        [*who_and_leg("night"), tz],
        [],
        "now-30d",
    )


# -- files ----------------------------------------------------------------------------------------

DASHBOARDS = {"night.json": night, "trends.json": trends, "habits.json": habits}


def render(build) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = HERE / name
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python dashboards/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
