"""Common vocabulary of the device profiles: decoded samples, the profile and decoder interfaces,
the profile registry and small BLE UUID helpers.

A *profile* describes one kind of sensor: which GATT service and characteristics it uses, how to
recognise it in a scan, its defaults (:attr:`Profile.default_rate_hz`, what it streams for a
requested rate and range), and how a connection starts and stops its accelerometer stream
(:meth:`Profile.start` / :meth:`Profile.stop` on a :class:`ControlLink`, and
:meth:`Profile.on_control` for what arrives on the control characteristic). The collector
(:mod:`collector.gatt`) provides the link and never needs to know which profile it talks to. A
*decoder* is the per-connection, stateful part: it turns one notification into samples in g (and,
where the frame carries a sensor clock, timestamps in Unix seconds). Decoders raise
:class:`ProfileError` with a one-line message for malformed input and never any other exception.

The registry (:data:`BUILTIN_PROFILES`, :data:`PROFILES`, :func:`profile_names`,
:func:`get_profile`, :func:`register_profile`) is the one list of profile names. The profile
modules are imported when a profile object is first needed, so :func:`profile_names` (the CLI's
choices) costs neither numpy nor the profile modules.

Only the standard library is imported here (numpy only when :meth:`Decoded.empty` first runs).
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import logging

    import numpy as np

__all__ = [
    "BUILTIN_PROFILES",
    "PROFILES",
    "SIG_BASE_SUFFIX",
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
    "char_properties",
    "char_uuid",
    "full_uuid",
    "get_profile",
    "normalize_uuid",
    "profile_names",
    "register_profile",
    "registered_profiles",
    "uuid16",
]

#: Bluetooth SIG base UUID suffix: ``0000xxxx`` + this = the full 128-bit form of a 16-bit UUID.
SIG_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"

_UUID16_RE = re.compile(r"^0000([0-9a-f]{4})-0000-1000-8000-00805f9[0-9a-f]34fb$")


class ProfileError(ValueError):
    """A malformed frame, bad hex, unknown profile or bad setting. The message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class RefusedDevice(ProfileError):
    """A device the profile will not stream (one-line message): the collector stops on it rather
    than reconnect all night."""


class NotAnAccelerometer(RefusedDevice):
    """The device speaks a profile's protocol but is not an accelerometer (a WitMotion WTVB01
    vibration sensor): refused, never decoded."""


class HandshakeError(RuntimeError):
    """The sensor did not start streaming as asked (one-line message)."""


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
        import numpy as np

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


@dataclass
class StreamSettings:
    """What a profile will actually stream for a requested rate and range."""

    rate: float
    range_g: float
    timed: bool  # frames carry the sensor's clock
    decoder: dict[str, Any] = field(default_factory=dict)  # settings for Profile.new_decoder


@dataclass(frozen=True)
class ControlEvent:
    """What one message on the control characteristic means to the connection
    (:meth:`Profile.on_control`): a ``reply`` the start sequence waits for
    (:meth:`ControlLink.next_reply`), and/or the sensor ``stopped`` streaming by itself (the
    collector reconnects), with a ``warning`` to log."""

    reply: Any = None
    stopped: bool = False
    warning: str = ""


class ControlLink(Protocol):
    """What a profile's :meth:`Profile.start` / :meth:`Profile.stop` may use on one connection
    (:class:`collector.gatt.SessionLink` provides it over bleak)."""

    #: The rate (Hz) and range (g) the collector asked for.
    rate_hz: float
    range_g: float
    #: How long to wait for one control reply (s).
    reply_timeout_s: float
    #: This connection's decoder (from :meth:`Profile.new_decoder` with :meth:`Profile.stream_settings`).
    decoder: Decoder
    #: Device information the collector publishes in its status; a start sequence may add to it.
    info: dict[str, Any]
    log: logging.Logger

    @property
    def has_control(self) -> bool:
        """Whether the connection has a control characteristic to write to."""
        ...

    async def write(self, data: bytes, *, response: bool | None = None) -> None:
        """Write to the control characteristic; ``response`` ``None``: as :attr:`Profile.write_response`
        says (where it does not say, as the characteristic offers)."""
        ...

    async def next_reply(self, timeout: float) -> Any:
        """The next :attr:`ControlEvent.reply` that arrived; :class:`TimeoutError` after ``timeout`` s."""
        ...

    def clear_replies(self) -> None:
        """Forget replies that arrived and were not taken."""
        ...

    def set_stream(self, *, rate: float | None = None, range_g: float | None = None) -> None:
        """What the sensor will stream, once the start sequence knows it better than
        :meth:`Profile.stream_settings` did (set before the start command, so the first frame is
        decoded and batched at the right rate)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Pause between commands."""
        ...


