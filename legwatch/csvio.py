"""Reading and writing recordings: CSV with the header ``timestamp,ax,ay,az``.

``timestamp`` is Unix seconds (float), acceleration in g. Rows may be unevenly spaced and have
gaps. The reader parses with numpy in one pass (no per-row Python loop); only when that fails does
it walk the file to name the first bad line.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np

HEADER = ("timestamp", "ax", "ay", "az")


class RecordingError(ValueError):
    """The recording cannot be read; the message is one line and names the line where it applies."""


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(t, xyz) from a recording, sorted by time is NOT assumed: the caller decides."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise RecordingError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{p}: is a directory, expected a CSV file") from None
    except OSError as exc:
        raise RecordingError(f"{p}: cannot read: {exc.strerror}") from None
    first, _, body = raw.partition(b"\n")
    try:
        header = tuple(c.strip() for c in first.decode("utf-8-sig").strip().split(","))
    except UnicodeDecodeError:
        raise RecordingError(f"{p}:1: not a text CSV file") from None
    if header != HEADER:
        raise RecordingError(f"{p}:1: header must be {','.join(HEADER)}, found {','.join(header)[:80]!r}")
    if not body.strip():
        raise RecordingError(f"{p}: no data rows")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            data = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        raise RecordingError(_first_bad_line(p, body)) from None
    if data.size == 0:
        raise RecordingError(f"{p}: no data rows")
    if data.shape[1] != 4:
        raise RecordingError(_first_bad_line(p, body))
    if not np.isfinite(data).all():
        raise RecordingError(_first_bad_line(p, body))
    return data[:, 0].copy(), data[:, 1:4].copy()


def _first_bad_line(p: Path, body: bytes) -> str:
    for i, line in enumerate(body.decode("utf-8", "replace").splitlines(), start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != 4:
            return f"{p}:{i}: expected 4 values (timestamp,ax,ay,az), found {len(cells)}"
        for name, cell in zip(HEADER, cells, strict=True):
            try:
                v = float(cell)
            except ValueError:
                return f"{p}:{i}: {name} is not a number: {cell.strip()[:40]!r}"
            if not math.isfinite(v):
                return f"{p}:{i}: {name} is not finite: {cell.strip()[:40]!r}"
    return f"{p}: cannot parse the CSV"


def write_csv(path: str | Path, t: np.ndarray, xyz: np.ndarray) -> None:
    data = np.column_stack([np.asarray(t, dtype=np.float64), np.asarray(xyz, dtype=np.float64)])
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(HEADER) + "\n")
        np.savetxt(fh, data, fmt=["%.6f", "%.5f", "%.5f", "%.5f"], delimiter=",")
