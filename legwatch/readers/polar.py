"""Polar Sensor Logger (Android app by Jukka Happonen) ACC export, as in FORMATS.md section 2.

``Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]``: ``;``-separated, integers in mg.
``sensor timestamp [ns]`` counts ns since 2000-01-01T00:00:00 on the sensor's clock, which the app
sets to the phone's local time; ``Phone timestamp`` is local ``yyyy-MM-ddTHH:mm:ss.SSS``, no zone.
Sample times come from the sensor clock (exact spacing); when it disagrees with the phone's by
more than a minute (a clock never set restarts from a firmware default) it is moved onto the
phone's clock by their median difference over the first rows, and the reader says so. Local time: ``--tz``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.base import ReadOptions, Recording, local_to_unix, median, parse_datetimes, to_g
from legwatch.readers.head import Head
from legwatch.readers.table import columns, read_text, split_header

NAME = "Polar Sensor Logger"
POLAR_EPOCH = 946_684_800  # 2000-01-01T00:00:00 as Unix seconds
_CLOCK_ROWS = 2000
_UNIT = re.compile(r"^X \[(\w+)\]$", re.I)


def sniff(head: Head) -> bool:
    return head.first().startswith("Phone timestamp;")


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    header = head.first().split(";")
    if len(header) < 5 or header[1].strip() != "sensor timestamp [ns]" or not _UNIT.match(header[2].strip()):
        raise RecordingError(f"a Polar Sensor Logger file, but not accelerometer data (header {head.first()[:60]!r})")
    unit = _UNIT.match(header[2].strip()).group(1).lower()
    if unit != "mg":
        what = {"dps": "gyroscope", "g": "magnetometer (G is gauss here)"}.get(unit, unit)
        raise RecordingError(f"a Polar Sensor Logger {what} file, not acceleration: read the _ACC file")
    _, body = split_header(read_text(path), 1)
    cols = columns(
        body, {"sensor": 1, "x": 2, "y": 3, "z": 4}, delimiter=";", first_line=2, dtypes={"sensor": np.int64}
    )
    ns = cols["sensor"]
    sensor_naive = POLAR_EPOCH + float(ns[0]) / 1e9 + (ns - ns[0]) / 1e9  # sensor clock, as if UTC
    # the phone's clock of the first rows is enough to tell whether the sensor's was set
    head_rows = "\n".join(body.split("\n", _CLOCK_ROWS)[:_CLOCK_ROWS])
    phone = columns(head_rows, {"phone": 0}, delimiter=";", first_line=2, dtypes={"phone": str})["phone"]
    phone_naive, _ = parse_datetimes(phone, ReadOptions(tz="UTC"), what="Phone timestamp")
    diff = median(phone_naive - sensor_naive[: len(phone_naive)])
    notes = []
    if abs(diff) > 60:
        sensor_naive = sensor_naive + diff
        notes.append(f"the sensor clock was {diff:+.0f} s off the phone's: moved onto the phone's clock")
    t, said = local_to_unix(sensor_naive, opts)
    xyz, units = to_g(np.column_stack([cols["x"], cols["y"], cols["z"]]), opts, declared="mg")
    return Recording(t, xyz, NAME, units, f"from the sensor clock (ns since 2000-01-01), {said}", notes)
