"""Darknet's `softmax()` in its two builds, and the loops that call it.

Stock (-Ofast, `vector=True`): z = (x - max) * (1/temp); when n >= 11, gcc
vectorised the exponentials four lanes at a time with libmvec's `_ZGVbN4v_expf`
(emulated below in float32 steps) and summed them in four interleaved partial sums
combined as (s0 + s2) + (s1 + s3); the last n mod 4 use glibc's scalar `expf` and are
added one by one; below 11 elements everything is scalar `expf` summed in order.
Outputs are e * (1/sum).
Without fast-math (`vector=False`): e = (float)exp((double)(x/temp - max/temp)),
a sequential sum, and e / sum.
Flush-to-zero comes from the MXCSR (see fpenv), set by the callers.
"""
import math

import numpy as np
from numba import njit, prange

from . import fpenv

F32 = np.float32
FLT_MAX = F32(3.4028234663852886e38)
# libmvec's SSE4 expf (glibc 2.36): Cody-Waite reduction and a degree-5 polynomial.
_LOG2E = F32(float.fromhex("0x1.715476p+0"))
_SHIFT = F32(float.fromhex("0x1.8p+23"))
_LN2_HI = F32(float.fromhex("0x1.62e4p-1"))
_LN2_LO = F32(float.fromhex("0x1.7f7d1cp-20"))
_C5 = F32(float.fromhex("0x1.0fb3fcp-7"))
_C4 = F32(float.fromhex("0x1.570724p-5"))
_C3 = F32(float.fromhex("0x1.555958p-3"))
_C2 = F32(float.fromhex("0x1.fffe68p-2"))
_C1 = F32(float.fromhex("0x1.fffffcp-1"))
_ONE = F32(1.0)
_LANE_LIMIT = F32(float.fromhex("0x1.5d589ep+6"))


@njit(inline="always", fastmath=False, error_model="numpy")
def expf(x):
    """glibc's scalar `expf` (Numba lowers a float32 exp to the C library's expf)."""
    return math.exp(x)


@njit(inline="always", fastmath=False, error_model="numpy")
def vector_expf(x):
    """One lane of libmvec's `_ZGVbN4v_expf`; large |x| lanes fall back to `expf`."""
    if not abs(x) <= _LANE_LIMIT:
        return expf(x)
    t = x * _LOG2E + _SHIFT
    n = t - _SHIFT
    r = x - n * _LN2_HI
    r = r - n * _LN2_LO
    p = (((_C5 * r + _C4) * r + _C3) * r + _C2) * r + _C1
    p = r * p + _ONE
    scale = F32(math.ldexp(1.0, int(n)))
    return scale * p


@njit(inline="always", fastmath=False, error_model="numpy")
def softmax(x, xo, n, temp, stride, out, oo, vector):
    """Darknet's `softmax(input + xo, n, temp, stride, output + oo)` on flat arrays."""
    largest = -FLT_MAX
    for i in range(n):
        v = x[xo + i * stride]
        if v > largest:
            largest = v
    if vector:
        inv_t = _ONE / temp
        if n >= 11:
            s0 = F32(0.0)
            s1 = F32(0.0)
            s2 = F32(0.0)
            s3 = F32(0.0)
            body = n - n % 4
            for i in range(0, body, 4):
                e0 = vector_expf((x[xo + i * stride] - largest) * inv_t)
                e1 = vector_expf((x[xo + (i + 1) * stride] - largest) * inv_t)
                e2 = vector_expf((x[xo + (i + 2) * stride] - largest) * inv_t)
                e3 = vector_expf((x[xo + (i + 3) * stride] - largest) * inv_t)
                out[oo + i * stride] = e0
                out[oo + (i + 1) * stride] = e1
                out[oo + (i + 2) * stride] = e2
                out[oo + (i + 3) * stride] = e3
                s0 += e0
                s1 += e1
                s2 += e2
                s3 += e3
            total = (s0 + s2) + (s1 + s3)
            for i in range(body, n):
                e = expf((x[xo + i * stride] - largest) * inv_t)
                out[oo + i * stride] = e
                total += e
        else:
            total = F32(0.0)
            for i in range(n):
                e = expf((x[xo + i * stride] - largest) * inv_t)
                out[oo + i * stride] = e
                total += e
        inv_sum = _ONE / total
        for i in range(n):
            out[oo + i * stride] = out[oo + i * stride] * inv_sum
    else:
        total = F32(0.0)
        top = largest / temp
        for i in range(n):
            e = F32(math.exp(np.float64(x[xo + i * stride] / temp - top)))
            out[oo + i * stride] = e
            total += e
        for i in range(n):
            out[oo + i * stride] = out[oo + i * stride] / total


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def softmax_groups(x, n, batch, batch_offset, groups, group_offset, stride, temp, out, vector, ftz):
    """Darknet's `softmax_cpu`: one softmax per (batch, group), groups in parallel."""
    for g in prange(groups):
        old = fpenv.enter(ftz)
        for b in range(batch):
            o = b * batch_offset + g * group_offset
            softmax(x, o, n, temp, stride, out, o, vector)
        fpenv.leave(old)


@njit(cache=True, fastmath=False, error_model="numpy")
def softmax_groups_serial(x, base, n, batch, batch_offset, groups, group_offset, stride, temp, out,
                          vector, ftz):
    """Darknet's `softmax_cpu(x + base, ...)` in its exact order, for overlapping ranges."""
    old = fpenv.enter(ftz)
    for b in range(batch):
        for g in range(groups):
            o = base + b * batch_offset + g * group_offset
            softmax(x, o, n, temp, stride, out, o, vector)
    fpenv.leave(old)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def softmax_tree(x, base, spatial, batch, inputs, group_offset, group_size, temp, out, vector, ftz):
    """The tree softmax as Darknet's GPU `softmax_tree` lays it out (and the softmax layer):

    for each of `batch` blocks of `inputs` floats, each group g and location s, a softmax
    over `group_size[g]` entries from `base + group_offset[g]*spatial + s`, stride `spatial`.
    """
    groups = group_size.size
    for b in prange(batch):
        old = fpenv.enter(ftz)
        for g in range(groups):
            for s in range(spatial):
                o = base + b * inputs + group_offset[g] * spatial + s
                softmax(x, o, group_size[g], temp, spatial, out, o, vector)
        fpenv.leave(old)
