"""pack_a: A packed once (a layer's weights) and given to gemm_exact / gemm_fast
in place of a -- the same bits as with the plain matrix, on every path."""
import numpy as np
import pytest
from numba import njit

from darknetpy.cpu import gemm
from darknetpy.cpu.gemm import gemm_exact, gemm_fast, gemm_reference, pack_a



def _bits(x):
    return np.ascontiguousarray(x).view(np.uint32)


@pytest.mark.parametrize("M,K,N,hint", [
    (7, 5, 40, None), (17, 300, 97, 97), (33, 600, 500, 361), (64, 27, 1000, 5000),
    (1024, 40, 60, None), (9, 1100, 400, 16)])
def test_packed_same_bits(M, K, N, hint, threads):
    rng = np.random.default_rng(M + K + N)
    a = rng.standard_normal((M, K), np.float32)
    a.flags.writeable = False                       # weights from np.frombuffer
    b = rng.standard_normal((K, N), np.float32)
    packed = pack_a(a, hint)
    assert packed.shape == (M, K)
    want = gemm_reference(a, b)
    for _ in range(2):                              # packed A is only read
        c = np.full((M, N), np.nan, np.float32)
        assert gemm_exact(packed, b, c) is c
        assert np.array_equal(_bits(c), _bits(want))
    fast = gemm_fast(packed, b, np.empty((M, N), np.float32))
    assert np.array_equal(_bits(fast), _bits(gemm_fast(a, b, np.empty((M, N), np.float32))))


def test_packed_column_blocks_from_numba():
    """The convolution's use: one packed A, column blocks of B into column
    slices of C, from compiled code."""
    rng = np.random.default_rng(4)
    M, K, N, nb = 40, 150, 1000, 384
    a = rng.standard_normal((M, K), np.float32)
    b = rng.standard_normal((K, N), np.float32)
    packed = pack_a(a, nb)

    @njit
    def blocks(ap, kcs, bf, cf):
        for j0 in range(0, N, nb):
            w = min(nb, N - j0)
            gemm.gemm_serial_packed((None, ap, K, bf[j0:], N, cf[j0:], N, M, K, w, False), ap, kcs)

    c = np.full((M, N), np.nan, np.float32)
    blocks(packed.ap, packed.kcs, b.reshape(-1), c.reshape(-1))
    assert np.array_equal(_bits(c), _bits(gemm_reference(a, b)))


def test_packed_checks():
    packed = pack_a(np.ones((4, 6), np.float32))
    with pytest.raises(ValueError):
        gemm_exact(packed, np.ones((5, 3), np.float32), np.empty((4, 3), np.float32))
    with pytest.raises(TypeError):
        pack_a(np.ones((4, 6), np.float64))
    c = np.ones((4, 3), np.float32)
    gemm_exact(pack_a(np.ones((4, 0), np.float32)), np.ones((0, 3), np.float32), c)
    assert not c.any()
