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


def _plain_night(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    t = 1.7e9 + np.cumsum(rng.uniform(0.001, 0.05, rows))
    xyz = rng.normal(0, 1.5, (rows, 3)) * rng.choice([1, 10, 100], (rows, 1))  # 1-3 integer digits
    return t, xyz


def test_fast_path_over_many_pieces_equals_loadtxt(tmp_path):
    from legwatch import csvio

    t, xyz = _plain_night(70_000)  # ~3 MB: more than one piece of the file
    p = tmp_path / "long.csv"
    write_csv(p, t, xyz)
    raw = p.read_bytes()
    assert len(raw) > csvio._CHUNK
    fast = csvio._parse_plain(raw, raw.find(b"\n") + 1)
    assert fast is not None, "a file write_csv wrote must take the fast path"
    ref = np.loadtxt(p, delimiter=",", skiprows=1)
    assert np.array_equal(fast[0], ref[:, 0]) and np.array_equal(fast[1], ref[:, 1:])
    t2, xyz2 = read_csv(p)
    assert np.array_equal(t2, ref[:, 0]) and np.array_equal(xyz2, ref[:, 1:])


def test_a_bad_row_in_a_later_piece_is_named(tmp_path):
    t, xyz = _plain_night(70_000)
    p = tmp_path / "bad.csv"
    write_csv(p, t, xyz)
    lines = p.read_text().splitlines(keepends=True)
    lines[65_001] = lines[65_001].replace(",", ",x", 1)  # data row 65,001 is line 65,002
    p.write_text("".join(lines))
    with pytest.raises(RecordingError, match=r":65002: ax is not a number"):
        read_csv(p)


def _write_rows(p, rows) -> None:
    p.write_text("timestamp,ax,ay,az\n" + "".join(",".join(r) + "\n" for r in rows))


def _expected(rows) -> np.ndarray:
    return np.array([[float(x) for x in r] for r in rows])


def _sig_digits(text: str) -> int:
    mant = text.lower().split("e")[0].lstrip("+-").replace(".", "").lstrip("0")
    return len(mant)


@pytest.mark.parametrize(
    "fmt",
    [
        "repr",  # Python's shortest repr, as pandas and the csv module write: varying decimals
        "{:.3f}",
        "{:.8f}",
        "{:.9f}",  # 19-digit times: mantissas beyond 2**53
        "{:.18e}",  # numpy.savetxt's default: an exponent on every field, 19 digits
    ],
)
def test_number_formats_read_as_float_reads_them(tmp_path, fmt):
    from legwatch import csvio

    rng = np.random.default_rng(7)
    n = 40_000
    t = 1.76e9 + np.cumsum(rng.uniform(0.005, 0.03, n))
    xyz = rng.normal(0, 1, (n, 3)) * rng.choice([1e-3, 1, 50], (n, 1))  # some below 1e-4: repr writes 5e-05

    def show(v: float) -> str:
        return repr(v) if fmt == "repr" else fmt.format(v)

    rows = [[show(a), show(b), show(c), show(d)] for a, b, c, d in zip(t.tolist(), *xyz.T.tolist(), strict=True)]
    p = tmp_path / "f.csv"
    _write_rows(p, rows)
    want = _expected(rows)
    got_t, got_xyz = read_csv(p)
    got = np.column_stack([got_t, got_xyz])
    short = np.array([[_sig_digits(x) <= 15 for x in r] for r in rows])
    assert np.array_equal(got[short], want[short]), "up to 15 digits the reader is exact"
    assert (np.abs(got - want) <= np.spacing(np.abs(want))).all(), "longer: within one unit in the last place"
    raw = p.read_bytes()
    fast = csvio._parse_plain(raw, raw.find(b"\n") + 1)
    assert fast is not None, "plain decimals, some or all with exponents, take the vectorised path"
    assert fmt != "repr" or any("e" in x for r in rows for x in r), "repr must have shown some exponents"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from(["repr", "{:.0f}", "{:.0f}.", "{:.1f}", "{:.5f}", "{:.3e}", "{:+.2f}", "{:.17f}"]),
        ),
        min_size=4,
        max_size=80,
    )
)
def test_any_mix_of_formats_reads_as_float_does(tmp_path_factory, cells):
    def show(v: float, f: str) -> str:
        return repr(v) if f == "repr" else f.format(v)

    texts = [show(v, f) for v, f in cells]
    rows = [texts[i : i + 4] for i in range(0, len(texts) - len(texts) % 4, 4)]
    p = tmp_path_factory.mktemp("mix") / "m.csv"
    _write_rows(p, rows)
    want = _expected(rows)
    got_t, got_xyz = read_csv(p)
    got = np.column_stack([got_t, got_xyz])
    assert (np.abs(got - want) <= np.spacing(np.abs(want))).all()


