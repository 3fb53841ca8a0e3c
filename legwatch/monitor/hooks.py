"""What happens once a night is stored, registered by the application (the morning summary over
MQTT with Home Assistant discovery is ``legwatch.morning``), so the monitor imports none of it.

A hook is called with a ``NightStored`` once everything of that night is in the store (not while
results still wait in the outbox). It returns True when it did its work (counted in the monitor's
stats under its name); raising ``StoreUnavailable`` asks for another try later; anything else it
raises is logged and never undoes the stored night.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from detector.stream import Night
from legwatch.storage import Store, StoreUnavailable

log = logging.getLogger("legwatch.monitor")
#: Wait before a hook that found the store away is tried again.
RETRY_S = 10.0


@dataclass(frozen=True)
class NightStored:
    subject: str
    sensor: str
    night: Night
    store: Store
    #: the monitor's MQTT connection (``legwatch.mqtt.connection.Connection``); None before it connects
    connection: Any
    prefix: str


NightHook = Callable[[NightStored], bool]


class NightHooks:
    def __init__(self, stats: Counter[str]) -> None:
        self.stats = stats
        self._hooks: list[tuple[str, NightHook]] = []
        #: (name, hook, event) waiting for the store to hold everything, or to be back
        self.due: list[tuple[str, NightHook, NightStored]] = []
        self._next_try = 0.0

    def add(self, hook: NightHook, name: str) -> None:
        self._hooks.append((name, hook))

    def night_stored(self, event: NightStored, *, ready: bool) -> None:
        """``ready``: nothing of the night waits in the outbox (the hooks read it back from the store)."""
        for name, hook in self._hooks:
            if ready:
                self._run(name, hook, event)
            else:
                self.due.append((name, hook, event))

    def run_due(self, *, ready: bool) -> None:
        if self.due and ready and time.monotonic() >= self._next_try:
            due, self.due = self.due, []
            for name, hook, event in due:
                self._run(name, hook, event)

    def _run(self, name: str, hook: NightHook, event: NightStored) -> None:
        try:
            if hook(event):
                self.stats[name] += 1
        except StoreUnavailable as exc:  # gone again: try once more when it is back
            log.warning("%s of %s/%s waits for the store: %s", name, event.subject, event.sensor, exc)
            self.due.append((name, hook, event))
            self._next_try = time.monotonic() + RETRY_S
        except Exception:  # the night is stored; a hook that fails must not undo that
            log.exception("%s of %s/%s failed", name, event.subject, event.sensor)
