"""The device profiles against the sensor vendors' own test vectors, read from ../shared/peer-vectors.

The vectors (``polar.json``, ``metawear.json``, ``witmotion.json``, ``commands.json``) were collected
by someone other than legwatch's authors from Polar's SDK unit tests and real offline-recording
frames, MbientLab's SDK tests (exact float bits) and WitMotion's manuals; ``NOTES.md`` beside them
says where each comes from and how far to trust it. They are read at test time and never copied
into the repository. Every vector goes through the decoder and through ``legwatch decode`` (the real
command-line entry point): samples exactly (Polar: ``expected_g`` to 1e-12 and the SDK's truncated
mG integers; MetaWear: the SDK's float32 values bit for bit), Polar sample times to the nanosecond,
and every vector marked ``expect_error`` refused with a one-line error and exit status 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.profiles import NotAnAccelerometer, ProfileError, get_profile, polar, witmotion
from collector.profiles import metawear as mw
from collector.profiles.decode import parse_hex
from legwatch.cli import main

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "peer-vectors"
if not VECTORS.is_dir():  # pragma: no cover - the shared folder is beside the checkout
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"peer vectors not found at {VECTORS}")
    pytest.skip(f"peer vectors not found at {VECTORS}", allow_module_level=True)


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


POLAR = load("polar.json")
METAWEAR = load("metawear.json")
WITMOTION = load("witmotion.json")
COMMANDS = load("commands.json")

POLAR_FRAMES = [(i, v) for i, v in enumerate(POLAR) if "measurement_type" in v["settings"]]
POLAR_PAYLOADS = [(i, v) for i, v in enumerate(POLAR) if "measurement_type" not in v["settings"]]


def cli_decode(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """``legwatch decode ARGS`` through the real entry point: (exit status, JSON output, stderr)."""
    capsys.readouterr()
    code = main(["decode", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_the_vector_files_hold_what_notes_md_says() -> None:
    """Guard: every vector below is exercised (18 Polar, 7 MetaWear, 3 WitMotion)."""
    assert len(POLAR) == 18 and len(POLAR_FRAMES) == 12 and len(POLAR_PAYLOADS) == 6
    assert len(METAWEAR) == 7 and len(WITMOTION) == 3
    assert sum(1 for v in POLAR if v.get("expect_error")) == 2


# -- Polar --------------------------------------------------------------------------------------


def polar_args(v: dict[str, Any]) -> list[str]:
    s = v["settings"]
    args = [f"--factor={s.get('factor_float32', 1.0)!r}", f"--previous-ns={s.get('previous_frame_timestamp_ns', 0)}"]
    if s.get("sample_rate_hz"):
        args.append(f"--rate={s['sample_rate_hz']}")
    return args


def polar_decoder(v: dict[str, Any]) -> polar.PolarDecoder:
    s = v["settings"]
    return polar.PolarDecoder(
        factor=s.get("factor_float32", 1.0),
        sample_rate=s.get("sample_rate_hz") or None,
        previous_ns=s.get("previous_frame_timestamp_ns", 0),
    )


def sdk_mg(v: dict[str, Any], samples_g: np.ndarray) -> np.ndarray:
    """What Polar's AccData.kt returns, from legwatch's g: float32 arithmetic, truncated to int."""
    s = v["settings"]
    factor = np.float32(s["factor_float32"])
    if not s.get("compressed"):
        return np.rint(samples_g * 1000).astype(np.int64)  # raw frames are mG already
    raw = np.rint(samples_g / factor if s["frame_type"] == 0 else samples_g * 1000 / factor)
    if s["frame_type"] == 0:
        return np.trunc(raw.astype(np.float32) * np.float32(factor * np.float32(1000))).astype(np.int64)
    return raw.astype(np.int64) if factor == 1 else np.trunc(raw.astype(np.float32) * factor).astype(np.int64)


@pytest.mark.parametrize("i,v", POLAR_FRAMES, ids=[f"polar[{i}]" for i, _ in POLAR_FRAMES])
def test_polar_frames_decode_exactly(i: int, v: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    data = parse_hex(v["hex"])
    if v.get("expect_error"):
        with pytest.raises(ProfileError):
            polar_decoder(v).feed(data)
        code, _, err = cli_decode(capsys, "polar", v["hex"], *polar_args(v))
        assert code == 2 and err.count("\n") == 1 and err.startswith("legwatch decode: error: "), err
        return
    decoded = polar_decoder(v).feed(data)
    np.testing.assert_allclose(decoded.samples, v["expected_g"], rtol=0, atol=1e-12)
    assert sdk_mg(v, decoded.samples).tolist() == v["expected"]  # the SDK's own integers
    assert decoded.extras["sample_times_ns"].tolist() == v["expected_timestamps_ns_since_2000"]

    code, out, err = cli_decode(capsys, "polar", v["hex"], *polar_args(v))
    assert code == 0, err
    assert out is not None
    np.testing.assert_allclose(out["samples"], v["expected_g"], rtol=0, atol=1e-12)
    assert out["info"]["sample_times_ns"] == v["expected_timestamps_ns_since_2000"]
    unix = np.asarray(v["expected_timestamps_ns_since_2000"], dtype=np.float64) / 1e9 + polar.POLAR_EPOCH_OFFSET_S
    np.testing.assert_allclose(out["timestamps"], unix, rtol=0, atol=1e-6)


def test_polar_real_offline_recording_frames_chain_in_one_decoder() -> None:
    """The six frames a real Polar sensor recorded (OfflineRecordingDataTest), fed in order to one
    decoder as the collector does: every sample and every time, with no bytes left over."""
    frames = [v for _, v in POLAR_FRAMES if "offline_packet_index" in v["settings"]]
    assert [v["settings"]["offline_packet_index"] for v in frames] == [1, 2, 3, 4, 5, 6]
    decoder = polar.PolarDecoder(sample_rate=52)
    for v in frames:
        decoded = decoder.feed(parse_hex(v["hex"]))
        np.testing.assert_allclose(decoded.samples, v["expected_g"], rtol=0, atol=1e-12)
        assert decoded.extras["sample_times_ns"].tolist() == v["expected_timestamps_ns_since_2000"]
    # delivered twice (bleak's doubled callback after a reconnect): the repeat decodes to nothing
    again = decoder.feed(parse_hex(frames[-1]["hex"]))
    assert len(again) == 0 and again.extras["duplicate"]


@pytest.mark.parametrize("i,v", POLAR_PAYLOADS, ids=[f"polar[{i}]" for i, _ in POLAR_PAYLOADS])
def test_polar_delta_payloads_decode_exactly(i: int, v: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    s = v["settings"]
    payload = parse_hex(v["hex"])
    if v.get("expect_error"):
        with pytest.raises(ProfileError):
            polar.parse_delta_frames(payload, channels=s["channels"], resolution=s["resolution_bits"])
    else:
        got = polar.parse_delta_frames(payload, channels=s["channels"], resolution=s["resolution_bits"])
        assert got.tolist() == v["expected"]
    if s["channels"] != 3:
        return  # a 4-channel magnetometer payload cannot be an ACC frame
    # as the payload of an ACC frame (02 <ts> 81): compressed type 1, factor 1, mG
    frame = "02 " + (5_000_000_000).to_bytes(8, "little").hex(" ") + " 81 " + v["hex"]
    code, out, err = cli_decode(capsys, "polar", frame)
    if v.get("expect_error"):
        assert code == 2 and err.count("\n") == 1, err
        return
    assert code == 0 and out is not None, err
    np.testing.assert_allclose(out["samples"], np.asarray(v["expected"]) / 1000.0, rtol=0, atol=1e-12)


def test_polar_verity_sense_8bit_frames_are_g() -> None:
    """Polar's online_measurement.pdf Table 7: raw type 0 is "G for Verity Sense, mG for other
    devices" (times the FACTOR); the SDK's AccData returns mG for everyone. An int8 in mG cannot hold
    gravity, so a Verity Sense lying still (0, 0, 1 counts) reads 1 g, an H10 the SDK's mG."""
    frame = bytes([2]) + (2_000_000_000).to_bytes(8, "little") + bytes([0x00]) + bytes([0, 0, 1, 0xFF, 0, 1])
    assert polar.PolarDecoder(model="Polar Sense 1C1021AB").feed(frame).samples.tolist() == [[0, 0, 1], [-1, 0, 1]]
    assert polar.PolarDecoder(model="Polar H10 A1B2C3D4").feed(frame).samples.tolist() == [
        [0, 0, 0.001],
        [-0.001, 0, 0.001],
    ]
    half = polar.PolarDecoder(model="Polar Sense", factor=0.5).feed(frame).samples
    assert half.tolist() == [[0, 0, 0.5], [-0.5, 0, 0.5]]
    assert polar.is_verity_sense("Polar Verity Sense") and not polar.is_verity_sense("Polar OH1 55667788")


