"""Plain decimal fields (``-?digits.digits``) parsed eight bytes at a time: ``legwatch.csvio``'s path
for fields whose number of decimals varies (Python's repr drops trailing zeros: 0.9778 among
0.97784), where the digits of a field have no fixed place in a block.

Each field is read as unaligned little-endian 64-bit words: its last 8 bytes, where its '.' is
found. A field of up to 8 bytes (an acceleration) is all in that word: the '.' is squeezed out of
it with two masks. A longer one (a timestamp) takes the digits after the '.' from that word and
those before it from the 8 or 16 bytes before the '.'. The digits of a word become one integer
with three multiply-shift steps (SWAR: "SIMD within a register"), every field at once with numpy.
The mantissa (the digits without the '.') is below 2**53, so ``mantissa / 10**decimals`` is one
correctly rounded division of exact doubles: exactly what strtod (``float()``, ``np.loadtxt``)
gives. Fields not of this shape (an exponent, a sign other than '-', no digit before the '.',
over 7 decimals or 16 integer digits, a mantissa of 2**53 or more) are marked, for the caller's
general path.

``fixed`` is the same for a block whose fields all have their '.' as many bytes before their end
(printf's ``%.5f``): the '.' is not searched for, and the words of a long field come from one
gather of its last 24 bytes, shifted into place by a constant, instead of one gather each.
"""

from __future__ import annotations

import numpy as np

_U = np.uint64
_K30 = _U(0x3030303030303030)  # '0' in every byte
_KF0 = _U(0xF0F0F0F0F0F0F0F0)
_K0F = _U(0x0F0F0F0F0F0F0F0F)
_K06 = _U(0x0606060606060606)
_K10 = _U(0x1010101010101010)
_KDOT = _U(0x2E2E2E2E2E2E2E2E)  # '.' in every byte
_K7F = _U(0x7F7F7F7F7F7F7F7F)
_PAIRS, _QUADS, _OCTS = _U(0x00FF00FF00FF00FF), _U(0x0000FFFF0000FFFF), _U(0x00000000FFFFFFFF)
#: the top (last, in the file) j bytes of a word, j = 0..8
_TOP = np.array([0] + [((1 << (8 * j)) - 1) << (8 * (8 - j)) for j in range(1, 9)], dtype=np.uint64)
_P10U = np.array([10**j for j in range(8)], dtype=np.uint64)
_P10F = 10.0 ** np.arange(8)  # exact doubles
_EXACT = 2**53
#: the largest integer part whose mantissa with j decimals stays below 2**53
_MAX_INT = np.array([(_EXACT - 1) // 10**j for j in range(8)], dtype=np.uint64)
_MAX_DECIMALS = 7  # the '.' within a field's last 8 bytes
#: bytes 0..p of a word (what moves up one byte when the '.' at byte p is squeezed out), and the rest
_BELOW = np.array([(1 << (8 * (p + 1))) - 1 for p in range(8)], dtype=np.uint64)
_ABOVE = ~_BELOW
_MAX_INT_DIGITS = 16
#: (multiplier, shift, mask) of the three steps that join 8 digits pairwise into one integer
_SWAR = ((_U(10), _U(8), _PAIRS), (_U(100), _U(16), _QUADS), (_U(10000), _U(32), _OCTS))
# (np.minimum(np.maximum(...)) rather than np.clip, whose Python layer costs more than the arithmetic
# on a block's indices)


def words(buf: np.ndarray) -> np.ndarray:
    """A view of ``buf`` (uint8) with the little-endian 64-bit word that starts at every byte."""
    return np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))


def _digits(w: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, bad) of the decimal digits in the bytes of ``w`` under ``mask`` (top bytes of each
    word: the digits right-aligned): bad is nonzero where one of those bytes is not '0'-'9'.
    In place on temporaries (a quarter faster than a new array per step)."""
    d = w & _K0F
    bad = w ^ _K30
    bad &= _KF0
    u = d + _K06
    u &= _K10
    bad |= u
    bad &= mask
    d &= mask  # byte 0 is the first digit (the most significant)
    for mul, shift, keep in _SWAR:
        np.right_shift(d, shift, out=u)
        d *= mul
        d += u
        d &= keep
    return d, bad


def parse(buf: np.ndarray, w64: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, ok) of the fields ``buf[s:e]`` (``w64 = words(buf)``; every field at least one byte,
    ``e >= 8`` and 16 bytes of the buffer before every field that has over 8 integer digits);
    where ``ok`` is False the value is meaningless and the field is for the general path."""
    neg = buf[s] == 0x2D  # '-'
    long_fields = int((e - s).max()) > 8
    if long_fields and int(e.min()) >= 24:  # the last 24 bytes of each field in one gather (see fixed)
        w0, w1, last = items(buf, 24)[e - 24].view("<u8").reshape(-1, 3).T
    else:
        w0 = w1 = None
        last = w64[e - 8]
    x = last ^ _KDOT
    flags = ~(((x & _K7F) + _K7F) | x | _K7F)  # 0x80 in each byte that is '.'
    # the highest flag (the last '.'): the exponent of the word as a double; below 0 when none
    pos = ((flags.astype(np.float64).view(np.int64) >> 52) - (1023 + 7)) >> 3
    if not long_fields:
        return _short(last, pos, neg, e - s)
    k = np.minimum(np.maximum(7 - pos, 0), _MAX_DECIMALS)  # decimals (clipped where there is no '.': not ok below)
    frac, bad_f = _digits(last, _TOP[k])
    dot = e - 1 - k
    n_int = dot - s - neg  # digits before the '.' (negative when the '.' found is before the field)
    ok = (pos >= 0) & (n_int >= 1) & (n_int <= _MAX_INT_DIGITS) & (bad_f == 0)
    n_int = np.minimum(np.maximum(n_int, 0), _MAX_INT_DIGITS)
    n_lo = np.minimum(n_int, 8)
    if w1 is not None:  # the words 8 and 16 bytes before the '.', shifted out of the three
        right, left = ((7 - k) * 8).astype(np.uint64), (k * 8).astype(np.uint64)
        lo = (w1 >> right) | ((last << left) << _U(8))  # (two shifts: never one by 64)
        hi = (w0 >> right) | ((w1 << left) << _U(8))
    else:
        lo, hi = w64[dot - 8], None
    whole, bad_i = _digits(lo, _TOP[n_lo])
    long = n_int > 8
    if long.any():
        hi = w64[np.where(long, dot - 16, dot - 8)] if hi is None else hi
        hi, bad_h = _digits(hi, _TOP[n_int - n_lo])
        whole += hi * _U(10**8)
        bad_i |= bad_h
    ok &= (bad_i == 0) & (whole <= _MAX_INT[k])
    mantissa = whole * _P10U[k] + frac  # below 2**53 + 10**7 where ok: no overflow
    ok &= mantissa < _U(_EXACT)
    v = mantissa.astype(np.float64) / _P10F[k]  # exact operands: one correctly rounded division
    np.negative(v, out=v, where=neg)
    return v, ok


