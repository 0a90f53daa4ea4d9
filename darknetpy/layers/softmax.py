"""[softmax]: Darknet-19's classifier output (groups, temperature, optional tree)."""
import numpy as np

from ..errors import DarknetError
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
        self.noloss = s.get_int("noloss", 0) != 0

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
        if step.train and step.truth is not None and not self.noloss:
            self.cross_entropy(step.kernels, out, step.truth.reshape(out.shape), step.delta.reshape(out.shape), vector,
                               ftz)
        return step.out

    def cross_entropy(self, kernels, p, t, delta, vector, ftz):
        """softmax_x_ent_cpu: delta = t - p; loss = t ? -log(p) : 0 (the double log rounded
        to float, see cpu/backward.log_loss); cost = sum_array(loss)."""
        kernels.subtract(t.reshape(-1), p.reshape(-1), delta.reshape(-1), ftz)
        self.loss = np.zeros(p.shape, np.float32)
        head = p.size - p.size % 4    # -Ofast: libmvec's log over the first 4*floor(n/4)
        for i, j in zip(*np.nonzero(t)):
            lane = vector and i * p.shape[1] + j < head
            self.loss[i, j] = kernels.log_loss(p[i, j], lane, ftz)
        self.cost = kernels.sum_array(self.loss.reshape(-1), vector)

    def backward(self, step):
        """prev_delta += delta."""
        if self.tree is not None:
            raise DarknetError(f"layer {self.index} (softmax): training with a tree is not supported")
        if step.source_deltas[0] is not None:
            step.kernels.add_into(step.delta.reshape(-1), step.source_deltas[0].reshape(-1), np.float32(1), False,
                                  False, step.numerics.ftz)
