"""The kernel protocol: the functions a backend provides, the only way layers reach a device.

Each backend package has a `kernels` module defining exactly these functions with these
parameters: `darknetpy/cpu/kernels.py` (Numba) and `darknetpy/gpu/kernels.py` (CUDA through
CuPy or the emulator). tests/test_kernel_protocol.py checks both against `Kernels`;
tests/test_ops.py runs each on every backend against the CPU reference.

Training needs more: `TrainingKernels`, provided in full by a backend whose kernels module
says `TRAINING = True` (the CPU's) and not at all by one that says False (the GPU's, for
now); run/training.py refuses a backend that does not train.

Arrays are float32 and C-contiguous, on the backend's device; n is the batch (Darknet's
`l.batch`). Integers are Python ints; `exact`, `ftz`, `vector`, `reciprocal` are the
switches of `layers.base.Numerics`. A kernel writes into `out` and returns it.
"""
from __future__ import annotations

from typing import Protocol

# The codes of the `activation` argument: Darknet's ACTIVATION enum order (cpu/activations.CODES; a test checks).
ACTIVATIONS = {name: code for code, name in enumerate((
    "logistic", "relu", "relie", "linear", "ramp", "tanh", "plse", "leaky", "elu", "loggy", "stair", "hardtan",
    "lhtan", "selu"))}


class Kernels(Protocol):
    """One line of shapes per kernel (llm.c's habit); the docstrings in the backends say how."""

    # floats of scratch `convolution` needs for one (c, h, w) input, shared by the batch
    def workspace_floats(self, c, h, w, size, stride, pad, groups, out_h, out_w, exact, filters): ...

    # weights (filters, c/groups*size*size) -> what `convolution` takes in these numerics
    def prepare_weights(self, weights, in_shape, size, stride, pad, groups, exact): ...

    # x (n, c, h, w) -> out (n, filters, out_h, out_w): conv, batch norm (bn = mean, variance, scales) or bias, activation
    def convolution(self, x, weights, groups, size, stride, pad, workspace, exact, bn, biases, activation, ftz,
                    out): ...

    # whether `convolution_maxpool` takes this convolution and the size x size / size maxpool after it
    def maxpool_fusable(self, in_shape, filters, size, stride, pad, groups, out_hw, pool_size, pool_stride,
                        pool_pad, exact): ...

    # floats of scratch `convolution_maxpool` needs (all threads)
    def maxpool_workspace_floats(self, c, filters, size, out_hw, pool_size): ...

    # x (n, c, h, w) -> out (n, filters, out_h/pool, out_w/pool): `convolution` then the maxpool
    def convolution_maxpool(self, x, weights, size, stride, pad, out_hw, workspace, exact, bn, biases, activation,
                            ftz, pool_size, out): ...

    # x (n, c, h, w) -> out (n, c, out_h, out_w): Darknet's maxpool, window origin -(pad/2)
    def maxpool(self, x, size, stride, pad, out, ftz): ...

    # x (n, c, h, w) -> out (n, c): each channel's mean
    def avgpool(self, x, out, reciprocal, ftz): ...

    # x (n, c, h, w) -> out (n, c*stride^2, h/stride, w/stride), or the inverse shape when reverse
    def reorg(self, x, stride, reverse, out): ...

    # xs [(n, c_i, h, w)] -> out (n, sum c_i, h, w): route's concatenation along channels
    def route(self, xs, out): ...

    # x (n, anchors*(coords+1+classes), h, w) -> out (same shape): Darknet's forward_region_layer
    def region(self, x, anchors, classes, coords, background, use_softmax, tree, tree_compat, vector, ftz,
               out): ...

    # x (n, inputs) -> out (n, inputs): a softmax over each of `groups` equal parts
    def softmax(self, x, groups, temperature, out, vector, ftz): ...

    # x (n, inputs) -> out (n, inputs): one softmax per tree group (group_offset, group_size)
    def softmax_tree(self, x, group_offset, group_size, temperature, out, vector, ftz): ...

    # x (n, c2, h2, w2), add (n, c1, h1, w1) -> out like x: Darknet's shortcut (the sum where they overlap), activation
    def shortcut(self, x, add, alpha, beta, activation, ftz, out): ...

    # x (n, c, h, w) -> out (n, c, h*stride, w*stride): nearest neighbour, times scale
    def upsample(self, x, stride, scale, ftz, out): ...


NAMES = tuple(name for name in vars(Kernels) if not name.startswith("_"))


# What `region_loss` returns, and the slots of its `stats` (float32): five printed averages, then the cost.
REGION_OK, REGION_BAD_CELL, REGION_BAD_CLASS = 0, 1, 2
REGION_AVG_IOU, REGION_CLASS, REGION_OBJ, REGION_NO_OBJ, REGION_RECALL, REGION_COST = range(6)


