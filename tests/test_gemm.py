"""The convolution GEMM kernels: bit identity of gemm_exact with Darknet's
gemm_nn arithmetic, absence of FMA in the compiled kernel, gemm_fast."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import numba
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st
from hypothesis.extra.numpy import arrays
from numba import njit

from darknetpy.cpu import gemm, gemm_blocking, gemm_kernels
from darknetpy.cpu.gemm import gemm_exact, gemm_fast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMA = re.compile(r"\bv?f(n)?m(add|sub)[a-z0-9]*\b", re.I)


def reference(a, b):
    """Darknet's gemm_nn (ALPHA=1, C zeroed): acc = +0.0f, then for k in
    order acc = acc + a[i,k]*b[k,j], each operation rounded to float32."""
    return reference_from(np.zeros((a.shape[0], b.shape[1]), np.float32), a, b)


def reference_from(c0, a, b):
    """The same, continuing from the values c0 (a later chunk of k)."""
    acc = c0.copy()
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for k in range(a.shape[1]):
            acc = (acc + (a[:, k:k + 1] * b[k:k + 1, :]).astype(np.float32)).astype(np.float32)
    return acc


def assert_same_bits(c, r):
    """Bit identity, except that any NaN matches any NaN (C fixes NaN-ness,
    not payloads)."""
    assert c.shape == r.shape and c.dtype == r.dtype == np.float32
    cn, rn = np.isnan(c), np.isnan(r)
    assert np.array_equal(cn, rn), "NaN positions differ"
    cb, rb = c.view(np.uint32)[~cn], r.view(np.uint32)[~rn]
    bad = np.flatnonzero(cb != rb)
    assert bad.size == 0, "%d of %d outputs differ, first %r vs %r" % (
        bad.size, cb.size, c[~cn][bad[0]], r[~rn][bad[0]])


def run_exact(a, b):
    c = np.full((a.shape[0], b.shape[1]), np.nan, np.float32)   # must be overwritten
    out = gemm_exact(a, b, c)
    assert out is c
    return c


def rand(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)



SHAPES = [
    (1, 1, 1), (1, 1, 17), (1, 7, 1), (7, 3, 5), (2, 5, 3),
    (8, 16, 48), (9, 17, 49), (13, 37, 101), (16, 255, 47), (17, 257, 97),
    (8, 513, 96), (24, 300, 385), (31, 1000, 63), (5, 2049, 33), (3, 3001, 20),
    (9, 20, 800), (40, 64, 1), (1, 64, 500), (33, 129, 769), (64, 27, 16),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_exact_random_shapes(shape, threads):
    M, K, N = shape
    rng = np.random.default_rng(M * 10007 + K * 101 + N)
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    assert_same_bits(run_exact(a, b), reference(a, b))


@pytest.mark.parametrize("shape", [(7, 3, 5), (13, 2, 9), (20, 5, 30)], ids=lambda s: "x".join(map(str, s)))
def test_row_panels_with_a_shared_packed_a(shape, threads):
    """A k chunk rounded up past K (K < 8) with several row panels: the threads pack A into
    one shared buffer, each panel at its own place. They once all packed at offset 0 (a
    race: one panel's rows computed with another's A), so each product runs 20 times."""
    M, K, N = shape
    rng = np.random.default_rng(M + K + N)
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    want = reference(a, b)
    for _ in range(20):
        assert_same_bits(run_exact(a, b), want)
        fast = gemm.gemm_fast(a, b, np.full((M, N), np.nan, np.float32))
        np.testing.assert_allclose(fast, want, rtol=1e-5, atol=1e-5)


TILED = [(22 * gemm.MR - 2, 300, 3 * gemm.NR - 5), (17 * gemm.MR - 1, 64, 2 * gemm.NR - 3)]


@pytest.mark.parametrize("shape", TILED, ids=lambda s: "x".join(map(str, s)))
def test_tiles_of_c(shape, threads):
    """Too few column and row units for 2 threads: the column units are cut into row
    groups (tiles of C), every tile's sums in the same k order; the same bits as the
    plain loop, with A packed ahead (a layer's weights) and packed in the call."""
    M, K, N = shape
    by_cols, cols, rows, _ = gemm_blocking.work_units(M, N, 2, K)
    assert by_cols and cols > 1 and rows > 1
    rng = np.random.default_rng(M + K + N)
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    want = reference(a, b)
    for _ in range(3):
        assert_same_bits(run_exact(a, b), want)
        assert_same_bits(run_exact(gemm.pack_a(a, N), b), want)


# The real layer shapes (M filters, K = c*size*size, N = out_h*out_w), with
# N (and for the largest K, M) scaled down to keep the reference fast.
REAL = [
    (32, 27, 5776),      # yolov2-608 conv0, N / 64
    (64, 288, 1444),     # conv2, N / 64
    (128, 576, 361),     # conv4, N / 64
    (64, 128, 361),      # conv5 (1x1)
    (256, 1152, 90),     # conv10, N / 64
    (64, 2304, 361),     # conv14, M / 8, N / 4
    (32, 4608, 361),     # conv18, M / 32
    (16, 12800, 19),     # conv29 route, M / 64, N / 19
    (425, 1024, 361),    # conv30 detection, full size
    (32, 27, 4096),      # darknet19-256 conv0, N / 16
    (1000, 1024, 64),    # darknet19-256 conv18, full size
]


def test_whole_products_take_longer_k_chunks():
    """The shapes above include whole products whose B is one column block, which
    take _chunk_whole's longer k chunks, still several of them (so the tests above
    check the bits of that path too); column blocks and wide B keep _chunk's."""
    for K, N in [(4608, 361), (12800, 19), (2304, 361)]:
        assert gemm_blocking.chunk(K, N) < gemm_blocking.chunk_whole(K, N) < K
    for K, N in [(8001, 20), (6001, 33), (1024, 361)]:
        assert gemm_blocking.chunk(K, N) < K <= gemm_blocking.chunk_whole(K, N)
    assert gemm_blocking.chunk_whole(1152, 5776) == gemm_blocking.chunk(1152, 5776)


@pytest.mark.parametrize("shape", REAL, ids=lambda s: "x".join(map(str, s)))
def test_exact_layer_shapes(shape, threads):
    M, K, N = shape
    rng = np.random.default_rng(K)
    # weights small, inputs like activations (some exact zeros, as after ReLU)
    a = rand(rng, (M, K), 0.05)
    b = np.maximum(rand(rng, (K, N)), 0).astype(np.float32)
    assert_same_bits(run_exact(a, b), reference(a, b))


@pytest.mark.parametrize("M,K,N,packed,splits", [
    (70, 700, 49, True, ()), (70, 700, 52, True, (300,)), (131, 300, 100, True, ()),
    (45, 300, 775, False, ()), (45, 300, 775, False, (100,)), (8, 64, 3, True, ()),
    (1, 17, 391, False, ())])
def test_tail_columns(M, K, N, packed, splits, threads):
    """Columns past whole vectors (1 to 8 of them) go to the column kernels, which
    must add in the same order: several k chunks (pack_a's chunk for wide B), more and
    fewer panels than a call takes, and sums continued from C (accumulate)."""
    assert 0 < gemm_blocking.tail_width(N, False) == N % gemm.NR % gemm_kernels.VW
    assert gemm_blocking.tail_width(N, True) == 0
    rng = np.random.default_rng(M + K + N)
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    c = np.full((M, N), np.nan, np.float32)
    bounds = (0, *splits, K)
    for k0, k1 in zip(bounds, bounds[1:]):
        part = a[:, k0:k1]
        gemm_exact(gemm.pack_a(part, 5000) if packed else part, b[k0:k1], c, accumulate=k0 > 0)
    assert_same_bits(c, reference(a, b))
    if K == 700:                                    # several k chunks in one call
        assert gemm.pack_a(a, 5000).kcs < K


@pytest.mark.parametrize("shape,splits", [((16, 700, 361), (256, 512)), ((9, 100, 2100), (1, 37, 99)),
                                          ((40, 64, 65536 + 5), (16,))],
                         ids=["narrow", "uneven", "large-c"])
def test_exact_accumulate_over_k_chunks(shape, splits, threads):
    """A product split at k = splits, each chunk added to the last one's sums
    (accumulate=True), has the bits of the whole product: Darknet's sequential sum
    goes on where it stopped. The large C takes the non-temporal store path."""
    M, K, N = shape
    rng = np.random.default_rng(K + N)
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    whole = gemm_exact(a, b, np.empty((M, N), np.float32))
    c = np.full((M, N), np.nan, np.float32)
    bounds = (0, *splits, K)
    for k0, k1 in zip(bounds, bounds[1:]):
        gemm_exact(a[:, k0:k1], b[k0:k1], c, accumulate=k0 > 0)
    assert_same_bits(c, whole)
    assert_same_bits(gemm_exact(a[:, :0], b[:0], c.copy(), accumulate=True), whole)


@pytest.mark.parametrize("offset", [0, 1, 6, 12])
@pytest.mark.parametrize("N", [65536 + 16, 65536 + 5])
def test_exact_large_c_any_alignment(offset, N, threads):
    """C big enough for the aligned, non-temporal store path, placed at
    every 16-byte phase of a cache line (and one 4-byte phase); rows all
    aligned alike (N % 16 == 0) or not."""
    M, K = 32, 27
    rng = np.random.default_rng(offset)
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    raw = np.full(M * N + 64, np.nan, np.float32)
    base = ((-raw.ctypes.data) % 64) // 4
    c = raw[base + offset:base + offset + M * N].reshape(M, N)
    assert gemm_exact(a, b, c) is c
    assert_same_bits(c, reference(a, b))
    assert np.isnan(raw[:base + offset]).all() and np.isnan(raw[base + offset + M * N:]).all()


def test_exact_signed_zeros(threads):
    """acc starts at +0.0f: sums of -0.0 products are +0.0, and the order of
    additions shows through when products underflow."""
    M, K, N = 11, 37, 70
    rng = np.random.default_rng(5)
    a = np.where(rng.random((M, K)) < 0.5, -0.0, 0.0).astype(np.float32)
    b = np.where(rng.random((K, N)) < 0.5, 1.0, -1.0).astype(np.float32)
    c = run_exact(a, b)
    assert_same_bits(c, reference(a, b))
    assert not np.signbit(c).any()              # +0.0 + (-0.0) = +0.0
    # products that underflow to -0.0 and tiny (subnormal) products
    a = (rng.choice([-1e-30, 1e-30, -1e-20, 0.0, -0.0], (M, K))).astype(np.float32)
    b = (rng.choice([1e-30, -1e-25, 1e-20, -0.0], (K, N))).astype(np.float32)
    r = reference(a, b)
    assert (r != 0).any() and (r == 0).any()
    assert_same_bits(run_exact(a, b), r)
    # a single k: the result is exactly +0.0 + a*b
    a1, b1 = np.float32([[-0.0], [-2.0]]), np.float32([[3.0, -0.0, 0.0]])
    c1 = run_exact(a1, b1)
    assert c1.view(np.uint32).tolist() == reference(a1, b1).view(np.uint32).tolist()
    assert c1[1, 0] == -6.0 and not np.signbit(c1[c1 == 0]).any()


def test_exact_inf_nan(threads):
    M, K, N = 19, 45, 131
    rng = np.random.default_rng(7)
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    a[3, 5] = np.inf
    a[4, 6] = -np.inf
    a[5, :] = 0.0
    a[5, 7] = np.nan
    b[5, 10] = 0.0          # inf * 0 = nan in row 3, column 10
    b[6, 20] = np.inf       # -inf * inf, and inf in other rows
    b[9, :] = np.inf
    b[9, 50] = -np.inf
    a[10, 9] = 0.0          # 0 * inf = nan
    b[30, 77] = np.nan
    b[31, 100] = 3e38
    a[12, 31] = 10.0        # overflow to inf
    r = reference(a, b)
    assert np.isnan(r).any() and np.isinf(r).any()
    assert_same_bits(run_exact(a, b), r)


def flush(x):
    """FTZ/DAZ on float32 values: subnormals become zero of the same sign."""
    x = np.asarray(x, np.float32)
    return np.where(np.abs(x) < np.finfo(np.float32).tiny, np.copysign(np.float32(0), x), x).astype(np.float32)


def reference_ftz(a, b):
    """Darknet's gemm_nn as the stock -Ofast build runs it: subnormal inputs read as
    zero (DAZ), subnormal products and sums written as zero (FTZ)."""
    a, b = flush(a), flush(b)
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for k in range(a.shape[1]):
            acc = flush(acc + flush(a[:, k:k + 1] * b[k:k + 1, :]))
    return acc


@pytest.mark.parametrize("M,K,N", [(9, 40, 50), (40, 300, 500), (17, 33, 5)])
def test_exact_ftz_daz(M, K, N, threads):
    """With ftz the product runs as the stock build's does, in every thread: subnormal
    inputs count as zero and subnormal products and sums become zero; without, it keeps
    the subnormals (the -O2 build). The data makes the two differ."""
    rng = np.random.default_rng(M + K)
    tiny = np.finfo(np.float32).tiny
    a, b = rand(rng, (M, K)), rand(rng, (K, N))
    a[:M // 2] *= np.float32(1e-20)               # these rows times these columns:
    b[:, :N // 2] *= np.float32(1e-19)            # products around 1e-39, subnormal
    a[:, 0] = rng.uniform(0.1, 0.9, M).astype(np.float32) * tiny   # subnormal inputs
    b[1, :] = rng.uniform(0.1, 0.9, N).astype(np.float32) * tiny
    want = reference_ftz(a, b)
    differ = want.view(np.uint32) != reference(a, b).view(np.uint32)
    assert differ[:M // 2, :N // 2].mean() > 0.5 and differ.mean() < 0.9
    assert_same_bits(gemm_exact(a, b, np.empty((M, N), np.float32), ftz=True), want)
    assert_same_bits(gemm_exact(gemm.pack_a(a), b, np.empty((M, N), np.float32), ftz=True), want)
    assert_same_bits(gemm_exact(a, b, np.empty((M, N), np.float32)), reference(a, b))


def test_exact_large_values_rounding(threads):
    """Cancellation-heavy sums, where any reordering or FMA would show."""
    M, K, N = 10, 300, 50
    rng = np.random.default_rng(11)
    a = (rand(rng, (M, K)) * np.float32(1e3)).astype(np.float32)
    b = rand(rng, (K, N))
    b[::2] *= np.float32(1e4)
    b[1::2] /= np.float32(1e3)
    assert_same_bits(run_exact(a, b), reference(a, b))


def test_exact_writes_views_and_checks():
    rng = np.random.default_rng(3)
    big = np.zeros((30, 40), np.float32)
    a, b = rand(rng, (6, 9)), rand(rng, (9, 40))
    gemm_exact(a, b, big[10:16])                # a row block of C is C-contiguous
    assert_same_bits(big[10:16], reference(a, b))
    assert not big[:10].any() and not big[16:].any()
    with pytest.raises(TypeError):
        gemm_exact(a.astype(np.float64), b, big[10:16])
    with pytest.raises(TypeError):
        gemm_exact(a, b, np.zeros((40, 6), np.float32).T)
    with pytest.raises(ValueError):
        gemm_exact(a, b[:8], big[10:16])
    # read-only inputs (weights from np.frombuffer) run the same compiled code
    ra, rb = a.copy(), b.copy()
    ra.flags.writeable = rb.flags.writeable = False
    nsig = len(gemm_blocking.gemm_serial_entry.signatures)
    c = np.empty((6, 40), np.float32)
    gemm_exact(ra, rb, c)
    assert_same_bits(c, reference(a, b))
    assert len(gemm_blocking.gemm_serial_entry.signatures) == nsig
    ro = np.empty((6, 40), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        gemm_exact(a, b, ro)
    c = np.ones((6, 40), np.float32)
    gemm_exact(np.zeros((6, 0), np.float32), np.zeros((0, 40), np.float32), c)
    assert not c.any() and not np.signbit(c).any()


SPECIAL = [float(np.float32(x)) for x in
           (0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e-30, -1e-25, 1e30, -3e38, 1e-45,
            float("inf"), float("-inf"), float("nan"))]
_elem = st.one_of(st.sampled_from(SPECIAL),
                  st.floats(-1e4, 1e4, width=32, allow_subnormal=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 20), st.integers(1, 40), st.integers(1, 70), st.data())
def test_exact_hypothesis(M, K, N, data):
    a = data.draw(arrays(np.float32, (M, K), elements=_elem))
    b = data.draw(arrays(np.float32, (K, N), elements=_elem))
    assert_same_bits(run_exact(a, b), reference(a, b))


def test_fast_close_to_exact():
    rng = np.random.default_rng(2)
    a, b = rand(rng, (70, 300)), rand(rng, (300, 333))
    exact = run_exact(a, b)
    fast = np.empty_like(exact)
    assert gemm_fast(a, b, fast) is fast
    scale = np.abs(a) @ np.abs(b)           # bound on |sum| of the products
    assert np.max(np.abs(fast - exact) / scale) < 1e-4


# ---------------------------------------------------------------------------
# The compiled code: no fused multiply-add anywhere in the exact kernel.

def _kernel_driver(use_asm, fma=None):
    """A fresh (uncached) function around the micro-kernel variants
    (fma None: the exact kernels; True: gemm_fast's)."""
    mr, nv = gemm.MR, gemm_kernels.NV
    kf = gemm_kernels.make_kernel(mr, nv, True, use_asm)     # packs B while computing
    kp = gemm_kernels.make_kernel(mr, nv, False, use_asm)    # packed B
    k1 = gemm_kernels.make_kernel(mr, 1, False, use_asm)     # packed B, one vector of columns
    ka = gemm_kernels.make_kernel(mr, nv, False, use_asm, fused_a=True)   # packs A

    @njit(cache=False)
    def drive(which, kc, ap, bp, b, c, ldc, first, a):
        fl = 1 if first else 0
        n, k = b.shape[1], a.shape[1]
        if which == 0:
            kf(fma, kc, ap, 0, 0, bp, 0, c, 0, ldc, fl, b, 0, n, 0, a, 0, k)
        elif which == 1:
            kp(fma, kc, ap, 0, 0, bp, 0, c, 0, ldc, fl, b, 0, n, 0, a, 0, k)
        elif which == 2:
            k1(fma, kc, ap, 0, 0, bp, 0, c, 0, ldc, fl, b, 0, n, 0, a, 0, k)
        else:
            ka(fma, kc, ap, 0, 0, bp, 0, c, 0, ldc, fl, b, 0, n, 0, a, 0, k)

    return drive


@pytest.mark.parametrize("use_asm", [True, False], ids=["asm", "llvm-ir"])
def test_micro_kernel_bits_and_no_fma(use_asm):
    if use_asm and not gemm_kernels.USE_ASM:
        pytest.skip("host without AVX-512: the asm kernel is not used")
    mr, nr = gemm.MR, gemm.NR
    kc = 300
    rng = np.random.default_rng(9)
    a = rand(rng, (mr, kc + 7))             # lda != kc
    b = rand(rng, (kc, nr + 5))             # ldb != NR
    ap = np.ascontiguousarray(a[:, :kc].T).reshape(-1)   # k-major A panel
    drive = _kernel_driver(use_asm)
    # fused: C from +0.0, B read from b and packed into bp
    bp = np.zeros(kc * nr, np.float32)
    c = np.full((mr, nr + 3), np.nan, np.float32)   # ldc != NR
    drive(0, kc, ap, bp, b, c, nr + 3, True, a)
    assert np.array_equal(bp.reshape(kc, nr), b[:, :nr])
    assert_same_bits(c[:, :nr], reference(a[:, :kc], b[:, :nr]))
    assert np.isnan(c[:, nr:]).all()
    # packed, continuing from the values in C
    c0 = rand(rng, (mr, nr))
    c = c0.copy()
    drive(1, kc, ap, bp, b, c, nr, False, a)
    assert_same_bits(c, reference_from(c0, a[:, :kc], b[:, :nr]))
    # one-vector variant (16 columns with AVX-512, 8 without)
    vw = gemm_kernels.VW
    bp1 = np.ascontiguousarray(b[:, :vw]).reshape(-1)
    c = np.empty((mr, vw), np.float32)
    drive(2, kc, ap, bp1, b, c, vw, True, a)
    assert_same_bits(c, reference(a[:, :kc], b[:, :vw]))
    # A read from its rows and packed into ap
    ap2 = np.zeros_like(ap)
    c = np.empty((mr, nr), np.float32)
    drive(3, kc, ap2, bp, b, c, nr, True, a)
    assert np.array_equal(ap2, ap)
    assert_same_bits(c, reference(a[:, :kc], b[:, :nr]))
    asm = "\n".join(drive.inspect_asm().values())
    assert not FMA.search(asm), FMA.search(asm).group(0)
    assert re.search(r"\bv(mul|add)ps\b", asm)
    if use_asm:
        assert re.search(r"vmulps\s+[^\n]*\{1to16\}, %zmm", asm)
        assert re.search(r"vaddps\s+%zmm", asm)


def test_production_code_has_no_fma(tmp_path):
    """Compile the real entry points from scratch (empty cache dir) in a
    subprocess and scan their machine code."""
    code = textwrap.dedent("""
        import re, sys, numpy as np, numba
        from darknetpy.cpu import gemm_blocking, gemm_kernels
        a = np.ones((9, 17), np.float32); b = np.ones((17, 50), np.float32)
        c = np.empty((9, 50), np.float32)
        gemm_blocking.gemm_serial((None, a.reshape(-1), 17, b.reshape(-1), 50, c.reshape(-1), 50,
                                   9, 17, 50, False))
        asm = ""
        for f in (gemm_blocking.gemm_serial, gemm_blocking.gemm_block, gemm_kernels.kernel,
                  gemm_blocking.pack_a_panels):
            for s in f.inspect_asm().values():
                asm += s
        fma = re.findall(r"\\bv?f(?:n)?m(?:add|sub)[a-z0-9]*\\b", asm, re.I)
        print("FMA", len(fma), "ZMM", asm.count("%zmm"), "YMM", asm.count("%ymm"),
              "MULPS", len(re.findall(r"\\bvmulps\\b", asm)), "USE_ASM", gemm_kernels.USE_ASM)
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    m = re.search(r"FMA (\d+) ZMM (\d+) YMM (\d+) MULPS (\d+) USE_ASM (\w+)", out.stdout)
    assert m, out.stdout
    print(out.stdout)
    fma, zmm, ymm, mulps = map(int, m.groups()[:4])
    assert fma == 0
    assert mulps > 0
    assert zmm > 0 or ymm > 0


def test_cached_in_second_process():
    """A new process finds every compiled entry point (exact and fast) in numba's cache."""
    rng = np.random.default_rng(1)
    a, b = rand(rng, (200, 170)), rand(rng, (170, 500))
    for nt in (1, 2):                           # fills the cache if empty
        if nt <= numba.config.NUMBA_NUM_THREADS:
            old = numba.get_num_threads()
            numba.set_num_threads(nt)
            run_exact(a, b)
            gemm_fast(a, b, np.empty((200, 500), np.float32))
            numba.set_num_threads(old)
    code = textwrap.dedent("""
        import time, numpy as np, numba
        t = time.perf_counter()
        from darknetpy.cpu import gemm, gemm_blocking
        a = np.ones((200, 170), np.float32); b = np.ones((170, 500), np.float32)
        c = np.empty((200, 500), np.float32)
        for nt in (1, 2):
            if nt <= numba.config.NUMBA_NUM_THREADS:
                numba.set_num_threads(nt)
                gemm.gemm_exact(a, b, c)
                gemm.gemm_fast(a, b, c)
        entries = (gemm_blocking.gemm_serial_entry, gemm_blocking.gemm_parallel)
        misses = sum(len(f.stats.cache_misses) for f in entries)
        hits = sum(len(f.stats.cache_hits) for f in entries)
        print("MISSES", misses, "HITS", hits, "SECONDS", time.perf_counter() - t)
    """)
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    m = re.search(r"MISSES (\d+) HITS (\d+)", out.stdout)
    assert m, out.stdout
    assert int(m.group(1)) == 0 and int(m.group(2)) >= 2, out.stdout


def test_portable_llvm_ir_path():
    """The kernels without inline assembly (used where numba's target lacks
    AVX-512): here compiled for this CPU minus AVX-512 (so AVX2 + FMA are
    available to LLVM), plain vector fmul/fadd, same bits, no FMA."""
    import llvmlite.binding as llb
    feats = llb.get_host_cpu_features()
    if not feats.get("avx2"):
        pytest.skip("host without AVX2")
    for name in list(feats):
        if name.startswith("avx512") or name.startswith("amx"):
            feats[name] = False
    code = textwrap.dedent("""
        import re, numpy as np, numba
        from darknetpy.cpu import gemm, gemm_blocking, gemm_kernels
        assert not gemm_kernels.USE_ASM
        rng = np.random.default_rng(4)
        for M, K, N in [(13, 37, 101), (16, 600, 97), (9, 20, 800), (24, 300, 385)]:
            a = rng.standard_normal((M, K), np.float32)
            b = rng.standard_normal((K, N), np.float32)
            b[0, :3] = [np.inf, np.nan, -0.0]
            c = np.empty((M, N), np.float32)
            for nt in (1, 2):
                numba.set_num_threads(min(nt, numba.config.NUMBA_NUM_THREADS))
                gemm.PAR_MIN_FLOPS = 0
                gemm.gemm_exact(a, b, c)
                r = gemm.gemm_reference(a, b)
                same = (c.view(np.uint32) == r.view(np.uint32)) | (np.isnan(c) & np.isnan(r))
                assert same.all(), (M, K, N, nt)
        asm = "".join(gemm_blocking.gemm_block.inspect_asm().values())
        if asm:     # compiled in this run (not loaded from the cache)
            assert "vmulps" in asm and "%ymm" in asm and "%zmm" not in asm
            assert not re.search(r"\\bv?f(n)?m(add|sub)", asm)
        print("OK", len(asm))
    """)
    env = dict(os.environ, NUMBA_CPU_FEATURES=feats.flatten(), PYTHONPATH=ROOT,
               NUMBA_CACHE_DIR=os.path.join(ROOT, ".cache", "numba-test-noavx512"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]
