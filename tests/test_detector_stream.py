"""Streaming equals offline: the same episodes whatever the batch size."""

import numpy as np
import pytest

from detector.offline import detect_arrays
from detector.synthetic import generate_night


@pytest.fixture(scope="module")
def night():
    return generate_night(11, hours=1.5, rate_hz=52.0)


def _key(n):
    return (
        [(e.start, e.end, e.kind, e.peak_g, e.periodic, e.in_sleep) for e in n.episodes],
        [(e.time, e.movement_g, e.angle_deg, e.coverage) for e in n.epochs],
        [(g.start, g.end) for g in n.gaps],
        n.sleep_window,
        n.plm_index,
    )


def test_night_has_episodes(night):
    whole = detect_arrays(night.t, night.xyz)
    assert len([e for e in whole.episodes if e.counted]) > 5


@pytest.mark.parametrize("batch", [1, 7, 26, 52, 333, 5000])
def test_batch_size_does_not_change_anything(night, batch):
    t, xyz = night.t, night.xyz
    if batch == 1:  # one sample at a time is slow: use the first 20 minutes
        cut = np.searchsorted(t, t[0] + 1200)
        t, xyz = t[:cut], xyz[:cut]
    whole = detect_arrays(t, xyz, batch=None)  # one push
    assert _key(detect_arrays(t, xyz, batch=batch)) == _key(whole)
    if batch == 5000:  # and the pieces `legwatch detect` feeds
        assert _key(detect_arrays(t, xyz)) == _key(whole)


def test_random_batches(night):
    whole = detect_arrays(night.t, night.xyz, batch=None)
    det_batches = []
    rng = np.random.default_rng(5)
    i = 0
    from detector.stream import StreamDetector

    d = StreamDetector()
    while i < len(night.t):
        k = int(rng.integers(1, 400))
        up = d.push(night.t[i : i + k], night.xyz[i : i + k])
        det_batches.extend(up.episodes)
        i += k
    up, n = d.finish()
    det_batches.extend(up.episodes)
    assert _key(n) == _key(whole)
    # what was released live is the same set (flags before the sleep window is known aside)
    assert sorted((e.start, e.kind, e.periodic) for e in det_batches) == sorted(
        (e.start, e.kind, e.periodic) for e in whole.episodes
    )


def test_rates_and_uneven_timestamps():
    for rate in (25.0, 26.0, 104.0, 200.0):
        n = generate_night(3, hours=0.75, rate_hz=rate)
        res = detect_arrays(n.t, n.xyz)
        assert res.samples == len(n.t)
        assert all(e.end > e.start for e in res.episodes)


def test_framer_checks_every_batch_the_same_way():
    """A clean batch (finite, strictly increasing) takes the Framer's quick check; one with a NaN,
    a repeated or an earlier time the sample-by-sample one. Both keep exactly the same samples, so
    a batch with its bad samples taken out gives the same frames as with them left in."""
    from detector.frames import Framer

    rng = np.random.default_rng(2)
    t = 1.7e9 + np.cumsum(rng.uniform(0.005, 0.03, 4000))
    xyz = rng.normal(0, 0.1, (4000, 3)) + [0, 0, 1]
    bad_t, bad_xyz = t.copy(), xyz.copy()
    bad_xyz[100, 1] = np.nan
    bad_t[200] = bad_t[199]  # a repeated time
    bad_t[300] = bad_t[250]  # an earlier one
    bad_t[400] = np.inf
    kept = np.ones(len(t), bool)
    kept[[100, 200, 300, 400]] = False
    for cut in (1000, 2500):  # several batches: the first sample of a later one is checked too
        a, b = Framer(), Framer()
        fa = [a.push(t[kept][i : i + cut], xyz[kept][i : i + cut]) for i in range(0, int(kept.sum()), cut)]
        fb = [b.push(bad_t[i : i + cut], bad_xyz[i : i + cut]) for i in range(0, len(t), cut)]
        assert b.dropped == 4 and a.dropped == 0
        for x, y in zip(_frames_of(fa + [(a.flush(), [])]), _frames_of(fb + [(b.flush(), [])]), strict=True):
            assert np.array_equal(x, y)
    late = Framer()
    late.push(t[:10], xyz[:10])
    late.push(t[5:20], xyz[5:20])  # a batch starting before the last sample: its first five dropped
    assert late.dropped == 5


def _frames_of(pushed):
    from detector.frames import Frames

    fr = Frames.concat([f for f, _ in pushed])
    gaps = [g for _, gs in pushed for g in gs]
    return fr.idx, fr.n, fr.s, fr.q, fr.c, np.array(gaps).reshape(-1, 2)
