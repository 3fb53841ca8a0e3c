"""Phone logger apps: phyphox's CSV export and Sensor Logger's (Kelvin Choi), FORMATS.md section 7.

- **phyphox** (RWTH Aachen; ``DataExport.java``): quoted header ``"Time (s)","Acceleration x
  (m/s^2)",...``, comma, tab or semicolon separated (decimal commas with the latter two), numbers
  like ``6.999333331E-3``. ``Time (s)`` counts from the experiment's start; the absolute time is in
  the export's ``meta/time.csv`` (``"START",experiment time,system time (Unix s),...``), read from
  the export's ZIP or from ``meta/time.csv`` beside the CSV. The "Acceleration without g"
  experiment (``Linear Acceleration``) has no gravity and is refused.
- **Sensor Logger**: ``time,seconds_elapsed,z,y,x`` (columns found by name: the order is z, y, x),
  ``time`` in ns since the Unix epoch. ``TotalAcceleration.csv`` (m/s², with gravity) is what
  legwatch needs; ``Accelerometer.csv`` has gravity removed and is refused. Units by gravity's
  magnitude (the uncalibrated iOS file is in g)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.base import ReadOptions, Recording, to_g, unix_seconds
from legwatch.readers.head import Head, decode
from legwatch.readers.table import columns, find, read_text, split_header

NAME_PHYPHOX = "phyphox export"
NAME_SENSOR_LOGGER = "Sensor Logger"
NAME = "phone app export"
_PHYPHOX_ACC = re.compile(r'"?(Linear )?Acceleration x \(m/s\^2\)"?', re.I)


def sniff(head: Head) -> bool:
    first = head.first()
    if first.startswith('"Time (s)"') and _PHYPHOX_ACC.search(first):
        return True
    if "meta/time.csv" in head.zip_names():
        return True
    cells = [c.strip().lower() for c in first.split(",")]
    return cells[:2] == ["time", "seconds_elapsed"] and {"x", "y", "z"} <= set(cells)


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    if head.raw[:4] == b"PK\x03\x04":
        return _phyphox_zip(path, opts)
    if head.first().startswith('"Time (s)"'):
        meta = path.parent / "meta" / "time.csv"
        time_csv = meta.read_text(encoding="utf-8", errors="replace") if meta.is_file() else None
        return _phyphox(read_text(path), time_csv, opts, where="meta/time.csv beside it")
    return _sensor_logger(path, head, opts)


def _phyphox_zip(path: Path, opts: ReadOptions) -> Recording:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            data = [n for n in names if n.lower().endswith(".csv") and not n.startswith("meta/")]
            texts = {n: decode(z.read(n)) for n in data}
            time_csv = decode(z.read("meta/time.csv")) if "meta/time.csv" in names else None
    except (zipfile.BadZipFile, OSError) as exc:
        raise RecordingError(f"a damaged ZIP file ({exc})") from None
    acc = [n for n, tx in texts.items() if _PHYPHOX_ACC.search(tx.split("\n", 1)[0])]
    if not acc:
        raise RecordingError("a phyphox export without an acceleration table")
    return _phyphox(texts[acc[0]], time_csv, opts, where="meta/time.csv in the ZIP")


def _phyphox(text: str, time_csv: str | None, opts: ReadOptions, *, where: str) -> Recording:
    lines, body = split_header(text, 1)
    first = lines[0]
    if re.search(r"Linear Acceleration", first, re.I):
        raise RecordingError(
            "phyphox 'Acceleration without g' (linear acceleration) has no gravity in it: record with "
            "'Acceleration with g' instead"
        )
    delim = max(("\t", ";", ","), key=first.count)
    names = [c.strip().strip('"') for c in first.split(delim)]
    idx = {a: find(names, f"Acceleration {a} (m/s^2)") for a in "xyz"}
    if any(v is None for v in idx.values()):
        raise RecordingError("a phyphox table without Acceleration x, y and z (m/s^2)")
    data = columns(
        body, {"t": 0, **idx}, delimiter=delim, first_line=2, decimal_comma=delim != "," and "," in body[:2000]
    )
    if time_csv is None:
        raise RecordingError(
            f"phyphox times count from the experiment's start and the absolute start is in meta/time.csv, which is "
            f"missing ({where}): read the export's ZIP"
        )
    t = _phyphox_clock(data["t"], time_csv)
    xyz, units = to_g(np.column_stack([data["x"], data["y"], data["z"]]), opts, declared="m/s2")
    return Recording(t, xyz, NAME_PHYPHOX, units, "experiment time + the system time of its START (meta/time.csv), UTC")


def _phyphox_clock(exp_t: np.ndarray, time_csv: str) -> np.ndarray:
    starts = []
    for row in time_csv.splitlines()[1:]:
        cells = [c.strip().strip('"') for c in row.split(",")]
        if len(cells) >= 3 and cells[0].upper() == "START":
            try:
                starts.append((float(cells[1]), float(cells[2])))
            except ValueError:
                continue
    if not starts:
        raise RecordingError("phyphox meta/time.csv has no START event with a system time")
    starts.sort()
    ex = np.array([s[0] for s in starts])
    sys_t = np.array([s[1] for s in starts])
    k = np.clip(np.searchsorted(ex, exp_t, side="right") - 1, 0, None)
    return sys_t[k] + (exp_t - ex[k])


def _sensor_logger(path: Path, head: Head, opts: ReadOptions) -> Recording:
    names = [c.strip().lower() for c in head.first().split(",")]
    _, body = split_header(read_text(path), 1)
    data = columns(
        body,
        {"t": 0, "x": names.index("x"), "y": names.index("y"), "z": names.index("z")},
        delimiter=",",
        first_line=2,
        dtypes={"t": np.int64},
    )
    ns = data["t"]
    t, times = unix_seconds(
        ns.astype(np.float64) if opts.tunit else _exact_ns(ns), opts, declared=None if opts.tunit else "s"
    )
    if opts.tunit is None:
        times = "in ns since the Unix epoch (Sensor Logger), UTC"
    xyz = np.column_stack([data["x"], data["y"], data["z"]])
    try:
        xyz, units = to_g(xyz, opts)
    except RecordingError as exc:
        if "no gravity" in str(exc):
            raise RecordingError(
                f"{exc}; Sensor Logger's Accelerometer.csv has gravity removed: read TotalAcceleration.csv"
            ) from None
        raise
    return Recording(t, xyz, NAME_SENSOR_LOGGER, units, times)


def _exact_ns(ns: np.ndarray) -> np.ndarray:
    return ns[0] / 1e9 + (ns - ns[0]) / 1e9
