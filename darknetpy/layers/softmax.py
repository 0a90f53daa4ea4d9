"""[softmax]: Darknet-19's classifier output (groups, temperature, optional tree)."""
import numpy as np

from ..tree import read_tree
from .base import Layer
from .paths import resolve


class Softmax(Layer):
    type = "softmax"
    writes_output = True

    def __init__(self, index, section, build):
        super().__init__(index, section, build)
        s = section
        self.groups = self.positive("groups", 1)
        if self.inputs % self.groups:
            raise self.error(f"groups={self.groups} does not divide the {self.inputs} inputs", "groups")
        self.temperature = np.float32(s.get_float("temperature", 1))
        tree_path = resolve(s, "tree")
        self.tree = read_tree(tree_path) if tree_path else None
        if self.tree is not None and int(self.tree.group_size.sum()) > self.inputs:
            raise self.error(f"tree {tree_path} has {self.tree.n} classes, the input only {self.inputs}", "tree")
        s.get_float("spatial", 0)
        s.get_int("noloss", 0)

    def summary(self):
        return f"softmax                                        {self.inputs:4d}"

    def forward(self, step):
        x, out = step.x.reshape(step.x.shape[0], -1), step.out.reshape(step.out.shape[0], -1)
        vector, ftz = step.numerics.vector, step.numerics.ftz
        if self.tree is not None:
            step.kernels.softmax_tree(x, self.tree.group_offset, self.tree.group_size, self.temperature, out,
                                      vector, ftz)
        else:
            step.kernels.softmax(x, self.groups, self.temperature, out, vector, ftz)
        return step.out
