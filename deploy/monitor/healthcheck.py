#!/usr/bin/env python3
"""Container health check for ``legwatch monitor`` (the Dockerfile's HEALTHCHECK runs this).

What it checks, and nothing more: a ``legwatch monitor`` process is alive in this container AND that
process itself holds an ESTABLISHED TCP connection to the broker's port (taken from
``LEGWATCH_MQTT_URL``; 1883, or 8883 for mqtts://). It reads only /proc: no MQTT session of its own,
no broker login, no network traffic, so it is cheap and cannot disturb the monitor's session.

What it does not check: that the MQTT session is subscribed, that messages are flowing, or that
InfluxDB accepts writes (the monitor holds results while InfluxDB is down, by design).

Exit status 0 = healthy, 1 = unhealthy (with a one-line reason on stdout, shown by
``docker inspect``). Standard library only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ESTABLISHED = "01"


def broker_port(url: str) -> int:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port:
        return port
    return 8883 if parts.scheme in ("mqtts", "ssl") else 1883


def is_monitor(argv: list[str]) -> bool:
    """``legwatch monitor …``, ``python /usr/local/bin/legwatch monitor …`` or ``python -m legwatch monitor``."""
    for i, arg in enumerate(argv):
        named = os.path.basename(arg) == "legwatch" or (arg == "legwatch" and i > 0 and argv[i - 1] == "-m")
        if named and "monitor" in argv[i + 1 :]:
            return True
    return False


def monitor_pids(proc: Path) -> list[int]:
    me = os.getpid()
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if is_monitor([a.decode(errors="replace") for a in argv if a]):
            pids.append(int(entry.name))
    return pids


def socket_inodes(proc: Path, pid: int) -> set[str]:
    inodes = set()
    try:
        fds = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def established_to_port(proc: Path, pid: int, port: int) -> set[str]:
    """Inodes of ESTABLISHED TCP sockets (IPv4 and IPv6) in ``pid``'s network namespace to ``port``."""
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10:
                continue
            remote, state, inode = cols[2], cols[3], cols[9]
            if state == ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port:
                found.add(inode)
    return found


def check(url: str, proc: Path = Path("/proc")) -> tuple[bool, str]:
    port = broker_port(url)
    pids = monitor_pids(proc)
    if not pids:
        return False, "no 'legwatch monitor' process is running"
    for pid in pids:
        if socket_inodes(proc, pid) & established_to_port(proc, pid, port):
            return True, f"legwatch monitor (pid {pid}) is connected to the broker port {port}"
    return False, f"legwatch monitor is running but has no TCP connection to the broker port {port}"


def main() -> int:
    ok, message = check(os.environ.get("LEGWATCH_MQTT_URL", ""))
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
