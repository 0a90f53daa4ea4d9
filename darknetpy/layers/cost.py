"""[cost]: a training layer. At inference Darknet leaves its output buffer as allocated
(zeros) and the network's output is the last layer before it."""
from .base import Layer

COST_TYPES = ("seg", "sse", "masked", "smooth", "L1", "wgan")


class Cost(Layer):
    type = "cost"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        kind = section.get_str("type", "sse")
        if kind not in COST_TYPES:
            if build.warn is not None:
                print(f"{section.where('type')}: Couldn't find cost type {kind}, going with SSE",
                      file=build.warn)
        for key, default in (("scale", 1), ("ratio", 0), ("noobj", 1), ("thresh", 0)):
            section.get_float(key, default)
        self.out_shape = (self.inputs, 1, 1)

    def summary(self):
        return f"cost                                           {self.inputs:4d}"

    def forward(self, step):
        step.out.fill(0)
        return step.out
