"""``legwatch import-habits FILE.csv``: many habit entries at once, all checked before any is written.

The CSV has a header row naming its columns, in any order:

- ``time`` (required): ISO 8601 (``2026-01-05T21:30``, ``2026-01-05 21:30``, with an optional zone
  such as ``+01:00`` or ``Z``; local time without one) or Unix seconds;
- ``habit`` (required): a known habit (``legwatch log list``) or a custom name;
- ``value``, ``unit``, ``note``, ``intensity``: as ``legwatch log`` takes them (empty: the default);
- ``subject`` (optional): whose habit (empty: the configured subject).

Blank lines are skipped. Every row goes through the same checks as ``legwatch log``; the first bad
row is reported as ``FILE:LINE: reason`` and nothing is written. Importing the same file again
writes nothing new (identical entries already stored are recognised).
"""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

from legwatch.habits import HabitEntry, HabitError, check_subject, make_entry

COLUMNS = ("time", "habit", "value", "unit", "note", "intensity", "subject")
REQUIRED = ("time", "habit")


def read_habits_csv(
    path: str | Path, default_subject: str, now: datetime | None = None
) -> list[tuple[str, HabitEntry]]:
    """Every row of ``path`` as (subject, entry); HabitError naming the file and line on the first bad row."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise HabitError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise HabitError(f"{p}: is a directory, expected a CSV file") from None
    except UnicodeDecodeError:
        raise HabitError(f"{p}: not a UTF-8 text file") from None
    except OSError as exc:
        raise HabitError(f"{p}: cannot read: {exc.strerror}") from None
    rows = csv.reader(text.splitlines())
    try:
        header = [c.strip().lower() for c in next(rows)]
    except StopIteration:
        raise HabitError(f"{p}: empty file; the first line names the columns, e.g. time,habit,value") from None
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise HabitError(f"{p}:1: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise HabitError(f"{p}:1: missing column {missing[0]!r} (required: {', '.join(REQUIRED)})")
    if len(set(header)) != len(header):
        raise HabitError(f"{p}:1: a column is named twice")
    out: list[tuple[str, HabitEntry]] = []
    errors: list[str] = []
    for lineno, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        try:
            out.append(_row(header, row, default_subject, now))
        except HabitError as exc:
            errors.append(f"{p}:{lineno}: {exc}")
    if errors:
        more = f" (and {len(errors) - 1} more bad line{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise HabitError(errors[0] + more)
    if not out:
        raise HabitError(f"{p}: no entries")
    return out


def _row(header: list[str], row: list[str], default_subject: str, now: datetime | None) -> tuple[str, HabitEntry]:
    if len(row) != len(header):
        raise HabitError(f"{len(row)} fields, the header has {len(header)}")
    cell = {k: v.strip() for k, v in zip(header, row, strict=True)}
    at: str | float = cell["time"]
    if not at:
        raise HabitError("time is empty")
    if re.fullmatch(r"[0-9]+(\.[0-9]*)?", at):
        at = float(at)
    subject = check_subject(cell.get("subject") or default_subject)
    entry = make_entry(
        cell["habit"],
        cell.get("value") or None,
        unit=cell.get("unit") or None,
        at=at,
        note=cell.get("note") or None,
        intensity=cell.get("intensity") or None,
        now=now,
        relative_times=False,
    )
    return subject, entry
