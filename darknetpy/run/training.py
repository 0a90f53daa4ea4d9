"""The training executor: Darknet's train_network_datum on a model, on the CPU.

One datum (net->batch images): `seen += batch`; each layer's delta zeroed just before its
training forward (forward_network's fill_cpu); the network cost; backward from the last
layer to layer 0 (layer 0 gets no input delta); the SGD update every `subdivisions`
datums. Outputs and deltas are whole-batch arrays kept here, one per layer (a layer that
aliases its source shares the source's output but has a delta of its own).
"""
from __future__ import annotations

import numpy as np

from ..errors import DarknetError
from ..layers.base import NETWORK_INPUT, Step
from ..train.rate import TrainOptions, current_rate

F32 = np.float32


class TrainingExecutor:
    """Runs training datums of `model` (CPU kernels of `backend`) in `numerics`."""

    def __init__(self, model, backend, numerics, options: TrainOptions, seen: int = 0, log=None):
        if not backend.trains:
            raise DarknetError(f"training runs on the CPU only (device='cpu'): {backend.device}'s kernels "
                               "do not train")
        self.model = model
        self.layers = model.layers
        self.kernels = backend.kernels
        self.numerics = numerics
        self.options = options
        self.seen = seen
        self.t = 0
        self.cost = None
        self.log = log
        n = options.batch
        self.outputs: list = [None] * len(self.layers)
        self.deltas = [np.zeros((n, *layer.out_shape), np.float32) for layer in self.layers]
        self.workspace = np.empty(max([self._workspace(layer) for layer in self.layers] + [1]), np.float32)
        for layer in self.layers:
            if layer.writes_output:
                self.outputs[layer.index] = np.zeros((n, *layer.out_shape), np.float32)
            for p in layer.params.values():
                if p.learned and p.value is not None and p.updates is None:
                    p.updates = np.zeros_like(p.value)

    def _workspace(self, layer) -> int:
        if layer.type != "convolutional":
            return 0
        c, h, w = layer.in_shape
        _, out_h, out_w = layer.out_shape
        return c // layer.groups * layer.size * layer.size * out_h * out_w + \
            self.kernels.workspace_floats(c, h, w, layer.size, layer.stride, layer.padding, layer.groups, out_h, out_w,
                                          True, 0)

    @property
    def batch_num(self) -> int:
        """Darknet's get_current_batch: seen / (batch * subdivisions)."""
        return self.seen // (self.options.batch * self.options.subdivisions)

    def rate(self) -> np.float32:
        return current_rate(self.options, self.batch_num)

    def source_delta(self, source: int):
        return None if source == NETWORK_INPUT else self.deltas[source]

    def step(self, layer, x, truth) -> Step:
        inputs = [x if s == NETWORK_INPUT else self.outputs[s] for s in layer.sources]
        out = self.outputs[layer.index] if layer.writes_output else None
        return Step(inputs, out, self.kernels, self.numerics, self.workspace, None, train=True,
                    delta=self.deltas[layer.index], source_deltas=[self.source_delta(s) for s in layer.sources],
                    truth=truth, seen=self.seen, log=self.log)

    def forward(self, x: np.ndarray, truth) -> None:
        """forward_network with net->train = 1, then calc_network_cost."""
        costs = []
        for layer in self.layers:
            self.deltas[layer.index].fill(0)
            layer.cost = None
            out = layer.forward(self.step(layer, x, truth))
            if not layer.writes_output:
                self.outputs[layer.index] = out
            if layer.cost is not None:
                costs.append(layer.cost)
        total = F32(0)
        for cost in costs:
            total = F32(total + cost)
        self.cost = F32(total / F32(len(costs))) if costs else F32(0)

    def backward(self, x: np.ndarray, truth) -> None:
        """backward_network: the last layer first; layer 0's input has no delta."""
        for layer in reversed(self.layers):
            layer.backward(self.step(layer, x, truth))

    def update(self) -> None:
        """update_network: every layer with parameters, at the current rate."""
        o = self.options
        rate = self.rate()
        for layer in self.layers:
            if any(p.learned for p in layer.params.values()):
                layer.update(self.kernels, rate, o.momentum, o.decay, o.batch * o.subdivisions, self.numerics.ftz)
        self.t += 1

    def datum(self, x: np.ndarray, truth, stages=None) -> np.float32:
        """train_network_datum on one datum x (batch, c, h, w) and truth (batch, truths);
        `stages(name)`, if given, is called after the forward, backward and update."""
        n = self.options.batch
        x = np.ascontiguousarray(x, np.float32).reshape(n, *self.model.options.input_shape)
        if truth is not None:
            truth = np.ascontiguousarray(truth, np.float32).reshape(n, -1)
        self.seen += n
        self.forward(x, truth)
        if stages:
            stages("forward")
        self.backward(x, truth)
        if stages:
            stages("backward")
        error = self.cost
        if (self.seen // self.options.batch) % self.options.subdivisions == 0:
            self.update()
        if stages:
            stages("update")
        return error
