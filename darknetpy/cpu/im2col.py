"""im2col in Darknet's row order (channel, ky, kx), so the GEMM sums in Darknet's order."""
from numba import njit, prange


@njit(cache=True, parallel=True, fastmath=False)
def im2col(im, size, stride, pad, out):
    """im (c, h, w) -> out (c*size*size, out_h*out_w); taps outside the image are 0."""
    c, h, w = im.shape
    out_h = (h + 2 * pad - size) // stride + 1
    out_w = (w + 2 * pad - size) // stride + 1
    rows = c * size * size
    for row in prange(rows):
        kx = row % size
        ky = (row // size) % size
        ch = row // size // size
        for y in range(out_h):
            iy = ky + y * stride - pad
            base = y * out_w
            if iy < 0 or iy >= h:
                for x in range(out_w):
                    out[row, base + x] = 0.0
                continue
            for x in range(out_w):
                ix = kx + x * stride - pad
                if ix < 0 or ix >= w:
                    out[row, base + x] = 0.0
                else:
                    out[row, base + x] = im[ch, iy, ix]
