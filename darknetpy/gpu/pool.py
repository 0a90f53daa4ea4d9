"""maxpool and avgpool on the GPU, bit for bit as darknetpy/cpu/pool.py (see pool.cu)."""
import os

from . import runtime

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool.cu")
THREADS = 256


def _cdiv(a, b):
    return -(-a // b)


def maxpool(x, size, stride, pad, out, ftz):
    """x (c, h, w) -> out (c, out_h, out_w), both C-contiguous; window origin -(pad/2) in C."""
    c, h, w = x.shape
    _, out_h, out_w = out.shape
    n = c * out_h * out_w
    if n == 0:
        return
    offset = -(pad // 2) if pad >= 0 else (-pad) // 2
    kernel = runtime.load_module(SOURCE).function("maxpool")
    kernel((_cdiv(n, THREADS),), (THREADS,), (x, c, h, w, size, stride, offset, out, out_h, out_w,
                                              int(bool(ftz))))


def avgpool(x, out, reciprocal, ftz):
    """x (c, h, w) C-contiguous -> out (c,): the sum in order, then * (1/(h*w)) or / (h*w)."""
    c, h, w = x.shape
    if c == 0:
        return
    kernel = runtime.load_module(SOURCE).function("avgpool")
    kernel((_cdiv(c, THREADS),), (THREADS,), (x, c, h * w, out, int(bool(reciprocal)), int(bool(ftz))))
