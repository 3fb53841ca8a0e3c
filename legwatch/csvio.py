"""Reading and writing recordings: CSV with the header ``timestamp,ax,ay,az``.

``timestamp`` is Unix seconds (float), acceleration in g. Rows may be unevenly spaced and have
gaps. No per-row Python loop: files of plain decimals (``-?digits.digits``: what ``write_csv``,
printf-style formats and Python's repr write, a few exponents such as repr's ``5e-05`` among them)
take a vectorised fast path that parses the digits of every field at once; anything else
(exponents everywhere, blanks, CRLF, spaces, over 19 significant digits) goes through
``np.loadtxt``. Only when that fails too does the reader walk the file to name the first bad line.
"""

from __future__ import annotations

import contextlib
import io
import math
import mmap
import warnings
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from legwatch import decimal_words

HEADER = ("timestamp", "ax", "ay", "az")


class RecordingError(ValueError):
    """The recording cannot be read; the message is one line and names the line where it applies."""


def read_csv(path: str | Path, *, times_as_text: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(t, xyz) from a recording, sorted by time is NOT assumed: the caller decides."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            try:  # mapped, not copied: the fast path reads it once, in place
                raw: bytes | mmap.mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (ValueError, OSError):  # empty, or not a file that maps (a pipe)
                raw = fh.read()
    except FileNotFoundError:
        raise RecordingError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{p}: is a directory, expected a CSV file") from None
    except OSError as exc:
        raise RecordingError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        return _read(p, raw, times_as_text)
    finally:
        if isinstance(raw, mmap.mmap):
            with contextlib.suppress(BufferError):  # a view still held (a traceback): freed with it
                raw.close()


def read_csv_times(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, xyz) as written: numbers (float64) or, when the first timestamp is a date-time
    (it holds ':'), the timestamp column as strings for the caller to parse (``legwatch.readers``)."""
    return read_csv(path, times_as_text=True)


def _read(p: Path, raw: bytes | mmap.mmap, times_as_text: bool = False) -> tuple[np.ndarray, np.ndarray]:
    cut = raw.find(b"\n")
    first, offset = (raw[:], len(raw)) if cut < 0 else (raw[:cut], cut + 1)  # bytes, also of an mmap
    try:
        header = tuple(c.strip() for c in first.decode("utf-8-sig").strip().split(","))
    except UnicodeDecodeError:
        raise RecordingError(f"{p}:1: not a text CSV file") from None
    if header != HEADER:
        raise RecordingError(f"{p}:1: header must be {','.join(HEADER)}, found {','.join(header)[:80]!r}")
    comma = raw.find(b",", offset, offset + 64) if times_as_text else -1
    if comma > offset and b":" in raw[offset:comma]:  # the first timestamp is a date-time
        return _read_text_times(p, raw[offset:])
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


def _read_text_times(p: Path, body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Date-time timestamps: the column as strings, the rest as numbers (``np.loadtxt``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            times = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=str, usecols=0, ndmin=1)
            data = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float64, usecols=(1, 2, 3), ndmin=2)
    except ValueError:
        raise RecordingError(_first_bad_line(p, body, text_times=True)) from None
    if data.size == 0:
        raise RecordingError(f"{p}: no data rows")
    if not np.isfinite(data).all():
        raise RecordingError(_first_bad_line(p, body, text_times=True))
    return times, data


# --- the fast path ------------------------------------------------------------------------------
# Fields are cut at the separators and gathered right-aligned into small (rows x width) byte
# blocks. When a column has the same number of decimals d in every field (printf's %.6f, numpy's
# savetxt with a fmt), every digit has a fixed place and one matrix-vector product per block gives
# the integer mantissas; mantissa / 10**d is then exactly what strtod (and np.loadtxt) gives,
# because both are exact doubles (mantissa < 2**53) and one IEEE division rounds correctly.
# Otherwise (repr) the '.' is found per row and squeezed out with 64-bit integer arithmetic
# (``_squeeze_dot``); mantissas of 16-19 digits are divided in extended precision (within one unit
# in the last place of strtod; identical in every test so far). Work is done in 2 MB pieces of the
# file: large temporaries cost more here (page faults) than the arithmetic.

_NCOL = len(HEADER)
_MAX_WIDTH = 32  # bytes per field; the header (>= 19 bytes) lies before the first field
_ROWS = 1 << 14  # rows per block
_CHUNK = 1 << 21  # bytes per piece of the file
_EXACT = 2.0**53
_COMMA, _NL, _PLUS, _MINUS, _DOT, _ZERO = b",\n+-.0"


def _parse_plain(raw: bytes, offset: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(t, xyz) of a plain decimal file whose data rows start at ``offset``; None if it is not one.

    The file is taken in pieces of whole rows (``_CHUNK`` bytes), each scanned for separators and
    parsed into the final arrays: no temporary the size of the file. The arrays are sized from the
    first row's length (with room to spare) and grow if the rows turn out shorter."""
    end = len(raw) - 1 if raw[-1:] == b"\n" else len(raw)
    if end <= offset:
        return None
    first = raw.find(b"\n", offset, end)
    row_len = (first if first >= 0 else end) - offset + 1
    nrows = int((end - offset + 1) / row_len * 1.2) + 16
    buf = np.frombuffer(raw, np.uint8)  # the whole file: the header pads the first field's window
    t = np.empty(nrows)
    xyz = np.empty((nrows, _NCOL - 1))
    mask = np.empty(_CHUNK + 1, np.bool_)
    cols = np.arange(_MAX_WIDTH, dtype=np.uint8)
    decimals: list[int] = []
    row = 0
    a = offset
    while a < end:
        b = end if end - a <= _CHUNK else raw.rfind(b"\n", a, a + _CHUNK)
        if b < a:
            return None  # a row longer than a piece: not a plain file
        # separators: every byte <= ',' but '+' (space, CR, ..., are refused below)
        m = mask[: b - a]
        np.less_equal(buf[a:b], _COMMA, out=m)
        at = np.flatnonzero(m)
        bounds = np.empty(len(at) + 2, np.int64)  # field i is buf[bounds[i]+1 : bounds[i+1]]
        bounds[0], bounds[-1] = a - 1, b
        seps = np.add(at, a, out=bounds[1:-1])  # (written in place: no copy of the separators)
        kinds = buf[seps]
        if (kinds == _PLUS).any():  # an exponent's sign (1e+20) is part of its field
            seps = seps[kinds != _PLUS]
            kinds = buf[seps]
            bounds = np.concatenate(([a - 1], seps, [b]))
        nfields = len(bounds) - 1
        n = nfields // _NCOL
        if n * _NCOL != nfields:
            return None
        if row + n > nrows:  # shorter rows than the first: more room
            nrows = max(2 * nrows, row + n)
            t, xyz = _grown(t, row, nrows), _grown(xyz, row, nrows)
        outs = [t, *(xyz[:, c] for c in range(_NCOL - 1))]
        if not ((kinds == _COMMA).sum() == n * (_NCOL - 1) and (kinds[_NCOL - 1 :: _NCOL] == _NL).all()):
            return None
        if not decimals:  # the number of decimals of each column, from the first row
            for c in range(_NCOL):
                field = raw[bounds[c] + 1 : bounds[c + 1]]
                dot = field.rfind(b".")
                decimals.append(len(field) - 1 - dot if dot >= 0 else -1)  # -1: see per row
        for r in range(0, n, _ROWS):
            k = min(n, r + _ROWS)
            # each column's starts and ends contiguous (.T.copy()): the index arithmetic and
            # gathers on them run several times faster than on strided columns
            st = (bounds[r * _NCOL : k * _NCOL].reshape(-1, _NCOL) + 1).T.copy()
            en = bounds[r * _NCOL + 1 : k * _NCOL + 1].reshape(-1, _NCOL).T.copy()
            for c in range(_NCOL):
                v = _parse_block(buf, st[c], en[c], decimals[c], cols)
                if v is None:
                    return None
                outs[c][row + r : row + k] = v
        row += n
        a = b + 1
    return t[:row], xyz[:row]


def _grown(x: np.ndarray, used: int, n: int) -> np.ndarray:
    out = np.empty((n, *x.shape[1:]))
    out[:used] = x[:used]
    return out


def _parse_block(
    buf: np.ndarray,
    s: np.ndarray,
    e: np.ndarray,
    decimals: int,
    cols: np.ndarray,
    exp10: np.ndarray | None = None,
) -> np.ndarray | None:
    """The numbers in fields ``buf[s:e]`` (times 10**exp10), or None when they are not all plain
    decimals.

    ``decimals`` is what the column's first field has; when every field has as many, the '.'
    stands in one column of the block and is not searched for. Mantissas come from one
    matrix-vector product per '.' column (``_by_decimals``) or, past 2**53, from integer
    arithmetic (``_squeeze_dot``). Fields with an exponent are split at their 'e'
    (``_with_exponents``)."""
    lens = e - s
    n = len(lens)
    w = int(lens.max())
    if w > _MAX_WIDTH or int(lens.min()) < 1 or int(e[0]) < w:
        return None  # too long, or empty
    if exp10 is None and decimals >= 0 and (buf[e[:_PROBE] - decimals - 1] == _DOT).all():
        # the first fields have their '.' where the first row has it (printf's %.5f): eight bytes at
        # a time, the '.' not searched for
        same = _by_words(buf, s, e, cols, decimals)
        if same is not NotImplemented:
            return same
    blk, all_at_dot = _dot_column(buf, e, w, decimals if exp10 is None else -1)
    if exp10 is None and decimals >= 0 and not all_at_dot:
        # decimals vary (repr): eight bytes at a time, the odd fields (exponents) as below
        varied = _by_words(buf, s, e, cols)
        if varied is not NotImplemented:
            return varied
        split = _split_by_decimals(buf, s, e, decimals, cols)
        if split is not NotImplemented:
            return split
    if blk is None:
        blk = _windows(buf, e, w) - np.uint8(_ZERO)  # right-aligned: digit places fixed
    pad = w - lens
    neg = buf[s] == _MINUS
    if pad.max() > 1:  # bytes of the field before: 0 (one byte before is the separator: a non-digit)
        blk *= cols[:w] >= pad.astype(np.uint8)[:, None]
        pad = pad * 0
    fixed = all_at_dot and int((lens - neg).min()) >= decimals + 2
    if fixed:
        dot, has_dot = np.full(n, w - 1 - decimals), np.ones(n, bool)
    else:
        isdot = blk == _DOT_DIGIT
        dot = np.argmax(isdot, axis=1)
        has_dot = isdot[np.arange(n), dot]
    nondigit = blk > 9
    # Each field has its '.' (if any), if negative its leading '-', and if one byte short of the
    # block's width the separator before it: any other non-digit makes the count larger.
    odd = None
    if np.count_nonzero(nondigit) != np.count_nonzero(has_dot) + np.count_nonzero(neg) + np.count_nonzero(pad):
        if exp10 is not None:
            return None
        odd = _few_exponents(buf, s, e, blk)
        if odd is None:
            return _with_exponents(buf, s, e, blk, cols)
        # those fields parsed one by one; their rows become a plain 0 here
        rows = odd[0]
        blk[rows] = 0
        nondigit[rows] = False
        for a in (has_dot, neg, pad):
            a[rows] = 0
        lens = lens.copy()
        lens[rows] = w
        if np.count_nonzero(nondigit) != np.count_nonzero(has_dot) + np.count_nonzero(neg) + np.count_nonzero(pad):
            return _with_exponents(buf, s, e, blk, cols)
    k = np.where(has_dot, w - 1 - dot, 0)  # decimals of each field
    if not (lens - neg - has_dot - k >= 1).all():
        return None  # no digit before the '.'
    blk *= ~nondigit  # (multiplying by a mask is much faster than assigning through it)
    v = None
    if exp10 is None and fixed:
        v = _by_decimals(blk, dot[:1], k, neg)
    elif exp10 is None and w <= 18:  # varying decimals (repr): one integer per field, then the '.' out
        v = _squeeze_short(blk, k, has_dot, neg)
    if v is None:
        v = _squeeze_dot(blk, k, has_dot, neg, exp10)
    if v is not None and odd is not None:
        v[odd[0]] = odd[1]
    return v


_PROBE = 64  # fields whose '.' is looked up before a block is gathered


def _dot_column(buf: np.ndarray, e: np.ndarray, w: int, decimals: int) -> tuple[np.ndarray | None, bool]:
    """(block, whether every field ``buf[:e]`` has its '.' ``decimals`` bytes before its end). When
    the first ``_PROBE`` fields have it there (a file of fixed decimals), the block of windows is
    gathered at once and the '.' read from its column: no gather of one byte per field, and the block
    is the caller's; otherwise (repr drops trailing zeros: some of the first 64 have fewer) no block,
    and the caller takes the fields eight bytes at a time."""
    if decimals < 0:
        return None, False
    if decimals >= w:  # the '.' before the widest field: it looks at the bytes before the fields
        return None, bool((buf[e - decimals - 1] == _DOT).all())
    if not (buf[e[:_PROBE] - decimals - 1] == _DOT).all():
        return None, False
    words = _window_words(buf, e, w)
    if words is None:
        blk = _windows(buf, e, w) - np.uint8(_ZERO)
        return blk, bool((blk[:, w - 1 - decimals] == _DOT_DIGIT).all())
    # the '.' in its 64-bit word (a column of whole words: cheaper than one of bytes)
    col, byte = divmod(words.shape[1] * 8 - 1 - decimals, 8)
    at = words[:, col] & np.uint64(0xFF << (8 * byte))
    all_at_dot = bool((at == np.uint64(_DOT << (8 * byte))).all())
    return _window_bytes(words, w) - np.uint8(_ZERO), all_at_dot


def _by_words(buf: np.ndarray, s: np.ndarray, e: np.ndarray, cols: np.ndarray, decimals: int | None = None):
    """A block of fields with varying decimals (or, given ``decimals``, that many in every field)
    through ``decimal_words`` (exactly strtod); the few fields it leaves (an exponent, more digits)
    through ``_parse_block``. NotImplemented when it leaves over a quarter of them."""
    if decimals is None:
        v, ok = decimal_words.parse(buf, decimal_words.words(buf), s, e)
    else:
        got = decimal_words.fixed(buf, s, e, decimals)
        if got is None:
            return NotImplemented
        v, ok = got
    n_ok = int(np.count_nonzero(ok))
    if n_ok == len(e):
        return v
    if n_ok * 4 < len(e) * 3:
        return NotImplemented
    rest = np.flatnonzero(~ok)
    odd = _parse_block(buf, s[rest], e[rest], -1, cols)
    if odd is None:
        return None
    v[rest] = odd
    return v


def _split_by_decimals(buf: np.ndarray, s: np.ndarray, e: np.ndarray, decimals: int, cols: np.ndarray):
    """A block where most fields (not all) have the same number of decimals (Python's repr drops
    trailing zeros: 0.9778 among 0.97784): those through the fixed-decimals path, the rest on
    their own; NotImplemented when all or too few share one."""
    for d in (decimals, decimals + 1, decimals - 1, *range(10)):
        if d < 0 or d > 9:
            continue
        at = buf[e - d - 1] == _DOT
        n_at = int(np.count_nonzero(at))
        if n_at == len(e):
            return NotImplemented  # all fixed: the caller's path
        if n_at * 4 >= len(e) * 3:
            fixed, rest = np.flatnonzero(at), np.flatnonzero(~at)
            a = _parse_block(buf, s[fixed], e[fixed], d, cols)
            b = None if a is None else _parse_block(buf, s[rest], e[rest], -1, cols)
            if b is None:
                return None
            out = np.empty(len(e))
            out[fixed], out[rest] = a, b
            return out
        if d == decimals and n_at * 2 < len(e):
            continue
    return NotImplemented


def _few_exponents(buf: np.ndarray, s: np.ndarray, e: np.ndarray, blk: np.ndarray) -> tuple | None:
    """(rows, values) of the few fields of a block that have an exponent (repr's ``5e-05``), parsed
    one by one exactly as strtod; None when there are none or many, or one is not a number."""
    ise = ((blk + np.uint8(_ZERO)) | 0x20) == ord("e")
    rows = np.flatnonzero(ise.any(axis=1))
    if len(rows) == 0 or len(rows) > max(_FEW, len(s) // _FEW):
        return None
    vals = np.empty(len(rows))
    for i, r in enumerate(rows.tolist()):
        field = buf[s[r] : e[r]].tobytes()
        if field.translate(None, _FLOAT_BYTES):
            return None
        try:
            vals[i] = float(field)
        except ValueError:
            return None
    if not np.isfinite(vals).all():
        return None
    return rows, vals


_LO = 8  # digits in the low half of a field (exact as a double, and as an int64 with the high half)


def _squeeze_short(blk: np.ndarray, k: np.ndarray, has_dot: np.ndarray, neg: np.ndarray) -> np.ndarray | None:
    """Values of right-aligned digit rows up to 18 wide whose '.' (a 0 in ``blk``) has ``k`` digits
    after it, whatever the '.' column of each row (repr): the row as one integer R (two exact
    products for its high and low 8 places, joined in int64), the mantissa R div 10**(k+1) * 10**k
    + R mod 10**k, and one correctly rounded division by 10**k. None past 2**53."""
    w = blk.shape[1]
    digits = blk.astype(np.float64)
    kk = np.where(has_dot, k, 0)
    if w <= 15:  # R below 10**15: every step exact in doubles (floor(R / 10**j) too, R < 2**53)
        r_f = digits @ _P10F[w - 1 :: -1]
        p_k = _P10F[kk]
        whole = np.floor(r_f / (p_k * 10.0))
        m_f = whole * p_k + (r_f - whole * (p_k * 10.0))
        if not has_dot.all():
            m_f = np.where(has_dot, m_f, r_f)
        v = m_f / p_k  # exact integers: one correctly rounded division
        np.negative(v, out=v, where=neg)
        return v
    lo_w = min(w, _LO)
    r = (digits[:, w - lo_w :] @ _P10F[lo_w - 1 :: -1]).astype(np.int64)
    if w > lo_w:
        r += (digits[:, : w - lo_w] @ _P10F[w - lo_w - 1 :: -1]).astype(np.int64) * np.int64(10**lo_w)
    p_k = _P10I[kk]
    mantissa = np.where(has_dot, r // (p_k * 10) * p_k + r % p_k, r)
    if int(mantissa.max()) >= _EXACT:
        return None
    v = mantissa.astype(np.float64) / _P10F[kk]  # exact integers: one correctly rounded division
    np.negative(v, out=v, where=neg)
    return v


def _windows(buf: np.ndarray, e: np.ndarray, w: int) -> np.ndarray:
    """The ``w`` bytes before each end in ``e``, one row each (``_window_words``), or gathered byte
    by byte when the first window would start before the buffer."""
    words = _window_words(buf, e, w)
    return sliding_window_view(buf, w)[e - w] if words is None else _window_bytes(words, w)


def _window_words(buf: np.ndarray, e: np.ndarray, w: int) -> np.ndarray | None:
    """The ``w`` bytes before each end in ``e`` as little-endian 64-bit words, one row each (the
    window in the last ``w`` bytes of the row; the bytes before it in the first word are the file's
    bytes there); None when the first would start before the buffer. Gathered as one item of
    ``8 * words`` bytes per field (a void dtype: numpy copies each unaligned item with a call of its
    own, which costs as much for 24 bytes as for 8, and several times what the bytes would one by
    one)."""
    n_words = (w + 7) // 8
    if int(e.min()) < 8 * n_words or len(buf) < 8 * n_words:
        return None
    return decimal_words.items(buf, 8 * n_words)[e - 8 * n_words].view("<u8").reshape(len(e), n_words)


def _window_bytes(words: np.ndarray, w: int) -> np.ndarray:
    """The windows of ``_window_words`` as rows of ``w`` bytes."""
    return words.view(np.uint8)[:, words.shape[1] * 8 - w :]


def _by_decimals(blk: np.ndarray, dot: np.ndarray, k: np.ndarray, neg: np.ndarray) -> np.ndarray | None:
    """Values of right-aligned digit rows whose '.' stands in column ``dot`` (the width: none;
    one column for all rows when ``dot`` has one element), with ``k`` digits after it: one
    matrix-vector product per '.' column gives the exact mantissas of the rows that have it there.
    None when there are more than 6 such columns or a mantissa reaches 2**53."""
    w = blk.shape[1]
    present = dot if len(dot) == 1 else np.flatnonzero(np.bincount(dot, minlength=w + 1))
    if len(present) > 6 or k.max() >= len(_P10F):
        return None
    digits = blk.astype(np.float64)
    j = np.arange(w)
    mantissa = np.empty(len(blk))
    for d in present.tolist():
        place = np.where(j > d, w - 1 - j, w - 2 - j) if d < w else w - 1 - j  # the '.' has none
        m = digits @ np.where(j == d, 0.0, 10.0 ** np.maximum(place, 0))
        if len(present) == 1:
            mantissa = m
        else:
            np.copyto(mantissa, m, where=dot == d)
    if mantissa.max() >= _EXACT:
        return None
    v = mantissa / _P10F[k]  # exact integers: one correctly rounded division
    np.negative(v, out=v, where=neg)
    return v


_DOT_DIGIT = (_DOT - _ZERO) % 256  # '.' in a block of digit values
_P10 = np.array([10**i for i in range(20)], dtype=np.uint64)
_P10F = 10.0 ** np.arange(23)  # exact doubles
_P10I = 10 ** np.arange(19, dtype=np.int64)
_P10X = np.cumprod(np.full(2 * _MAX_WIDTH, 10, dtype=np.longdouble)) / 10  # 10**0.. in extended precision


def _squeeze_dot(
    blk: np.ndarray, k: np.ndarray, has_dot: np.ndarray, neg: np.ndarray, exp10: np.ndarray | None
) -> np.ndarray | None:
    """Values of right-aligned digit rows whose '.' (a 0 in ``blk``) has ``k`` digits after it.

    The row read as one integer R (the '.' a zero digit, in two exact halves of 10 places) holds
    the fraction F = R mod 10**k and the integer part R div 10**(k+1); the mantissa is
    (R div 10**(k+1)) * 10**k + F, in 64-bit integers: up to 19 significant digits."""
    w = blk.shape[1]
    if w > 20 and blk[:, : w - 20].any():
        return None  # a digit 20 places up: more than 19 significant digits
    place = w - 1 - np.arange(w)
    weights = np.zeros((w, 2), order="F")
    low = place < 20
    weights[np.flatnonzero(low), place[low] // 10] = 10.0 ** (place[low] % 10)
    digits = blk.astype(np.float64)
    # two matrix-vector products (exact: below 10**10 each); one (w x 2) product is much slower
    lo, hi = (digits @ weights[:, 0]).astype(np.uint64), (digits @ weights[:, 1]).astype(np.uint64)
    small = k < 10
    ks, kb = np.minimum(k, 9), np.clip(k - 10, 0, 9)
    big = k >= 20  # '.' above the two halves: all digits are decimals (leading zeros aside)
    if (hi[big] >= _P10[9]).any():
        return None  # 20 significant decimals: over 19 digits
    frac = np.where(small, lo % _P10[ks], np.where(big, hi, hi % _P10[kb]) * _P10[10] + lo)
    whole = np.where(small, lo // _P10[ks + 1] + hi * _P10[9 - ks], np.where(big, 0, hi // _P10[kb + 1]))
    if not has_dot.all():  # no '.': R is the mantissa
        frac = np.where(has_dot, frac, lo)
        whole = np.where(has_dot, whole, hi)
        k = np.where(has_dot, k, 10)
    kc = np.minimum(k, 19)
    if (whole >= _P10[19 - kc]).any():
        return None  # over 19 significant digits
    mantissa = whole * _P10[kc] + frac
    if not has_dot.all():
        k = np.where(has_dot, k, 0)
    scale = k if exp10 is None else k - exp10  # value = mantissa / 10**scale
    if np.abs(scale).max() >= len(_P10X):
        return None  # beyond what times and accelerations need: np.loadtxt's care
    v = np.empty(len(k))
    easy = (mantissa < _EXACT) & (np.abs(scale) <= 22)
    m, sc = mantissa[easy].astype(np.float64), scale[easy]
    # one correctly rounded operation with exact operands
    v[easy] = np.where(sc >= 0, m / _P10F[np.clip(sc, 0, 22)], m * _P10F[np.clip(-sc, 0, 22)])
    hard = ~easy
    if hard.any():  # longer mantissas (17-digit reprs): within one unit in the last place
        m, sc = mantissa[hard].astype(np.longdouble), scale[hard]
        p10 = _P10X[np.abs(sc)]
        v[hard] = np.where(sc >= 0, m / p10, m * p10).astype(np.float64)
    np.negative(v, out=v, where=neg)
    return v


_FLOAT_BYTES = b"0123456789+-.eE"
_FEW = 16  # per 16 fields: fields with an exponent parsed one by one


def _with_exponents(
    buf: np.ndarray, s: np.ndarray, e: np.ndarray, blk: np.ndarray, cols: np.ndarray
) -> np.ndarray | None:
    """A block where fields have an exponent: a few of them (repr writes 5e-05) one by one,
    exactly as strtod; many (numpy's %.18e) split at the 'e' and vectorised; the rest as usual."""
    ise = ((blk + np.uint8(_ZERO)) | 0x20) == ord("e")
    has_exp = ise.any(axis=1)
    n_exp = int(np.count_nonzero(has_exp))
    if n_exp == 0:
        return None
    out = np.empty(len(s))
    if n_exp <= max(_FEW, len(s) // _FEW):
        for i in np.flatnonzero(has_exp):
            field = buf[s[i] : e[i]].tobytes()
            if field.translate(None, _FLOAT_BYTES):
                return None
            try:
                out[i] = float(field)
            except ValueError:
                return None
    else:
        se, ee = s[has_exp], e[has_exp]
        at = ee - blk.shape[1] + np.argmax(ise[has_exp], axis=1)  # the 'e' of each field
        exp10 = _exponents(buf, at + 1, ee, cols)
        if exp10 is None or not (at > se).all():
            return None
        v = _parse_block(buf, se, at, -1, cols, exp10=exp10)
        if v is None:
            return None
        out[has_exp] = v
    rest = ~has_exp
    if rest.any():
        v = _parse_block(buf, s[rest], e[rest], -1, cols)
        if v is None:
            return None
        out[rest] = v
    return out if np.isfinite(out).all() else None


def _exponents(buf: np.ndarray, s: np.ndarray, e: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
    """Integers ``[+-]digits`` (1 to 4 digits) in ``buf[s:e]``; None if a field is not one."""
    lens = e - s
    first = buf[s]
    sign = (first == _MINUS) | (first == _PLUS)
    if int((lens - sign).min()) < 1 or int(lens.max()) > 5:
        return None
    w = int(lens.max())
    blk = sliding_window_view(buf, w)[e - w] - np.uint8(_ZERO)
    blk *= cols[:w] >= (w - lens + sign).astype(np.uint8)[:, None]  # the digits after the sign
    if (blk > 9).any():
        return None
    val = blk.astype(np.int64) @ (10 ** np.arange(w - 1, -1, -1))
    return np.where(first == _MINUS, -val, val)


def _first_bad_line(p: Path, body: bytes, text_times: bool = False) -> str:
    for i, line in enumerate(body.decode("utf-8", "replace").splitlines(), start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != 4:
            return f"{p}:{i}: expected 4 values (timestamp,ax,ay,az), found {len(cells)}"
        for name, cell in zip(HEADER, cells, strict=True):
            if text_times and name == "timestamp":
                continue
            try:
                v = float(cell)
            except ValueError:
                return f"{p}:{i}: {name} is not a number: {cell.strip()[:40]!r}"
            if not math.isfinite(v):
                return f"{p}:{i}: {name} is not finite: {cell.strip()[:40]!r}"
    return f"{p}: cannot parse the CSV"


def write_csv(path, t: np.ndarray, xyz: np.ndarray) -> None:
    """legwatch CSV (timestamps with 6 decimals, g with 5) to a path or an open text file."""
    data = np.column_stack([np.asarray(t, dtype=np.float64), np.asarray(xyz, dtype=np.float64)])
    with contextlib.ExitStack() as stack:
        fh = path if hasattr(path, "write") else stack.enter_context(open(path, "w", encoding="utf-8", newline="\n"))
        fh.write(",".join(HEADER) + "\n")
        np.savetxt(fh, data, fmt=["%.6f", "%.5f", "%.5f", "%.5f"], delimiter=",")
