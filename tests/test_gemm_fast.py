"""gemm_fast: the blocked kernel with fused multiply-adds -- close to the exact
product (not bit-identical), on every path of the driver."""
import re

import numpy as np
import numba
import pytest

from darknetpy.cpu import gemm, gemm_kernels
from darknetpy.cpu.gemm import gemm_exact, gemm_fast

from test_gemm import SHAPES, _kernel_driver, rand, reference

FMA = re.compile(r"\bvfmadd231ps\b")



def assert_close(fast, a, b, exact):
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    err = np.abs(fast.astype(np.float64) - exact) / np.maximum(scale, 1e-30)
    assert np.max(err) < 1e-4


@pytest.mark.parametrize("shape", SHAPES + [(256, 1152, 700), (1024, 300, 50)],
                         ids=lambda s: "x".join(map(str, s)))
def test_fast_close_to_exact(shape, threads):
    M, K, N = shape
    rng = np.random.default_rng(M * 7 + K + N)
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    fast = np.full((M, N), np.nan, np.float32)
    assert gemm_fast(a, b, fast) is fast
    exact = gemm_exact(a, b, np.empty((M, N), np.float32))
    assert_close(fast, a, b, exact)


def test_fast_differs_from_exact():
    """The fused multiply-add rounds once: over many products some outputs
    differ from the exact (twice-rounded) result."""
    rng = np.random.default_rng(12)
    a, b = rand(rng, (16, 500)), rand(rng, (500, 96))
    fast = gemm_fast(a, b, np.empty((16, 96), np.float32))
    exact = gemm_exact(a, b, np.empty((16, 96), np.float32))
    assert not np.array_equal(fast, exact)
    assert_close(fast, a, b, exact)


@pytest.mark.parametrize("use_asm", [True, False], ids=["asm", "llvm-ir"])
def test_fast_micro_kernel_uses_fma(use_asm):
    if use_asm and not gemm_kernels.USE_ASM:
        pytest.skip("host without AVX-512: the asm kernel is not used")
    mr, nr, kc = gemm.MR, gemm.NR, 200
    rng = np.random.default_rng(3)
    a, b = rand(rng, (mr, kc)), rand(rng, (kc, nr))
    ap = np.ascontiguousarray(a.T).reshape(-1)
    drive = _kernel_driver(use_asm, fma=True)
    bp = np.zeros(kc * nr, np.float32)
    c = np.empty((mr, nr), np.float32)
    drive(0, kc, ap, bp, b, c, nr, True, a)
    assert_close(c, a, b, reference(a, b))
    asm = "\n".join(drive.inspect_asm().values())
    if use_asm or _host_fma():
        assert FMA.search(asm)


def _host_fma():
    """Whether numba compiles for a target with FMA (LLVM then emits it)."""
    import llvmlite.binding as llb
    feats = numba.config.CPU_FEATURES or llb.get_host_cpu_features().flatten()
    return "+fma" in feats.split(",")
