"""Axivity AX3 / AX6 ``.cwa`` (Open Movement), a small numpy reader of the published layout.

Documented in ``openmovementproject/openmovement:Docs/ax3/cwa.h`` and ``Docs/ax3/ax3-technical.md``
(summarised in FORMATS.md section 4): a 1024-byte header block (``MD``), then 512-byte data blocks
(``AX``), little-endian. Each data block: packed RTC timestamp (local time, no zone) of the sample
at ``timestampOffset`` (its fraction of a second is not used: see ``read``), the sample rate code, axes and
packing, and 80/120 (3-axis) or 40 (6-axis) samples: packed 10-bit values with a 2-bit exponent
(1/256 g) or int16 (1/2^(8+n) g, n from ``lightScale``; 6-axis blocks hold gyro first). Blocks with
a bad checksum are skipped and counted. Sample times run from each block's anchor to the next
block's at the rate they imply (the nominal rate where blocks are not contiguous).
Checked against the CSV export of the same file (tests/test_readers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from legwatch.csvio import RecordingError
from legwatch.readers.base import ReadOptions, Recording, local_to_unix, to_g
from legwatch.readers.head import Head

NAME = "Axivity .cwa"
BLOCK = 512


def sniff(head: Head) -> bool:
    return head.raw[:2] == b"MD" and head.raw[2:4] == (1020).to_bytes(2, "little")


def packed_times(v: np.ndarray) -> np.ndarray:
    """CWA packed timestamps ``YYYYYYMM MMDDDDDh hhhhmmmm mmssssss`` as naive seconds since 1970."""
    v = v.astype(np.int64)
    year = ((v >> 26) & 0x3F) + 2000
    month = (v >> 22) & 0x0F
    day = (v >> 17) & 0x1F
    months = ((year - 1970) * 12 + np.clip(month, 1, 12) - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (np.clip(day, 1, 31) - 1)
    secs = days.astype(np.int64) * 86400 + ((v >> 12) & 0x1F) * 3600 + ((v >> 6) & 0x3F) * 60 + (v & 0x3F)
    return secs.astype(np.float64)


def rate_hz(code: np.ndarray | int) -> np.ndarray:
    return 3200.0 / (1 << (15 - (np.asarray(code) & 0x0F)))


def read(path: Path, head: Head, opts: ReadOptions) -> Recording:
    raw = np.fromfile(path, dtype=np.uint8)
    n_blocks = (len(raw) - 1024) // BLOCK
    if n_blocks <= 0:
        raise RecordingError("an Axivity .cwa file without data blocks")
    blocks = raw[1024 : 1024 + n_blocks * BLOCK].reshape(n_blocks, BLOCK)
    words = blocks.view("<u2")
    is_data = (blocks[:, 0] == ord("A")) & (blocks[:, 1] == ord("X"))
    good = is_data & (words.sum(axis=1, dtype=np.uint64) % 65536 == 0)
    bad = int(np.count_nonzero(is_data & ~good))
    blocks, words = blocks[good], words[good]
    if len(blocks) == 0:
        raise RecordingError("an Axivity .cwa file with no readable data block")
    seq = blocks[:, 10:14].copy().view("<u4").ravel()
    order = np.argsort(seq, kind="stable")
    blocks, words = blocks[order], words[order]
    stamp = blocks[:, 14:18].copy().view("<u4").ravel()
    light_scale = words[:, 9].astype(np.int64)
    rate = rate_hz(blocks[:, 24])
    axes_bps = blocks[:, 25]
    offset = blocks[:, 26:28].copy().view("<i2").ravel().astype(np.float64)
    count = words[:, 14].astype(np.int64)
    anchor = packed_times(stamp)
    # The fraction of a second in ``deviceFractional`` (top bit set) comes with ``timestampOffset``
    # shifted so that the whole second alone stays within one sample: omconvert's CSV export uses
    # the whole second at the offset as written, and so does this reader (the two agree exactly)
    gyro = False
    for kind in np.unique(axes_bps).tolist():
        axes, bps = kind >> 4, kind & 0x0F
        if axes not in (3, 6, 9) or bps not in (0, 2) or (bps == 0 and axes != 3):
            raise RecordingError(f"an Axivity block with {axes} axes and packing {bps}: not a layout legwatch reads")
        gyro |= axes > 3
    samples = []
    for b, kind, n, ls in zip(blocks, axes_bps.tolist(), count.tolist(), light_scale.tolist(), strict=True):
        axes, bps = kind >> 4, kind & 0x0F
        body = b[30:510]
        if bps == 0:
            n = min(n, 120)
            v = body[: 4 * n].view("<u4").astype(np.int64)
            e = v >> 30
            comp = [((v >> s) & 0x3FF) for s in (0, 10, 20)]
            comp = [np.where(c >= 512, c - 1024, c) << e for c in comp]
            samples.append(np.column_stack(comp) / 256.0)
        else:
            n = min(n, 480 // (2 * axes))
            v = body[: 2 * axes * n].view("<i2").reshape(n, axes).astype(np.float64)
            acc = v[:, 3:6] if axes >= 6 else v[:, 0:3]
            samples.append(acc / float(1 << (8 + (ls >> 13))))
    sizes = np.array([len(s) for s in samples])
    xyz = np.concatenate(samples)
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    # each block's anchor: sample ``at`` (global index) was taken at ``anchor``. A sample's time runs
    # from the last anchor before it at the rate the next anchor implies (nominal where blocks are
    # not contiguous, after the last anchor, and before the first: as omconvert does)
    at = first + offset
    nominal = 1.0 / rate
    step = np.append(np.diff(anchor) / np.maximum(np.diff(at), 1), nominal[-1])
    step = np.where(np.abs(step - nominal) <= 0.1 * nominal, step, nominal)
    idx = np.arange(len(xyz), dtype=np.float64)
    k = np.clip(np.searchsorted(at, idx, side="right") - 1, 0, None)
    step_k = np.where(idx < at[0], nominal[0], step[k])
    naive = anchor[k] + (idx - at[k]) * step_k
    t, said = local_to_unix(naive, opts)
    xyz, units = to_g(xyz, opts, declared="g", source="from the file's scale")
    notes = [f"{bad} data block(s) with a bad checksum skipped"] if bad else []
    if gyro:
        notes.append("gyroscope channels ignored")
    return Recording(t, xyz, NAME, units, f"from the device clock, {said}", notes)
