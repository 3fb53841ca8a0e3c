"""``legwatch.mqtt.connection.Connection`` against a real Mosquitto: one-line connect errors without
the password, PUBACK tracking, subscriptions restored after a broker restart, stale subscriptions
of a persistent session removed, and manual acknowledgements that never cross connections."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from legwatch.mqtt.connection import SUBSCRIPTIONS_FILE, BrokerUnavailable, Connection, PublishRefused
from services import RepoMosquitto

SECRET = "s3cr/et:pw"
QUOTED = "s3cr%2Fet%3Apw"


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Inbox:
    """Collects what a Connection delivers, with the generation it arrived on."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.messages: list[tuple[int, object]] = []
        conn.on_message = self._on_message

    def _on_message(self, msg) -> None:
        with self.lock:
            self.messages.append((self.conn.generation, msg))

    def topics(self) -> list[str]:
        with self.lock:
            return [m.topic for _, m in self.messages]

    def wait_topic(self, topic: str, timeout: float = 5.0) -> bool:
        return wait_for(lambda: topic in self.topics(), timeout)


@pytest.fixture
def conns() -> Iterator[list[Connection]]:
    """Connections a test opens; closed at the end whatever happens."""
    opened: list[Connection] = []
    yield opened
    for c in opened:
        c.close()


def open_conn(conns: list[Connection], url: str, client_id: str, **kw) -> Connection:
    conn = Connection(url, client_id, **kw)
    conns.append(conn)
    return conn


def publisher(conns: list[Connection], url: str) -> Connection:
    conn = open_conn(conns, url, unique("pub"), persistent=False)
    conn.connect()
    return conn


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RepoMosquitto]:
    """The repository's mosquitto.conf and ACL, user ``shin-left`` with password ``SECRET``."""
    try:
        service = RepoMosquitto(tmp_path_factory.mktemp("acl-mosquitto"), {"shin-left": SECRET})
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc), pytrace=False)
        pytest.skip(str(exc))
    service.start()
    yield service
    service.cleanup()


def user_url(broker: RepoMosquitto, password: str = QUOTED) -> str:
    return f"mqtt://shin-left:{password}@{broker.host}:{broker.port}"


# -- connecting -------------------------------------------------------------------------------------


