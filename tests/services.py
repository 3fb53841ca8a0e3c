"""Real Mosquitto and InfluxDB 1.x servers for the tests, on free loopback ports in temporary directories.

Each service runs in its own process group and keeps its working directory across ``stop()``,
``kill()`` and ``restart()``, on the same port, so tests can take a server down and bring it back
with its data. ``stop()`` is a clean shutdown (SIGTERM: Mosquitto saves its persistence file);
``kill()`` is SIGKILL (Mosquitto then loses what arrived since its last autosave, at most ~1 s;
InfluxDB replays its WAL). Every started service is also killed at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

__all__ = [
    "DefaultMosquitto",
    "InfluxService",
    "MosquittoService",
    "ServiceError",
    "find_binary",
    "free_port",
]

_RUNNING: weakref.WeakSet[_Service] = weakref.WeakSet()


class ServiceError(RuntimeError):
    """A test service failed to start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


REPO_MOSQUITTO_DIR = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"


def find_binary(name: str, *extra_dirs: str) -> str | None:
    """``name`` on PATH or in ``extra_dirs`` (Debian puts mosquitto in /usr/sbin)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *extra_dirs])
    return shutil.which(name, path=path)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class _Service:
    """A server process in its own process group, with a config and a log in ``workdir``."""

    name = "service"
    binary_name = ""
    debian_package = ""
    start_timeout = 20.0

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *, binary: str | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"legwatch-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.config_path = self.workdir / f"{self.name}.conf"
        found = binary or find_binary(self.binary_name, "/usr/sbin", "/usr/local/sbin")
        if found is None:
            raise FileNotFoundError(f"{self.binary_name} not found: install the Debian package {self.debian_package}")
        self.binary = found
        self.process: subprocess.Popen[bytes] | None = None

    # -- to override ------------------------------------------------------------------------------

    def _write_config(self) -> None:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        return _port_open(self.host, self.port)

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> _Service:
        """Start (if not running) and return once the server answers."""
        if self.running:
            return self
        self._write_config()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: teardown can kill all of it
            )
        _RUNNING.add(self)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ServiceError(f"{self.name} exited with {code} on start:\n{self.log_tail()}")
            if self._ready():
                return self
            time.sleep(0.05)
        self.kill()
        raise ServiceError(f"{self.name} did not answer on port {self.port} in time:\n{self.log_tail()}")

    def _signal_group(self, sig: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def _wait_port_closed(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while _port_open(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Clean shutdown (SIGTERM), SIGKILL if it takes longer than ``timeout``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(5)
        self._signal_group(signal.SIGKILL)  # stragglers in the group
        self.process = None
        _RUNNING.discard(self)
        self._wait_port_closed()

    def kill(self) -> None:
        """Crash the server (SIGKILL to its process group)."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored, but still
            self.process.wait(5)
        self.process = None
        _RUNNING.discard(self)
        self._wait_port_closed()

    def restart(self, *, hard: bool = False) -> _Service:
        """Stop (or ``hard``: kill) and start again on the same port with the same data."""
        if hard:
            self.kill()
        else:
            self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Kill the server and remove the working directory if this object created it."""
        self.kill()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> _Service:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__}(port={self.port}, {state}, workdir={str(self.workdir)!r})"


class MosquittoService(_Service):
    """Mosquitto 2 with persistence on, large queues, anonymous access on 127.0.0.1:``port``."""

    name = "mosquitto"
    binary_name = "mosquitto"
    debian_package = "mosquitto"
    start_timeout = 10.0

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    #: what the project's deploy/ sets beyond Mosquitto's defaults (a Debian-default broker: none)
    limits: tuple[str, ...] = ("autosave_interval 1", "max_queued_messages 100000", "max_inflight_messages 100")

    @property
    def persistence_dir(self) -> Path:
        return self.workdir / "data"

    def _write_config(self) -> None:
        self.persistence_dir.mkdir(exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.persistence_dir}/",
            *self.limits,
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it switches to user "mosquitto" and cannot write here
        self.config_path.write_text("\n".join(lines) + "\n")

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]


class DefaultMosquitto(MosquittoService):
    """Mosquitto as Debian's package configures it: persistence on (its autosave at the default 30
    minutes, so a crash loses what arrived since it started), every limit at its default
    (``max_queued_messages 1000``, ``max_inflight_messages 20``), anonymous on 127.0.0.1:``port``."""

    name = "mosquitto-default"
    limits = ()


class RepoMosquitto(MosquittoService):
    """The repository's ``deploy/mosquitto`` conf and acl, with only the port and file locations
    moved here, and a password file holding ``users`` (name -> password)."""

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        super().__init__(workdir)
        self.users = users

    def listener_extra(self) -> list[str]:
        """Settings that belong to the listener (a subclass adds TLS here)."""
        return []

    def _write_config(self) -> None:
        self.persistence_dir.mkdir(exist_ok=True)
        passwd = self.workdir / "passwd"
        if not passwd.exists():
            tool = find_binary("mosquitto_passwd", "/usr/bin", "/usr/sbin")
            assert tool, "mosquitto_passwd not found (Debian package mosquitto)"
            for i, (user, password) in enumerate(self.users.items()):
                subprocess.run([tool, *(["-c"] if i == 0 else []), "-b", str(passwd), user, password], check=True)
            passwd.chmod(0o600)
        moved = {
            "listener": f"{self.port} {self.host}",
            "password_file": str(passwd),
            "acl_file": str(REPO_MOSQUITTO_DIR / "acl"),
            "persistence_location": f"{self.persistence_dir}/",
            "log_dest": f"file {self.log_path}",
        }
        lines = []
        for line in (REPO_MOSQUITTO_DIR / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
            key = line.split(" ", 1)[0]
            lines.append(f"{key} {moved[key]}" if key in moved else line)
            if key == "listener":
                lines += self.listener_extra()
        if os.geteuid() == 0:
            lines.append("user root")
        self.config_path.write_text("\n".join(lines) + "\n")


class InfluxService(_Service):
    """InfluxDB 1.x (``influxd``) with HTTP on 127.0.0.1:``port`` and data under ``workdir``."""

    name = "influxd"
    binary_name = "influxd"
    debian_package = "influxdb"
    start_timeout = 30.0

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *, binary: str | None = None) -> None:
        super().__init__(workdir, binary=binary)
        self.rpc_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _write_config(self) -> None:
        d = self.workdir
        self.config_path.write_text(
            f"""reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{d / "meta"}"
  logging-enabled = false

[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  wal-fsync-delay = "0s"
  query-log-enabled = false
  trace-logging-enabled = false

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false

[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""
        )

    def _command(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.config_path)]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as response:
                return response.status == 204
        except (urllib.error.URLError, OSError):
            return False


@atexit.register
def _kill_leftovers() -> None:
    for service in list(_RUNNING):
        service.kill()
