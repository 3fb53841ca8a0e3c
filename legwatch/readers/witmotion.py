"""WitMotion app / PC software export (WT901BLE etc.), as reconstructed in FORMATS.md section 3.

No real sample is public; the rule follows the column names several independent readers agree
on: ``Time``, ``Device name``, ``Chip Time()``, ``Acceleration X(g)``, ``Acceleration Y(g)``,
``Acceleration Z(g)``, ... (more columns follow and are ignored). Separated by tabs (older PC
software, perhaps with decimal commas), commas (cells may start with a space) or semicolons.
Times: the first of ``Chip Time()`` (the sensor's clock) and ``Time`` whose cells hold a date
(``2024-3-19 16:44:16.689``, unpadded; a colon before the milliseconds also reads), local time
in ``--tz``. Acceleration in g as the header says."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.base import ReadOptions, Recording, parse_datetimes, spread_repeats, to_g
from legwatch.readers.head import Head
from legwatch.readers.table import columns, find, read_text, split_header

NAME = "WitMotion export"


def sniff(head: Head) -> bool:
    first = head.first().replace(" ", "").lower()
    return "accelerationx(g)" in first


def _delimiter(line: str) -> str:
    return max(("\t", ",", ";"), key=line.count)


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    delim = _delimiter(head.first())
    names = [c.strip() for c in head.first().split(delim)]
    squeezed = [c.replace(" ", "").lower() for c in names]
    acc = [squeezed.index(f"acceleration{a}(g)") for a in "xyz" if f"acceleration{a}(g)" in squeezed]
    if len(acc) != 3:
        raise RecordingError("a WitMotion export without Acceleration X(g), Y(g) and Z(g)")
    _, body = split_header(read_text(path), 1)
    sample = body.split("\n", 1)[0].split(delim)
    time_col = None
    for cand in ("Chip Time()", "Chip Time", "Time"):
        idx = find(names, cand)
        if idx is not None and idx < len(sample) and "-" in sample[idx] and ":" in sample[idx]:
            time_col = idx
            break
    if time_col is None:
        raise RecordingError("a WitMotion export without a date in its Chip Time() or Time column")
    decimal_comma = delim != "," and "," in (sample[acc[0]] if acc[0] < len(sample) else "")
    data = columns(
        body,
        {"t": time_col, "x": acc[0], "y": acc[1], "z": acc[2]},
        delimiter=delim,
        first_line=2,
        dtypes={"t": str},
        decimal_comma=decimal_comma,
    )
    t, said = parse_datetimes(data["t"], opts, what=names[time_col])
    t, spread = spread_repeats(t)
    notes = [f"{spread} rows sharing a time spread evenly to the next"] if spread else []
    xyz, units = to_g(np.column_stack([data["x"], data["y"], data["z"]]), opts, declared="g")
    return Recording(t, xyz, NAME, units, f"from {names[time_col]}, {said}", notes)
