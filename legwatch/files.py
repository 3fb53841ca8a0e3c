"""Files replaced atomically, for every part that keeps state on disk (the collector's spool, the
monitor's checkpoints, the MQTT connection's remembered subscriptions). At the bottom of the
import graph, beside ``legwatch.contracts``: standard library only, imports nothing of the
repository.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or removal in ``path`` durable (best effort where directories cannot be opened)."""
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


def write_atomic(path: Path, blob: bytes, *, sync: bool = True, sync_dir: bool = False) -> None:
    """Replace ``path`` by ``blob``: a temp file beside it, renamed into place, so a reader sees
    the old file or the new one. ``sync``: the data is fsynced before the rename; ``sync_dir``: the
    folder too after it (else the caller fsyncs the folder once for several files)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(blob)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)
