"""[softmax]: Darknet-19's classifier output (groups, temperature, optional tree)."""
import numpy as np

from ..tree import read_tree
from .base import Layer
from .paths import resolve


class Softmax(Layer):
    type = "softmax"
    arena_output = True

    def __init__(self, index, section, in_shape, net):
        super().__init__(index, section, in_shape, net)
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
        self.out_shape = in_shape
        self.outputs = self.inputs

    def summary(self):
        return f"softmax                                        {self.inputs:4d}"

    def forward(self, outputs, x, numerics):
        out = self.backend.output(self)
        kernels = self.backend.softmax
        if self.tree is not None:
            out[:] = 0
            kernels.softmax_tree(x, 0, 1, 1, self.inputs, self.tree.group_offset, self.tree.group_size,
                                 self.temperature, out, numerics.vector, numerics.ftz)
        else:
            n = self.inputs // self.groups
            kernels.softmax_groups(x, n, 1, self.inputs, self.groups, n, 1, self.temperature, out,
                                   numerics.vector, numerics.ftz)
        return out
