"""InfluxDB line protocol (precision ms) and the point rules every store shares.

``to_line`` serialises a ``Point`` the way InfluxDB's own clients do: tags sorted by key, empty tag
values dropped, NaN/inf/None fields dropped, numbers always written as floats (never the ``i`` integer
type, so a field never changes type between writes), escaping per the line-protocol reference
(measurement: comma, space; tag keys/values and field keys: comma, ``=``, space; string fields:
``"`` and ``\\``).

``normalise`` applies the same rules without serialising; ``SqliteStore`` uses it so that both stores
accept and refuse exactly the same points. Names that line protocol cannot carry faithfully are
refused with ``StoreError`` rather than silently altered: control characters (a newline ends a line),
a trailing backslash (it would escape the separator after it), a measurement starting with ``#``
(a comment), the key ``time``, and a tag key that is also a field key.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from legwatch.storage.base import FieldValue, Point, StoreError

__all__ = ["normalise", "point_sort_key", "to_line", "to_ms"]

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})

# InfluxDB stores nanoseconds in an int64: about 1677-09-21 to 2262-04-11.
_MIN_MS = -(2**63) // 1_000_000 + 1
_MAX_MS = (2**63 - 1) // 1_000_000


def to_ms(seconds: float) -> int:
    """Unix seconds to integer milliseconds, rounded exactly as ``Point.time_ms`` rounds."""
    return int(round(float(seconds) * 1000.0))


def point_sort_key(point: Point) -> tuple[int, tuple[tuple[str, str], ...]]:
    """The order both stores return points in: by time, then by tag set."""
    return point.time_ms, tuple(sorted(point.tags.items()))


def _check_name(kind: str, name: object, measurement: str | None) -> str:
    where = "" if measurement is None else f" on measurement {measurement!r}"
    if not isinstance(name, str):
        raise StoreError(f"{kind} {name!r}{where} is not a string")
    if not name:
        raise StoreError(f"empty {kind}{where}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise StoreError(f"{kind} {name!r}{where} contains a control character")
    if name.endswith("\\"):
        raise StoreError(f"{kind} {name!r}{where} ends with a backslash")
    return name


def _field_value(key: str, value: object, measurement: str) -> FieldValue | None:
    """The stored form of a field value; None when the field is dropped (NaN, inf)."""
    if isinstance(value, bool) or (getattr(getattr(value, "dtype", None), "kind", "") == "b"):
        return bool(value)
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real):
        try:
            number = float(value)
        except (OverflowError, ValueError) as exc:
            raise StoreError(f"field {key!r} on measurement {measurement!r}: {exc}") from None
        return number if math.isfinite(number) else None
    raise StoreError(f"field {key!r} on measurement {measurement!r} has unsupported type {type(value).__name__}")


def normalise(point: Point) -> tuple[dict[str, str], dict[str, FieldValue]]:
    """The tags and fields a store keeps for ``point``, or ``StoreError`` if it cannot be stored.

    Tags come back sorted by key without empty (or None) values; fields sorted by key, numbers as
    floats, NaN/inf/None dropped. A point left without fields is refused.
    """
    measurement = point.measurement
    _check_name("measurement", measurement, None)
    if measurement.startswith("#"):
        raise StoreError(f"measurement {measurement!r} starts with '#' (a line-protocol comment)")
    if not (_MIN_MS <= point.time_ms <= _MAX_MS):
        raise StoreError(f"time {point.time!r} of a {measurement!r} point is outside InfluxDB's range")

    tags: dict[str, str] = {}
    for key, value in sorted(_items(point.tags, "tags", measurement)):
        _check_name("tag key", key, measurement)
        if value is None or value == "":
            continue
        _check_name(f"value of tag {key!r}", value, measurement)
        tags[key] = value

    fields: dict[str, FieldValue] = {}
    for key, value in sorted(_items(point.fields, "fields", measurement)):
        _check_name("field key", key, measurement)
        stored = None if value is None else _field_value(key, value, measurement)
        if stored is not None:
            fields[key] = stored

    if "time" in tags or "time" in fields:
        raise StoreError(f"'time' is reserved and cannot be a tag or field key (measurement {measurement!r})")
    shared = sorted(tags.keys() & fields.keys())
    if shared:
        raise StoreError(f"{shared[0]!r} is both a tag key and a field key on measurement {measurement!r}")
    if not fields:
        raise StoreError(f"a {measurement!r} point at {point.time!r} has no storable fields")
    return tags, fields


def _items(mapping: Mapping[str, object], what: str, measurement: str) -> list[tuple[str, object]]:
    items = list(mapping.items())
    if any(not isinstance(k, str) for k, _ in items):
        raise StoreError(f"{what} of a {measurement!r} point must have string keys")
    return items


def _format_field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.translate(_STRING_ESCAPES) + '"'
    # repr() of a float always reads back as a float: "1.0", "1e+16", "5e-324" (never an "i" integer).
    return repr(value)


def to_line(point: Point) -> str:
    """One line of line protocol for ``point``, timestamp in milliseconds (``precision=ms``)."""
    tags, fields = normalise(point)
    parts = [point.measurement.translate(_MEASUREMENT_ESCAPES)]
    parts.extend(f",{k.translate(_KEY_ESCAPES)}={v.translate(_KEY_ESCAPES)}" for k, v in tags.items())
    parts.append(" ")
    parts.append(",".join(f"{k.translate(_KEY_ESCAPES)}={_format_field(v)}" for k, v in fields.items()))
    parts.append(f" {point.time_ms}")
    return "".join(parts)
