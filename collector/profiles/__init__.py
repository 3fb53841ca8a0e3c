"""Device profiles: what each supported sensor's BLE bytes mean, and how its stream starts.

One module per sensor family - ``polar`` (Polar PMD: H10, Verity Sense, OH1), ``witmotion``
(WitMotion BLE 5.0 IMUs), ``metawear`` (MbientLab MetaWear accelerometer module) and ``nus``
(Nordic UART Service with legwatch's own documented frame, for DIY boards; see ``NUS_FRAME.md``)
- plus ``sig`` (Battery and Device Information services), ``base`` (the :class:`Profile`,
:class:`Decoder` and :class:`ControlLink` interfaces, :class:`Decoded`, :class:`ProfileError`,
the registry) and ``decode`` (``decode_hex`` for ``legwatch decode PROFILE HEX``).

Each profile owns its defaults (default rate, what it streams for a requested rate and range,
whether frames carry a device clock) and its start/stop sequence (:meth:`Profile.start` on a
:class:`ControlLink`), so the collector needs no per-profile code.

Profiles import only numpy and the standard library (no bleak, no MQTT), so they are testable byte
for byte and usable from the CLI without a radio. The submodules, :data:`PROFILES`, ``decode_hex``
and ``parse_hex`` load on first use: ``from collector.profiles import profile_names`` (the CLI's
choices) imports neither numpy nor a profile module.

    >>> from collector.profiles import get_profile
    >>> decoder = get_profile("polar").new_decoder(sample_rate=52)
    >>> decoded = decoder.feed(notification_bytes)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import (
    BUILTIN_PROFILES,
    ControlEvent,
    ControlLink,
    Decoded,
    Decoder,
    HandshakeError,
    NotAnAccelerometer,
    Profile,
    ProfileError,
    RefusedDevice,
    StreamSettings,
    get_profile,
    profile_names,
    register_profile,
    registered_profiles,
)

if TYPE_CHECKING:
    from . import decode, metawear, nus, polar, sig, witmotion
    from .base import PROFILES
    from .decode import decode_hex, parse_hex

__all__ = [
    "BUILTIN_PROFILES",
    "PROFILES",
    "ControlEvent",
    "ControlLink",
    "Decoded",
    "Decoder",
    "HandshakeError",
    "NotAnAccelerometer",
    "Profile",
    "ProfileError",
    "RefusedDevice",
    "StreamSettings",
    "decode",
    "decode_hex",
    "get_profile",
    "metawear",
    "nus",
    "parse_hex",
    "polar",
    "profile_names",
    "register_profile",
    "registered_profiles",
    "sig",
    "witmotion",
]

_SUBMODULES = frozenset({"decode", "metawear", "nus", "polar", "sig", "witmotion"})
_FROM_DECODE = frozenset({"decode_hex", "parse_hex"})


def __getattr__(name: str) -> Any:
    if name == "PROFILES":
        from . import base

        registered_profiles()  # every built-in profile registered, in registry order
        return base.PROFILES
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FROM_DECODE:
        return getattr(importlib.import_module(f"{__name__}.decode"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
