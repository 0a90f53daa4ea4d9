"""[maxpool]: Darknet's default padding is size-1, so a size-2 stride-1 pool keeps the size."""
import numpy as np

from .base import Layer


class Maxpool(Layer):
    type = "maxpool"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        c, h, w = self.image_input()
        self.stride = self.positive("stride", 1)
        self.size = self.positive("size", self.stride)
        self.padding = section.get_int("padding", self.size - 1)
        out_h = (h + self.padding - self.size) // self.stride + 1
        out_w = (w + self.padding - self.size) // self.stride + 1
        if out_h < 1 or out_w < 1:
            raise self.error(f"a {self.size}x{self.size} window does not fit a {w}x{h} input")
        self.out_shape = (c, out_h, out_w)

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        return (f"max          {self.size} x {self.size} / {self.stride}  {w:4d} x{h:4d} x{c:4d}   ->  "
                f"{ow:4d} x{oh:4d} x{oc:4d}")

    def forward(self, step):
        if step.train:
            self.indexes = np.empty(step.out.shape, np.int32)
            step.kernels.maxpool_indexes(step.x, self.size, self.stride, self.padding, step.out, self.indexes,
                                         step.numerics.ftz)
            return step.out
        return step.kernels.maxpool(step.x, self.size, self.stride, self.padding, step.out, step.numerics.ftz)

    def backward(self, step):
        """prev_delta[indexes[i]] += delta[i], in order (overlapping windows add again)."""
        if step.source_deltas[0] is not None:
            step.kernels.maxpool_backward(self.indexes, step.delta, step.source_deltas[0], step.numerics.ftz)
