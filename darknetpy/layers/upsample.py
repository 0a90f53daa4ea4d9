"""[upsample]: YOLOv3's nearest-neighbour upsampling, each value times `scale`."""
import numpy as np

from .base import Layer


class Upsample(Layer):
    type = "upsample"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        c, h, w = self.image_input()
        self.stride = section.get_int("stride", 2)
        if self.stride < 1:
            raise self.error(f"stride={self.stride} must be at least 1 (Darknet's downsampling by a negative "
                             f"stride is not supported)", "stride")
        self.scale = np.float32(section.get_float("scale", 1))
        self.out_shape = (c, h * self.stride, w * self.stride)

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        return f"upsample           {self.stride:2d}x  {w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{oc:4d}"

    def forward(self, step):
        return step.kernels.upsample(step.x, self.stride, self.scale, step.numerics.ftz, step.out)
