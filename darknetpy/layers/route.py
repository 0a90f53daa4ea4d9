"""[route]: the outputs of earlier layers, concatenated along channels."""
import math

from .. import cfg
from .base import Layer


class Route(Layer):
    type = "route"
    arena_output = True

    def __init__(self, index, section, in_shape, net):
        super().__init__(index, section, in_shape, net)
        if not section.has("layers"):
            raise self.error("a route layer must name its input layers (layers=...)")
        picks = section.get_list("layers", cfg.atoi)
        self.sources = []
        for pick in picks:
            source = index + pick if pick < 0 else pick
            if not 0 <= source < index:
                raise self.error(f"layers={pick} refers to layer {source}, which is not an earlier layer",
                                 "layers")
            self.sources.append(source)
        first = net.layers[self.sources[0]].out_shape
        channels = 0
        for source in self.sources:
            shape = net.layers[source].out_shape
            if shape[1:] != first[1:]:
                raise self.error(f"layer {source} outputs {shape[2]}x{shape[1]}, layer {self.sources[0]} "
                                 f"outputs {first[2]}x{first[1]}: sizes must match", "layers")
            channels += shape[0]
        self.out_shape = (channels, first[1], first[2])
        self.outputs = math.prod(self.out_shape)

    def summary(self):
        return "route " + "".join(f" {s}" for s in self.sources)

    def alias(self):
        return self.sources[0] if len(self.sources) == 1 else None

    def forward(self, outputs, x, numerics):
        if len(self.sources) == 1:
            return outputs[self.sources[0]]
        return self.backend.concatenate([outputs[s] for s in self.sources], self.backend.output(self))