def _listener(answer: Callable[[socket.socket], None]) -> tuple[int, Callable[[], None]]:
    """A TCP listener on a free port that hands each connection to ``answer``."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                sock, _ = srv.accept()
            except OSError:
                return
            held.append(sock)
            answer(sock)

    threading.Thread(target=serve, daemon=True).start()

    def stop() -> None:
        srv.close()
        for s in held:
            s.close()

    return srv.getsockname()[1], stop


def test_connect_errors_are_one_line_and_never_show_the_password(acl_broker, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    cases: list[tuple[str, str, float]] = [
        (f"mqtt://shin-left:{QUOTED}@127.0.0.1:1", "cannot reach MQTT broker at mqtt://shin-left:***@127.0.0.1:1", 10),
        (user_url(acl_broker, "wrong"), "refused the connection: Not authorized", 10),
    ]
    silent_port, stop_silent = _listener(lambda sock: None)  # accepts, never answers
    closing_port, stop_closing = _listener(lambda sock: sock.close())  # accepts and hangs up
    cases += [
        (f"mqtt://shin-left:{QUOTED}@127.0.0.1:{silent_port}", "no answer from MQTT broker at", 1),
        (
            f"mqtt://shin-left:{QUOTED}@127.0.0.1:{closing_port}",
            "closed the connection without answering; it may expect TLS (mqtts://)",
            10,
        ),
    ]
    try:
        for url, needle, timeout in cases:
            conn = Connection(url, unique("err"))
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable) as info:
                conn.connect(timeout)
            conn.close()
            message = str(info.value)
            assert needle in message and "\n" not in message, (url, message)
            assert SECRET not in message and QUOTED not in message
            assert time.monotonic() - started < timeout + 3, "waited for a broker that had already said no"
    finally:
        stop_silent()
        stop_closing()
    # in the background the same refusal is an error at once too; an unreachable broker is not
    conn = Connection(user_url(acl_broker, "wrong"), unique("bg"))
    with pytest.raises(BrokerUnavailable, match="refused the connection"):
        conn.connect(5, background=True)
    conn.close()
    conn = Connection(f"mqtt://shin-left:{QUOTED}@127.0.0.1:1", unique("bg"))
    assert conn.connect(0.5, background=True) is False
    conn.close()
    # and a good connection logs its URL without the password
    conn = Connection(user_url(acl_broker), unique("ok"))
    assert conn.connect()
    conn.close()
    assert "mqtt://shin-left:***@127.0.0.1" in caplog.text
    assert SECRET not in caplog.text and QUOTED not in caplog.text


# -- publishing ------------------------------------------------------------------------------------


def test_publish_wait_confirms_refuses_and_times_out(acl_broker, fresh_mosquitto, conns) -> None:
    # refused: the ACL lets shin-left write only under legwatch/shin-left/ (MQTT 5 PUBACK "Not authorized")
    conn = open_conn(conns, user_url(acl_broker), unique("shin"), persistent=False)
    conn.connect()
    conn.publish_wait("legwatch/shin-left/status", b"{}", timeout=5)
    with pytest.raises(PublishRefused, match="refused a message on legwatch/shin-right/samples: Not authorized"):
        conn.publish_wait("legwatch/shin-right/samples", b"x", timeout=5)
    assert conn.wait_published(5) == 0

    # no acknowledgement while the broker is away: BrokerUnavailable; the message is kept and sent later
    topic = f"{unique('t')}/kept"
    watcher = open_conn(conns, fresh_mosquitto.url, unique("watch"))
    inbox = Inbox(watcher)
    watcher.subscribe([topic])
    watcher.connect()
    assert watcher.wait_subscribed(5)
    conn = open_conn(conns, fresh_mosquitto.url, unique("pub"), persistent=False, reconnect_max_s=1)
    conn.connect()
    conn.publish_wait(topic, b"first", timeout=5)
    assert inbox.wait_topic(topic)
    fresh_mosquitto.stop()
    assert wait_for(lambda: not conn.connected)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"did not acknowledge a message on .* within 1 s"):
        conn.publish_wait(topic, b"second", timeout=1)
    assert 0.9 < time.monotonic() - started < 3
    assert conn.wait_published(0.2) == 1
    fresh_mosquitto.start()
    assert conn.wait_published(15) == 0
    assert wait_for(lambda: [m.payload for _, m in inbox.messages] == [b"first", b"second"])


# -- subscriptions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [5, 3])
def test_reconnect_after_a_broker_restart_restores_the_subscriptions(fresh_mosquitto, conns, protocol) -> None:
    """A clean session (the broker forgets its subscriptions on every disconnect): the wrapper
    subscribes again on every connect."""
    events: list[tuple] = []
    conn = open_conn(
        conns,
        fresh_mosquitto.url,
        unique("restore"),
        protocol=protocol,
        persistent=False,
        reconnect_max_s=1,
        on_connected=lambda present, first: events.append(("connected", first)),
        on_lost=lambda reason: events.append(("lost",)),
    )
    inbox = Inbox(conn)
    conn.subscribe(["r/a/#", "r/b"])
    conn.connect()
    assert conn.wait_subscribed(5) and conn.generation == 1
    pub = publisher(conns, fresh_mosquitto.url)
    pub.publish_wait("r/a/1", b"before")
    assert inbox.wait_topic("r/a/1")
    fresh_mosquitto.restart()
    assert wait_for(lambda: conn.generation == 2 and conn.connected, 15), events
    assert conn.wait_subscribed(5)
    assert wait_for(lambda: pub.connected, 15)
    pub.publish_wait("r/a/2", b"after")
    pub.publish_wait("r/b", b"after")
    assert inbox.wait_topic("r/a/2") and inbox.wait_topic("r/b")
    assert events == [("connected", True), ("lost",), ("connected", False)]


def _stale_run(url: str, conns: list[Connection], state_dir: Path | None) -> tuple[Connection, Inbox, Connection]:
    """A persistent client subscribes to t/a/# and t/b/#, goes; the same client id comes back wanting
    only t/a/#, and proves that t/a/x reaches it."""
    cid, root = unique("stale"), unique("t")
    first = open_conn(conns, url, cid, state_dir=state_dir)
    first.subscribe([f"{root}/a/#", f"{root}/b/#"])
    first.connect()
    assert first.wait_subscribed(5)
    first.close()
    again = open_conn(conns, url, cid, state_dir=state_dir)
    inbox = Inbox(again)
    again.subscribe([f"{root}/a/#"])
    again.connect()
    assert again.wait_subscribed(5)
    pub = publisher(conns, url)
    pub.publish_wait(f"{root}/a/x", b"wanted")
    assert inbox.wait_topic(f"{root}/a/x"), "the wanted subscription does not deliver"
    pub.publish_wait(f"{root}/b/x", b"stale")
    time.sleep(1.0)
    return again, inbox, pub


