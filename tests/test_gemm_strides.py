"""gemm_exact / gemm_fast on matrices whose rows are not contiguous with each
other: B a column block of an im2col workspace, C a column slice of the output
(the convolution's column blocks), A a row-strided view."""
import numpy as np
import pytest

from darknetpy.cpu.gemm import gemm_exact, gemm_fast, gemm_reference



def _bits(x):
    return np.ascontiguousarray(x).view(np.uint32)


@pytest.mark.parametrize("M,K,N,j0,j1", [
    (7, 5, 40, 3, 37), (16, 27, 1000, 100, 700), (33, 300, 500, 48, 400),
    (64, 129, 777, 0, 1), (8, 64, 230, 17, 230), (40, 1000, 120, 5, 100)])
def test_column_blocks(M, K, N, j0, j1, threads):
    rng = np.random.default_rng(M * N + j0)
    a = rng.standard_normal((M, K), np.float32)
    work = rng.standard_normal((K, N), np.float32)      # im2col workspace
    out = np.full((M, N), np.nan, np.float32)
    b, c = work[:, j0:j1], out[:, j0:j1]
    assert not b.flags.c_contiguous and not c.flags.c_contiguous or j1 - j0 == N
    assert gemm_exact(a, b, c) is c
    assert np.array_equal(_bits(c), _bits(gemm_reference(a, b)))
    assert np.isnan(out[:, :j0]).all() and np.isnan(out[:, j1:]).all()
    fast = np.full((M, N), np.nan, np.float32)
    gemm_fast(a, b, fast[:, j0:j1])
    scale = np.abs(a) @ np.abs(b)
    assert np.max(np.abs(fast[:, j0:j1] - c) / scale) < 1e-4
    assert np.isnan(fast[:, :j0]).all() and np.isnan(fast[:, j1:]).all()


def test_strided_a_and_read_only(threads):
    rng = np.random.default_rng(5)
    big_a = rng.standard_normal((20, 90), np.float32)
    a = big_a[2:19, 10:60]                      # rows 90 floats apart
    big_b = rng.standard_normal((50, 300), np.float32)
    big_b.flags.writeable = False               # weights from np.frombuffer
    b = big_b[:, 7:250]
    out = np.zeros((17, 260), np.float32)
    c = out[:, 1:244]
    gemm_exact(a, b, c)
    assert np.array_equal(_bits(c), _bits(gemm_reference(a, b)))
    assert not out[:, 0].any() and not out[:, 244:].any()


def test_large_column_slice_non_temporal(threads):
    """C of 8 MiB or more (non-temporal stores): a column slice whose rows are
    64-byte aligned (row stride a multiple of 16) and one whose rows are not."""
    rng = np.random.default_rng(8)
    M, K = 1024, 16
    a = rng.standard_normal((M, K), np.float32)
    rows = rng.integers(0, M, 5)
    for ldc, j0, j1 in [(4096, 16, 2096 + 16), (4096, 3, 2500), (4100, 0, 4100)]:
        work = rng.standard_normal((K, ldc), np.float32)
        out = np.full((M, ldc), np.nan, np.float32)
        c = out[:, j0:j1]
        gemm_exact(a, work[:, j0:j1], c)
        want = gemm_reference(a[rows], work[:, j0:j1])
        assert np.array_equal(_bits(c[rows]), _bits(want))
        assert np.isnan(out[:, :j0]).all() and np.isnan(out[:, j1:]).all()


def test_rejects_bad_strides():
    a = np.ones((4, 6), np.float32)
    b = np.ones((6, 10), np.float32)
    with pytest.raises(TypeError):
        gemm_exact(a, np.ones((10, 6), np.float32).T, np.empty((4, 10), np.float32))
    with pytest.raises(TypeError):
        gemm_exact(a, b, np.empty((4, 20), np.float32)[:, ::2])
    with pytest.raises(TypeError):      # overlapping rows
        c = np.lib.stride_tricks.as_strided(np.empty(64, np.float32), (4, 10), (16, 4))
        gemm_exact(a, b, c)
