"""Run one command and write its wall time, CPU time, peak RSS and exit code as JSON.

    python benchmarks/measure.py OUT.json COMMAND [ARG ...]

``run.py`` times every whole process through this small interpreter instead of forking the
command itself: Linux counts the memory of the process a command was forked from (the benchmark,
with a night loaded) in that command's peak RSS, so the figure must come from a small parent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(out: str, cmd: list[str]) -> int:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    doc = {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss * 1024, "rc": rc}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
