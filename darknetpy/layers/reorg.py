"""[reorg]: space-to-depth, as Darknet's forward pass actually permutes it."""
from .base import Layer


class Reorg(Layer):
    type = "reorg"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
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

    def summary(self):
        c, h, w = self.in_shape
        oc, oh, ow = self.out_shape
        return f"reorg              /{self.stride:2d}  {w:4d} x{h:4d} x{c:4d}   ->  {ow:4d} x{oh:4d} x{oc:4d}"

    def forward(self, step):
        return step.kernels.reorg(step.x, self.stride, self.reverse, step.out)

    def backward(self, step):
        """reorg_cpu of the delta in the other direction, assigned (not added)."""
        prev = step.source_deltas[0]
        if prev is None:
            return
        step.kernels.reorg_delta(step.delta, self.stride, not self.reverse, prev.reshape(prev.shape[0], *self.in_shape))
