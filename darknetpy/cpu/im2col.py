"""im2col in Darknet's row order (channel, ky, kx), so the GEMM sums in Darknet's order."""
from numba import njit, prange


@njit(cache=True, inline="always")
def im2col_row(im, row, size, stride, pad, out_w, j0, j1, dst, start):
    """Row `row` of the (c*size*size, out_h*out_w) matrix, columns [j0, j1), into
    dst[start:start + j1 - j0]; taps outside the image are 0."""
    c, h, w = im.shape
    kx = row % size
    ky = (row // size) % size
    ch = row // size // size
    # the output columns x whose tap kx + x*stride - pad lies inside the image
    first = 0 if kx >= pad else (pad - kx + stride - 1) // stride
    last = (w - 1 + pad - kx) // stride + 1
    j = j0
    while j < j1:
        y = j // out_w
        x0 = j - y * out_w
        x1 = min(out_w, x0 + j1 - j)
        base = start + j - j0 - x0
        iy = ky + y * stride - pad
        if iy < 0 or iy >= h:
            lo = hi = x1
        else:
            lo = min(max(x0, first), x1)
            hi = max(min(x1, last), lo)
        for x in range(x0, lo):
            dst[base + x] = 0.0
        if iy >= 0 and iy < h:
            src = kx - pad
            if stride == 1:
                for x in range(lo, hi):
                    dst[base + x] = im[ch, iy, x + src]
            else:
                for x in range(lo, hi):
                    dst[base + x] = im[ch, iy, x * stride + src]
        for x in range(hi, x1):
            dst[base + x] = 0.0
        j += x1 - x0


@njit(cache=True, parallel=True, fastmath=False)
def im2col(im, size, stride, pad, out):
    """im (c, h, w) -> out (c*size*size, out_h*out_w), all columns."""
    rows, n = out.shape
    _, h, w = im.shape
    out_w = (w + 2 * pad - size) // stride + 1
    flat = out.reshape(-1)
    for row in prange(rows):
        im2col_row(im, row, size, stride, pad, out_w, 0, n, flat, row * n)


@njit(cache=True, fastmath=False)
def im2col_block(im, size, stride, pad, out_w, j0, j1, dst):
    """Columns [j0, j1) of the im2col matrix into dst, as a (rows, j1 - j0) matrix."""
    rows = im.shape[0] * size * size
    for row in range(rows):
        im2col_row(im, row, size, stride, pad, out_w, j0, j1, dst, row * (j1 - j0))
