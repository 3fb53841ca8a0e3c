"""The home stack: docker-compose.yml, Dockerfile, Mosquitto and Grafana provisioning.

There is no Docker engine here, so the containers themselves are checked by structure: the files
parse, and they reference each other consistently (service names in URLs, volumes, mounts and the
paths provisioning expects, every ${VAR} documented in .env.example, the datasource uid, ports on
${LEGWATCH_BIND:-127.0.0.1}). What can run here runs for real: the repository's mosquitto.conf and
ACL in a real Mosquitto with real users (who may publish and subscribe where), the monitor's
environment through legwatch's own configuration loader, and the monitor's container health check
against a real ``legwatch monitor`` connected to that broker.
"""

from __future__ import annotations

import fnmatch
import json
import os
import queue
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from legwatch.contracts.config import KEYS, load_config
from services import RepoMosquitto

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MOSQUITTO_DIR = ROOT / "deploy" / "mosquitto"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
HEALTHCHECK = ROOT / "deploy" / "monitor" / "healthcheck.py"
DS_UID = "legwatch-influx"
BIND = "${LEGWATCH_BIND:-127.0.0.1}"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}
COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# -- helpers --------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env_example() -> dict[str, str]:
    """KEY=VALUE lines of .env.example (comments and blank lines skipped)."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=VALUE: {line!r}"
        values[key.strip()] = value.strip()
    return values


def filled_env() -> dict[str, str]:
    """.env.example as a user would fill it in: every empty (required) value gets a placeholder."""
    return {k: v or f"test-{k.lower().replace('_', '-')}" for k, v in env_example().items()}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution (the forms this file uses), against ``env``."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise AssertionError(f"${{{name}}} is required: {arg}")
            return value
        return value or ""

    return COMPOSE_VAR.sub(sub, text)


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def resolved_env(name: str) -> dict[str, str]:
    env = filled_env()
    return {k: interpolate(v, env) for k, v in service_env(compose()["services"][name]).items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) for each short-syntax volume entry."""
    out = []
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), "use the short volume syntax source:target[:ro]"
        parts = entry.split(":")
        out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


def is_named(source: str) -> bool:
    return not source.startswith((".", "/", "~", "$"))


def mount_for(service: dict[str, Any], container_path: str) -> tuple[str, str, bool]:
    """The mount that holds ``container_path`` (the deepest one)."""
    best = None
    for source, target, ro in mounts(service):
        inside = container_path == target or container_path.startswith(target.rstrip("/") + "/")
        if inside and (best is None or len(target) > len(best[1])):
            best = (source, target, ro)
    assert best is not None, f"{container_path} is not on any volume of the service"
    return best


def conf_directives(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, []).append(value.strip())
    return out


# -- compose file ---------------------------------------------------------------------------------


def test_compose_has_the_four_services_on_the_agreed_images() -> None:
    services = compose()["services"]
    assert set(services) == {"mosquitto", "influxdb", "grafana", "monitor"}
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["influxdb"]["image"].startswith("influxdb:2.7")
    assert services["grafana"]["image"].startswith("grafana/grafana-oss:")
    assert services["grafana"]["image"] != "grafana/grafana-oss:latest"
    assert services["monitor"]["build"] in (".", {"context": "."})
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name


def test_every_compose_variable_is_in_env_example_and_required_secrets_have_no_default() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    used = {m.group(1): m.group(2) for m in COMPOSE_VAR.finditer(text)}
    documented = env_example()
    assert set(used) <= set(documented), f"missing from .env.example: {sorted(set(used) - set(documented))}"
    assert set(documented) <= set(used), f"unused in docker-compose.yml: {sorted(set(documented) - set(used))}"
    secrets = {"MONITOR_MQTT_PASSWORD", "INFLUXDB_ADMIN_PASSWORD", "INFLUXDB_ADMIN_TOKEN", "GRAFANA_ADMIN_PASSWORD"}
    for name in secrets:
        assert used[name] == ":?", f"{name} must be required (${{{name}:?…}}), never defaulted"
        assert documented[name] == "", f".env.example must leave {name} empty for the user to choose"
    # Every variable is explained by a comment somewhere above it.
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert sum(1 for line in lines if line.startswith("#")) >= len(documented) // 2


