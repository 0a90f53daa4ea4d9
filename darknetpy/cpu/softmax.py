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
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

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


# ---- the same functions in a form LLVM vectorises (for softmaxes side by side) --------------
# glibc 2.36's expf, the FMA build the stock Darknet binary calls on an FMA machine (the steps
# of darknetpy/gpu/darknet_math.cuh's dn_expf, there checked against libm for every float):
# 2^(k/32) from a table times a degree-3 polynomial, in double with fused multiply-adds.
# Inputs from |x| >= 88 (and inf, NaN) take the library's own special cases.

_EXPF_INVLN2N = float.fromhex("0x1.71547652b82fep+5")
_EXPF_SHIFT = float.fromhex("0x1.8p52")
_EXPF_C0 = float.fromhex("0x1.c6af84b912394p-20")
_EXPF_C1 = float.fromhex("0x1.ebfce50fac4f3p-13")
_EXPF_C2 = float.fromhex("0x1.62e42ff0c52d6p-6")
# bits of 2^(i/32) rounded to double, minus i << 47 (glibc's __exp2f_data.tab)
_EXPF_TAB = np.array([
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540], np.uint64)
_U31, _U47 = np.uint64(31), np.uint64(47)


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma: a vfmadd, in vector loops too)."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType()] * 3)
        fn = builder.module.declare_intrinsic("llvm.fma", [ir.DoubleType()], fnty)
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


def _bitcast(source, target, llvm_target):
    """An intrinsic that reads a value's bits as another type of the same width."""
    @intrinsic
    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], llvm_target)
        return target(source), codegen
    return cast


_bits64 = _bitcast(types.float64, types.uint64, ir.IntType(64))
_double = _bitcast(types.uint64, types.float64, ir.DoubleType())
_bits32 = _bitcast(types.float32, types.uint32, ir.IntType(32))
_float = _bitcast(types.int32, types.float32, ir.FloatType())


@njit(inline="always", fastmath=False, error_model="numpy")
def expf_special(x):
    """Whether glibc's expf takes its special path for x (|x| >= 88, inf, NaN)."""
    return (_bits32(x) >> np.uint32(20)) & np.uint32(0x7ff) > np.uint32(0x42a)


@njit(inline="always", fastmath=False, error_model="numpy")
def expf_main(x):
    """glibc's expf where not expf_special(x) (any value, no branch, elsewhere)."""
    xd = np.float64(x)
    kd = _fma(xd, _EXPF_INVLN2N, _EXPF_SHIFT)
    ki = _bits64(kd)
    kd = kd - _EXPF_SHIFT
    r = _fma(xd, _EXPF_INVLN2N, -kd)
    scale = _double(_EXPF_TAB[ki & _U31] + (ki << _U47))
    z = _fma(r, _EXPF_C0, _EXPF_C1)
    r2 = r * r
    y = _fma(r, _EXPF_C2, 1.0)
    y = _fma(z, r2, y)
    return F32(y * scale)


@njit(inline="always", fastmath=False, error_model="numpy")
def vector_expf_special(x):
    """Whether a libmvec lane hands x to expf."""
    return not abs(x) <= _LANE_LIMIT


@njit(inline="always", fastmath=False, error_model="numpy")
def vector_expf_main(x):
    """vector_expf where not vector_expf_special(x): 2^n from its bits, no branch. (The
    same steps as vector_expf, kept apart: that plain transcription is what this form is
    checked against, for every float, in tests/test_softmax_cpu.py.)"""
    t = x * _LOG2E + _SHIFT
    n = t - _SHIFT
    r = x - n * _LN2_HI
    r = r - n * _LN2_LO
    p = (((_C5 * r + _C4) * r + _C3) * r + _C2) * r + _C1
    p = r * p + _ONE
    return _float(np.int32((np.int64(n) + 127) << 23)) * p


