"""README.md's sensor commands and Home Assistant examples, checked against the code they describe.

- "## Home Assistant": every YAML block parses; every ``mqtt.publish`` in it publishes on
  ``legwatch/habits`` with QoS 1, not retained, a payload ``legwatch.habits.entry_from_message``
  accepts; every entity the table lists is one of ``legwatch.homeassistant.SENSORS`` with that
  name, unit and device class (and the table lists them all).
- "## Sensors: which work and how to set each up": every ``legwatch scan`` / ``legwatch collect``
  command line parses with the real parser; the profile names and default rates it states are the
  registry's.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.profiles import get_profile, profile_names
from legwatch import homeassistant
from legwatch.cli import build_parser
from legwatch.habits import HabitError, entry_from_message

README = Path(__file__).resolve().parents[1] / "README.md"
SENSORS_HEADING = "## Sensors: which work and how to set each up"
HA_HEADING = "## Home Assistant"
PUBLISH_KEYS = ("action", "service", "perform_action")
_FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```", re.M | re.S)


def _section(heading: str) -> str:
    """The README text under ``heading`` up to the next ``## `` heading (code blocks skipped over)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.rstrip() == heading]
    assert len(starts) == 1, f"README.md needs exactly one {heading!r} heading, found {len(starts)}"
    out: list[str] = []
    in_code = False
    for line in lines[starts[0] + 1 :]:
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("## "):
            break
        out.append(line)
    return "\n".join(out) + "\n"


def _blocks(text: str, *langs: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang in langs]


def _prose(text: str) -> str:
    """The text outside code blocks."""
    return _FENCE.sub("", text)


def _walk(node: Any):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _publishes(doc: Any) -> list[dict]:
    """The data of every ``mqtt.publish`` action (script step, or a card's tap action) in ``doc``."""
    found = []
    for node in _walk(doc):
        if isinstance(node, dict) and any(node.get(k) == "mqtt.publish" for k in PUBLISH_KEYS):
            data = node.get("data", node.get("service_data"))
            if data is None:  # old style: the fields next to the service
                data = {k: v for k, v in node.items() if k not in PUBLISH_KEYS}
            found.append(data)
    return found


def _ha_docs() -> list[Any]:
    blocks = _blocks(_section(HA_HEADING), "yaml", "yml")
    assert blocks, "the Home Assistant section has no ```yaml block"
    return [yaml.safe_load(b) for b in blocks]


def _table_rows(text: str, first_cell: str) -> list[list[str]]:
    """Cells of the markdown table rows whose first cell starts with ``first_cell``."""
    rows = []
    for line in _prose(text).splitlines():
        if line.startswith("|") and line[1:].strip().startswith(first_cell):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


# --- Home Assistant ----------------------------------------------------------------------------


def test_every_mqtt_publish_logs_a_habit_the_monitor_accepts():
    publishes = [p for doc in _ha_docs() for p in _publishes(doc)]
    assert len(publishes) >= 2, "expected at least the water and stretching examples"
    habits = {}
    for data in publishes:
        assert isinstance(data, dict), data
        assert data.get("topic") == "legwatch/habits", data
        assert data.get("retain", False) is False, f"habit messages must not be retained: {data}"
        assert int(data.get("qos", 0)) == 1, f"habit messages go with QoS 1: {data}"
        payload = data.get("payload")
        assert isinstance(payload, str), f"the payload must be the JSON text: {data}"
        assert "{{" not in payload and "{%" not in payload, f"Home Assistant would render a template: {payload}"
        try:
            subject, entry = entry_from_message(payload, "me")
        except HabitError as exc:
            pytest.fail(f"the monitor refuses the README's payload {payload}: {exc}")
        assert subject == "me"
        habits[entry.habit] = entry
    assert set(habits) >= {"water", "stretching"}
    assert (habits["water"].value, habits["water"].unit) == (0.5, "l")


def test_dashboard_buttons_run_scripts_the_readme_defines():
    docs = _ha_docs()
    scripts = {name for doc in docs if isinstance(doc, dict) for name in (doc.get("script") or {})}
    called = [
        node[key].removeprefix("script.")
        for doc in docs
        for node in _walk(doc)
        if isinstance(node, dict)
        for key in PUBLISH_KEYS
        if isinstance(node.get(key), str) and node[key].startswith("script.")
    ]
    assert called, "no dashboard button runs a script"
    assert set(called) <= scripts, f"buttons run scripts the README does not define: {set(called) - scripts}"


