"""One MQTT connection the way every legwatch part needs it: :class:`Connection`, over paho-mqtt.

It owns what each user used to wire by hand: fixed client ids, QoS 1, persistent sessions (MQTT 5
``clean_start=False`` with a session expiry on *every* CONNECT, also paho's automatic reconnects;
MQTT 3.1.1 ``clean_session=False``), username/password from the URL, TLS for ``mqtts://``, the
first connect with one-line errors (:class:`BrokerUnavailable`), reconnecting (1 s doubling to
``RECONNECT_MAX_S``), the wanted subscriptions (sent again on every connect; MQTT 5 retain handling
"send if new subscription", so a reconnect does not replay retained messages), the removal of
*stale* subscriptions a persistent session kept from an earlier run (with ``state_dir``), PUBACK
tracking (:meth:`Connection.publish_wait`, :meth:`Connection.wait_published`), and manual
acknowledgements that never cross connections (:meth:`Connection.ack` with ``generation``).

Log lines and errors show the URL with the password hidden (``mqtt://user:***@host``).

Threads: paho calls back on its network thread, some callbacks while it holds its own locks. The
callbacks given to a :class:`Connection` run there too: they should only record and hand work on;
``on_published`` must not call back into the connection (publish, wait).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from legwatch.contracts.config import ConfigError, redact_url
from legwatch.files import write_atomic

__all__ = [
    "RECONNECT_MAX_S",
    "SESSION_EXPIRY_S",
    "BrokerAddress",
    "BrokerUnavailable",
    "Connection",
    "PublishRefused",
    "paho_client",
]

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600
#: Reconnect attempts start 1 s after a lost connection and double up to this.
RECONNECT_MAX_S = 15
#: CONNACK reason codes that retrying will not fix (MQTT 5 values; paho maps 3.1.1 codes onto them):
#: unsupported protocol, bad client id, bad user name or password, not authorised, banned, bad auth method.
REFUSALS = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C})
#: The file in ``state_dir`` that remembers the subscribed filters.
SUBSCRIPTIONS_FILE = "mqtt-subscriptions.json"
_ACCEPTED = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # NO_CONN: paho keeps a QoS >= 1 message


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached or refused the connection (one-line message)."""


class PublishRefused(BrokerUnavailable):
    """The broker answered a publish with an error (MQTT 5 PUBACK reason, e.g. not authorized)."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    url: str  # redacted, for messages

    @staticmethod
    def parse(url: str) -> BrokerAddress:
        p = urlsplit(url)
        tls = p.scheme in ("mqtts", "ssl")
        return BrokerAddress(
            host=p.hostname or "localhost",
            port=p.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(p.username) if p.username else None,
            password=unquote(p.password) if p.password else None,
            url=redact_url(url),
        )


def paho_client(client_id: str, *, protocol: int = 5, persistent: bool = True, manual_ack: bool = False) -> mqtt.Client:
    """The default ``client_factory``: a bare paho client (callback API 2); the rest is configured
    through paho's own methods by :class:`Connection`."""
    if protocol == 5:
        return mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
        )
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=not persistent,
        manual_ack=manual_ack,
    )


def _configure(
    client: mqtt.Client,
    addr: BrokerAddress,
    *,
    ca_file: str,
    will: tuple[str, bytes] | None,
    max_inflight: int,
    reconnect_min_s: float,
    reconnect_max_s: float,
) -> None:
    if addr.username:
        client.username_pw_set(addr.username, addr.password)
    if addr.tls:
        try:
            ctx = ssl.create_default_context(cafile=ca_file or None)
        except FileNotFoundError:
            raise ConfigError(f"mqtt.ca_file: no such file: {ca_file}") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"mqtt.ca_file: cannot use {ca_file} as CA certificate: {exc}") from None
        client.tls_set_context(ctx)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.max_inflight_messages_set(max_inflight)
    client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)  # type: ignore[arg-type]


