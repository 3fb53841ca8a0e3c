"""Where each sensor stands, in the log: one INFO line per sensor once a minute and whenever its
state changes (connected or not, taking part in acknowledgements, a hole asked again, a gap
recorded). Reads the router's state; the worker calls ``maybe_log`` between batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from legwatch.monitor.sequence import dist

log = logging.getLogger("legwatch.monitor")

#: How often (at most) every sensor's line is logged when nothing changed.
EVERY_S = 60.0


class Progress:
    def __init__(self, router: Any, clock: Callable[[], float] = time.monotonic, every_s: float = EVERY_S) -> None:
        self.router = router
        self.clock = clock
        self.every_s = every_s
        self._said: dict[str, tuple] = {}
        self._last = clock()

    def key(self, sensor: str, st: Any) -> tuple:
        """What a change is measured on."""
        seqs = st.seq
        presence = self.router.presence.get(sensor, "unknown")
        return (presence, seqs.session is not None, seqs.ahead is not None, seqs.gaps)

    def line(self, sensor: str, st: Any) -> str:
        seqs = st.seq
        parts = [
            f"{sensor}: {self.router.presence.get(sensor, 'no status seen since the monitor started')}",
            "acknowledged end to end" if seqs.session else "no acknowledgements (publisher without them)",
            f"{st.batches} batches stored" + ("" if st.last_seq is None else f" (up to #{st.last_seq})"),
        ]
        if st.last_t is not None:
            lag = max(0.0, time.time() - st.last_t)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(st.last_t))
            parts.append(f"lag {lag:.1f} s" if lag < 3600 else f"data up to {stamp}")
        missing = seqs.missing(st.last_seq)
        if missing:
            lo, hi = missing[0]
            parts.append(f"waiting for #{lo}-#{hi} ({dist(lo, hi) + 1} batches) sent again")
        parts.append(f"{seqs.gaps} gap(s) recorded ({seqs.lost_batches} batches lost)")
        return ", ".join(parts)

    def maybe_log(self) -> None:
        now = self.clock()
        due = now - self._last >= self.every_s
        streams = self.router.streams
        for sensor, st in streams.items():
            key = self.key(sensor, st)
            if due or self._said.get(sensor) != key:
                log.info("%s", self.line(sensor, st))
                self._said[sensor] = key
        if len(self._said) > len(streams):
            for sensor in [s for s in self._said if s not in streams]:
                del self._said[sensor]
        if due:
            self._last = now
