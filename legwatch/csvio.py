"""Reading and writing recordings: CSV with the header ``timestamp,ax,ay,az``.

``timestamp`` is Unix seconds (float), acceleration in g. Rows may be unevenly spaced and have
gaps. No per-row Python loop: plain decimal files (what ``write_csv`` and the synthetic nights
write: ``-?digits.digits`` with a fixed number of decimals per column) take a vectorised fast path
that parses the digits of every field at once; anything else (exponents, blanks, CRLF, spaces, a
varying number of decimals) goes through ``np.loadtxt``. Only when that fails too does the reader
walk the file to name the first bad line.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
    cut = raw.find(b"\n")
    first, offset = (raw, len(raw)) if cut < 0 else (raw[:cut], cut + 1)
    try:
        header = tuple(c.strip() for c in first.decode("utf-8-sig").strip().split(","))
    except UnicodeDecodeError:
        raise RecordingError(f"{p}:1: not a text CSV file") from None
    if header != HEADER:
        raise RecordingError(f"{p}:1: header must be {','.join(HEADER)}, found {','.join(header)[:80]!r}")
    fast = _parse_plain(raw, offset)
    if fast is not None:
        return fast
    body = raw[offset:]
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


# --- the fast path ------------------------------------------------------------------------------
# Every field of a plain file is ``-?[0-9]+\.[0-9]{d}`` with ``d`` fixed per column. Fields are cut
# at the separators, gathered right-aligned into small (rows x width) byte blocks and turned into
# their integer mantissa with one matrix-vector product per block; mantissa / 10**d is then exactly
# what strtod (and np.loadtxt) gives, because both are exact doubles (mantissa < 2**53) and one IEEE
# division rounds correctly. Work is done in cache-sized pieces: large temporaries cost more here
# (page faults) than the arithmetic.

_NCOL = len(HEADER)
_MAX_WIDTH = 20  # bytes per field; the header (>= 19 bytes) lies before the first field
_ROWS = 1 << 14  # rows per block
_CHUNK = 1 << 21  # bytes per piece of the file
_EXACT = 2.0**53
_COMMA, _NL, _MINUS, _DOT, _ZERO = b",\n-.0"


def _parse_plain(raw: bytes, offset: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(t, xyz) of a plain decimal file whose data rows start at ``offset``; None if it is not one.

    The file is taken in pieces of whole rows (``_CHUNK`` bytes), each scanned for separators and
    parsed into the final arrays: no temporary the size of the file."""
    end = len(raw) - 1 if raw.endswith(b"\n") else len(raw)
    if end <= offset:
        return None
    nrows = raw.count(b"\n", offset, end) + 1
    buf = np.frombuffer(raw, np.uint8)  # the whole file: the header pads the first field's window
    t = np.empty(nrows)
    xyz = np.empty((nrows, _NCOL - 1))
    outs = [t, *(xyz[:, c] for c in range(_NCOL - 1))]
    mask = np.empty(_CHUNK + 1, np.bool_)
    cols = np.arange(_MAX_WIDTH, dtype=np.uint8)
    decimals: list[int] = []
    row = 0
    a = offset
    while a < end:
        b = end if end - a <= _CHUNK else raw.rfind(b"\n", a, a + _CHUNK)
        if b < a:
            return None  # a row longer than a piece: not a plain file
        # separators: every byte <= ',' (the only other such bytes, space, '+', CR, ..., are refused below)
        m = mask[: b - a]
        np.less_equal(buf[a:b], _COMMA, out=m)
        bounds = np.concatenate(([a - 1], np.flatnonzero(m) + a, [b]))  # field i is buf[bounds[i]+1 : bounds[i+1]]
        nfields = len(bounds) - 1
        n = nfields // _NCOL
        if n * _NCOL != nfields or row + n > nrows:
            return None
        kinds = buf[bounds[1:-1]]
        if not ((kinds == _COMMA).sum() == n * (_NCOL - 1) and (kinds[_NCOL - 1 :: _NCOL] == _NL).all()):
            return None
        if not decimals:  # the number of decimals of each column, from the first row
            for c in range(_NCOL):
                field = raw[bounds[c] + 1 : bounds[c + 1]]
                dot = field.rfind(b".")
                if dot < 0:
                    return None
                decimals.append(len(field) - 1 - dot)
        for r in range(0, n, _ROWS):
            k = min(n, r + _ROWS)
            st = bounds[r * _NCOL : k * _NCOL].reshape(-1, _NCOL) + 1
            en = bounds[r * _NCOL + 1 : k * _NCOL + 1].reshape(-1, _NCOL)
            for c in range(_NCOL):
                v = _parse_block(buf, st[:, c], en[:, c], decimals[c], cols)
                if v is None:
                    return None
                outs[c][row + r : row + k] = v
        row += n
        a = b + 1
    if row != nrows:
        return None
    return t, xyz


def _parse_block(buf: np.ndarray, s: np.ndarray, e: np.ndarray, decimals: int, cols: np.ndarray) -> np.ndarray | None:
    lens = e - s
    neg = buf[s] == _MINUS
    w = int(lens.max())
    if w > _MAX_WIDTH or int((lens - neg).min()) < decimals + 2 or int(e[0]) < w:
        return None  # too long, or no digit before the '.'
    if not (buf[e - decimals - 1] == _DOT).all():
        return None  # the '.' is elsewhere: the number of decimals varies
    blk = sliding_window_view(buf, w)[e - w] - np.uint8(_ZERO)  # right-aligned: digit places fixed
    blk[cols[:w] < (w - lens).astype(np.uint8)[:, None]] = 0  # bytes before the field
    nondigit = blk > 9
    # Each field has its '.' (checked above) and, if negative, its leading '-': any other byte
    # that is not a digit makes the count larger.
    if np.count_nonzero(nondigit) != len(lens) + np.count_nonzero(neg):
        return None
    blk[nondigit] = 0
    j = np.arange(w)
    dot = w - 1 - decimals
    place = np.where(j > dot, w - 1 - j, w - 2 - j)
    weights = np.where(j == dot, 0.0, 10.0 ** np.maximum(place, 0))
    mantissa = blk.astype(np.float64) @ weights  # exact: integers below 2**53
    if mantissa.max() >= _EXACT:
        return None
    v = mantissa / 10.0**decimals
    np.negative(v, out=v, where=neg)
    return v


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
