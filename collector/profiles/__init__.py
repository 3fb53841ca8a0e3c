"""Device profiles: what each supported sensor's BLE bytes mean.

One module per sensor family - ``polar`` (Polar PMD: H10, Verity Sense, OH1), ``witmotion``
(WitMotion BLE 5.0 IMUs), ``metawear`` (MbientLab MetaWear accelerometer module) and ``nus``
(Nordic UART Service with legwatch's own documented frame, for DIY boards; see ``NUS_FRAME.md``)
- plus ``sig`` (Battery and Device Information services), ``base`` (the :class:`Profile` and
:class:`Decoder` interfaces, :class:`Decoded`, :class:`ProfileError`, the registry) and
``decode`` (``decode_hex`` for ``legwatch decode PROFILE HEX``).

Profiles are pure byte logic: they import only numpy and the standard library (no bleak, no
MQTT), so they are testable byte for byte and usable from the CLI without a radio.

    >>> from collector.profiles import get_profile
    >>> decoder = get_profile("polar").new_decoder(sample_rate=52)
    >>> decoded = decoder.feed(notification_bytes)  # doctest: +SKIP
"""

from __future__ import annotations

from . import metawear, nus, polar, sig, witmotion
from .base import PROFILES, Decoded, Decoder, Profile, ProfileError, get_profile
from .decode import decode_hex, parse_hex

__all__ = [
    "PROFILES",
    "Decoded",
    "Decoder",
    "Profile",
    "ProfileError",
    "decode_hex",
    "get_profile",
    "metawear",
    "nus",
    "parse_hex",
    "polar",
    "sig",
    "witmotion",
]
