"""[dropout]: nothing at inference; Darknet's dropout output is the previous layer's buffer."""
from .base import Layer


class Dropout(Layer):
    type = "dropout"
    aliases = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        self.probability = section.get_float("probability", 0.5)

    def summary(self):
        return f"dropout       p = {self.probability:.2f}               {self.inputs:4d}  ->  {self.inputs:4d}"

    def forward(self, step):
        return step.x
