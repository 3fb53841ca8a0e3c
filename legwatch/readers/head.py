"""The first bytes of a file, as bytes and as text lines: what every format's ``sniff`` looks at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from legwatch.csvio import RecordingError

HEAD_BYTES = 1 << 16


@dataclass(frozen=True)
class Head:
    raw: bytes
    text: str  # decoded (UTF-8, else Latin-1: sniffing needs only ASCII); "" for binary files
    lines: list[str]
    path: Path | None = None

    def zip_names(self) -> set[str]:
        """The member names when the file is a ZIP archive (.gt3x, phyphox's export), else empty."""
        if self.raw[:4] != b"PK\x03\x04" or self.path is None:
            return set()
        import zipfile

        try:
            with zipfile.ZipFile(self.path) as z:
                return set(z.namelist())
        except (zipfile.BadZipFile, OSError):
            return set()

    def first(self) -> str:
        return self.lines[0] if self.lines else ""


def read_head(p: Path) -> Head:
    try:
        with open(p, "rb") as fh:
            raw = fh.read(HEAD_BYTES)
    except FileNotFoundError:
        raise RecordingError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise RecordingError(f"{p}: is a directory, expected a recording") from None
    except OSError as exc:
        raise RecordingError(f"{p}: cannot read: {exc.strerror}") from None
    binary = b"\x00" in raw[:4096]
    text = "" if binary else decode(raw)
    lines = text.splitlines()
    if len(raw) == HEAD_BYTES and lines:
        lines = lines[:-1]  # the last one may be cut
    return Head(raw, text, lines, p)


def decode(raw: bytes) -> str:
    """Text of a file: UTF-8 (a BOM dropped), else GBK (WitMotion's PC software), else Latin-1."""
    for enc in ("utf-8-sig", "gbk"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError as exc:
            if enc == "utf-8-sig" and exc.start > len(raw) - 4:  # a character cut at the end of the head
                return raw[: exc.start].decode(enc)
    return raw.decode("latin-1")
