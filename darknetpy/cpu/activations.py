"""Darknet's activations, with C's promotions: a float input, double constants and
glibc's double `exp` where the C source promotes, one rounding back to float.

Codes follow Darknet's ACTIVATION enum order so a code names the same function there.
"""
import math

import numpy as np
from numba import njit, prange

from . import fpenv

LOGISTIC, RELU, RELIE, LINEAR, RAMP, TANH, PLSE, LEAKY, ELU, LOGGY, STAIR, HARDTAN, LHTAN, SELU = range(14)
CODES = {
    "logistic": LOGISTIC, "relu": RELU, "relie": RELIE, "linear": LINEAR, "ramp": RAMP,
    "tanh": TANH, "plse": PLSE, "leaky": LEAKY, "elu": ELU, "loggy": LOGGY, "stair": STAIR,
    "hardtan": HARDTAN, "lhtan": LHTAN, "selu": SELU,
}

F32 = np.float32
F64 = np.float64
SERIAL_MAX = 1 << 18    # outputs below which the epilogue runs on the calling thread


@njit(inline="always", fastmath=False, error_model="numpy")
def activate(x, a):
    """One element, as Darknet's `activate(float x, ACTIVATION a)` computes it."""
    if a == LINEAR:
        return x
    if a == LEAKY:
        return x if x > 0 else F32(0.1 * F64(x))
    if a == LOGISTIC:
        return F32(1.0 / (1.0 + math.exp(-F64(x))))
    if a == RELU:
        return x * F32(1.0 if x > 0 else 0.0)
    if a == RELIE:
        return x if x > 0 else F32(0.01 * F64(x))
    if a == RAMP:
        return F32(F64(x * F32(1.0 if x > 0 else 0.0)) + 0.1 * F64(x))
    if a == TANH:
        e = math.exp(F64(F32(2.0) * x))
        return F32((e - 1.0) / (e + 1.0))
    if a == PLSE:
        if x < -4:
            return F32(0.01 * F64(x + F32(4.0)))
        if x > 4:
            return F32(0.01 * F64(x - F32(4.0)) + 1.0)
        return F32(0.125 * F64(x) + 0.5)
    if a == ELU:
        ge = F32(1.0 if x >= 0 else 0.0)
        lt = 1.0 if x < 0 else 0.0
        return F32(F64(ge * x) + lt * (math.exp(F64(x)) - 1.0))
    if a == SELU:
        ge = 1.0 if x >= 0 else 0.0
        lt = 1.0 if x < 0 else 0.0
        return F32(ge * 1.0507 * F64(x) + lt * 1.0507 * 1.6732 * (math.exp(F64(x)) - 1.0))
    if a == LOGGY:
        return F32(2.0 / (1.0 + math.exp(-F64(x))) - 1.0)
    if a == STAIR:
        n = int(math.floor(F64(x)))
        half = math.floor(F64(x) / 2.0)
        if n & 1 == 0:
            return F32(half)
        return F32(F64(x - F32(n)) + half)
    if a == HARDTAN:
        if x < -1:
            return F32(-1.0)
        if x > 1:
            return F32(1.0)
        return x
    if a == LHTAN:
        if x < 0:
            return F32(0.001 * F64(x))
        if x > 1:
            return F32(0.001 * F64(x - F32(1.0)) + 1.0)
        return x
    return x


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def activate_array(x, a, ftz):
    """In place over a flat float32 array, Darknet's `activate_array`."""
    n = x.size
    chunk = 1 << 16
    if n <= chunk:
        old = fpenv.enter(ftz)
        for i in range(n):
            x[i] = activate(x[i], a)
        fpenv.leave(old)
        return
    for c in prange((n + chunk - 1) // chunk):
        old = fpenv.enter(ftz)
        y = x[c * chunk:(c + 1) * chunk]    # indexed from 0: see _span
        for i in range(y.size):
            y[i] = activate(y[i], a)
        fpenv.leave(old)


@njit(inline="always", fastmath=False, error_model="numpy")
def _span(x, start, stop, m, d, s, b, use_bn, a, split):
    # views indexed from 0: an index Numba cannot prove non-negative gets a wraparound
    # test, and the loop no longer vectorises (3-4x slower)
    y = x[start:stop]
    if use_bn:
        r = 1.0 / d
        v = y[:split]
        for i in range(v.size):
            v[i] = activate(F32(F64(v[i] - m) * r) * s + b, a)
        w = y[split:]
        for i in range(w.size):
            w[i] = activate(F32(F64(w[i] - m) / d) * s + b, a)
    else:
        for i in range(y.size):
            y[i] = activate(y[i] + b, a)


@njit(inline="always", fastmath=False, error_model="numpy")
def reciprocal_end(spatial, ftz):
    """Where the stock -Ofast build stops multiplying a channel by the batch norm's double
    reciprocal: its normalize_cpu runs 4 elements at a time as `t * (1.0/d)` and divides only
    the last spatial % 4 (kit v3's README). The build without fast-math (not ftz) divides all."""
    return spatial - spatial % 4 if ftz else 0


@njit(inline="always", fastmath=False, error_model="numpy")
def reciprocal_count(first, count, vector_end):
    """How many of `count` consecutive positions from `first` lie below `vector_end`."""
    return min(max(vector_end - first, 0), count)


@njit(inline="always", fastmath=False, error_model="numpy")
def epilogue_span(x, start, stop, f, mean, variance, scales, biases, use_bn, a, split):
    """Filter f's outputs x[start:stop]: batch norm `(x - mean) / (sqrt(var) + 1e-6f)` in
    double (the first `split` times the double reciprocal instead, see `reciprocal_end`)
    then `*scale`, `+bias` (or only `+bias`), then the activation, each step rounded to
    float as in C. The common activations get loops of their own (vectorised)."""
    m = s = F32(0.0)
    d = F64(1.0)
    if use_bn:
        m = mean[f]
        d = math.sqrt(F64(variance[f])) + F64(F32(1e-6))
        s = scales[f]
    b = biases[f]
    if a == LEAKY:
        _span(x, start, stop, m, d, s, b, use_bn, LEAKY, split)
    elif a == LINEAR:
        _span(x, start, stop, m, d, s, b, use_bn, LINEAR, split)
    else:
        _span(x, start, stop, m, d, s, b, use_bn, a, split)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def batchnorm_bias_activate(out, mean, variance, scales, biases, use_bn, a, ftz):
    """The convolution's epilogue on out (filters, spatial), in Darknet's order (ftz: the
    stock -Ofast build's FTZ/DAZ and batch-norm reciprocal, see `reciprocal_end`). A small
    layer stays on the calling thread: a parallel region would cost more than it saves."""
    filters, spatial = out.shape
    flat = out.reshape(-1)
    if flat.size < SERIAL_MAX:
        old = fpenv.enter(ftz)
        for f in range(filters):
            epilogue_span(flat, f * spatial, (f + 1) * spatial, f, mean, variance, scales, biases, use_bn, a,
                          reciprocal_end(spatial, ftz))
        fpenv.leave(old)
        return
    for f in prange(filters):
        old = fpenv.enter(ftz)
        epilogue_span(flat, f * spatial, (f + 1) * spatial, f, mean, variance, scales, biases, use_bn, a,
                      reciprocal_end(spatial, ftz))
        fpenv.leave(old)
