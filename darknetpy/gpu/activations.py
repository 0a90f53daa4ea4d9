"""Darknet's activations and the convolution's epilogue on the GPU, bit for bit as
darknetpy/cpu/activations.py computes them (see activations.cu for the arithmetic and
for how `ftz` reproduces the stock build's FTZ/DAZ)."""
import os

from . import runtime
from ..cpu.activations import CODES

__all__ = ["CODES", "activate_array", "batchnorm_bias_activate", "epilogue_fast"]

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "activations.cu")
THREADS = 256
MAX_GRID_Y = 65535


def _module():
    return runtime.load_module(SOURCE)


def _cdiv(a, b):
    return -(-a // b)


def activate_array(x, a, ftz):
    """In place over a contiguous float32 array, Darknet's `activate_array`."""
    n = x.size
    if n == 0:
        return
    kernel = _module().function("activate_array")
    kernel((_cdiv(n, THREADS),), (THREADS,), (x, n, int(a), int(bool(ftz))))


def _per_filter(name, out, args):
    """Launch `name` over out (filters, spatial), filters on the grid's y (in chunks)."""
    filters, spatial = out.shape
    if filters == 0 or spatial == 0:
        return
    kernel = _module().function(name)
    for f0 in range(0, filters, MAX_GRID_Y):
        f1 = min(filters, f0 + MAX_GRID_Y)
        sliced = tuple(v[f0:f1] if i < 4 else v for i, v in enumerate(args))
        kernel((_cdiv(spatial, THREADS), f1 - f0), (THREADS,), (out[f0:f1], spatial) + sliced)


def batchnorm_bias_activate(out, mean, variance, scales, biases, use_bn, a, ftz):
    """The convolution's epilogue on a C-contiguous out (filters, spatial), in place:
    batch norm (or only the bias), then the activation, as the CPU twin."""
    if not use_bn:
        mean = variance = scales = biases
    _per_filter("batchnorm_bias_activate", out,
                (mean, variance, scales, biases, int(bool(use_bn)), int(a), int(bool(ftz))))


def epilogue_fast(out, mean, variance, scales, biases, use_bn, a):
    """Fast mode's epilogue: the batch norm as one multiply-add, CUDA's expf; not exact."""
    if not use_bn:
        mean = variance = scales = biases
    _per_filter("epilogue_fast", out, (mean, variance, scales, biases, int(bool(use_bn)), int(a)))
