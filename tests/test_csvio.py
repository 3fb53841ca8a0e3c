"""Reading recordings: the header contract, line-numbered errors, round trip."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legwatch.csvio import RecordingError, read_csv, write_csv


def test_round_trip(tmp_path):
    t = 1.7e9 + np.array([0.0, 0.02, 0.05, 10.0])
    xyz = np.array([[0, 0, 1], [0.1, -0.2, 0.98], [0, 0, 1], [1.5, 0, 0]])
    p = tmp_path / "r.csv"
    write_csv(p, t, xyz)
    assert p.read_text().splitlines()[0] == "timestamp,ax,ay,az"
    t2, xyz2 = read_csv(p)
    assert np.allclose(t2, t) and np.allclose(xyz2, xyz)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("time,ax,ay,az\n1,0,0,1\n", ":1: header must be timestamp,ax,ay,az"),
        ("timestamp,ax,ay,az\n", "no data rows"),
        ("timestamp,ax,ay,az\n1,0,0,1\n2,0,0\n", ":3: expected 4 values"),
        ("timestamp,ax,ay,az\n1,0,0,1\n2,0,0,1\n3,zero,0,1\n", ":4: ax is not a number"),
        ("timestamp,ax,ay,az\n1,0,0,1\n2,0,nan,1\n", ":3: ay is not finite"),
    ],
)
def test_errors_name_the_line(tmp_path, text, needle):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(RecordingError) as exc:
        read_csv(p)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(RecordingError, match="is a directory"):
        read_csv(tmp_path)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_reader_only_raises_recording_error(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("fz") / "f.csv"
    p.write_bytes(b"timestamp,ax,ay,az\n" + data)
    try:
        t, xyz = read_csv(p)
    except RecordingError:
        return
    assert len(t) == len(xyz) and np.isfinite(t).all()
