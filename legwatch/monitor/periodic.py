"""Work the application asks the monitor to do every so often, between batches (the reminder of
tonight's experiment night is ``legwatch.experiment_publish``), so the monitor imports none of it.

A task is called with a ``Tick`` (the store, the MQTT connection, the topic prefix) at most once
per its period, on the worker thread between batches. It returns True when it did something
(counted in the monitor's stats under its name); whatever it raises is logged and it is tried
again next period. Tasks must be quick: the worker waits for them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from legwatch.storage import Store

log = logging.getLogger("legwatch.monitor")


@dataclass(frozen=True)
class Tick:
    store: Store
    #: the monitor's MQTT connection (``legwatch.mqtt.connection.Connection``); None before it connects
    connection: Any
    prefix: str


PeriodicTask = Callable[[Tick], bool]


class Periodic:
    def __init__(self, stats: Counter[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.stats = stats
        self.clock = clock
        #: [name, task, period, next due]
        self._tasks: list[list[Any]] = []

    def add(self, task: PeriodicTask, name: str, every_s: float) -> None:
        if every_s <= 0:
            raise ValueError(f"period of {name} must be > 0 s, got {every_s}")
        self._tasks.append([name, task, float(every_s), 0.0])

    def run_due(self, tick: Tick) -> None:
        now = self.clock()
        for entry in self._tasks:
            name, task, every, due = entry
            if now < due:
                continue
            entry[3] = now + every
            try:
                if task(tick):
                    self.stats[name] += 1
            except Exception:  # a failing task must not stop the monitor; tried again next period
                log.exception("%s failed; trying again in %.0f s", name, every)
