"""Byte-exact tests of the device profiles against the vendors' published vectors, plus
round-trip and fuzz properties (Hypothesis).

Each vendor vector names the file it comes from. Paths in polarofficial/polar-ble-sdk are under
sources/Android/android-communications/library/src/{main,test}/java/com/polar/androidcommunications/
api/ble/model/gatt/client/pmd/ (abbreviated "pmd/" below).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.profiles import PROFILES, Decoded, ProfileError, decode_hex, get_profile, nus, parse_hex, polar, sig
from collector.profiles import metawear as mw
from collector.profiles import witmotion as wit
from collector.profiles.base import (
    BUILTIN_PROFILES,
    HandshakeError,
    Profile,
    RefusedDevice,
    full_uuid,
    normalize_uuid,
    profile_names,
    uuid16,
)
from helpers import ROOT

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# =============================================================================================
# Registry, UUIDs, hex parsing
# =============================================================================================


def test_registry_has_the_four_profiles() -> None:
    assert set(PROFILES) == {"polar", "witmotion", "metawear", "nus"}
    for name, profile in PROFILES.items():
        assert get_profile(name) is profile
        assert profile.name == name
        assert normalize_uuid(profile.service_uuid) == profile.service_uuid


def test_unknown_profile_names_valid_ones() -> None:
    with pytest.raises(ProfileError, match="metawear, nus, polar, witmotion"):
        get_profile("fitbit")


def test_profile_names_are_the_registry_in_order() -> None:
    assert profile_names() == BUILTIN_PROFILES == ("polar", "witmotion", "metawear", "nus")
    assert tuple(PROFILES) == profile_names()


def test_profile_names_cost_neither_numpy_nor_a_profile_module() -> None:
    """The CLI builds its --profile choices from the registry on every start."""
    code = (
        "import sys\n"
        "from collector.profiles import profile_names\n"
        "assert profile_names() == ('polar', 'witmotion', 'metawear', 'nus')\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'bleak') or m == 'collector.profiles.polar']\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, timeout=60)


def test_profiles_own_their_defaults() -> None:
    rates = {name: get_profile(name).default_rate_hz for name in profile_names()}
    assert rates == {"polar": 52.0, "witmotion": 50.0, "metawear": 50.0, "nus": 52.0}
    assert [n for n in profile_names() if get_profile(n).device_ms_clock] == ["nus"]
    s = get_profile("polar").stream_settings(52, 8)
    assert (s.rate, s.range_g, s.timed, s.decoder) == (52.0, 8.0, True, {"sample_rate": 52.0})
    s = get_profile("witmotion").stream_settings(52, 8)  # next output rate up; always +-16 g
    assert (s.rate, s.range_g, s.timed, s.decoder) == (100.0, 16.0, False, {})
    s = get_profile("metawear").stream_settings(52, 3)
    assert (s.rate, s.range_g, s.timed, s.decoder) == (100.0, 4.0, False, {"range_g": 4})
    s = get_profile("nus").stream_settings(52, 8)
    assert (s.rate, s.range_g, s.timed, s.decoder) == (52.0, 8.0, True, {})


# =============================================================================================
# Start sequences on a scripted link (collector.gatt provides the real one over bleak)
# =============================================================================================


class ScriptedLink:
    """A :class:`collector.profiles.ControlLink` whose sensor answers each write with the control
    messages ``answer(data)`` returns; they go through the profile's ``on_control`` as on a radio."""

    def __init__(
        self,
        profile: Profile,
        rate: float,
        range_g: float,
        answer: Callable[[bytes], list[bytes]] | None = None,
        *,
        has_control: bool = True,
        fail_writes: bool = False,
    ) -> None:
        self.profile = profile
        self.rate_hz, self.range_g = float(rate), float(range_g)
        self.reply_timeout_s = 0.05
        self.decoder = profile.new_decoder(**profile.stream_settings(rate, range_g).decoder)
        self.info: dict[str, Any] = {}
        self.log = logging.getLogger("test.link")
        self.has_control = has_control
        self.writes: list[bytes] = []
        self.sleeps: list[float] = []
        self.stream: dict[str, float | None] = {}
        self.events: list[Any] = []
        self._answer = answer or (lambda data: [])
        self._fail = fail_writes
        self._replies: list[Any] = []

    async def write(self, data: bytes, *, response: bool | None = None) -> None:
        self.writes.append(bytes(data))
        if self._fail:
            raise OSError("link gone")
        for message in self._answer(bytes(data)):
            event = self.profile.on_control(self.decoder, message)
            self.events.append(event)
            if event is not None and event.reply is not None:
                self._replies.append(event.reply)

    async def next_reply(self, timeout: float) -> Any:
        if not self._replies:
            await asyncio.sleep(timeout)
            raise TimeoutError
        return self._replies.pop(0)

    def clear_replies(self) -> None:
        self._replies.clear()

    def set_stream(self, *, rate: float | None = None, range_g: float | None = None) -> None:
        self.stream = {"rate": rate, "range_g": range_g}

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


# GET ACC settings reply parameters of a Verity Sense outside SDK mode: 52 Hz, 16 bit, 8 g, 3 channels
VERITY_SETTINGS = h("00 01 34 00 01 01 10 00 02 01 08 00 04 01 03")
VERITY_START = h("02 02 00 01 34 00 01 01 10 00 02 01 08 00 04 01 03")


def test_polar_start_negotiates_and_restarts_a_running_stream() -> None:
    starts = []

    def sensor(data: bytes) -> list[bytes]:
        if data == h("01 02"):
            return [h("F0 01 02 00 00") + VERITY_SETTINGS]
        if data[:2] == h("02 02"):
            starts.append(data)
            if len(starts) == 1:
                return [h("F0 02 02 06")]  # ERROR_ALREADY_IN_STATE
            return [h("F0 02 02 00 00 05 01") + struct.pack("<f", 1 / 4096)]
        if data == h("03 02"):
            return [h("F0 03 02 00 00")]
        return []

    link = ScriptedLink(get_profile("polar"), 50, 6, sensor)
    asyncio.run(get_profile("polar").start(link))
    assert link.writes == [h("01 02"), VERITY_START, h("03 02"), VERITY_START]
    assert link.stream == {"rate": 52.0, "range_g": 8.0}
    assert link.decoder.sample_rate == 52.0
    assert link.info["factor"] == pytest.approx(1 / 4096) == link.decoder.factor


def test_polar_start_without_settings_asks_for_the_requested_ones_and_needs_a_start_reply() -> None:
    link = ScriptedLink(get_profile("polar"), 52, 8)  # a sensor that never answers
    with pytest.raises(HandshakeError, match="no control point reply to 02 02 00 01 34 00"):
        asyncio.run(get_profile("polar").start(link))
    assert link.writes == [h("01 02"), get_profile("polar").start_commands(52, 8)[0]]


def test_polar_start_refused_is_a_handshake_error() -> None:
    def sensor(data: bytes) -> list[bytes]:
        return [h("F0 01 02 00 00") + VERITY_SETTINGS] if data == h("01 02") else [h("F0 02 02 08")]

    link = ScriptedLink(get_profile("polar"), 52, 8, sensor)
    with pytest.raises(HandshakeError, match=r"refused START ACC .*ERROR_INVALID_SAMPLE_RATE"):
        asyncio.run(get_profile("polar").start(link))


