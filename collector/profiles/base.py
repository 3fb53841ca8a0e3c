"""Common vocabulary of the device profiles: decoded samples, the profile and decoder interfaces,
the profile registry and small BLE UUID helpers.

A *profile* describes one kind of sensor: which GATT service and characteristics it uses, how to
recognise it in a scan, and which bytes start and stop its accelerometer stream. A *decoder* is the
per-connection, stateful part: it turns one notification into samples in g (and, where the frame
carries a sensor clock, timestamps in Unix seconds). Decoders raise :class:`ProfileError` with a
one-line message for malformed input and never any other exception.

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "PROFILES",
    "SIG_BASE_SUFFIX",
    "Decoded",
    "Decoder",
    "Profile",
    "ProfileError",
    "char_properties",
    "char_uuid",
    "full_uuid",
    "get_profile",
    "normalize_uuid",
    "register_profile",
    "uuid16",
]

#: Bluetooth SIG base UUID suffix: ``0000xxxx`` + this = the full 128-bit form of a 16-bit UUID.
SIG_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"

_UUID16_RE = re.compile(r"^0000([0-9a-f]{4})-0000-1000-8000-00805f9[0-9a-f]34fb$")


class ProfileError(ValueError):
    """A malformed frame, bad hex, unknown profile or bad setting. The message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass
class Decoded:
    """What one notification decoded to.

    ``samples`` has shape ``(n, 3)`` (x, y, z), float64, in g. ``timestamps`` has shape ``(n,)``,
    float64 Unix seconds from the sensor's own clock when the frame carries time, else ``None``
    (the caller then uses host arrival time and the nominal rate). ``extras`` holds anything else a
    frame told us (sequence numbers, gyro, battery register, ...); it is informational.
    """

    samples: np.ndarray
    timestamps: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, with_time: bool = False, **extras: Any) -> Decoded:
        """No samples (a control reply, a partial packet, ...)."""
        ts = np.zeros(0, dtype=np.float64) if with_time else None
        return cls(np.zeros((0, 3), dtype=np.float64), ts, dict(extras))

    def __len__(self) -> int:
        return int(self.samples.shape[0])


class Decoder(ABC):
    """Stateful per-connection decoder (resync buffers, scale factors, previous frame time)."""

    @abstractmethod
    def feed(self, data: bytes) -> Decoded:
        """Decode one notification from the data characteristic."""

    def feed_control(self, data: bytes) -> Any:
        """Digest a notification/indication from the control characteristic (Polar CP).

        Returns a parsed reply where the profile has one, else ``None``.
        """
        return None

    def reset(self) -> None:  # noqa: B027 - optional hook, default is stateless
        """Forget per-stream state (after a stop command or a reconnect)."""


