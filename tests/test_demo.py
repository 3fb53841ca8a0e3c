"""`legwatch demo` through the real CLI (an embedded broker: no fixture needed); short nights at 25 Hz."""

from __future__ import annotations

import json
import re

from helpers import run_cli
from legwatch.demo import MIN_HOURS

SHORT = ("--hours", f"{MIN_HOURS:g}", "--rate", "25")
WIDE = {"COLUMNS": "250"}  # rich wraps at 80 columns without a terminal


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_demo_with_data_dir_keeps_the_store_for_summary(tmp_path):
    d = tmp_path / "data"
    p = run_cli("demo", *SHORT, "--data-dir", str(d), "--subject", "ana", env=WIDE, timeout=400)
    assert p.returncode == 0, p.stderr
    out = _flat(p.stdout)
    assert "night of" in out and "(ana, sensor demo-shin)" in out
    cmd = f"legwatch summary --data-dir {d} --subject ana --format json"
    assert cmd in out, out[-600:]
    assert "temporary" not in out
    assert (d / "legwatch.sqlite").is_file()
    assert not (d / "monitor").exists()  # the monitor's own state stays in the demo's temporary folder

    j = run_cli("summary", "--data-dir", str(d), "--subject", "ana", "--format", "json")
    assert j.returncode == 0, j.stderr
    s = json.loads(j.stdout)
    assert s["status"] == "ok" and s["subject"] == "ana" and s["sensor"] == "demo-shin"
    assert s["sleep_window"]["start"] is not None and s["sleep_window"]["hours"] > 1
    assert s["episodes_total"] == sum(s["counts"].values()) > 0
    html = run_cli("summary", "--data-dir", str(d), "--subject", "ana", "--format", "html")
    assert html.returncode == 0 and "<html" in html.stdout.lower()


def test_demo_without_data_dir_leads_with_the_headline_and_suggests_data_dir():
    p = run_cli("demo", *SHORT, env=WIDE, timeout=400)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    head = out.index("In short:")
    assert head < out.index("Episodes during sleep") < out.index("Timeline")
    line = out[head:].splitlines()[0]
    assert "asleep" in line and "contraction" in line and "leg movement" in line
    assert "(clinical threshold > 15/h)" in line
    assert re.search(r"periodic-movement index \d+\.\d/h", line)
    assert re.search(r"Periodic leg movements: \d+, index \d+\.\d/h of sleep \(clinical threshold > 15/h\)", out)
    flat = _flat(out)
    assert "legwatch demo --data-dir DIR" in flat
    assert "use --format json or --format html" not in flat  # the store is gone: nothing to run it on
    assert "no sleep window" not in flat


def test_demo_refuses_a_night_too_short_for_a_sleep_window(tmp_path):
    for hours in ("0.5", "1", "2"):
        p = run_cli("demo", "--hours", hours, "--rate", "25", "--data-dir", str(tmp_path / "d"), timeout=60)
        assert p.returncode == 2, (hours, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr and p.stdout == ""
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and f"--hours {hours}" in lines[0] and f"--hours {MIN_HOURS:g} or more" in lines[0]
    assert not (tmp_path / "d").exists()  # refused before anything was written