def test_stale_subscriptions_of_a_persistent_session_are_removed(mosquitto, conns, tmp_path) -> None:
    again, inbox, _ = _stale_run(mosquitto.url, conns, tmp_path / "state")
    assert [t.split("/", 1)[1] for t in inbox.topics()] == ["a/x"], "a stale subscription still delivers"
    assert again.dropped == 0, "the broker still routes the stale filter (only dropped here)"
    remembered = json.loads((tmp_path / "state" / SUBSCRIPTIONS_FILE).read_text())
    assert [f.split("/", 1)[1] for f in remembered["filters"]] == ["a/#"]


def test_without_a_state_dir_the_broker_keeps_delivering_stale_subscriptions(mosquitto, conns) -> None:
    """The bug the state directory fixes, shown with the same steps."""
    _, inbox, _ = _stale_run(mosquitto.url, conns, None)
    assert [t.split("/", 1)[1] for t in inbox.topics()] == ["a/x", "b/x"]


def test_messages_queued_for_a_stale_subscription_are_acknowledged_and_dropped(mosquitto, conns, tmp_path) -> None:
    """What the session queued for a filter no longer wanted arrives right after the CONNACK, before
    the broker takes the UNSUBSCRIBE: it is dropped (and acknowledged, so it never comes back)."""
    cid, root, state = unique("queued"), unique("t"), tmp_path / "state"
    first = open_conn(conns, mosquitto.url, cid, state_dir=state, manual_ack=True)
    first.subscribe([f"{root}/a/#", f"{root}/b/#"])
    first.connect()
    assert first.wait_subscribed(5)
    first.close()
    publisher(conns, mosquitto.url).publish_wait(f"{root}/b/queued", b"while away")
    dropped = []
    for _ in range(2):  # the second time: nothing left in the session
        again = open_conn(conns, mosquitto.url, cid, state_dir=state, manual_ack=True)
        inbox = Inbox(again)
        again.subscribe([f"{root}/a/#"])
        again.connect()
        assert again.wait_subscribed(5)
        time.sleep(0.5)
        assert inbox.topics() == []
        again.close()
        dropped.append(again.dropped)
    assert dropped == [1, 0]
    remembered = json.loads((state / SUBSCRIPTIONS_FILE).read_text())
    assert remembered == {"client_id": cid, "filters": [f"{root}/a/#"]}


# -- acknowledgements --------------------------------------------------------------------------------


def test_ack_only_on_the_connection_that_delivered(mosquitto, conns) -> None:
    """A message not acknowledged before the connection dropped comes again on the next one; the
    old delivery's packet id is not acknowledged there, the new one is, and then it stays done."""
    sockets: list = []

    def factory(client_id, **kw):
        from legwatch.mqtt.connection import paho_client

        client = paho_client(client_id, **kw)
        sockets.append(client)
        return client

    topic = f"{unique('t')}/g"
    conn = open_conn(conns, mosquitto.url, unique("acks"), manual_ack=True, client_factory=factory, reconnect_min_s=0.2)
    inbox = Inbox(conn)
    conn.subscribe([topic])
    conn.connect()
    assert conn.wait_subscribed(5)

    def drop_connection() -> None:
        gen = conn.generation
        conn.client.socket().shutdown(socket.SHUT_RDWR)
        assert wait_for(lambda: conn.generation == gen + 1 and conn.connected, 15)

    publisher(conns, mosquitto.url).publish_wait(topic, b"once")
    assert inbox.wait_topic(topic)
    (gen1, msg1), *_ = inbox.messages
    assert gen1 == 1 and not msg1.dup
    drop_connection()
    assert wait_for(lambda: len(inbox.messages) == 2), "the broker did not deliver the unacknowledged message again"
    gen2, msg2 = inbox.messages[1]
    assert gen2 == 2 and msg2.dup and msg2.payload == b"once"
    assert conn.ack(msg1.mid, msg1.qos, gen1) is False  # delivered on the old connection
    assert conn.ack(msg2.mid, msg2.qos, gen2) is True
    time.sleep(0.3)  # the PUBACK is on its way
    drop_connection()
    time.sleep(1.0)
    assert len(inbox.messages) == 2, "an acknowledged message came again"
    assert sockets == [conn.client]  # the seam built the one client
