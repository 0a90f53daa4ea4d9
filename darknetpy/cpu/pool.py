"""maxpool and avgpool, as Darknet's forward passes compute them."""
import numpy as np
from numba import njit, prange

from . import fpenv

F32 = np.float32
FLT_MAX = F32(3.4028234663852886e38)
FLT_MIN = F32(1.1754943508222875e-38)


SERIAL_MAX = 1 << 20      # taps (about a millisecond) below which a pool runs on the calling thread


@njit(inline="always", fastmath=False, error_model="numpy")
def _maxpool_channel(x, k, size, stride, offset, out, ftz):
    """Channel k of the flat x (c, h, w) into the flat out (c, out_h, out_w). Each output
    row starts at -FLT_MAX and takes its taps in window order (rows, then columns), each
    only if strictly greater, one tap at a time across the whole row, so the loops over
    j have no bounds tests and no branch (they vectorise).

    With ftz the comparison is on copies with subnormals as zero (what DAZ does to it)
    and the tap's own bits are kept: a vector max instruction would flush them too."""
    _, h, w = x.shape
    _, out_h, out_w = out.shape
    xf = x.reshape(-1)
    of = out.reshape(-1)
    for i in range(out_h):
        ro = (k * out_h + i) * out_w
        for j in range(out_w):
            of[ro + j] = -FLT_MAX
        for n in range(size):
            y = offset + i * stride + n
            if y < 0 or y >= h:
                continue
            for m in range(size):
                # the j whose tap offset + j*stride + m lies in [0, w)
                first = offset + m
                lo = 0 if first >= 0 else (stride - 1 - first) // stride
                hi = min(out_w, (w - 1 - first) // stride + 1) if first < w else 0
                src = (k * h + y) * w + first
                if ftz:
                    for j in range(lo, hi):
                        v = xf[src + j * stride]
                        r = of[ro + j]
                        vf = F32(0.0) if abs(v) < FLT_MIN else v
                        rf = F32(0.0) if abs(r) < FLT_MIN else r
                        of[ro + j] = v if vf > rf else r
                else:
                    for j in range(lo, hi):
                        v = xf[src + j * stride]
                        r = of[ro + j]
                        of[ro + j] = v if v > r else r


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def _maxpool(x, size, stride, offset, out, ftz):
    if out.size * size * size < SERIAL_MAX:
        old = fpenv.enter(ftz)
        for k in range(x.shape[0]):
            _maxpool_channel(x, k, size, stride, offset, out, ftz)
        fpenv.leave(old)
        return
    for k in prange(x.shape[0]):
        old = fpenv.enter(ftz)
        _maxpool_channel(x, k, size, stride, offset, out, ftz)
        fpenv.leave(old)


def maxpool(x, size, stride, pad, out, ftz):
    """x (c, h, w) -> out (c, out_h, out_w); window origin -(pad/2) (C division).

    Taps outside the image are skipped; the running maximum starts at -FLT_MAX and
    takes a tap only when it is strictly greater (so NaN taps are passed over; with
    ftz, a subnormal compares as zero, as under the stock build's DAZ). A small pool
    runs on this thread: a parallel region costs more than it saves there.
    """
    offset = -(pad // 2) if pad >= 0 else (-pad) // 2
    _maxpool(np.ascontiguousarray(x), size, stride, offset, out, ftz)


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
