"""im2col on the GPU, in Darknet's row order (channel, ky, kx): the CPU twin's matrix."""
import os

from . import runtime

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "im2col.cu")
THREADS = 256


def im2col(im, size, stride, pad, out):
    """im (c, h, w) -> out (c*size*size, out_h*out_w), both C-contiguous; taps outside
    the image are 0."""
    c, h, w = im.shape
    out_h = (h + 2 * pad - size) // stride + 1
    out_w = (w + 2 * pad - size) // stride + 1
    if out.shape != (c * size * size, out_h * out_w):
        raise ValueError("im2col: out is %s, needs %s" % (out.shape, (c * size * size, out_h * out_w)))
    total = out.size
    if total == 0:
        return
    kernel = runtime.load_module(SOURCE).function("im2col")
    kernel((-(-total // THREADS),), (THREADS,), (im, c, h, w, size, stride, pad, out_h, out_w, out))
