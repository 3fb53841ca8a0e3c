"""Terminal output read as a person reads it: at 80 columns (``COLUMNS=80``, piped, as rich sizes it), with
nothing cut (no ``…``), units in the headers, ``p`` never ``0.000``, and times in the configured zone."""

from __future__ import annotations

import json
import re

import pytest
from test_correlate import plant_month

from detector.synthetic import generate_night, write_csv
from helpers import run_cli
from legwatch.habits import make_entry, store_entries
from legwatch.storage.sqlite import SqliteStore


def _fits(text: str, width: int = 80) -> None:
    assert max(len(line) for line in text.splitlines()) <= width, text
    assert "…" not in text, text


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    d = tmp_path_factory.mktemp("month")
    store = SqliteStore(d / "legwatch.sqlite")
    plant_month(store, subject="me")
    nights = store.query("night")
    extra = []
    for i, n in enumerate(nights):  # more habits with long labels and units
        at = float(n.fields["sleep_start"]) - 3 * 3600
        if i % 2:
            extra.append(("me", make_entry("medication", "statin", at=at)))
        if i % 3 == 0:
            extra.append(("me", make_entry("exercise", "45", intensity="hard", at=at - 3600)))
        if i % 4 == 0:
            extra.append(("me", make_entry("electrolytes", at=at)))
    store_entries(store, extra)
    store.close()
    return d


@pytest.mark.parametrize("columns", ["80", "60"])
def test_correlate_fits_and_shows_every_date_and_habit(month, columns) -> None:
    d = month
    env = {"LEGWATCH_DATA_DIR": str(d), "COLUMNS": columns, "LEGWATCH_TIMEZONE": "Europe/Berlin"}
    text = run_cli("correlate", env=env, check=True).stdout
    _fits(text, int(columns))
    report = json.loads(run_cli("correlate", "--format", "json", env=env, check=True).stdout)
    for r in report["rows"]:
        assert re.search(rf"^ ?{r['night']} ", text, re.M), r["night"]  # every date in full, at a line start
    words = " ".join(text.split())
    for label in ("alcohol", "caffeine", "electrolytes", "stretching", "water", "statin", "(medication)", "exercise"):
        assert label in words, label
    for unit in ("(drinks)", "(mg)", "(doses)", "(min)", "(l)"):
        assert unit in text, unit
    assert report["units"]["caffeine"] == "mg" and report["units"]["water"] == "l"
    assert report["timezone"] == "Europe/Berlin" and "Europe/Berlin" in words
    tested = [h for h in report["habits"] if h["test"]]
    assert any(h["p"] < 0.001 for h in tested)  # the planted stretching effect
    assert "<0.001" in text and "0.000" not in text


def test_detect_fits_and_keeps_every_kind(tmp_path) -> None:
    night = generate_night(3, hours=1.5, rate_hz=52.0, cramps=1, plm_series=1, twitches=3, gaps=1)
    csv = tmp_path / "night.csv"
    write_csv(night, csv)
    env = {"COLUMNS": "80", "LEGWATCH_TIMEZONE": "Europe/Berlin"}
    text = run_cli("detect", str(csv), env=env, check=True).stdout
    _fits(text)
    doc = json.loads(run_cli("detect", str(csv), "--format", "json", env=env, check=True).stdout)
    rows = [line.split() for line in text.splitlines() if re.match(r"^\s+\d\d:\d\d:\d\d\s", line)]
    assert len(rows) == len(doc["episodes"])
    for kind, n in doc["counts"].items():
        assert sum(1 for r in rows if r[2] == kind) == n, kind
    assert "(CET)" in text and "(s)" in text and "(g)" in text
    assert "times in Europe/Berlin (CET, UTC+01:00)" in " ".join(text.split())


def test_status_names_the_time_zone(tmp_path) -> None:
    env = {"LEGWATCH_DATA_DIR": str(tmp_path), "LEGWATCH_TIMEZONE": "America/New_York"}
    p = run_cli("status", "--format", "json", env=env, timeout=60)
    config = next(c for c in json.loads(p.stdout)["checks"] if c["name"] == "configuration")
    assert re.search(r"times in America/New_York \((EST|EDT), UTC-0[45]:00\)", config["detail"]), config
