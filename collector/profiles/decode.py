"""One-shot decoding of a notification given as hex, behind ``legwatch decode PROFILE HEX``.

``decode_hex("polar", "02 65 00 ...", factor=1.0)`` returns a JSON-ready dict::

    {"profile": "polar", "samples": [[ax, ay, az], ...], "timestamps": [...], "info": {...}}

Values are in g exactly as decoded (float64, not rounded: vendors' test vectors are checked
against them bit for bit); ``timestamps`` (Unix seconds, microsecond-rounded) appears only when the
frame carries time; ``info`` (frame type, sequence number, gyro, battery register, ...) only when
the profile reports something. Everything that goes wrong is a one-line :class:`ProfileError`; a
device that is not an accelerometer (a WitMotion WTVB01 packet) is
:class:`~collector.profiles.base.NotAnAccelerometer`.

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .base import ProfileError, get_profile

__all__ = ["decode_hex", "parse_hex"]

_PREFIX_RE = re.compile(r"(?:(?<=^)|(?<=[\s:,;\-_]))0[xX]")
_SEPARATORS_RE = re.compile(r"[\s:,;\-_]+")


def parse_hex(hex_text: str) -> bytes:
    """Bytes from hex with or without spaces, colons, commas, dashes or ``0x`` prefixes."""
    text = _PREFIX_RE.sub("", str(hex_text).strip())
    text = _SEPARATORS_RE.sub("", text)
    if not text:
        raise ProfileError("no hex bytes given")
    bad = re.search(r"[^0-9a-fA-F]", text)
    if bad:
        raise ProfileError(f"not hex: {bad.group(0)!r} in {str(hex_text).strip()[:40]!r}")
    if len(text) % 2:
        raise ProfileError(f"odd number of hex digits ({len(text)})")
    return bytes.fromhex(text)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def decode_hex(profile_name: str, hex_text: str, **settings: Any) -> dict[str, Any]:
    """Decode one notification of ``profile_name`` given as hex (see the module docstring).

    ``settings`` go to the profile's decoder, e.g. ``factor``, ``sample_rate`` and ``model`` for
    Polar, ``chip`` and ``range_g`` for MetaWear.
    """
    profile = get_profile(profile_name)
    data = parse_hex(hex_text)
    try:
        decoder = profile.new_decoder(**settings)
    except TypeError as exc:
        raise ProfileError(f"bad setting for {profile.name}: {exc}") from None
    if profile.name == "witmotion":  # one notification: no stream to count WTVB01 packets in
        from .witmotion import check_not_vibration

        check_not_vibration(data)
        decoder.flush()  # type: ignore[attr-defined]  # hold nothing back: there is no next packet
    decoded = decoder.feed(data)
    if profile.name == "witmotion" and len(decoded) == 0 and "registers" not in decoded.extras:
        raise ProfileError(f"no complete WitMotion packet (55 61 or 55 71, 20 bytes) in {len(data)} bytes")
    result: dict[str, Any] = {
        "profile": profile.name,
        "samples": decoded.samples.tolist(),
    }
    if decoded.timestamps is not None:
        result["timestamps"] = np.round(decoded.timestamps, 6).tolist()
    if decoded.extras:
        result["info"] = _jsonable(decoded.extras)
    return result
