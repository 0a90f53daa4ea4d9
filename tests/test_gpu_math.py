"""darknet_math.cuh against the x86 machine it imitates: glibc's libm, libmvec's expf lane
(through the CPU backend's verified emulation) and the MXCSR's FTZ/DAZ, bit for bit.

The header is compiled for the host by g++ (-ffp-contract=off, as the GPU emulator does)
into a small library. Its checks call libm's exp/expf, the functions that ctypes and the
CPU backend call, with MXCSR FTZ+DAZ set in each thread for the ftz runs, while the
header's functions always run with the default MXCSR (so hardware flushing cannot hide an
error in the explicit one).
"""
import ctypes
import math
import os
import re
import shutil
import subprocess
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest
from numba import njit, prange

from darknetpy.cpu import fpenv
from darknetpy.cpu.softmax import vector_expf

EXHAUSTIVE = pytest.mark.skipif(os.environ.get("DARKNETPY_EXHAUSTIVE") != "1", reason=(
    "the sweeps over all 2^32 floats take about 20 minutes: DARKNETPY_EXHAUSTIVE=1 runs them"))

HEADER_DIR = os.path.join(os.path.dirname(__file__), "..", "darknetpy", "gpu")
HEADER = os.path.join(HEADER_DIR, "darknet_math.cuh")

