"""reorg on the GPU: the permutation of darknetpy/cpu/reorg.py (see reorg.cu)."""
import os

from . import runtime

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reorg.cu")
THREADS = 256


def reorg(x, w, h, c, stride, reverse, out):
    """Darknet's `reorg_cpu(x, w, h, c, batch=1, stride, forward, out)` on flat arrays;
    `reverse` is the layer's, which Darknet passes as reorg_cpu's `forward`."""
    n = w * h * c
    if n == 0:
        return
    if c < stride * stride:
        raise ValueError(f"reorg: {c} channels cannot be split by stride {stride}")
    kernel = runtime.load_module(SOURCE).function("reorg")
    kernel((-(-n // THREADS),), (THREADS,), (x, w, h, c, stride, int(bool(reverse)), out))