#: Sample rate asked for when none is given, unless a profile says otherwise (Hz).
DEFAULT_RATE_HZ = 52.0


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
    #: Whether replies to commands arrive on the *data* characteristic (MetaWear): every data
    #: notification is then also offered to :meth:`on_control` (and still decoded as data).
    replies_on_data: bool = False
    #: Advertised local-name prefixes (case-insensitive) that identify the device in a scan.
    name_prefixes: tuple[str, ...] = ()
    #: Advertised service UUIDs that identify the device in a scan.
    advertised_uuids: tuple[str, ...] = ()
    #: Sample rate asked for when none is given (Hz): what the sensor offers nearest to 52 Hz.
    default_rate_hz: float = DEFAULT_RATE_HZ
    #: Whether frames carry the sensor's own clock (see :meth:`stream_settings`).
    timed: bool = False
    #: Whether frames carry the board's raw millisecond counter (``extras["device_time_ms"]``, with
    #: ``extras["rate_hz"]``) that the collector maps onto host time itself
    #: (:class:`collector.clock.DeviceMillis`) rather than using the decoder's timestamps.
    device_ms_clock: bool = False

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

    def stream_settings(self, rate_hz: float, range_g: float) -> StreamSettings:
        """Nominal rate, range and decoder settings for the requested ones (the default: as asked)."""
        return StreamSettings(float(rate_hz), float(range_g), self.timed)

    def on_control(self, decoder: Decoder, data: bytes) -> ControlEvent | None:
        """What a notification/indication on the control characteristic means (where
        :attr:`control_notifications`): the default hands it to :meth:`Decoder.feed_control` and
        offers what that returns as a reply. :class:`ProfileError` for a malformed message."""
        msg = decoder.feed_control(bytes(data))
        return None if msg is None else ControlEvent(reply=msg)

    def battery_commands(self) -> list[bytes]:
        """Commands that make the sensor report its battery on the data characteristic (decoded
        into ``extras["battery_percent"]``), written now and then while streaming; none by default
        (the Battery Service 0x180F, where a sensor has one, is read instead)."""
        return []

    async def start(self, link: ControlLink) -> None:
        """Start streaming on a connection whose notifications are on. The default writes
        :meth:`start_commands` for the requested rate and range, :attr:`command_interval_s` apart
        (nothing without a control characteristic). Raises :class:`HandshakeError` when the
        sensor refuses."""
        if not link.has_control:
            return
        for command in self.start_commands(link.rate_hz, link.range_g):
            await link.write(command)
            if self.command_interval_s:
                await link.sleep(self.command_interval_s)

    async def stop(self, link: ControlLink) -> None:
        """Best effort: write :meth:`stop_commands`; a write that fails is skipped (the link may be
        going)."""
        if not link.has_control:
            return
        for command in self.stop_commands():
            with contextlib.suppress(Exception):
                await link.write(command)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


#: The profiles that come with legwatch, in registry order (the order scans try them and the CLI
#: lists them). Each is defined by the module ``collector.profiles.<name>``, which registers it.
BUILTIN_PROFILES: tuple[str, ...] = ("polar", "witmotion", "metawear", "nus")

#: Registered profiles by name, built-in ones first in :data:`BUILTIN_PROFILES` order. Filled when
#: a profile is first looked up (:func:`get_profile`, :func:`registered_profiles`, or
#: ``collector.profiles.PROFILES``); read it through those.
PROFILES: dict[str, Profile] = {}

_builtin_loaded = False


def register_profile(profile: Profile) -> Profile:
    """Add a profile to :data:`PROFILES` (each profile module does this for its own)."""
    PROFILES[profile.name] = profile
    return profile


def _load_builtin() -> None:
    """Import the built-in profile modules (each registers its profile), in registry order."""
    global _builtin_loaded
    if _builtin_loaded:
        return
    import importlib

    for name in BUILTIN_PROFILES:
        importlib.import_module(f"{__package__}.{name}")
        if name not in PROFILES:  # pragma: no cover - a module that does not register its profile
            raise ProfileError(f"collector.profiles.{name} did not register a profile called {name!r}")
    ordered = {name: PROFILES[name] for name in BUILTIN_PROFILES}
    ordered.update(PROFILES)  # profiles registered by others follow, in their own order
    PROFILES.clear()
    PROFILES.update(ordered)
    _builtin_loaded = True


def profile_names() -> tuple[str, ...]:
    """Names of the profiles, in registry order (imports no profile module)."""
    return tuple(dict.fromkeys((*BUILTIN_PROFILES, *PROFILES)))


def registered_profiles() -> list[Profile]:
    """Every profile, in registry order."""
    _load_builtin()
    return list(PROFILES.values())


def get_profile(name: str) -> Profile:
    """The profile called ``name``; :class:`ProfileError` naming the valid ones otherwise."""
    key = str(name).strip().lower()
    if key not in PROFILES:
        _load_builtin()
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
