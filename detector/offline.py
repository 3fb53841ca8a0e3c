"""Offline detection: the streaming detector run over a whole recording.

The recording is fed in pieces of ``OFFLINE_BATCH`` samples (~40 min at 52 Hz): the result is the
same for any cut (the stages are aligned to absolute time), and pieces this size keep the
temporaries small enough to stay in cache instead of faulting in hundreds of megabytes."""

from __future__ import annotations

import numpy as np

from detector.stream import Night, StreamDetector

OFFLINE_BATCH = 1 << 17


def detect_arrays(t: np.ndarray, xyz: np.ndarray, batch: int | None = OFFLINE_BATCH) -> Night:
    """Detect episodes in a recording, fed in pieces of ``batch`` samples (None: all at once)."""
    det = StreamDetector()
    step = max(1, len(t)) if batch is None else batch
    for i in range(0, len(t), step):
        det.push(t[i : i + step], xyz[i : i + step])
    _, night = det.finish()
    return night
