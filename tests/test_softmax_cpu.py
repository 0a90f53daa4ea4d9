"""The vectorisable forms of the stock build's exponentials (softmax.expf_main, glibc's
expf; softmax.vector_expf_main, a libmvec lane) against the library calls they replace,
and the tree softmax run side by side against one softmax at a time."""
import os

import numba
import numpy as np
import pytest
from numba import njit, prange

from darknetpy.cpu import fpenv
from darknetpy.cpu import softmax as sm

EXHAUSTIVE = pytest.mark.skipif(os.environ.get("DARKNETPY_EXHAUSTIVE") != "1", reason=(
    "the sweeps over all 2^32 floats take a minute or two: DARKNETPY_EXHAUSTIVE=1 runs them"))


@njit(parallel=True, fastmath=False, error_model="numpy")
def _mismatches(start, count, ftz, lane):
    """How many float bit patterns in [start, start + count) the vectorisable form gets
    wrong (outside its special inputs, which go to the library), and the first one."""
    chunk = 1 << 16
    nchunks = (count + chunk - 1) // chunk
    bad = np.zeros(nchunks, np.int64)
    first = np.full(nchunks, -1, np.int64)
    for c in prange(nchunks):
        old = fpenv.enter(ftz)
        for i in range(c * chunk, min(count, (c + 1) * chunk)):
            x = sm._float(np.int32(np.uint32(start + i)))
            if lane:
                if sm.vector_expf_special(x):
                    continue
                got, want = sm.vector_expf_main(x), sm.vector_expf(x)
            else:
                if sm.expf_special(x):
                    continue
                got, want = sm.expf_main(x), sm.expf(x)
            if sm._bits32(got) != sm._bits32(want):
                bad[c] += 1
                if first[c] < 0:
                    first[c] = start + i
        fpenv.leave(old)
    hits = first[first >= 0]
    return bad.sum(), (hits[0] if hits.size else -1)


EDGES = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-39, -1e-39, 1.1754942e-38, 1.0, -1.0, 87.33, -87.33, 87.34,
                  -87.34, 88.0, -88.0, 87.99999, -87.99999, 88.72283, -103.27893, -103.97208, -104.0,
                  np.inf, -np.inf, np.nan], np.float32)


@pytest.mark.parametrize("lane", [False, True], ids=["expf", "libmvec-lane"])
@pytest.mark.parametrize("ftz", [False, True])
def test_vectorisable_exp_equals_the_library_sampled(lane, ftz):
    """4M bit patterns spread over all floats, and the edges of the special paths."""
    bad, first = _mismatches(0, 1 << 22, ftz, lane)          # +0 up to small subnormals
    assert bad == 0, hex(first)
    for start in range(0, 1 << 32, 1 << 28):                 # a window in every 16th of the range
        bad, first = _mismatches(start + 12345 * 4099, 1 << 18, ftz, lane)
        assert bad == 0, hex(first)
    for x in EDGES:
        bits = int(x.view(np.uint32))
        bad, first = _mismatches(max(0, bits - 64), 129, ftz, lane)
        assert bad == 0, hex(first)


@EXHAUSTIVE
@pytest.mark.parametrize("lane", [False, True], ids=["expf", "libmvec-lane"])
@pytest.mark.parametrize("ftz", [False, True])
def test_vectorisable_exp_equals_the_library_for_every_float(lane, ftz):
    bad, first = _mismatches(0, 1 << 32, ftz, lane)
    assert bad == 0, f"{bad} mismatches, the first at {first:#x}"


@njit(fastmath=False, error_model="numpy")
def _one_at_a_time(x, base, spatial, batch, inputs, group_offset, group_size, temp, out, ftz):
    for b in range(batch):
        old = fpenv.enter(ftz)
        for g in range(group_size.size):
            for s in range(spatial):
                o = base + b * inputs + group_offset[g] * spatial + s
                sm.softmax(x, o, group_size[g], temp, spatial, out, o, True)
        fpenv.leave(old)


def same_bits_nan_aside(a, b):
    """Bit for bit, except which NaN survives where two NaNs meet (operand order; as in C)."""
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.array_equal(nan_a, nan_b) and np.array_equal(a[~nan_a].view(np.uint32), b[~nan_b].view(np.uint32))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("scale", [1.0, 40.0, 400.0], ids=["unit", "wide", "huge"])
@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("spatial", [1, 13, 289])
def test_tree_softmax_side_by_side_equals_one_at_a_time(threads, scale, ftz, spatial):
    """Groups below and above 11 entries (scalar and four-lane sums), every tail length,
    a temperature, subnormals, infinities, NaNs and logits wide enough for expf's and the
    libmvec lane's special paths."""
    rng = np.random.default_rng(spatial + int(scale))
    sizes = np.array([1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 30, 5, 101], np.int32)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
    batch, inputs = 3, (int(sizes.sum()) + 7) * spatial
    x = (rng.standard_normal(batch * inputs) * scale).astype(np.float32)
    for value in (np.nan, -np.inf, np.inf, 1e-40, -1e-40):
        x[rng.choice(x.size, 20)] = np.float32(value)
    old = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for temp in (np.float32(1.0), np.float32(0.7)):
            got, want = np.zeros_like(x), np.zeros_like(x)
            sm.softmax_tree(x, 7 * spatial, spatial, batch, inputs, offsets, sizes, temp, got, True, ftz)
            _one_at_a_time(x, 7 * spatial, spatial, batch, inputs, offsets, sizes, temp, want, ftz)
            assert same_bits_nan_aside(got, want)
    finally:
        numba.set_num_threads(old)