def test_polar_control_events() -> None:
    profile = get_profile("polar")
    decoder = profile.new_decoder()
    event = profile.on_control(decoder, h("01 02"))
    assert event is not None and event.stopped and event.reply is None
    assert event.warning == "the sensor stopped ACC by itself"
    event = profile.on_control(decoder, h("01 00"))  # ECG stopped: not our stream
    assert event is not None and not event.stopped and "ECG" in event.warning
    assert profile.on_control(decoder, h("01")).stopped  # unnamed: take it as ours
    assert profile.on_control(decoder, h("F0 01 02 00 01 00 01 34 00")) is None  # more parts follow
    event = profile.on_control(decoder, h("F0 01 02 00 00 01 01 10 00"))
    assert event is not None and not event.stopped
    assert event.reply.op_code == 1 and event.reply.parameters == h("00 01 34 00 01 01 10 00")
    with pytest.raises(ProfileError):
        profile.on_control(decoder, h("77"))


def test_default_start_and_stop_write_the_profile_commands() -> None:
    witmotion = get_profile("witmotion")
    link = ScriptedLink(witmotion, 50, 8)
    asyncio.run(witmotion.start(link))
    assert link.writes == witmotion.start_commands(50, 8) and link.sleeps == [0.1] * 4
    link = ScriptedLink(witmotion, 50, 8, has_control=False)  # no ffe9: the stream just flows
    asyncio.run(witmotion.start(link))
    assert link.writes == []
    metawear = get_profile("metawear")
    link = ScriptedLink(metawear, 50, 8, fail_writes=True)  # best effort: every command is tried
    asyncio.run(metawear.stop(link))
    assert link.writes == metawear.stop_commands() and link.sleeps == []


@pytest.mark.parametrize(
    "text",
    ["F0 01 02", "f00102", "F0:01:02", "0xF0 0x01 0x02", "0xF00102", " F0-01-02 \n", "F0,01,02"],
)
def test_parse_hex_forms(text: str) -> None:
    assert parse_hex(text) == b"\xf0\x01\x02"


