"""[convolutional]: im2col + GEMM, batch norm or bias, activation (Darknet's forward)."""
from __future__ import annotations

import numpy as np

from ..cpu import activations
from .base import Layer, Parameter, ParameterValue, Step

PARAMETERS = ("biases", "scales", "rolling_mean", "rolling_variance", "weights")


class Convolutional(Layer):
    type = "convolutional"
    writes_output = True
    biases = ParameterValue()
    scales = ParameterValue()
    rolling_mean = ParameterValue()
    rolling_variance = ParameterValue()
    weights = ParameterValue()

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        c, h, w = self.image_input()
        s = section
        self.filters = self.positive("filters", 1)
        self.size = self.positive("size", 1)
        self.stride = self.positive("stride", 1)
        pad = s.get_int("pad", 0)
        self.padding = s.get_int("padding", 0)
        self.groups = self.positive("groups", 1)
        if pad:
            self.padding = self.size // 2
        name = s.get_str("activation", "logistic")
        if name not in activations.CODES:
            if build.warn is not None:
                print(f"{s.where('activation')}: Couldn't find activation function {name}, going with ReLU",
                      file=build.warn)
        self.activation_name = name if name in activations.CODES else "relu"
        self.activation = activations.CODES[self.activation_name]
        self.batch_normalize = s.get_int("batch_normalize", 0) != 0
        for key in ("binary", "xnor"):
            if s.get_int(key, 0):
                raise self.error(f"{key}=1 (binary weights) is not supported", key)
        self.flipped = s.get_int("flipped", 0) != 0
        s.get_float("dot", 0)
        if c % self.groups or self.filters % self.groups:
            raise self.error(f"groups={self.groups} must divide channels {c} and filters {self.filters}",
                             "groups")
        out_h = (h + 2 * self.padding - self.size) // self.stride + 1
        out_w = (w + 2 * self.padding - self.size) // self.stride + 1
        if out_h < 1 or out_w < 1:
            raise self.error(f"a {self.size}x{self.size} kernel does not fit a {w}x{h} input")
        self.out_shape = (self.filters, out_h, out_w)
        k = c // self.groups * self.size * self.size
        if self.size == 1 and k * out_h * out_w > c // self.groups * h * w:
            raise self.error("a 1x1 kernel with padding reads past its input in Darknet", "padding")
        self.weights_shape = (self.filters, k)
        self.params = {name: Parameter(learned=not name.startswith("rolling")) for name in PARAMETERS}
        self.dontloadscales = s.get_int("dontloadscales", 0) != 0

    def weight_arrays(self, header):
        arrays = [("biases", (self.filters,))]
        if self.batch_normalize and not self.dontloadscales:
            arrays += [("scales", (self.filters,)), ("rolling_mean", (self.filters,)),
                       ("rolling_variance", (self.filters,))]
        return arrays + [("weights", self.weights_shape)]

    def parameter_floats(self):
        return self.filters * (self.weights_shape[1] + 4)

    def init_weights(self, given=()):
        """Darknet's initial values where no weights file sets them (biases 0, scales 1,
        rolling statistics 0); the weights are 0 here, not Darknet's random draw.
        Names in `given` are left alone (nothing allocated for what a file will set)."""
        shapes = {"weights": self.weights_shape, "biases": self.filters, "scales": self.filters,
                  "rolling_mean": self.filters, "rolling_variance": self.filters}
        for name, shape in shapes.items():
            if name not in given:
                setattr(self, name, np.full(shape, 1.0 if name == "scales" else 0.0, np.float32))

    def set_weights(self, arrays, header):
        self.init_weights(given=arrays)
        for name, value in arrays.items():
            setattr(self, name, value)
        if self.flipped:
            k = self.weights.shape[1]
            self.weights = np.ascontiguousarray(self.weights.reshape(k, self.filters).T)

    def saved_weights(self):
        weights = self.weights
        if self.flipped:
            weights = weights.T.reshape(self.filters, -1)
        return {"biases": self.biases, "scales": self.scales, "rolling_mean": self.rolling_mean,
                "rolling_variance": self.rolling_variance, "weights": weights}

    def prepare(self, kernels, place, exact):
        """(weights as `kernels.convolution` takes them, biases, batch norm or None) on the device."""
        bn = None
        if self.batch_normalize:
            bn = (place(self.rolling_mean), place(self.rolling_variance), place(self.scales))
        weights = kernels.prepare_weights(place(self.weights), self.in_shape, self.size, self.stride,
                                          self.padding, self.groups, exact)
        return weights, place(self.biases), bn

    def workspace(self, kernels, exact):
        c, h, w = self.in_shape
        _, out_h, out_w = self.out_shape
        return kernels.workspace_floats(c, h, w, self.size, self.stride, self.padding, self.groups,
                                        out_h, out_w, exact, self.filters)

    def forward(self, step: Step):
        weights, biases, bn = step.state
        return step.kernels.convolution(step.x, weights, self.groups, self.size, self.stride, self.padding,
                                        step.workspace, step.numerics.exact, bn, biases, self.activation,
                                        step.numerics.ftz, step.out)

    def fuses(self, pool, kernels, exact) -> bool:
        """Whether `forward_maxpool` can run this layer with `pool` (the next layer)."""
        return pool.type == "maxpool" and kernels.maxpool_fusable(
            self.in_shape, self.filters, self.size, self.stride, self.padding, self.groups,
            self.out_shape[1:], pool.size, pool.stride, pool.padding, exact)

    def workspace_maxpool(self, pool, kernels, exact) -> int:
        """Workspace floats of `forward_maxpool`: the fused kernel's, or (a fast-mode
        Winograd layer) the layer's own."""
        return max(kernels.maxpool_workspace_floats(self.in_shape[0], self.filters, self.size,
                                                    self.out_shape[1:], pool.size),
                   self.workspace(kernels, exact))

    def forward_maxpool(self, step: Step, pool):
        """This layer and the maxpool `pool` after it as one kernel (see `fuses`): writes
        the pool's output into `step.out`; this layer's own is never in memory."""
        weights, biases, bn = step.state
        return step.kernels.convolution_maxpool(step.x, weights, self.size, self.stride, self.padding,
                                                self.out_shape[1:], step.workspace, step.numerics.exact, bn,
                                                biases, self.activation, step.numerics.ftz, pool.size, step.out)

    def bflops(self):
        c = self.in_shape[0]
        _, out_h, out_w = self.out_shape
        return (2.0 * self.filters * self.size * self.size * c / self.groups * out_h * out_w) / 1e9

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        return (f"conv  {self.filters:5d} {self.size:2d} x{self.size:2d} /{self.stride:2d}  "
                f"{w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{oc:4d}  {self.bflops():5.3f} BFLOPs")