# -- MetaWear -----------------------------------------------------------------------------------


def chips_of(v: dict[str, Any]) -> list[str]:
    s = v["settings"]
    return s.get("applies_to_chips") or [s["chip"].split()[0].lower()]


METAWEAR_CASES = [(i, chip, v) for i, v in enumerate(METAWEAR) for chip in chips_of(v)]


@pytest.mark.parametrize("i,chip,v", METAWEAR_CASES, ids=[f"metawear[{i}]-{chip}" for i, chip, _ in METAWEAR_CASES])
def test_metawear_vectors_decode_bit_exactly(
    i: int, chip: str, v: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    range_g = v["settings"].get("range_g")
    expected = np.asarray(v["expected"], dtype=np.float32)  # the SDK's float32 values
    decoded = mw.MetaWearDecoder(range_g=range_g, chip=chip).feed(parse_hex(v["hex"]))
    assert decoded.samples.astype(np.float32).tobytes() == expected.tobytes()
    args = ["metawear", v["hex"], "--chip", chip]
    if range_g is not None:
        args += ["--range", str(range_g)]
    code, out, err = cli_decode(capsys, *args)
    assert code == 0 and out is not None, err
    assert np.asarray(out["samples"]).astype(np.float32).tobytes() == expected.tobytes()
    if chip == mw.BMI270 and range_g == 8:  # the BMI270's power-on range is 8 g (BMI270_DEFAULT_CONFIG)
        code, out, err = cli_decode(capsys, "metawear", v["hex"], "--chip", chip)
        assert code == 0 and out is not None
        assert np.asarray(out["samples"]).astype(np.float32).tobytes() == expected.tobytes()


def test_metawear_chip_is_learnt_from_the_module_info_reply() -> None:
    """A decoder that starts not knowing the board reads the MMA8452Q vectors right once the board
    answered ``03 80 00 ...`` (implementation 0), and a BMI270's at its 8 g power-on range."""
    mma = [v for v in METAWEAR if v["settings"]["chip"].startswith("MMA8452Q")]
    decoder = mw.MetaWearDecoder()
    assert decoder.feed(bytes([3, 0x80, 0, 1])).extras["chip"] == mw.MMA8452Q
    for v in mma:
        got = decoder.feed(parse_hex(v["hex"])).samples.astype(np.float32)
        assert got.tobytes() == np.asarray(v["expected"], dtype=np.float32).tobytes()
    bmi270 = mw.MetaWearDecoder()
    bmi270.feed(bytes([3, 0x80, 4, 0]))
    assert bmi270.range_g == 8


def test_metawear_command_vectors() -> None:
    for c in (c for c in COMMANDS if c["family"] == "metawear" and "odr_hz" in c and "chip" in c):
        assert mw.config_command(c["chip"], c["odr_hz"], c["range_g"]) == parse_hex(c["expected_command_hex"]), c
    mma = next(c for c in COMMANDS if c.get("chip") == "mma8452q")
    odr_50_2g, range_8g_at_100, enable, disable = (parse_hex(h) for h in mma["expected_command_hex"])
    assert mw.mma8452q_config_command(35.25, 2) == odr_50_2g  # configure().odr(35.25f) -> 50 Hz
    assert mw.mma8452q_config_command(100, 7.3333) == range_8g_at_100  # configure().range(7.3333f) -> 8 g
    profile = mw.MetaWearProfile()
    assert enable in profile.start_commands(50, 2, chip="mma8452q")
    assert disable in profile.stop_commands(chip="mma8452q")
    assert parse_hex("03 12 01") in profile.start_commands(200, 2, chip="mma8452q")  # packed register 0x12


# -- WitMotion ----------------------------------------------------------------------------------


def test_witmotion_register_reply_and_angle_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    reply, angles, _ = WITMOTION
    code, out, err = cli_decode(capsys, "witmotion", reply["hex"])
    assert code == 0 and out is not None, err
    assert out["samples"] == []
    assert {int(k, 16): v for k, v in out["info"]["registers"].items()} == {
        int(k, 16): v for k, v in reply["expected_registers"].items()
    }
    code, out, err = cli_decode(capsys, "witmotion", angles["hex"])
    assert code == 0 and out is not None, err
    assert out["samples"] == angles["expected"]
    np.testing.assert_allclose(out["info"]["angle_deg"], angles["expected_angle_deg"], rtol=0, atol=1e-6)
    decoder = witmotion.WitMotionDecoder()
    assert len(decoder.feed(parse_hex(angles["hex"]))) == 0  # held until the stream shows its layout
    exact = decoder.flush().extras["angle_deg"]
    assert exact.tolist() == angles["expected_angle_deg"]


def test_witmotion_wtvb01_vibration_sensor_is_refused_not_decoded(capsys: pytest.CaptureFixture[str]) -> None:
    (v,) = [w for w in WITMOTION if w.get("expect_error")]
    packet = parse_hex(v["hex"])
    # legwatch decode: exit 2, one line, nothing on stdout
    done = subprocess.run(
        [sys.executable, "-m", "legwatch", "decode", "witmotion", v["hex"]], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "not an accelerometer" in done.stderr
    # a stream of them: refused after a few packets, never an acceleration sample
    decoder = witmotion.WitMotionDecoder()
    samples = 0
    with pytest.raises(NotAnAccelerometer):
        for _ in range(witmotion.VIBRATION_VOTES + 1):
            samples += len(decoder.feed(packet))
    assert samples < witmotion.VIBRATION_VOTES
    # the same stream cut into 20-byte notifications (the default ATT payload)
    decoder = witmotion.WitMotionDecoder()
    stream = packet * (witmotion.VIBRATION_VOTES + 2)
    with pytest.raises(NotAnAccelerometer):
        for k in range(0, len(stream), 20):
            decoder.feed(stream[k : k + 20])
    # a scan does not offer it, although it has the WT901's UUIDs and a name starting "WT"
    profile = get_profile("witmotion")
    uuids = [v["settings"]["service"]]
    assert not profile.matches("WTVB01-BT50", uuids) and profile.matches("WT901BLE68", uuids)
