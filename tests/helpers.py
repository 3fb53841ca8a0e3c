"""Small helpers shared by tests: running the real CLI, generated recordings."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The real files other software wrote (``../shared/export-samples``; a worktree at /work/wtN also
#: finds them in /work/shared).
SAMPLES = ROOT.parent / "shared" / "export-samples"
if not SAMPLES.is_dir():
    SAMPLES = Path("/work/shared/export-samples")


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, check: bool = False):
    """Run ``python -m legwatch ARGS`` as a user would; returns CompletedProcess (text)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "legwatch", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"legwatch {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def run_on_terminal(args: list[str], env: dict[str, str], answer: bytes = b"", timeout: float = 60) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as its stdin, stdout and stderr; type ``answer`` at a
    ``[y/N]`` prompt. Returns the exit status and everything the terminal showed."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    full_env |= {"PYTHONPATH": str(ROOT), **env}
    main, sub = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "legwatch", *args], stdin=sub, stdout=sub, stderr=sub, env=full_env, cwd=ROOT
    )
    os.close(sub)
    out = b""
    deadline = time.monotonic() + timeout
    answered = not answer
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"[y/N]" in out:
                os.write(main, answer)
                answered = True
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(main)
    return code, out.decode(errors="replace")


def popen_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "legwatch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=ROOT,
    )


def assert_seeded(generate_night) -> None:
    """A night generator gives the same night for the same seed and another for another seed."""
    import numpy as np

    a = generate_night(3, hours=0.5, rate_hz=26.0)
    b = generate_night(3, hours=0.5, rate_hz=26.0)
    c = generate_night(4, hours=0.5, rate_hz=26.0)
    assert np.array_equal(a.t, b.t) and np.array_equal(a.xyz, b.xyz)
    assert a.events == b.events and a.confounders == b.confounders and a.params == b.params
    assert a.events != c.events and not np.array_equal(a.xyz[:1000], c.xyz[:1000])
