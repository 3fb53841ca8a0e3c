"""Who may do what, and secrets kept secret: real Mosquitto with passwords, a TLS listener and the
repository's ACL; `legwatch monitor`, `replay` and `detect` run as a user would.

- MQTT over TLS (``mqtts://`` with ``LEGWATCH_MQTT_CA_FILE``, a throwaway CA made with openssl) and
  passwords (percent-encoded in the URL) carry a night from `legwatch replay` (user ``shin-left``)
  through the repository's ``deploy/mosquitto/mosquitto.conf`` and ``acl`` into `legwatch monitor`
  (user ``monitor``); its episodes equal offline detection.
- A sensor user may not publish as another sensor: `legwatch replay` says so and exits 1.
- A wrong password, a certificate the client cannot verify, plain MQTT on the TLS port: one-line
  errors, exit 1.
- The InfluxDB token travels as ``Authorization: Token …`` (1.x username/password as Basic), and no
  secret (MQTT password, token, InfluxDB password; raw, percent-encoded or in Basic form) appears in
  any output of `monitor`, `replay` and `detect` run with ``-vv`` against a broker that is down or
  refuses, and an InfluxDB that is down or refuses and even echoes the credentials in its errors.
- The monitor runs as an unprivileged user on a data directory that user owns.

(What each user may publish and read under the ACL is tested peer by peer in test_compose.py.)
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_faults import Cli, cli_env, wait_for

from detector.synthetic import generate_night, write_csv
from helpers import ROOT, popen_cli, run_cli
from legwatch.storage.schema import episode_from_point
from legwatch.storage.sqlite import SqliteStore
from services import RepoMosquitto, free_port

MOSQUITTO_DIR = ROOT / "deploy" / "mosquitto"
#: Passwords with characters a URL must percent-encode.
USERS = {"monitor": "m0n/it:or%pw#1", "shin-left": "l3ft@sens?or", "homeassistant": "h4-pw"}
TOKEN = "tok-SECRET-4f1d9e77a2"
INFLUX_PASSWORD = "influx-PW-SECRET-88c1"


def quoted(user: str) -> str:
    return urllib.parse.quote(USERS[user], safe="")


def secret_forms() -> list[str]:
    """Every form in which a secret could leak."""
    out = []
    for s in [*USERS.values(), TOKEN, INFLUX_PASSWORD]:
        out += [s, urllib.parse.quote(s, safe=""), urllib.parse.quote(s)]
    out.append(base64.b64encode(f"admin:{INFLUX_PASSWORD}".encode()).decode())
    return sorted(set(out))


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for s in secret_forms():
            assert s not in text, f"secret {s[:3]}… leaked in:\n{text[-3000:]}"


# -- a throwaway CA and a broker with passwords, TLS and the repository's ACL ----------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl not found", pytrace=False)
        pytest.skip("openssl not found")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=legwatch test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    # a second CA the client does not trust
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt", "-days", "2",
        "-subj", "/CN=someone else", "-addext", "basicConstraints=critical,CA:TRUE")  # fmt: skip
    return {name: d / name for name in ("ca.crt", "server.crt", "server.key", "other.crt")}


class SecureMosquitto(RepoMosquitto):
    """The repository's mosquitto.conf and acl with a TLS listener and a password file of ``USERS``."""

    def __init__(self, workdir: Path, pki: dict[str, Path]) -> None:
        super().__init__(workdir, USERS)
        self.pki = pki

    @property
    def url(self) -> str:
        return f"mqtts://{self.host}:{self.port}"

    def user_url(self, user: str, password: str | None = None) -> str:
        pw = urllib.parse.quote(password, safe="") if password is not None else quoted(user)
        return f"mqtts://{user}:{pw}@{self.host}:{self.port}"

    def listener_extra(self) -> list[str]:
        return [
            f"cafile {self.pki['ca.crt']}",
            f"certfile {self.pki['server.crt']}",
            f"keyfile {self.pki['server.key']}",
        ]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[SecureMosquitto]:
    try:
        service = SecureMosquitto(tmp_path_factory.mktemp("secure-mosquitto"), pki)
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(str(exc))
    service.start()
    yield service
    service.cleanup()


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple]]:
    path = tmp_path_factory.mktemp("secure-night") / "night.csv"
    write_csv(generate_night(4, hours=0.25, rate_hz=26.0), path)
    offline = json.loads(run_cli("detect", str(path), "--format", "json", check=True).stdout)
    return path, sorted((round(e["start"], 3), e["kind"], e["periodic"], e["in_sleep"]) for e in offline["episodes"])


