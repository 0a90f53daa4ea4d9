"""The CPU backend's kernels (darknetpy/kernels.py's protocol) over the Numba modules beside it.

Each function takes the batch (n, c, h, w) and runs the per-image kernel on each image in
turn: Darknet's CPU layers loop over `l.batch` the same way, and every per-image kernel is
already parallel inside. The training kernels (TrainingKernels, after the inference ones)
wrap cpu/backward.py, cpu/region_loss.py and the per-image kernels with the shapes the
protocol gives each.
"""
import numpy as np

from . import activations
from . import backward
from . import convolution as conv
from . import pool
from . import region_loss as region_loss_kernels
from . import region as region_kernels
from . import reorg as reorg_kernels
from . import shortcut as shortcut_kernels
from . import softmax as softmax_kernels
from .im2col import im2col as im2col_kernel

TRAINING = True   # provides darknetpy/kernels.py's TrainingKernels too


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


# -- training (darknetpy/kernels.py's TrainingKernels)

GRADIENT_KINDS = {activations.LINEAR: backward.LINEAR, activations.LEAKY: backward.LEAKY,
                  activations.LOGISTIC: backward.LOGISTIC, activations.RELU: backward.RELU}


def convolution_product(x, weights, groups, size, stride, pad, out_hw, workspace, exact, out, ftz):
    """See cpu/convolution.convolution, image by image."""
    for b in range(x.shape[0]):
        conv.convolution(x[b], weights, groups, size, stride, pad, out_hw, workspace, exact, out[b], ftz)
    return out


def im2col(x, size, stride, pad, out):
    """See cpu/im2col.im2col."""
    im2col_kernel(x, size, stride, pad, out)
    return out


def activate_array(x, activation, ftz):
    """See cpu/activations.activate_array."""
    activations.activate_array(x, activation, ftz)
    return x


def gradient(out, delta, activation, vector, ftz):
    """See cpu/backward.gradient (activations other than GRADIENT_KINDS' raise KeyError)."""
    backward.gradient(out, delta, GRADIENT_KINDS[activation], vector, ftz)
    return delta


def mean_variance(x, mean, variance, ftz):
    """See cpu/backward.mean_variance."""
    backward.mean_variance(x, mean, variance, ftz)
    return mean, variance


def normalize(x, mean, variance, vector, out, ftz):
    """See cpu/backward.normalize."""
    backward.normalize(x, mean, variance, vector, out, ftz)
    return out


def scale_add_bias(x, scales, biases, use_scales, ftz):
    """See cpu/backward.scale_add_bias."""
    backward.scale_add_bias(x, scales, biases, use_scales, ftz)
    return x


def scale_channels(x, scales, ftz):
    """See cpu/backward.scale_channels."""
    backward.scale_channels(x, scales, ftz)
    return x


def backward_bias(bias_updates, delta, vector, ftz):
    """See cpu/backward.backward_bias."""
    backward.backward_bias(bias_updates, delta, vector, ftz)
    return bias_updates


def backward_scale(x_norm, delta, vector, scale_updates, ftz):
    """See cpu/backward.backward_scale."""
    backward.backward_scale(x_norm, delta, vector, scale_updates, ftz)
    return scale_updates


def batchnorm_deltas(x, mean, variance, delta, vector, mean_delta, variance_delta, ftz):
    """See cpu/backward.batchnorm_deltas."""
    backward.batchnorm_deltas(x, mean, variance, delta, vector, mean_delta, variance_delta, ftz)
    return mean_delta, variance_delta


def normalize_delta(x, mean, variance, mean_delta, variance_delta, vector, delta, ftz):
    """See cpu/backward.normalize_delta."""
    backward.normalize_delta(x, mean, variance, mean_delta, variance_delta, vector, delta, ftz)
    return delta


def gemm_nt_add(a, b, vector, exact, c, ftz):
    """See cpu/backward.gemm_nt_add."""
    backward.gemm_nt_add(a, b, vector, exact, c, ftz)
    return c


def gemm_tn_beta0(a, b, exact, c, ftz):
    """See cpu/backward.gemm_tn_beta0."""
    backward.gemm_tn_beta0(a, b, exact, c, ftz)
    return c


def col2im_add(col, c, h, w, size, stride, pad, im, ftz):
    """See cpu/backward.col2im_add."""
    backward.col2im_add(col, c, h, w, size, stride, pad, im, ftz)
    return im


def axpy(alpha, x, y, ftz):
    """See cpu/backward.axpy."""
    backward.axpy(alpha, x, y, ftz)
    return y


def scal(alpha, x, ftz):
    """See cpu/backward.scal."""
    backward.scal(alpha, x, ftz)
    return x


def add_into(x, y, scale, use_scale, divide, ftz):
    """See cpu/backward.add_into."""
    backward.add_into(x, y, scale, use_scale, divide, ftz)
    return y


def subtract(t, p, out, ftz):
    """See cpu/backward.subtract."""
    backward.subtract(t, p, out, ftz)
    return out


def sum_array(a, vector):
    """See cpu/backward.sum_array."""
    return backward.sum_array(a, vector)


def log_loss(p, vector, ftz):
    """See cpu/backward.log_loss."""
    return backward.log_loss(p, vector, ftz)


def maxpool_indexes(x, size, stride, pad, out, indexes, ftz):
    """See cpu/backward.maxpool_indexes."""
    backward.maxpool_indexes(x, size, stride, pad, out, indexes, ftz)
    return out


def maxpool_backward(indexes, delta, prev_delta, ftz):
    """See cpu/backward.maxpool_backward."""
    backward.maxpool_backward(indexes, delta, prev_delta, ftz)
    return prev_delta


def reorg_delta(delta, stride, reverse, out):
    """See cpu/reorg.reorg, given the sizes of `out` (the layer's input) as Darknet's
    backward_reorg_layer does."""
    _, c, h, w = out.shape
    for b in range(out.shape[0]):
        reorg_kernels.reorg(delta[b].reshape(-1), w, h, c, stride, reverse, out[b].reshape(-1))
    return out


def region_loss(out, delta, truth, lw, lh, num, classes, coords, biases, use_tree, parent, group,
                group_offset, group_size, use_map, cmap, background, rescore, bias_match, tag, thresh,
                coord_scale, object_scale, noobject_scale, class_scale, mask_scale, seen, prior_rw, prior_rh,
                vector, ftz, stats, counts):
    """See cpu/region_loss.region_loss."""
    return region_loss_kernels.region_loss(
        out, delta, truth, lw, lh, num, classes, coords, biases, use_tree, parent, group, group_offset,
        group_size, use_map, cmap, background, rescore, bias_match, tag, thresh, coord_scale, object_scale,
        noobject_scale, class_scale, mask_scale, seen, prior_rw, prior_rh, vector, ftz, stats, counts)


def region_backward(out, delta, source_delta, cells, num, entries, coords, background, vector, ftz):
    """See cpu/region_loss.region_backward."""
    region_loss_kernels.region_backward(out, delta, source_delta, cells, num, entries, coords, background,
                                        vector, ftz)
    return delta