@njit(inline="always", fastmath=False, error_model="numpy")
def _exp_row(x, big, inv_t, out, lane):
    """out[s] = expf((x[s] - big[s]) * inv_t) (lane: libmvec's lane), vectorised; the
    few arguments on a special path are redone one by one."""
    special = False
    for s in range(out.size):
        z = (x[s] - big[s]) * inv_t
        if lane:
            out[s] = vector_expf_main(z)
            special |= vector_expf_special(z)
        else:
            out[s] = expf_main(z)
            special |= expf_special(z)
    if special:
        for s in range(out.size):
            z = (x[s] - big[s]) * inv_t
            if lane and vector_expf_special(z):
                out[s] = expf(z)
            elif not lane and expf_special(z):
                out[s] = expf(z)


@njit(inline="always", fastmath=False, error_model="numpy")
def _add_row(acc, e):
    for s in range(acc.size):
        acc[s] += e[s]


@njit(inline="always", fastmath=False, error_model="numpy")
def softmax_side_by_side(x, xo, n, temp, stride, out, width, work):
    """`width` stock-build softmaxes side by side: softmax s (s < width) over
    x[xo + s + i*stride], i < n, into out at the same places (Darknet's `softmax(x + xo
    + s, n, temp, stride, out + xo + s)` with vector=True, each with exactly its
    operations and order); work: 6 * width floats of scratch."""
    big, total = work[:width], work[width:2 * width]
    for s in range(width):
        big[s] = -FLT_MAX
    for i in range(n):
        row = x[xo + i * stride:xo + i * stride + width]
        for s in range(width):
            if row[s] > big[s]:
                big[s] = row[s]
    inv_t = _ONE / temp
    body = n - n % 4 if n >= 11 else 0
    for s in range(width, 6 * width if body else 2 * width):    # total and the four partial sums
        work[s] = 0.0
    for i in range(0, body):
        e = out[xo + i * stride:xo + i * stride + width]
        _exp_row(x[xo + i * stride:], big, inv_t, e, True)
        _add_row(work[(2 + i % 4) * width:(3 + i % 4) * width], e)
    if body:
        s0, s1 = work[2 * width:3 * width], work[3 * width:4 * width]
        s2, s3 = work[4 * width:5 * width], work[5 * width:6 * width]
        for s in range(width):
            total[s] = (s0[s] + s2[s]) + (s1[s] + s3[s])
    for i in range(body, n):
        e = out[xo + i * stride:xo + i * stride + width]
        _exp_row(x[xo + i * stride:], big, inv_t, e, False)
        _add_row(total, e)
    for s in range(width):
        big[s] = _ONE / total[s]
    for i in range(n):
        e = out[xo + i * stride:xo + i * stride + width]
        for s in range(width):
            e[s] = e[s] * big[s]


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


PARTS = 8      # the tree softmax's groups are split in this many parts per block (threads)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def softmax_tree(x, base, spatial, batch, inputs, group_offset, group_size, temp, out, vector, ftz):
    """The tree softmax as Darknet's GPU `softmax_tree` lays it out (and the softmax layer):

    for each of `batch` blocks of `inputs` floats, each group g and location s, a softmax
    over `group_size[g]` entries from `base + group_offset[g]*spatial + s`, stride `spatial`.
    A group's softmaxes at neighbouring locations read neighbouring floats: the stock
    build's run side by side over all the locations (softmax_side_by_side, vectorised;
    the wider the rows the less the per-row overhead: 64 locations at a time took 3.5x as
    long on YOLO9000's 17x17). Threads take parts of the groups of a block (by their
    offsets, ascending as read_tree makes them).
    """
    groups = group_size.size
    total = group_offset[groups - 1] + group_size[groups - 1] if groups else 0
    for u in prange(batch * PARTS):
        b, part = u // PARTS, u % PARTS
        g0 = np.searchsorted(group_offset, part * total / PARTS)
        g1 = np.searchsorted(group_offset, (part + 1) * total / PARTS) if part < PARTS - 1 else groups
        work = np.empty(6 * spatial, np.float32)
        old = fpenv.enter(ftz)
        for g in range(g0, g1):
            o = base + b * inputs + group_offset[g] * spatial
            if vector:
                softmax_side_by_side(x, o, group_size[g], temp, spatial, out, spatial, work)
            else:
                for s in range(spatial):
                    softmax(x, o + s, group_size[g], temp, spatial, out, o + s, False)
        fpenv.leave(old)
