"""The CPU backend's kernels (darknetpy/kernels.py's protocol) over the Numba modules beside it.

Each function takes the batch (n, c, h, w) and runs the per-image kernel on each image in
turn: Darknet's CPU layers loop over `l.batch` the same way, and every per-image kernel is
already parallel inside.
"""
import numpy as np

from . import convolution as conv
from . import pool
from . import region as region_kernels
from . import reorg as reorg_kernels
from . import shortcut as shortcut_kernels
from . import softmax as softmax_kernels



def workspace_floats(c, h, w, size, stride, pad, groups, out_h, out_w, exact, filters):
    """See cpu/convolution.workspace_floats."""
    return conv.workspace_floats(c, h, w, size, stride, pad, groups, out_h, out_w, exact, filters)


def prepare_weights(weights, in_shape, size, stride, pad, groups, exact):
    """See cpu/convolution.prepare_weights (Winograd's matrices in fast mode)."""
    return conv.prepare_weights(weights, in_shape, size, stride, pad, groups, exact)


def maxpool_fusable(in_shape, filters, size, stride, pad, groups, out_hw, pool_size, pool_stride, pool_pad, exact):
    """See cpu/convolution.maxpool_fusable."""
    return conv.maxpool_fusable(in_shape, filters, size, stride, pad, groups, out_hw, pool_size, pool_stride,
                                pool_pad, exact)


def maxpool_workspace_floats(c, filters, size, out_hw, pool_size):
    """See cpu/convolution.maxpool_workspace_floats."""
    return conv.maxpool_workspace_floats(c, filters, size, out_hw, pool_size)


def convolution(x, weights, groups, size, stride, pad, workspace, exact, bn, biases, activation, ftz, out):
    """See cpu/convolution.convolution_epilogue; `weights` from `prepare_weights`."""
    out_hw = out.shape[2:]
    for b in range(x.shape[0]):
        conv.convolution_epilogue(x[b], weights, groups, size, stride, pad, out_hw, workspace, exact, bn, biases,
                                  activation, ftz, out[b])
    return out


def convolution_maxpool(x, weights, size, stride, pad, out_hw, workspace, exact, bn, biases, activation, ftz,
                        pool_size, out):
    """See cpu/convolution.convolution_epilogue_maxpool (pairs `maxpool_fusable` accepts)."""
    for b in range(x.shape[0]):
        conv.convolution_epilogue_maxpool(x[b], weights, size, stride, pad, out_hw, workspace, exact, bn, biases,
                                          activation, ftz, pool_size, out[b])
    return out


def maxpool(x, size, stride, pad, out, ftz):
    """See cpu/pool.maxpool."""
    for b in range(x.shape[0]):
        pool.maxpool(x[b], size, stride, pad, out[b], ftz)
    return out


def avgpool(x, out, reciprocal, ftz):
    """See cpu/pool.avgpool."""
    for b in range(x.shape[0]):
        pool.avgpool(x[b], out[b], reciprocal, ftz)
    return out


def reorg(x, stride, reverse, out):
    """See cpu/reorg.reorg (Darknet's reorg_cpu, given the input's sizes)."""
    _, c, h, w = x.shape
    for b in range(x.shape[0]):
        reorg_kernels.reorg(x[b].reshape(-1), w, h, c, stride, reverse, out[b].reshape(-1))
    return out


def route(xs, out):
    """Each image's sources one after another, as Darknet's forward_route_layer copies them."""
    start = 0
    for x in xs:
        out[:, start:start + x.shape[1]] = x
        start += x.shape[1]
    return out


def region(x, anchors, classes, coords, background, use_softmax, tree, tree_compat, vector, ftz, out):
    """See cpu/region.region."""
    spatial = x.shape[2] * x.shape[3]
    for b in range(x.shape[0]):
        region_kernels.region(x[b].reshape(-1), anchors, spatial, classes, coords, background, use_softmax, tree,
                              tree_compat, vector, ftz, out[b].reshape(-1))
    return out


def softmax(x, groups, temperature, out, vector, ftz):
    """Darknet's softmax_cpu over (n, groups) blocks of inputs/groups entries."""
    n, inputs = x.shape
    size = inputs // groups
    softmax_kernels.softmax_groups(x.reshape(-1), size, n, inputs, groups, size, 1, temperature, out.reshape(-1),
                                   vector, ftz)
    return out


def softmax_tree(x, group_offset, group_size, temperature, out, vector, ftz):
    """One softmax per tree group and image; entries outside every group are zero."""
    n, inputs = x.shape
    out.fill(np.float32(0.0))
    softmax_kernels.softmax_tree(x.reshape(-1), 0, 1, n, inputs, group_offset, group_size, temperature,
                                 out.reshape(-1), vector, ftz)
    return out


def shortcut(x, add, alpha, beta, activation, ftz, out):
    """See cpu/shortcut.shortcut."""
    for b in range(x.shape[0]):
        shortcut_kernels.shortcut(x[b], add[b], alpha, beta, activation, ftz, out[b])
    return out


def upsample(x, stride, scale, ftz, out):
    """See cpu/shortcut.upsample."""
    for b in range(x.shape[0]):
        shortcut_kernels.upsample(x[b], stride, np.float32(scale), ftz, out[b])
    return out
