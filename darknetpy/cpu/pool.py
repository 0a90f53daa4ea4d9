"""maxpool and avgpool, as Darknet's forward passes compute them."""
import numpy as np
from numba import njit, prange

from . import fpenv

FLT_MAX = np.float32(3.4028234663852886e38)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def maxpool(x, size, stride, pad, out, ftz):
    """x (c, h, w) -> out (c, out_h, out_w); window origin -(pad/2) (C division).

    Taps outside the image are skipped; the running maximum starts at -FLT_MAX and
    takes a tap only when it is strictly greater (so NaN taps are passed over; with
    ftz, a subnormal compares as zero, as under the stock build's DAZ).
    """
    c, h, w = x.shape
    _, out_h, out_w = out.shape
    offset = -(pad // 2) if pad >= 0 else (-pad) // 2
    for k in prange(c):
        old = fpenv.enter(ftz)
        for i in range(out_h):
            for j in range(out_w):
                best = -FLT_MAX
                for n in range(size):
                    y = offset + i * stride + n
                    if y < 0 or y >= h:
                        continue
                    for m in range(size):
                        xx = offset + j * stride + m
                        if xx < 0 or xx >= w:
                            continue
                        v = x[k, y, xx]
                        if v > best:
                            best = v
                out[k, i, j] = best
        fpenv.leave(old)


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def avgpool(x, out, reciprocal, ftz):
    """x (c, h, w) -> out (c,): a float sum in order, then the mean.

    The stock -Ofast build multiplies by 1.0f/(h*w) (reciprocal=True); the build
    without fast-math divides by h*w.
    """
    c, h, w = x.shape
    n = np.float32(h * w)
    inv = np.float32(1.0) / n
    for k in prange(c):
        old = fpenv.enter(ftz)
        s = np.float32(0.0)
        for i in range(h):
            for j in range(w):
                s += x[k, i, j]
        out[k] = s * inv if reciprocal else s / n
        fpenv.leave(old)