@pytest.mark.parametrize("text", ["", "   ", "F0 0", "zz", "F0 01 0g", "0x"])
def test_parse_hex_errors_are_one_line(text: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_hex(text)
    assert "\n" not in str(info.value)


def test_uuid_helpers() -> None:
    assert full_uuid(0x2A19) == "00002a19-0000-1000-8000-00805f9b34fb"
    assert normalize_uuid("2A19") == "00002a19-0000-1000-8000-00805f9b34fb"
    assert uuid16("0000ffe4-0000-1000-8000-00805f9a34fb") == "ffe4"  # WitMotion's 9a base
    assert uuid16("0000FFE4-0000-1000-8000-00805F9B34FB") == "ffe4"
    assert uuid16(polar.PMD_DATA) is None


def test_scan_matching() -> None:
    p, w, m, n = (get_profile(x) for x in ("polar", "witmotion", "metawear", "nus"))
    assert p.matches("Polar H10 A1B2C3D4", [])
    assert p.matches("Polar Sense 1234ABCD", ["0000180d-0000-1000-8000-00805f9b34fb"])
    assert not p.matches("WT901BLE68", [])
    assert w.matches("WT901BLE68", [])
    assert w.matches(None, ["0000ffe5-0000-1000-8000-00805f9a34fb"])
    assert w.matches(None, ["0000ffe5-0000-1000-8000-00805f9b34fb"])
    assert m.matches(None, ["326A9000-85CB-9195-D9DD-464CFBBAE75A"])
    assert m.matches("MetaWear", [])
    assert n.matches(None, ["6E400001-B5A3-F393-E0A9-E50E24DCCA9E"])
    assert n.matches("legwatch-shin", [])
    assert not n.matches("Polar H10", ["not-a-uuid"])


# =============================================================================================
# Polar PMD
# =============================================================================================

# pmd/model/AccDataTest.kt, `process acc compressed data type 1`.
POLAR_COMPRESSED_TYPE1 = "02 65 00 00 00 00 00 00 00 81 F1 FF 14 00 F0 03 06 01 7B 0F 08"

# pmd/model/AccDataTest.kt, `process acc raw data frame type 1` (H10): header, then the HEX comment
# content after its leading frame-type byte 01.
POLAR_RAW_TYPE1_HEADER = "02 00 94 35 77 00 00 00 00 01"
POLAR_RAW_TYPE1_CONTENT = (
    "F7 FF FF FF E7 03 F8 FF FE FF E5 03 F9 FF FF FF E5 03 FA FF FF FF E6 03 FA FF FE FF E6 03 "
    "F9 FF FF FF E5 03 F8 FF FF FF E6 03 F8 FF FE FF E6 03 FA FF FF FF E5 03 FA FF FF FF E7 03 "
    "FA FF FF FF E5 03 F8 FF FF FF E6 03 F7 FF FF FF E6 03 F8 FF FE FF E6 03 F9 FF FE FF E7 03 "
    "F9 FF 00 00 E6 03 F9 FF FF FF E6 03 F7 FF FE FF E5 03 F9 FF FF FF E5 03 F9 FF FF FF E5 03 "
    "FA FF 00 00 E6 03 F9 FF FE FF E6 03 F8 FF FF FF E6 03 F8 FF FF FF E5 03 F9 FF FF FF E6 03 "
    "F9 FF FF FF E5 03 FA FF FF FF E6 03 F9 FF FF FF E5 03 F9 FF FF FF E5 03 F8 FF FE FF E6 03 "
    "F9 FF FF FF E6 03 F9 FF FF FF E6 03 F9 FF 00 00 E5 03 F9 FF FE FF E6 03 F8 FF FE FF E6 03 "
    "F7 FF FE FF E6 03"
)

# pmd/model/AccDataTest.kt, `process acc compressed data type 0`: header with frame type 0x80 and
# the HEX comment payload (reference sample, block 0A 38, 210 bytes of 10-bit deltas).
POLAR_COMPRESSED_TYPE0_HEADER = "02 00 94 35 77 00 00 00 00 80"
POLAR_COMPRESSED_TYPE0_CONTENT = (
    "71 07 F0 6A 9E 8D 0A 38 BE 5C BE BA 2F 96 B3 EE 4B E5 AD FB 42 B9 EB BE 4C FE BA 2F 92 BF "
    "EE 4B E4 B1 FB 12 B9 EC BD 3C 3E BB 2F 8F D3 DE 4B E3 B5 F7 D2 B8 ED BD 30 7E 7B 2F 8B E3 "
    "CE 8B E2 BA F7 A2 B8 EE BC 20 BE 7B 2F 88 F3 CE CB E1 BD EF 52 F8 EF BC 18 FE 3B 2F 84 03 "
    "BF CB E0 C2 EF 32 B8 F0 BB 04 4E BC 2E 81 13 AF 0B E0 C6 EF F2 F7 F1 B9 FC 7D BC 2E 7D 27 "
    "9F 4B DF CA EB C2 F7 F2 B8 EC CD 7C 2E 7B 37 8F 4B DE CE E3 92 F7 F3 B8 E0 0D FD 2D 77 4B "
    "7F CB DD D2 DF 62 37 F5 B7 D4 4D BD 2D 74 5B 6F CB DC D7 D7 32 37 F6 B5 C8 8D 7D 2D 71 6B "
    "4F 4B DC DC D3 F2 36 F7 B4 BC DD FD 2C 6F 7B 3F 4B DB E0 CF D2 36 F8 B2 B0 2D BE 2C 6C 8F "
    "1F CB DA E3 C7 A2 76 F9"
)


def test_polar_uuids() -> None:
    # pmd/BlePMDClient.kt companion object.
    p = get_profile("polar")
    assert p.service_uuid == "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
    assert p.control_uuid == "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
    assert p.data_uuid == "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
    assert p.write_response is True and p.control_notifications is True


def test_polar_compressed_type1_worked_example() -> None:
    # pmd/model/AccDataTest.kt: reference (-15, 20, 1008) mG, width 6, count 1, deltas (-5, -3, 0);
    # previous frame time 100, this frame 0x65 = 101 ns -> sample times 100 and 101 ns.
    frame = polar.parse_frame(h(POLAR_COMPRESSED_TYPE1))
    assert (frame.measurement_type, frame.timestamp_ns, frame.frame_type, frame.compressed) == (2, 101, 1, True)
    ints = polar.parse_delta_frames(frame.payload)
    assert ints.tolist() == [[-15, 20, 1008], [-20, 17, 1008]]
    assert polar.sample_times_ns(100, 101, 2).tolist() == [100, 101]

    decoded = polar.PolarDecoder().feed(h(POLAR_COMPRESSED_TYPE1))
    np.testing.assert_array_equal(decoded.samples * 1000, [[-15, 20, 1008], [-20, 17, 1008]])
    assert decoded.samples.dtype == np.float64 and decoded.samples.shape == (2, 3)


def test_polar_compressed_type1_via_decode_hex() -> None:
    out = decode_hex("polar", POLAR_COMPRESSED_TYPE1)
    assert out["profile"] == "polar"
    assert out["samples"] == [[-0.015, 0.02, 1.008], [-0.02, 0.017, 1.008]]
    assert "timestamps" not in out  # first frame, no sample rate: spacing unknown
    with_rate = decode_hex("polar", POLAR_COMPRESSED_TYPE1.replace(" ", ":"), sample_rate=52)
    assert with_rate["timestamps"][-1] == pytest.approx(946_684_800 + 101e-9, abs=1e-6)
    assert with_rate["timestamps"][-1] - with_rate["timestamps"][0] == pytest.approx(1 / 52, abs=2e-6)


def test_polar_raw_type1_h10_example() -> None:
    # pmd/model/AccDataTest.kt: timestamp 2 000 000 000 ns, samples (-9, -1, 999), (-8, -2, 997) mG,
    # 216 bytes / 6 = 36 samples, sample rate 52, no previous frame.
    content = h(POLAR_RAW_TYPE1_CONTENT)
    assert len(content) == 216
    frame = h(POLAR_RAW_TYPE1_HEADER) + content
    decoder = polar.PolarDecoder(sample_rate=52)
    decoded = decoder.feed(frame)
    assert decoded.samples.shape == (36, 3)
    np.testing.assert_array_equal(np.rint(decoded.samples[:2] * 1000), [[-9, -1, 999], [-8, -2, 997]])
    assert decoder.last_times_ns is not None and decoder.last_times_ns[-1] == 2_000_000_000
    assert decoded.timestamps is not None
    assert decoded.timestamps[-1] == pytest.approx(946_684_802.0, abs=1e-9)
    np.testing.assert_allclose(np.diff(decoded.timestamps), 1 / 52, atol=1e-6)


def test_polar_compressed_type0_with_factor() -> None:
    # pmd/model/AccDataTest.kt: reference (1905, 27376, -29282); block 0A 38 = 10-bit, 56 samples;
    # first deltas (+190, -105, -85); factor 2.44e-4; mG = (factor * raw * 1000f).toInt();
    # every sample within the 8 g range; previous frame at 100 ns, this frame at 2e9 ns.
    content = h(POLAR_COMPRESSED_TYPE0_CONTENT)
    assert len(content) == 6 + 2 + 210
    ints = polar.parse_delta_frames(content)
    assert ints.shape == (57, 3)
    assert ints[0].tolist() == [1905, 27376, -29282]
    assert (ints[1] - ints[0]).tolist() == [190, -105, -85]

    factor = np.float32(2.44e-4)
    decoder = polar.PolarDecoder(factor=float(factor))
    previous = bytearray(h(POLAR_COMPRESSED_TYPE0_HEADER) + content)
    previous[1:9] = (100).to_bytes(8, "little")
    first = decoder.feed(bytes(previous))
    assert first.timestamps is None  # no sample rate, no previous frame
    decoded = decoder.feed(h(POLAR_COMPRESSED_TYPE0_HEADER) + content)

    sdk_mg = np.trunc(factor * ints.astype(np.float32) * np.float32(1000)).astype(np.int64)
    ours_mg = decoded.samples * 1000
    assert np.all(np.abs(ours_mg - sdk_mg) < 1.0)
    np.testing.assert_array_equal(np.trunc(ours_mg[:2] + np.sign(ours_mg[:2]) * 1e-9), sdk_mg[:2])
    assert np.all(np.abs(ours_mg) <= 8 * 1000)

    interval = (2_000_000_000 - 100) / 57
    assert decoder.last_times_ns is not None
    assert decoder.last_times_ns[0] == round(100 + interval)
    assert decoder.last_times_ns[-1] == 2_000_000_000
    assert decoded.timestamps is not None and decoded.timestamps[-1] == pytest.approx(946_684_802.0)


def test_polar_factor_from_start_response_reaches_the_decoder() -> None:
    # START reply layout per pmd/PmdControlPointResponse.kt + PmdSetting.updateSelectedFromStartResponse:
    # F0 02 02 00 00 then TLV 05 01 <float32 LE>.
    reply = b"\xf0\x02\x02\x00\x00\x05\x01" + struct.pack("<f", 2.44e-4)
    decoder = polar.PolarDecoder()
    msg = decoder.feed_control(reply)
    assert isinstance(msg, polar.CpResponse) and msg.ok and msg.op_name == "REQUEST_MEASUREMENT_START"
    assert decoder.factor == pytest.approx(float(np.float32(2.44e-4)), rel=0, abs=0)
    assert polar.factor_from_start_response(msg) == decoder.factor
    out = decode_hex("polar", POLAR_COMPRESSED_TYPE0_HEADER + POLAR_COMPRESSED_TYPE0_CONTENT, factor="2.44e-4")
    assert out["samples"][0] == pytest.approx([1905 * 2.44e-4, 27376 * 2.44e-4, -29282 * 2.44e-4], abs=1e-6)


def test_polar_timestamp_vectors() -> None:
    # pmd/model/PmdTimeStampUtilsTest.kt
    assert polar.sample_times_ns(0, 10_000_000_000, 10, 1).tolist() == [i * 1_000_000_000 for i in range(1, 11)]
    assert polar.sample_times_ns(0, 1_000_000_000, 1, 1).tolist() == [1_000_000_000]
    assert polar.sample_times_ns(1_000_000_000, 11_000_000_000, 10, 1).tolist() == [
        i * 1_000_000_000 for i in range(2, 12)
    ]
    assert polar.sample_times_ns(100, 2_000_000_000, 3, 1).tolist() == [
        round(666666733.33),
        round(1333333366.66),
        2_000_000_000,
    ]
    assert polar.sample_times_ns(1_000_000_000, 2_000_000_000, 1, 1).tolist() == [2_000_000_000]
    # No previous frame and no rate: the SDK throws; we report "unknown".
    assert polar.sample_times_ns(0, 100_000, 100, 0) is None


def test_polar_timestamps_fall_back_to_rate_after_a_lost_frame() -> None:
    # Our departure from the SDK: a frame-derived interval off the nominal by > 2x uses 1/fs.
    times = polar.sample_times_ns(1_000_000_000, 1_000_000_000 + 3 * 10 * 19_230_769, 10, 52)
    assert times is not None
    np.testing.assert_allclose(np.diff(times), 1e9 / 52, atol=1)
    backwards = polar.sample_times_ns(5_000_000_000, 4_000_000_000, 4, 50)
    assert backwards is not None and backwards[-1] == 4_000_000_000


def test_polar_cp_response_vectors() -> None:
    # pmd/BlePmdClientControlPointResponseTest.kt
    ok = polar.parse_cp_message(h("F0 01 02 00 00 FF FF FF"))
    assert isinstance(ok, polar.CpResponse)
    assert (ok.op_code, ok.measurement_type, ok.status, ok.more) == (1, 2, 0, False)
    assert ok.op_name == "GET_MEASUREMENT_SETTINGS" and ok.status_name == "SUCCESS"
    assert ok.parameters == b"\xff\xff\xff"
    err = polar.parse_cp_message(h("F0 01 06 07 00"))
    assert isinstance(err, polar.CpResponse)
    assert (err.measurement_type, err.status_name, err.more, err.parameters) == (
        6,
        "ERROR_INVALID_RESOLUTION",
        False,
        b"",
    )
    assert not err.ok


def test_polar_status_names_cover_0_to_14() -> None:
    # pmd/PmdControlPointResponse.kt PmdControlPointResponseCode
    assert [polar.CP_STATUS_NAMES[i] for i in (0, 6, 10, 12, 13, 14)] == [
        "SUCCESS",
        "ERROR_ALREADY_IN_STATE",
        "ERROR_INVALID_MTU",
        "ERROR_INVALID_STATE",
        "ERROR_DEVICE_IN_CHARGER",
        "ERROR_DISK_FULL",
    ]
    assert sorted(polar.CP_STATUS_NAMES) == list(range(15))


def test_polar_multipart_cp_response_is_joined() -> None:
    # pmd/BlePMDClient.kt sendPmdCommand: while `more`, append bytes[5:] of each continuation.
    asm = polar.CpResponseAssembler()
    assert asm.feed(h("F0 01 02 00 01 00 01 34 00 01 01")) is None
    done = asm.feed(h("F0 01 02 00 00 10 00 02 01 08 00"))
    assert isinstance(done, polar.CpResponse) and not done.more
    assert polar.parse_settings(done.parameters) == {"SAMPLE_RATE": [52], "RESOLUTION": [16], "RANGE": [8]}


def test_polar_online_measurement_stopped() -> None:
    # pmd/BlePMDClient.kt processPmdCpCommand: first byte != F0, 01 = ONLINE_MEASUREMENT_STOPPED.
    msg = polar.parse_cp_message(h("01 02"))
    assert isinstance(msg, polar.MeasurementStopped) and msg.names == ("ACC",)
    assert isinstance(polar.PolarDecoder().feed_control(h("01 02 00")), polar.MeasurementStopped)
    with pytest.raises(ProfileError):
        polar.parse_cp_message(h("07 02"))


def test_polar_settings_tlv_vectors() -> None:
    # pmd/PmdSettingTest.kt testPmdSettingsWithRange
    parsed = polar.parse_settings(h("00 01 34 00 01 01 10 00 02 04 F5 00 F4 01 E8 03 D0 07 04 01 03"))
    assert parsed == {"SAMPLE_RATE": [52], "RESOLUTION": [16], "RANGE": [245, 500, 1000, 2000], "CHANNELS": [3]}
    # pmd/PmdSettingTest.kt testPmdSettingWithRangeMilliUnit (values are signed like the SDK's)
    parsed = polar.parse_settings(h("03 02 FF FF FF FF FF 00 00 00 01 01 0E 00"))
    assert parsed == {"RANGE_MILLIUNIT": [-1, 255], "RESOLUTION": [14]}
    assert polar.parse_settings(b"") == {} and polar.parse_settings(b"\x00") == {}
    with pytest.raises(ProfileError):
        polar.parse_settings(h("00 02 34 00"))
    with pytest.raises(ProfileError):
        polar.parse_settings(h("09 01 00"))


def test_polar_command_builders() -> None:
    # bleakheart (fsmeraldi/bleakheart src/bleakheart/core.py) H10 ACC defaults 200 Hz, 16 bit, 2 g.
    assert polar.start_command({"SAMPLE_RATE": 200, "RESOLUTION": 16, "RANGE": 2}) == h(
        "02 02 00 01 C8 00 01 01 10 00 02 01 02 00"
    )
    assert get_profile("polar").start_commands(200, 2) == [h("02 02 00 01 C8 00 01 01 10 00 02 01 02 00")]
    # polar-python examples/polar_verity_sense.py: 52 Hz, 16 bit, 8 g, 3 channels.
    assert get_profile("polar").start_commands(52, 8, channels=3) == [
        h("02 02 00 01 34 00 01 01 10 00 02 01 08 00 04 01 03")
    ]
    # FACTOR is never sent (pmd/PmdSetting.kt serializeSelected); type order regardless of input order.
    assert polar.start_command({5: 15, 2: 8, 0: 52}) == h("02 02 00 01 34 00 02 01 08 00")
    assert polar.get_settings_command() == h("01 02")
    assert polar.stop_command() == h("03 02") and get_profile("polar").stop_commands() == [h("03 02")]
    assert polar.sdk_mode_on_command() == h("02 09") and polar.sdk_mode_off_command() == h("03 09")
    with pytest.raises(ProfileError):
        polar.start_command({"SAMPLE_RATE": 70000})


def test_polar_choose_settings_and_features() -> None:
    available = polar.parse_settings(h("00 04 19 00 32 00 64 00 C8 00 01 01 10 00 02 03 02 00 04 00 08 00"))
    assert available["SAMPLE_RATE"] == [25, 50, 100, 200]
    assert polar.choose_acc_settings(available, 52, 4) == {"SAMPLE_RATE": 100, "RESOLUTION": 16, "RANGE": 4}
    assert polar.choose_acc_settings(available, 500, 16) == {"SAMPLE_RATE": 200, "RESOLUTION": 16, "RANGE": 8}
    # H10 feature read `0f 05 ...` = ECG + ACC (polar-ble-sdk issue #360).
    assert polar.parse_features(h("0F 05 00")) == {"ECG", "ACC"}


def test_polar_rejects_non_acc_and_bad_frames() -> None:
    ecg = "00" + POLAR_COMPRESSED_TYPE1.replace(" ", "")[2:]
    with pytest.raises(ProfileError, match="ECG"):
        decode_hex("polar", ecg)
    with pytest.raises(ProfileError, match="too short"):
        decode_hex("polar", "02 00 00")
    with pytest.raises(ProfileError, match="multiple of 6"):
        decode_hex("polar", POLAR_RAW_TYPE1_HEADER + " F7 FF FF")
    with pytest.raises(ProfileError, match="needs"):
        decode_hex("polar", POLAR_COMPRESSED_TYPE1[:-3])


def pack_bits_lsb_first(values: list[int], width: int) -> bytes:
    acc = 0
    for i, v in enumerate(values):
        acc |= (v & ((1 << width) - 1)) << (i * width)
    return acc.to_bytes((len(values) * width + 7) // 8, "little")


def encode_polar_delta(samples: np.ndarray, blocks: list[int], extra_width: int = 0) -> bytes:
    """Test-side encoder of the PMD delta format: reference sample, then blocks of deltas."""
    out = bytearray(b"".join(int(v).to_bytes(2, "little", signed=True) for v in samples[0]))
    deltas = np.diff(samples, axis=0)
    start = 0
    for count in blocks:
        chunk = deltas[start : start + count]
        start += count
        need = max(1, max((int(abs(v)).bit_length() + 1 for v in chunk.ravel()), default=1))
        width = min(32, need + extra_width)
        out += bytes([width, len(chunk)]) + pack_bits_lsb_first([int(v) for v in chunk.ravel()], width)
    return bytes(out)


@st.composite
def polar_delta_case(draw: st.DrawFn) -> tuple[np.ndarray, list[int], int]:
    n = draw(st.integers(1, 120))
    rows = draw(st.lists(st.tuples(*[st.integers(-32768, 32767)] * 3), min_size=n, max_size=n))
    samples = np.asarray(rows, dtype=np.int64)
    remaining, blocks = n - 1, []
    while remaining:
        take = draw(st.integers(1, min(remaining, 255)))
        blocks.append(take)
        remaining -= take
    return samples, blocks, draw(st.integers(0, 3))


@FUZZ
@given(polar_delta_case(), st.sampled_from([0x80, 0x81]), st.integers(1, 2**63 - 1))
def test_polar_delta_round_trip(case: tuple[np.ndarray, list[int], int], frame_type: int, ts: int) -> None:
    samples, blocks, extra = case
    payload = encode_polar_delta(samples, blocks, extra)
    assert polar.parse_delta_frames(payload).tolist() == samples.tolist()
    frame = bytes([2]) + ts.to_bytes(8, "little") + bytes([frame_type]) + payload
    decoded = polar.PolarDecoder(factor=1.0, sample_rate=52).feed(frame)
    scale = 1.0 if frame_type == 0x80 else 1e-3
    np.testing.assert_allclose(decoded.samples, samples * scale)
    assert decoded.timestamps is not None and decoded.timestamps.shape == (len(samples),)


@FUZZ
@given(
    st.lists(st.tuples(*[st.integers(-(2**23), 2**23 - 1)] * 3), min_size=1, max_size=40), st.sampled_from([0, 1, 2])
)
def test_polar_raw_round_trip(rows: list[tuple[int, int, int]], frame_type: int) -> None:
    size = frame_type + 1
    lim = 1 << (8 * size - 1)
    rows = [tuple(max(-lim, min(lim - 1, v)) for v in r) for r in rows]
    payload = b"".join(int(v).to_bytes(size, "little", signed=True) for r in rows for v in r)
    decoded = polar.PolarDecoder(sample_rate=100).feed(
        b"\x02" + (10**18).to_bytes(8, "little") + bytes([frame_type]) + payload
    )
    np.testing.assert_allclose(decoded.samples * 1000, np.asarray(rows, dtype=np.float64), atol=1e-9)


# =============================================================================================
# WitMotion
# =============================================================================================


def official_process_data(packet: bytes) -> list[float]:
    """WITMOTION/WitBluetooth_BWT901BLE5_0 Python/BWT901BLE5.0_python_sdk/device_model.py
    processData/getSignInt16, applied to bytes[2:], without its rounding."""
    b = packet[2:]

    def s16(v: int) -> int:
        return v - 65536 if v >= 32768 else v

    return [s16(b[2 * i + 1] << 8 | b[2 * i]) / 32768 * 16 for i in range(3)]


def wit_packet(values: list[int], flag: int = 0x61) -> bytes:
    return bytes([0x55, flag]) + struct.pack("<9h", *values)


def test_witmotion_uuids_and_commands() -> None:
    w = get_profile("witmotion")
    # device_model.py: service ffe5, notify ffe4, write ffe9 on the ...805f9a34fb base.
    assert (w.service_uuid, w.data_uuid, w.control_uuid) == (
        "0000ffe5-0000-1000-8000-00805f9a34fb",
        "0000ffe4-0000-1000-8000-00805f9a34fb",
        "0000ffe9-0000-1000-8000-00805f9a34fb",
    )
    # device_model.py unlock()/save()/get_readBytes(); Bwt901bleProcessor.java reads 0x64 (battery).
    assert wit.unlock_command() == h("FF AA 69 88 B5")
    assert wit.save_command() == h("FF AA 00 00 00")
    assert wit.read_register_command(0x64) == h("FF AA 27 64 00")
    assert wit.set_rate_command(50) == h("FF AA 03 08 00")
    assert wit.set_rate_command(10) == h("FF AA 03 06 00")
    assert wit.set_rate_command(30) == h("FF AA 03 08 00")
    assert w.configure_commands(50) == [h("FF AA 69 88 B5"), h("FF AA 03 08 00"), h("FF AA 00 00 00")]
    assert w.start_commands(50, 16)[:2] == [h("FF AA 69 88 B5"), h("FF AA 03 08 00")]
    assert w.stop_commands() == [] and w.command_interval_s == pytest.approx(0.1)


def test_witmotion_resolve_characteristics_by_16bit_part() -> None:
    chars = [
        ("0000ffe9-0000-1000-8000-00805f9b34fb", ["write-without-response", "write"]),
        ("0000FFE4-0000-1000-8000-00805F9B34FB", ["notify"]),
    ]
    assert get_profile("witmotion").resolve_characteristics(chars) == (
        "0000ffe4-0000-1000-8000-00805f9b34fb",
        "0000ffe9-0000-1000-8000-00805f9b34fb",
    )


def wit_one(data: bytes) -> Decoded:
    """One notification through a decoder that holds nothing back (as ``decode_hex`` does; a stream
    holds its first packets until the next header shows the WT901's 20-byte layout)."""
    decoder = wit.WitMotionDecoder()
    decoder.flush()
    return decoder.feed(data)


def test_witmotion_holds_the_first_packet_until_the_layout_shows() -> None:
    first, second = wit_packet([1, 2, 3, 0, 0, 0, 0, 0, 0]), wit_packet([4, 5, 6, 0, 0, 0, 0, 0, 0])
    decoder = wit.WitMotionDecoder()
    assert len(decoder.feed(first)) == 0
    assert len(decoder.feed(second[:2])) == 0
    assert (decoder.feed(second[2:]).samples * 32768 / 16).tolist() == [[1, 2, 3], [4, 5, 6]]


def test_witmotion_sample_packet() -> None:
    # Sample packet quoted in sensor-protocols.md (third-party): 55 61 77 02 A8 FE 92 FE ...
    # -> 0.308, -0.168, -0.179 g; cross-checked against the official processData formula.
    packet = h("55 61 77 02 A8 FE 92 FE") + bytes(12)
    decoded = wit_one(packet)
    assert decoded.timestamps is None
    np.testing.assert_allclose(decoded.samples[0], official_process_data(packet))
    np.testing.assert_allclose(np.round(decoded.samples[0], 3), [0.308, -0.168, -0.179])


def test_witmotion_gyro_angles_exposed() -> None:
    packet = wit_packet([0, 0, 2048, 16384, -16384, 0, 16384, 0, -32768])
    decoded = wit_one(packet)
    np.testing.assert_allclose(decoded.samples, [[0, 0, 1.0]])
    np.testing.assert_allclose(decoded.extras["gyro_dps"], [[1000, -1000, 0]])
    np.testing.assert_allclose(decoded.extras["angle_deg"], [[90, 0, -180]])


def test_witmotion_register_replies() -> None:
    # WIT datasheet example (sensor-protocols.md): 55 71 3A 00 68 01 69 00 7A 00 ... -> 360, 105, 122.
    decoder = wit.WitMotionDecoder()
    decoded = decoder.feed(h("55 71 3A 00 68 01 69 00 7A 00") + bytes(10))
    assert len(decoded) == 0
    assert [decoder.registers[r] for r in (0x3A, 0x3B, 0x3C)] == [360, 105, 122]
    # Battery register 0x64 in 1/100 V (Bwt901bleProcessor.java).
    decoded = decoder.feed(h("55 71 64 00 9C 01") + bytes(14))
    assert decoded.extras["battery_v"] == pytest.approx(4.12)
    assert decoded.extras["battery_percent"] == 100.0
    assert decoded.extras["registers"]["0x64"] == 412
    out = decode_hex("witmotion", "55 71 64 00 72 01" + " 00" * 14)
    assert out["samples"] == [] and out["info"]["battery_v"] == pytest.approx(3.7)
    with pytest.raises(ProfileError, match="no complete WitMotion packet"):
        decode_hex("witmotion", "55 61 00 00")


@st.composite
def wit_stream(draw: st.DrawFn) -> tuple[list[tuple[int, int, int]], bytes, list[int]]:
    triples = draw(st.lists(st.tuples(*[st.integers(-32768, 32767)] * 3), min_size=1, max_size=25))
    garbage = st.binary(max_size=30).map(lambda b: b.replace(b"\x55", b"\x54"))
    stream = bytearray(draw(garbage))
    for t in triples:
        rest = draw(st.lists(st.integers(-32768, 32767), min_size=6, max_size=6))
        stream += wit_packet([*t, *rest])
        if draw(st.booleans()):
            stream += wit_packet(draw(st.lists(st.integers(-32768, 32767), min_size=9, max_size=9)), 0x71)
        stream += draw(garbage)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(stream)), max_size=20))))
    return triples, bytes(stream), cuts