HARNESS = r"""
#include "darknet_math.cuh"
#include <math.h>
#include <xmmintrin.h>

#define BLOCK 1024

struct Mxcsr {
    unsigned int old;
    explicit Mxcsr(int ftz) : old(_mm_getcsr()) { _mm_setcsr(ftz ? old | 0x8040u : old & ~0x8040u); }
    ~Mxcsr() { _mm_setcsr(old); }
};

static double ref_logistic(double x) { return 1.0 / (1.0 + exp(-x)); }

extern "C" double h_exp(double x, int ftz) { return dn_exp(x, ftz); }
extern "C" float h_expf(float x, int ftz) { return dn_expf(x, ftz); }
extern "C" float h_vector_expf(float x, int ftz) { return dn_vector_expf(x, ftz); }
extern "C" float h_logistic(float x, int ftz) { return dn_logistic(x, ftz); }

// dn_exp(x) against exp(x) for doubles; returns the mismatches, *bad = one of them.
extern "C" long exp_doubles(const double* x, long n, int ftz, double* bad)
{
    long count = 0;
    #pragma omp parallel for reduction(+:count) schedule(dynamic, 16)
    for (long b = 0; b < n; b += BLOCK) {
        long m = n - b < BLOCK ? n - b : BLOCK;
        volatile double mine[BLOCK];
        for (long i = 0; i < m; i++)
            mine[i] = dn_exp(x[b + i], ftz);
        Mxcsr env(ftz);
        for (long i = 0; i < m; i++) {
            volatile double ref = exp(x[b + i]);
            if (dn_bits((double)mine[i]) != dn_bits((double)ref)) {
                count++;
                *bad = x[b + i];
            }
        }
    }
    return count;
}

// Floats with bit patterns start, start+stride, ... (count of them): dn_exp of the float
// promoted to double against exp, and dn_logistic against C's logistic.
extern "C" long exp_floats(unsigned long long start, unsigned long long count, unsigned long long stride,
                           int ftz, float* bad)
{
    long wrong = 0;
    #pragma omp parallel for reduction(+:wrong) schedule(dynamic, 64)
    for (unsigned long long b = 0; b < count; b += BLOCK) {
        unsigned long long m = count - b < BLOCK ? count - b : BLOCK;
        volatile double mine[BLOCK];
        volatile float mine_l[BLOCK];
        float x[BLOCK];
        for (unsigned long long i = 0; i < m; i++) {
            x[i] = dn_float((unsigned int)(start + (b + i) * stride));
            mine[i] = dn_exp(dn_widen(x[i], ftz), ftz);
            mine_l[i] = dn_logistic(x[i], ftz);
        }
        Mxcsr env(ftz);
        for (unsigned long long i = 0; i < m; i++) {
            volatile float xi = x[i];
            volatile double ref = exp((double)xi);
            volatile float ref_l = (float)ref_logistic((double)xi);
            if (dn_bits((double)mine[i]) != dn_bits((double)ref) || dn_bits((float)mine_l[i]) != dn_bits((float)ref_l)) {
                wrong++;
                *bad = x[i];
            }
        }
    }
    return wrong;
}

extern "C" long expf_floats(unsigned long long start, unsigned long long count, unsigned long long stride,
                            int ftz, float* bad)
{
    long wrong = 0;
    #pragma omp parallel for reduction(+:wrong) schedule(dynamic, 64)
    for (unsigned long long b = 0; b < count; b += BLOCK) {
        unsigned long long m = count - b < BLOCK ? count - b : BLOCK;
        volatile float mine[BLOCK];
        float x[BLOCK];
        for (unsigned long long i = 0; i < m; i++) {
            x[i] = dn_float((unsigned int)(start + (b + i) * stride));
            mine[i] = dn_expf(x[i], ftz);
        }
        Mxcsr env(ftz);
        for (unsigned long long i = 0; i < m; i++) {
            volatile float ref = expf(x[i]);
            if (dn_bits((float)mine[i]) != dn_bits((float)ref)) {
                wrong++;
                *bad = x[i];
            }
        }
    }
    return wrong;
}

// dn_vector_expf against libmvec's _ZGVbN4v_expf itself, four lanes a call.
extern "C" __m128 _ZGVbN4v_expf(__m128);

extern "C" long libmvec_floats(unsigned long long start, unsigned long long count, unsigned long long stride,
                               int ftz, float* bad)
{
    long wrong = 0;
    #pragma omp parallel for reduction(+:wrong) schedule(dynamic, 64)
    for (unsigned long long b = 0; b < count; b += BLOCK) {
        unsigned long long m = count - b < BLOCK ? count - b : BLOCK;
        volatile float mine[BLOCK];
        float x[BLOCK + 3] = {0.0f};
        float ref[BLOCK + 3];
        for (unsigned long long i = 0; i < m; i++) {
            x[i] = dn_float((unsigned int)(start + (b + i) * stride));
            mine[i] = dn_vector_expf(x[i], ftz);
        }
        Mxcsr env(ftz);
        for (unsigned long long i = 0; i < m; i += 4) {
            volatile __m128 v = _mm_loadu_ps(x + i);
            __m128 r = _ZGVbN4v_expf(v);
            _mm_storeu_ps(ref + i, r);
        }
        for (unsigned long long i = 0; i < m; i++) {
            if (dn_bits((float)mine[i]) != dn_bits(ref[i])) {
                wrong++;
                *bad = x[i];
            }
        }
    }
    return wrong;
}

extern "C" void vector_expf_fill(unsigned long long start, unsigned long long count, int ftz, float* out)
{
    #pragma omp parallel for schedule(static)
    for (unsigned long long i = 0; i < count; i++)
        out[i] = dn_vector_expf(dn_float((unsigned int)(start + i)), ftz);
}

// The arithmetic helpers against the x86 instructions: op 0..3 = + - * /, 4 = (float)(a*b)
// in double, 5 = (double)a; float operands. Results pass through volatile memory so that
// no operation moves across an MXCSR change (gcc does not order them otherwise).
static unsigned long long mine_f(float a, float b, int op, int ftz)
{
    switch (op) {
    case 0: return dn_bits(dn_add(a, b, ftz));
    case 1: return dn_bits(dn_sub(a, b, ftz));
    case 2: return dn_bits(dn_mul(a, b, ftz));
    case 3: return dn_bits(dn_div(a, b, ftz));
    case 4: return dn_bits(dn_narrow(dn_mul((double)a, (double)b, false), ftz));
    default: return dn_bits(dn_widen(a, ftz));
    }
}

static unsigned long long x86_f(float a, float b, int op, int ftz)
{
    volatile float x = a, y = b, r;
    volatile double p = (double)a * (double)b, d;
    Mxcsr env(ftz);
    switch (op) {
    case 0: r = x + y; break;
    case 1: r = x - y; break;
    case 2: r = x * y; break;
    case 3: r = x / y; break;
    case 4: r = (float)p; break;
    default: d = (double)x; return dn_bits((double)d);
    }
    return dn_bits((float)r);
}

extern "C" long arith(const float* a, const float* b, long n, int op, int ftz, long* bad)
{
    long wrong = 0;
    for (long i = 0; i < n; i++) {
        volatile unsigned long long mine = mine_f(a[i], b[i], op, ftz);
        if (mine != x86_f(a[i], b[i], op, ftz)) {
            wrong++;
            *bad = i;
        }
    }
    return wrong;
}

// The same for double operands: op 0..3 = + - * /.
static double mine_d(double a, double b, int op, int ftz)
{
    switch (op) {
    case 0: return dn_add(a, b, ftz);
    case 1: return dn_sub(a, b, ftz);
    case 2: return dn_mul(a, b, ftz);
    default: return dn_div(a, b, ftz);
    }
}

static double x86_d(double a, double b, int op, int ftz)
{
    volatile double x = a, y = b, r;
    Mxcsr env(ftz);
    switch (op) {
    case 0: r = x + y; break;
    case 1: r = x - y; break;
    case 2: r = x * y; break;
    default: r = x / y; break;
    }
    return r;
}

extern "C" long darith(const double* a, const double* b, long n, int op, int ftz, long* bad)
{
    long wrong = 0;
    for (long i = 0; i < n; i++) {
        volatile double mine = mine_d(a[i], b[i], op, ftz);
        if (dn_bits((double)mine) != dn_bits(x86_d(a[i], b[i], op, ftz))) {
            wrong++;
            *bad = i;
        }
    }
    return wrong;
}
"""

