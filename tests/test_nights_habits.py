"""Looking after the data as a person does, through the real command line, on real SQLite and InfluxDB
stores: ``legwatch nights`` (+ ``delete``), ``legwatch habits`` (+ ``delete``), ``legwatch log undo``,
suggestions before a new custom habit, and the configured time zone."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from detector.events import Episode, Epoch, Gap
from detector.stream import Night
from helpers import run_cli, run_on_terminal
from legwatch.contracts import localtime
from legwatch.contracts.config import ConfigError, load_config
from legwatch.habit_names import suggest
from legwatch.storage import Point, Store
from legwatch.storage.schema import night_points
from legwatch.storage.sqlite import SqliteStore

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(params=["influx", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, dict[str, str]]:
    """A store and the environment that makes the CLI use exactly that store."""
    env = {"LEGWATCH_SUBJECT": "ann", "LEGWATCH_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "80"}
    if request.param == "influx":
        store = request.getfixturevalue("influx_store")
        server = request.getfixturevalue("influxdb")
        env |= {"LEGWATCH_INFLUX_URL": server.url, "LEGWATCH_INFLUX_DB": store.db}
        return store, env
    store = SqliteStore(tmp_path / "data" / "legwatch.sqlite")
    request.addfinalizer(store.close)
    return store, env


def _night(start: float, n_lm: int, gap: tuple[float, float] | None = None) -> Night:
    onset = start + 1200
    eps = [Episode(onset + 60 + 45 * i, onset + 62 + 45 * i, "leg_movement", 0.1) for i in range(n_lm)]
    eps.append(Episode(onset + 3600, onset + 3640, "contraction", 0.4))
    epochs = [Epoch(start + 30 * i, 0.01, 10.0) for i in range(0, 8 * 120)]
    gaps = [Gap(*gap)] if gap else []
    return Night(eps, epochs, gaps, (onset, start + 7.5 * 3600), 4.0, start, start + 8 * 3600, 10_000, 0)


def _ts(y: int, mo: int, d: int, h: int, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).timestamp()


def _one_line_error(p: subprocess.CompletedProcess, *words: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


def _widths_fit(text: str, width: int = 80) -> None:
    assert max(len(line) for line in text.splitlines()) <= width, text


# --- nights -----------------------------------------------------------------------------------------


def test_nights_list_and_delete(backend) -> None:
    store, env = backend
    env = {**env, "LEGWATCH_TIMEZONE": "Europe/Berlin"}
    first, second = _ts(2026, 1, 5, 23, 10), _ts(2026, 1, 6, 22, 40)
    store.write(night_points("ann", "shin-left", _night(first, 6)))
    store.write(night_points("ann", "shin-left", _night(second, 9, gap=(second + 7200, second + 7290))))
    store.write(night_points("bob", "shin-left", _night(first, 3)))  # someone else's night: never touched
    store.write([Point("habit", {"subject": "ann", "habit": "water"}, {"value": 0.5, "unit": "l"}, first + 600)])

    doc = json.loads(run_cli("nights", "--format", "json", env=env, check=True).stdout)
    assert doc["timezone"] == "Europe/Berlin"
    rows = {r["night"]: r for r in doc["nights"]}
    assert list(rows) == ["2026-01-05", "2026-01-06"]
    assert rows["2026-01-05"]["episodes"] == 7 and rows["2026-01-05"]["counts"]["contraction"] == 1
    assert rows["2026-01-06"]["episodes"] == 10 and rows["2026-01-06"]["gaps"] == 1
    assert rows["2026-01-06"]["coverage"] == pytest.approx(1 - 90 / (8 * 3600), abs=1e-4)
    assert rows["2026-01-05"]["start_local"] == "2026-01-05T23:10:00+01:00"

    text = run_cli("nights", env=env, check=True).stdout
    _widths_fit(text)
    for word in (
        "2026-01-05",
        "2026-01-06",
        "shin-left",
        "23:10–07:10",
        "(CET)",
        "(h)",
        "(%)",
        "99.6",
        "Europe/Berlin",
    ):
        assert word in text, text
    assert "…" not in text

    # refused: no terminal and no --yes; a night that is not stored; a date that is not a date
    _one_line_error(run_cli("nights", "delete", "2026-01-05", env=env), "--yes")
    _one_line_error(run_cli("nights", "delete", "2026-02-01", "--yes", env=env), "no night of 2026-02-01")
    _one_line_error(run_cli("nights", "delete", "5.1.2026", "--yes", env=env), "2026-01-05")
    assert len(store.query("night", tags={"subject": "ann"})) == 2

    before = {m: len(store.query(m, tags={"subject": "ann"})) for m in ("episode", "activity", "gap")}
    p = run_cli("nights", "delete", "2026-01-06", "--yes", env=env, check=True)
    assert "deleted the night of 2026-01-06" in p.stdout and "10 episode" in p.stdout and "1 gap" in p.stdout
    nights = store.query("night", tags={"subject": "ann"})
    assert [n.time for n in nights] == [pytest.approx(first)]
    assert len(store.query("episode", tags={"subject": "ann"})) == before["episode"] - 10
    assert len(store.query("activity", tags={"subject": "ann"})) == before["activity"] - 960
    assert store.query("gap", tags={"subject": "ann"}) == []
    assert len(store.query("night", tags={"subject": "bob"})) == 1
    assert len(store.query("habit", tags={"subject": "ann"})) == 1  # habits stay
    doc = json.loads(run_cli("nights", "--format", "json", env=env, check=True).stdout)
    assert [r["night"] for r in doc["nights"]] == ["2026-01-05"]
    # flags before `delete` count as much as after it
    p = run_cli("nights", "--subject", "bob", "delete", "2026-01-05", "--yes", env=env, check=True)
    assert "for 'bob'" in p.stdout
    assert (
        store.query("night", tags={"subject": "bob"}) == [] and len(store.query("night", tags={"subject": "ann"})) == 1
    )


def test_nights_delete_asks_on_a_terminal(tmp_path) -> None:
    env = {"LEGWATCH_SUBJECT": "ann", "LEGWATCH_DATA_DIR": str(tmp_path), "LEGWATCH_TIMEZONE": "Europe/Berlin"}
    with SqliteStore(tmp_path / "legwatch.sqlite") as store:
        store.write(night_points("ann", "shin", _night(_ts(2026, 1, 5, 23), 4)))
    code, out = run_on_terminal(["nights", "delete", "2026-01-05"], env, b"n\n")
    assert code == 1 and "delete the night of 2026-01-05" in out and "nothing deleted" in out, out
    with SqliteStore(tmp_path / "legwatch.sqlite") as store:
        assert len(store.query("night")) == 1
    code, out = run_on_terminal(["nights", "delete", "2026-01-05"], env, b"y\n")
    assert code == 0 and "deleted the night of 2026-01-05" in out, out
    with SqliteStore(tmp_path / "legwatch.sqlite") as store:
        assert store.query("night") == [] and store.query("episode") == [] and store.query("activity") == []


# --- habits, delete, undo ---------------------------------------------------------------------------


def test_habits_list_delete_and_undo(backend) -> None:
    store, env = backend
    run_cli("log", "water", "500ml", "--at", "2026-01-05T21:00", env=env, check=True)
    run_cli("log", "stretching", "10", "--at", "2026-01-05T22:15", "--note", "calves", env=env, check=True)
    p = run_cli("log", "exercise", "45", "--intensity", "hard", "--at", "2026-01-05T18:00", env=env, check=True)
    stored = store.query("habit", tags={"subject": "ann"})
    assert [s.tags["habit"] for s in stored] == ["exercise", "water", "stretching"]
    ids = {s.tags["habit"]: hashlib.sha256(f"{s.tags['habit']}@{s.time_ms}".encode()).hexdigest()[:8] for s in stored}
    assert f"id {ids['exercise']}" in p.stdout  # `log` says the ID it stored

    doc = json.loads(run_cli("habits", "--since", "2026-01-05", "--format", "json", env=env, check=True).stdout)
    assert [(e["habit"], e["id"]) for e in doc["entries"]] == [(h, ids[h]) for h in ("exercise", "water", "stretching")]
    assert doc["entries"][1]["value"] == 0.5 and doc["entries"][1]["unit"] == "l"
    assert doc["entries"][2]["note"] == "calves"
    one = json.loads(run_cli("habits", "--since", "2026-01-05", "--habit", "water", "--format", "json", env=env).stdout)
    assert [e["habit"] for e in one["entries"]] == ["water"]
    none = json.loads(run_cli("habits", "--since", "2026-01-06", "--format", "json", env=env).stdout)
    assert none["entries"] == []
    upto = json.loads(
        run_cli("habits", "--since", "2026-01-01", "--until", "2026-01-04", "--format", "json", env=env).stdout
    )
    assert upto["entries"] == []
    upto = json.loads(run_cli("habits", "--until", "2026-01-05", "--format", "json", env=env).stdout)
    assert len(upto["entries"]) == 3  # only --until: everything up to the end of that day
    _one_line_error(run_cli("habits", "--since", "2026-01-06", "--until", "2026-01-05", env=env), "before --since")

    text = run_cli("habits", "--since", "2026-01-05", env=env, check=True).stdout
    _widths_fit(text)
    for word in (ids["water"], "2026-01-05 21:00", "0.5 l", "10 min", "exercise (hard)", "calves"):
        assert word in text, text

    _one_line_error(run_cli("habits", "delete", "deadbeef", env=env), "no habit entry deadbeef")
    _one_line_error(run_cli("habits", "delete", "xyz", env=env), "8 hex digits")
    _one_line_error(run_cli("habits", "--since", "yesterday", env=env), "--since")

    p = run_cli("habits", "delete", ids["water"], env=env, check=True)
    assert "water 0.5 l at 2026-01-05 21:00:00" in p.stdout
    assert [s.tags["habit"] for s in store.query("habit", tags={"subject": "ann"})] == ["exercise", "stretching"]

    # undo: the entry logged last (exercise, although its time is the earliest), then the one before
    p = run_cli("log", "undo", env=env, check=True)
    assert "removed the last entry logged" in p.stdout and "exercise (hard) 45 min" in p.stdout
    assert [s.tags["habit"] for s in store.query("habit", tags={"subject": "ann"})] == ["stretching"]
    run_cli("log", "undo", env=env, check=True)
    assert store.query("habit", tags={"subject": "ann"}) == []
    _one_line_error(run_cli("log", "undo", env=env), "nothing to undo")


# --- suggestions before a new custom habit -----------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "value", "hint"),
    [
        ("Coffee", None, "`legwatch log caffeine 1cup`"),
        ("coffee", "2", "`legwatch log caffeine 2cup`"),
        ("magnesium", None, "`legwatch log electrolytes --note magnesium`"),
        ("watr", "0.5", "`legwatch log water 0.5`"),
        ("excercise", "45", "`legwatch log exercise 45`"),
        ("strech", None, "`legwatch log stretching`"),
        ("beer", None, "`legwatch log alcohol 1drink`"),
        ("yogo", None, "`legwatch log yoga`"),  # close to a custom habit logged before
    ],
)
def test_suggest(typed: str, value: str | None, hint: str) -> None:
    s = suggest(typed, value, stored=["yoga"])
    assert s is not None and hint in s.message() and "--new" in s.message()


@pytest.mark.parametrize("typed", ["water", "Water", "CAFFEINE", "statin", "yoga", "juggle_balls", "sudoku"])
def test_no_suggestion_for_known_stored_or_far_names(typed: str) -> None:
    assert suggest(typed, None, stored=["yoga"]) is None


def test_log_refuses_near_names_and_bare_amounts(backend) -> None:
    store, env = backend
    cases = [
        (("Coffee",), "caffeine"),
        (("magnesium",), "electrolytes"),
        (("watr", "0.5"), "'water'"),
        (("water", "500"), "did you mean 500ml?"),
    ]
    for args, word in cases:
        _one_line_error(run_cli("log", *args, env=env), word)
    assert store.query("habit") == []  # nothing written
    p = run_cli("log", "magnesium", "--new", env=env, check=True)
    assert "'magnesium' is a new custom habit" in p.stdout
    p = run_cli("log", "magnesium", env=env, check=True)  # stored before: no question now
    assert "new custom habit" not in p.stdout
    _one_line_error(run_cli("log", "magnesiun", env=env), "'magnesium' (a habit you logged before)")
    p = run_cli("log", "sudoku", env=env, check=True)  # close to nothing: a new custom habit, said so
    assert "'sudoku' is a new custom habit" in p.stdout
    assert sorted(s.tags["habit"] for s in store.query("habit")) == ["magnesium", "magnesium", "sudoku"]


# --- the configured time zone ------------------------------------------------------------------------


def test_timezone_config_key_and_errors(tmp_path) -> None:
    assert load_config(env={})["timezone"] == ""
    assert load_config(env={"LEGWATCH_TIMEZONE": "Asia/Kolkata"})["timezone"] == "Asia/Kolkata"
    (tmp_path / "c.toml").write_text('timezone = "America/New_York"\n')
    assert load_config(tmp_path / "c.toml", env={})["timezone"] == "America/New_York"
    with pytest.raises(ConfigError, match="timezone: unknown time zone 'Mars/Olympus'"):
        load_config(env={"LEGWATCH_TIMEZONE": "Mars/Olympus"})
    p = run_cli("habits", env={"LEGWATCH_DATA_DIR": str(tmp_path), "LEGWATCH_TIMEZONE": "Mars/Olympus"})
    _one_line_error(p, "unknown time zone")
    try:
        localtime.use("Asia/Kolkata")
        assert localtime.local(0).isoformat() == "1970-01-01T05:30:00+05:30"
        assert localtime.label(0) == "Asia/Kolkata (IST, UTC+05:30)"
        localtime.use("UTC")
        assert localtime.label(0) == "UTC"
    finally:
        localtime.use(None)


def test_times_are_read_and_shown_in_the_configured_zone(tmp_path) -> None:
    env = {"LEGWATCH_DATA_DIR": str(tmp_path), "LEGWATCH_TIMEZONE": "Asia/Kolkata", "COLUMNS": "80"}
    p = run_cli("log", "water", "--at", "2026-01-05T21:30", env=env, check=True)
    assert "2026-01-05 21:30:00 IST" in p.stdout
    with SqliteStore(tmp_path / "legwatch.sqlite") as store:
        (h,) = store.query("habit")
    assert h.time == datetime(2026, 1, 5, 21, 30, tzinfo=ZoneInfo("Asia/Kolkata")).timestamp()
    text = run_cli("habits", "--since", "2026-01-05", env=env, check=True).stdout
    assert "time (IST)" in text and "2026-01-05 21:30" in text and "Asia/Kolkata (IST, UTC+05:30)" in text
    # the same entry read in another zone
    text = run_cli("habits", "--since", "2026-01-05", env={**env, "LEGWATCH_TIMEZONE": "UTC"}, check=True).stdout
    assert "2026-01-05 16:00" in text and "Times in UTC" in text