def test_compose_interpolates_with_a_filled_in_env_and_refuses_a_missing_secret() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    resolved = yaml.safe_load(interpolate(text, filled_env()))
    assert "${" not in json.dumps(resolved)
    empty = {k: v for k, v in filled_env().items() if k != "GRAFANA_ADMIN_PASSWORD"}
    with pytest.raises(AssertionError, match="GRAFANA_ADMIN_PASSWORD"):
        interpolate(text, empty)


def test_published_ports_listen_on_legwatch_bind_defaulting_to_loopback() -> None:
    services = compose()["services"]
    published = []
    for name, service in services.items():
        for entry in service.get("ports", []):
            assert isinstance(entry, str), f"{name}: use the short port syntax"
            assert entry.startswith(BIND + ":"), f"{name}: port {entry!r} not bound to {BIND}"
            published.append((name, int(entry.rsplit(":", 1)[1])))
    assert sorted(published) == [("grafana", 3000), ("influxdb", 8086), ("mosquitto", 1883)]
    assert "ports" not in services["monitor"]
    assert env_example()["LEGWATCH_BIND"] == "127.0.0.1"


def test_every_named_volume_is_declared_and_every_declared_volume_is_used() -> None:
    doc = compose()
    declared = set(doc.get("volumes") or {})
    used = {source for service in doc["services"].values() for source, _, _ in mounts(service) if is_named(source)}
    assert used <= declared, f"undeclared volumes: {sorted(used - declared)}"
    assert declared <= used, f"declared but unused volumes: {sorted(declared - used)}"


def test_bind_mounts_exist_and_are_read_only() -> None:
    for name, service in compose()["services"].items():
        for source, target, ro in mounts(service):
            if not is_named(source):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
                assert ro, f"{name}: bind mount {source} -> {target} should be :ro"


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("mosquitto", "/mosquitto/data"),
        ("mosquitto", "/mosquitto/auth"),
        ("influxdb", "/var/lib/influxdb2"),
        ("influxdb", "/etc/influxdb2"),
        ("grafana", "/var/lib/grafana"),
        ("monitor", "/data"),
    ],
)
def test_state_lives_in_named_volumes(service: str, path: str) -> None:
    source, _, ro = mount_for(compose()["services"][service], path)
    assert is_named(source) and not ro, f"{service}:{path} must be a writable named volume, not {source}"


def test_service_urls_name_existing_services_and_their_ports() -> None:
    services = compose()["services"]
    env = resolved_env("monitor")
    mqtt_url = urlsplit(env["LEGWATCH_MQTT_URL"])
    assert (mqtt_url.scheme, mqtt_url.hostname, mqtt_url.port) == ("mqtt", "mosquitto", 1883)
    assert mqtt_url.username == "monitor"
    assert mqtt_url.password == filled_env()["MONITOR_MQTT_PASSWORD"]
    listener = conf_directives(MOSQUITTO_DIR / "mosquitto.conf")["listener"]
    assert listener == ["1883"]
    influx_url = urlsplit(env["LEGWATCH_INFLUX_URL"])
    assert (influx_url.scheme, influx_url.hostname, influx_url.port) == ("http", "influxdb", 8086)
    datasource = yaml.safe_load((PROVISIONING / "datasources" / "legwatch.yml").read_text())["datasources"][0]
    assert datasource["url"] == env["LEGWATCH_INFLUX_URL"]
    for url in (mqtt_url, influx_url, urlsplit(datasource["url"])):
        assert url.hostname in services
    deps = services["monitor"]["depends_on"]
    assert set(deps) == {"mosquitto", "influxdb"}
    assert deps["influxdb"]["condition"] == "service_healthy" and "healthcheck" in services["influxdb"]
    assert services["grafana"]["depends_on"]["influxdb"]["condition"] == "service_healthy"


