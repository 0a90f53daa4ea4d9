"""[cost]: a training layer. At inference Darknet leaves its output buffer as allocated
(zeros) and the network's output is the last layer before it."""
from .base import Layer

COST_TYPES = ("seg", "sse", "masked", "smooth", "L1", "wgan")


class Cost(Layer):
    type = "cost"

    def __init__(self, index, section, in_shape, net):
        super().__init__(index, section, in_shape, net)
        kind = section.get_str("type", "sse")
        if kind not in COST_TYPES:
            if net.warn is not None:
                print(f"{section.where('type')}: Couldn't find cost type {kind}, going with SSE", file=net.warn)
        for key, default in (("scale", 1), ("ratio", 0), ("noobj", 1), ("thresh", 0)):
            section.get_float(key, default)
        self.out_shape = (self.inputs, 1, 1)

    def summary(self):
        return f"cost                                           {self.inputs:4d}"

    def forward(self, outputs, x, numerics):
        return self.backend.zeros(self.outputs)
