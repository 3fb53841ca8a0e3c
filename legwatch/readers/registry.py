"""Which format a file is, from its content: each format module's ``sniff`` on the file's head.

A format module has ``NAME`` (said in the output), ``sniff(head) -> bool`` and
``read(path, head, opts) -> Recording``. Modules are imported only when their format is tried, so
``legwatch detect`` on legwatch's own CSV imports none of the others.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from legwatch.readers.base import ReadOptions, Recording, RecordingError
from legwatch.readers.head import Head, read_head

# legwatch's own CSV first: the common case, and the one that is benchmarked
FORMATS = (
    "legwatch_csv",
    "axivity",
    "gt3x",
    "geneactiv",
    "actigraph_csv",
    "polar",
    "metabase",
    "witmotion",
    "phone",
)


def sniff(path: str | Path) -> str | None:
    """The name of the format module that recognises ``path``, or None."""
    head = read_head(Path(path))
    return next((name for name in FORMATS if _module(name).sniff(head)), None)


def read(path: str | Path, opts: ReadOptions | None = None) -> Recording:
    """The recording in ``path`` (any format in ``FORMATS``); ``RecordingError`` (one line, naming
    the file) when it cannot be read right."""
    p = Path(path)
    opts = opts or ReadOptions()
    head = read_head(p)
    for name in FORMATS:
        mod = _module(name)
        if mod.sniff(head):
            try:
                rec = mod.read(p, head, opts)
            except RecordingError as exc:
                raise RecordingError(_named(p, str(exc))) from None
            except (ValueError, IndexError, KeyError, TypeError, OverflowError, EOFError, OSError) as exc:
                # a file damaged in a way no reader's check foresaw: still one line, naming the format
                raise RecordingError(_named(p, f"cannot be read as {mod.NAME}: {type(exc).__name__}: {exc}")) from None
            if len(rec.t) == 0:
                raise RecordingError(f"{p}: no samples")
            return rec
    raise RecordingError(f"{p}: {_unknown(head)}")


def _module(name: str):
    return importlib.import_module(f"legwatch.readers.{name}")


def _named(p: Path, msg: str) -> str:
    msg = " ".join(msg.split())  # one line
    return msg if msg.startswith(str(p)) else f"{p}: {msg}"


def _unknown(head: Head) -> str:
    if not head.raw:
        return "empty file"
    first = head.lines[0][:60] if head.lines else repr(head.raw[:16])
    return (
        f"not a recording legwatch reads (first line {first!r}); it reads legwatch CSV, MetaBase, Polar Sensor "
        "Logger, WitMotion, phyphox, Sensor Logger, Axivity .cwa, ActiGraph CSV and .gt3x, GENEActiv .bin"
    )
