"""[shortcut] and [upsample] on the GPU, bit for bit as darknetpy/cpu/shortcut.py (see shortcut.cu)."""
import os

import numpy as np

from . import activations, runtime
from ..cpu.activations import LINEAR

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shortcut.cu")
THREADS = 256


def _cdiv(a, b):
    return -(-a // b)


def shortcut(x, add, alpha, beta, activation, ftz, out):
    """x (c2, h2, w2), add (c1, h1, w1) -> out like x: a copy of x, the sum where they
    overlap, then the activation (linear: nothing at all)."""
    out[...] = x
    c2, h2, w2 = out.shape
    c1, h1, w1 = add.shape
    count = min(c1, c2) * min(h1, h2) * min(w1, w2)
    if count:
        kernel = runtime.load_module(SOURCE).function("shortcut_sum")
        kernel((_cdiv(count, THREADS),), (THREADS,), (out, c2, h2, w2, add, c1, h1, w1, np.float32(alpha),
                                                      np.float32(beta), int(bool(ftz))))
    if activation != LINEAR:
        activations.activate_array(out.reshape(-1), activation, ftz)
    return out


def upsample(x, stride, scale, ftz, out):
    """x (c, h, w) -> out (c, h*stride, w*stride) = scale * the nearest input."""
    c, h, w = x.shape
    if out.size:
        kernel = runtime.load_module(SOURCE).function("upsample")
        kernel((_cdiv(out.size, THREADS),), (THREADS,), (x, c, h, w, stride, np.float32(scale), out,
                                                        int(bool(ftz))))
    return out
