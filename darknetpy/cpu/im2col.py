"""im2col in Darknet's row order (channel, ky, kx), so the GEMM sums in Darknet's order.

Indices in the copy loops must be provably non-negative (a loop counter from 0 plus a
base), or Numba's wraparound test on each index keeps them from vectorising.
"""
from numba import njit, prange


@njit(cache=True, parallel=True, fastmath=False)
def im2col(im, size, stride, pad, out, row0=0):
    """im (c, h, w) -> out (c*size*size, out_h*out_w); taps outside the image are 0.
    With row0: out holds rows row0, row0+1, ... of that matrix (as many as it has)."""
    c, h, w = im.shape
    out_h = (h + 2 * pad - size) // stride + 1
    out_w = (w + 2 * pad - size) // stride + 1
    rows = min(out.shape[0], c * size * size - row0)
    for r in prange(rows):
        row = row0 + r
        kx = row % size
        ky = (row // size) % size
        ch = row // size // size
        for y in range(out_h):
            iy = ky + y * stride - pad
            base = y * out_w
            if iy < 0 or iy >= h:
                for x in range(out_w):
                    out[r, base + x] = 0.0
                continue
            for x in range(out_w):
                ix = kx + x * stride - pad
                if ix < 0 or ix >= w:
                    out[r, base + x] = 0.0
                else:
                    out[r, base + x] = im[ch, iy, ix]


@njit(cache=True, fastmath=False)
def im2col_block(im, size, stride, pad, out_w, j0, j1, dst):
    """Columns [j0, j1) of the im2col matrix into dst, as a (rows, j1 - j0) matrix: each
    row a run of segments, one per output row y the block covers."""
    c, h, w = im.shape
    nb = j1 - j0
    for row in range(c * size * size):
        kx = row % size
        ky = (row // size) % size
        ch = row // size // size
        for y in range(j0 // out_w, (j1 - 1) // out_w + 1):
            x0 = max(0, j0 - y * out_w)
            x1 = min(out_w, j1 - y * out_w)
            d = row * nb + y * out_w + x0 - j0
            seg = dst[d:d + x1 - x0]
            iy = ky + y * stride - pad
            if iy < 0 or iy >= h:
                seg[:] = 0.0
                continue
            src = im[ch, iy]
            for t in range(x1 - x0):
                ix = kx + (x0 + t) * stride - pad
                if ix < 0 or ix >= w:
                    seg[t] = 0.0
                else:
                    seg[t] = src[ix]
