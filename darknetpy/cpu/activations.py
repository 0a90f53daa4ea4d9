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
def _span(x, start, stop, m, d, s, b, use_bn, a):
    # a view indexed from 0: an index Numba cannot prove non-negative gets a wraparound
    # test, and the loop no longer vectorises (3-4x slower)
    y = x[start:stop]
    if use_bn:
        for i in range(y.size):
            y[i] = activate(F32(F64(y[i] - m) / d) * s + b, a)
    else:
        for i in range(y.size):
            y[i] = activate(y[i] + b, a)


@njit(inline="always", fastmath=False, error_model="numpy")
def epilogue_span(x, start, stop, f, mean, variance, scales, biases, use_bn, a):
    """Filter f's outputs x[start:stop]: batch norm `(x - mean) / (sqrt(var) + 1e-6f)`
    in double then `*scale`, `+bias` (or only `+bias`), then the activation, each step
    rounded to float as in C. The common activations get loops of their own (vectorised)."""
    m = s = F32(0.0)
    d = F64(1.0)
    if use_bn:
        m = mean[f]
        d = math.sqrt(F64(variance[f])) + F64(F32(1e-6))
        s = scales[f]
    b = biases[f]
    if a == LEAKY:
        _span(x, start, stop, m, d, s, b, use_bn, LEAKY)
    elif a == LINEAR:
        _span(x, start, stop, m, d, s, b, use_bn, LINEAR)
    else:
        _span(x, start, stop, m, d, s, b, use_bn, a)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def batchnorm_bias_activate(out, mean, variance, scales, biases, use_bn, a, ftz):
    """The convolution's epilogue on out (filters, spatial), in Darknet's order. A small
    layer stays on the calling thread: a parallel region would cost more than it saves."""
    filters, spatial = out.shape
    flat = out.reshape(-1)
    if flat.size < SERIAL_MAX:
        old = fpenv.enter(ftz)
        for f in range(filters):
            epilogue_span(flat, f * spatial, (f + 1) * spatial, f, mean, variance, scales, biases, use_bn, a)
        fpenv.leave(old)
        return
    for f in prange(filters):
        old = fpenv.enter(ftz)
        epilogue_span(flat, f * spatial, (f + 1) * spatial, f, mean, variance, scales, biases, use_bn, a)
        fpenv.leave(old)
