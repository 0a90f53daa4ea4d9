"""[shortcut]: YOLOv3's and ResNet's residual sum, `from=` an earlier layer.

Darknet's shortcut_cpu adds the `from` layer's output to a copy of the previous layer's,
over the channels and the grid the two share: with a smaller `from` grid its elements go
to every `sample`-th output, with a larger one every `stride`-th of them is read (the
top-left of each block: ResNet-50's stride-2 shortcuts are no projection). Channels past
the smaller count keep the previous layer's values. Then the activation (default linear).
"""
from ..kernels import ACTIVATIONS
from .base import Layer


class Shortcut(Layer):
    type = "shortcut"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        c, h, w = self.image_input()
        c1, h1, w1 = self.add_shape = build.shape(self.sources[1])
        if not (c1 and h1 and w1):
            raise self.error(f"layer {self.sources[1]} (from=) does not output an image", "from")
        stride, sample = max(w1 // w, 1), max(w // w1, 1)
        if max(h1 // h, 1) != stride or max(h // h1, 1) != sample:
            raise self.error(f"layer {self.sources[1]} outputs {w1}x{h1}, this layer's input is {w}x{h}: "
                             f"the two grids must scale alike in width and height", "from")
        name = section.get_str("activation", "linear")
        if name not in ACTIVATIONS:
            if build.warn is not None:
                print(f"{section.where('activation')}: Couldn't find activation function {name}, going with ReLU",
                      file=build.warn)
        self.activation = ACTIVATIONS.get(name, ACTIVATIONS["relu"])
        self.alpha = section.get_float("alpha", 1)
        self.beta = section.get_float("beta", 1)

    def read_sources(self, section, build):
        """The previous layer, then `from=` (negative: counted back from this layer)."""
        if not section.has("from"):
            raise self.error("a shortcut layer must name the layer it adds (from=...)")
        pick = section.get_int("from", 0)
        source = self.index + pick if pick < 0 else pick
        if not 0 <= source < self.index:
            raise self.error(f"from={pick} refers to layer {source}, which is not an earlier layer", "from")
        return [self.index - 1, source]

    def summary(self):
        c, h, w = self.in_shape
        c1, h1, w1 = self.add_shape
        return f"res  {self.sources[1]:3d}                {w1:4d} x{h1:4d} x{c1:4d}   ->  {w:4d} x{h:4d} x{c:4d}"

    def forward(self, step):
        x, add = step.inputs
        return step.kernels.shortcut(x, add, self.alpha, self.beta, self.activation, step.numerics.ftz, step.out)
