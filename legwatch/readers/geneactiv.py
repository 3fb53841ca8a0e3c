"""GENEActiv ``.bin`` (Activinsights), a small numpy reader of its text layout (FORMATS.md section 6).

A header in sections (``Device Identity`` first; ``Configuration Info`` with ``Measurement
Frequency``, ``Time Zone:GMT +01:00``; ``Calibration Data`` with each axis's gain and offset), then
pages: ``Recorded Data``, 8 ``key:value`` lines (``Page Time:2013-05-30 10:12:54:500``, local, a
colon before the milliseconds; ``Measurement Frequency``) and one line of 3600 hex digits, 300
samples of 48 bits: 12-bit two's-complement x, y, z, then 10 bits of light, a button bit and a
reserved bit. g = (raw * 100 - offset) / gain. Page times are local in the header's zone
(``--tz`` overrides); a page cut short (a truncated file) is left out and said."""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.base import ReadOptions, Recording, local_to_unix, parse_datetimes, to_g
from legwatch.readers.head import Head

NAME = "GENEActiv .bin"
_ZONE = re.compile(r"GMT\s*([+-])(\d{1,2}):(\d{2})")


def sniff(head: Head) -> bool:
    return head.raw.lstrip(b"\xef\xbb\xbf").startswith(b"Device Identity")


def _value(lines: list[str], key: str) -> str | None:
    key = key.lower() + ":"
    for ln in lines:
        if ln.lower().startswith(key):
            return ln[len(key) :].strip().strip("\x00").strip()
    return None


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    text = path.read_bytes().decode("latin-1")
    header, sep, rest = text.partition("Recorded Data")
    if not sep:
        raise RecordingError("a GENEActiv file without recorded data")
    hlines = [ln.strip("\r") for ln in header.split("\n")]
    try:
        cal = {
            k: float(_value(hlines, k) or "nan")
            for k in ("x gain", "x offset", "y gain", "y offset", "z gain", "z offset")
        }
    except ValueError:
        raise RecordingError("a GENEActiv file whose calibration data is not numbers") from None
    if not all(np.isfinite(list(cal.values()))) or min(cal["x gain"], cal["y gain"], cal["z gain"]) <= 0:
        raise RecordingError("a GENEActiv file without calibration data")
    pages = ("Recorded Data" + rest).split("Recorded Data")[1:]
    times, freqs, hexes, cut = [], [], [], 0
    for page in pages:
        lines = [ln.strip() for ln in page.split("\n") if ln.strip()]
        data = lines[-1] if lines else ""
        ptime, freq = _value(lines, "Page Time"), _value(lines, "Measurement Frequency")
        if ptime is None or freq is None or len(data) != 3600 or not re.fullmatch(r"[0-9A-Fa-f]+", data):
            cut += 1
            continue
        times.append(re.sub(r":(\d{3})$", r".\1", ptime))
        freqs.append(float(freq.split()[0]))
        hexes.append(data)
    if not hexes:
        raise RecordingError("a GENEActiv file without a complete page of data")
    b = np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(-1, 6).astype(np.int64)
    v = (b[:, 0] << 40) | (b[:, 1] << 32) | (b[:, 2] << 24) | (b[:, 3] << 16) | (b[:, 4] << 8) | b[:, 5]
    raw = [(v >> s) & 0xFFF for s in (36, 24, 12)]
    raw = [np.where(r >= 2048, r - 4096, r) for r in raw]
    xyz = np.column_stack(
        [(r * 100.0 - cal[f"{a} offset"]) / cal[f"{a} gain"] for r, a in zip(raw, "xyz", strict=True)]
    )
    page_naive, _ = parse_datetimes(np.array(times), ReadOptions(tz="UTC"), what="Page Time")
    freq = np.repeat(np.array(freqs), 300)
    naive = np.repeat(page_naive, 300) + np.tile(np.arange(300), len(hexes)) / freq
    zone_opts = opts
    m = _ZONE.search(_value(hlines, "Time Zone") or "")
    if opts.tz is None and m:
        off = timedelta(hours=int(m.group(2)), minutes=int(m.group(3))) * (-1 if m.group(1) == "-" else 1)
        t = naive - off.total_seconds()
        said = f"local time in the file's zone, GMT{timezone(off).tzname(None)[3:] or '+00:00'} (--tz overrides)"
    else:
        t, said = local_to_unix(naive, zone_opts)
    xyz, units = to_g(xyz, opts, declared="g", source="from the file's calibration")
    notes = [f"{cut} incomplete page(s) left out"] if cut else []
    return Recording(t, xyz, NAME, units, f"from the page times, {said}", notes)