class Profile(ABC):
    """One kind of sensor. Subclasses set the class attributes and implement the commands."""

    name: str = ""
    #: GATT service holding the stream, and the characteristics that carry data and take commands.
    service_uuid: str = ""
    data_uuid: str = ""
    control_uuid: str | None = None
    #: ``True``: write commands with response; ``False``: without; ``None``: let bleak choose.
    write_response: bool | None = None
    #: Pause between consecutive start/stop commands (WitMotion wants 100 ms).
    command_interval_s: float = 0.0
    #: Whether replies arrive on the control characteristic (enable its notifications/indications
    #: *before* writing, and pass what arrives to :meth:`Decoder.feed_control`).
    control_notifications: bool = False
    #: Advertised local-name prefixes (case-insensitive) that identify the device in a scan.
    name_prefixes: tuple[str, ...] = ()
    #: Advertised service UUIDs that identify the device in a scan.
    advertised_uuids: tuple[str, ...] = ()

    def matches(self, device_name: str | None, service_uuids: Iterable[str]) -> bool:
        """Whether a scanned device looks like this profile (for ``legwatch scan``)."""
        wanted = {normalize_uuid(u) for u in self.advertised_uuids}
        for uuid in service_uuids:
            try:
                if normalize_uuid(uuid) in wanted:
                    return True
            except ProfileError:
                continue
        if device_name:
            lowered = device_name.strip().lower()
            return any(lowered.startswith(p.lower()) for p in self.name_prefixes)
        return False

    @abstractmethod
    def new_decoder(self, **settings: Any) -> Decoder:
        """A fresh decoder for one connection."""

    @abstractmethod
    def start_commands(self, rate_hz: float, range_g: float) -> list[bytes]:
        """Bytes to write to :attr:`control_uuid`, in order, to start streaming."""

    @abstractmethod
    def stop_commands(self) -> list[bytes]:
        """Bytes to write to :attr:`control_uuid`, in order, to stop streaming."""

    def resolve_characteristics(self, characteristics: Iterable[Any]) -> tuple[str, str | None]:
        """Pick ``(data_uuid, control_uuid)`` among a service's characteristics.

        Accepts bleak ``BleakGATTCharacteristic`` objects (``.uuid``, ``.properties``) or
        ``(uuid, properties)`` tuples. The default matches the full UUIDs; profiles whose vendors
        vary the UUIDs (WitMotion) or name them inconsistently (NUS) override this.
        """
        uuids = {normalize_uuid(char_uuid(c)) for c in characteristics}
        data = normalize_uuid(self.data_uuid)
        if data not in uuids:
            raise ProfileError(f"{self.name}: data characteristic {self.data_uuid} not found")
        control = None
        if self.control_uuid is not None:
            control = normalize_uuid(self.control_uuid)
            if control not in uuids:
                raise ProfileError(f"{self.name}: control characteristic {self.control_uuid} not found")
        return data, control

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


#: Registered profiles by name; filled when ``collector.profiles`` is imported.
PROFILES: dict[str, Profile] = {}


def register_profile(profile: Profile) -> Profile:
    """Add a profile to :data:`PROFILES` (each profile module does this for its own)."""
    PROFILES[profile.name] = profile
    return profile


def get_profile(name: str) -> Profile:
    """The profile called ``name``; :class:`ProfileError` naming the valid ones otherwise."""
    if not PROFILES:  # pragma: no cover - the package __init__ registers them on import
        from collector import profiles  # noqa: F401
    key = str(name).strip().lower()
    try:
        return PROFILES[key]
    except KeyError:
        valid = ", ".join(sorted(PROFILES))
        raise ProfileError(f"unknown profile {name!r}; valid profiles: {valid}") from None


def full_uuid(uuid: int | str) -> str:
    """128-bit lowercase form of a 16-bit SIG UUID given as ``0x2A19``, ``"2a19"`` or full."""
    if isinstance(uuid, int):
        if not 0 <= uuid <= 0xFFFF:
            raise ProfileError(f"16-bit UUID out of range: {uuid:#x}")
        return f"0000{uuid:04x}{SIG_BASE_SUFFIX}"
    return normalize_uuid(uuid)


def normalize_uuid(uuid: str) -> str:
    """Lowercase 128-bit UUID; 16- and 32-bit short forms are expanded on the SIG base."""
    text = str(uuid).strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if re.fullmatch(r"[0-9a-f]{4}", text):
        return f"0000{text}{SIG_BASE_SUFFIX}"
    if re.fullmatch(r"[0-9a-f]{8}", text):
        return f"{text}{SIG_BASE_SUFFIX}"
    if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text):
        return text
    raise ProfileError(f"not a UUID: {uuid!r}")


def uuid16(uuid: str) -> str | None:
    """The 16-bit part (``"ffe4"``) of a UUID on the SIG base *or* on the ``...805f9a34fb``
    variant that WitMotion uses; ``None`` for other 128-bit UUIDs."""
    try:
        text = normalize_uuid(uuid)
    except ProfileError:
        return None
    m = _UUID16_RE.match(text)
    return m.group(1) if m else None


def char_uuid(char: Any) -> str:
    """UUID of a bleak characteristic or of a ``(uuid, properties)`` tuple."""
    if isinstance(char, tuple | list):
        return str(char[0])
    return str(char.uuid)


def char_properties(char: Any) -> set[str]:
    """Lowercase property names of a bleak characteristic or a ``(uuid, properties)`` tuple."""
    props = char[1] if isinstance(char, tuple | list) else getattr(char, "properties", ())
    return {str(p).lower() for p in props}
