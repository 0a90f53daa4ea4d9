"""Darknet's activations, with C's promotions: a float input, double constants and
glibc's double `exp` where the C source promotes, one rounding back to float.

Codes follow Darknet's ACTIVATION enum order so a code names the same function there.
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload, typeof_impl

from . import fpenv


class Activation(int):
    """An activation code (Darknet's ACTIVATION enum) that Numba types as a literal: a kernel
    given one is compiled for that activation alone, not for all fourteen. The activation
    code of every `a` argument below is one, so a model compiles the activations it has
    (Numba copies an inlined function's IR at every call, and a kernel holding the whole
    chain in each of its loops compiled for over a minute). A plain int still works,
    through a kernel compiled for any activation."""
    __slots__ = ()


_LITERALS = tuple(types.IntegerLiteral(code) for code in range(14))   # built once: typeof runs per call


@typeof_impl.register(Activation)
def _typeof_activation(val, c):
    return _LITERALS[val]


LOGISTIC, RELU, RELIE, LINEAR, RAMP, TANH, PLSE, LEAKY, ELU, LOGGY, STAIR, HARDTAN, LHTAN, SELU = map(
    Activation, range(14))
CODES = {
    "logistic": LOGISTIC, "relu": RELU, "relie": RELIE, "linear": LINEAR, "ramp": RAMP,
    "tanh": TANH, "plse": PLSE, "leaky": LEAKY, "elu": ELU, "loggy": LOGGY, "stair": STAIR,
    "hardtan": HARDTAN, "lhtan": LHTAN, "selu": SELU,
}
BY_CODE = sorted(CODES.values())

F32 = np.float32
F64 = np.float64
SERIAL_MAX = 1 << 18    # outputs below which the epilogue runs on the calling thread


def constant(a):
    """The Activation for code a (an int, or an Activation already)."""
    return BY_CODE[a]


# One function per activation, each Darknet's `*_activate(float x)` with C's promotions: the
# implementations of `activate` for an Activation (their `a` is that constant, unused). A C
# comparison used as a number is the bool converted, (float)(x > 0): no conditional expressions,
# which Numba's inliner does not carry into a kernel cleanly.
def _linear(x, a):
    return x


def _leaky(x, a):
    if x > 0:
        return x
    return F32(0.1 * F64(x))


def _logistic(x, a):
    return F32(1.0 / (1.0 + math.exp(-F64(x))))


def _relu(x, a):
    return x * F32(x > 0)


def _relie(x, a):
    if x > 0:
        return x
    return F32(0.01 * F64(x))


def _ramp(x, a):
    return F32(F64(x * F32(x > 0)) + 0.1 * F64(x))


def _tanh(x, a):
    e = math.exp(F64(F32(2.0) * x))
    return F32((e - 1.0) / (e + 1.0))


def _plse(x, a):
    if x < -4:
        return F32(0.01 * F64(x + F32(4.0)))
    if x > 4:
        return F32(0.01 * F64(x - F32(4.0)) + 1.0)
    return F32(0.125 * F64(x) + 0.5)


def _elu(x, a):
    ge = F32(x >= 0)
    lt = F64(x < 0)
    return F32(F64(ge * x) + lt * (math.exp(F64(x)) - 1.0))


def _selu(x, a):
    ge = F64(x >= 0)
    lt = F64(x < 0)
    return F32(ge * 1.0507 * F64(x) + lt * 1.0507 * 1.6732 * (math.exp(F64(x)) - 1.0))


def _loggy(x, a):
    return F32(2.0 / (1.0 + math.exp(-F64(x))) - 1.0)


def _stair(x, a):
    n = int(math.floor(F64(x)))
    half = math.floor(F64(x) / 2.0)
    if n & 1 == 0:
        return F32(half)
    return F32(F64(x - F32(n)) + half)


@intrinsic
def _passed(typingctx, x):
    """x itself, out of the optimiser's sight: compared and returned as it is, the value
    would let LLVM select hardtan with minss/maxss, which read a subnormal as zero under
    DAZ; a value only passed through is not flushed (see gpu/activations.cu)."""
    def codegen(context, builder, signature, args):
        if not fpenv.IS_X86:
            return args[0]
        ty = context.get_value_type(signature.return_type)
        return builder.call(ir.InlineAsm(ir.FunctionType(ty, [ty]), "", "=x,0"), args)
    return x(x), codegen


def _hardtan(x, a):
    if x < -1:
        return F32(-1.0)
    if x > 1:
        return F32(1.0)
    return _passed(x)


def _lhtan(x, a):
    if x < 0:
        return F32(0.001 * F64(x))
    if x > 1:
        return F32(0.001 * F64(x - F32(1.0)) + 1.0)
    return x


_ONE = {LOGISTIC: _logistic, RELU: _relu, RELIE: _relie, LINEAR: _linear, RAMP: _ramp, TANH: _tanh,
        PLSE: _plse, LEAKY: _leaky, ELU: _elu, LOGGY: _loggy, STAIR: _stair, HARDTAN: _hardtan,
        LHTAN: _lhtan, SELU: _selu}


def _any(x, a):
    """`activate` for a code known only at run time: every activation, in turn."""
    if a == LINEAR:
        return activate(x, LINEAR)
    if a == LEAKY:
        return activate(x, LEAKY)
    if a == LOGISTIC:
        return activate(x, LOGISTIC)
    if a == RELU:
        return activate(x, RELU)
    if a == RELIE:
        return activate(x, RELIE)
    if a == RAMP:
        return activate(x, RAMP)
    if a == TANH:
        return activate(x, TANH)
    if a == PLSE:
        return activate(x, PLSE)
    if a == ELU:
        return activate(x, ELU)
    if a == SELU:
        return activate(x, SELU)
    if a == LOGGY:
        return activate(x, LOGGY)
    if a == STAIR:
        return activate(x, STAIR)
    if a == HARDTAN:
        return activate(x, HARDTAN)
    if a == LHTAN:
        return activate(x, LHTAN)
    return x


def activate(x, a):
    """One element, as Darknet's `activate(float x, ACTIVATION a)` computes it. In a kernel
    an Activation `a` selects its own function, inlined where it is called; a code known
    only at run time goes through all of them."""
    return _activate_jit(F32(x), a)


@overload(activate, inline="always", prefer_literal=True, jit_options={"fastmath": False, "error_model": "numpy"})
def _activate_typed(x, a):
    if isinstance(a, types.IntegerLiteral) and a.literal_value in _ONE:
        return _ONE[a.literal_value]
    return _any


@njit(fastmath=False, error_model="numpy")
def _activate_jit(x, a):
    return activate(x, a)


def activate_array(x, a, ftz):
    """In place over a flat float32 array, Darknet's `activate_array` (a: a code)."""
    activate_array_kernel(x, constant(a), ftz)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def activate_array_kernel(x, a, ftz):
    """`activate_array` for an Activation a."""
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
    float as in C. `a` an Activation: the loops have that activation alone (vectorised
    where it can be)."""
    m = s = F32(0.0)
    d = F64(1.0)
    if use_bn:
        m = mean[f]
        d = math.sqrt(F64(variance[f])) + F64(F32(1e-6))
        s = scales[f]
    b = biases[f]
    _span(x, start, stop, m, d, s, b, use_bn, a, split)


def batchnorm_bias_activate(out, mean, variance, scales, biases, use_bn, a, ftz):
    """`batchnorm_bias_activate_kernel` for activation code a."""
    batchnorm_bias_activate_kernel(out, mean, variance, scales, biases, use_bn, constant(a), ftz)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def batchnorm_bias_activate_kernel(out, mean, variance, scales, biases, use_bn, a, ftz):
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
