"""[route]: the outputs of earlier layers, concatenated along channels."""
import numpy as np

from ..cfg import atoi
from .base import Layer


class Route(Layer):
    type = "route"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        first = self.in_shape
        channels = 0
        for source in self.sources:
            shape = build.shape(source)
            if shape[1:] != first[1:]:
                raise self.error(f"layer {source} outputs {shape[2]}x{shape[1]}, layer {self.sources[0]} "
                                 f"outputs {first[2]}x{first[1]}: sizes must match", "layers")
            channels += shape[0]
        self.out_shape = (channels, first[1], first[2])
        self.aliases = len(self.sources) == 1
        self.writes_output = not self.aliases

    def read_sources(self, section, build):
        """`layers=`: indices, negative ones counted back from this layer."""
        if not section.has("layers"):
            raise self.error("a route layer must name its input layers (layers=...)")
        sources = []
        for pick in section.get_list("layers", atoi):
            source = self.index + pick if pick < 0 else pick
            if not 0 <= source < self.index:
                raise self.error(f"layers={pick} refers to layer {source}, which is not an earlier layer",
                                 "layers")
            sources.append(source)
        return sources

    def summary(self):
        return "route " + "".join(f" {s}" for s in self.sources)

    def forward(self, step):
        if self.aliases:
            return step.x
        return step.kernels.route(step.inputs, step.out)

    def backward(self, step):
        """For each source in cfg order and each image, its slice of the delta added."""
        start = 0
        for x, prev in zip(step.inputs, step.source_deltas):
            c = x.shape[1]
            if prev is not None:
                for b in range(prev.shape[0]):
                    step.kernels.add_into(step.delta[b, start:start + c].reshape(-1), prev[b].reshape(-1),
                                           np.float32(1), False, False, step.numerics.ftz)
            start += c