def stored_episodes(db: Path, sensor: str) -> list[tuple]:
    store = SqliteStore(db)
    try:
        return sorted(
            (round(e.start, 3), e.kind, e.periodic, e.in_sleep)
            for e in map(episode_from_point, store.query("episode", tags={"sensor": sensor}))
        )
    finally:
        store.close()


@pytest.fixture
def clis() -> Iterator[list[Cli]]:
    started: list[Cli] = []
    yield started
    for c in started:
        c.close()


# -- TLS, passwords, ACL -----------------------------------------------------------------------


def test_night_over_tls_with_passwords_through_the_repository_acl(
    broker: SecureMosquitto, pki, night, tmp_path: Path, clis: list[Cli]
) -> None:
    path, offline = night
    ca = str(pki["ca.crt"])
    mon_env = cli_env(
        LEGWATCH_MQTT_URL=broker.user_url("monitor"),
        LEGWATCH_MQTT_CA_FILE=ca,
        LEGWATCH_MQTT_CLIENT_ID=f"monitor-{uuid.uuid4().hex[:6]}",
        LEGWATCH_DATA_DIR=str(tmp_path / "data"),
    )
    mon = Cli(tmp_path, "monitor", ["monitor", "--exit-after-nights", "1", "-vv"], mon_env)
    clis.append(mon)
    mon.wait_log("monitor subscribed to")
    rep_env = cli_env(LEGWATCH_MQTT_URL=broker.user_url("shin-left"), LEGWATCH_MQTT_CA_FILE=ca)
    rep = run_cli("replay", str(path), "--sensor", "shin-left", "-vv", env=rep_env)
    assert rep.returncode == 0, rep.stderr
    # the ACL lets the monitor acknowledge and the sensor read its acknowledgements: end to end
    assert "the monitor confirmed storing all" in rep.stderr and "no monitor acknowledged" not in rep.stderr
    assert mon.wait(60) == 0, mon.stderr[-3000:]
    stats = mon.stats()
    assert stats["nights"] == 1 and not stats["rejected"] and stats["stats"]["summaries"] == 1, stats
    assert stored_episodes(tmp_path / "data" / "legwatch.sqlite", "shin-left") == offline
    assert_no_secret(mon.stderr, mon.stdout, rep.stderr, rep.stdout)
    assert "mqtts://monitor:***@127.0.0.1" in mon.stderr  # the URL is shown, its password never


