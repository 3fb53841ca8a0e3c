"""Stream state as data: ``StreamDetector.state()`` through the state-file codec and back continues
bit-identically, the codec refuses what is not its file, and the state is plain data of bounded size."""

import io
import itertools
import math
import pickle
import zipfile

import numpy as np
import pytest

from detector.episodes import HIST_FRAMES, POST_FRAMES
from detector.stream import STATE_VERSION, StreamDetector
from detector.synthetic import generate_night
from legwatch.monitor.state_file import StateFileError, dumps, loads

KIND = "stream"


def _roundtrip(det: StreamDetector) -> StreamDetector:
    blob = dumps(det.state(), kind=KIND, version=STATE_VERSION)
    return StreamDetector.from_state(loads(blob, kind=KIND, version=STATE_VERSION))


def _f(x) -> str:
    return float(x).hex()  # bit-exact comparison of floats, NaN equal to NaN


def _episode_key(e) -> tuple:
    extra = tuple(sorted((k, _f(v) if isinstance(v, float) else v) for k, v in e.extra.items()))
    return (_f(e.start), _f(e.end), e.kind, _f(e.peak_g), e.periodic, e.in_sleep, extra)


def _update_key(up) -> tuple:
    return (
        [_episode_key(e) for e in up.episodes],
        [(_f(x.time), _f(x.movement_g), _f(x.angle_deg), _f(x.coverage)) for x in up.epochs],
        [(_f(g.start), _f(g.end)) for g in up.gaps],
    )


def _night_key(n) -> tuple:
    return (
        [_episode_key(e) for e in n.episodes],
        [(_f(x.time), _f(x.movement_g), _f(x.angle_deg), _f(x.coverage)) for x in n.epochs],
        [(_f(g.start), _f(g.end)) for g in n.gaps],
        None if n.sleep_window is None else tuple(map(_f, n.sleep_window)),
        None if n.plm_index is None else _f(n.plm_index),
        None if n.start is None else _f(n.start),
        None if n.end is None else _f(n.end),
        n.samples,
        n.dropped,
        n.summary(),
    )


def _run(t, xyz, bounds: list[int], cuts: set[int]):
    """Push the samples split at ``bounds``; at each cut (a sample index; ``len(t)``: before
    ``finish``) the detector is replaced by one rebuilt from its encoded state. Returns what every
    push and the finish made final, the night, and the states taken at the cuts."""
    det = StreamDetector()
    ups, states = [], []
    for a, b in itertools.pairwise(bounds):
        if a in cuts:
            states.append(det.state())
            det = _roundtrip(det)
        ups.append(_update_key(det.push(t[a:b], xyz[a:b])))
    if len(t) in cuts:
        states.append(det.state())
        det = _roundtrip(det)
    up, night = det.finish()
    ups.append(_update_key(up))
    return ups, night, states


NIGHTS = {
    "26 Hz": lambda: generate_night(3, hours=1.5, rate_hz=26.0),
    "52 Hz": lambda: generate_night(11, hours=1.5, rate_hz=52.0),
    "104 Hz": lambda: generate_night(5, hours=1.0, rate_hz=104.0),
    "52 Hz with gaps": lambda: generate_night(8, hours=1.0, rate_hz=52.0, gaps=3, late_bursts=0),
}


