"""legwatch's own CSV: header ``timestamp,ax,ay,az`` (README "Recording CSV").

Timestamps: Unix time in s, ms, µs or ns (told apart by size, or ``--time-unit``; seconds, the
contract's unit, when no unit gives a date in 2000-2100) or ISO 8601
date-times (with a zone, or local time in ``--tz``). Acceleration in g, mg or m/s² (gravity's
magnitude, or ``--units``). Numbers go through ``legwatch.csvio``'s vectorised reader."""

from __future__ import annotations

from pathlib import Path

from legwatch import csvio
from legwatch.readers.base import ReadOptions, Recording, parse_datetimes, to_g, unix_seconds
from legwatch.readers.head import Head

NAME = "legwatch CSV"


def sniff(head: Head) -> bool:
    return tuple(c.strip() for c in head.first().split(",")) == csvio.HEADER


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    raw_t, xyz = csvio.read_csv_times(path)
    if raw_t.dtype.kind in "US":
        t, times = parse_datetimes(raw_t, opts)
    else:
        t, times = unix_seconds(raw_t, opts, default="s")
    xyz, units = to_g(xyz, opts)
    return Recording(t, xyz, NAME, units, times)
