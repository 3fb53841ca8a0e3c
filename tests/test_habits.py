"""Habit logging: defaults, units, times, refusals (with nothing written), CSV import, and habit
messages over a real Mosquitto into the in-process monitor."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helpers import run_cli
from legwatch.contracts.config import load_config
from legwatch.habit_import import read_habits_csv
from legwatch.habits import (
    KNOWN,
    HabitEntry,
    HabitError,
    HabitRange,
    entry_from_message,
    evening_window,
    fetch_existing,
    habit_ranges,
    make_entry,
    parse_time,
    place_entries,
    store_entries,
    store_entry,
    to_write,
)
from legwatch.monitor.service import Monitor
from legwatch.storage import Point
from legwatch.storage.sqlite import SqliteStore

NOW = datetime(2026, 3, 10, 9, 0).astimezone()  # a Tuesday morning, local time
UTC_21H = datetime(2026, 3, 8, 21, 0, tzinfo=UTC).timestamp()


def local(*args: int) -> float:
    return datetime(*args).astimezone().timestamp()


# --- entries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kw", "want"),
    [
        (("water",), {}, ("water", 0.25, "l", "")),
        (("water", "0.5"), {}, ("water", 0.5, "l", "")),
        (("water", "500ml"), {}, ("water", 0.5, "l", "")),
        (("water", "330"), {"unit": "ml"}, ("water", 0.33, "l", "")),
        (("water",), {"unit": "glass"}, ("water", 0.25, "l", "")),
        (("caffeine",), {}, ("caffeine", 80.0, "mg", "")),
        (("caffeine", "2"), {"unit": "cups"}, ("caffeine", 160.0, "mg", "")),
        (("alcohol",), {}, ("alcohol", 1.0, "drinks", "")),
        (("exercise",), {}, ("exercise", 30.0, "min", "")),
        (("exercise", "1.5h"), {}, ("exercise", 90.0, "min", "")),
        (("stretching",), {}, ("stretching", 5.0, "min", "")),
        (("heat",), {}, ("heat", 15.0, "min", "")),
        (("cold", "20"), {}, ("cold", 20.0, "min", "")),
        (("medication", "Statin"), {}, ("medication", 1.0, "dose", "statin")),
        (("diuretic",), {}, ("medication", 1.0, "dose", "diuretic")),
        (("medication",), {"note": "furosemide"}, ("medication", 1.0, "dose", "furosemide")),
        (("sitting", "3"), {}, ("sitting", 3.0, "h", "")),
        (("Banana-Snack",), {}, ("banana_snack", 1.0, "", "")),
        (("magnesium_spray", "2"), {"unit": "sprays"}, ("magnesium_spray", 2.0, "sprays", "")),
    ],
)
def test_defaults_and_units(args, kw, want):
    e = make_entry(*args, now=NOW, **kw)
    assert (e.habit, round(e.value, 6), e.unit, e.name) == want
    assert e.time == NOW.timestamp()


def test_every_cramp_related_habit_is_known():
    for habit in ("water", "electrolytes", "caffeine", "alcohol", "exercise", "stretching", "medication", "heat"):
        assert habit in KNOWN
    assert "cold" in KNOWN and "sitting" in KNOWN and "standing" in KNOWN


def test_exercise_intensity():
    e = make_entry("exercise", "45", intensity="hard", now=NOW)
    assert e.intensity == "hard" and e.label() == "exercise (hard)"
    assert make_entry("exercise", intensity="Vigorous", now=NOW).intensity == "hard"
    assert make_entry("exercise", intensity="easy", now=NOW).intensity == "light"
    assert make_entry("exercise", now=NOW).intensity == ""
    assert e.point("me").fields["intensity"] == "hard"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (None, (2026, 3, 10, 9, 0)),
        ("now", (2026, 3, 10, 9, 0)),
        ("08:15", (2026, 3, 10, 8, 15)),
        ("09:04", (2026, 3, 10, 9, 4)),  # within 5 minutes ahead: today
        ("21:30", (2026, 3, 9, 21, 30)),  # later today than now: yesterday evening
        ("yesterday 18:00", (2026, 3, 9, 18, 0)),
        ("Yesterday  7:05", (2026, 3, 9, 7, 5)),
        ("today 06:00", (2026, 3, 10, 6, 0)),
        ("2026-03-08T22:10", (2026, 3, 8, 22, 10)),
        ("2026-03-08 22:10:30", (2026, 3, 8, 22, 10, 30)),
    ],
)
def test_at_parsing(text, want):
    assert parse_time(text, NOW) == local(*want)


def test_at_with_zone_and_unix_seconds():
    assert parse_time("2026-03-08T21:00:00+00:00", NOW) == UTC_21H
    assert parse_time("2026-03-08T23:00:00+02:00", NOW) == UTC_21H
    assert parse_time("2026-03-08T21:00:00Z", NOW) == UTC_21H
    assert parse_time(UTC_21H, NOW) == UTC_21H


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25:99", "not a time of day"),
        ("21:61", "not a time of day"),
        ("today 23:00", "in the future"),
        ("2026-03-11T08:00", "in the future"),
        ("tomorrow 8:00", "cannot read"),
        ("yesterday", "say when yesterday"),
        ("yesterday noonish", "cannot read"),
        ("2026-03-08", "no time of day"),
        ("1999-12-31T23:00", "before the year 2000"),
        ("soon", "cannot read"),
    ],
)
def test_at_refusals(text, message):
    with pytest.raises(HabitError, match=message):
        parse_time(text, NOW)


@pytest.mark.parametrize(
    ("args", "kw", "message"),
    [
        (("water", "lots"), {}, "not a number"),
        (("water", "-1"), {}, ">= 0"),
        (("water", "nan"), {}, ">= 0"),
        (("water", "30"), {}, "implausibly large"),
        (("water", "1"), {"unit": "gallon"}, "unknown unit 'gallon'"),
        (("water", "500ml"), {"unit": "l"}, "value says 'ml' but --unit says 'l'"),
        (("caffeine", "3000"), {}, "implausibly large"),
        (("medication",), {}, "say which one"),
        (("bad name!",), {}, "habit name"),
        (("",), {}, "habit name"),
        (("water",), {"intensity": "hard"}, "intensity is for exercise"),
        (("exercise",), {"intensity": "extreme"}, "light, moderate or hard"),
        (("water",), {"note": "two\nlines"}, "one line"),
        (("water",), {"unit": "x" * 17}, "too long"),
    ],
)
def test_refusals(args, kw, message):
    with pytest.raises(HabitError, match=message):
        make_entry(*args, now=NOW, **kw)


def test_evening_window_is_previous_noon_to_onset():
    onset = local(2026, 3, 9, 23, 10)
    assert evening_window(onset) == (local(2026, 3, 9, 12, 0), onset)
    after_midnight = local(2026, 3, 10, 0, 40)
    assert evening_window(after_midnight) == (local(2026, 3, 9, 12, 0), after_midnight)


# --- storing -------------------------------------------------------------------------------------


def test_same_habit_same_second_both_survive(sqlite_store):
    e = make_entry("water", "0.3", at="2026-03-09T21:30", now=NOW)
    a = store_entry(sqlite_store, "me", e)
    b = store_entry(sqlite_store, "me", e)
    c = store_entry(sqlite_store, "me", make_entry("caffeine", at="2026-03-09T21:30", now=NOW))
    pts = sqlite_store.query("habit", tags={"subject": "me"})
    assert len(pts) == 3
    assert round((b.time - a.time) * 1000) == 1 and c.time == a.time  # other habits keep their time
    assert [p.fields["value"] for p in pts if p.tags["habit"] == "water"] == [0.3, 0.3]


def test_same_habit_same_second_on_influx(influx_store):
    e = make_entry("stretching", "10", at="2026-03-09T22:00", now=NOW)
    store_entries(influx_store, [("me", e), ("me", e)])
    store_entry(influx_store, "me", e)
    assert len(influx_store.query("habit", tags={"subject": "me", "habit": "stretching"})) == 3


# --- placement (pure: entries and the points they could collide with, no store) -------------------

T = local(2026, 3, 9, 21, 30)
T_MS = int(round(T * 1000))


def _water(**kw) -> HabitEntry:
    return make_entry("water", kw.pop("value", "0.3"), at=kw.pop("at", T), now=NOW, **kw)


def test_place_same_id_again_is_not_written():
    e = _water(id="btn-1")
    stored = e.point("me")
    (p,) = place_entries([("me", e)], [stored])
    assert not p.written and p.point is None and p.entry == e  # keeps its time
    retyped = make_entry("water", "0.4", at=T + 3600, id="btn-1", now=NOW)  # same id, an hour later
    (p,) = place_entries([("me", retyped)], [stored])
    assert not p.written and p.entry == retyped
    (p,) = place_entries([("me", _water(id="btn-2"))], [stored])  # another id: moves on 1 ms instead
    assert p.written and p.point is not None and p.point.time_ms == T_MS + 1
    assert p.point.fields["id"] == "btn-2"


def test_place_id_only_looks_two_days_back_and_one_ahead():
    e = _water(id="btn-1")
    old = replace(e, time=T - 2 * 86400 - 1).point("me")
    later = replace(e, time=T + 86400 + 1).point("me")
    assert [p.written for p in place_entries([("me", e)], [old, later])] == [True]
    inside = replace(e, time=T - 2 * 86400 + 1).point("me")
    assert [p.written for p in place_entries([("me", e)], [old, inside, later])] == [False]


def test_place_same_millisecond_moves_on_1_ms_as_often_as_needed():
    e = _water()
    existing = [replace(e, time=(T_MS + k) / 1000).point("me") for k in (0, 1, 2)]
    (p,) = place_entries([("me", e)], existing)
    assert p.written and p.entry.time == (T_MS + 3) / 1000 and p.point == p.entry.point("me")
    # within one call, entries collide with each other too (and with what is stored)
    placed = place_entries([("me", e)] * 3, existing)
    assert [round(p.entry.time * 1000) - T_MS for p in placed] == [3, 4, 5]
    assert [round(p.entry.time * 1000) - T_MS for p in place_entries([("me", e)] * 3, [])] == [0, 1, 2]
    assert len(to_write(placed)) == 3 and to_write(placed) == [p.point for p in placed]


def test_place_other_subjects_and_habits_do_not_collide():
    e = _water()
    existing = [e.point("ana"), make_entry("caffeine", at=T, now=NOW).point("me")]
    coffee = make_entry("caffeine", at=T, now=NOW)
    placed = place_entries([("me", e), ("ana", coffee), ("me", e), ("ben", e)], existing)
    assert [(p.subject, p.entry.habit, round(p.entry.time * 1000) - T_MS) for p in placed] == [
        ("me", "water", 0),
        ("ana", "caffeine", 0),
        ("me", "water", 1),
        ("ben", "water", 0),
    ]
    assert all(p.written for p in placed)
    # the other measurement, or an id on another habit, counts for nothing either
    other = Point("episode", {"subject": "me", "habit": "water"}, {"id": "x"}, T)
    assert place_entries([("me", _water(id="x"))], [other, replace(coffee, id="x").point("me")])[0].written


def test_place_same_id_twice_in_one_call_is_written_once():
    e = _water(id="btn-7")
    placed = place_entries([("me", e), ("me", e)], [])
    assert [p.written for p in placed] == [True, False]
    assert placed[0].entry.time == T and placed[1].entry == e


def test_place_skip_identical():
    e = _water(note="after dinner")
    stored = [e.point("me")]
    (p,) = place_entries([("me", e)], stored, skip_identical=True)
    assert not p.written and p.entry.time == T
    (p,) = place_entries([("me", e)], stored)  # without: a second glass
    assert p.written and p.entry.time == (T_MS + 1) / 1000
    (p,) = place_entries([("me", replace(e, value=0.5))], stored, skip_identical=True)  # not identical
    assert p.written and p.entry.time == (T_MS + 1) / 1000


def test_habit_ranges_name_what_to_fetch():
    a, b = _water(), _water(at=T + 60)
    coffee = make_entry("caffeine", at=T, now=NOW, id="c-1")
    ranges = habit_ranges([("me", a), ("me", coffee), ("me", b), ("ana", a)])
    assert ranges == [
        HabitRange("me", "water", T, T + 65.0),
        HabitRange("me", "caffeine", T - 2 * 86400, T + 86400),
        HabitRange("ana", "water", T, T + 5.0),
    ]
    assert ranges[0].tags == {"subject": "me", "habit": "water"}
    assert habit_ranges([]) == [] and place_entries([], []) == []


def test_place_with_points_not_yet_written(sqlite_store):
    """The monitor's recipe: the store's points in range plus its own pending ones."""
    e = _water()
    store_entry(sqlite_store, "me", e)  # stored at T
    pending = [replace(e, time=(T_MS + 1) / 1000).point("me"), Point("episode", {"subject": "me"}, {"x": 1.0}, T)]
    items = [("me", e)]
    existing = fetch_existing(sqlite_store, items)
    assert [p.time_ms for p in existing] == [T_MS]
    (p,) = place_entries(items, [*existing, *pending])
    assert p.written and p.entry.time == (T_MS + 2) / 1000


def test_log_cli_defaults_units_and_at(tmp_path):
    d = str(tmp_path)
    p = run_cli("log", "water", "500ml", "--at", "yesterday 21:30", "--data-dir", d, check=True)
    assert "logged water: 0.5 l at" in p.stdout and "21:30" in p.stdout
    run_cli("log", "exercise", "45", "--intensity", "hard", "--at", "2026-03-08T18:00", "--data-dir", d, check=True)
    run_cli("log", "statin", "--data-dir", d, check=True)
    run_cli("log", "caffeine", "--note", "espresso after lunch", "--data-dir", d, check=True)
    # twice the same habit at the same second: both kept
    for _ in range(2):
        run_cli("log", "heat", "--at", "2026-03-08T23:00:00", "--data-dir", d, check=True)
    store = SqliteStore(tmp_path / "legwatch.sqlite")
    pts = {(p.tags["habit"], p.time): p.fields for p in store.query("habit", tags={"subject": "me"})}
    assert len(pts) == 6
    ex = dict(pts[("exercise", local(2026, 3, 8, 18, 0))])
    assert abs(ex.pop("logged") - time.time()) < 120  # when it was stored: what `log undo` goes by
    assert ex == {"value": 45.0, "unit": "min", "intensity": "hard"}
    assert sum(1 for h, _ in pts if h == "heat") == 2
    med = next(f for (h, _), f in pts.items() if h == "medication")
    assert med["name"] == "statin" and med["unit"] == "dose"
    caf = next(f for (h, _), f in pts.items() if h == "caffeine")
    assert caf["value"] == 80.0 and caf["note"] == "espresso after lunch"
    store.close()
    listing = run_cli("log", "list", "--data-dir", d, check=True).stdout
    assert "water" in listing and "statin" in listing and "intensity" in listing


@pytest.mark.parametrize(
    "args",
    [
        ["water", "lots"],
        ["water", "-1"],
        ["water", "1", "--unit", "gallon"],
        ["water", "--at", "25:99"],
        ["water", "--at", "2099-01-01T10:00"],
        ["exercise", "--intensity", "extreme"],
        ["stretching", "--intensity", "hard"],
        ["medication"],
        ["bad name!"],
    ],
)
def test_log_cli_refusals_write_nothing(tmp_path, args):
    p = run_cli("log", *args, "--data-dir", str(tmp_path))
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("legwatch log: error: ") and p.stderr.strip().count("\n") == 0
    assert not (tmp_path / "legwatch.sqlite").exists()


# --- CSV import ----------------------------------------------------------------------------------

GOOD_CSV = """time,habit,value,unit,note,intensity
2026-03-08T18:00,exercise,45,,"park run, hilly",hard
2026-03-08 20:15,water,500,ml,,
2026-03-08T21:00:00+00:00,medication,statin,,,
2026-03-08T22:30,stretching,,,,