def _connect_kwargs(protocol: int, persistent: bool, receive_maximum: int, keepalive: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"keepalive": keepalive}
    if protocol == 5:
        # paho keeps clean_start and these properties for its own reconnects, so every CONNECT of a
        # persistent client says clean start 0 with the session expiry (never FIRST_ONLY's 1)
        kwargs["clean_start"] = not persistent
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        if receive_maximum:
            props.ReceiveMaximum = int(receive_maximum)
        if persistent or receive_maximum:
            kwargs["properties"] = props
    return kwargs


def _subscribe_args(topics: list[str], protocol: int = 5, qos: int = 1) -> list[tuple[str, object]]:
    """``client.subscribe`` arguments. MQTT 5: retained messages only when the subscription is new
    (retain handling 1), so resubscribing after a reconnect does not deliver them again."""
    if protocol == 5:
        return [(t, SubscribeOptions(qos=qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)) for t in topics]
    return [(t, qos) for t in topics]


def _matching_filter(topic_filter: str) -> str:
    """The filter a shared subscription (``$share/<group>/<filter>``) matches topics with."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        return parts[2] if len(parts) == 3 else topic_filter
    return topic_filter


class _RememberedFilters:
    """The filters the broker may hold in this client's persistent session, kept in ``state_dir``
    (a small JSON file, replaced atomically) so that a later run knows what to unsubscribe."""

    def __init__(self, state_dir: str | os.PathLike[str], client_id: str) -> None:
        self.path = Path(state_dir) / SUBSCRIPTIONS_FILE
        self.client_id = client_id
        self.filters: set[str] = self._load()

    def _load(self) -> set[str]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            log.warning("%s cannot be read (%s); earlier subscriptions are not known", self.path, exc)
            return set()
        if not isinstance(doc, dict) or doc.get("client_id") != self.client_id:
            return set()  # another client's session
        filters = doc.get("filters")
        return {f for f in filters if isinstance(f, str)} if isinstance(filters, list) else set()

    def set(self, filters: set[str]) -> None:
        """Remember ``filters`` (before the broker may hold them: a superset is harmless)."""
        if filters == self.filters:
            return
        self.filters = set(filters)
        doc = {"client_id": self.client_id, "filters": sorted(filters)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(doc).encode(), sync_dir=True)
        except OSError as exc:
            log.warning("cannot write %s (%s); a later run may not know these subscriptions", self.path, exc)


class _Pubacks:
    """Messages published with QoS >= 1 until the broker acknowledges them.

    paho may report a PUBACK on its network thread before ``publish()`` has returned the message
    id, and calls back holding its own locks: acknowledgements are queued there lock-free and
    matched under the lock that is held while a message id is registered.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.unconfirmed: dict[int, bool] = {}  # mid -> someone waits for its outcome
        self.outcomes: dict[int, Any] = {}
        self.queue: deque[tuple[int, Any]] = deque()
        self.event = threading.Event()

    def publish(
        self, client: mqtt.Client, topic: str, payload: bytes | str, qos: int, retain: bool, *, watch: bool
    ) -> mqtt.MQTTMessageInfo:
        with self.lock:
            self._match()
            info = client.publish(topic, payload, qos=qos, retain=retain)
            if qos > 0 and info.rc in _ACCEPTED:
                self.unconfirmed[info.mid] = watch
        return info

    def acknowledged(self, mid: int, reason: Any) -> None:
        """On paho's thread: a PUBACK (or a QoS 0 message written)."""
        self.queue.append((mid, reason))
        self.event.set()

    def _match(self) -> None:
        while self.queue:
            mid, reason = self.queue.popleft()
            if self.unconfirmed.pop(mid, None):
                self.outcomes[mid] = reason

    def count(self) -> int:
        with self.lock:
            self._match()
            return len(self.unconfirmed)

    def wait_all(self, timeout: float, *, wait: bool = True) -> int:
        deadline = time.monotonic() + timeout
        while True:
            self.event.clear()
            left = self.count()
            remaining = deadline - time.monotonic()
            if not left or remaining <= 0 or not wait:
                return left
            self.event.wait(min(remaining, 0.5))

    def wait_one(self, mid: int, timeout: float) -> tuple[bool, Any]:
        """(acknowledged, reason) of a message published with ``watch``."""
        deadline = time.monotonic() + timeout
        while True:
            self.event.clear()
            with self.lock:
                self._match()
                if mid in self.outcomes:
                    return True, self.outcomes.pop(mid)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if mid in self.unconfirmed:
                        self.unconfirmed[mid] = False  # still tracked, nobody waits
                    return False, None
            self.event.wait(min(remaining, 0.5))