EXP_EDGES = [
    0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, -2.2250738585072014e-308, 2.0 ** -54,
    -(2.0 ** -54), 2.0 ** -55, 1.0, -1.0, 512.0, -512.0, math.nextafter(512.0, 0), 1024.0, -1024.0,
    math.inf, -math.inf, math.nan, -math.nan, float.fromhex("0x1.62e42fefa39efp+9"),
    float.fromhex("0x1.62e42fefa39fp+9"), -708.3964185322641, -708.4, -709.0, -744.0,
    -745.1332191019411, -745.1332191019412, -746.0, 709.7827128933840, 709.7827128933841, 710.0,
    -1e300, 1e300, -104.0, 89.0, float.fromhex("-0x1.f8cbb2p+5"),
]


def _bits_nan(payload, negative=False):
    return np.array([(0xFFF0000000000000 if negative else 0x7FF0000000000000) | payload],
                    np.uint64).view(np.float64)[0]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    d = tmp_path_factory.mktemp("gpu_math")
    src = d / "harness.cpp"
    src.write_text(HARNESS)
    so = d / "harness.so"
    subprocess.run(["g++", "-O2", "-ffp-contract=off", "-fno-fast-math", "-fno-builtin", "-fopenmp",
                    "-std=c++17", "-shared", "-fPIC", "-I", HEADER_DIR, str(src), "-o", str(so), "-lmvec", "-lm"],
                   check=True)
    h = ctypes.CDLL(str(so))
    u64, i32, f32p = ctypes.c_ulonglong, ctypes.c_int, ctypes.POINTER(ctypes.c_float)
    h.h_exp.restype, h.h_exp.argtypes = ctypes.c_double, [ctypes.c_double, i32]
    for name in ("h_expf", "h_vector_expf", "h_logistic"):
        getattr(h, name).restype = ctypes.c_float
        getattr(h, name).argtypes = [ctypes.c_float, i32]
    h.exp_doubles.restype = ctypes.c_long
    h.exp_doubles.argtypes = [ctypes.c_void_p, ctypes.c_long, i32, ctypes.POINTER(ctypes.c_double)]
    for name in ("exp_floats", "expf_floats", "libmvec_floats"):
        getattr(h, name).restype = ctypes.c_long
        getattr(h, name).argtypes = [u64, u64, u64, i32, f32p]
    h.vector_expf_fill.argtypes = [u64, u64, i32, ctypes.c_void_p]
    for name in ("arith", "darith"):
        getattr(h, name).restype = ctypes.c_long
        getattr(h, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, i32, i32,
                                     ctypes.POINTER(ctypes.c_long)]
    return h


