"""The morning summary end to end: short generated nights stored with `legwatch import`, habits
logged with `legwatch log`, the summary as text, JSON and a self-contained HTML page; nights with
too little data say so instead of reporting zero episodes."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import datetime
from html.parser import HTMLParser
from typing import ClassVar

import numpy as np
import pytest

from detector.events import Episode
from detector.stream import Night
from detector.synthetic import generate_night, write_csv
from helpers import run_cli
from legwatch import summary
from legwatch.habits import evening_window, make_entry
from legwatch.storage import Point
from legwatch.storage.schema import night_points
from legwatch.storage.sqlite import SqliteStore

KINDS = ("twitch", "leg_movement", "contraction")


def _iso_local(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A 1.5 h generated night (two cramps, a periodic series) imported, with habits around it."""
    tmp = tmp_path_factory.mktemp("summary")
    night = generate_night(1, hours=1.5, rate_hz=52.0, cramps=2, plm_series=1, twitches=5, gaps=1)
    csv = tmp / "shin-left.csv"
    write_csv(night, csv)
    d = str(tmp / "data")
    imp = run_cli("import", str(csv), "--data-dir", d, check=True)
    detected = json.loads(run_cli("detect", str(csv), "--format", "json", check=True).stdout)
    onset = detected["sleep_start"]
    run_cli("log", "water", "500ml", "--at", _iso_local(onset - 3 * 3600), "--data-dir", d, check=True)
    hard = ["--intensity", "hard", "--at", _iso_local(onset - 5 * 3600)]
    run_cli("log", "exercise", "45", *hard, "--data-dir", d, check=True)
    run_cli("log", "alcohol", "--at", _iso_local(onset - 30 * 3600), "--data-dir", d, check=True)  # two days before
    run_cli("log", "heat", "--at", _iso_local(onset + 1800), "--data-dir", d, check=True)  # during the night
    return {"dir": d, "csv": csv, "import": imp.stdout, "detected": detected, "truth": night}


def test_import_says_what_was_stored(imported):
    out = imported["import"]
    det = imported["detected"]
    assert "stored the night of" in out and "for 'me' (sensor 'shin-left') in SQLite" in out
    in_sleep = {k: sum(1 for e in det["episodes"] if e["kind"] == k and e["in_sleep"]) for k in KINDS}
    assert "episodes in sleep: " + ", ".join(f"{k} {n}" for k, n in in_sleep.items()) in out
    assert f"{len(det['episodes'])} episode" in out and "activity" in out and "1 night" in out
    assert "coverage" in out and "sleep " in out


def test_summary_json_matches_detection(imported):
    s = json.loads(run_cli("summary", "--format", "json", "--data-dir", imported["dir"], check=True).stdout)
    det = imported["detected"]
    assert s["status"] == "ok" and s["enough_data"] and s["reason"] is None
    assert s["sensor"] == "shin-left" and s["subject"] == "me"
    assert s["sleep_window"]["start"] == pytest.approx(det["sleep_start"])
    assert s["sleep_window"]["end"] == pytest.approx(det["sleep_end"])
    in_sleep = [e for e in det["episodes"] if e["kind"] in KINDS and e["in_sleep"]]
    assert s["counts"] == {k: sum(1 for e in in_sleep if e["kind"] == k) for k in KINDS}
    assert s["episodes_total"] == len(in_sleep) == len(s["episodes"])
    assert [round(e["start"], 3) for e in s["episodes"]] == sorted(round(e["start"], 3) for e in in_sleep)
    assert s["plm_index"] == pytest.approx(det["plm_index"], abs=0.01)
    assert s["periodic_count"] == sum(1 for e in in_sleep if e["periodic"])
    contractions = [e for e in in_sleep if e["kind"] == "contraction"]
    assert contractions, "the generated night has cramps"
    assert s["longest_contraction"]["duration_s"] == pytest.approx(max(e["duration_s"] for e in contractions), abs=0.1)
    assert s["coverage"] == pytest.approx(det["coverage"], abs=1e-3)
    assert len(s["gaps"]) == len(det["gaps"]) >= 1
    assert [(h["habit"], h["value"], h["unit"], h["intensity"]) for h in s["habits"]] == [
        ("exercise", 45.0, "min", "hard"),
        ("water", 0.5, "l", ""),
    ]
    assert [h["habit"] for h in s["habits_during_night"]] == ["heat"]
    assert s["comparison"]["nights"] == 0
    assert "not a diagnosis" in s["disclaimer"]