class Connection:
    """One MQTT client connection (see the module docstring).

    ``url``: ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://…``; ``client_id`` fixed (a
    persistent session belongs to it). ``protocol`` 5 or 3 (MQTT 3.1.1). ``persistent``: keep the
    session across connections (and this process). ``manual_ack``: incoming QoS 1 messages are
    acknowledged only by :meth:`ack`. ``will``: ``(topic, payload)``, published retained with QoS 1
    by the broker if the connection is lost. ``receive_maximum`` (MQTT 5): at most this many
    unacknowledged QoS 1 messages are sent to this client at a time; with ``manual_ack`` that is the
    back-pressure that leaves the rest with the broker (MQTT 3.1.1 has no such field: the broker's
    ``max_inflight_messages`` applies). ``state_dir``: where to remember the subscribed filters, so
    that a later run with fewer wanted filters unsubscribes the others from its persistent session
    (and drops what they still deliver). ``client_factory``: builds the paho client (see
    :func:`paho_client`); tests may pass their own.

    Callbacks (attributes, or the constructor's keywords), all on paho's network thread:

    - ``on_message(msg)``: a paho ``MQTTMessage``; stamp it with :attr:`generation` to :meth:`ack` it later;
    - ``on_connected(session_present, first)``: after each successful CONNACK, once the
      subscriptions are sent; ``first`` for the first connection of this object;
    - ``on_lost(reason)``: the connection was lost (not after :meth:`close`); paho reconnects by itself;
    - ``on_published(mid, reason_code)``: a PUBACK (or a QoS 0 message written), for users that
      track their messages themselves; must not call back into the connection.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        protocol: int = 5,
        persistent: bool = True,
        manual_ack: bool = False,
        ca_file: str = "",
        will: tuple[str, bytes] | None = None,
        receive_maximum: int = 0,
        state_dir: str | os.PathLike[str] | None = None,
        client_factory: Callable[..., mqtt.Client] | None = None,
        on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
        on_connected: Callable[[bool, bool], None] | None = None,
        on_lost: Callable[[Any], None] | None = None,
        on_published: Callable[[int, Any], None] | None = None,
        keepalive: int = 30,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = RECONNECT_MAX_S,
        max_inflight: int = 100,
    ) -> None:
        self.addr = BrokerAddress.parse(url)
        #: the broker's URL with the password hidden: for messages
        self.url = self.addr.url
        self.client_id = client_id
        self.protocol = protocol
        self.persistent = persistent
        self.manual_ack = manual_ack
        self.receive_maximum = receive_maximum
        self.keepalive = keepalive
        self.on_message = on_message
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.on_published = on_published
        #: successful CONNACKs so far: stamp received messages with it, :meth:`ack` compares
        self.generation = 0
        #: messages of stale subscriptions that arrived anyway (acknowledged and dropped)
        self.dropped = 0
        factory = client_factory or paho_client
        self.client: mqtt.Client = factory(client_id, protocol=protocol, persistent=persistent, manual_ack=manual_ack)
        _configure(
            self.client,
            self.addr,
            ca_file=ca_file,
            will=will,
            max_inflight=max_inflight,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_suback
        self.client.on_unsubscribe = self._on_unsuback

        self._lock = threading.Lock()  # connection state
        self._started = False
        self._background = False
        self._closing = False
        self._connected = False
        self._ever_connected = False
        self._answered = threading.Event()  # the first CONNACK (or the first connection closed unanswered)
        self._first_failure: Any = None
        self._closed_unanswered: Any = None
        self._refusal: str | None = None
        self._net_thread: threading.Thread | None = None
        # -- subscriptions --
        self._sub_lock = threading.Condition(threading.RLock())
        self._wanted: list[str] = []
        self._qos = 1
        self._remembered = _RememberedFilters(state_dir, client_id) if state_dir is not None else None
        #: with ``state_dir``: only messages that a wanted filter matches are delivered
        self._matcher: MQTTMatcher | None = MQTTMatcher() if self._remembered is not None else None
        self._sub_pending: dict[int, list[str]] = {}  # SUBSCRIBE mid -> its filters
        self._unsub_pending: dict[int, list[str]] = {}
        self._acks_pending: set[int] = set()  # SUBSCRIBE/UNSUBSCRIBE mids of this connection
        self._pubacks = _Pubacks()

    # -- lifecycle ------------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0, *, background: bool = False) -> bool:
        """Connect and start the network thread (paho reconnects by itself from then on).

        Default: wait for the broker's answer; ``BrokerUnavailable`` (one line) if it cannot be
        reached, does not answer within ``timeout``, closes the connection unanswered or refuses it.
        ``background=True``: an unreachable broker is no error (paho keeps trying); wait up to
        ``timeout`` for a first answer and raise only if the broker refused for a reason retrying
        will not fix (credentials, not authorised). Returns whether the connection is up.
        """
        with self._lock:
            if self._started:
                raise RuntimeError("Connection.connect() may be called once")
            self._started = True
            self._background = background
        kwargs = _connect_kwargs(self.protocol, self.persistent, self.receive_maximum, self.keepalive)
        if background:
            self.client.connect_async(self.addr.host, self.addr.port, **kwargs)
            self.client.loop_start()
            if self._answered.wait(timeout) and self._refusal:
                self._stop()
                raise BrokerUnavailable(f"MQTT broker at {self.url} refused the connection: {self._refusal}")
            return self.connected
        try:
            self.client.connect(self.addr.host, self.addr.port, **kwargs)
        except (OSError, ValueError) as exc:
            raise BrokerUnavailable(f"cannot reach MQTT broker at {self.url}: {exc}") from None
        self.client.loop_start()
        if not self._answered.wait(timeout):
            self._stop()
            raise BrokerUnavailable(f"no answer from MQTT broker at {self.url} within {timeout:.0f} s")
        if self._closed_unanswered is not None:  # closed before any CONNACK: not an MQTT listener for this scheme?
            self._stop()
            hint = "; it may expect TLS (mqtts://)" if not self.addr.tls else ""
            raise BrokerUnavailable(f"MQTT broker at {self.url} closed the connection without answering{hint}")
        if self._first_failure is not None:
            self._stop()
            raise BrokerUnavailable(f"MQTT broker at {self.url} refused the connection: {self._first_failure}")
        return True

    def close(self) -> None:
        """Disconnect cleanly (the broker does not send the last will) and stop the network thread.
        Messages not yet confirmed stay unconfirmed (see :meth:`wait_published`). Idempotent."""
        self._stop()

    def _stop(self) -> None:
        with self._lock:
            self._closing = True
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
        with self._lock:
            self._connected = False

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._connected

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, topic_filters: Iterable[str], qos: int = 1) -> None:
        """Declare the wanted subscriptions (replacing those declared before). Sent on every
        connect; while connected, the new ones are subscribed and the dropped ones unsubscribed now."""
        wanted = list(dict.fromkeys(topic_filters))
        with self._sub_lock:
            old = self._wanted
            self._wanted, self._qos = wanted, qos
            self._matcher = self._build_matcher(wanted) if self._remembered is not None else None
            if not self._connected:
                return
            added = [f for f in wanted if f not in old]
            removed = [f for f in old if f not in wanted]
            if self._remembered is not None:
                self._remembered.set(self._remembered.filters | set(wanted))
            if removed:
                self._unsubscribe(removed)
            if added:
                self._subscribe(added)
        log.info("subscribed to %s on MQTT broker %s", ", ".join(wanted) or "nothing", self.url)

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the broker has answered every SUBSCRIBE and UNSUBSCRIBE of this connection."""
        deadline = time.monotonic() + timeout
        with self._sub_lock:
            while not self._connected or self._acks_pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._sub_lock.wait(remaining)
        return True

    @staticmethod
    def _build_matcher(filters: list[str]) -> MQTTMatcher:
        m = MQTTMatcher()
        for f in filters:
            m[_matching_filter(f)] = True
        return m

    def _subscribe(self, filters: list[str]) -> None:
        rc, mid = self.client.subscribe(_subscribe_args(filters, self.protocol, self._qos))
        if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._acks_pending.add(mid)
            self._sub_pending[mid] = filters

    def _unsubscribe(self, filters: list[str]) -> None:
        rc, mid = self.client.unsubscribe(filters)
        if rc == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._acks_pending.add(mid)
            self._unsub_pending[mid] = filters

    def _resubscribe(self, session_present: bool) -> None:
        """On every CONNACK: unsubscribe what an earlier run left in the session, subscribe the wanted."""
        with self._sub_lock:
            self._acks_pending.clear()
            self._sub_pending.clear()
            self._unsub_pending.clear()
            wanted = list(self._wanted)
            stale: list[str] = []
            if self._remembered is not None:
                if self.persistent and session_present:
                    stale = sorted(self._remembered.filters - set(wanted))
                    self._remembered.set(self._remembered.filters | set(wanted))
                else:  # no session kept: the broker holds none of this client's subscriptions
                    self._remembered.set(set(wanted))
            log.info("subscribing to %s on MQTT broker %s", ", ".join(wanted) or "nothing", self.url)
            if stale:
                log.info("unsubscribing from %s, left in the session by an earlier run", ", ".join(stale))
                self._unsubscribe(stale)
            if wanted:
                self._subscribe(wanted)
            self._sub_lock.notify_all()

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        """Hand a message to paho (which sends it now, or after a reconnect); tracked until the
        broker confirms it (QoS >= 1). Returns paho's ``MQTTMessageInfo`` (``mid``, ``rc``)."""
        return self._pubacks.publish(self.client, topic, payload, qos, retain, watch=False)

    def publish_wait(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, *, timeout: float = 10.0
    ) -> None:
        """Publish and wait for the broker's acknowledgement: ``PublishRefused`` if it answers with
        an error (MQTT 5, e.g. not authorized), ``BrokerUnavailable`` if none comes within ``timeout``."""
        info = self._pubacks.publish(self.client, topic, payload, qos, retain, watch=qos > 0)
        if info.rc not in _ACCEPTED:
            raise BrokerUnavailable(
                f"cannot publish to {topic} on MQTT broker {self.url}: {mqtt.error_string(info.rc)}"
            )
        if qos == 0:
            return
        done, reason = self._pubacks.wait_one(info.mid, timeout)
        if not done:
            raise BrokerUnavailable(
                f"MQTT broker at {self.url} did not acknowledge a message on {topic} within {timeout:.0f} s"
            )
        if getattr(reason, "is_failure", False):
            raise PublishRefused(f"MQTT broker at {self.url} refused a message on {topic}: {reason}")

    @property
    def unconfirmed(self) -> int:
        """Messages published (QoS >= 1) that the broker has not acknowledged yet."""
        return self._pubacks.count()

    def wait_published(self, timeout: float) -> int:
        """Wait up to ``timeout`` until the broker has acknowledged everything published; returns
        how many messages are still unconfirmed. On paho's own thread it does not wait (that would
        hold up the acknowledgements it waits for)."""
        return self._pubacks.wait_all(timeout, wait=threading.current_thread() is not self._net_thread)

    # -- receiving ------------------------------------------------------------------------------

    def ack(self, mid: int | None, qos: int, generation: int) -> bool:
        """Acknowledge a received message (``manual_ack``), but only on the connection that
        delivered it: a message of an earlier connection is delivered again by the broker, and its
        old packet id could now name a different message. Returns whether it was acknowledged."""
        if mid is None or qos == 0 or generation != self.generation or not self._connected:
            return False
        return self.client.ack(mid, qos) == mqtt.MQTT_ERR_SUCCESS

    # -- paho callbacks (network thread) --------------------------------------------------------

    def _call(self, name: str, *args: Any) -> None:
        cb = getattr(self, name)
        if cb is None:
            return
        try:
            cb(*args)
        except Exception:  # never let a callback end paho's network thread
            log.exception("error in the %s callback of the MQTT connection to %s", name, self.url)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._net_thread = threading.current_thread()
        if reason_code.is_failure:
            if self._ever_connected:
                log.warning("MQTT broker %s refused to reconnect: %s; trying again", self.url, reason_code)
            elif self._background:
                if reason_code.value in REFUSALS:
                    self._refusal = str(reason_code)
                log.warning("MQTT broker %s refused the connection: %s; trying again", self.url, reason_code)
            elif not self._answered.is_set():
                self._first_failure = reason_code
            self._answered.set()
            return
        present = bool(getattr(flags, "session_present", False))
        with self._lock:
            self.generation += 1
            self._connected = True
            first = not self._ever_connected
            self._ever_connected = True
            self._refusal = None
        if first:
            log.info("connected to MQTT broker %s as %s", self.url, self.client_id)
        else:
            log.info("reconnected to MQTT broker %s (session %s)", self.url, "kept" if present else "new")
        self._resubscribe(present)
        self._answered.set()
        self._call("on_connected", present, first)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            was, self._connected = self._connected, False
            closing = self._closing
        with self._sub_lock:
            self._sub_lock.notify_all()
        if not self._answered.is_set() and not self._background:
            self._closed_unanswered = reason_code
            self._answered.set()
            return
        if was and not closing:
            log.info("lost MQTT broker %s (%s); reconnecting", self.url, reason_code)
            self._call("on_lost", reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        matcher = self._matcher
        if matcher is not None:
            try:
                topic = msg.topic
            except UnicodeDecodeError:
                topic = None
            if topic is not None and next(matcher.iter_match(topic), None) is None:
                # a stale subscription's message, delivered before the broker took our UNSUBSCRIBE
                self.dropped += 1
                log.debug("dropped a message on %s: no wanted subscription matches it", topic)
                if self.manual_ack and msg.qos:
                    client.ack(msg.mid, msg.qos)
                return
        self._call("on_message", msg)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._pubacks.acknowledged(mid, reason_code)
        self._call("on_published", mid, reason_code)

    def _on_suback(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._sub_lock:
            self._acks_pending.discard(mid)
            filters = self._sub_pending.pop(mid, [])
            self._sub_lock.notify_all()
        for f, rc in zip(filters, reason_codes or [], strict=False):
            if getattr(rc, "is_failure", False):
                log.warning("MQTT broker %s refused the subscription to %s: %s", self.url, f, rc)

    def _on_unsuback(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._sub_lock:
            self._acks_pending.discard(mid)
            filters = self._unsub_pending.pop(mid, [])
            codes = list(reason_codes or [])
            gone = {f for i, f in enumerate(filters) if i >= len(codes) or not getattr(codes[i], "is_failure", False)}
            if gone and self._remembered is not None:
                self._remembered.set(self._remembered.filters - (gone - set(self._wanted)))
            self._sub_lock.notify_all()