def test_influxdb_is_set_up_with_org_bucket_and_token_from_env() -> None:
    env = resolved_env("influxdb")
    filled = filled_env()
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert env["DOCKER_INFLUXDB_INIT_ORG"] == filled["INFLUXDB_ORG"]
    assert env["DOCKER_INFLUXDB_INIT_BUCKET"] == filled["INFLUXDB_BUCKET"] == "legwatch"
    assert env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == filled["INFLUXDB_ADMIN_TOKEN"]
    assert env["DOCKER_INFLUXDB_INIT_PASSWORD"] == filled["INFLUXDB_ADMIN_PASSWORD"]


def test_monitor_environment_is_a_valid_legwatch_configuration() -> None:
    env = resolved_env("monitor")
    known = {spec[2] for spec in KEYS.values() if spec[2]}
    legwatch_keys = {k for k in env if k.startswith("LEGWATCH_")}
    assert legwatch_keys <= known, f"the monitor refuses unknown keys: {sorted(legwatch_keys - known)}"
    cfg = load_config(env=env)  # legwatch's own loader: raises ConfigError on anything it would refuse
    assert cfg["influx.url"] == "http://influxdb:8086"
    assert cfg["influx.db"] == resolved_env("influxdb")["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert cfg["influx.token"] == resolved_env("influxdb")["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    assert str(cfg.data_dir) == mount_for(compose()["services"]["monitor"], "/data")[1]


# -- Grafana provisioning -------------------------------------------------------------------------


def test_grafana_provisioning_paths_match_the_mounts() -> None:
    grafana = compose()["services"]["grafana"]
    by_source = {source: (target, ro) for source, target, ro in mounts(grafana)}
    assert by_source["./deploy/grafana/provisioning"] == ("/etc/grafana/provisioning", True)
    dashboards_target, _ = by_source["./dashboards"]
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "legwatch.yml").read_text())["providers"]
    assert [p["type"] for p in providers] == ["file"]
    assert providers[0]["options"]["path"] == dashboards_target
    home = service_env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_target + "/")
    assert (ROOT / "dashboards" / home[len(dashboards_target) + 1 :]).is_file()
    assert list((ROOT / "dashboards").glob("*.json")), "no dashboards to provision"


def test_grafana_datasource_is_influxql_over_v1_api_with_token_and_fixed_uid() -> None:
    text = (PROVISIONING / "datasources" / "legwatch.yml").read_text()
    datasource = yaml.safe_load(text)["datasources"][0]
    assert datasource["uid"] == DS_UID
    assert datasource["type"] == "influxdb"
    assert datasource["access"] == "proxy"
    assert datasource["jsonData"]["version"] == "InfluxQL"
    assert datasource["jsonData"]["httpHeaderName1"] == "Authorization"
    assert "database" not in datasource and "password" not in datasource
    # Provisioning expands ${VAR} from the Grafana container's environment: all must be set there.
    env = resolved_env("grafana")
    provisioning_vars = set(re.findall(r"\$\{(\w+)\}", "\n".join(p.read_text() for p in PROVISIONING.rglob("*.yml"))))
    assert provisioning_vars <= set(env), f"not in grafana's environment: {sorted(provisioning_vars - set(env))}"

    def expand(value: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], value)

    influx = resolved_env("influxdb")
    assert expand(datasource["jsonData"]["dbName"]) == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert expand(datasource["secureJsonData"]["httpHeaderValue1"]) == (
        "Token " + influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    )


