"""Regression: large outputs whose rows are not 64-byte aligned (N % 16 != 0) must not take
the aligned non-temporal store path (yolo9000's 28269 x 289 region conv crashed with SIGSEGV)."""
import numpy as np
import pytest

from darknetpy.cpu.gemm import gemm_exact


@pytest.mark.parametrize("n", [289, 300, 288])
def test_large_output_any_alignment(n):
    m, k = 8192, 64   # C of 9 MB or more: the non-temporal store path
    rng = np.random.default_rng(n)
    a = (rng.standard_normal((m, k), dtype=np.float32) * 0.1)
    b = rng.standard_normal((k, n), dtype=np.float32)
    buf = np.empty(m * n + 16, np.float32)
    rows = rng.integers(0, m, 4)
    want = np.zeros((rows.size, n), np.float32)
    for kk in range(k):
        want = want + a[rows, kk:kk + 1] * b[kk]
    for offset in range(0, 16, 4):
        start = ((offset * 4 - buf.ctypes.data % 64) % 64) // 4
        c = buf[start:start + m * n].reshape(m, n)
        assert c.ctypes.data % 64 == offset * 4
        gemm_exact(a, b, c)
        assert c[rows].tobytes() == want.tobytes()
