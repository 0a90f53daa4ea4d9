"""[avgpool]: the mean of each channel (global average pooling)."""
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
