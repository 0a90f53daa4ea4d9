"""[avgpool]: the mean of each channel (global average pooling)."""
import numpy as np

from .base import Layer


class Avgpool(Layer):
    type = "avgpool"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        c, h, w = self.image_input()
        self.out_shape = (c, 1, 1)

    def summary(self):
        c, h, w = self.in_shape
        return f"avg                     {w:4d} x{h:4d} x{c:4d}   ->  {c:4d}"

    def forward(self, step):
        out = step.out.reshape(step.out.shape[0], -1)
        step.kernels.avgpool(step.x, out, step.numerics.reciprocal, step.numerics.ftz)
        return step.out

    def backward(self, step):
        """prev_delta += delta / (h*w): under -Ofast times the float reciprocal."""
        prev = step.source_deltas[0]
        if prev is None:
            return
        c, h, w = self.in_shape
        n = step.delta.shape[0]
        delta = np.repeat(step.delta.reshape(n * c), h * w)
        reciprocal = step.numerics.reciprocal
        scale = np.float32(1) / np.float32(h * w) if reciprocal else np.float32(h * w)
        step.kernels.add_into(delta, prev.reshape(-1), scale, True, not reciprocal, step.numerics.ftz)