@FUZZ
@given(wit_stream())
def test_witmotion_resync_recovers_every_packet_in_order(case: tuple[list, bytes, list[int]]) -> None:
    triples, stream, cuts = case
    decoder = wit.WitMotionDecoder()
    bounds = [0, *cuts, len(stream)]
    parts = [decoder.feed(stream[a:b]) for a, b in itertools.pairwise(bounds)]
    parts.append(decoder.flush())  # packets held back until the stream showed its 20-byte layout
    got = np.concatenate([p.samples for p in parts])
    np.testing.assert_allclose(got, np.asarray(triples, dtype=np.float64) * 16 / 32768)
    assert decoder.pending_bytes < 20


# =============================================================================================
# MetaWear
# =============================================================================================


def test_metawear_notifications() -> None:
    # mbientlab/MetaWear-SDK-Cpp test/test_accelerometer_bmi160.py TestBmi160AccelerationData:
    # 03 04 16 c4 94 a2 2a d0 at 4 g -> (-1.872, -2.919, -1.495)
    single = mw.MetaWearDecoder(range_g=4).feed(h("03 04 16 c4 94 a2 2a d0"))
    assert single.timestamps is None
    np.testing.assert_allclose(single.samples, [[-1.872, -2.919, -1.495]], atol=5e-4)
    # test_accelerometer_bmi160.py TestBmi160HighFreqAccData: packed 03 1c ... at 8 g
    expected = [[-4.539, 0.833, -0.131], [-2.995, 0.894, 0.146], [-0.029, 0.352, 0.065]]
    packed = "62 b7 53 0d e9 fd 16 d0 4d 0e 57 02 8a ff a1 05 0a 01"
    np.testing.assert_allclose(mw.MetaWearDecoder(range_g=8).feed(h("03 1c " + packed)).samples, expected, atol=5e-4)
    # test_accelerometer_bmi270.py TestBmi270HighFreqAccData: the same bytes on register 0x05
    out = decode_hex("metawear", "03 05 " + packed, range_g=8)
    np.testing.assert_allclose(out["samples"], expected, atol=5e-4)
    assert "timestamps" not in out