def _short(last: np.ndarray, pos: np.ndarray, neg: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``parse`` of fields of up to 8 bytes, each the top ``lens`` bytes of its word ``last``, with
    its '.' at byte ``pos`` (one per field, or one for all): the bytes before the '.' moved up over
    it, the digits (``lens - neg - 1`` of them, so the mantissa is below 10**8) are the top bytes of
    one word."""
    p = np.minimum(np.maximum(pos, 0), 7)
    squeezed = ((last << _U(8)) & _BELOW[p]) | (last & _ABOVE[p])
    n_digits = lens - neg - 1
    k = 7 - p
    mantissa, bad = _digits(squeezed, _TOP[np.minimum(np.maximum(n_digits, 0), 8)])
    ok = (pos >= 0) & (n_digits - k >= 1) & (bad == 0)  # a '.' with a digit before it in the field
    v = mantissa.astype(np.float64) / _P10F[k]  # exact operands: one correctly rounded division
    np.negative(v, out=v, where=neg)
    return v, ok


def items(buf: np.ndarray, nbytes: int) -> np.ndarray:
    """A view of ``buf`` with the ``nbytes`` bytes that start at every byte as one item (a void
    dtype: gathering one costs about as much for 24 bytes as for 8)."""
    return np.ndarray((len(buf) - nbytes + 1,), dtype=f"V{nbytes}", buffer=buf, strides=(1,))


def fixed(buf: np.ndarray, s: np.ndarray, e: np.ndarray, decimals: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, ok) of the fields ``buf[s:e]`` that have their '.' ``decimals`` (0-7) bytes before
    their end, as ``parse`` gives them; None when a field is over 24 bytes or starts within 24
    bytes of the buffer's start. Where ``ok`` is False the value is meaningless."""
    lens = e - s
    if not 0 <= decimals <= _MAX_DECIMALS or int(lens.max()) > 24 or int(e.min()) < 24:
        return None
    p = 7 - decimals  # the '.' in the last word
    neg = buf[s] == 0x2D  # '-'
    if int(lens.max()) <= 8:
        last = items(buf, 8)[e - 8].view("<u8")
        v, ok = _short(last, p, neg, lens)  # the '.' at one byte of every word
        ok &= (last & _U(0xFF << (8 * p))) == _U(0x2E << (8 * p))
        return v, ok
    else:
        w0, w1, last = items(buf, 24)[e - 24].view("<u8").reshape(-1, 3).T
        ok = (last & _U(0xFF << (8 * p))) == _U(0x2E << (8 * p))
        frac, bad = _digits(last, _TOP[decimals])
        # the 8 and 16 bytes before the '.' (the words that start 8 and 16 bytes before it)
        if p:
            lo = (last << _U(8 * (8 - p))) | (w1 >> _U(8 * p))
            hi = (w1 << _U(8 * (8 - p))) | (w0 >> _U(8 * p))
        else:
            lo, hi = w1, w0
        n_int = lens - neg - 1 - decimals
        ok &= (n_int >= 1) & (n_int <= _MAX_INT_DIGITS)
        n_int = np.minimum(np.maximum(n_int, 0), _MAX_INT_DIGITS)
        n_lo = np.minimum(n_int, 8)
        whole, bad_i = _digits(lo, _TOP[n_lo])
        bad |= bad_i
        if int(n_int.max()) > 8:
            mask = _TOP[n_int - n_lo]
            hi &= mask
            if int(n_int.min()) == int(n_int.max()) and (hi == hi[0]).all():
                mask, hi = mask[:1], hi[:1]  # one number of digits, the same ones (a night's timestamps)
            top, bad_h = _digits(hi, mask)
            whole += top * _U(10**8)
            bad |= bad_h
        ok &= whole <= _MAX_INT[decimals]
        mantissa = whole * _P10U[decimals] + frac  # below 2**53 + 10**7 where ok: no overflow
    ok &= (bad == 0) & (mantissa < _U(_EXACT))
    v = mantissa.astype(np.float64) / _P10F[decimals]  # exact operands: one correctly rounded division
    np.negative(v, out=v, where=neg)
    return v, ok