2026-03-08T22:30,stretching,,,,
1773003600,caffeine,2,cups,,
"""


def test_import_habits_cli(tmp_path):
    f = tmp_path / "habits.csv"
    f.write_text(GOOD_CSV)
    d = str(tmp_path / "data")
    p = run_cli("import-habits", str(f), "--data-dir", d, check=True)
    assert "imported 6 habit entries" in p.stdout and "stretching 2" in p.stdout
    store = SqliteStore(tmp_path / "data" / "legwatch.sqlite")
    pts = store.query("habit", tags={"subject": "me"})
    assert len(pts) == 6
    by = {p.tags["habit"]: p for p in pts}
    ex = dict(by["exercise"].fields)
    assert isinstance(ex.pop("logged"), float)
    assert ex == {"value": 45.0, "unit": "min", "note": "park run, hilly", "intensity": "hard"}
    assert by["water"].fields["value"] == 0.5 and by["water"].time == local(2026, 3, 8, 20, 15)
    assert by["medication"].fields["name"] == "statin" and by["medication"].time == UTC_21H
    assert by["caffeine"].fields["value"] == 160.0 and by["caffeine"].time == UTC_21H
    stretches = [p.time_ms for p in pts if p.tags["habit"] == "stretching"]
    assert stretches[1] - stretches[0] == 1
    # the same file again: nothing new
    p = run_cli("import-habits", str(f), "--data-dir", d, check=True)
    assert "imported 0 habit entries" in p.stdout and "6 already stored" in p.stdout
    assert len(store.query("habit")) == 6
    store.close()


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("time,habit,value\n2026-03-08T18:00,water,0.5\n2026-03-08T19:00,water,lots\n", ":3: water: value 'lots'"),
        ("time,habit\n2026-03-08T18:00,water\n21:30,water\n", ":3: at: '21:30' needs a date"),
        ("time,habit,value\n2026-03-08T18:00,water,0.5\n2026-03-08T18:00,bad name,1\n", ":3: habit name"),
        ("time,habit\n2026-03-08T18:00,water\n,water\n", ":3: time is empty"),
        ("time,habit\n2026-03-08T18:00,water,0.5\n", ":2: 3 fields, the header has 2"),
        ("time,habbit\n2026-03-08T18:00,water\n", ":1: unknown column 'habbit'"),
        ("habit,value\nwater,1\n", ":1: missing column 'time'"),
        ("time,habit\n2099-03-08T18:00,water\n", ":2: at: '2099-03-08T18:00' is in the future"),
        ("time,habit,subject\n2026-03-08T18:00,water,a/b\n", ":2: subject must be"),
        ("", "empty file"),
    ],
)
def test_import_habits_refuses_a_bad_line_entirely(tmp_path, body, where):
    f = tmp_path / "habits.csv"
    f.write_text(body)
    p = run_cli("import-habits", str(f), "--data-dir", str(tmp_path))
    assert p.returncode == 2
    assert where in p.stderr, p.stderr
    assert p.stderr.strip().count("\n") == 0
    assert not (tmp_path / "legwatch.sqlite").exists()


def test_import_counts_more_bad_lines(tmp_path):
    f = tmp_path / "h.csv"
    f.write_text("time,habit,value\n2026-03-08T18:00,water,x\n2026-03-08T18:00,water,y\n2026-03-08T18:00,water,z\n")
    with pytest.raises(HabitError, match=r"h\.csv:2: .*\(and 2 more bad lines\)"):
        read_habits_csv(f, "me", now=NOW)


def test_import_into_influx_is_all_or_nothing(influx_store, tmp_path):
    f = tmp_path / "h.csv"
    f.write_text("time,habit,value,subject\n2026-03-08T18:00,water,1,ana\n2026-03-08T19:00,alcohol,2,ben\n")
    done = store_entries(influx_store, read_habits_csv(f, "me", now=NOW), skip_identical=True)
    assert [w for *_, w in done] == [True, True]
    assert [p.tags["subject"] for p in influx_store.query("habit")] == ["ana", "ben"]


# --- MQTT ----------------------------------------------------------------------------------------


def test_message_validation():
    subject, e = entry_from_message(b'{"habit": "water", "value": 0.5, "at": "21:30"}', "me", now=NOW)
    assert subject == "me" and (e.habit, e.value, e.unit) == ("water", 0.5, "l")
    assert e.time == local(2026, 3, 9, 21, 30)
    subject, e = entry_from_message({"subject": "ana", "habit": "exercise", "intensity": "hard", "id": 7}, "me", NOW)
    assert subject == "ana" and e.intensity == "hard" and e.id == "7"
    for bad, message in [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"value": 1}', 'needs "habit"'),
        (b'{"habit": "water", "vaule": 1}', "unknown key 'vaule'"),
        (b'{"habit": "water", "value": true}', "'value' must be a number"),
        (b'{"habit": "water", "value": [1]}', "'value' must be a number"),
        (b'{"habit": 3}', "'habit' must be a string"),
        (b'{"habit": "water", "at": "tomorrow"}', "cannot read"),
        (b'{"habit": "water", "subject": "a/b"}', "subject must be"),
        (b'{"habit": "water", "value": -2}', ">= 0"),
    ]:
        with pytest.raises(HabitError, match=message):
            entry_from_message(bad, "me", now=NOW)


def _client(url: str, cid: str) -> mqtt.Client:
    host, port = url.removeprefix("mqtt://").split(":")
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.connect(host, int(port))
    c.loop_start()
    return c


def test_habits_over_mqtt_into_the_monitor(mosquitto, tmp_path):
    prefix = f"lwh{uuid.uuid4().hex[:8]}"
    cfg = load_config(
        env={
            "LEGWATCH_MQTT_URL": mosquitto.url,
            "LEGWATCH_MQTT_TOPIC_PREFIX": prefix,
            "LEGWATCH_SUBJECT": "me",
            "LEGWATCH_DATA_DIR": str(tmp_path),
        }
    )
    store = SqliteStore(tmp_path / "legwatch.sqlite")
    mon = Monitor(cfg, store, client_id=f"{prefix}-monitor")
    dead: list[dict] = []
    got_dead = threading.Event()
    watcher = _client(mosquitto.url, f"{prefix}-watch")

    def on_message(c, u, msg):
        dead.append(json.loads(msg.payload))
        if len(dead) >= 4:
            got_dead.set()

    watcher.on_message = on_message
    watcher.subscribe(f"{prefix}/deadletter/#", qos=1)
    pub = _client(mosquitto.url, f"{prefix}-phone")
    # a retained habit message would be logged again at every restart: refused
    pub.publish(f"{prefix}/habits", b'{"habit": "water"}', qos=1, retain=True).wait_for_publish(5)
    mon.start()
    try:
        time.sleep(0.5)
        yesterday = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d")
        good = [
            {"habit": "water", "value": 0.5, "at": f"{yesterday}T21:30"},
            {"subject": "ana", "habit": "stretching", "value": "10min", "at": f"{yesterday}T22:00"},
            {"habit": "exercise", "value": 40, "intensity": "hard", "note": "squash"},
            {"habit": "medication", "value": "diuretic", "id": "btn-1"},
            {"habit": "medication", "value": "diuretic", "id": "btn-1"},  # redelivered: stored once
            {"habit": "water", "value": 0.5, "at": f"{yesterday}T21:30"},  # a second glass, same second
        ]
        bad = [b"{not json", b'{"habit": "water", "value": "lots"}', b'{"habit": "water", "colour": "red"}']
        for doc in good[:3]:
            pub.publish(f"{prefix}/habits", json.dumps(doc), qos=1).wait_for_publish(5)
        for payload in bad:
            pub.publish(f"{prefix}/habits", payload, qos=1).wait_for_publish(5)
        for doc in good[3:]:
            pub.publish(f"{prefix}/habits", json.dumps(doc), qos=1).wait_for_publish(5)
        assert got_dead.wait(10), dead
        deadline = time.monotonic() + 10
        while mon.stats["habits"] < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pub.publish(f"{prefix}/habits", b"", qos=1, retain=True).wait_for_publish(5)  # clear the retained one
        pub.loop_stop()
        mon.stop()
        watcher.loop_stop()
    assert mon.stats["habits"] == 5 and mon.stats["habits_duplicate"] == 1
    assert mon.rejected["bad_habit"] == 4
    assert {d["reason"] for d in dead} == {"bad_habit"}
    assert all(d["topic"] == f"{prefix}/habits" for d in dead)
    messages = " | ".join(d["message"] for d in dead)
    assert "not JSON" in messages and "'lots' is not a number" in messages and "unknown key 'colour'" in messages
    assert "retained" in messages
    mine = store.query("habit", tags={"subject": "me"})
    assert sorted(p.tags["habit"] for p in mine) == ["exercise", "medication", "water", "water"]
    waters = [p.time_ms for p in mine if p.tags["habit"] == "water"]
    assert waters[1] - waters[0] == 1
    ex = next(p for p in mine if p.tags["habit"] == "exercise")
    assert ex.fields == {"value": 40.0, "unit": "min", "note": "squash", "intensity": "hard"}
    assert abs(ex.time - time.time()) < 60  # no "at": when it arrived
    med = next(p for p in mine if p.tags["habit"] == "medication")
    assert med.fields["name"] == "diuretic" and med.fields["id"] == "btn-1"
    (ana,) = store.query("habit", tags={"subject": "ana"})
    assert ana.tags["habit"] == "stretching" and ana.fields["value"] == 10.0
    store.close()


class FlakyStore:
    """A SqliteStore that is 'unreachable' while ``down`` is set."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner, self.down = inner, True

    def _check(self) -> None:
        from legwatch.storage import StoreUnavailable

        if self.down:
            raise StoreUnavailable("store down for the test")

    def write(self, points):
        self._check()
        self.inner.write(points)

    def query(self, *args, **kwargs):
        self._check()
        return self.inner.query(*args, **kwargs)

    def ping(self) -> None:
        self._check()

    def close(self) -> None:
        self.inner.close()


def test_habit_message_is_held_while_the_store_is_down(mosquitto, tmp_path):
    prefix = f"lwh{uuid.uuid4().hex[:8]}"
    cfg = load_config(
        env={
            "LEGWATCH_MQTT_URL": mosquitto.url,
            "LEGWATCH_MQTT_TOPIC_PREFIX": prefix,
            "LEGWATCH_DATA_DIR": str(tmp_path),
        }
    )
    store = FlakyStore(SqliteStore(tmp_path / "legwatch.sqlite"))
    mon = Monitor(cfg, store, client_id=f"{prefix}-monitor")
    mon.start()
    pub = _client(mosquitto.url, f"{prefix}-phone")
    try:
        time.sleep(0.3)
        pub.publish(f"{prefix}/habits", b'{"habit": "cold", "value": 12}', qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while mon.stats["habits"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mon.stats["habits"] == 1 and not store.inner.query("habit")
        store.down = False
        while not store.inner.query("habit") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        pub.loop_stop()
        mon.stop()
    (p,) = store.inner.query("habit", tags={"subject": "me", "habit": "cold"})
    assert p.fields == {"value": 12.0, "unit": "min"}
    store.close()