def test_metawear_config_commands() -> None:
    # test_accelerometer_bmi160.py test_set_odr (default range 2 g = 0x03)
    bmi160 = [0x81, 0x82, 0x83, 0x84, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C]
    for hz, conf in zip(mw.ODR_HZ, bmi160, strict=True):
        assert mw.config_command("bmi160", hz, 2) == bytes([0x03, 0x03, conf, 0x03])
    # test_accelerometer_bmi270.py test_set_odr (default range 8 g = 0x02)
    bmi270 = [0x21, 0x22, 0x23, 0x24, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC]
    for hz, conf in zip(mw.ODR_HZ, bmi270, strict=True):
        assert mw.config_command("bmi270", hz, 8) == bytes([0x03, 0x03, conf, 0x02])
    assert mw.config_command("bmi160", 100, 16) == h("03 03 28 0c")  # test_set_range
    assert mw.config_command("bmi160", 200, 8) == h("03 03 29 08")  # test_set_odr_and_range
    assert mw.config_command("bmi270", 100, 16) == h("03 03 A8 03")
    assert mw.config_command("bmi270", 200, 8) == h("03 03 A9 02")
    assert mw.connection_parameters_command(7.5, 7.5, 0, 6000) == h("11 09 06 00 06 00 00 00 58 02")


