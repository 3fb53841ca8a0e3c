"""The correlation on a month of nights with planted effects: nights after stretching have fewer
episodes, nights after alcohol more, caffeine and water do nothing. The report must find the two
planted links, invent none, and refuse to judge from too few nights.

The nights are written directly (``night``/``episode`` points through ``legwatch.storage.schema`` from a
detector ``Night`` with known episodes): running the detector over 30 full nights would be slow.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pytest
from scipy import stats

from detector.events import Episode
from detector.stream import Night
from helpers import run_cli
from legwatch import correlate
from legwatch.correlate_html import render_html
from legwatch.habits import make_entry, store_entries
from legwatch.storage.schema import night_points
from legwatch.storage.sqlite import SqliteStore

NOW = datetime(2026, 11, 1, 12, 0).astimezone()
KINDS = ("twitch", "leg_movement", "contraction")


def planted_night(onset: float, n_episodes: int, rng: np.random.Generator, coverage_gap_s: float = 0.0) -> Night:
    """A night of 7.5 h sleep with ``n_episodes`` counted episodes inside the sleep window."""
    from detector.events import Gap

    start, sleep_end = onset - 900, onset + 7.5 * 3600
    times = np.sort(rng.uniform(onset + 60, sleep_end - 60, n_episodes))
    eps = []
    for t in times:
        kind = str(rng.choice(KINDS, p=[0.3, 0.6, 0.1]))
        dur = {"twitch": 0.2, "leg_movement": 2.0, "contraction": 40.0}[kind]
        eps.append(Episode(float(t), float(t) + dur, kind, 0.1, periodic=False, in_sleep=True))
    gaps = [Gap(start + 1000, start + 1000 + coverage_gap_s)] if coverage_gap_s else []
    return Night(eps, [], gaps, (onset, sleep_end), 0.0, start, sleep_end + 900, 1000, 0)


def plant_month(store, subject: str = "corr", nights: int = 30, seed: int = 4) -> list[dict]:
    """Nights with habits of the evening before; returns the planted truth per night."""
    rng = np.random.default_rng(seed)
    first = datetime(2026, 9, 1, 23, 0).astimezone()
    truth = []
    entries = []
    for i in range(nights):
        day = first + timedelta(days=i)
        onset = day.timestamp() + rng.uniform(-1800, 2400)
        stretch = bool(rng.random() < 0.5)
        drinks = int(rng.integers(1, 4)) if rng.random() < 0.35 else 0
        caffeine = float(rng.choice([0.0, 80.0, 160.0, 240.0]))
        water = float(np.round(rng.uniform(0.5, 2.5), 2))
        lam = 16.0 - 8.0 * stretch + 4.0 * drinks
        n = int(rng.poisson(lam))
        store.write(night_points(subject, "shin", planted_night(onset, n, rng)))
        noon = day.replace(hour=12, minute=0)  # of the evening's day
        if stretch:
            entries.append(make_entry("stretching", "10", at=onset - 1800, now=NOW))
        if drinks:
            entries.append(make_entry("alcohol", str(drinks), at=onset - 3 * 3600, now=NOW))
        if caffeine:
            entries.append(make_entry("caffeine", str(caffeine), at=(noon + timedelta(hours=3)).timestamp(), now=NOW))
        entries.append(make_entry("water", str(water), at=(noon + timedelta(hours=7)).timestamp(), now=NOW))
        # after sleep onset (a heat pad after a cramp) and the next morning: belong to no night
        entries.append(make_entry("heat", str(n), at=onset + 3 * 3600, now=NOW))
        entries.append(make_entry("cold", str(n), at=onset + 10 * 3600, now=NOW))
        truth.append({"onset": onset, "episodes": n, "stretch": stretch, "drinks": drinks})
    store_entries(store, [(subject, e) for e in entries])
    return truth


@pytest.fixture(params=["sqlite", "influx"])
def month_store(request, tmp_path):
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "legwatch.sqlite")
        yield store
        store.close()
    else:
        yield request.getfixturevalue("influx_store")


def test_finds_planted_effects_and_invents_none(month_store):
    truth = plant_month(month_store)
    report = correlate.build(month_store, "corr")
    assert report["nights"] == 30 and report["enough_nights"]
    rows = report["rows"]
    assert [r["outcome"] for r in rows] == [float(t["episodes"]) for t in truth]
    assert [r["habits"].get("stretching", 0) > 0 for r in rows] == [t["stretch"] for t in truth]
    assert [r["habits"].get("alcohol", 0) for r in rows] == [float(t["drinks"]) for t in truth]
    res = {r["habit"]: r for r in report["habits"]}
    # heat (logged after sleep onset) and cold (the next morning) belong to no night
    assert set(res) == {"stretching", "alcohol", "caffeine", "water"}

    s = res["stretching"]
    assert s["test"] == "mann-whitney" and s["finding"] == "fewer" and s["q"] < 0.05
    assert s["effect"] < 0 and s["ci"][1] < 0 and s["ci"][0] < s["effect"] < s["ci"][1]
    assert "fewer episodes" in s["verdict"] and "likely" in s["verdict"]
    a = res["alcohol"]
    assert a["test"] == "spearman" and a["finding"] == "more" and a["q"] < 0.05 and a["ci"][0] > 0
    for name in ("caffeine", "water"):
        r = res[name]
        assert r["test"] == "spearman"
        assert r["finding"] == "no_clear_link" and r["q"] > 0.05, r
        assert r["ci"][0] < 0 < r["ci"][1]
        assert f"more {name}: no clear link in 30 nights" in r["verdict"]
    assert {r["habit"] for r in correlate.notable(report)} == {"stretching", "alcohol"}
    # the reported statistics are the textbook ones
    y = np.array([t["episodes"] for t in truth], float)
    st = np.array([t["stretch"] for t in truth])
    assert s["p"] == pytest.approx(stats.mannwhitneyu(y[st], y[~st]).pvalue)
    assert s["effect"] == pytest.approx(y[st].mean() - y[~st].mean())
    tested = [r for r in report["habits"] if r["test"]]
    assert [r["q"] for r in tested] == pytest.approx(list(stats.false_discovery_control([r["p"] for r in tested])))
    assert "not medical advice" in report["disclaimer"]


def test_too_few_nights_refuses_to_conclude(sqlite_store):
    plant_month(sqlite_store, nights=8, seed=4)
    report = correlate.build(sqlite_store, "corr")
    assert report["nights"] == 8 and not report["enough_nights"]
    for r in report["habits"]:
        assert r["test"] is None and r["finding"] == "not_enough_data"
        assert "not enough nights to say (8 of the 10 needed)" in r["verdict"]


def test_gates_per_habit(sqlite_store):
    truth = plant_month(sqlite_store, nights=14, seed=4)
    # a habit on only three nights, and one on every night with one amount
    extra = [make_entry("electrolytes", at=t["onset"] - 7200, now=NOW) for t in truth[:3]]
    extra += [make_entry("sitting", "2", at=t["onset"] - 7200, now=NOW) for t in truth]
    store_entries(sqlite_store, [("corr", e) for e in extra])
    res = {r["habit"]: r for r in correlate.build(sqlite_store, "corr")["habits"]}
    assert res["electrolytes"]["test"] is None and "not enough nights with it" in res["electrolytes"]["verdict"]
    assert res["sitting"]["test"] is None and "logged on almost every night" in res["sitting"]["verdict"]


def test_lag_of_one_evening_and_derived_habits(sqlite_store):
    onset = datetime(2026, 9, 1, 23, 30).astimezone().timestamp()
    rng = np.random.default_rng(0)
    sqlite_store.write(night_points("lag", "shin", planted_night(onset, 5, rng)))
    nxt = onset + 86400
    sqlite_store.write(night_points("lag", "shin", planted_night(nxt, 7, rng)))
    noon = datetime(2026, 9, 1, 12, 0).astimezone().timestamp()
    entries = [
        make_entry("water", "1", at=noon - 60, now=NOW),  # 11:59: the morning before, no night
        make_entry("water", "0.5", at=noon + 60, now=NOW),  # 12:01: this night
        make_entry("exercise", "60", intensity="hard", at=noon + 5 * 3600, now=NOW),
        make_entry("exercise", "20", intensity="light", at=noon + 6 * 3600, now=NOW),
        make_entry("statin", at=onset - 600, now=NOW),
        make_entry("medication", "diuretic", at=onset - 500, now=NOW),
        make_entry("alcohol", "2", at=onset + 60, now=NOW),  # after onset: not this night, nor the next
        make_entry("caffeine", at=nxt - 3600, now=NOW),  # the next night
    ]
    store_entries(sqlite_store, [("lag", e) for e in entries])
    rows = correlate.table(sqlite_store, "lag")["rows"]
    assert [r["outcome"] for r in rows] == [5.0, 7.0]
    assert rows[0]["habits"] == {
        "water": 0.5,
        "exercise": 80.0,
        "exercise:hard": 60.0,
        "medication:statin": 1.0,
        "medication:diuretic": 1.0,
    }
    assert rows[1]["habits"] == {"caffeine": 80.0}


def test_low_coverage_nights_are_left_out(sqlite_store):
    rng = np.random.default_rng(1)
    onset = datetime(2026, 9, 1, 23, 0).astimezone().timestamp()
    sqlite_store.write(night_points("cov", "shin", planted_night(onset, 4, rng)))
    sqlite_store.write(night_points("cov", "shin", planted_night(onset + 86400, 0, rng, coverage_gap_s=6 * 3600)))
    t = correlate.table(sqlite_store, "cov")
    assert len(t["rows"]) == 1 and len(t["skipped"]) == 1
    assert "of the recording has data" in t["skipped"][0]["reason"]


def test_bh_matches_scipy():
    p = [0.01, 0.04, 0.03, 0.2, 0.001, 0.5]
    assert correlate.bh(p) == pytest.approx(list(stats.false_discovery_control(p)))
    assert correlate.bh([]) == []


def test_correlate_cli_text_json_html(tmp_path):
    store = SqliteStore(tmp_path / "legwatch.sqlite")
    plant_month(store, subject="me")
    store.close()
    d = str(tmp_path)
    out = json.loads(run_cli("correlate", "--format", "json", "--data-dir", d, check=True).stdout)
    assert out["nights"] == 30
    findings = {r["habit"]: r["finding"] for r in out["habits"]}
    assert findings["stretching"] == "fewer" and findings["alcohol"] == "more"
    text = run_cli("correlate", "--data-dir", d, check=True).stdout
    assert "nights after stretching: fewer episodes, likely a real link" in " ".join(text.split())
    assert "not medical advice" in text
    page = tmp_path / "c.html"
    p = run_cli("correlate", "--format", "html", "--output", str(page), "--data-dir", d, check=True)
    assert "wrote the correlation report (30 nights)" in p.stderr
    html = page.read_text()
    _check_html(html)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 2  # stretching and alcohol
    assert "not medical advice" in html
    since = json.loads(run_cli("correlate", "--since", "2026-09-21", "--format", "json", "--data-dir", d).stdout)
    assert since["nights"] == 10
    contractions = json.loads(
        run_cli("correlate", "--outcome", "contractions", "--format", "json", "--data-dir", d, check=True).stdout
    )
    assert contractions["outcome"] == "contractions"
    bad = run_cli("correlate", "--since", "last week", "--data-dir", d)
    assert bad.returncode == 2 and "--since must be a date" in bad.stderr and bad.stderr.count("\n") == 1


def test_correlate_cli_with_no_nights(tmp_path):
    p = run_cli("correlate", "--data-dir", str(tmp_path), check=True)
    assert "Only 0 night(s)" in p.stdout


def _check_html(text: str) -> None:
    """Parses, and every opened non-void element is closed."""
    void = {"meta", "img", "br", "hr", "link", "input"}

    class P(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.stack: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag not in void:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
            self.stack.pop()

    p = P()
    p.feed(text)
    p.close()
    assert p.stack == []


def test_html_report_renders_without_notable_habits(sqlite_store):
    plant_month(sqlite_store, nights=6)
    _check_html(render_html(correlate.build(sqlite_store, "corr")))
