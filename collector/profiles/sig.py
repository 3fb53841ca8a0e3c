"""Bluetooth SIG services most sensors have: Battery (0x180F) and Device Information (0x180A).

UUIDs from the Bluetooth SIG assigned numbers (as listed in bleak's ``bleak/uuids.py``); full
128-bit forms are ``0000xxxx-0000-1000-8000-00805f9b34fb``. Battery Level (0x2A19) is one uint8,
0-100 %. Device Information strings are UTF-8 without a terminator (some firmware pads with NULs).

Only the standard library is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import ProfileError, full_uuid, normalize_uuid

__all__ = [
    "BATTERY_LEVEL",
    "BATTERY_SERVICE",
    "DEVICE_INFORMATION_FIELDS",
    "DEVICE_INFORMATION_SERVICE",
    "FIRMWARE_REVISION",
    "HARDWARE_REVISION",
    "MANUFACTURER_NAME",
    "MODEL_NUMBER",
    "SERIAL_NUMBER",
    "SOFTWARE_REVISION",
    "parse_battery_level",
    "parse_device_information",
    "parse_string",
]

BATTERY_SERVICE = full_uuid(0x180F)
BATTERY_LEVEL = full_uuid(0x2A19)
DEVICE_INFORMATION_SERVICE = full_uuid(0x180A)
MANUFACTURER_NAME = full_uuid(0x2A29)
MODEL_NUMBER = full_uuid(0x2A24)
SERIAL_NUMBER = full_uuid(0x2A25)
FIRMWARE_REVISION = full_uuid(0x2A26)
HARDWARE_REVISION = full_uuid(0x2A27)
SOFTWARE_REVISION = full_uuid(0x2A28)

#: Device Information characteristics to read, by full UUID, with the key they get.
DEVICE_INFORMATION_FIELDS: dict[str, str] = {
    MANUFACTURER_NAME: "manufacturer",
    MODEL_NUMBER: "model",
    SERIAL_NUMBER: "serial",
    FIRMWARE_REVISION: "firmware",
    HARDWARE_REVISION: "hardware",
    SOFTWARE_REVISION: "software",
}


def parse_battery_level(data: bytes) -> int:
    """Battery Level (0x2A19): percent. Values above 100 are reserved and refused.

    Note: a Polar Verity Sense on its charger reports a frozen level (Polar ``KnownIssues.md``).
    """
    data = bytes(data)
    if len(data) < 1:
        raise ProfileError("empty Battery Level value")
    level = data[0]
    if level > 100:
        raise ProfileError(f"Battery Level {level} is above 100 %")
    return level


def parse_string(data: bytes) -> str:
    """A UTF-8 characteristic string, without trailing NULs or surrounding spaces."""
    return bytes(data).split(b"\x00", 1)[0].decode("utf-8", errors="replace").strip()


def parse_device_information(values: Mapping[str, bytes]) -> dict[str, str]:
    """``{uuid: raw bytes}`` as read from 0x180A into ``{"manufacturer": ..., "model": ...}``.

    UUIDs may be given in short (``"2a29"``) or full form; unknown ones are ignored.
    """
    out: dict[str, str] = {}
    for uuid, raw in values.items():
        key = DEVICE_INFORMATION_FIELDS.get(normalize_uuid(uuid))
        if key is not None and raw is not None:
            out[key] = parse_string(raw)
    return out
