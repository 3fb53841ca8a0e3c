"""Sequence numbers of one sensor's batches: what the monitor has, what it asks again, what is lost.

Pure bookkeeping for the router (``router.Router``), on 32-bit payload sequence numbers that wrap.
A stream whose sender takes part in the end-to-end acknowledgement (``contracts.ack``: it announced
a ``session``) is kept *contiguous*: a batch beyond a hole is not handled (the sender still has
it) and the hole is asked for again (go-back-N, as TCP without selective acknowledgements), until
the sender sends it or says it no longer has it (then the hole is recorded as a gap with the
sender's reason). A stream without a session (a do-it-yourself publisher) takes a hole as a gap
at once, as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WRAP = 2**32
HALF = WRAP // 2


def inc(seq: int, n: int = 1) -> int:
    return (seq + n) % WRAP


def dist(a: int, b: int) -> int:
    """How far ``b`` is after ``a`` (0..2**32-1)."""
    return (b - a) % WRAP


def after(a: int, b: int) -> bool:
    """``a`` comes after ``b``."""
    return 0 < dist(b, a) < HALF


def within(x: int, lo: int, hi: int) -> bool:
    return dist(lo, x) <= dist(lo, hi)


@dataclass
class AckState:
    """A stream's sequence bookkeeping beyond ``last_seq`` (checkpointed with it)."""

    #: the sender's session (``contracts.ack``); None: a publisher without acknowledgements
    session: str | None = None
    #: the highest sequence number seen beyond a hole (the batches after it were not handled)
    ahead: int | None = None
    #: [first, last] asked again: older numbers in here are the sender's expected re-sends
    resent: tuple[int, int] | None = None
    #: ranges the sender said it will never send, not reached yet: [first, last, reason]
    lost: list[tuple[int, int, str]] = field(default_factory=list)
    #: why the next gap the detector reports exists (data that nobody has)
    gap_reason: str | None = None
    #: holes recorded as lost, and the batches in them (for the progress line)
    gaps: int = 0
    lost_batches: int = 0

    def state(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "ahead": self.ahead,
            "resent": None if self.resent is None else list(self.resent),
            "lost": [list(x) for x in self.lost],
            "gap_reason": self.gap_reason,
            "gaps": self.gaps,
            "lost_batches": self.lost_batches,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> AckState:
        if not state:  # a checkpoint written before acknowledgements existed
            return cls()
        resent = state.get("resent")
        return cls(
            session=state.get("session"),
            ahead=None if state.get("ahead") is None else int(state["ahead"]),
            resent=None if resent is None else (int(resent[0]), int(resent[1])),
            lost=[(int(a), int(b), str(r)) for a, b, r in state.get("lost", [])],
            gap_reason=state.get("gap_reason"),
            gaps=int(state.get("gaps", 0)),
            lost_batches=int(state.get("lost_batches", 0)),
        )

    def missing(self, last_seq: int | None) -> list[tuple[int, int]]:
        """The range the monitor asks again: after ``last_seq`` up to what it saw beyond."""
        if self.ahead is None or last_seq is None or not after(self.ahead, last_seq):
            return []
        return [(inc(last_seq), self.ahead)]

    def expect_resend(self, last_seq: int | None) -> None:
        lo = inc(last_seq) if last_seq is not None else None
        if lo is not None and self.ahead is not None:
            self.resent = (lo if self.resent is None else self.resent[0], self.ahead)

    def is_resend(self, seq: int) -> bool:
        return self.resent is not None and within(seq, *self.resent)

    def add_lost(self, lo: int, hi: int, reason: str) -> None:
        if (lo, hi, reason) not in self.lost:
            self.lost.append((lo, hi, reason))

    def take_lost(self, last_seq: int) -> tuple[int, int, str] | None:
        """A lost range that starts right after ``last_seq`` (or covers it), cut to start there;
        ranges entirely at or before ``last_seq`` are dropped."""
        nxt = inc(last_seq)
        keep, found = [], None
        for lo, hi, why in self.lost:
            if not after(hi, last_seq):
                continue  # already passed
            if found is None and within(nxt, lo, hi):
                found = (nxt, hi, why)
                continue
            keep.append((lo, hi, why))
        self.lost = keep
        return found
