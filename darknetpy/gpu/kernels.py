"""The GPU backend's kernels (darknetpy/kernels.py's protocol) over the CUDA modules beside it.

Each function takes the batch (n, c, h, w) and launches the per-image kernels on each image
in turn, on the current stream; the same bits as darknetpy/cpu/kernels.py.
"""
import numpy as np

from . import convolution as conv
from . import pool
from . import region as region_kernels
from . import reorg as reorg_kernels
from . import runtime
from . import shortcut as shortcut_kernels
from . import softmax as softmax_kernels

TRAINING = False   # darknetpy/kernels.py's TrainingKernels: none of them on the GPU yet


def workspace_floats(c, h, w, size, stride, pad, groups, out_h, out_w, exact, filters):
    """See gpu/convolution.workspace_floats."""
    return conv.workspace_floats(c, h, w, size, stride, pad, groups, out_h, out_w, exact, filters)


def prepare_weights(weights, in_shape, size, stride, pad, groups, exact):
    """Every GPU path takes the weights array as it is."""
    return conv.prepare_weights(weights, in_shape, size, stride, pad, groups, exact)


def convolution(x, weights, groups, size, stride, pad, workspace, exact, bn, biases, activation, ftz, out):
    """See gpu/convolution.convolution_epilogue."""
    out_hw = out.shape[2:]
    for b in range(x.shape[0]):
        conv.convolution_epilogue(x[b], weights, groups, size, stride, pad, out_hw, workspace, exact, bn, biases,
                                  activation, ftz, out[b])
    return out


def maxpool_fusable(in_shape, filters, size, stride, pad, groups, out_hw, pool_size, pool_stride, pool_pad, exact):
    """See gpu/convolution.maxpool_fusable (never: memory is not the bottleneck there)."""
    return conv.maxpool_fusable(in_shape, filters, size, stride, pad, groups, out_hw, pool_size, pool_stride,
                                pool_pad, exact)


def maxpool_workspace_floats(c, filters, size, out_hw, pool_size):
    """No scratch beyond `convolution_maxpool`'s own temporary."""
    return 0


def convolution_maxpool(x, weights, size, stride, pad, out_hw, workspace, exact, bn, biases, activation, ftz,
                        pool_size, out):
    """`convolution` into a temporary, then the pool_size x pool_size / pool_size maxpool:
    what the fused CPU kernel computes (the network never asks for it on the GPU)."""
    full = runtime.empty((x.shape[0], weights.shape[0], *out_hw), np.float32)
    convolution(x, weights, 1, size, stride, pad, workspace, exact, bn, biases, activation, ftz, full)
    return maxpool(full, pool_size, pool_size, 0, out, ftz)


def maxpool(x, size, stride, pad, out, ftz):
    """See gpu/pool.maxpool."""
    for b in range(x.shape[0]):
        pool.maxpool(x[b], size, stride, pad, out[b], ftz)
    return out


def avgpool(x, out, reciprocal, ftz):
    """See gpu/pool.avgpool."""
    for b in range(x.shape[0]):
        pool.avgpool(x[b], out[b], reciprocal, ftz)
    return out


def reorg(x, stride, reverse, out):
    """See gpu/reorg.reorg."""
    _, c, h, w = x.shape
    for b in range(x.shape[0]):
        reorg_kernels.reorg(x[b].reshape(-1), w, h, c, stride, reverse, out[b].reshape(-1))
    return out


def route(xs, out):
    """Each image's sources one after another (device copies)."""
    start = 0
    for x in xs:
        out[:, start:start + x.shape[1]] = x
        start += x.shape[1]
    return out


def region(x, anchors, classes, coords, background, use_softmax, tree, tree_compat, vector, ftz, out):
    """See gpu/region.region."""
    spatial = x.shape[2] * x.shape[3]
    for b in range(x.shape[0]):
        region_kernels.region(x[b].reshape(-1), anchors, spatial, classes, coords, background, use_softmax, tree,
                              tree_compat, vector, ftz, out[b].reshape(-1))
    return out


def softmax(x, groups, temperature, out, vector, ftz):
    """See gpu/softmax.softmax_groups (Darknet's softmax_cpu over (n, groups) blocks)."""
    n, inputs = x.shape
    size = inputs // groups
    softmax_kernels.softmax_groups(x.reshape(-1), size, n, inputs, groups, size, 1, temperature, out.reshape(-1),
                                   vector, ftz)
    return out


def softmax_tree(x, group_offset, group_size, temperature, out, vector, ftz):
    """See gpu/softmax.softmax_tree; entries outside every group are zero."""
    n, inputs = x.shape
    out.fill(np.float32(0.0))
    softmax_kernels.softmax_tree(x.reshape(-1), 0, 1, n, inputs, group_offset, group_size, temperature,
                                 out.reshape(-1), vector, ftz)
    return out


def shortcut(x, add, alpha, beta, activation, ftz, out):
    """See gpu/shortcut.shortcut."""
    for b in range(x.shape[0]):
        shortcut_kernels.shortcut(x[b], add[b], alpha, beta, activation, ftz, out[b])
    return out


def upsample(x, stride, scale, ftz, out):
    """See gpu/shortcut.upsample."""
    for b in range(x.shape[0]):
        shortcut_kernels.upsample(x[b], stride, scale, ftz, out[b])
    return out
