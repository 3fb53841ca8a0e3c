"""Small durable-file helpers shared by the journal and the checkpoints: atomic replacement and
folder fsync. Standard library only."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, blob: bytes) -> None:
    """Replace ``path`` by ``blob``: temp file, fsync, rename (the caller fsyncs the folder)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
