#!/usr/bin/env python3
"""Install every runtime dependency at the floor pyproject.toml allows, and run the tests that use it.

    python scripts/check_floors.py                      # default test selection (see TESTS)
    python scripts/check_floors.py tests/test_cli.py    # other tests
    python scripts/check_floors.py --keep /tmp/floors   # keep the virtualenv there

A throwaway virtualenv gets ``name==floor`` for each ``name>=floor`` in ``[project].dependencies``
(all at once, so pip must find them compatible with each other), then legwatch itself without
dependencies and the test tools at their current versions; then the tests run in it. Where the
package index has no release exactly at a floor, the lowest release above it is used and the table
says so (the floor itself is then unproven). Exit status: the tests' (2 when the floors do not
install together). Standard library only; needs the index pip is configured with.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Tests that exercise the runtime dependencies: bleak and bleak-retry-connector (collector),
#: paho-mqtt (collector, monitor), numpy/scipy (profiles, detector), rich and matplotlib (summary),
#: amqtt (demo), platformdirs (the default data directory).
TESTS = [
    "tests/test_collector.py",
    "tests/test_collector_units.py",
    "tests/test_profiles.py",
    "tests/test_peer_vectors.py",
    "tests/test_sensor_health.py",
    "tests/test_summary_sensor_health.py",
    "tests/test_demo.py",
]
TEST_TOOLS = ["pytest", "pytest-timeout", "hypothesis", "pyyaml", "influxdb-client"]


def floors() -> list[tuple[str, str]]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    out = []
    for dep in deps:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", dep)
        if not m:
            raise SystemExit(f"check_floors: {dep!r} has no plain >= floor")
        out.append((m.group(1), m.group(2)))
    return out


def _key(version: str) -> tuple:
    parts = [int(p) if p.isdigit() else p for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # 1.26 == 1.26.0
        parts.pop()
    return tuple(parts)


def available(pip: list[str], name: str) -> list[str]:
    done = subprocess.run([*pip, "index", "versions", name], capture_output=True, text=True)
    m = re.search(r"Available versions:\s*(.*)", done.stdout)
    return [v.strip() for v in m.group(1).split(",")] if m else []


def pick(pip: list[str], name: str, floor: str) -> str:
    """The floor if the index has it, else the lowest release above it."""
    versions = available(pip, name)
    same = [v for v in versions if re.fullmatch(r"[0-9.]+", v) and _key(v) == _key(floor)]
    if same or not versions:
        return same[0] if same else floor
    above = sorted((v for v in versions if re.fullmatch(r"[0-9.]+", v) and _key(v) >= _key(floor)), key=_key)
    return above[0] if above else floor


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tests", nargs="*", default=TESTS, help="test files to run (default: %(default)s)")
    ap.add_argument("--keep", type=Path, help="create the virtualenv here and keep it")
    args = ap.parse_args()
    env_dir = args.keep or Path(tempfile.mkdtemp(prefix="legwatch-floors-"))
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    chosen = [(name, floor, pick(pip, name, floor)) for name, floor in floors()]
    pins = [f"{name}=={version}" for name, _, version in chosen]
    print("installing", " ".join(pins), flush=True)
    if subprocess.run([*pip, "install", "-q", *pins]).returncode:
        print("check_floors: the floors do not install together", file=sys.stderr)
        return 2
    subprocess.run([*pip, "install", "-q", "--no-deps", "-e", str(ROOT)], check=True)
    subprocess.run([*pip, "install", "-q", *TEST_TOOLS], check=True)
    frozen = subprocess.run([*pip, "freeze"], capture_output=True, text=True, check=True).stdout
    pairs = (line.split("==", 1) for line in frozen.splitlines() if "==" in line)
    installed = {name.lower().replace("_", "-"): version for name, version in pairs}
    print(f"{'package':24} {'floor':10} {'installed':10} note")
    for name, floor, version in chosen:
        got = installed.get(name.lower().replace("_", "-"), "?")
        if got != "?" and re.fullmatch(r"[0-9.]+", got) and _key(got) == _key(floor):
            note = ""
        else:
            note = "not on the index: lowest above" if _key(version) != _key(floor) else "pip changed it"
        print(f"{name:24} {floor:10} {got:10} {note}")
    try:
        tests = subprocess.run([python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args.tests], cwd=ROOT)
    finally:
        if not args.keep:
            shutil.rmtree(env_dir, ignore_errors=True)
    return tests.returncode


if __name__ == "__main__":
    sys.exit(main())
