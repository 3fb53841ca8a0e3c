"""detector.vectors: the fast helpers give exactly what the numpy functions they replace give."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from detector.vectors import finite, median, norm_rows

SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e-40])


def arrays(width: int) -> st.SearchStrategy[np.ndarray]:
    values = st.one_of(st.floats(width=width), SPECIAL)  # NaN and infinities often
    dtype = np.float64 if width == 64 else np.float32
    return hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=2), elements=values)


@settings(max_examples=300, deadline=None)
@given(st.one_of(arrays(64), arrays(32)), st.sampled_from([0.0, 1.0, 180.0]))
def test_finite_is_nan_to_num_bit_for_bit(x: np.ndarray, nan: float) -> None:
    want = np.nan_to_num(x, nan=nan)
    got = finite(x, nan=nan)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    assert got is not x  # a copy, as nan_to_num gives


def test_finite_copies_and_leaves_its_input() -> None:
    x = np.array([1.0, np.nan, np.inf])
    finite(x)
    assert np.isnan(x[1]) and np.isinf(x[2])
    assert finite(np.arange(3)).tolist() == [0, 1, 2]


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 40)), elements=st.floats(-1e6, 1e6)))
def test_median_by_rows_is_np_median(x: np.ndarray) -> None:
    assert np.array_equal(median(x, axis=1), np.median(x, axis=1))  # equal (np.median's zero is +0.0)
    for row in x:
        assert float(median(row)) == float(np.median(row))


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_norm_rows_is_linalg_norm(n: int) -> None:
    m = np.random.default_rng(n).normal(size=(n, 3)) * 10.0 ** np.random.default_rng(n + 1).integers(-5, 5, (n, 1))
    assert norm_rows(m).tobytes() == np.linalg.norm(m, axis=-1).tobytes()
