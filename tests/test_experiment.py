"""N-of-1 experiments end to end through the real command line and a real SQLite store: a month
where the intervention truly cuts episodes must come out ``helps`` (p < 0.05), a month where it does
nothing ``no_clear_effect``, five nights ``not_enough_data``; low adherence refuses to conclude; the
plan is balanced in blocks and stored; ``today`` follows the plan; bad input changes nothing.

The month of the judged case is real detector output: short synthetic nights
(``detector.synthetic.generate_night``) imported with ``legwatch import``, fewer leg movements,
twitches and cramps on the intervention nights, the habit logged with ``legwatch log --at`` on the
planned evenings. The other months are planted through the storage API (tests/month.py).
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
from month import NOW, store_month

from detector.synthetic import generate_night, write_csv
from helpers import run_cli
from legwatch import cli
from legwatch.experiment import (
    Plan,
    all_designs,
    design_count,
    draw_designs,
    draw_schedule,
    make_plan,
    plans,
    tonight,
    tonight_doc,
)
from legwatch.experiment_result import analyse, text_lines
from legwatch.storage.sqlite import SqliteStore


def _env(tmp_path) -> dict:
    return {"LEGWATCH_DATA_DIR": str(tmp_path / "data"), "LEGWATCH_SUBJECT": "me"}


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- the design ------------------------------------------------------------------------------------


def test_schedules_are_balanced_in_every_block_and_reproducible() -> None:
    for seed in range(20):
        s = draw_schedule(30, seed)
        assert s == draw_schedule(30, seed)
        assert len(s) == 30 and sum(s) == 15
        for i in range(0, 28, 4):
            assert sum(s[i : i + 4]) == 2, (seed, s)
    assert len({tuple(draw_schedule(28, seed)) for seed in range(50)}) > 40
    odd = [sum(draw_schedule(7, seed)) for seed in range(40)]
    assert set(odd) == {3, 4}  # the odd night goes either way


def test_redrawn_designs_follow_the_same_design() -> None:
    assert design_count(8) == 36 and all_designs(8, 4).shape == (36, 8)
    assert len({tuple(r) for r in all_designs(8, 4)}) == 36
    z = draw_designs(28, 4, np.random.default_rng(0), 5000)
    assert (z.reshape(5000, 7, 4).sum(axis=2) == 2).all()
    assert 0.45 < z.mean() < 0.55


# --- the judged case: a month through the real CLI --------------------------------------------------


def _month_through_cli(tmp_path, capsys, *, factor: float, seed: int) -> dict:
    """Plan 28 nights, import one short synthetic night per planned date (fewer events with the
    intervention when ``factor`` < 1), log the habit on the planned evenings, return the result."""
    env = _env(tmp_path)
    code, out, _ = _cli(
        capsys,
        "experiment", "plan", "stretching", "--nights", "28", "--seed", str(seed), "--start", "2026-09-01",
        "--format", "json", "--data-dir", env["LEGWATCH_DATA_DIR"], "--subject", "me",
    )  # fmt: skip
    assert code == 0
    plan = json.loads(out)
    assert plan["habit"] == "stretching" and len(plan["schedule"]) == 28
    assert [n["night"] for n in plan["schedule"]][:2] == ["2026-09-01", "2026-09-02"]
    rng = np.random.default_rng(seed)
    for i, night in enumerate(plan["schedule"]):
        on = night["intervention"]
        f = factor if on else 1.0
        start = datetime.strptime(night["night"], "%Y-%m-%d").replace(hour=23).astimezone().timestamp()
        n = generate_night(
            seed * 100 + i,
            hours=1.6,
            rate_hz=25.0,
            start=start,
            gaps=0,
            partner=False,
            bathroom_trips=0,
            walk_at_start=False,
            awake_start_min=5.0,
            awake_end_min=3.0,
            plm_series=int(rng.poisson(2 * f)),
            isolated_lm_per_h=float(20 * f),
            twitches=int(rng.poisson(30 * f)),
            cramps=int(rng.poisson(1.0 * f)),
        )
        path = tmp_path / f"shin-{night['night']}.csv"
        write_csv(n, path)
        code, _, err = _cli(capsys, "import", str(path), "--sensor", "shin", "--data-dir", env["LEGWATCH_DATA_DIR"],
                            "--subject", "me")  # fmt: skip
        assert code == 0, err
        path.unlink()
        if on:
            at = datetime.strptime(night["night"], "%Y-%m-%d").replace(hour=21, minute=30).isoformat()
            code, _, err = _cli(capsys, "log", "stretching", "10", "--at", at, "--data-dir", env["LEGWATCH_DATA_DIR"],
                                "--subject", "me")  # fmt: skip
            assert code == 0, err
    code, out, err = _cli(capsys, "experiment", "result", "--format", "json", "--data-dir", env["LEGWATCH_DATA_DIR"],
                          "--subject", "me")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    # the report of the same imported month: a valid multi-page PDF and a self-contained page
    from test_report import _pdf_pages

    for fmt, name in (("pdf", "r.pdf"), ("html", "r.html")):
        code, _, err = _cli(capsys, "report", "--format", fmt, "--output", str(tmp_path / name), "--data-dir",
                            env["LEGWATCH_DATA_DIR"], "--subject", "me")  # fmt: skip
        assert code == 0, err
    assert _pdf_pages((tmp_path / "r.pdf").read_bytes(), tmp_path / "check.pdf") >= 5
    html = (tmp_path / "r.html").read_text()
    assert "Night by night" in html and result["verdict_text"].split(":")[0] in html
    return result


def test_a_month_where_stretching_cuts_episodes_helps(tmp_path, capsys) -> None:
    r = _month_through_cli(tmp_path, capsys, factor=0.3, seed=11)
    for key in ("habit", "nights_planned", "nights_analysed", "adherence", "effect", "ci", "p_value", "verdict"):
        assert key in r
    assert r["habit"] == "stretching" and r["nights_planned"] == 28
    assert r["nights_analysed"] + r["nights_too_little_data"] + r["nights_without_recording"] == 28
    assert r["nights_analysed"] >= 24
    assert r["adherence"] == 1.0
    assert r["verdict"] == "helps", r["verdict_text"]
    assert r["p_value"] < 0.05
    assert r["effect"] < 0 and r["ci"][0] <= r["effect"] <= r["ci"][1] < 0


def test_a_month_where_it_does_nothing_has_no_clear_effect(tmp_path, capsys) -> None:
    r = _month_through_cli(tmp_path, capsys, factor=1.0, seed=12)
    assert r["verdict"] == "no_clear_effect", r["verdict_text"]
    assert r["p_value"] >= 0.05
    assert r["ci"][0] < 0 < r["ci"][1]


# --- planted months: the statistics -----------------------------------------------------------------


def _planted(factor: float, seed: int, nights: int = 28, log_habit=None) -> dict:
    store = SqliteStore(":memory:")
    plan = make_plan(store, "me", "stretching", nights, seed=seed, start="2026-10-01", now=NOW)
    store_month(store, "me", plan.nights, plan.schedule, factor=factor, seed=seed, log_habit=log_habit)
    return analyse(store, plan, now=NOW)


def test_a_null_effect_is_rarely_called() -> None:
    verdicts = [_planted(1.0, seed)["verdict"] for seed in range(20)]
    assert verdicts.count("no_clear_effect") >= 17, verdicts
    assert "not_enough_data" not in verdicts


def test_a_real_effect_is_found_and_its_interval_covers_it() -> None:
    results = [_planted(0.6, seed) for seed in range(8)]
    assert sum(r["verdict"] == "helps" for r in results) >= 7
    assert all(r["ci"][0] < r["effect"] < r["ci"][1] for r in results)


def test_five_nights_are_not_enough(tmp_path, capsys) -> None:
    r = _planted(0.2, 3, nights=5)
    assert r["verdict"] == "not_enough_data"
    assert r["nights_planned"] == 5 and r["nights_analysed"] == 5
    assert any("at least 12" in why for why in r["reasons"])
    env = _env(tmp_path)
    code, out, _ = _cli(capsys, "experiment", "plan", "heat", "--nights", "5", "--start", "2026-10-01",
                        "--data-dir", env["LEGWATCH_DATA_DIR"])  # fmt: skip
    assert code == 0 and "too few" in out
    store = SqliteStore(tmp_path / "data" / "legwatch.sqlite")
    (plan,) = plans(store, "me")
    store_month(store, "me", plan.nights, plan.schedule, habit="heat", factor=0.2, seed=1)
    store.close()
    code, out, _ = _cli(capsys, "experiment", "result", "--format", "json", "--data-dir", env["LEGWATCH_DATA_DIR"])
    assert json.loads(out)["verdict"] == "not_enough_data"
    code, out, _ = _cli(capsys, "experiment", "result", "--data-dir", env["LEGWATCH_DATA_DIR"])
    assert "not enough data" in out and max(len(line) for line in out.splitlines()) <= 80


def test_low_adherence_refuses_to_conclude() -> None:
    store = SqliteStore(":memory:")
    plan = make_plan(store, "me", "stretching", 28, seed=4, start="2026-10-01", now=NOW)
    logged = [on if i % 2 else not on for i, on in enumerate(plan.schedule)]  # half the evenings wrong
    store_month(store, "me", plan.nights, plan.schedule, factor=0.3, seed=4, log_habit=logged)
    r = analyse(store, plan, now=NOW)
    assert r["verdict"] == "not_enough_data"
    assert r["adherence"] == 0.5
    assert any("schedule was followed" in why for why in r["reasons"])


def test_nights_with_too_little_data_are_left_out_and_counted() -> None:
    store = SqliteStore(":memory:")
    plan = make_plan(store, "me", "stretching", 28, seed=6, start="2026-10-01", now=NOW)
    store_month(store, "me", plan.nights[:20], plan.schedule[:20], factor=0.5, seed=6, extras=True)
    r = analyse(store, plan, now=NOW)
    assert r["nights_without_recording"] == 8
    assert r["nights_too_little_data"] == 1  # tests/month.py: the seventh night has 18 min of sleep
    assert r["nights_analysed"] == 19
    assert {e["night"] for e in r["left_out"]} >= set(plan.nights[20:])
    lines = text_lines(r)
    assert max(map(len, lines)) <= 80


# --- plan, today, status, stop ----------------------------------------------------------------------


def test_plan_is_stored_one_runs_at_a_time_and_today_follows_it(tmp_path, capsys) -> None:
    d = str(tmp_path / "data")
    today = tonight()
    code, out, _ = _cli(capsys, "experiment", "plan", "stretching", "--nights", "8", "--seed", "3", "--data-dir", d)
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    code, out, _ = _cli(capsys, "experiment", "plan", "water", "--nights", "8", "--data-dir", d, "--format", "json")
    assert code == 0 or code == 2
    assert code == 2  # one runs at a time
    code, out, _ = _cli(capsys, "experiment", "today", "--format", "json", "--data-dir", d)
    doc = json.loads(out)
    assert doc["night"] == today and doc["habit"] == "stretching" and doc["night_number"] == 1
    assert doc["intervention"] == draw_schedule(8, 3)[0]
    code, out, _ = _cli(capsys, "experiment", "status", "--format", "json", "--data-dir", d)
    assert json.loads(out)["state"] == "running"
    code, out, _ = _cli(capsys, "experiment", "stop", "--data-dir", d)
    assert code == 0
    code, out, _ = _cli(capsys, "experiment", "plan", "water", "--nights", "8", "--data-dir", d, "--format", "json")
    assert code == 0 and json.loads(out)["habit"] == "water"
    code, out, _ = _cli(capsys, "experiment", "list", "--format", "json", "--data-dir", d)
    assert [(x["habit"], x["state"]) for x in json.loads(out)] == [("stretching", "stopped"), ("water", "running")]


def test_tonight_doc_outside_any_plan() -> None:
    p = Plan("me", "heat", "2026-10-01", (True, False), 1, 4, 0.0)
    assert tonight_doc([p], "me", datetime(2026, 10, 1, 20).astimezone())["intervention"] is True
    assert tonight_doc([p], "me", datetime(2026, 10, 3, 2).astimezone())["intervention"] is False  # before 04:00
    assert tonight_doc([p], "me", datetime(2026, 10, 3, 20).astimezone())["intervention"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["plan", "stretching", "--nights", "1"], "--nights must be"),
        (["plan", "stretching", "--nights", "10", "--start", "tomorrow"], "--start must be a date"),
        (["plan", "statin", "--nights", "10"], "talk to your doctor"),
        (["plan", "stretch ing", "--nights", "10"], "habit name"),
        (["result"], "no experiment planned"),
        (["stop"], "no experiment is running"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message) -> None:
    p = run_cli("experiment", *args, env=_env(tmp_path))
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1
    store = SqliteStore(tmp_path / "data" / "legwatch.sqlite")
    assert store.query("experiment") == []
    store.close()


# --- the monitor publishes tonight's assignment, retained, with a Home Assistant entity -------------


def test_the_monitor_publishes_tonight_retained_with_discovery(mosquitto, tmp_path) -> None:
    import uuid

    from test_homeassistant import clear_retained, collect_retained

    from legwatch.contracts.config import load_config
    from legwatch.experiment_publish import TonightPublisher, config_topic, state_topic
    from legwatch.monitor.service import Monitor

    subject, prefix = f"exp{uuid.uuid4().hex[:6]}", f"lw{uuid.uuid4().hex[:6]}"
    cfg = load_config(
        env={
            "LEGWATCH_MQTT_URL": mosquitto.url,
            "LEGWATCH_MQTT_TOPIC_PREFIX": prefix,
            "LEGWATCH_SUBJECT": subject,
            "LEGWATCH_DATA_DIR": str(tmp_path),
        }
    )
    store = SqliteStore(tmp_path / "legwatch.sqlite")
    plan = make_plan(store, subject, "stretching", 8, seed=9)
    mon = Monitor(cfg, store, client_id=f"{prefix}-monitor")
    mon.every(TonightPublisher(), "experiment_reminders", 60.0)  # as `legwatch monitor` registers it
    wanted = [state_topic(prefix, subject), config_topic(subject), f"{prefix}/summary/{subject}/availability"]
    mon.start()
    try:
        collect_retained(mosquitto.url, wanted, 3)  # published by now
    finally:
        mon.stop()
        store.close()
    try:
        got = collect_retained(mosquitto.url, wanted, 3)  # a fresh subscriber after the monitor left: retained
    finally:
        clear_retained(mosquitto.url, wanted)
    assert mon.stats["experiment_reminders"] >= 1
    doc = json.loads(got[state_topic(prefix, subject)].payload)
    assert got[state_topic(prefix, subject)].retain
    assert doc["habit"] == "stretching" and doc["night"] == tonight() and doc["intervention"] == plan.schedule[0]
    assert doc["reminder"]
    config = json.loads(got[config_topic(subject)].payload)
    assert config["state_topic"] == state_topic(prefix, subject) and config["payload_on"] == "ON"
    assert config["unique_id"].endswith("_intervention_tonight")


# --- plans in both real stores; the monitor's periodic tasks -----------------------------------------


@pytest.mark.parametrize("store_name", ["sqlite_store", "influx_store"])
def test_plans_round_trip_and_stop_in_both_stores(request, store_name) -> None:
    from legwatch.experiment import active_plan, stop_plan

    store = request.getfixturevalue(store_name)
    now = datetime(2026, 10, 10, 20).astimezone()
    made = make_plan(store, "me", "heat", 14, seed=77, start="2026-10-05", now=now)
    (kept,) = plans(store, "me")
    assert kept == made and kept.schedule == tuple(draw_schedule(14, 77))
    assert active_plan([kept], now) == kept and kept.state(now) == "running"
    stopped = stop_plan(store, "me", now=now)
    (kept,) = plans(store, "me")
    assert kept.stopped == pytest.approx(stopped.stopped, abs=0.001) and kept.state(now) == "stopped"
    assert kept.assignment("2026-10-10") is not None and kept.assignment("2026-10-11") is None
    store_month(store, "me", kept.nights[:5], kept.schedule[:5], habit="heat", seed=1)
    r = analyse(store, kept, now=now)
    assert r["state"] == "stopped" and r["nights_analysed"] == 5 and r["nights_to_come"] == 0
    assert r["verdict"] == "not_enough_data"


def test_periodic_tasks_run_once_per_period_and_survive_failures() -> None:
    from collections import Counter

    from legwatch.monitor.periodic import Periodic, Tick

    now = [100.0]
    stats: Counter[str] = Counter()
    periodic = Periodic(stats, clock=lambda: now[0])
    calls = []

    def task(tick: Tick) -> bool:
        calls.append(now[0])
        if len(calls) == 2:
            raise RuntimeError("broker hiccup")
        return True

    periodic.add(task, "reminders", 60.0)
    tick = Tick(SqliteStore(":memory:"), None, "lw")
    for t in (100.0, 130.0, 160.0, 200.0, 230.0, 260.0):
        now[0] = t
        periodic.run_due(tick)
    assert calls == [100.0, 160.0, 230.0]
    assert stats["reminders"] == 2
    with pytest.raises(ValueError):
        periodic.add(task, "bad", 0)
