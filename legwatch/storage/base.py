"""The point model shared by every store, and the ``Store`` interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

FieldValue = float | bool | str


class StoreError(Exception):
    """The store refused a request (bad data, bad query, auth). Not retried."""


class StoreUnavailable(StoreError):
    """The store could not be reached or answered 5xx. Safe to retry later."""


@dataclass(frozen=True)
class Point:
    """One InfluxDB-style point.

    ``time`` is Unix seconds; stores keep millisecond precision. A point is identified by
    measurement + tag set + time: writing the same identity again keeps the union of the old and
    new fields, new values winning (InfluxDB's rule), so replayed writes are idempotent.
    Numbers must be floats (ints are converted), ids belong in fields, never in tags.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time: float
    _ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ms", int(round(self.time * 1000.0)))

    @property
    def time_ms(self) -> int:
        return self._ms


def check_delete_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags of a ``delete``: at least one, none empty (``StoreError`` otherwise)."""
    wanted = dict(tags)
    if not wanted or not all(wanted.values()):
        raise StoreError("a delete names at least one tag, each with a value")
    return wanted


def tags_match(tags: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    """Whether a point's ``tags`` include ``wanted``; a wanted empty value means "no such tag"."""
    return all(tags.get(k, "") == v for k, v in (wanted or {}).items())


class Store(Protocol):
    """What the monitor, summary, log and correlate need from storage."""

    def write(self, points: Sequence[Point]) -> None:
        """Store points durably before returning; idempotent per point identity."""

    def query(
        self,
        measurement: str,
        *,
        start: float | None = None,
        end: float | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        """Points of one measurement with start <= time < end whose tags include ``tags``, by time."""
        ...

    def delete(
        self,
        measurement: str,
        *,
        start: float,
        end: float,
        tags: Mapping[str, str],
    ) -> None:
        """Remove the points of one measurement with start <= time < end whose tags include ``tags``
        (every value non-empty: deleting is always narrowed to a subject, a sensor, a habit)."""

    def ping(self) -> None:
        """Raise ``StoreUnavailable`` when the store cannot be reached."""

    def close(self) -> None: ...
