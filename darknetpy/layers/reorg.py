"""[reorg]: space-to-depth, as Darknet's forward pass actually permutes it."""
import math

from .base import Layer


class Reorg(Layer):
    type = "reorg"
    arena_output = True

    def __init__(self, index, section, in_shape, net):
        super().__init__(index, section, in_shape, net)
        c, h, w = self.image_input()
        self.stride = self.positive("stride", 1)
        self.reverse = section.get_int("reverse", 0) != 0
        for key in ("flatten", "extra"):
            if section.get_int(key, 0):
                raise self.error(f"{key}=1 is not supported", key)
        s = self.stride
        if self.reverse:
            if c % (s * s):
                raise self.error(f"stride {s}: channels {c} must be a multiple of {s * s}", "stride")
            self.out_shape = (c // (s * s), h * s, w * s)
        else:
            if h % s or w % s or c % (s * s):
                raise self.error(f"stride {s} must divide the input size {w}x{h} and {s * s} its "
                                 f"channels {c}", "stride")
            self.out_shape = (c * s * s, h // s, w // s)
        self.outputs = math.prod(self.out_shape)

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        return f"reorg              /{self.stride:2d}  {w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{oc:4d}"

    def forward(self, outputs, x, numerics):
        c, h, w = self.in_shape
        out = self.backend.output(self)
        self.backend.reorg.reorg(x, w, h, c, self.stride, self.reverse, out)
        return out
