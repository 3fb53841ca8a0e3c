"""The v1 wire payload: binary and JSON forms, round trips and refusal of bad input."""

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legwatch.contracts import payload
from legwatch.contracts.payload import PayloadError, decode, encode


def even_batch(n=52, rate=52.0, t0=1767652200.25):
    t = payload.grid(t0, n, rate)
    rng = np.random.default_rng(n)
    xyz = rng.normal(0, 0.3, (n, 3)) + [0, 0, 1]
    return t, xyz


def test_even_round_trip_and_size():
    t, xyz = even_batch()
    data = encode("shin-left", 7, t, xyz, 52.0)
    assert len(data) == 25 + len("shin-left") + 6 * 52  # 6 bytes per sample
    b = decode(data)
    assert (b.sensor, b.seq, b.rate) == ("shin-left", 7, 52.0)
    assert np.allclose(b.t, t, atol=2e-6)
    assert np.allclose(b.xyz, xyz, atol=payload.DEFAULT_SCALE / 2 + 1e-12)


def test_header_layout_is_as_documented():
    t, xyz = even_batch(3)
    data = encode("s", 0x01020304, t, xyz, 52.0)
    version, flags, n, seq, t0_us, rate, scale, slen = struct.unpack_from("<BBHIqffB", data)
    assert (version, flags, n, seq, slen) == (1, 0, 3, 0x01020304, 1)
    assert t0_us == round(t[0] * 1e6)
    assert rate == 52.0 and scale == pytest.approx(1 / 4096)
    assert data[25:26] == b"s"
    assert struct.unpack_from("<3h", data, 26) == tuple(np.round(xyz[0] * 4096).astype(int))


def test_uneven_timestamps_carry_offsets():
    t, xyz = even_batch(50)
    t = 1767652200.25 + np.arange(50) / 52.0 + np.random.default_rng(1).uniform(-0.004, 0.004, 50)
    t = np.round(t * 1e6) / 1e6
    data = encode("s", 1, t, xyz, 52.0)
    assert data[1] & payload.FLAG_OFFSETS
    assert len(data) == 25 + 1 + 8 * 50
    assert np.array_equal(decode(data).t, t)  # exact to the microsecond


def test_json_form():
    body = {"v": 1, "sensor": "diy", "seq": 3, "t0": 100.0, "rate": 50, "samples": [[0, 0, 1], [0.1, 0, 1]]}
    b = decode(json.dumps(body).encode())
    assert b.sensor == "diy" and b.seq == 3 and np.allclose(b.t, [100.0, 100.02])
    body2 = {"sensor": "diy", "seq": 4, "t": [1.0, 1.5], "samples": [[0, 0, 1], [0, 0, 1]]}
    assert np.allclose(decode(json.dumps(body2).encode()).t, [1.0, 1.5])
    b3 = decode(payload.encode_json(b))
    assert np.allclose(b3.xyz, b.xyz)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "truncated"),
        (b"\x01\x00", "truncated"),
        (b"\x02" + bytes(40), "version"),
        (b"{not json", "malformed"),
        (b'{"sensor": "x", "t0": 1, "rate": 50, "samples": [[1, 2]]}', "malformed"),
        (b'{"v": 2, "sensor": "x"}', "version"),
        (b'{"sensor": "a/b", "t0": 1, "rate": 50, "samples": [[1, 2, 3]]}', "malformed"),
        (b"x" * (payload.MAX_BYTES + 1), "oversize"),
    ],
)
def test_bad_payloads_are_classified(data, kind):
    with pytest.raises(PayloadError) as exc:
        decode(data)
    assert exc.value.kind == kind


def test_truncated_binary():
    t, xyz = even_batch(10)
    data = encode("s", 1, t, xyz, 52.0)
    with pytest.raises(PayloadError) as exc:
        decode(data[:-1])
    assert exc.value.kind == "truncated"
    with pytest.raises(PayloadError):
        decode(data + b"\x00")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_decoder_never_crashes(data):
    try:
        b = decode(data)
    except PayloadError:
        return
    assert len(b.t) == len(b.xyz) >= 1


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 100),  # uneven batches must span under 6.5 s
    seq=st.integers(0, 2**32 - 1),
    rate=st.sampled_from([25.0, 26.0, 52.0, 100.0, 104.0, 200.0]),
    seed=st.integers(0, 1000),
)
def test_round_trip_property(n, seq, rate, seed):
    rng = np.random.default_rng(seed)
    t = 1.7e9 + np.cumsum(rng.uniform(0.5, 1.5, n)) / rate
    xyz = rng.uniform(-7.9, 7.9, (n, 3))
    k = payload.fit(t, rate)
    assert k >= 1
    b = decode(encode("p", seq, t[:k], xyz[:k], rate))
    assert b.seq == seq
    tq, xq = payload.quantize(t[:k], xyz[:k])
    assert np.array_equal(b.t, tq) and np.array_equal(b.xyz, xq)
    if k < n:
        with pytest.raises(PayloadError):
            encode("p", seq, t[: k + 1], xyz[: k + 1], rate)


def test_batch_straying_from_the_grid_is_refused():
    t = 1.7e9 + np.arange(100) * 0.1
    t[50:] += 0.04
    with pytest.raises(PayloadError, match="split the batch"):
        encode("s", 0, t, np.zeros((100, 3)), 10.0)
    assert payload.fit(t, 10.0) == 50


def test_quantize_in_place_gives_what_the_copy_gives_and_only_touches_its_own_arrays() -> None:
    rng = np.random.default_rng(7)
    t = 1.7e9 + np.cumsum(rng.uniform(0.018, 0.02, 5000))
    xyz = rng.normal(0.0, 1.5, (5000, 3)) * np.array([1.0, 1.0, 40.0])  # some beyond the counts' range
    want = payload.quantize(t, xyz)
    t2, xyz2 = t.copy(), xyz.copy()
    got = payload.quantize(t2, xyz2, in_place=True)
    assert got[0].tobytes() == want[0].tobytes() and got[1].tobytes() == want[1].tobytes()
    assert got[0] is t2 and got[1] is xyz2  # no second night in memory
    assert not np.shares_memory(want[0], t) and not np.shares_memory(want[1], xyz)
    view = xyz.copy()[:, :2]  # not contiguous: left alone, a new array made
    assert payload.quantize(t[:5000], view, in_place=True)[1] is not view
