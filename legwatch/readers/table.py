"""Delimited text tables of other apps: columns picked by index, parsed by ``np.loadtxt`` (C).

Only when numpy refuses a row is the file walked in Python, to name the first bad line."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.head import decode


def read_text(p: Path) -> str:
    try:
        return decode(p.read_bytes())
    except OSError as exc:
        raise RecordingError(f"cannot read: {exc.strerror}") from None


def split_header(text: str, header_lines: int) -> tuple[list[str], str]:
    """The first ``header_lines`` lines and the body after them."""
    pos = 0
    lines = []
    for _ in range(header_lines):
        cut = text.find("\n", pos)
        if cut < 0:
            lines.append(text[pos:])
            return [ln.rstrip("\r") for ln in lines], ""
        lines.append(text[pos:cut])
        pos = cut + 1
    return [ln.rstrip("\r") for ln in lines], text[pos:]


def columns(
    body: str,
    cols: dict[str, int],
    *,
    delimiter: str,
    first_line: int,
    dtypes: dict[str, object] | None = None,
    decimal_comma: bool = False,
) -> dict[str, np.ndarray]:
    """Columns of ``body`` by name -> index (float64 unless ``dtypes`` says otherwise: ``str``,
    ``np.int64``). ``first_line`` is the file's line number of the body's first line (for errors)."""
    if decimal_comma:
        body = body.replace(",", ".")
    if not body.strip():
        raise RecordingError("no data rows")
    out = {}
    dtypes = dtypes or {}
    groups: dict[object, list[str]] = {}
    for name in cols:  # one pass of np.loadtxt per dtype, all its columns at once
        groups.setdefault(dtypes.get(name, np.float64), []).append(name)
    for dtype, names in groups.items():
        idx = tuple(cols[n] for n in names)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                v = np.loadtxt(io.StringIO(body), delimiter=delimiter, usecols=idx, dtype=dtype, ndmin=2, quotechar='"')
        except ValueError:
            raise RecordingError(_first_bad_any(body, names, idx, delimiter, first_line, dtype)) from None
        for j, name in enumerate(names):
            col = np.ascontiguousarray(v[:, j])
            if col.dtype.kind == "f" and not np.isfinite(col).all():
                bad = int(np.flatnonzero(~np.isfinite(col))[0])
                raise RecordingError(f"line {first_line + _nth_row_line(body, bad)}: {name} is not a finite number")
            out[name] = col
    return out


def _first_bad_any(body: str, names: list[str], idx: tuple, delimiter: str, first_line: int, dtype: object) -> str:
    for name, i in zip(names, idx, strict=True):
        msg = _first_bad(body, name, i, delimiter, first_line, dtype)
        if not msg.startswith("cannot parse"):
            return msg
    return f"cannot parse the columns {', '.join(names)}"


def _nth_row_line(body: str, n: int) -> int:
    """Offset in lines of the n-th non-empty row."""
    seen = -1
    for i, line in enumerate(body.splitlines()):
        if line.strip():
            seen += 1
            if seen == n:
                return i
    return n


def _first_bad(body: str, name: str, idx: int, delimiter: str, first_line: int, dtype: object) -> str:
    conv = int if dtype is np.int64 else (str if dtype is str else float)
    for i, line in enumerate(body.splitlines()):
        if not line.strip():
            continue
        cells = line.split(delimiter)
        if idx >= len(cells):
            return f"line {first_line + i}: {len(cells)} values, no column {name!r}"
        cell = cells[idx].strip().strip('"')
        try:
            conv(cell)
        except ValueError:
            return f"line {first_line + i}: {name} is not a number: {cell[:40]!r}"
    return f"cannot parse the column {name!r}"


def find(header: list[str], *candidates: str) -> int | None:
    """Index of the first header cell equal (case-insensitive, stripped) to one of ``candidates``."""
    cells = [c.strip().strip('"').strip().lower() for c in header]
    for cand in candidates:
        if cand.lower() in cells:
            return cells.index(cand.lower())
    return None