@pytest.fixture(scope="module")
def libm():
    m = ctypes.CDLL("libm.so.6")
    m.exp.restype, m.exp.argtypes = ctypes.c_double, [ctypes.c_double]
    m.expf.restype, m.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return m


def _exp_doubles(lib, x, ftz):
    x = np.ascontiguousarray(x, np.float64)
    bad = ctypes.c_double(0)
    wrong = lib.exp_doubles(x.ctypes.data, x.size, int(ftz), ctypes.byref(bad))
    return wrong, bad.value


def _float_sweep(fn, start, count, stride, ftz):
    bad = ctypes.c_float(0)
    wrong = fn(start, count, stride, int(ftz), ctypes.byref(bad))
    return wrong, bad.value.hex()


def _f32_bits(lo, hi):
    """Bit range [start, end) of the float32 values in [lo, hi] with lo <= 0 <= hi: two spans."""
    pos = int(np.array(hi, np.float32).view(np.uint32)) + 1
    neg = int(np.array(lo, np.float32).view(np.uint32)) - 0x80000000 + 1
    return [(0, pos), (0x80000000, neg)]


def test_edge_cases_through_ctypes_libm(lib, libm):
    """The header's exp/expf/logistic against the libm functions ctypes calls."""
    doubles = EXP_EDGES + [_bits_nan(0x8000000001234), _bits_nan(0x0000000000001, True)]
    for x in doubles:
        mine = np.array(lib.h_exp(x, 0), np.float64).view(np.uint64)
        ref = np.array(libm.exp(x), np.float64).view(np.uint64)
        assert mine == ref, x
    floats = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-40, 1.0, -1.0, 88.0, 88.72283, 88.72284, -87.33655,
                       -103.27893, -103.28, -103.9720840454, -103.973, -104.0, -150.0, 100.0,
                       float.fromhex("-0x1.f8cbb2p+5"), np.inf, -np.inf, np.nan], np.float32)
    for x in floats[~np.isnan(floats)]:  # ctypes passes floats through double: NaNs get quieted
        bits = {}
        for name, value in [("mine", lib.h_expf(float(x), 0)), ("libm", libm.expf(float(x))),
                            ("logistic", lib.h_logistic(float(x), 0)),
                            ("c logistic", 1.0 / (1.0 + libm.exp(-float(x)))),
                            ("vector", lib.h_vector_expf(float(x), 0)), ("cpu vector", _cpu_lane(x))]:
            bits[name] = int(np.array(value, np.float32).view(np.uint32))
        assert bits["mine"] == bits["libm"], x
        assert bits["logistic"] == bits["c logistic"], x
        assert bits["vector"] == bits["cpu vector"], x


@njit(fastmath=False, error_model="numpy")
def _cpu_lane(x):
    return vector_expf(x)


def test_exp_doubles_random_and_edges(lib):
    rng = np.random.default_rng(1)
    x = np.concatenate([
        rng.uniform(-760.0, 720.0, 2_000_000),
        rng.uniform(-1.0, 1.0, 500_000) * 2.0 ** rng.integers(-80, 10, 500_000),
        np.array(EXP_EDGES, np.float64),
        np.array([_bits_nan(0x8000000001234), _bits_nan(1, True)]),
        rng.integers(0, 2 ** 64, 200_000, dtype=np.uint64).view(np.float64),
    ])
    with np.errstate(invalid="ignore"):
        x = np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)])
    for ftz in (False, True):
        assert _exp_doubles(lib, x, ftz) == (0, 0.0)