class TrainingKernels(Protocol):
    """The training forward, backward and update (Darknet's *_cpu training arithmetic).
    Shapes as each line says; "flat" is any C-contiguous view read as one run; each kernel
    writes in place into its last array argument(s) unless it returns a value."""

    # x (n, c, h, w) -> out (n, filters, out_h, out_w): the product alone (no bias, batch norm, activation)
    def convolution_product(self, x, weights, groups, size, stride, pad, out_hw, workspace, exact, out, ftz): ...

    # x (c, h, w) -> out (c*size*size, out_h*out_w): one image's im2col
    def im2col(self, x, size, stride, pad, out): ...

    # x flat: activate_array in place (activation: a code, as `convolution` takes)
    def activate_array(self, x, activation, ftz): ...

    # out, delta flat: delta *= the activation's gradient at out (linear, leaky, logistic, relu)
    def gradient(self, out, delta, activation, vector, ftz): ...

    # x (n, c, spatial) -> mean (c), variance (c): this batch's statistics
    def mean_variance(self, x, mean, variance, ftz): ...

    # x (n, c, spatial), mean (c), variance (c) -> out (n, c, spatial)
    def normalize(self, x, mean, variance, vector, out, ftz): ...

    # x (n, c, spatial) in place: x * scales (if use_scales) + biases, per channel
    def scale_add_bias(self, x, scales, biases, use_scales, ftz): ...

    # x (n, c, spatial) in place: x * scales per channel
    def scale_channels(self, x, scales, ftz): ...

    # delta (n, c, spatial) -> bias_updates (c) +=: each channel's sum
    def backward_bias(self, bias_updates, delta, vector, ftz): ...

    # x_norm, delta (n, c, spatial) -> scale_updates (c) +=: each channel's sum of products
    def backward_scale(self, x_norm, delta, vector, scale_updates, ftz): ...

    # x, delta (n, c, spatial), mean, variance (c) -> mean_delta (c), variance_delta (c)
    def batchnorm_deltas(self, x, mean, variance, delta, vector, mean_delta, variance_delta, ftz): ...

    # x (n, c, spatial), mean, variance, mean_delta, variance_delta (c) -> delta (n, c, spatial) in place
    def normalize_delta(self, x, mean, variance, mean_delta, variance_delta, vector, delta, ftz): ...

    # a (m, k), b (n, k) -> c (m, n) +=: a times b transposed (exact: Darknet's sums; else FMA)
    def gemm_nt_add(self, a, b, vector, exact, c, ftz): ...

    # a (k, m), b (k, n) -> c (m, n) =: a transposed times b (Darknet's BETA 0; not exact: FMA)
    def gemm_tn_beta0(self, a, b, exact, c, ftz): ...

    # col (c*size*size, out_h*out_w) -> im (c, h, w) +=: col2im
    def col2im_add(self, col, c, h, w, size, stride, pad, im, ftz): ...

    # x, y flat: y += alpha * x
    def axpy(self, alpha, x, y, ftz): ...

    # x flat: x *= alpha
    def scal(self, alpha, x, ftz): ...

    # x, y flat: y += x, or x * scale (use_scale), or x / scale (divide)
    def add_into(self, x, y, scale, use_scale, divide, ftz): ...

    # t, p flat -> out flat: t - p
    def subtract(self, t, p, out, ftz): ...

    # a flat -> float32: Darknet's sum_array
    def sum_array(self, a, vector): ...

    # p float32 -> float32: -log(p) rounded as softmax_x_ent_cpu computes it
    def log_loss(self, p, vector, ftz): ...

    # x (n, c, h, w) -> out (n, c, out_h, out_w), indexes (n, c, out_h, out_w): maxpool keeping each argmax
    def maxpool_indexes(self, x, size, stride, pad, out, indexes, ftz): ...

    # delta (n, c, out_h, out_w) -> prev_delta (n, c, h, w) +=: through indexes
    def maxpool_backward(self, indexes, delta, prev_delta, ftz): ...

    # delta (n, c2, h2, w2) -> out (n, c, h, w) assigned: reorg_cpu given out's sizes, `forward` = `reverse`
    def reorg_delta(self, delta, stride, reverse, out): ...

    # out, delta (n, outputs), truth (n, truths) -> delta, stats (6), counts (4); returns a REGION_* status
    def region_loss(self, out, delta, truth, lw, lh, num, classes, coords, biases, use_tree, parent, group,
                    group_offset, group_size, use_map, cmap, background, rescore, bias_match, tag, thresh,
                    coord_scale, object_scale, noobject_scale, class_scale, mask_scale, seen, prior_rw, prior_rh,
                    vector, ftz, stats, counts): ...

    # out, delta (n, outputs) -> delta in place, source_delta (n, outputs) += (or (0, 0): none)
    def region_backward(self, out, delta, source_delta, cells, num, entries, coords, background, vector, ftz): ...


TRAINING_NAMES = tuple(name for name in vars(TrainingKernels) if not name.startswith("_"))