@pytest.mark.parametrize("name", list(NIGHTS))
def test_restored_detector_continues_identically(name):
    n = NIGHTS[name]()
    t, xyz = n.t, n.xyz
    rng = np.random.default_rng(len(name))
    bounds = [0]
    while bounds[-1] < len(t):
        bounds.append(min(len(t), bounds[-1] + int(rng.integers(1, 6000))))
    _, ref, _ = _run(t, xyz, bounds, set())

    def at(time_s: float) -> int:
        return int(np.searchsorted(t, time_s))

    cuts = {0, len(t)}  # before any push, and just before finish()
    for kind in ("contraction", "leg_movement", "twitch", "posture_change", "out_of_bed"):
        eps = [e for e in ref.episodes if e.kind == kind]
        if eps:  # in the middle of an episode, first and last of its kind
            cuts |= {at((eps[0].start + eps[0].end) / 2), at((eps[-1].start + eps[-1].end) / 2)}
    periodic = [e for e in ref.episodes if e.periodic]
    if periodic:  # within a periodic series, while its movements are held
        cuts |= {at(periodic[len(periodic) // 2].end + 2.0), at(periodic[1].start + 0.2)}
    for g in ref.gaps:  # on either side of a gap
        cuts |= {at(g.start), at(g.end)}
    cuts |= {at(t[0] + (t[-1] - t[0]) * q) for q in (0.25, 0.5, 0.75)}
    bounds = sorted(set(bounds) | cuts)

    ups_ref, ref, _ = _run(t, xyz, bounds, set())
    ups, got, states = _run(t, xyz, bounds, cuts)
    assert len(states) == len(cuts)
    assert ups == ups_ref  # every push made the same episodes, epochs and gaps final
    assert _night_key(got) == _night_key(ref)
    assert ref.sleep_window is not None and len(ref.episodes) > 5
    if name == "52 Hz with gaps":
        assert len(ref.gaps) == 3
    # some cuts did land while episodes were held for their group or series to be decided
    assert any(len(s["cramps"]["group"]) + len(s["held"]["group"]) + len(s["periodic"]["pending"]) for s in states)


def test_restore_after_every_push():
    n = generate_night(11, hours=0.5, rate_hz=52.0)
    bounds = list(range(0, len(n.t), 1500)) + [len(n.t)]
    ups_ref, ref, _ = _run(n.t, n.xyz, bounds, set())
    ups, got, _ = _run(n.t, n.xyz, bounds, set(bounds))
    assert ups == ups_ref
    assert _night_key(got) == _night_key(ref)


def test_state_is_a_snapshot_and_restores_without_sharing():
    n = generate_night(11, hours=0.5, rate_hz=52.0)
    t, xyz = n.t, n.xyz
    half, end = len(t) // 2, len(t)
    det = StreamDetector()
    det.push(t[:half], xyz[:half])
    st = det.state()
    det.push(t[half : half + 5000], xyz[half : half + 5000])  # later pushes do not change st
    a, b = StreamDetector.from_state(st), StreamDetector.from_state(st)
    for d in (a, b):
        d.push(t[half:end], xyz[half:end])
    ref = StreamDetector()
    ref.push(t[:half], xyz[:half])
    ref.push(t[half:end], xyz[half:end])
    keys = [_night_key(d.finish()[1]) for d in (a, b, ref)]
    assert keys[0] == keys[1] == keys[2]


PLAIN = (bool, int, float, str, type(None))


def _assert_plain(v, path="state"):
    if isinstance(v, dict):
        for k, x in v.items():
            assert type(k) is str, f"{path}: key {k!r}"
            _assert_plain(x, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _assert_plain(x, f"{path}[{i}]")
    elif isinstance(v, np.ndarray):
        assert type(v) is np.ndarray and not v.dtype.hasobject, f"{path}: {v.dtype}"
    else:
        assert type(v) in PLAIN, f"{path}: {type(v).__name__} is not plain data"


def test_state_is_plain_data():
    n = generate_night(11, hours=1.0, rate_hz=52.0)
    det = StreamDetector()
    _assert_plain(det.state())
    held = 0
    for i in range(0, len(n.t), 20_000):
        det.push(n.t[i : i + 20_000], n.xyz[i : i + 20_000])
        st = det.state()
        _assert_plain(st)
        held += len(st["cramps"]["group"]) + len(st["periodic"]["pending"])
    assert held  # episode dicts were among what was walked
    assert st["version"] == STATE_VERSION


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()  # bit for bit, NaN included
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return type(b) is float and ((a == b and math.copysign(1, a) == math.copysign(1, b)) or (a != a and b != b))
    return type(a) is type(b) and a == b


def test_codec_round_trips_exactly():
    state = {
        "nan": math.nan,
        "floats": [math.inf, -math.inf, 5e-324, 0.1, -0.0, 1.0, 1e308, 1 / 3],
        "big": 2**62,
        "bigger": -(2**70) - 1,
        "flag": True,
        "none": None,
        "text": "twitch",
        "empty": np.empty((0, 3)),
        "scalar": np.array(np.nan),
        "bools": np.array([True, False]),
        "ints": np.array([-(2**62), 2**62], dtype=np.int64),
        "nested": {"rows": [{"x": 1.0, "y": [math.nan, 2]}, []], "a": np.arange(6.0).reshape(2, 3)},
    }
    back = loads(dumps(state, kind="test", version=3), kind="test", version=3)
    assert _same(state, back)
    n = generate_night(11, hours=0.5, rate_hz=52.0)
    det = StreamDetector()
    det.push(n.t, n.xyz)
    st = det.state()
    assert _same(st, loads(dumps(st, kind=KIND, version=STATE_VERSION), kind=KIND, version=STATE_VERSION))


@pytest.mark.parametrize(
    "value",
    [(1.0, 2.0), np.float64(1.0), np.int64(3), np.array([None], dtype=object), {1: 2}, {"$array": "a0"}, object()],
)
def test_dumps_refuses_what_is_not_plain_data(value):
    with pytest.raises(TypeError):
        dumps({"x": value}, kind=KIND, version=STATE_VERSION)


def _blob() -> bytes:
    return dumps(StreamDetector().state(), kind=KIND, version=STATE_VERSION)


def _npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _refusal(blob: bytes) -> str:
    with pytest.raises(StateFileError) as info:
        loads(blob, kind=KIND, version=STATE_VERSION)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


def test_loads_refuses_another_version():
    msg = _refusal(dumps(StreamDetector().state(), kind=KIND, version=STATE_VERSION + 1))
    assert f"version {STATE_VERSION + 1}" in msg and f"expected version {STATE_VERSION}" in msg


def test_loads_refuses_another_kind():
    msg = _refusal(dumps(StreamDetector().state(), kind="global", version=STATE_VERSION))
    assert "'global'" in msg and f"{KIND!r}" in msg


def test_loads_refuses_random_bytes():
    rng = np.random.default_rng(1)
    assert "not a state file" in _refusal(rng.bytes(4096))
    assert "not a state file" in _refusal(b"")
    assert "damaged" in _refusal(b"PK\x03\x04" + rng.bytes(4096))  # looks like a zip, is not one


def test_loads_refuses_a_pickle():
    assert "pickle" in _refusal(pickle.dumps(StreamDetector(), protocol=pickle.HIGHEST_PROTOCOL))
    assert "pickle" in _refusal(pickle.dumps({"version": 1}, protocol=2))


def test_loads_refuses_an_npz_without_meta():
    buf = io.BytesIO()
    np.savez(buf, x=np.arange(3))
    assert "meta.json" in _refusal(buf.getvalue())


def test_loads_refuses_damaged_files():
    blob = _blob()
    assert "damaged" in _refusal(blob[: len(blob) // 2])  # truncated: no central directory
    assert "format" in _refusal(_npz({"meta.json": b'{"format": "other", "kind": "stream", "version": 1}'}))
    assert "JSON" in _refusal(_npz({"meta.json": b"{not json"}))
    meta = b'{"format": "legwatch-state", "kind": "stream", "version": %d, "state": {"a": {"$array": "a0"}}}' % (
        STATE_VERSION
    )
    assert "reference" in _refusal(_npz({"meta.json": meta}))  # the array it names is missing
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        with zf.open("a0.npy", "w") as fh:
            np.lib.format.write_array(fh, np.array([None, 1], dtype=object), allow_pickle=True)
        zf.writestr("meta.json", meta)
    assert "damaged" in _refusal(buf.getvalue())  # an object array would need pickle


def test_from_state_refuses_another_version():
    st = StreamDetector().state()
    for bad in (STATE_VERSION + 1, 0, "1", None, True):
        with pytest.raises(ValueError, match="version") as info:
            StreamDetector.from_state({**st, "version": bad})
        assert "\n" not in str(info.value) and repr(bad) in str(info.value)
    no_version = {k: v for k, v in st.items() if k != "version"}
    with pytest.raises(ValueError, match="version None"):
        StreamDetector.from_state(no_version)


def test_from_state_refuses_a_malformed_state():
    def broken(edit) -> str:
        st = StreamDetector().state()
        edit(st)
        with pytest.raises(ValueError) as info:
            StreamDetector.from_state(st)
        msg = str(info.value)
        assert msg.startswith("malformed stream state") and "\n" not in msg
        return msg

    assert "framer" in broken(lambda st: st.pop("framer"))
    assert "framer.pend_t" in broken(lambda st: st["framer"].pop("pend_t"))
    assert "assembler.buf.feats.idx" in broken(lambda st: st["assembler"]["buf"]["feats"].update(idx=np.zeros(0)))
    assert "thresholds.hist_sd" in broken(lambda st: st["thresholds"].update(hist_sd=[1]))
    assert "samples" in broken(lambda st: st.update(samples=1.5))
    assert "epochs.history.rows" in broken(lambda st: st["epochs"]["history"].update(rows=np.zeros((2, 4))))
    assert "periodic.pending[0]" in broken(lambda st: st["periodic"].update(pending=[{"start": 1.0}]))
    assert "axis" in broken(lambda st: st.update(axis=[]))


def _records_removed(st: dict) -> dict:
    """The state without the night's records (they grow with the night by design)."""
    st["epochs"]["history"]["rows"] = st["epochs"]["history"]["rows"][:0]
    st["axis"]["rows"]["rows"] = st["axis"]["rows"]["rows"][:0]
    st["episodes"]["rows"] = st["episodes"]["rows"][:0]
    st["gaps"] = st["gaps"][:0]
    return st


def test_state_stays_bounded():
    """The working state (the open block and epoch, the frames an event is decided on, floors, held
    episodes) does not grow with the night; what grows are the night's compact records: one row per
    30 s epoch (5 values), one per quiet epoch of the shin-axis window (4 values, at most the last
    ~8.5 h), one per episode (9 values) and per gap (2), 8 bytes a value. An event still undecided
    keeps all its frames (getting up for minutes: ~80 bytes per 0.1 s frame), so the sizes are taken
    at the first minute from 2 h and 6 h on at which the episode assembler holds no such event."""
    n = generate_night(4, hours=6.5, rate_hz=26.0)
    t, xyz = n.t, n.xyz
    step = 26 * 60
    det = StreamDetector()
    sizes, working, records = {}, {}, {}
    i = 0
    for h in (2, 6):
        stop = int(np.searchsorted(t, t[0] + h * 3600.0))
        det.push(t[i:stop], xyz[i:stop])
        i = stop
        for _ in range(20):
            st = det.state()
            if len(st["assembler"]["buf"]["feats"]["idx"]) <= HIST_FRAMES + POST_FRAMES + 1:
                break
            det.push(t[i : i + step], xyz[i : i + step])
            i += step
        else:
            pytest.fail(f"an event stayed undecided for 20 minutes after {h} h")
        sizes[h] = len(dumps(st, kind=KIND, version=STATE_VERSION))
        records[h] = (
            sum(a.size for a in (st["epochs"]["history"]["rows"], st["axis"]["rows"]["rows"], st["episodes"]["rows"]))
            + st["gaps"].size
        )
        working[h] = len(dumps(_records_removed(st), kind=KIND, version=STATE_VERSION))
    assert working[6] < 1.1 * working[2]  # the working state is bounded
    assert working[6] < 80_000
    grown = sizes[6] - sizes[2]
    assert grown <= 8 * (records[6] - records[2]) + 1024  # all growth is the records, 8 bytes a value
    assert grown < 4 * 12_000  # and they grow slowly: under 12 kB an hour
    assert sizes[6] < 1.6 * sizes[2]