def test_every_listed_entity_is_a_discovered_sensor():
    text = _section(HA_HEADING)
    rows = _table_rows(text, "`sensor.")
    assert rows, "no entity table in the Home Assistant section"
    configs = {cfg["unique_id"]: cfg for _, cfg in homeassistant.discovery_configs("legwatch", "me")}
    by_object = {d.object_id: d for d in homeassistant.SENSORS}
    listed = set()
    for entity, name, unit, device_class in (row[:4] for row in rows):
        m = re.fullmatch(r"`sensor\.legwatch_<subject>_([a-z_]+)`", entity)
        assert m, f"entity {entity!r} is not written as `sensor.legwatch_<subject>_<object>`"
        object_id = m.group(1)
        assert object_id in by_object, f"{entity}: no such sensor in legwatch.homeassistant.SENSORS"
        d = by_object[object_id]
        cfg = configs[f"legwatch_me_{object_id}"]
        assert cfg["default_entity_id"] == f"sensor.legwatch_me_{object_id}"
        assert name == d.name == cfg["name"], f"{entity}: README says {name!r}, the code {d.name!r}"
        assert unit == (cfg.get("unit_of_measurement") or ""), f"{entity}: unit {unit!r}, the code {d.unit!r}"
        assert device_class == (cfg.get("device_class") or ""), f"{entity}: device class {device_class!r}"
        listed.add(object_id)
    assert listed == set(by_object), f"sensors missing from the README's table: {set(by_object) - listed}"


def test_home_assistant_topics_and_attributes_are_the_codes():
    text = _section(HA_HEADING)
    cfg = dict(homeassistant.discovery_configs("legwatch", "me"))
    topic, first = next(iter(cfg.items()))
    assert topic.replace("legwatch_me", "legwatch_<subject>").replace("/episodes/", "/<object>/") in text
    assert first["state_topic"].replace("/me", "/<subject>") in text
    assert first["availability"][0]["topic"].replace("/me/", "/<subject>/") in text
    assert f"`{homeassistant.HA_PREFIX}`" in text
    for attr in homeassistant.ATTRIBUTES:
        assert f"`{attr}`" in text, f"attribute {attr} is not named in the README"


# --- Sensors -----------------------------------------------------------------------------------


def _sensor_commands() -> list[str]:
    text = _section(SENSORS_HEADING)
    lines = [line.strip() for block in _blocks(text, "sh", "bash", "console", "") for line in block.splitlines()]
    commands = [line for line in lines if re.match(r"legwatch (scan|collect)\b", line)]
    commands += re.findall(r"`(legwatch (?:scan|collect)\b[^`]*)`", _prose(text))
    return commands


def test_every_scan_and_collect_command_parses():
    commands = _sensor_commands()
    assert any(c.startswith("legwatch scan") for c in commands)
    parser = build_parser()
    profiles = set()
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "legwatch"
        try:
            args = parser.parse_args(words[1:])
        except SystemExit as exc:
            pytest.fail(f"README command {command!r} does not parse (exit status {exc.code})")
        assert args.command == words[1]
        if args.command == "collect" and args.profile:
            profiles.add(args.profile)
    assert profiles == set(profile_names()), f"profiles without a collect example: {set(profile_names()) - profiles}"


def test_sensor_table_names_real_profiles_with_their_default_rates():
    text = _section(SENSORS_HEADING)
    header = _table_rows(text, "family")
    assert header and "profile" in header[0], "no sensor table with a profile column"
    column = header[0].index("profile")
    rows = [r for r in _table_rows(text, "") if len(r) == len(header[0]) and r[column].startswith("`")]
    named = {r[column].strip("`"): r for r in rows}
    assert set(named) == set(profile_names())
    rate_column = next(i for i, h in enumerate(header[0]) if h.startswith("rate"))
    for name, row in named.items():
        rate = get_profile(name).default_rate_hz
        assert f"{rate:g} Hz" in row[rate_column], f"{name}: the table does not state its default {rate:g} Hz"
    assert build_parser().parse_args(["collect"]).range == 8.0