@pytest.mark.parametrize("ftz", [False, True])
def test_exp_and_logistic_on_floats_sampled(lib, ftz):
    """Every 509th float32 (all exponents, signs, NaN and inf) and every 61st in [-104, 89],
    promoted to double: exp and the logistic."""
    assert _float_sweep(lib.exp_floats, 0, 2 ** 32 // 509 + 1, 509, ftz) == (0, "0x0.0p+0")
    for start, count in _f32_bits(-104.0, 89.0):
        assert _float_sweep(lib.exp_floats, start, count // 61, 61, ftz) == (0, "0x0.0p+0")


@pytest.mark.slow
@EXHAUSTIVE
@pytest.mark.parametrize("ftz", [False, True])
def test_exp_and_logistic_on_all_floats(lib, ftz):
    assert _float_sweep(lib.exp_floats, 0, 2 ** 32, 1, ftz) == (0, "0x0.0p+0")


@pytest.mark.parametrize("ftz", [False, True])
def test_expf_sampled(lib, ftz):
    """Every 509th float32, and every 61st of [-104, 89] (the softmax's range)."""
    assert _float_sweep(lib.expf_floats, 0, 2 ** 32 // 509 + 1, 509, ftz) == (0, "0x0.0p+0")
    for start, count in _f32_bits(-104.0, 89.0):
        assert _float_sweep(lib.expf_floats, start, count // 61, 61, ftz) == (0, "0x0.0p+0")


@pytest.mark.slow
@EXHAUSTIVE
@pytest.mark.parametrize("ftz", [False, True])
def test_expf_all_floats(lib, ftz):
    assert _float_sweep(lib.expf_floats, 0, 2 ** 32, 1, ftz) == (0, "0x0.0p+0")


@pytest.mark.parametrize("ftz", [False, True])
def test_vector_expf_against_libmvec_sampled(lib, ftz):
    """Every 509th float32 and every 61st of [-104, 89] through _ZGVbN4v_expf itself."""
    assert _float_sweep(lib.libmvec_floats, 0, 2 ** 32 // 509 + 1, 509, ftz) == (0, "0x0.0p+0")
    for start, count in _f32_bits(-104.0, 89.0):
        assert _float_sweep(lib.libmvec_floats, start, count // 61, 61, ftz) == (0, "0x0.0p+0")


@pytest.mark.slow
@EXHAUSTIVE
@pytest.mark.parametrize("ftz", [False, True])
def test_vector_expf_against_libmvec_all_floats(lib, ftz):
    assert _float_sweep(lib.libmvec_floats, 0, 2 ** 32, 1, ftz) == (0, "0x0.0p+0")


@njit(parallel=True, fastmath=False, error_model="numpy")
def _cpu_vector_expf(start, count, ftz, out):
    chunk = 1 << 16
    for c in prange((count + chunk - 1) // chunk):
        old = fpenv.enter(ftz)
        for i in range(c * chunk, min(count, (c + 1) * chunk)):
            out[i] = vector_expf(np.uint32(start + i).view(np.float32))
        fpenv.leave(old)


def _vector_expf_mismatches(lib, start, count, ftz):
    mine = np.empty(count, np.float32)
    ref = np.empty(count, np.float32)
    lib.vector_expf_fill(start, count, int(ftz), mine.ctypes.data)
    _cpu_vector_expf(start, count, ftz, ref)
    return int(np.count_nonzero(mine.view(np.uint32) != ref.view(np.uint32)))


@pytest.mark.parametrize("ftz", [False, True])
def test_vector_expf_against_cpu_backend(lib, ftz):
    """Dense spans where the lane and its fallback meet, around 0 and subnormals."""
    starts = [0, 0x80000000, 0x42AEAC4F - (1 << 19), 0xC2AEAC4F - (1 << 19), 0x3F800000, 0xBF800000,
              0xC2A00000, 0xC2C80000]
    for start in starts:
        assert _vector_expf_mismatches(lib, start, 1 << 20, ftz) == 0, hex(start)


@pytest.mark.slow
@EXHAUSTIVE
@pytest.mark.parametrize("ftz", [False, True])
def test_vector_expf_all_floats(lib, ftz):
    chunk = 1 << 25
    wrong = sum(_vector_expf_mismatches(lib, s, chunk, ftz) for s in range(0, 2 ** 32, chunk))
    assert wrong == 0


def _operands(rng, n):
    """Random float32 pairs weighted towards underflow, the FLT_MIN band, inf and NaN payloads."""
    def pick():
        kind = rng.integers(0, 6, n)
        bits = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32)
        small = (rng.integers(0x00000001, 0x0A000000, n) | (rng.integers(0, 2, n) << 31)).astype(np.uint32)
        near_one = (rng.integers(0x3F000000, 0x40000000, n) | (rng.integers(0, 2, n) << 31)).astype(np.uint32)
        mid = (rng.integers(0x1F000000, 0x21000000, n) | (rng.integers(0, 2, n) << 31)).astype(np.uint32)
        special = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
                            0x7F812345, 0xFFA00001, 0x00800000, 0x007FFFFF, 0x3F7FFFFF, 0x3F800001],
                           np.uint32)[rng.integers(0, 12, n)]
        out = np.choose(kind, [bits, small, near_one, mid, special, small])
        return out.view(np.float32)
    return pick(), pick()


@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("op", range(6))
def test_float_arithmetic_matches_x86(lib, op, ftz):
    """+, -, *, /, (float) of a double product and (double)f, FTZ band and NaNs included."""
    a, b = _operands(np.random.default_rng(op), 400_000)
    band = np.array([  # exact results just under FLT_MIN that IEEE rounds up to it
        (0x3F7FFFFF, 0x00800000), (0x3F7FFFFE, 0x80800000), (0x3F7FFFFF, 0x00800001),
        (0x00FFFFFF, 0x40000000), (0x80FFFFFF, 0x40000000), (0x00FFFFFE, 0x40000000),
        (0x00800000, 0x00000001), (0x00FFFFFF, 0x3F000000)], np.uint32).view(np.float32)
    rng = np.random.default_rng(100 + op)
    mant = rng.uniform(0.5, 1.0, 40_000)
    near = (2.0 ** -126 * (1 - 2.0 ** -26) / mant).astype(np.float32)  # products in the band
    a = np.concatenate([a, band[:, 0], mant.astype(np.float32)])
    b = np.concatenate([b, band[:, 1], near])
    bad = ctypes.c_long(-1)
    wrong = lib.arith(a.ctypes.data, b.ctypes.data, a.size, op, int(ftz), ctypes.byref(bad))
    assert wrong == 0, (a[bad.value].view(np.uint32), b[bad.value].view(np.uint32))


@pytest.mark.parametrize("ftz", [False, True])
@pytest.mark.parametrize("op", range(4))
def test_double_arithmetic_matches_x86(lib, op, ftz):
    rng = np.random.default_rng(10 + op)
    n = 400_000
    kind = rng.integers(0, 3, (2, n))
    rand = rng.integers(0, 2 ** 64, (2, n), dtype=np.uint64)
    tiny = rng.integers(1, 0x0200000000000000, (2, n), dtype=np.uint64) | (
        rng.integers(0, 2, (2, n)).astype(np.uint64) << np.uint64(63))
    mid = rng.integers(0x1F00000000000000, 0x2100000000000000, (2, n), dtype=np.uint64)
    x = np.choose(kind, [rand, tiny, mid]).view(np.float64)
    a, b = np.ascontiguousarray(x[0]), np.ascontiguousarray(x[1])
    bad = ctypes.c_long(-1)
    wrong = lib.darith(a.ctypes.data, b.ctypes.data, n, op, int(ftz), ctypes.byref(bad))
    assert wrong == 0, (a[bad.value].hex(), b[bad.value].hex())


def _table(name):
    text = open(HEADER).read()
    body = re.search(name + r"\[\d+\] = \{(.*?)\};", text, re.S).group(1)
    return [int(v, 16) for v in re.findall(r"0x[0-9a-f]+", body)]


def _double_bits(v):
    return int(np.array(float(v), np.float64).view(np.uint64))


def test_tables_regenerate():
    """2^(k/N) rounded to double (and its relative rounding error for exp) at 80 digits."""
    getcontext().prec = 80
    exp_tab = []
    for k in range(128):
        exact = Decimal(2) ** (Decimal(k) / 128)
        hi = float(Fraction(exact))
        tail = float((Fraction(exact) - Fraction(hi)) / Fraction(hi))
        exp_tab += [_double_bits(tail), (_double_bits(hi) - (k << 45)) % 2 ** 64]
    assert _table("DN_EXP_TAB") == exp_tab
    expf_tab = [(_double_bits(float(Fraction(Decimal(2) ** (Decimal(k) / 32)))) - (k << 47)) % 2 ** 64
                for k in range(32)]
    assert _table("DN_EXPF_TAB") == expf_tab