def test_summary_text(imported):
    p = run_cli("summary", "--data-dir", imported["dir"], check=True)
    text = " ".join(p.stdout.split())
    assert "Sleep window:" in text and "Data coverage:" in text and "gap" in text
    assert "contractions (cramps)" in text and "Longest contraction:" in text
    assert "Periodic leg movements:" in text
    assert "exercise (hard): 45 min" in text and "water: 0.5 l" in text
    assert "Logged during the night:" in text and "heat: 15 min" in text
    assert "alcohol" not in text  # two days before: not the evening before
    assert "not a diagnosis" in text


class _Page(HTMLParser):
    void: ClassVar[set[str]] = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.imgs: list[dict] = []
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "img":
            self.imgs.append(dict(attrs))
        if tag not in self.void:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert page.stack == []
    return page


def test_summary_html_is_self_contained(imported, tmp_path):
    out = tmp_path / "night.html"
    p = run_cli("summary", "--format", "html", "--output", str(out), "--data-dir", imported["dir"], check=True)
    assert p.stdout == "" and "wrote the summary" in p.stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert not re.search(r'<(link|script)\b|src="http', html)  # nothing fetched from elsewhere
    page = _parse(html)
    (img,) = page.imgs
    assert img["src"].startswith("data:image/png;base64,")
    png = base64.b64decode(img["src"].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    text = " ".join(" ".join(page.text).split())
    assert "not a diagnosis" in text
    assert "Episodes during sleep" in text and "contractions (cramps)" in text and "Data coverage" in text
    assert "exercise (hard): 45 min" in text
    # to stdout without --output
    p = run_cli("summary", "--format", "html", "--data-dir", imported["dir"], check=True)
    assert p.stdout.startswith("<!DOCTYPE html>")


def test_summary_timeline_plot_in_process(imported):
    store = SqliteStore(f"{imported['dir']}/legwatch.sqlite")
    s = summary.build(store, "me")
    act = summary.activity(store, s)
    store.close()
    assert len(act) > 100  # 30 s epochs over 1.5 h
    from legwatch.summary_html import timeline_png

    assert timeline_png(s, act)[:4] == b"\x89PNG"
    assert timeline_png(s, [])[:4] == b"\x89PNG"  # no activity stored: still a plot


def test_night_selection_and_errors(imported, tmp_path):
    s = json.loads(run_cli("summary", "--format", "json", "--data-dir", imported["dir"], check=True).stdout)
    args = ["--night", s["night_of"], "--format", "json", "--data-dir", imported["dir"]]
    again = json.loads(run_cli("summary", *args, check=True).stdout)
    assert again["recording"] == s["recording"]
    for args, message in [
        (["--night", "2020-01-01"], "no night stored for 'me' starting on the evening of 2020-01-01"),
        (["--night", "yesterday"], "--night must be a date"),
        (["--publish"], "--publish needs an MQTT broker"),
    ]:
        p = run_cli("summary", *args, "--data-dir", imported["dir"])
        assert p.returncode == 2 and message in p.stderr and p.stderr.count("\n") == 1
    p = run_cli("summary", "--data-dir", str(tmp_path))
    assert p.returncode == 2 and "no nights stored yet" in p.stderr


def test_too_little_data_says_so(tmp_path):
    night = generate_night(1, hours=1.5, rate_hz=52.0, gaps=0)
    keep = (night.t < night.t[0] + 900) | (night.t > night.t[0] + 4500)  # an hour lost: a third left
    night.t, night.xyz = night.t[keep], night.xyz[keep]
    csv = tmp_path / "patchy.csv"
    write_csv(night, csv)
    d = str(tmp_path / "data")
    imp = run_cli("import", str(csv), "--data-dir", d, check=True).stdout
    assert "too little data" in imp
    s = json.loads(run_cli("summary", "--format", "json", "--data-dir", d, check=True).stdout)
    assert s["status"] == "too_little_data" and not s["enough_data"]
    assert "of the recording has data" in s["reason"]
    assert s["counts"] is None and s["episodes_total"] is None and s["plm_index"] is None
    assert s["gaps_total_s"] > 3000
    text = " ".join(run_cli("summary", "--data-dir", d, check=True).stdout.split())
    assert "Too little data to report this night's episodes" in text
    assert "Episodes during sleep" not in text
    html = run_cli("summary", "--format", "html", "--data-dir", d, check=True).stdout
    page = _parse(html)
    assert "Too little data" in " ".join(page.text) and len(page.imgs) == 1


def test_no_sleep_window_says_so(tmp_path):
    night = generate_night(1, hours=0.3, rate_hz=52.0, gaps=0)
    csv = tmp_path / "short.csv"
    write_csv(night, csv)
    d = str(tmp_path / "data")
    run_cli("import", str(csv), "--data-dir", d, check=True)
    s = json.loads(run_cli("summary", "--format", "json", "--data-dir", d, check=True).stdout)
    assert s["status"] == "too_little_data" and s["counts"] is None
    # 18 minutes: no sleep window, or (should the detector find one) too little sleep to count
    assert s["reason"] == "no sleep window was found in the data" or "min of sleep with data" in s["reason"]


def _planted(onset: float, n: int, rng: np.random.Generator, contraction_s: float = 40.0) -> Night:
    times = np.sort(rng.uniform(onset + 60, onset + 7 * 3600, n))
    eps = [Episode(float(t), float(t) + 2.0, "leg_movement", 0.1) for t in times[1:]]
    eps.insert(0, Episode(float(times[0]), float(times[0]) + contraction_s, "contraction", 0.3))
    return Night(eps, [], [], (onset, onset + 7.5 * 3600), 3.0, onset - 600, onset + 7.6 * 3600, 1000, 0)


def test_comparison_with_the_last_14_nights(sqlite_store):
    rng = np.random.default_rng(3)
    first = datetime(2026, 9, 1, 23, 0).astimezone().timestamp()
    counts = [10, 12, 8, 30, 11, 9, 10, 13, 12, 11, 10, 9, 14, 12, 11, 10]  # 16 earlier nights
    for i, n in enumerate(counts):
        sqlite_store.write(night_points("cmp", "shin", _planted(first + i * 86400, n, rng)))
    tonight = first + len(counts) * 86400
    sqlite_store.write(night_points("cmp", "shin", _planted(tonight, 25, rng, contraction_s=95.0)))
    s = summary.build(sqlite_store, "cmp")
    c = s["comparison"]
    recent = counts[-14:]
    assert c["nights"] == 14
    assert c["median_episodes"] == float(np.median(recent))
    assert c["mean_episodes"] == pytest.approx(np.mean(recent), abs=0.01)
    assert (c["min_episodes"], c["max_episodes"]) == (min(recent), max(recent))
    assert c["mean_contractions"] == 1.0
    assert c["tonight"] == "more than usual" and c["fewer_than_tonight"] == 13
    assert s["longest_contraction"]["duration_s"] == 95.0
    assert s["night_of"] == datetime.fromtimestamp(tonight).astimezone().strftime("%Y-%m-%d")
    earlier = summary.build(sqlite_store, "cmp", s["night_of"][:8] + "02")
    assert earlier["comparison"]["nights"] == 1 and earlier["comparison"]["tonight"] is None


# --- fetch, then compose -------------------------------------------------------------------------


def _pt(measurement: str, tags: dict, fields: dict, t: float) -> Point:
    return Point(measurement, tags, fields, t)


def test_compose_records_built_by_hand():
    """No store: a night, its episodes and gaps, the evening's habits and earlier nights by hand."""
    t0 = datetime(2026, 9, 20, 22, 30).astimezone().timestamp()
    onset, wake = t0 + 1800, t0 + 1800 + 7 * 3600
    me = {"subject": "me", "sensor": "shin"}
    fields = {"end": t0 + 8 * 3600, "coverage": 0.9, "sleep_start": onset, "sleep_end": wake, "sleep_h": 7.0}
    night = _pt("night", me, {**fields, "plm_index": 18.0, "episodes": 4.0, "contraction_count": 1.0}, t0)

    def ep(kind: str, start: float, seconds: float, peak: float, periodic=False, in_sleep=True) -> Point:
        f = {"duration_s": seconds, "end": start + seconds, "peak_g": peak, "periodic": periodic}
        return _pt("episode", {**me, "kind": kind}, {**f, "in_sleep": in_sleep, "counted": True}, start)

    episodes = [
        ep("twitch", t0 + 60, 0.5, 0.05, in_sleep=False),  # before sleep onset: not counted
        ep("leg_movement", onset + 600, 2.0, 0.1, periodic=True),
        ep("contraction", onset + 3600, 42.25, 0.31234),
        ep("leg_movement", onset + 620, 3.0, 0.12, periodic=True),
        ep("contraction", onset + 7200, 20.0, 0.2),
    ]
    gaps = [_pt("gap", me, {"duration_s": 120.0, "end": onset + 5120}, onset + 5000)]
    water = make_entry("water", "500ml", at=onset - 3 * 3600)
    heat = make_entry("heat", at=onset + 1800)
    earlier = [
        _pt("night", me, {**fields, "episodes": n, "contraction_count": c}, t0 - (5 - i) * 86400)
        for i, (n, c) in enumerate([(1.0, 0.0), (2.0, 1.0), (1.0, 0.0), (3.0, 1.0)])
    ]
    earlier.insert(0, _pt("night", me, {**fields, "coverage": 0.2, "episodes": 40.0}, t0 - 6 * 86400))  # unusable
    records = summary.NightRecords(
        "me",
        night,
        episodes=episodes,
        gaps=gaps,
        habits=[water.point("me")],
        habits_during=[heat.point("me")],
        earlier_nights=earlier,
    )
    s = summary.compose(records)
    assert (s["subject"], s["sensor"], s["status"], s["enough_data"], s["reason"]) == ("me", "shin", "ok", True, None)
    assert s["night_of"] == "2026-09-20"
    assert s["recording"]["start"] == t0 and s["recording"]["hours"] == 8.0
    assert s["sleep_window"]["start"] == onset and s["sleep_window"]["hours"] == 7.0
    assert s["counts"] == {"twitch": 0, "leg_movement": 2, "contraction": 2} and s["episodes_total"] == 4
    assert s["durations_s"] == {"twitch": 0.0, "leg_movement": 5.0, "contraction": 62.2}
    assert [e["start"] for e in s["episodes"]] == [onset + 600, onset + 620, onset + 3600, onset + 7200]
    assert all("sensor" not in e and "extra" not in e for e in s["episodes"])
    assert s["periodic_count"] == 2 and s["plm_index"] == 18.0 and s["plm_above_clinical"] is True
    lc = s["longest_contraction"]
    assert (lc["start"], lc["duration_s"], lc["peak_g"]) == (onset + 3600, 42.2, 0.312)
    assert [c["duration_s"] for c in s["contractions"]] == [42.2, 20.0]
    assert s["outside_sleep"] == 1
    assert s["gaps"] == [{"start": onset + 5000, "end": onset + 5120, "duration_s": 120.0}] and s["gaps_total_s"] == 120
    c = s["comparison"]
    assert (c["nights"], c["median_episodes"], c["min_episodes"], c["max_episodes"]) == (4, 1.5, 1.0, 3.0)
    assert (c["mean_episodes"], c["mean_contractions"]) == (1.75, 0.5)
    assert (c["tonight"], c["fewer_than_tonight"]) == ("more than usual", 4)
    assert s["habits_window"] == dict(zip(("start", "end"), evening_window(onset), strict=True))
    assert [(h["habit"], h["value"], h["unit"], h["time"]) for h in s["habits"]] == [("water", 0.5, "l", water.time)]
    assert [h["habit"] for h in s["habits_during_night"]] == ["heat"]
    assert "not a diagnosis" in s["disclaimer"]
    assert json.loads(json.dumps(s)) == s  # plain JSON

    patchy = summary.compose(replace(records, night=replace(night, fields={**night.fields, "coverage": 0.3})))
    assert patchy["status"] == "too_little_data" and "30% of the recording" in patchy["reason"]
    assert patchy["counts"] is None and patchy["episodes_total"] is None and patchy["longest_contraction"] is None
    assert patchy["comparison"]["nights"] == 4 and patchy["comparison"]["tonight"] is None
    bare = summary.compose(summary.NightRecords("me", _pt("night", me, {"end": t0 + 600, "coverage": 1.0}, t0)))
    assert bare["reason"] == "no sleep window was found in the data" and bare["habits"] == []
    assert bare["habits_window"] == dict(zip(("start", "end"), evening_window(t0), strict=True))
    assert bare["comparison"]["nights"] == 0 and bare["gaps"] == [] and bare["episodes"] == []


def test_build_is_compose_of_fetch(imported, sqlite_store):
    store = SqliteStore(f"{imported['dir']}/legwatch.sqlite")
    try:
        s = summary.build(store, "me")
        records = summary.fetch(store, "me")
        assert json.dumps(s) == json.dumps(summary.compose(records))
        assert len(records.episodes) > 0 and len(records.gaps) >= 1 and len(records.habits) == 2
        for kw in ({"night": s["night_of"]}, {"sensor": "shin-left", "start": s["recording"]["start"]}):
            assert json.dumps(summary.build(store, "me", **kw)) == json.dumps(
                summary.compose(summary.fetch(store, "me", **kw))
            )
    finally:
        store.close()
    rng = np.random.default_rng(5)
    first = datetime(2026, 9, 1, 23, 0).astimezone().timestamp()
    for i, n in enumerate([4, 6, 5, 7, 30]):
        sqlite_store.write(night_points("cmp", "shin", _planted(first + i * 86400, n, rng)))
    s = summary.build(sqlite_store, "cmp")
    assert s["comparison"]["nights"] == 4 and s["comparison"]["tonight"] == "more than usual"
    assert json.dumps(s) == json.dumps(summary.compose(summary.fetch(sqlite_store, "cmp")))
    with pytest.raises(summary.SummaryError, match="no nights stored yet"):
        summary.fetch(sqlite_store, "nobody")


def test_detect_and_summary_say_where_their_counts_differ(imported):
    """`detect` counts the whole recording, the summary the sleep window: where they differ, both say so."""
    det = imported["detected"]
    outside = sum(1 for e in det["episodes"] if e["kind"] in KINDS and not e["in_sleep"])
    assert outside > 0  # the night starts and ends awake in bed, with restless movements
    text = " ".join(run_cli("detect", str(imported["csv"]), check=True).stdout.split())
    inside = {k: sum(1 for e in det["episodes"] if e["kind"] == k and e["in_sleep"]) for k in KINDS}
    assert "Counts over the whole recording:" in text
    assert (
        "In the sleep window (what `legwatch summary` counts): "
        + ", ".join(f"{k} {n}" for k, n in inside.items())
        + f"; {outside} more outside it"
    ) in text
    summ = " ".join(run_cli("summary", "--data-dir", imported["dir"], check=True).stdout.split())
    assert f"Outside the sleep window: {outside} episode(s), not counted here; `legwatch detect` counts" in summ
