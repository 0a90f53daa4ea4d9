"""[avgpool]: the mean of each channel (global average pooling)."""
from .base import Layer


class Avgpool(Layer):
    type = "avgpool"
    arena_output = True

    def __init__(self, index, section, in_shape, net):
        super().__init__(index, section, in_shape, net)
        c, h, w = self.image_input()
        self.out_shape = (c, 1, 1)
        self.outputs = c

    def summary(self):
        c, h, w = self.in_shape
        return f"avg                     {w:4d} x{h:4d} x{c:4d}   ->  {c:4d}"

    def forward(self, outputs, x, numerics):
        out = self.backend.output(self)
        self.backend.pool.avgpool(x.reshape(self.in_shape), out, numerics.reciprocal, numerics.ftz)
        return out
