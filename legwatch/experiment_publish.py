"""Tonight's experiment assignment over MQTT, so a phone can remind: registered on the monitor by
the command line (``Monitor.every(TonightPublisher(), "experiment_reminders", 60)``).

Retained, QoS 1, for every subject with an experiment kept in the store:

- ``<prefix>/summary/<subject>/experiment``: ``legwatch.experiment.tonight_doc`` as JSON
  (``intervention`` true, false, or null when no experiment runs tonight; ``reminder`` in words);
- ``homeassistant/binary_sensor/legwatch_<subject>/intervention_tonight/config``: a Home
  Assistant binary sensor "Intervention tonight" (on, off, or unknown), on the subject's legwatch
  device, with the document as attributes;
- ``<prefix>/summary/<subject>/availability``: ``online``.

Published when the document changes (tonight turns at 04:00, a plan is made or stopped) and at
least every ``REPUBLISH_S``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from legwatch import __version__
from legwatch.contracts import topics
from legwatch.experiment import plans, tonight_doc
from legwatch.homeassistant import HA_PREFIX, availability_topic, node_id
from legwatch.monitor.periodic import Tick

REPUBLISH_S = 3600.0
OBJECT_ID = "intervention_tonight"


def state_topic(prefix: str, subject: str) -> str:
    return f"{topics.summary(prefix, subject)}/experiment"


def config_topic(subject: str, ha_prefix: str = HA_PREFIX) -> str:
    return f"{ha_prefix}/binary_sensor/{node_id(subject)}/{OBJECT_ID}/config"


def discovery_config(prefix: str, subject: str) -> dict:
    node = node_id(subject)
    return {
        "name": "Intervention tonight",
        "has_entity_name": True,
        "unique_id": f"{node}_{OBJECT_ID}",
        "default_entity_id": f"binary_sensor.{node}_{OBJECT_ID}",
        "state_topic": state_topic(prefix, subject),
        "value_template": "{% if value_json.intervention is none %}None{% elif value_json.intervention %}ON"
        "{% else %}OFF{% endif %}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "json_attributes_topic": state_topic(prefix, subject),
        "icon": "mdi:flask-outline",
        "availability": [
            {
                "topic": availability_topic(prefix, subject),
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ],
        "device": {
            "identifiers": [node],
            "name": f"legwatch {subject}",
            "manufacturer": "legwatch",
            "model": "Shin accelerometer night summary",
            "sw_version": __version__,
        },
        "origin": {"name": "legwatch", "sw_version": __version__},
    }


def messages(prefix: str, doc: dict, ha_prefix: str = HA_PREFIX) -> list[tuple[str, bytes]]:
    subject = doc["subject"]
    return [
        (config_topic(subject, ha_prefix), json.dumps(discovery_config(prefix, subject)).encode()),
        (state_topic(prefix, subject), json.dumps(doc).encode()),
        (availability_topic(prefix, subject), b"online"),
    ]


class TonightPublisher:
    """The periodic task: publish each subject's ``tonight_doc`` when it changed (or hourly)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, ha_prefix: str = HA_PREFIX) -> None:
        self.clock = clock
        self.ha_prefix = ha_prefix
        self._last: dict[str, tuple[str, float]] = {}

    def __call__(self, tick: Tick) -> bool:
        if tick.connection is None:
            return False
        kept = plans(tick.store)
        published = False
        for subject in sorted({p.subject for p in kept}):
            doc = tonight_doc([p for p in kept if p.subject == subject], subject)
            key = json.dumps(doc, sort_keys=True)
            last = self._last.get(subject)
            if last is not None and last[0] == key and self.clock() - last[1] < REPUBLISH_S:
                continue
            for topic, payload in messages(tick.prefix, doc, self.ha_prefix):
                tick.connection.publish(topic, payload, qos=1, retain=True)
            self._last[subject] = (key, self.clock())
            published = True
        return published
