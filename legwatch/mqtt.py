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

from legwatch.config import redact_url

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached or refused the connection (one-line message)."""


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
) -> tuple[mqtt.Client, BrokerAddress]:
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
        ctx = ssl.create_default_context(cafile=ca_file or None)
        client.tls_set_context(ctx)
    if will:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.max_inflight_messages_set(100)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.user_data_set({"addr": addr, "persistent": persistent, "protocol": protocol})
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

    client.on_connect = on_connect
    kwargs: dict = {"keepalive": keepalive}
    if ud.get("protocol", 5) == 5:
        kwargs["clean_start"] = not ud.get("persistent", True)
        if ud.get("persistent", True):
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
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
    rc = result["rc"]
    if rc.is_failure:
        client.loop_stop()
        client.disconnect()
        raise BrokerUnavailable(f"MQTT broker at {addr.url} refused the connection: {rc}")
    log.info("connected to MQTT broker %s as %s", addr.url, client._client_id.decode())
