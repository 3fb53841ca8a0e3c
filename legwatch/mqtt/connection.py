"""Building paho-mqtt clients the way every legwatch part needs them.

Fixed client ids, QoS 1, persistent sessions (MQTT 5 with ``clean_start=False`` and a session
expiry, or MQTT 3.1.1 with ``clean_session=False``), username/password from the URL, TLS for
``mqtts://``. Log lines show the URL with the password hidden.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from legwatch.contracts.config import ConfigError, redact_url

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600
#: Reconnect attempts start 1 s after a lost connection and double up to this.
RECONNECT_MAX_S = 15


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


def make_client(
    url: str,
    client_id: str,
    *,
    protocol: int = 5,
    persistent: bool = True,
    manual_ack: bool = False,
    ca_file: str = "",
    will: tuple[str, bytes] | None = None,
    receive_maximum: int = 0,
) -> tuple[mqtt.Client, BrokerAddress]:
    """A paho client for ``url`` (not yet connected; see ``connect``).

    ``receive_maximum`` (MQTT 5): at most this many unacknowledged QoS 1 messages are sent to this
    client at a time; with ``manual_ack`` that is the back-pressure that leaves the rest with the
    broker. (MQTT 3.1.1 has no such field: the broker's ``max_inflight_messages`` applies.)
    """
    addr = BrokerAddress.parse(url)
    if protocol == 5:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
        )
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
            manual_ack=manual_ack,
        )
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
    client.max_inflight_messages_set(100)
    client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
    client.user_data_set(
        {"addr": addr, "persistent": persistent, "protocol": protocol, "receive_maximum": receive_maximum}
    )
    return client, addr


def connect(client: mqtt.Client, addr: BrokerAddress, *, timeout: float = 10.0, keepalive: int = 30) -> None:
    """Connect and start the network thread; raise BrokerUnavailable if no CONNACK in ``timeout``."""
    ud = client.user_data_get() or {}
    done = threading.Event()
    result: dict = {}
    prev = client.on_connect

    def on_connect(c, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        done.set()
        if prev:
            prev(c, userdata, flags, reason_code, properties)

    prev_disconnect = client.on_disconnect

    def on_disconnect(c, userdata, flags, reason_code, properties):
        if not done.is_set():  # closed before any CONNACK: not an MQTT listener for this scheme?
            result["closed"] = reason_code
            done.set()
        elif prev_disconnect:
            prev_disconnect(c, userdata, flags, reason_code, properties)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    kwargs: dict = {"keepalive": keepalive}
    if ud.get("protocol", 5) == 5:
        # paho keeps clean_start and these properties for its own reconnects, so every CONNECT of a
        # persistent client says clean start 0 with the session expiry (never FIRST_ONLY's 1)
        kwargs["clean_start"] = not ud.get("persistent", True)
        props = Properties(PacketTypes.CONNECT)
        if ud.get("persistent", True):
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        if ud.get("receive_maximum"):
            props.ReceiveMaximum = int(ud["receive_maximum"])
        if ud.get("persistent", True) or ud.get("receive_maximum"):
            kwargs["properties"] = props
    try:
        client.connect(addr.host, addr.port, **kwargs)
    except (OSError, ValueError) as exc:
        raise BrokerUnavailable(f"cannot reach MQTT broker at {addr.url}: {exc}") from None
    client.loop_start()
    if not done.wait(timeout):
        client.loop_stop()
        raise BrokerUnavailable(f"no answer from MQTT broker at {addr.url} within {timeout:.0f} s")
    client.on_connect = prev
    client.on_disconnect = prev_disconnect
    if "rc" not in result:
        client.loop_stop()
        hint = "; it may expect TLS (mqtts://)" if not addr.tls else ""
        raise BrokerUnavailable(f"MQTT broker at {addr.url} closed the connection without answering{hint}")
    rc = result["rc"]
    if rc.is_failure:
        client.loop_stop()
        client.disconnect()
        raise BrokerUnavailable(f"MQTT broker at {addr.url} refused the connection: {rc}")
    log.info("connected to MQTT broker %s as %s", addr.url, client._client_id.decode())


def subscriptions(topics: list[str], protocol: int = 5, qos: int = 1) -> list[tuple[str, object]]:
    """``client.subscribe`` arguments. MQTT 5: retained messages only when the subscription is new
    (retain handling 1), so resubscribing after a reconnect does not deliver them again."""
    if protocol == 5:
        return [(t, SubscribeOptions(qos=qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)) for t in topics]
    return [(t, qos) for t in topics]
