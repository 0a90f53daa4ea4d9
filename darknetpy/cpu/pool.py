"""maxpool and avgpool, as Darknet's forward passes compute them."""
import numpy as np
from numba import njit, prange

from . import fpenv, parallel

F32 = np.float32
FLT_MAX = F32(3.4028234663852886e38)
FLT_MIN = F32(1.1754943508222875e-38)


SERIAL_MAX = 1 << 20      # taps (about a millisecond) below which a pool runs on the calling thread
UNITS_PER_THREAD = 4      # a parallel maxpool's units (channels, or bands of rows) per thread


@njit(inline="always", fastmath=False, error_model="numpy")
def take_tap(v, r, ftz):
    """The running maximum r after the tap v: v only if strictly greater. With ftz the
    comparison is on copies with subnormals as zero (what DAZ does to it) and the tap's
    own bits are kept: a vector max instruction would flush them too."""
    if ftz:
        vf = F32(0.0) if abs(v) < FLT_MIN else v
        rf = F32(0.0) if abs(r) < FLT_MIN else r
        return v if vf > rf else r
    return v if v > r else r


@njit(inline="always", fastmath=False, error_model="numpy")
def window_row(xrow, orow, size, stride, first, ftz):
    """Taps m = 0..size-1 of one window row into orow[j] (window column j starts at
    xrow[first + j*stride]); each tap in order, out-of-image taps skipped."""
    w, out_w = xrow.size, orow.size
    # the j whose taps all lie in [0, w): [jlo, jhi)
    jlo = 0 if first >= 0 else min(out_w, (stride - 1 - first) // stride)
    jhi = max(jlo, min(out_w, (w - size - first) // stride + 1)) if first + size <= w else jlo
    for j in range(jlo):
        _edge(xrow, orow, j, size, first + j * stride, ftz)
    for j in range(jhi, out_w):
        _edge(xrow, orow, j, size, first + j * stride, ftz)
    if jhi == jlo:
        return
    # the interior, from views indexed from 0 (no wraparound tests: it vectorises);
    # the common 2-wide, stride-2 window gets its constants
    seg = xrow[first + jlo * stride:]
    out = orow[jlo:jhi]
    if size == 2 and stride == 2:
        for t in range(out.size):
            out[t] = take_tap(seg[2 * t + 1], take_tap(seg[2 * t], out[t], ftz), ftz)
    elif size == 2 and stride == 1:
        for t in range(out.size):
            out[t] = take_tap(seg[t + 1], take_tap(seg[t], out[t], ftz), ftz)
    else:
        for t in range(out.size):
            r = out[t]
            for m in range(size):
                r = take_tap(seg[t * stride + m], r, ftz)
            out[t] = r


@njit(inline="always", fastmath=False, error_model="numpy")
def _edge(xrow, orow, j, size, x0, ftz):
    r = orow[j]
    for m in range(max(0, -x0), min(size, xrow.size - x0)):  # the taps in the image, in order
        r = take_tap(xrow[x0 + m], r, ftz)
    orow[j] = r


@njit(fastmath=False, error_model="numpy")
def _maxpool_channel(x, k, i0, i1, size, stride, offset, out, ftz):
    """Output rows [i0, i1) of channel k of x (c, h, w) into out (c, out_h, out_w).
    Each output starts at -FLT_MAX and takes its taps in window order (rows, then columns), each only if
    strictly greater; a window row's taps go in one pass over the output row. Only the
    window rows in the image are visited: a window can be far larger than the image.
    (Called, not inlined, from both branches of _maxpool: compiled once.)"""
    _, h, w = x.shape
    out_w = out.shape[2]
    for i in range(i0, i1):
        orow = out[k, i]
        for j in range(out_w):
            orow[j] = -FLT_MAX
        y0 = offset + i * stride
        for n in range(max(0, -y0), min(size, h - y0)):
            window_row(x[k, y0 + n], orow, size, stride, offset, ftz)


def row_bands(channels, out_h, threads):
    """Bands of output rows per channel, the units of a parallel maxpool: whole channels
    when there are several for each thread, else enough bands for four units a thread."""
    if channels >= UNITS_PER_THREAD * threads:
        return 1
    return min(out_h, -(-UNITS_PER_THREAD * threads // channels))


@njit(cache=True, parallel=True, fastmath=False, error_model="numpy")
def _maxpool(x, size, stride, offset, out, bands, ftz):
    out_h = out.shape[1]
    if out.size * size * size < SERIAL_MAX:
        old = fpenv.enter(ftz)
        for k in range(x.shape[0]):
            _maxpool_channel(x, np.int64(k), np.int64(0), out_h, size, stride, offset, out, ftz)
        fpenv.leave(old)
        return
    for u in prange(x.shape[0] * bands):
        k, b = u // bands, u % bands
        old = fpenv.enter(ftz)
        _maxpool_channel(x, k, b * out_h // bands, (b + 1) * out_h // bands, size, stride, offset, out, ftz)
        fpenv.leave(old)


def maxpool(x, size, stride, pad, out, ftz):
    """x (c, h, w) -> out (c, out_h, out_w); window origin -(pad/2) (C division).

    Taps outside the image are skipped; the running maximum starts at -FLT_MAX and
    takes a tap only when it is strictly greater (so NaN taps are passed over; with
    ftz, a subnormal compares as zero, as under the stock build's DAZ). A small pool
    runs on this thread: a parallel region costs more than it saves there; a large one
    with few channels goes by bands of rows (row_bands).
    """
    offset = -(pad // 2) if pad >= 0 else (-pad) // 2
    bands = row_bands(x.shape[0], out.shape[1], parallel.num_threads())
    _maxpool(np.ascontiguousarray(x), size, stride, offset, out, bands, ftz)


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
