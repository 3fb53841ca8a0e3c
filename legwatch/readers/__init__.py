"""Reading recordings that legwatch or other software wrote, recognised by their content.

``read(path, ReadOptions(...))`` sniffs the file's first bytes (a header line, magic bytes: never
the file name) with each format's ``sniff`` in ``registry.FORMATS`` and hands it to that format's
reader, one small module per format. Each returns a ``base.Recording``: Unix seconds, g, and the
words for how its units and times were read. The rules each format follows are in README.md,
"Recordings from other software".

What these modules may import: numpy, the standard library, ``legwatch.csvio`` (legwatch's own
CSV, its fast reader) and ``legwatch.errors``; nothing of the detector, storage, MQTT or the
command line, so every command (and a worker process of ``legwatch import``) can use them.
"""

from legwatch.readers.base import ReadOptions, Recording, RecordingError
from legwatch.readers.registry import read, sniff

__all__ = ["ReadOptions", "Recording", "RecordingError", "read", "sniff"]