def test_metawear_start_stop_sequences() -> None:
    p = mw.MetaWearProfile()
    # test_accelerometer_bmi160.py: subscribe 03 04 01, enable 03 02 01 00; accelerometer_bosch.cpp start/stop.
    assert p.start_commands(50, 4) == [
        h("11 09 06 00 06 00 00 00 58 02"),
        h("03 03 27 05"),
        h("03 04 01"),
        h("03 02 01 00"),
        h("03 01 01"),
    ]
    assert p.start_commands(200, 8, chip="bmi270")[1:] == [
        h("03 03 A9 02"),
        h("03 05 01"),
        h("03 02 01 00"),
        h("03 01 01"),
    ]
    assert p.start_commands(200, 8)[2] == h("03 1c 01")
    assert p.start_commands(6.25, 2, chip="bmi270")[-1] == h("03 01 02")  # BMI270 below 12.5 Hz
    assert p.stop_commands(packed=False) == [h("03 01 00"), h("03 02 00 01"), h("03 04 00")]
    assert p.stop_commands()[-1] == h("03 1c 00")


def test_metawear_module_info_and_config_reply_set_the_range() -> None:
    decoder = mw.MetaWearDecoder(range_g=2)
    assert decoder.feed(h("03 80 04 01")).extras["chip"] == "bmi270"
    assert decoder.feed(h("03 83 a8 01")).extras["range_g"] == 4
    np.testing.assert_allclose(decoder.feed(h("03 04 00 20 00 00 00 00")).samples, [[1.0, 0, 0]])
    assert len(decoder.feed(h("11 09 06 00"))) == 0  # other modules: no samples
    with pytest.raises(ProfileError):
        decoder.feed(h("03 04 00 20 00"))
    with pytest.raises(ProfileError):
        mw.MetaWearDecoder(range_g=3)


