"""ActiGraph ``.gt3x`` (firmware after 2.5.0), a small numpy reader of the published format.

Documented in ``actigraph/GT3X-File-Format`` (README.md, LogRecords/Activity.md, info.txt.md;
summarised in FORMATS.md section 5b): a ZIP holding ``info.txt`` (``Sample Rate``, ``Acceleration
Scale``, ``TimeZone: 02:00:00``) and ``log.bin``, a sequence of records: ``0x1E``, type, uint32
Unix-seconds timestamp (local wall time), uint16 payload size, payload, checksum (one's complement
of the XOR of the bytes before it). ACTIVITY records (type 0x00) hold one second of 12-bit
two's-complement samples packed big-endian in the order Y, X, Z; ACTIVITY2 (0x1A) int16 X, Y, Z.
Counts / ``Acceleration Scale`` = g (256 or 341 when info.txt does not say). Records with a bad
checksum are skipped; a record too short for a second of samples (idle sleep mode) leaves a gap,
which the reader says. Times are local in info.txt's zone (``--tz`` overrides). The older
NHANES-style file (``activity.bin``) is refused."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.base import ReadOptions, Recording, local_to_unix, to_g
from legwatch.readers.head import Head

NAME = "ActiGraph .gt3x"


def sniff(head: Head) -> bool:
    names = head.zip_names()
    return "info.txt" in names and ("log.bin" in names or "activity.bin" in names)


def _info(z: zipfile.ZipFile) -> dict[str, str]:
    text = z.read("info.txt").decode("utf-8-sig", "replace")
    out = {}
    for ln in text.splitlines():
        k, sep, v = ln.partition(":")
        if sep:
            out[k.strip().lower()] = v.strip()
    return out


def _number(info: dict[str, str], key: str) -> float | None:
    try:
        return float(info[key].replace(",", "."))
    except (KeyError, ValueError):
        return None


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            if "log.bin" not in names:
                raise RecordingError(
                    "an older .gt3x (activity.bin, firmware up to 2.5.0): not read; export CSV from ActiLife"
                )
            info = _info(z)
            log = np.frombuffer(z.read("log.bin"), np.uint8)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise RecordingError(f"a damaged .gt3x file ({exc})") from None
    rate = _number(info, "sample rate")
    if not rate or rate <= 0:
        raise RecordingError("a .gt3x file without a sample rate in info.txt")
    serial = info.get("serial number", "")
    scale = _number(info, "acceleration scale") or (341.0 if serial[:3] in ("NEO", "CLE") else 256.0)
    per_second = int(round(rate))
    stamps, chunks, short, bad = [], [], 0, 0
    i, n = 0, len(log)
    raw = log.tobytes()
    while i + 8 <= n:
        if log[i] != 0x1E:
            nxt = raw.find(b"\x1e", i + 1)
            if nxt < 0:
                break
            i = nxt
            continue
        typ = raw[i + 1]
        ts = int.from_bytes(raw[i + 2 : i + 6], "little")
        size = int.from_bytes(raw[i + 6 : i + 8], "little")
        end = i + 8 + size
        if end >= n:
            break
        if typ in (0x00, 0x1A):
            chk = np.bitwise_xor.reduce(log[i:end]) ^ 0xFF
            if chk != log[end]:
                bad += 1
            elif typ == 0x00:
                if size * 2 < per_second * 9:
                    short += 1
                else:
                    chunks.append(_unpack12(log[i + 8 : end], per_second))
                    stamps.append(ts)
            else:
                v = log[i + 8 : i + 8 + per_second * 6]
                if len(v) < per_second * 6:
                    short += 1
                else:
                    chunks.append(v.view("<i2").reshape(-1, 3).astype(np.float64))
                    stamps.append(ts)
        i = end + 1
    if not chunks:
        raise RecordingError("a .gt3x file without activity records")
    counts = np.concatenate(chunks)
    naive = np.repeat(np.array(stamps, np.float64), per_second) + np.tile(np.arange(per_second) / rate, len(stamps))
    tz = info.get("timezone", "")
    m = re.fullmatch(r"(-?)(\d{1,2}):(\d{2})(?::\d{2})?", tz)
    if opts.tz is None and m:
        off = (int(m.group(2)) * 3600 + int(m.group(3)) * 60) * (-1 if m.group(1) else 1)
        t = naive - off
        hhmm = f"{'-' if off < 0 else '+'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
        said = f"local time in info.txt's zone, {hhmm} (--tz overrides)"
    else:
        t, said = local_to_unix(naive, opts)
    xyz, units = to_g(counts / scale, opts, declared="g", source=f"counts / {scale:g}, info.txt's scale")
    notes = []
    if short:
        notes.append(f"{short} s of idle sleep mode (no samples) left as gaps")
    if bad:
        notes.append(f"{bad} record(s) with a bad checksum skipped")
    return Recording(t, xyz, NAME, units, f"from the records, {said}", notes)


def _unpack12(payload: np.ndarray, n: int) -> np.ndarray:
    """n samples of 12-bit big-endian values in the order Y, X, Z -> (n, 3) counts as X, Y, Z."""
    need = (n * 3 * 12 + 7) // 8
    b = payload[:need].astype(np.int64)
    if len(b) % 3:
        b = np.concatenate([b, np.zeros(3 - len(b) % 3, np.int64)])
    tri = b.reshape(-1, 3)  # 3 bytes = two 12-bit values
    first = (tri[:, 0] << 4) | (tri[:, 1] >> 4)
    second = ((tri[:, 1] & 0x0F) << 8) | tri[:, 2]
    vals = np.column_stack([first, second]).ravel()[: n * 3]
    vals = np.where(vals >= 2048, vals - 4096, vals).reshape(n, 3).astype(np.float64)
    return vals[:, [1, 0, 2]]
