"""What the monitor has confirmed storing, on the sender's side of the end-to-end acknowledgement
(``legwatch.contracts.ack``): the batches sent and not yet covered by the monitor's watermark, in
the sender's own (unbounded) numbering, the re-sends it asked for, and the ranges the sender found
it no longer has. Pure bookkeeping; ``publisher.Publisher`` holds the lock around it.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

from legwatch.contracts import ack

#: A request for the same range again within this long is the same request (its re-sends are on
#: their way); after it, the range is sent once more.
REWIND_HOLDOFF_S = 8.0


class Confirmations:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[int] = []
        self._open: set[int] = set()
        #: the highest sequence number the monitor confirmed (sender numbering), None before any
        self.stored: int | None = None
        #: the highest sequence number sent
        self.sent_hi: int | None = None
        #: batches confirmed so far, and when the last confirmation moved the watermark
        self.confirmed = 0
        self.progress_at = clock()
        self._rewound: tuple[int, int, float] | None = None
        #: ranges found missing from the spool, not yet reported: [first, last]
        self.lost: list[list[int]] = []
        #: every batch found missing, for the final account
        self.lost_total = 0

    def __len__(self) -> int:
        """Batches sent and not confirmed."""
        return len(self._open)

    def open_seqs(self) -> list[int]:
        """Batches sent and not confirmed, in order."""
        return sorted(self._open)

    def is_open(self, seq: int) -> bool:
        return seq in self._open

    def sent(self, seq: int) -> None:
        if seq not in self._open:
            self._open.add(seq)
            heapq.heappush(self._heap, seq)
        if self.sent_hi is None or seq > self.sent_hi:
            self.sent_hi = seq

    def forget(self, seq: int) -> None:
        """No longer wait for ``seq`` (acknowledged by the broker only, or lost)."""
        self._open.discard(seq)

    def lowest(self) -> int | None:
        while self._heap and self._heap[0] not in self._open:
            heapq.heappop(self._heap)
        return self._heap[0] if self._heap else None

    def near(self) -> int:
        """A sequence number close to what the monitor talks about (to unwrap its 32-bit numbers)."""
        low = self.lowest()
        if low is not None:
            return low
        if self.stored is not None:
            return self.stored
        return self.sent_hi or 0

    def covered(self, seq: int) -> bool:
        return self.stored is not None and seq <= self.stored

    def confirm(self, stored32: int) -> list[int]:
        """The monitor stored everything up to ``stored32``: the sequence numbers that it newly covers."""
        stored = ack.unwrap(stored32, self.near())
        done = []
        while self._heap and self._heap[0] <= stored:
            s = heapq.heappop(self._heap)
            if s in self._open:
                self._open.discard(s)
                done.append(s)
        if self.stored is None or stored > self.stored:
            self.stored = stored
            self.progress_at = self.clock()
        self.confirmed += len(done)
        return done

    def rewind(self, lo32: int, hi32: int) -> list[int]:
        """The monitor asks again for ``lo32``..``hi32``: every open batch from there on, in order
        (go-back-N), unless the same was asked within ``REWIND_HOLDOFF_S``."""
        near = self.near()
        lo, hi = ack.unwrap(lo32, near), ack.unwrap(hi32, near)
        now = self.clock()
        if self._rewound is not None:
            a, b, t = self._rewound
            if a <= lo <= b and now - t < REWIND_HOLDOFF_S:
                return []
        again = sorted(s for s in self._open if s >= lo)
        self._rewound = (lo, max([hi, *again[-1:]]), now)
        return again

    def missing_from_spool(self, seq: int) -> None:
        self.forget(seq)
        self.lost_total += 1
        if self.lost and self.lost[-1][1] + 1 == seq:
            self.lost[-1][1] = seq
        else:
            self.lost.append([seq, seq])

    def take_lost(self) -> list[list[int]]:
        out, self.lost = self.lost, []
        return out