def metawear_board(chip_id: int | None) -> Callable[[bytes], list[bytes]]:
    """A board answering the module-info read with implementation ``chip_id`` (None: silent)."""

    def answer(data: bytes) -> list[bytes]:
        if data == mw.module_info_command() and chip_id is not None:
            return [bytes([3, 0x80, chip_id, 1])]
        return []

    return answer


@pytest.mark.parametrize(
    "chip_id,chip,configure",
    [
        (1, "bmi160", mw.config_command("bmi160", 50, 8)),
        (4, "bmi270", mw.config_command("bmi270", 50, 8)),
        (0, "mma8452q", mw.mma8452q_config_command(50, 8)),
        (None, "bmi160", mw.config_command("bmi160", 50, 8)),  # no answer: the profile's chip, with a warning
    ],
)
def test_metawear_start_configures_the_chip_the_board_names(
    chip_id: int | None, chip: str, configure: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    profile = mw.MetaWearProfile()
    link = ScriptedLink(profile, 50, 8, metawear_board(chip_id))
    asyncio.run(profile.start(link))
    assert link.writes[0] == mw.module_info_command() and configure in link.writes
    assert link.writes[-1] == mw.battery_command()  # then ask for the battery
    assert link.info["chip"] == chip and link.decoder.chip == chip
    assert link.stream == {"rate": 50.0, "range_g": 8.0}
    assert ("no module-info reply" in caplog.text) is (chip_id is None)


@pytest.mark.parametrize("chip_id", [3, 0xFF])
def test_metawear_start_refuses_a_bma255_and_a_board_without_accelerometer(chip_id: int) -> None:
    profile = mw.MetaWearProfile()
    answer = metawear_board(chip_id) if chip_id != 0xFF else (lambda d: [bytes([3, 0x80])])
    link = ScriptedLink(profile, 50, 8, answer)
    with pytest.raises(RefusedDevice):
        asyncio.run(profile.start(link))
    assert not any(w[:2] == bytes([3, 3]) for w in link.writes)  # nothing configured


def test_metawear_battery_state_reply() -> None:
    # MetaWear-SDK-Cpp test/test_settings.py TestSettingsRevision3: 11 8c 63 34 10 -> 99 %, 4148 mV
    decoded = mw.MetaWearDecoder().feed(h("11 8c 63 34 10"))
    assert len(decoded) == 0 and decoded.extras["battery_percent"] == 99 and decoded.extras["battery_mv"] == 4148
    assert mw.battery_command() == h("11 cc")
    assert get_profile("metawear").battery_commands() == [h("11 cc")]


# =============================================================================================
# NUS
# =============================================================================================


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_nus_documented_example() -> None:
    # The example frame of NUS_FRAME.md.
    frame = h("4C 01 01 00 E8 03 00 00 08 02 04 02 00 00 00 00 00 20 52 00 D7 FF 00 20")
    assert nus.encode_frame(1, 1000, 52, 4, [[0, 0, 8192], [82, -41, 8192]]) == frame
    decoded = nus.NusDecoder(clock=FakeClock(1_700_000_000.0)).feed(frame)
    np.testing.assert_allclose(decoded.samples, [[0, 0, 1], [82 / 8192, -41 / 8192, 1]])
    assert decoded.timestamps is not None
    assert decoded.timestamps[-1] == pytest.approx(1_700_000_000.0)
    assert decoded.timestamps[1] - decoded.timestamps[0] == pytest.approx(1 / 52, abs=1e-6)
    assert nus.start_command(52, 4) == h("4C 01 01 08 02 04") and nus.stop_command() == h("4C 01 02")


def test_nus_doc_matches_module() -> None:
    from pathlib import Path

    import collector.profiles.nus as module

    doc = (Path(module.__file__).parent / "NUS_FRAME.md").read_text()
    for field in ("`magic`", "`version`", "`seq`", "`t_ms`", "`rate_dhz`", "`range_g`", "`count`"):
        assert field in doc and field in (module.__doc__ or "")


def test_nus_picks_characteristics_by_property() -> None:
    n = get_profile("nus")
    zephyr = [(nus.NUS_CHAR_A, ["write", "write-without-response"]), (nus.NUS_CHAR_B, ["notify"])]
    swapped = [(nus.NUS_CHAR_A.upper(), ["notify"]), (nus.NUS_CHAR_B, ["write"])]
    assert n.resolve_characteristics(zephyr) == (nus.NUS_CHAR_B, nus.NUS_CHAR_A)
    assert n.resolve_characteristics(swapped) == (nus.NUS_CHAR_A, nus.NUS_CHAR_B)
    with pytest.raises(ProfileError):
        n.resolve_characteristics([(nus.NUS_CHAR_A, ["write"])])


@st.composite
def nus_frames(draw: st.DrawFn) -> list[tuple[int, int, int, np.ndarray]]:
    rate_dhz = draw(st.sampled_from([125, 250, 260, 500, 520, 1000, 1040, 2000]))
    range_g = draw(st.sampled_from([2, 4, 8, 16]))
    t = draw(st.integers(0, 2**32 - 1))
    seq = draw(st.integers(0, 0xFFFF))
    frames = []
    for _ in range(draw(st.integers(1, 12))):
        n = draw(st.integers(1, 38))
        rows = draw(st.lists(st.tuples(*[st.integers(-32768, 32767)] * 3), min_size=n, max_size=n))
        frames.append((seq, t, rate_dhz, range_g, np.asarray(rows, dtype=np.int64)))
        seq = (seq + 1) & 0xFFFF
        t = (t + round(n * 10000 / rate_dhz)) & 0xFFFFFFFF
    return frames


@FUZZ
@given(nus_frames(), st.floats(0, 0.05))
def test_nus_round_trip(frames: list, latency: float) -> None:
    clock = FakeClock(1_700_000_000.0)
    decoder = nus.NusDecoder(clock=clock)
    all_ts = []
    for i, (seq, t, rate_dhz, range_g, raw) in enumerate(frames):
        data = nus.encode_frame(seq, t, rate_dhz / 10, range_g, raw)
        assert len(data) == 12 + 6 * len(raw)
        clock.t = 1_700_000_000.0 + ((t - frames[0][1]) % 2**32) / 1000 + (len(raw) - 1) * 10 / rate_dhz
        clock.t += latency if i % 2 else 0.0
        decoded = decoder.feed(data)
        np.testing.assert_allclose(decoded.samples, raw * range_g / 32768)
        assert decoded.extras["seq"] == seq and "lost_frames" not in decoded.extras
        all_ts.append(decoded.timestamps)
    ts = np.concatenate(all_ts)
    assert np.all(np.diff(ts) > 0)  # device spacing survives wrap-around and arrival jitter


def test_nus_loss_duplicates_and_reboot() -> None:
    clock = FakeClock(1000.0)
    decoder = nus.NusDecoder(clock=clock)
    raw = [[0, 0, 16384]]
    decoder.feed(nus.encode_frame(10, 5000, 50, 2, raw))
    clock.t += 0.1
    lost = decoder.feed(nus.encode_frame(14, 5100, 50, 2, raw))
    assert lost.extras["lost_frames"] == 3 and decoder.lost_frames == 3
    dup = decoder.feed(nus.encode_frame(14, 5100, 50, 2, raw))
    assert dup.extras["duplicate"] and len(dup) == 0
    clock.t += 60
    reboot = decoder.feed(nus.encode_frame(0, 20, 50, 2, raw))  # device clock went back
    assert reboot.timestamps is not None and reboot.timestamps[0] == pytest.approx(clock.t)
    assert decoder.clock.reanchors == 1


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("4D 01 01 00 E8 03 00 00 08 02 04 01 00 00 00 00 00 20", "magic"),
        ("4C 02 01 00 E8 03 00 00 08 02 04 01 00 00 00 00 00 20", "version"),
        ("4C 01 01 00 E8 03 00 00 08 02 04 02 00 00 00 00 00 20", "must be 24 bytes"),
        ("4C 01 01 00 E8 03 00 00 00 00 04 01 00 00 00 00 00 20", "rate_dhz=0"),
        ("4C 01 01 00 E8 03 00 00 08 02 04 00", "count 0"),
        ("4C 01", "too short"),
    ],
)
def test_nus_malformed(frame: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        decode_hex("nus", frame)


# =============================================================================================
# SIG services
# =============================================================================================


def test_sig_battery_and_device_information() -> None:
    assert sig.BATTERY_SERVICE == "0000180f-0000-1000-8000-00805f9b34fb"
    assert sig.BATTERY_LEVEL == "00002a19-0000-1000-8000-00805f9b34fb"
    assert sig.parse_battery_level(b"\x57") == 87
    with pytest.raises(ProfileError):
        sig.parse_battery_level(b"")
    with pytest.raises(ProfileError):
        sig.parse_battery_level(b"\xc8")
    info = sig.parse_device_information(
        {
            "2a29": b"Polar Electro Oy",
            "00002A24-0000-1000-8000-00805F9B34FB": b"Polar H10\x00\x00",
            sig.SERIAL_NUMBER: b"C1234567 ",
            sig.FIRMWARE_REVISION: b"5.0.0",
            sig.HARDWARE_REVISION: b"39044024.10",
            "2a19": b"\x57",
        }
    )
    assert info == {
        "manufacturer": "Polar Electro Oy",
        "model": "Polar H10",
        "serial": "C1234567",
        "firmware": "5.0.0",
        "hardware": "39044024.10",
    }


# =============================================================================================
# Fuzz: malformed input raises ProfileError and nothing else
# =============================================================================================


def check_decoded(decoded: Decoded) -> None:
    assert isinstance(decoded, Decoded)
    assert decoded.samples.ndim == 2 and decoded.samples.shape[1] == 3
    assert decoded.samples.dtype == np.float64
    if decoded.timestamps is not None:
        assert decoded.timestamps.shape == (decoded.samples.shape[0],)


@FUZZ
@given(st.sampled_from(["polar", "witmotion", "metawear", "nus"]), st.lists(st.binary(max_size=80), max_size=4))
def test_fuzz_decoders_raise_only_profile_error(name: str, chunks: list[bytes]) -> None:
    decoder = get_profile(name).new_decoder()
    for chunk in chunks:
        try:
            check_decoded(decoder.feed(chunk))
        except ProfileError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(
    st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x82]),
    st.binary(max_size=120),
    st.integers(0, 2**64 - 1),
    st.one_of(st.none(), st.floats(1, 500)),
)
def test_fuzz_polar_structured(frame_type: int, payload: bytes, ts: int, rate: float | None) -> None:
    decoder = polar.PolarDecoder(factor=0.5, sample_rate=rate)
    frame = b"\x02" + ts.to_bytes(8, "little") + bytes([frame_type]) + payload
    for _ in range(2):
        with contextlib.suppress(ProfileError):
            check_decoded(decoder.feed(frame))