def test_a_sensor_may_publish_only_as_itself(broker: SecureMosquitto, pki, night) -> None:
    path, _ = night
    env = cli_env(LEGWATCH_MQTT_URL=broker.user_url("shin-left"), LEGWATCH_MQTT_CA_FILE=str(pki["ca.crt"]))
    rep = run_cli("replay", str(path), "--sensor", "shin-right", env=env, timeout=60)
    assert rep.returncode == 1, rep.stdout + rep.stderr
    (line,) = rep.stderr.strip().splitlines()
    assert "refused" in line and "Not authorized" in line and "legwatch/shin-right/samples" in line, line
    assert "published" not in rep.stdout
    assert_no_secret(rep.stdout, rep.stderr)


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("wrong password", "refused the connection"),
        ("untrusted certificate", "CERTIFICATE_VERIFY_FAILED"),
        ("plain MQTT on the TLS port", "closed the connection without answering; it may expect TLS"),
        ("missing CA file", "mqtt.ca_file: no such file"),
    ],
)
def test_refused_connections_are_one_line_errors(
    broker: SecureMosquitto, pki, night, tmp_path: Path, case, needle
) -> None:
    url, ca = broker.user_url("monitor"), str(pki["ca.crt"])
    if case == "wrong password":
        url = broker.user_url("monitor", USERS["shin-left"])
    elif case == "untrusted certificate":
        ca = str(pki["other.crt"])
    elif case == "plain MQTT on the TLS port":
        url = url.replace("mqtts://", "mqtt://")
    else:
        ca = str(tmp_path / "nope.crt")
    env = cli_env(LEGWATCH_MQTT_URL=url, LEGWATCH_MQTT_CA_FILE=ca, LEGWATCH_DATA_DIR=str(tmp_path / "data"))
    for args in (["monitor"], ["replay", str(night[0]), "--sensor", "shin-left"]):
        started = time.monotonic()
        p = run_cli(*args, env=env, timeout=60)
        assert time.monotonic() - started < 8, "waited for a broker that had already said no"
        assert p.returncode == (2 if case == "missing CA file" else 1), (case, args, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (case, args, p.stderr)
        assert_no_secret(p.stdout, p.stderr)


# -- secrets never in any output -------------------------------------------------------------------


class EchoingInflux(http.server.ThreadingHTTPServer):
    """A stand-in InfluxDB that records each request's Authorization header and refuses every write
    with an error that quotes the credentials back (as some proxies and servers do)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                auth = self.headers.get("Authorization", "")
                outer.seen.append((self.path.split("?")[0], auth))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path.startswith("/write"):
                    body = json.dumps({"error": f"authorization failed for {auth!r} ({self.path})"}).encode()
                    self.send_response(401)
                else:
                    body = json.dumps({"results": [{"statement_id": 0}]}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.mark.parametrize("auth", ["token", "password"])
def test_influx_credentials_are_sent_as_the_api_wants_and_never_logged(
    broker: SecureMosquitto, pki, night, tmp_path: Path, clis: list[Cli], auth: str
) -> None:
    """The monitor stores into an InfluxDB that refuses every write and quotes the credentials in
    its errors: the results wait in the outbox, the logs say why, and show no secret."""
    path, _ = night
    influx = EchoingInflux()
    try:
        env = cli_env(
            LEGWATCH_MQTT_URL=broker.user_url("monitor"),
            LEGWATCH_MQTT_CA_FILE=str(pki["ca.crt"]),
            LEGWATCH_MQTT_CLIENT_ID=f"monitor-{uuid.uuid4().hex[:6]}",
            LEGWATCH_DATA_DIR=str(tmp_path / "data"),
            LEGWATCH_INFLUX_DB="legwatch",
        )
        if auth == "token":
            env.update(LEGWATCH_INFLUX_URL=influx.url, LEGWATCH_INFLUX_TOKEN=TOKEN)
        else:
            env.update(LEGWATCH_INFLUX_URL=influx.url, LEGWATCH_INFLUX_USERNAME="admin")
            env.update(LEGWATCH_INFLUX_PASSWORD=INFLUX_PASSWORD)
        mon = Cli(tmp_path, "monitor", ["monitor", "--exit-after-nights", "1", "-vv"], env)
        clis.append(mon)
        mon.wait_log("monitor subscribed to")
        rep_env = cli_env(LEGWATCH_MQTT_URL=broker.user_url("shin-left"), LEGWATCH_MQTT_CA_FILE=str(pki["ca.crt"]))
        assert run_cli("replay", str(path), "--sensor", "shin-left", env=rep_env).returncode == 0
        wait_for(lambda: "night of me/shin-left stored" in mon.stderr, 60, "the night (held in the outbox)")
        wait_for(lambda: "holding" in mon.stderr and "refused" in mon.stderr, 30, "the monitor saying what it holds")
        mon.proc.send_signal(signal.SIGINT)
        assert mon.wait(30) == 0, mon.stderr[-3000:]
    finally:
        influx.shutdown()
    want = (
        f"Token {TOKEN}"
        if auth == "token"
        else "Basic " + base64.b64encode(f"admin:{INFLUX_PASSWORD}".encode()).decode()
    )
    assert influx.seen and {a for _, a in influx.seen} == {want}
    assert any(p == "/write" for p, _ in influx.seen)
    assert "HTTP 401" in mon.stderr and "***" in mon.stderr  # the echoed credentials, scrubbed
    assert_no_secret(mon.stderr, mon.stdout)


def test_no_secret_in_any_output_when_broker_or_influxdb_is_down_or_refuses(
    broker: SecureMosquitto, pki, night, tmp_path: Path
) -> None:
    path, _ = night
    closed = free_port()
    secrets_env = {
        "LEGWATCH_INFLUX_TOKEN": TOKEN,
        "LEGWATCH_INFLUX_USERNAME": "admin",
        "LEGWATCH_INFLUX_PASSWORD": INFLUX_PASSWORD,
        "LEGWATCH_DATA_DIR": str(tmp_path / "data"),
        "LEGWATCH_MQTT_CA_FILE": str(pki["ca.crt"]),
    }
    mqtt_down = f"mqtt://monitor:{quoted('monitor')}@127.0.0.1:{closed}"
    mqtt_refusing = broker.user_url("monitor", USERS["homeassistant"])
    influx_down = f"http://admin:{urllib.parse.quote(INFLUX_PASSWORD, safe='')}@127.0.0.1:{closed}"
    runs = [
        (["monitor", "-vv"], {"LEGWATCH_MQTT_URL": mqtt_down}),
        (["monitor", "-vv"], {"LEGWATCH_MQTT_URL": mqtt_refusing}),
        (["replay", str(path), "-vv"], {"LEGWATCH_MQTT_URL": mqtt_down}),
        (["replay", str(path), "-vv"], {"LEGWATCH_MQTT_URL": mqtt_refusing}),
        (
            ["detect", str(path), "-vv", "--format", "json"],
            {"LEGWATCH_MQTT_URL": mqtt_down, "LEGWATCH_INFLUX_URL": influx_down},
        ),
        # a password with an unencoded "/": a URL parser reads part of it as the path
        (["monitor", "-vv"], {"LEGWATCH_MQTT_URL": f"mqtt://monitor:{USERS['monitor']}@127.0.0.1:{closed}"}),
        (["replay", str(path), "-vv"], {"LEGWATCH_MQTT_URL": f"mqtt://shin-left:{USERS['shin-left']}@127.0.0.1:1"}),
    ]
    for args, extra in runs:
        p = run_cli(*args, env=cli_env(**secrets_env, **extra), timeout=60)
        assert_no_secret(p.stdout, p.stderr)
        if args[0] == "detect":
            assert p.returncode == 0 and json.loads(p.stdout)["episodes"]
        else:
            assert p.returncode in (1, 2), (args, p.stderr)
            assert p.stderr.strip().splitlines()[-1].startswith(f"legwatch {args[0]}: error:"), p.stderr
    # InfluxDB down when the monitor starts: it starts anyway (results wait in its outbox) and says so
    env = cli_env(**secrets_env, LEGWATCH_MQTT_URL=broker.user_url("monitor"), LEGWATCH_INFLUX_URL=influx_down)
    mon = popen_cli("monitor", "-vv", env=env)
    try:
        time.sleep(4)
        assert mon.poll() is None, mon.stderr.read() if mon.stderr else ""
    finally:
        mon.terminate()
        out, err = mon.communicate(timeout=30)
    assert "InfluxDB is not reachable yet" in err, err
    assert_no_secret(out, err)


# -- not root ------------------------------------------------------------------------------------


def test_monitor_runs_as_an_unprivileged_user(mosquitto, night, tmp_path: Path, clis: list[Cli]) -> None:
    logs = tmp_path  # written by this (root) process; the monitor only inherits the open files
    path, offline = night
    data = Path(tempfile.mkdtemp(prefix="legwatch-nobody-"))  # not under root's private tmp_path
    try:
        prefix: list[str] = []
        if os.geteuid() == 0:
            setpriv, runuser = shutil.which("setpriv"), shutil.which("runuser")
            if setpriv:
                prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
            elif runuser:
                prefix = [runuser, "-u", "nobody", "--"]
            else:
                pytest.skip("running as root and neither setpriv nor runuser is there to drop privileges")
            os.chown(data, 65534, 65534)
        data.chmod(0o700)
        env = cli_env(
            LEGWATCH_MQTT_URL=mosquitto.url,
            LEGWATCH_MQTT_TOPIC_PREFIX=f"lwnobody{uuid.uuid4().hex[:6]}",
            LEGWATCH_MQTT_CLIENT_ID=f"nobody-{uuid.uuid4().hex[:6]}",
            LEGWATCH_DATA_DIR=str(data),
            HOME=str(data),
        )
        mon = Cli(logs, "monitor", ["monitor", "--exit-after-nights", "1", "-v"], env, wrap=prefix, cwd="/")
        clis.append(mon)
        mon.wait_log("monitor subscribed to")
        uid = int(Path(f"/proc/{mon.proc.pid}/status").read_text().split("Uid:")[1].split()[0])
        assert uid != 0
        rep_env = {k: env[k] for k in ("LEGWATCH_MQTT_URL", "LEGWATCH_MQTT_TOPIC_PREFIX")}
        assert run_cli("replay", str(path), "--sensor", "shin-nobody", env=rep_env).returncode == 0
        assert mon.wait(60) == 0, mon.stderr[-3000:]
        owners = {p.stat().st_uid for p in data.rglob("*")}
        assert owners == {uid}, owners
        assert stored_episodes(data / "legwatch.sqlite", "shin-nobody") == offline
    finally:
        shutil.rmtree(data, ignore_errors=True)
