"""ActiGraph ActiLife RAW CSV export (FORMATS.md section 5a; GGIR's ``read.myacc.csv`` notes).

Ten header lines (possibly padded with commas): the first says ``... date format M/d/yyyy at 30
Hz ...``, then ``Start Time 11:55:00`` and ``Start Date 12/20/2021`` (local, no zone) among
others; line 11 names the columns ``Accelerometer X,Accelerometer Y,Accelerometer Z`` (g),
optionally after a ``Timestamp`` column. Without timestamps sample i is at start + i / rate; with
them (``M/d/yyyy HH:mm:ss.fff`` in the header's date format, or ISO 8601) each row has its own.
Local time: ``--tz``. Count (epoch) exports are refused: they are not raw acceleration."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.base import ReadOptions, Recording, local_to_unix, parse_datetimes, to_g
from legwatch.readers.head import Head
from legwatch.readers.table import columns, find, read_text, split_header

NAME = "ActiGraph ActiLife CSV"
HEADER_LINES = 10
_RATE = re.compile(r"at (\d+(?:\.\d+)?) Hz", re.I)
_DATEFMT = re.compile(r"date format (\S+)", re.I)


def sniff(head: Head) -> bool:
    return "Data File Created By ActiGraph" in head.first()


def _strptime_format(fmt: str) -> str:
    out = fmt
    for a, b in (("yyyy", "%Y"), ("MM", "%m"), ("M", "%m"), ("dd", "%d"), ("d", "%d")):
        out = re.sub(rf"(?<![%A-Za-z]){a}(?![A-Za-z])", b, out)
    return out


def _field(lines: list[str], key: str) -> str | None:
    for ln in lines:
        if ln.lower().startswith(key.lower()):
            return ln[len(key) :].strip().rstrip(",").strip()
    return None


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    lines, body = split_header(read_text(path), HEADER_LINES + 1)
    if len(lines) <= HEADER_LINES:
        raise RecordingError("an ActiGraph CSV shorter than its header")
    meta, names = lines[:HEADER_LINES], lines[HEADER_LINES].split(",")
    m = _RATE.search(meta[0])
    if not m:
        raise RecordingError("an ActiGraph CSV without 'at N Hz' in its first line")
    rate = float(m.group(1))
    cols = {a: find(names, f"Accelerometer {a.upper()}") for a in "xyz"}
    if any(c is None for c in cols.values()):
        raise RecordingError(
            f"an ActiGraph CSV without raw acceleration columns (found {','.join(names)[:60]!r}): "
            "count exports are not read"
        )
    ts_col = find(names, "Timestamp")
    dfmt = _strptime_format(_DATEFMT.search(meta[0]).group(1)) if _DATEFMT.search(meta[0]) else "%m/%d/%Y"
    want = {a: c for a, c in cols.items()}
    dtypes = {}
    if ts_col is not None:
        want["t"] = ts_col
        dtypes["t"] = str
    data = columns(body, want, delimiter=",", first_line=HEADER_LINES + 2, dtypes=dtypes)
    xyz = np.column_stack([data["x"], data["y"], data["z"]])
    if ts_col is not None:
        stamps = data["t"]
        if "/" in str(stamps[0]):
            stamps = np.array([_iso(s, dfmt) for s in stamps.tolist()])
        t, said = parse_datetimes(stamps, opts, what="Timestamp")
        times = f"from the Timestamp column, {said}"
    else:
        start_d, start_t = _field(meta, "Start Date"), _field(meta, "Start Time")
        try:
            start = datetime.strptime(f"{start_d} {start_t}", f"{dfmt} %H:%M:%S")
        except (TypeError, ValueError):
            raise RecordingError(f"an ActiGraph CSV whose start {start_d} {start_t} does not read as {dfmt}") from None
        naive = (start - datetime(1970, 1, 1)).total_seconds() + np.arange(len(xyz)) / rate
        t, said = local_to_unix(naive, opts)
        times = f"from the header's start {start:%Y-%m-%d %H:%M:%S} at {rate:g} Hz, {said}"
    xyz, units = to_g(xyz, opts, declared="g")
    return Recording(t, xyz, NAME, units, times)


def _iso(stamp: str, dfmt: str) -> str:
    date, _, clock = stamp.strip().partition(" ")
    try:
        d = datetime.strptime(date, dfmt)
    except ValueError:
        raise RecordingError(f"Timestamp {stamp[:40]!r} does not read as {dfmt}") from None
    return f"{d:%Y-%m-%d}T{clock}"