def test_crlf_and_spaces_still_read(tmp_path):
    p = tmp_path / "w.csv"
    p.write_bytes(b"timestamp,ax,ay,az\r\n1.5, 0.25,-1,2e-3\r\n2.5,0.5,1.0,0\r\n")
    t, xyz = read_csv(p)
    assert t.tolist() == [1.5, 2.5] and xyz.tolist() == [[0.25, -1.0, 0.002], [0.5, 1.0, 0.0]]


def test_rows_shorter_than_the_first_still_all_read(tmp_path):
    """The arrays are sized from the first row; later, shorter rows make them grow."""
    rows = [["1767652507.7139933", "0.9778400003455843", "-0.14470999917838187", "-0.039859999669562926"]]
    rows += [[f"{1767652508 + i}.5", "0.0", "1.0", "-1.5"] for i in range(100_000)]
    p = tmp_path / "grow.csv"
    _write_rows(p, rows)
    t, xyz = read_csv(p)
    want = _expected(rows)
    assert len(t) == len(rows)
    assert np.array_equal(t, want[:, 0]) and np.array_equal(xyz, want[:, 1:])


def test_an_empty_file_is_refused_in_one_line(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    with pytest.raises(RecordingError, match="header must be"):
        read_csv(p)


@pytest.mark.parametrize("fmt", ["{:.0f}", "{:.25f}"])
def test_whole_numbers_and_many_decimals_take_the_fast_path_exactly(tmp_path, fmt):
    """Integers without a '.' (times in whole seconds) and more decimals than doubles hold."""
    from legwatch import csvio

    rng = np.random.default_rng(11)
    vals = np.column_stack([1.7e9 + np.arange(5000.0), rng.integers(-40, 40, (5000, 3))]).astype(float)
    if fmt != "{:.0f}":
        vals = rng.normal(0, 1e-6, (5000, 4))
    rows = [[fmt.format(v) for v in r] for r in vals.tolist()]
    p = tmp_path / "w.csv"
    _write_rows(p, rows)
    want = _expected(rows)
    got_t, got_xyz = read_csv(p)
    assert (np.abs(np.column_stack([got_t, got_xyz]) - want) <= np.spacing(np.abs(want))).all()
    if fmt == "{:.0f}":
        assert np.array_equal(got_t, want[:, 0]) and np.array_equal(got_xyz, want[:, 1:])
        raw = p.read_bytes()
        assert csvio._parse_plain(raw, raw.find(b"\n") + 1) is not None


@pytest.mark.parametrize("decimals", [3, 5, 6])
def test_repr_of_rounded_values_is_exact(tmp_path, decimals):
    """Python's repr of values rounded to a few decimals (what a logger writes, then pandas): most
    fields have all the decimals, some fewer (trailing zeros dropped), a few an exponent (5e-05).
    The vectorised path (most fields by their common decimals, the rest on their own) gives
    exactly what float() gives."""
    from legwatch import csvio

    rng = np.random.default_rng(decimals)
    n = 50_000
    t = np.round(1.7676e9 + np.cumsum(rng.uniform(0.015, 0.025, n)), 6)
    xyz = np.round(rng.normal(0, 0.02, (n, 3)) + [0, 0, 1], decimals)
    xyz[::997, 0] = 5e-05 if decimals >= 5 else 0.001
    rows = [[repr(v) for v in r] for r in zip(t.tolist(), *xyz.T.tolist(), strict=True)]
    p = tmp_path / "r.csv"
    _write_rows(p, rows)
    raw = p.read_bytes()
    fast = csvio._parse_plain(raw, raw.find(b"\n") + 1)
    assert fast is not None, "short reprs take the vectorised path"
    want = _expected(rows)
    assert np.array_equal(fast[0], want[:, 0]) and np.array_equal(fast[1], want[:, 1:])
    assert len({len(r[1].split(".")[-1]) for r in rows}) > 1, "decimals must vary"


_FIELD = st.one_of(
    st.floats(-1e17, 1e17, allow_nan=False).map(repr),
    st.tuples(st.floats(-1e9, 1e9, allow_nan=False), st.integers(0, 9)).map(lambda v: f"{v[0]:.{v[1]}f}"),
    st.text("0123456789.-+eE_ ", min_size=1, max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FIELD, min_size=1, max_size=60))
def test_word_parser_gives_what_float_gives_or_leaves_the_field(fields):
    """``decimal_words.parse`` (the path for varying decimals) on any text: every field it takes is
    exactly float()'s value (sign of zero included); it takes every plain ``-?d+.d{0,7}`` with
    at most 16 integer digits and a mantissa below 2**53, and leaves anything else."""

    from legwatch import decimal_words

    fields = [f for f in fields if "," not in f]
    if not fields:
        return
    _takes_plain_fields_exactly(
        fields,
        "timestamp,ax,ay,az\n",
        lambda buf, s, e: decimal_words.parse(buf, decimal_words.words(buf), s, e),
        r"\d{0,7}",
    )


def _takes_plain_fields_exactly(fields: list[str], head: str, parse, decimals_re: str) -> None:
    """``parse(buf, starts, ends) -> (values, ok) | None`` on ``fields`` written after ``head``: it takes
    every ``-?d{1,16}.DECIMALS`` field with a mantissa below 2**53, exactly as float() (sign of zero
    included), and leaves every other (None only for fields over 24 bytes)."""
    import re

    raw = (head + ",".join(fields) + "\n").encode()
    buf = np.frombuffer(raw, np.uint8)
    ends = np.cumsum([len(f) + 1 for f in fields]) + len(head) - 1
    starts = ends - [len(f) for f in fields]
    for short in (True, False):  # fields of up to 8 bytes take their own path: blocks of each kind
        pick = np.flatnonzero((ends - starts <= 8) == short)
        if not len(pick):
            continue
        got = parse(buf, starts[pick], ends[pick])
        if got is None:
            assert any(len(fields[j]) > 24 for j in pick.tolist())
            continue
        v, ok = got
        for i, j in enumerate(pick.tolist()):
            f = fields[j]
            m = re.fullmatch(rf"-?(\d{{1,16}})\.({decimals_re})", f)
            plain = m is not None and int(m[1] + m[2]) < 2**53
            assert bool(ok[i]) == plain, f
            if ok[i]:
                assert v[i] == float(f) and np.signbit(v[i]) == np.signbit(float(f)), f


def test_detect_gives_the_same_output_whichever_way_the_numbers_are_written(tmp_path):
    """``legwatch detect`` of one night written with fixed decimals (legwatch's own CSV), as Python's
    repr (varying decimals, a few exponents: the eight-byte word path) and as ``%.18e`` (an exponent
    on every field): the reader's three paths give the same numbers, so the whole output (episodes,
    epochs' summary, gaps) is byte for byte the same, whatever the detector's rules are."""
    import json

    from detector.synthetic import generate_night
    from helpers import run_cli
    from legwatch import csvio

    night = generate_night(5, hours=1.0, rate_hz=52.0)
    plain = tmp_path / "plain.csv"
    write_csv(plain, night.t, night.xyz)
    t, xyz = read_csv(plain)
    data = np.column_stack([t, xyz])
    rep = tmp_path / "repr.csv"
    rep.write_text(
        ",".join(csvio.HEADER) + "\n" + "".join(f"{a!r},{b!r},{c!r},{d!r}\n" for a, b, c, d in data.tolist())
    )
    e18 = tmp_path / "e18.csv"
    np.savetxt(e18, data, fmt="%.18e", delimiter=",", header=",".join(csvio.HEADER), comments="")
    ax = [line.split(",")[1] for line in rep.read_text().splitlines()[1:2000]]
    assert len({len(f.split(".")[-1]) for f in ax}) > 1, "the repr night's decimals must vary"
    outs = []
    for p in (plain, rep, e18):
        doc = json.loads(run_cli("detect", str(p), "--format", "json", check=True).stdout)
        doc.pop("file")
        outs.append(doc)
    assert outs[0]["episodes"], "the night must have episodes"
    assert outs[1] == outs[0] and outs[2] == outs[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(_FIELD, min_size=1, max_size=60), st.integers(0, 7))
def test_fixed_decimals_word_parser_gives_what_float_gives_or_leaves_the_field(fields, decimals):
    """``decimal_words.fixed`` (the path for fields that all have one number of decimals, printf's
    ``%.5f``) on any text: every field it takes is exactly float()'s value (sign of zero included);
    it takes every plain ``-?d+.d{decimals}`` with at most 16 integer digits and a mantissa below
    2**53, and leaves anything else (other decimals too)."""

    from legwatch import decimal_words

    fields = [f for f in fields if "," not in f]
    fields += [f"{v:.{decimals}f}" for v in (-0.0, 1.5, -12345678.25, 1767652507.713993, 2.0**53, 9e15)]
    d = "7" * decimals
    fields += [f".{d}", f"-.{d}", f"+1.{d}", f"1-2.{d}", f"{'9' * 17}.{d}", f"1.{d}5", f"1{d}"]  # none plain
    head = "timestamp,ax,ay,az\n" + "0" * 24 + ","  # 24 bytes before every field's end at least
    _takes_plain_fields_exactly(
        fields, head, lambda buf, s, e: decimal_words.fixed(buf, s, e, decimals), rf"\d{{{decimals}}}"
    )
