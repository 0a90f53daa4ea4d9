"""[convolutional]: im2col + GEMM, batch norm or bias, activation (Darknet's forward)."""
from __future__ import annotations

import numpy as np

from ..errors import DarknetError
from ..kernels import ACTIVATIONS
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
        if name not in ACTIVATIONS:
            if build.warn is not None:
                print(f"{s.where('activation')}: Couldn't find activation function {name}, going with ReLU",
                      file=build.warn)
        self.activation_name = name if name in ACTIVATIONS else "relu"
        self.activation = ACTIVATIONS[self.activation_name]
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
        if step.train:
            return self.forward_train(step)
        weights, biases, bn = step.state
        return step.kernels.convolution(step.x, weights, self.groups, self.size, self.stride, self.padding,
                                        step.workspace, step.numerics.exact, bn, biases, self.activation,
                                        step.numerics.ftz, step.out)

    # -- training (forward_convolutional_layer with net.train, backward, update)

    def forward_train(self, step: Step):
        """The product, then batch norm with this batch's statistics (Darknet's l.x,
        l.x_norm, mean, variance, rolling averages) or the biases, then the activation."""
        n = step.x.shape[0]
        out = step.out
        kernels = step.kernels
        kernels.convolution_product(step.x, self.weights, self.groups, self.size, self.stride, self.padding,
                                    self.out_shape[1:], step.workspace, step.numerics.exact, out,
                                    step.numerics.ftz)
        flat = out.reshape(n, self.filters, -1)
        ftz = step.numerics.ftz
        saved = self.saved = {}
        if self.batch_normalize:
            saved["x"] = flat.copy()
            mean = np.empty(self.filters, np.float32)
            variance = np.empty(self.filters, np.float32)
            kernels.mean_variance(saved["x"], mean, variance, ftz)
            saved["mean"], saved["variance"] = mean, variance
            for name, stat in (("rolling_mean", mean), ("rolling_variance", variance)):
                rolling = self.params[name].value
                kernels.scal(np.float32(.99), rolling, ftz)
                kernels.axpy(np.float32(.01), stat, rolling, ftz)
            self.version += 1    # the rolling statistics changed: inference prepares them again
            kernels.normalize(saved["x"], mean, variance, step.numerics.vector, flat, ftz)
            saved["x_norm"] = flat.copy()
        kernels.scale_add_bias(flat, self.scales, self.biases, self.batch_normalize, ftz)
        kernels.activate_array(flat.reshape(-1), self.activation, ftz)
        return out

    def backward(self, step: Step):
        """backward_convolutional_layer: the activation's gradient, batch norm's (or the
        bias's) backward, weight gradients by gemm_nt and the input delta by gemm_tn
        (BETA 0) and col2im (or, for 1x1, into the previous delta directly)."""
        n = step.delta.shape[0]
        kernels = step.kernels
        vector, ftz, exact = step.numerics.vector, step.numerics.ftz, step.numerics.exact
        delta = step.delta.reshape(n, self.filters, -1)
        if self.activation_name not in GRADIENTS:
            raise DarknetError(f"layer {self.index} (convolutional): training with activation="
                               f"{self.activation_name} is not supported")
        kernels.gradient(step.out.reshape(-1), step.delta.reshape(-1), self.activation, vector, ftz)
        saved = self.saved
        kernels.backward_bias(self.params["biases"].updates, delta, vector, ftz)
        if self.batch_normalize:
            kernels.backward_scale(saved["x_norm"], delta, vector, self.params["scales"].updates, ftz)
            kernels.scale_channels(delta, self.scales, ftz)
            saved["mean_delta"] = np.empty(self.filters, np.float32)
            saved["variance_delta"] = np.empty(self.filters, np.float32)
            kernels.batchnorm_deltas(saved["x"], saved["mean"], saved["variance"], delta, vector,
                                     saved["mean_delta"], saved["variance_delta"], ftz)
            kernels.normalize_delta(saved["x"], saved["mean"], saved["variance"], saved["mean_delta"],
                                    saved["variance_delta"], vector, delta, ftz)
        c, h, w = self.in_shape
        m, cg = self.filters // self.groups, c // self.groups
        k, spatial = cg * self.size * self.size, delta.shape[2]
        col = step.workspace[:k * spatial].reshape(k, spatial)
        weight_updates = self.params["weights"].updates
        prev = step.source_deltas[0]
        for b in range(n):
            for g in range(self.groups):
                x = step.x[b, g * cg:(g + 1) * cg]
                d = delta[b, g * m:(g + 1) * m]
                if self.size == 1:
                    col = x.reshape(k, spatial)
                else:
                    kernels.im2col(x, self.size, self.stride, self.padding, col)
                kernels.gemm_nt_add(d, col, vector, exact, weight_updates[g * m:(g + 1) * m], ftz)
                if prev is None:
                    continue
                wg = self.weights[g * m:(g + 1) * m]
                target = prev[b, g * cg:(g + 1) * cg]
                if self.size == 1:
                    kernels.gemm_tn_beta0(wg, d, exact, target.reshape(k, spatial), ftz)
                else:
                    kernels.gemm_tn_beta0(wg, d, exact, col, ftz)
                    kernels.col2im_add(col, cg, h, w, self.size, self.stride, self.padding, target, ftz)

    def update(self, kernels, learning_rate, momentum, decay, batch, ftz=True):
        """update_convolutional_layer: biases, scales, then weights with decay, then the
        momentum scaling of each update buffer (float arithmetic, Darknet's order)."""
        f32 = np.float32
        lrb = f32(f32(learning_rate) / f32(batch))
        for name in ("biases", "scales") if self.batch_normalize else ("biases",):
            p = self.params[name]
            kernels.axpy(lrb, p.updates, p.value, ftz)
            kernels.scal(f32(momentum), p.updates, ftz)
        p = self.params["weights"]
        kernels.axpy(f32(-f32(decay) * f32(batch)), p.value.reshape(-1), p.updates.reshape(-1), ftz)
        kernels.axpy(lrb, p.updates.reshape(-1), p.value.reshape(-1), ftz)
        kernels.scal(f32(momentum), p.updates.reshape(-1), ftz)
        self.version += 1

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


GRADIENTS = ("linear", "leaky", "logistic", "relu")   # the activations whose gradient training has
