"""MbientLab MetaBase CSV (MetaMotion / MetaWear sensors), every header dialect of FORMATS.md §1.

``epoc (ms),timestamp (-0800),elapsed (s),x-axis (g),y-axis (g),z-axis (g)`` (iOS/macOS app),
``epoch (ms),time (01:00),...`` (Android, MetaBase-Hub) and ``Epoch,Timestamp (-0800),Elapsed
(s),X,Y,Z`` (MetaBase 5: epoch in seconds). Times come from the epoch column (Unix time, UTC: no
zone needed); the local wall-time column and the header's zone label are not used (the Android
label can be wrong). Rows that share an epoch (streamed in packets) are spread evenly up to the
next epoch. Acceleration in g as the header says (MetaBase 5: gravity's magnitude). A gyroscope
or other sensor's file is refused; so is an epoch column rounded away (a copy re-saved by Excel,
``1.54747E+12``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.base import ReadOptions, Recording, spread_repeats, to_g, unix_seconds
from legwatch.readers.head import Head
from legwatch.readers.table import columns, read_text, split_header

NAME = "MbientLab MetaBase CSV"
_FIRST = re.compile(r"^\W{0,3}(epoc|epoch) \(ms\),|^\W{0,3}Epoch,Timestamp", re.I)


def sniff(head: Head) -> bool:
    return bool(_FIRST.match(head.first()))


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    header = [c.strip() for c in head.first().split(",")]
    if len(header) < 6:
        raise RecordingError(f"a MetaBase CSV with {len(header)} columns, expected 6")
    axes = [c.lower() for c in header[3:6]]
    if axes == ["x-axis (g)", "y-axis (g)", "z-axis (g)"]:
        declared: str | None = "g"
    elif axes == ["x", "y", "z"]:
        declared = None
    else:
        raise RecordingError(f"a MetaBase file of another sensor ({', '.join(header[3:6])}), not the accelerometer's")
    _, body = split_header(read_text(path), 1)
    data = columns(body, {"epoch": 0, "x": 3, "y": 4, "z": 5}, delimiter=",", first_line=2)
    epoch = data["epoch"]
    if len(epoch) > 20 and len(np.unique(epoch)) * 20 < len(epoch):
        raise RecordingError(
            f"the epoch column has {len(np.unique(epoch))} distinct values in {len(epoch)} rows "
            "(rounded, e.g. re-saved by a spreadsheet): its times cannot be read"
        )
    t, times = unix_seconds(epoch, opts, declared="ms" if "(ms)" in header[0].lower() else None)
    t, spread = spread_repeats(t)
    notes = [f"{spread} rows sharing an epoch spread evenly to the next"] if spread else []
    xyz, units = to_g(np.column_stack([data["x"], data["y"], data["z"]]), opts, declared=declared)
    return Recording(t, xyz, NAME, units, f"from the epoch column, {times}, UTC", notes)