@FUZZ
@given(st.binary(max_size=60))
def test_fuzz_polar_control_parsers(data: bytes) -> None:
    for parse in (
        polar.parse_cp_message,
        polar.parse_settings,
        polar.parse_features,
        polar.PolarDecoder().feed_control,
    ):
        with contextlib.suppress(ProfileError):
            parse(data)
    with contextlib.suppress(ProfileError):
        mw.parse_module_info(data)


@FUZZ
@given(st.sampled_from(["polar", "witmotion", "metawear", "nus", "bogus"]), st.text(max_size=80))
def test_fuzz_decode_hex(name: str, text: str) -> None:
    try:
        out = decode_hex(name, text)
    except ProfileError as exc:
        assert "\n" not in str(exc)
    else:
        assert out["profile"] == name and isinstance(out["samples"], list)


@FUZZ
@given(st.sampled_from(["polar", "witmotion", "metawear", "nus"]), st.binary(min_size=1, max_size=60))
def test_fuzz_decode_hex_on_hex_of_random_bytes(name: str, data: bytes) -> None:
    try:
        out = decode_hex(name, data.hex(" "))
    except ProfileError:
        return
    assert all(len(row) == 3 for row in out["samples"])
    if "timestamps" in out:
        assert len(out["timestamps"]) == len(out["samples"])
