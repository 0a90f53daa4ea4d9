"""reorg: what Darknet's `forward_reorg_layer` computes, direction quirk included."""
from numba import njit, prange

SERIAL_MAX = 1 << 18     # elements below which reorg runs on the calling thread


@njit(inline="always")
def _reorg_channel(x, w, h, c, stride, reverse, out, k):
    """Input channel k."""
    out_c = c // (stride * stride)
    c2 = k % out_c
    offset = k // out_c
    for j in range(h):
        h2 = j * stride + offset // stride
        for i in range(w):
            w2 = i * stride + offset % stride
            in_index = i + w * (j + h * k)
            out_index = w2 + w * stride * (h2 + h * stride * c2)
            if reverse:
                out[out_index] = x[in_index]
            else:
                out[in_index] = x[out_index]


@njit(cache=True, parallel=True, fastmath=False)
def reorg(x, w, h, c, stride, reverse, out):
    """Darknet's `reorg_cpu(x, w, h, c, batch=1, stride, forward, out)` on flat arrays.

    Darknet's forward_reorg_layer passes its *input* sizes and the layer's `reverse` as
    reorg_cpu's `forward` argument, hence the name here. A [reorg] without `reverse=1`:
    out[in_index] = x[out_index], where out_index reads x as if it were
    (c/stride^2, h*stride, w*stride). That is the permutation YOLOv2 was trained with.
    A small one stays on the calling thread.
    """
    if x.size < SERIAL_MAX:
        for k in range(c):
            _reorg_channel(x, w, h, c, stride, reverse, out, k)
    else:
        for k in prange(c):
            _reorg_channel(x, w, h, c, stride, reverse, out, k)