def test_every_dashboard_uses_the_provisioned_datasource_uid() -> None:
    def refs(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            if "datasource" in node:
                yield node["datasource"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for path in sorted((ROOT / "dashboards").glob("*.json")):
        found = list(refs(json.loads(path.read_text(encoding="utf-8"))))
        assert found, path.name
        assert all(ref == {"type": "influxdb", "uid": DS_UID} for ref in found), path.name


def test_grafana_login_is_required_with_a_password_from_env() -> None:
    grafana = compose()["services"]["grafana"]
    env = service_env(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


# -- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), " ".join(rest.split())))
    return out


def test_dockerfile_installs_the_package_and_runs_the_monitor_as_non_root_with_a_healthcheck() -> None:
    ins = dockerfile_instructions()
    ops = [op for op, _ in ins]
    assert ins[0] == ("FROM", "python:3.11-slim")
    assert any(op == "RUN" and "pip install ." in arg for op, arg in ins)
    users = [arg for op, arg in ins if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ops.index("USER") < ops.index("CMD")
    assert json.loads(dict(ins)["CMD"]) == ["legwatch", "monitor"]
    (health,) = [arg for op, arg in ins if op == "HEALTHCHECK"]
    assert "CMD" in health and "healthcheck.py" in health
    # The checked-in script is what the image runs.
    copies = [arg.split() for op, arg in ins if op == "COPY"]
    assert ["deploy/monitor/healthcheck.py", health.split()[-1].strip('"[]')] in [c[-2:] for c in copies]
    data_dir = [arg for op, arg in ins if op == "ENV" and "LEGWATCH_DATA_DIR=/data" in arg]
    assert data_dir, "the image must put the monitor's data under /data (a volume in compose)"


def test_dockerignore_keeps_secrets_out_and_the_build_inputs_in() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            hit = fnmatch.fnmatch(path, pat) or path.startswith(pat + "/")
            hit = hit or (pat.startswith("**/") and fnmatch.fnmatch(path.rsplit("/", 1)[-1], pat[3:]))
            if hit:
                result = not negate
        return result

    assert ignored(".env") and ignored(".git")
    sources = [arg.split()[:-1] for op, arg in dockerfile_instructions() if op == "COPY" and "--from" not in arg]
    for source in (s for group in sources for s in group):
        assert (ROOT / source).exists(), source
        assert not ignored(source), f".dockerignore drops {source}, which the Dockerfile copies"


# -- Mosquitto: configuration and ACL in a real broker --------------------------------------------


def test_mosquitto_conf_persists_refuses_anonymous_and_points_at_mounted_files() -> None:
    conf = conf_directives(MOSQUITTO_DIR / "mosquitto.conf")
    mosquitto = compose()["services"]["mosquitto"]
    assert conf["allow_anonymous"] == ["false"]
    assert conf["persistence"] == ["true"]
    assert conf["persistence_location"] == ["/mosquitto/data/"]
    assert int(conf["max_queued_messages"][0]) >= 100000
    source, _, ro = mount_for(mosquitto, conf["persistence_location"][0].rstrip("/"))
    assert is_named(source) and not ro
    (password_file,) = conf["password_file"]
    source, _, ro = mount_for(mosquitto, password_file)
    assert is_named(source) and not ro, "the password file must live in a volume mosquitto_passwd can write"
    (acl_file,) = conf["acl_file"]
    source, target, _ = mount_for(mosquitto, acl_file)
    assert (ROOT / source / acl_file[len(target) + 1 :]).is_file()
    config_arg = mosquitto["command"][mosquitto["command"].index("-c") + 1]
    source, target, _ = mount_for(mosquitto, config_arg)
    assert (ROOT / source / config_arg[len(target) + 1 :]) == MOSQUITTO_DIR / "mosquitto.conf"
    readme = (MOSQUITTO_DIR / "README.md").read_text(encoding="utf-8")
    assert f"mosquitto_passwd -c -b {password_file} monitor" in readme


USERS = {"monitor": "pw-monitor", "shin-left": "pw-left", "shin-right": "pw-right", "homeassistant": "pw-ha"}


class ProductionMosquitto(RepoMosquitto):
    """The repository's mosquitto.conf and acl, with only the port and file locations moved here."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, USERS)


def start_production_mosquitto(workdir: Path) -> ProductionMosquitto:
    try:
        service = ProductionMosquitto(workdir)
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(str(exc))
    service.start()
    return service


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionMosquitto]:
    service = start_production_mosquitto(tmp_path_factory.mktemp("prod-mosquitto"))
    yield service
    service.cleanup()


class Peer:
    """An MQTT 5 client that records PUBACK/SUBACK reason codes and received messages."""

    def __init__(self, port: int, user: str | None, password: str | None = None) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.connack: queue.Queue[Any] = queue.Queue()
        self.acks: dict[int, Any] = {}
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.acks.__setitem__(mid, rcs)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.reason = self.connack.get(timeout=5)

    def _wait(self, mid: int) -> Any:
        deadline = time.monotonic() + 5
        while mid not in self.acks:
            assert time.monotonic() < deadline, "no acknowledgement from the broker"
            time.sleep(0.01)
        return self.acks.pop(mid)

    def publish(self, topic: str, payload: bytes = b"x", *, retain: bool = False) -> bool:
        """True when the broker accepted the message (PUBACK without an error reason)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return not self._wait(info.mid).is_failure

    def subscribe(self, topic: str) -> bool:
        _, mid = self.client.subscribe(topic, qos=1)
        (granted,) = self._wait(mid)
        return not granted.is_failure

    def received(self, topic: str, payload: bytes, timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if got == (topic, payload):
                return True
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers(broker: ProductionMosquitto) -> Iterator[dict[str, Peer]]:
    connected = {user: Peer(broker.port, user, password) for user, password in USERS.items()}
    yield connected
    for peer in connected.values():
        peer.close()


def test_broker_refuses_anonymous_and_wrong_passwords(broker: ProductionMosquitto) -> None:
    for user, password in ((None, None), ("monitor", "wrong"), ("nobody", "pw")):
        peer = Peer(broker.port, user, password)
        try:
            assert peer.reason.is_failure, f"{user!r} was let in"
        finally:
            peer.close()


def test_acl_lets_each_user_do_its_job(peers: dict[str, Peer]) -> None:
    monitor, left, ha = peers["monitor"], peers["shin-left"], peers["homeassistant"]
    for topic in ("legwatch/+/samples", "legwatch/+/status", "legwatch/habits", "homeassistant/status"):
        assert monitor.subscribe(topic), topic
    for topic in ("legwatch/summary/#", "legwatch/+/episodes", "legwatch/+/status", "homeassistant/#"):
        assert ha.subscribe(topic), topic
    # the collector's samples and status reach the monitor (and its status reaches Home Assistant)
    assert left.publish("legwatch/shin-left/samples", b"s1")
    assert monitor.received("legwatch/shin-left/samples", b"s1")
    assert left.publish("legwatch/shin-left/status", b'{"state": "online"}')
    assert ha.received("legwatch/shin-left/status", b'{"state": "online"}')
    # the monitor's episodes, summary and discovery reach Home Assistant
    assert monitor.publish("legwatch/shin-left/episodes", b"e1")
    assert ha.received("legwatch/shin-left/episodes", b"e1")
    assert monitor.publish("legwatch/summary/alice", b"sum", retain=True)
    assert ha.received("legwatch/summary/alice", b"sum")
    assert monitor.publish("homeassistant/sensor/legwatch_alice/config", b"cfg")
    assert ha.received("homeassistant/sensor/legwatch_alice/config", b"cfg")
    assert monitor.publish("legwatch/deadletter/shin-left", b"bad")
    # Home Assistant logs habits and announces itself; the monitor hears both
    assert ha.publish("legwatch/habits", b"h1")
    assert monitor.received("legwatch/habits", b"h1")
    assert ha.publish("homeassistant/status", b"online")
    assert monitor.received("homeassistant/status", b"online")


@pytest.mark.parametrize(
    ("user", "topic"),
    [
        ("shin-left", "legwatch/shin-right/samples"),  # another sensor's stream
        ("shin-left", "legwatch/shin-right/status"),
        ("shin-left", "legwatch/habits"),
        ("shin-left", "legwatch/summary/alice"),
        ("shin-left", "homeassistant/sensor/x/config"),
        ("monitor", "legwatch/shin-left/samples"),
        ("monitor", "legwatch/habits"),
        ("homeassistant", "legwatch/summary/alice"),
        ("homeassistant", "legwatch/shin-left/samples"),
        ("homeassistant", "legwatch/shin-left/episodes"),
    ],
)
def test_acl_refuses_publishing_outside_a_users_job(peers: dict[str, Peer], user: str, topic: str) -> None:
    assert not peers[user].publish(topic), f"{user} may publish to {topic}"


def test_acl_refuses_reading_outside_a_users_job(peers: dict[str, Peer]) -> None:
    # Mosquitto may grant a subscription and then filter each message by the read ACL, so check delivery.
    forbidden = [
        ("shin-left", "legwatch/+/samples"),
        ("shin-left", "legwatch/habits"),
        ("shin-left", "legwatch/summary/#"),
        ("homeassistant", "legwatch/+/samples"),
        ("homeassistant", "legwatch/habits"),
        ("monitor", "legwatch/summary/#"),
        ("monitor", "legwatch/+/episodes"),
    ]
    for user, topic in forbidden:
        peers[user].subscribe(topic)
    assert peers["monitor"].subscribe("legwatch/+/samples")
    sent = [
        ("shin-right", "legwatch/shin-right/samples", b"r1"),
        ("homeassistant", "legwatch/habits", b"h2"),
        ("monitor", "legwatch/summary/bob", b"s2"),
        ("monitor", "legwatch/shin-right/episodes", b"e2"),
    ]
    for user, topic, payload in sent:
        assert peers[user].publish(topic, payload), (user, topic)
    assert peers["monitor"].received("legwatch/shin-right/samples", b"r1")  # the messages did flow
    time.sleep(0.5)
    for user in ("shin-left", "homeassistant", "monitor"):
        leaked = []
        while not peers[user].messages.empty():
            leaked.append(peers[user].messages.get())
        assert leaked == [], f"{user} read {leaked}"


# -- the monitor's health check -------------------------------------------------------------------


def run_healthcheck(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        env={"LEGWATCH_MQTT_URL": url, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=10,
    )


def wait_healthcheck(url: str, code: int, timeout: float) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + timeout
    while True:
        result = run_healthcheck(url)
        if result.returncode == code or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_healthcheck_recognises_how_the_monitor_is_started() -> None:
    spec = {"__name__": "healthcheck"}
    exec(compile(HEALTHCHECK.read_text(encoding="utf-8"), str(HEALTHCHECK), "exec"), spec)
    is_monitor, broker_port = spec["is_monitor"], spec["broker_port"]
    assert is_monitor(["/usr/local/bin/python3.11", "/usr/local/bin/legwatch", "monitor"])  # image CMD
    assert is_monitor(["legwatch", "--config", "x.toml", "monitor"])
    assert is_monitor(["/usr/bin/python3", "-m", "legwatch", "monitor", "--exit-after-nights", "1"])
    assert not is_monitor(["legwatch", "replay", "night.csv"])
    assert not is_monitor(["python", "-c", "legwatch monitor"])
    assert broker_port("mqtt://monitor:pw@mosquitto:1883") == 1883
    assert broker_port("mqtts://broker.example") == 8883
    assert broker_port("") == 1883


def test_healthcheck_follows_a_real_monitors_broker_connection(tmp_path: Path) -> None:
    broker = start_production_mosquitto(tmp_path / "mosquitto")
    url = f"mqtt://monitor:{USERS['monitor']}@127.0.0.1:{broker.port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEGWATCH_")}
    env.update(
        PYTHONPATH=str(ROOT),
        LEGWATCH_MQTT_URL=url,
        LEGWATCH_MQTT_CLIENT_ID=f"healthcheck-{uuid.uuid4().hex[:8]}",
        LEGWATCH_DATA_DIR=str(tmp_path / "data"),
    )
    log = (tmp_path / "monitor.log").open("wb")
    monitor = subprocess.Popen(
        [sys.executable, "-m", "legwatch", "monitor"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        healthy = wait_healthcheck(url, 0, timeout=20)
        assert healthy.returncode == 0, healthy.stdout + (tmp_path / "monitor.log").read_text()
        assert f"pid {monitor.pid}" in healthy.stdout
        # Broker gone: the monitor keeps running (and retrying) but is no longer connected.
        broker.stop()
        down = wait_healthcheck(url, 1, timeout=10)
        assert down.returncode == 1 and "no TCP connection" in down.stdout, down.stdout
        assert monitor.poll() is None
    finally:
        if monitor.poll() is None:
            os.killpg(monitor.pid, signal.SIGTERM)
            try:
                monitor.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(monitor.pid, signal.SIGKILL)
                monitor.wait(5)
        log.close()
        broker.cleanup()
    # No monitor on this broker's port at all.
    assert run_healthcheck(url).returncode == 1
