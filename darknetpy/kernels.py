"""The kernel protocol: the functions a backend provides, the only way layers reach a device.

Each backend package has a `kernels` module defining exactly these functions with these
parameters: `darknetpy/cpu/kernels.py` (Numba) and `darknetpy/gpu/kernels.py` (CUDA through
CuPy or the emulator). tests/test_kernel_protocol.py checks both against `Kernels`;
tests/test_ops.py runs each on every backend against the CPU reference.

Arrays are float32 and C-contiguous, on the backend's device; n is the batch (Darknet's
`l.batch`). Integers are Python ints; `exact`, `ftz`, `vector`, `reciprocal` are the
switches of `layers.base.Numerics`. A kernel writes into `out` and returns it.
"""
from __future__ import annotations

from typing import Protocol


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
