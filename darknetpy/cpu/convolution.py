"""The convolutional layer's forward pass on the CPU: im2col, GEMM, epilogue."""
import numpy as np

from . import activations, gemm
from .im2col import im2col


def convolution(x, weights, groups, size, stride, pad, out_hw, workspace, exact):
    """x (c, h, w) -> (filters, out_h*out_w), before bias, batch norm and activation.

    `weights` is (filters, c/groups*size*size). As in Darknet, a 1x1 kernel skips
    im2col and reads the input buffer directly as the (k, n) matrix.
    """
    c, h, w = x.shape
    filters = weights.shape[0]
    m, cg = filters // groups, c // groups
    k, n = cg * size * size, out_hw[0] * out_hw[1]
    out = np.empty((filters, n), np.float32)
    flat = x.reshape(-1)
    multiply = gemm.gemm_exact if exact else gemm.gemm_fast
    for g in range(groups):
        if size == 1:
            start = g * cg * h * w
            b = flat[start:start + k * n].reshape(k, n)
        else:
            b = workspace[:k * n].reshape(k, n)
            im2col(x[g * cg:(g + 1) * cg], size, stride, pad, b)
        multiply(weights[g * m:(g + 1) * m], b, out[g * m:(g + 1) * m])
    return out


def epilogue(out, bn, biases, activation, ftz):
    """Batch norm (or bias) and activation in place on out (filters, spatial)."""
    if bn is None:
        empty = np.empty(0, np.float32)
        activations.batchnorm_bias_activate(out, empty, empty, empty, biases, False, activation, ftz)
    else:
        mean, variance, scales = bn
        activations.batchnorm_bias_activate(out, mean, variance, scales, biases, True, activation, ftz)
