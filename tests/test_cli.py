"""The command line as a user meets it: help, wrong flags, missing files, one-line errors."""

import json

import pytest

from helpers import run_cli

SUBCOMMANDS = [
    "detect",
    "replay",
    "monitor",
    "demo",
    "collect",
    "scan",
    "log",
    "import",
    "summary",
    "correlate",
    "decode",
    "status",
]


def test_top_level_help_lists_every_subcommand():
    p = run_cli("--help", check=True)
    for sub in SUBCOMMANDS:
        assert sub in p.stdout


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_subcommand_help(sub):
    p = run_cli(sub, "--help", check=True)
    assert p.stdout.startswith("usage: legwatch " + sub)
    assert "--config" in p.stdout


def test_wrong_flag_is_a_usage_error():
    p = run_cli("detect", "--frobnicate", "x.csv")
    assert p.returncode == 2
    assert "unrecognized arguments: --frobnicate" in p.stderr


def test_missing_file_one_line(tmp_path):
    p = run_cli("detect", str(tmp_path / "missing.csv"))
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0
    assert "no such file" in p.stderr


def test_bad_csv_names_line(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("timestamp,ax,ay,az\n1,0,0,1\n2,0,x,1\n")
    p = run_cli("detect", str(f))
    assert p.returncode == 2
    assert ":3: ay is not a number" in p.stderr


def test_bad_config_key_named(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[influx]\ndatabase = 'x'\n")
    p = run_cli("summary", "--config", str(cfg))
    assert p.returncode == 2
    assert "unknown key 'influx.database'" in p.stderr


def test_replay_without_broker_is_one_line(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("timestamp,ax,ay,az\n1,0,0,1\n1.02,0,0,1\n")
    p = run_cli("replay", str(f), "--mqtt-url", "mqtt://127.0.0.1:1")
    assert p.returncode == 1
    assert "cannot reach MQTT broker at mqtt://127.0.0.1:1" in p.stderr
    assert p.stderr.strip().count("\n") == 0
    p = run_cli("replay", str(f), env={"LEGWATCH_MQTT_URL": "mqtt://u:hunter2@127.0.0.1:1"})
    assert p.returncode == 1 and "hunter2" not in p.stderr


def test_log_refuses_bad_entries_and_writes_nothing(tmp_path):
    d = str(tmp_path)
    for args in (["water", "lots"], ["water", "-1"], ["water", "0.5", "--at", "25:99"], ["bad name!"]):
        p = run_cli("log", *args, "--data-dir", d)
        assert p.returncode == 2, args
        assert p.stderr.strip().count("\n") == 0
    assert not (tmp_path / "legwatch.sqlite").exists()
    run_cli("log", "water", "0.5", "--at", "21:30", "--data-dir", d, check=True)
    run_cli("log", "medication", "statin", "--data-dir", d, check=True)
    from legwatch.storage.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "legwatch.sqlite")
    habits = store.query("habit")
    assert sorted(h.tags["habit"] for h in habits) == ["medication", "water"]
    water = next(h for h in habits if h.tags["habit"] == "water")
    assert water.fields["value"] == 0.5 and water.fields["unit"] == "l"
    med = next(h for h in habits if h.tags["habit"] == "medication")
    assert med.fields["name"] == "statin"


def test_decode_cli():
    # Polar compressed type-1 ACC frame from polar-ble-sdk AccDataTest.kt
    p = run_cli("decode", "polar", "02 65 00 00 00 00 00 00 00 81 F1 FF 14 00 F0 03 06 01 7B 0F 08", check=True)
    out = json.loads(p.stdout)
    assert out["samples"][0] == pytest.approx([-0.015, 0.020, 1.008])
    assert out["samples"][1] == pytest.approx([-0.020, 0.017, 1.008])
    p = run_cli("decode", "polar", "zz")
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0


def _one_line_error(p, command: str) -> str:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"legwatch {command}: error: "), p.stderr
    return lines[0]


def test_a_csv_of_only_a_header_without_newline_is_a_one_line_error(tmp_path):
    f = tmp_path / "one.csv"
    f.write_bytes(b"timestamp,ax,ay,az")  # no newline: the file is mapped, not read
    assert "no data rows" in _one_line_error(run_cli("detect", str(f)), "detect")


@pytest.mark.parametrize("where", ["a-file", "under-a-file", "cannot-be-made"])
def test_a_data_dir_that_cannot_be_a_folder_is_a_one_line_error(tmp_path, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    data_dir = {
        "a-file": blocker,
        "under-a-file": blocker / "sub",
        "cannot-be-made": "/proc/legwatch-test/data",
    }[where]
    line = _one_line_error(run_cli("log", "water", "0.5", "--data-dir", str(data_dir)), "log")
    assert f"data_dir {data_dir}" in line
    assert blocker.read_text() == "x"  # nothing changed


@pytest.mark.parametrize(
    ("name", "flags", "says"),
    [
        ("night.csv", ["--sensor", "bad id!"], "a sensor id is 1-64 of"),
        ("habits.csv", [], "the file name gives sensor id 'habits', a reserved word"),
        ("night.csv", ["--sensor", "summary"], "--sensor 'summary', a reserved word"),
    ],
)
def test_replay_refuses_a_bad_sensor_id_before_anything_else(tmp_path, name, flags, says):
    f = tmp_path / name
    f.write_text("timestamp,ax,ay,az\n1700000000.0,0,0,1\n1700000000.02,0,0,1\n")
    p = run_cli("replay", str(f), *flags, "--mqtt-url", "mqtt://127.0.0.1:1")  # no broker is needed to refuse
    assert says in _one_line_error(p, "replay")


def test_output_into_a_pipe_that_closes_early_is_no_traceback(tmp_path):
    import subprocess
    import sys

    from detector.synthetic import generate_night
    from helpers import ROOT

    night = generate_night(3, hours=1.0, rate_hz=26.0)
    f = tmp_path / "night.csv"
    with open(f, "w") as fh:
        fh.write("timestamp,ax,ay,az\n")
        for t, (x, y, z) in zip(night.t, night.xyz, strict=True):
            fh.write(f"{t:.4f},{x:.5f},{y:.5f},{z:.5f}\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    for fmt in ("text", "json"):
        # `true` leaves at once, long before detect writes: every write meets a closed pipe
        cmd = f"{sys.executable} -m legwatch detect {f} --format {fmt} | true; echo ${{PIPESTATUS[0]}}"
        p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, cwd=ROOT)
        assert p.stdout.strip() == "1", (p.stdout, p.stderr)
        assert p.stderr == "", p.stderr
