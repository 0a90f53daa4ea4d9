"""[shortcut] and [upsample] on the CPU: Darknet's shortcut_cpu and upsample_cpu."""
import numpy as np
from numba import njit, prange

from . import activations, fpenv

SERIAL_MAX = 1 << 16     # channels x pixels below which a kernel stays on the calling thread


@njit(inline="always", fastmath=False, error_model="numpy")
def _shortcut_channel(out, add, k, alpha, beta, stride, sample, minh, minw):
    for j in range(minh):
        orow = out[k, j * sample]
        arow = add[k, j * stride]
        for i in range(minw):
            orow[i * sample] = alpha * orow[i * sample] + beta * arow[i * stride]


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def shortcut_sum(out, add, alpha, beta, ftz):
    """out (c2, h2, w2) += add (c1, h1, w1) where they overlap, as Darknet's shortcut_cpu:
    `out = alpha*out + beta*add` (float32, one rounding each, no FMA), add read every
    `stride` and out written every `sample` elements when the grids differ."""
    c2, h2, w2 = out.shape
    c1, h1, w1 = add.shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    minc, minh, minw = min(c1, c2), min(h1, h2), min(w1, w2)
    if minc * minh * minw < SERIAL_MAX:
        old = fpenv.enter(ftz)
        for k in range(minc):
            _shortcut_channel(out, add, k, alpha, beta, stride, sample, minh, minw)
        fpenv.leave(old)
        return
    for k in prange(minc):
        old = fpenv.enter(ftz)
        _shortcut_channel(out, add, k, alpha, beta, stride, sample, minh, minw)
        fpenv.leave(old)


def shortcut(x, add, alpha, beta, activation, ftz, out):
    """Darknet's forward_shortcut_layer for one image: out (c2, h2, w2) = a copy of x, the
    sum with add (c1, h1, w1), then the activation (linear: nothing at all)."""
    out[...] = x
    shortcut_sum(out, add, np.float32(alpha), np.float32(beta), ftz)
    if activation != activations.LINEAR:
        activations.activate_array(out.reshape(-1), activation, ftz)
    return out


@njit(inline="always", fastmath=False, error_model="numpy")
def _upsample_channel(x, out, k, stride, scale):
    _, oh, ow = out.shape
    for j in range(oh):
        xrow = x[k, j // stride]
        orow = out[k, j]
        for i in range(ow):
            orow[i] = scale * xrow[i // stride]


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def upsample(x, stride, scale, ftz, out):
    """x (c, h, w) -> out (c, h*stride, w*stride): Darknet's upsample_cpu, forward,
    `out = scale * in` (a float32 product: under DAZ a subnormal input becomes zero)."""
    c = x.shape[0]
    if out.size < SERIAL_MAX:
        old = fpenv.enter(ftz)
        for k in range(c):
            _upsample_channel(x, out, k, stride, scale)
        fpenv.leave(old)
        return out
    for k in prange(c):
        old = fpenv.enter(ftz)
        _upsample_channel(x, out, k, stride, scale)
        fpenv.leave(old)
    return out
