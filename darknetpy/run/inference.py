"""The inference executor: a model's forward pass on a backend, planned once.

The plan is made from the graph alone (each layer's `sources`): which layers' outputs a
pass returns (the output layer and every detection layer), the last reader of every
output, the convolutions run together with the maxpool after them, the workspace, and
the arena (one buffer for the pass, each output at an offset, a buffer reused once no
later layer reads it). All per-pass state (arena views, workspace, the layers' prepared
parameters, GPU lanes, the CUDA graph) lives here, not on the model or the backend.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

from ..errors import DarknetError
from ..layers.base import NETWORK_INPUT, Step
from .arena import arena_views, plan_arena


@dataclass
class Lane:
    """One input's resources in a batch on the GPU: a stream, arena views, workspace."""
    stream: object
    arena: object
    views: dict
    workspace: object


class InferenceExecutor:
    """Runs `model` on `backend` in `numerics`; the model's parameters are read at the
    first pass (`prepare`), so load weights before running, or call `prepare` again."""

    def __init__(self, model, backend, numerics, warn=None):
        self.model = model
        self.layers = model.layers
        self.backend = backend
        self.kernels = backend.kernels
        self.numerics = numerics
        self.warn = warn
        self.returned = sorted({model.output_layer.index} | {layer.index for layer in model.detection_layers})
        self.last_use = self._last_use()
        self.fused_pools = self._fused_pools()
        self.workspace_floats = self._workspace_floats()
        self.workspace = None
        self.state = None
        self._versions: list = []
        self._plans: dict[int, dict] = {}
        self._arena = None
        self._views: dict = {}
        self._views_plan = None
        self._lanes: list[Lane] = []
        self._graph = None  # GraphForward once captured, False if capture failed

    # -- the plan (graph only)

    def owner(self, index: int) -> int:
        """The layer whose buffer layer `index`'s output is (NETWORK_INPUT: the input's)."""
        while index != NETWORK_INPUT and self.layers[index].aliases:
            index = self.layers[index].sources[0]
        return index

    def _last_use(self) -> list[int]:
        """For each layer, the last layer that reads its output (directly or through an
        alias); the outputs a pass returns live to the end."""
        end = len(self.layers)
        last = [layer.index for layer in self.layers]
        for index in self.returned:
            last[index] = end
        for layer in self.layers:
            for source in layer.sources:
                if source != NETWORK_INPUT:
                    last[source] = max(last[source], layer.index)
        for layer in reversed(self.layers):
            source = layer.sources[0]
            if layer.aliases and source != NETWORK_INPUT:
                last[source] = max(last[source], last[layer.index])
        return last

    def _kept(self) -> set[int]:
        """The buffers the caller keeps: those of the returned outputs, out of the arena."""
        return {self.owner(index) for index in self.returned}

    def _fused_pools(self) -> frozenset[int]:
        """The convolutions run together with the maxpool after them in a pass that keeps
        no outputs (see Convolutional.fuses): the pool is their only reader, so their own
        output, the largest buffers of a detector's first layers, is never in memory."""
        kept, exact = self._kept(), self.numerics.exact
        return frozenset(layer.index for layer, after in zip(self.layers, self.layers[1:])
                         if layer.type == "convolutional" and self.last_use[layer.index] == after.index
                         and after.sources == [layer.index] and layer.index not in kept
                         and layer.fuses(after, self.kernels, exact))

    def _workspace_floats(self) -> int:
        exact = self.numerics.exact
        sizes = [layer.workspace(self.kernels, exact) for layer in self.layers]
        sizes += [self.layers[i].workspace_maxpool(self.layers[i + 1], self.kernels, exact)
                  for i in self.fused_pools]
        return max(sizes + [1])

    def memory_estimate(self) -> list[tuple[object, int]]:
        """Bytes each layer adds: its parameters and output (all outputs kept, as `dump`
        keeps them), plus the shared workspace at the layer that needs most."""
        exact = self.numerics.exact
        widest = max(self.layers, key=lambda layer: layer.workspace(self.kernels, exact))
        return [(layer, 4 * (layer.parameter_floats() + layer.outputs
                             + (self.workspace_floats if layer is widest else 0))) for layer in self.layers]

    def arena_plan(self, n: int = 1) -> dict[int, tuple[int, int]]:
        """Arena offsets (floats) of the layers' outputs for a pass over n inputs (see
        arena.plan_arena); the buffers of the returned outputs stay out."""
        if n not in self._plans:
            last, kept, fused = self.last_use, self._kept(), self.fused_pools
            sizes = {layer.index: n * layer.outputs for layer in self.layers
                     if layer.writes_output and layer.index not in kept and layer.index not in fused}
            # a fused pool's buffer is written while its convolution runs
            live = {i: (i - 1 if i - 1 in fused else i, last[i]) for i in sizes}
            self._plans[n] = plan_arena(sizes, live)
        return self._plans[n]

    # -- running

    def prepare(self) -> None:
        """Each layer's parameters on the device, as its kernels take them, made again for
        a layer whose parameters were set since (`layer.version`); and the workspace. A
        pass calls it; an array changed in place needs `layer.version += 1`."""
        if self.state is None:
            self.state, self._versions = [None] * len(self.layers), [None] * len(self.layers)
        for i, layer in enumerate(self.layers):
            if self._versions[i] != layer.version:
                self.state[i] = layer.prepare(self.kernels, self.backend.upload, self.numerics.exact)
                self._versions[i] = layer.version
        if self.workspace is None:
            self.workspace = self.backend.empty(self.workspace_floats)

    def check_input(self, x: np.ndarray, n: int = 1) -> np.ndarray:
        """x as the flat float32 array of n inputs the network takes, or a clear error."""
        inputs = self.model.options.inputs
        x = np.ascontiguousarray(x, np.float32).reshape(-1)
        if x.size != n * inputs:
            raise DarknetError(f"input has {x.size // n} floats, the network expects {inputs}")
        return x

    def forward_layers(self, x: np.ndarray, keep: bool = True, times: list | None = None) -> list:
        """Run every layer on one input x (c, h, w); returns each layer's flat float32 output.

        keep=True: every output in its own host array (what `dump` and the kit compare).
        keep=False: outputs live in the arena and one is dropped (None in the list) as soon
        as no later layer reads it; the returned layers' arrays stay on the device.
        A convolution in `fused_pools` runs with its maxpool and has no output of its own.
        times: a list that gets each layer's wall time in seconds (the device synchronised);
        a fused pair's time is the convolution's, its maxpool's about zero.
        """
        outputs = self.run(self.backend.upload(self.check_input(x)), 1, keep, times)
        views: dict = {}      # a layer whose output is another's buffer gets the same array
        flat = [None if out is None else views.setdefault(id(out), out.reshape(-1)) for out in outputs]
        if keep and not self.backend.is_cpu:
            flat = [self.backend.download(out) for out in flat]
        return flat

    def run(self, x, n: int, keep: bool, times: list | None = None, only=None) -> list:
        """The layers on n inputs already on the device (flat); each layer's output
        (n, *out_shape), or None where dropped or fused. only: a predicate on layers;
        the others are skipped and their outputs left as their buffers hold them (to
        compile one part of the network's kernels, see kernel_cache.py)."""
        self.prepare()
        if keep:
            views = {}
        else:
            views = self._arena_views(n)
        return self._pass(x.reshape(n, *self.model.options.input_shape), n, views, self.workspace, keep, times,
                          only)

    def _arena_views(self, n: int) -> dict:
        """The views of the plan for n inputs; kept while the same plan is used again."""
        plan = self.arena_plan(n)
        if plan is not self._views_plan:
            self._arena, self._views = arena_views(self.backend, plan, self._arena) if plan else (self._arena, {})
            self._views_plan = plan
        return self._views

    def _buffer(self, layer, n: int, views: dict):
        view = views.get(layer.index)
        shape = (n, *layer.out_shape)
        return self.backend.empty(shape) if view is None else view.reshape(shape)

    def _pass(self, x, n: int, views: dict, workspace, keep: bool, times: list | None, only=None) -> list:
        outputs: list = []
        fused = () if keep else self.fused_pools
        pooled = None
        for layer in self.layers:
            start = time.perf_counter()
            if pooled is not None:          # computed with the convolution before
                current, pooled = pooled, None
            else:
                inputs = [x if s == NETWORK_INPUT else outputs[s] for s in layer.sources]
                pool = self.layers[layer.index + 1] if layer.index in fused else None
                out = self._buffer(pool or layer, n, views) if (pool or layer.writes_output) else None
                step = Step(inputs, out, self.kernels, self.numerics, workspace, self.state[layer.index])
                if only is not None and not only(layer):
                    skipped = out if out is not None else self.backend.empty((n, *layer.out_shape))
                    pooled, current = (skipped, None) if pool is not None else (None, skipped)
                elif pool is not None:
                    pooled, current = layer.forward_maxpool(step, pool), None
                else:
                    current = layer.forward(step)
            if times is not None:
                self.backend.synchronize()
                times.append(time.perf_counter() - start)
            outputs.append(current)
            if not keep:
                self._drop_dead(outputs, layer.index)
        return outputs

    def _drop_dead(self, outputs: list, index: int) -> None:
        """Forget the outputs no layer after `index` reads (the arena keeps their place)."""
        for i in range(len(outputs) - 1):
            if outputs[i] is not None and self.last_use[i] <= index:
                outputs[i] = None

    def forward(self, x: np.ndarray, n: int = 1, only=None) -> list[np.ndarray]:
        """Darknet's `network_predict` on n inputs: the returned layers' outputs (see
        `returned`), each (n, *out_shape), on the host. only: see `run`."""
        if n == 1 and only is None and self._use_graph():
            out = self._graph(self.check_input(x))
            return [o.reshape(1, *self.layers[i].out_shape) for o, i in zip(out, self.returned)]
        x = self.backend.upload(self.check_input(x, n))
        outputs = self.run(x, n, keep=False, only=only)
        return [self._host(outputs[i], i) for i in self.returned]

    def _host(self, out, index: int) -> np.ndarray:
        """A host array of its own (a layer that aliases the input returns a copy)."""
        host = self.backend.download(out)
        return host.copy() if self.owner(index) == NETWORK_INPUT and self.backend.is_cpu else host

    def forward_lanes(self, xs: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Several inputs on a GPU, each on a CUDA stream of its own with its own arena and
        workspace, the layers taken in step: one image's small layers leave most of the
        GPU idle, and the others' kernels fill it. The same bits as `forward` of each."""
        lanes = self._lanes_for(len(xs))
        self.prepare()
        outputs: list[list] = [[] for _ in xs]
        currents = []
        for lane, x in zip(lanes, xs):
            with lane.stream:
                currents.append(self.backend.upload(self.check_input(x)).reshape(1, *self.model.options.input_shape))
        for layer in self.layers:
            for i, lane in enumerate(lanes):
                with lane.stream:
                    inputs = [currents[i] if s == NETWORK_INPUT else outputs[i][s] for s in layer.sources]
                    out = self._buffer(layer, 1, lane.views) if layer.writes_output else None
                    step = Step(inputs, out, self.kernels, self.numerics, lane.workspace, self.state[layer.index])
                    outputs[i].append(layer.forward(step))
                self._drop_dead(outputs[i], layer.index)
        results = []
        for lane, out in zip(lanes, outputs):
            with lane.stream:
                results.append([self.backend.download(out[i]) for i in self.returned])
        return results

    def _lanes_for(self, n: int) -> list[Lane]:
        """`n` lanes (stream, arena views, workspace), made once and kept."""
        if not self._lanes:
            self.forward(np.zeros(self.model.options.inputs, np.float32))  # compiles and tunes the kernels first
        plan = self.arena_plan(1)
        while len(self._lanes) < n:
            arena, views = arena_views(self.backend, plan) if plan else (None, {})
            self._lanes.append(Lane(self.backend.stream(), arena, views, self.backend.empty(self.workspace_floats)))
        return self._lanes[:n]

    def _use_graph(self) -> bool:
        """A CUDA graph replays the pass on a real GPU (DARKNETPY_CUDA_GRAPH=0: never)."""
        if self.backend.is_cpu or self._graph is False or os.environ.get("DARKNETPY_CUDA_GRAPH") == "0":
            return False
        if self.backend.runtime.emulating():
            return False
        if self._graph is None:
            from ..gpu.graph import GraphForward

            def one_pass(x):
                outputs = self.run(x, 1, keep=False)
                return [outputs[i] for i in self.returned]
            try:
                self._graph = GraphForward(one_pass, self.model.options.inputs)
            except Exception as e:  # capture is an optimisation: fall back to launching each kernel
                if self.warn is not None:
                    print(f"darknetpy: CUDA graph capture failed ({type(e).__name__}: {e}); "
                          f"launching kernels one by one", file=self.warn)
                self._graph = False
        return self._graph is not False

    def profile(self, x: np.ndarray, repeat: int = 3) -> list[float]:
        """Each layer's median seconds over `repeat` forward passes, after one warm-up."""
        self.forward_layers(x, keep=False)
        runs = []
        for _ in range(repeat):
            runs.append([])
            self.forward_layers(x, keep=False, times=runs[-1])
        return [statistics.median(r[i] for r in runs) for i in range(len(self.layers))]
