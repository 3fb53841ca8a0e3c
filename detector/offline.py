"""Offline detection: the streaming detector run over a whole recording in one batch."""

from __future__ import annotations

import numpy as np

from detector.stream import Night, StreamDetector

Detection = Night


def detect_arrays(t: np.ndarray, xyz: np.ndarray, batch: int | None = None) -> Night:
    """Detect episodes in a recording. ``batch`` (samples) feeds it in pieces, as the monitor would."""
    det = StreamDetector()
    if batch is None:
        det.push(t, xyz)
    else:
        for i in range(0, len(t), batch):
            det.push(t[i : i + batch], xyz[i : i + batch])
    _, night = det.finish()
    return night
