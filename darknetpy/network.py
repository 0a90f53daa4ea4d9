"""The layer graph: cfg sections -> layers with shapes and weights -> forward pass."""
from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import cfg as cfgmod
from .backend import get_backend, plan_arena
from .cfg import COMMON_OPTIONS, Section, warn_unused
from .errors import CfgError, DarknetError
from .image import letterbox_image, load_image_color, to_float_chw
from .layers import LAYER_TYPES
from .layers.base import Layer, Numerics
from .layers.region import COMPAT
from .weights import WeightsHeader, load_layers, save_layers

NUMERICS = {
    # The stock -Ofast build: the reference.
    "darknet": Numerics("darknet", exact=True, ftz=True, vector=True, reciprocal=True),
    # The same sources built without fast-math (the kit's O2 flavor).
    "ieee": Numerics("ieee", exact=True, ftz=False, vector=False, reciprocal=False),
    # BLAS for the convolutions: not bit-exact, everything else as "darknet".
    "fast": Numerics("fast", exact=False, ftz=True, vector=True, reciprocal=True),
}

# [net] keys Darknet reads (parse_net_options); it reports none of them as unused.
_NET_INTS = ("batch", "subdivisions", "time_steps", "notruth", "random", "adam", "height", "width",
             "channels", "inputs", "max_crop", "min_crop", "center", "burn_in", "max_batches", "step")


def available_memory() -> int:
    """MemAvailable from /proc/meminfo, or a generous default where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 16 * 2**30


@dataclass
class NetOptions:
    batch: int
    width: int
    height: int
    channels: int
    inputs: int


def _net_options(section: Section) -> NetOptions:
    get = section.get_int
    batch = get("batch", 1)
    subdivisions = get("subdivisions", 1)
    if subdivisions < 1:
        raise CfgError(f"{section.where('subdivisions')}: subdivisions={subdivisions} must be at least 1")
    h, w, c = get("height", 0), get("width", 0), get("channels", 0)
    if min(h, w, c) < 0:
        raise CfgError(f"{section.where()}: width, height and channels must not be negative")
    inputs = get("inputs", h * w * c)
    if not inputs and not (h and w and c):
        raise CfgError(f"{section.where()}: no input size: set width, height and channels")
    if h and w and c and inputs != h * w * c:
        raise CfgError(f"{section.where('inputs')}: inputs={inputs} but width x height x channels = {h * w * c}")
    if inputs < 1:
        raise CfgError(f"{section.where('inputs')}: inputs={inputs} must be at least 1")
    for key in _NET_INTS:
        get(key, 0)
    section.get_str("policy")
    for opt in section.options:
        opt.used = True
    return NetOptions(max(batch // subdivisions, 1), w, h, c, inputs)


@dataclass
class _Lane:
    """One input's resources in a batch on the GPU."""
    stream: object
    arena: object
    views: dict
    workspace: object


def _drop_dead(outputs: list, last_use: list[int], index: int) -> None:
    """Forget the outputs no layer after `index` reads (the arena keeps their place)."""
    for i in range(len(outputs) - 1):
        if outputs[i] is not None and last_use[i] <= index:
            outputs[i] = None


class Network:
    """A Darknet network for inference (batch 1, as `network_predict` runs it).

    numerics: "darknet" (default, the stock -Ofast build bit for bit), "ieee" (the build
    without fast-math), or "fast" (Winograd/FMA convolutions, not bit-exact).
    compat: None (YOLO9000's tree as Darknet's GPU build computes it) or "darknet-cpu"
    (the stock CPU build's tree softmax, NaNs and all; see layers/region.py).
    device: "cpu" (default) or "cuda:N" (CuPy kernels, the same numerics on the GPU).
    """

    def __init__(self, cfg_path: str | os.PathLike, weights_path: str | os.PathLike | None = None,
                 numerics: str = "darknet", compat: str | None = None, warn=sys.stderr,
                 max_memory: int | None = None, device: str | int | None = "cpu"):
        if numerics not in NUMERICS:
            raise DarknetError(f"unknown numerics {numerics!r} (choose from {', '.join(NUMERICS)})")
        if compat not in COMPAT:
            raise DarknetError(f"unknown compat {compat!r} (the only choice is darknet-cpu)")
        self.cfg_path = os.fspath(cfg_path)
        self.warn = warn
        self.numerics = NUMERICS[numerics]
        self.compat = compat
        self.backend = get_backend(device)
        sections = cfgmod.read_cfg(self.cfg_path)
        self.options = _net_options(sections[0])
        self.layers: list[Layer] = []
        self._build(sections[1:], warn)
        self._check_memory(max_memory)
        self.header = WeightsHeader()
        if weights_path is not None:
            self.weights_path = os.fspath(weights_path)
            self.header = load_layers(self.weights_path, self.layers, warn)
        else:
            for layer in self.layers:
                layer.init_weights()
        for layer in self.layers:
            layer.upload()
        self.workspace = self.backend.empty(self.workspace_floats)
        self._arena_plan = None
        self._graph = None  # GraphForward once captured, False if capture failed
        self._lanes: list[_Lane] = []

    @property
    def device(self) -> str:
        return self.backend.device

    def _build(self, sections: list[Section], warn) -> None:
        o = self.options
        shape = (o.channels, o.height, o.width)
        if not (o.width and o.height and o.channels):
            shape = (o.inputs, 1, 1)
        for index, section in enumerate(sections):
            cls = LAYER_TYPES.get(section.type)
            if cls is None:
                raise CfgError(f"{section.file}:{section.line}: layer type {section.header} is not supported "
                               f"by darknetpy")
            layer = cls(index, section, shape, self)
            layer.backend = self.backend
            for key in COMMON_OPTIONS:
                section.get_str(key)
            if section.get_int("numload", 0):
                raise layer.error("numload is not supported (Darknet fills the rest randomly)", "numload")
            if section.get_int("dontload", 0):
                raise layer.error("dontload is not supported (Darknet leaves random weights)", "dontload")
            if hasattr(layer, "compat"):
                layer.compat = self.compat
            if warn is not None:
                warn_unused(section, warn)
            self.layers.append(layer)
            shape = layer.out_shape
        if not self.layers:
            raise CfgError(f"{self.cfg_path}: the cfg has a [net] section but no layers")

    @property
    def workspace_floats(self) -> int:
        sizes = [layer.workspace(self.backend, self.numerics.exact) for layer in self.layers]
        sizes += [self.layers[i].workspace_maxpool(self.layers[i + 1], self.numerics.exact)
                  for i in self.fused_pools]
        return max(sizes + [1])

    def memory_estimate(self) -> list[tuple[Layer, int]]:
        """Bytes each layer adds: its parameters and output (all outputs kept, as `dump`
        keeps them), plus the shared im2col workspace at the layer that needs most."""
        widest = max(self.layers, key=lambda layer: layer.workspace(self.backend, self.numerics.exact))
        return [(layer, 4 * (layer.parameter_floats() + layer.outputs
                             + (self.workspace_floats if layer is widest else 0))) for layer in self.layers]

    def _check_memory(self, limit: int | None) -> None:
        """Refuse, before allocating anything, a network that cannot fit in `limit` bytes."""
        limit = available_memory() if limit is None else limit
        total = 0
        for layer, nbytes in self.memory_estimate():
            total += nbytes
            if total > limit:
                raise CfgError(f"{layer.section.where()}: layer {layer.index} ({layer.type}, output "
                               f"{'x'.join(map(str, layer.out_shape))}) brings the network to {total / 2**20:.0f} MiB, "
                               f"over the {limit / 2**20:.0f} MiB limit (--max-memory)")

    @property
    def width(self) -> int:
        return self.options.width

    @property
    def height(self) -> int:
        return self.options.height

    @property
    def output_layer(self) -> Layer:
        """Darknet's `get_network_output_layer`: the last layer that is not [cost]."""
        for layer in reversed(self.layers):
            if layer.type != "cost":
                return layer
        return self.layers[-1]

    def summary_lines(self) -> list[str]:
        lines = ["layer     filters    size              input                output"]
        lines += [f"{layer.index:5d} {layer.summary()}" for layer in self.layers]
        total = sum(layer.bflops() for layer in self.layers)
        lines.append(f"Total BFLOPs {total:.3f}")
        return lines

    def forward_layers(self, x: np.ndarray, keep: bool = True, times: list | None = None) -> list[np.ndarray | None]:
        """Run every layer on x (c, h, w); returns each layer's flat float32 output.

        keep=True: every output in its own host array (what `dump` and the kit compare).
        keep=False: outputs live in the arena and one is dropped (None in the list) as soon
        as no later layer reads it; the output layer's array stays on the backend's device.
        A convolution in `fused_pools` runs with its maxpool and has no output of its own.
        times: a list that gets each layer's wall time in seconds (the device synchronised);
        a fused pair's time is the convolution's, its maxpool's about zero.
        """
        outputs = self._run(self.backend.upload(self._input(x)), keep, times)
        if keep and not self.backend.is_cpu:
            outputs = [self.backend.download(out) for out in outputs]
        return outputs

    def _input(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32).reshape(-1)
        if x.size != self.options.inputs:
            raise DarknetError(f"input has {x.size} floats, the network expects {self.options.inputs}")
        return x

    def _run(self, current, keep: bool, times: list | None) -> list:
        """The layers on an input already on the backend's device (see forward_layers)."""
        last_use = self.last_use if not keep else None
        fused = self.fused_pools if not keep else ()
        self.backend.use_arena(None if keep else self.arena_plan())
        outputs: list = []
        pooled = None
        for layer in self.layers:
            start = time.perf_counter()
            if pooled is not None:          # computed with the convolution before
                current, pooled = pooled, None
            elif layer.index in fused:
                pooled = layer.forward_maxpool(current, self.numerics, self.workspace, self.layers[layer.index + 1])
                current = None
            else:
                current = self._step(layer, outputs, current, self.workspace)
            if times is not None:
                self.backend.synchronize()
                times.append(time.perf_counter() - start)
            outputs.append(current)
            if last_use is not None:
                _drop_dead(outputs, last_use, layer.index)
        return outputs

    def _step(self, layer, outputs: list, current, workspace):
        if layer.type == "convolutional":
            return layer.forward(outputs, current, self.numerics, workspace)
        return layer.forward(outputs, current, self.numerics)

    def forward_batch(self, xs) -> list[np.ndarray]:
        """Several inputs, each output as `forward` gives it (the same bits).

        On a GPU each input runs on a CUDA stream of its own, with its own arena and
        workspace, the layers taken in step: one image's small layers leave most of the
        GPU idle, and the others' kernels fill it. On the CPU, one pass after another.
        """
        xs = [self._input(x) for x in xs]
        if self.backend.is_cpu or len(xs) < 2:
            return [self.forward(x) for x in xs]
        lanes = self._lanes_for(len(xs))
        last_use, layer_out = self.last_use, self.output_layer
        outputs: list[list] = [[] for _ in xs]
        currents = []
        for lane, x in zip(lanes, xs):
            with lane.stream:
                currents.append(self.backend.upload(x))
        for layer in self.layers:
            for i, lane in enumerate(lanes):
                with lane.stream:
                    self.backend.views = lane.views
                    currents[i] = self._step(layer, outputs[i], currents[i], lane.workspace)
                outputs[i].append(currents[i])
                _drop_dead(outputs[i], last_use, layer.index)
        self.backend.views = {}
        results = []
        for lane, out in zip(lanes, outputs):
            with lane.stream:
                results.append(self.backend.download(out[layer_out.index]).reshape(layer_out.out_shape))
        return results

    def _lanes_for(self, n: int) -> list:
        """`n` lanes (stream, arena views, workspace), made once and kept."""
        if not self._lanes:
            self.forward(np.zeros(self.options.inputs, np.float32))  # compiles and tunes the kernels first
        plan = self.arena_plan()
        while len(self._lanes) < n:
            arena, views = self.backend.arena_views(plan) if plan else (None, {})
            self._lanes.append(_Lane(self.backend.stream(), arena, views, self.backend.empty(self.workspace_floats)))
        return self._lanes[:n]

    @functools.cached_property
    def last_use(self) -> list[int]:
        """For each layer, the last layer that reads its output (directly or through an
        alias such as a one-source route); the output layer's lives to the end.
        Computed once: the graph does not change after it is built."""
        last = [i + 1 for i in range(len(self.layers))]
        last[self.output_layer.index] = len(self.layers)
        for layer in self.layers:
            for source in getattr(layer, "sources", ()):
                last[source] = max(last[source], layer.index)
        for layer in reversed(self.layers):
            source = layer.alias()
            if source is not None and source >= 0:  # -1: the network's input, no layer's
                last[source] = max(last[source], last[layer.index])
        return last

    @functools.cached_property
    def fused_pools(self) -> frozenset[int]:
        """The convolutions run together with the maxpool after them in a pass that keeps
        no outputs (see Convolutional.fuses): the pool is their only reader, so their own
        output, the largest buffers of a detector's first layers, is never in memory."""
        last, kept = self.last_use, self._owner(self.output_layer.index)
        return frozenset(layer.index for layer, after in zip(self.layers, self.layers[1:])
                         if layer.type == "convolutional" and last[layer.index] == after.index
                         and layer.index != kept and layer.fuses(after, self.numerics.exact))

    def _owner(self, index: int) -> int:
        """The layer whose buffer layer `index`'s output is (-1: the network's input)."""
        while index >= 0 and (source := self.layers[index].alias()) is not None:
            index = source
        return index

    def arena_plan(self) -> dict[int, tuple[int, int]]:
        """Arena offsets of the layers' outputs for a forward pass (see backend.plan_arena).
        The output layer's buffer (and what it aliases) stays out: the caller keeps it."""
        if self._arena_plan is None:
            last = self.last_use
            kept = self._owner(self.output_layer.index)
            fused = self.fused_pools
            sizes = {layer.index: layer.outputs for layer in self.layers
                     if layer.arena_output and layer.alias() is None and layer.index != kept
                     and layer.index not in fused}
            # a fused pool's buffer is written while its convolution runs
            live = {i: (i - 1 if i - 1 in fused else i, last[i]) for i in sizes}
            self._arena_plan = plan_arena(sizes, live)
        return self._arena_plan

    def profile(self, x: np.ndarray, repeat: int = 3) -> list[float]:
        """Each layer's median seconds over `repeat` forward passes, after one warm-up."""
        self.forward_layers(x, keep=False)
        runs = []
        for _ in range(repeat):
            runs.append([])
            self.forward_layers(x, keep=False, times=runs[-1])
        return [statistics.median(r[i] for r in runs) for i in range(len(self.layers))]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Darknet's `network_predict`: the output layer's output, shape (c, h, w), on the host."""
        layer = self.output_layer
        if self._use_graph():
            return self._graph(self._input(x)).reshape(layer.out_shape)
        out = self.forward_layers(x, keep=False)[layer.index]
        return self.backend.download(out).reshape(layer.out_shape)

    def _use_graph(self) -> bool:
        """A CUDA graph replays the pass on a real GPU (DARKNETPY_CUDA_GRAPH=0: never)."""
        if self.backend.is_cpu or self._graph is False or os.environ.get("DARKNETPY_CUDA_GRAPH") == "0":
            return False
        if self.backend.runtime.emulating():
            return False
        if self._graph is None:
            from .gpu.graph import GraphForward

            index = self.output_layer.index
            try:
                self._graph = GraphForward(lambda x: self._run(x, False, None)[index], self.options.inputs)
            except Exception as e:  # capture is an optimisation: fall back to launching each kernel
                if self.warn is not None:
                    print(f"darknetpy: CUDA graph capture failed ({type(e).__name__}: {e}); "
                          f"launching kernels one by one", file=self.warn)
                self._graph = False
        return self._graph is not False

    def letterbox(self, image: np.ndarray) -> np.ndarray:
        return letterbox_image(image, self.width, self.height)

    def load_input(self, path: str, decoder: str = "stb") -> np.ndarray:
        """An image file as `detector test` feeds it: loaded, then letterboxed."""
        return self.letterbox(load_image_color(path, decoder))

    def image(self, image, decoder: str = "stb") -> np.ndarray:
        """A path, an (h, w, 3) uint8 RGB array or a float32 (3, h, w) Darknet image ->
        the float32 (3, h, w) image."""
        if isinstance(image, (str, os.PathLike)):
            return load_image_color(image, decoder)
        a = np.asarray(image)
        if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3:
            return to_float_chw(a)
        if a.dtype == np.float32 and a.ndim == 3 and a.shape[0] == 3:
            return np.ascontiguousarray(a)
        raise DarknetError(f"an image must be a path, (h, w, 3) uint8 RGB or (3, h, w) float32; got "
                           f"{a.dtype} {a.shape}")

    def detect(self, image, thresh: float = 0.5, hier_thresh: float = 0.5, nms: float = 0.45,
               map=None, factors=None, decoder: str = "stb") -> list:
        """`detector test` on one image: the detections it prints, in Darknet's order.

        Each Detection keeps the classes whose probability is nonzero after NMS; those
        above `thresh` are the printed ones. `map`: a class map (a path such as
        data/coco9k.map, or a list) for a tree network, as Darknet's validation uses it.
        `factors`: the -Ofast box-correction factors (see detect.correct_region_boxes).
        A list of images gives a list of results, the images run as one batch
        (`forward_batch`: side by side on a GPU).
        """
        self._region()
        many = isinstance(image, (list, tuple))
        ims = [self.image(i, decoder) for i in (image if many else [image])]
        outs = self.forward_batch([self.letterbox(im) for im in ims])
        results = [self.detections(out, im.shape[2], im.shape[1], thresh, hier_thresh, nms, map, factors)
                   for out, im in zip(outs, ims)]
        return results if many else results[0]

    def _region(self):
        region = self.output_layer
        if region.type != "region":
            raise DarknetError(f"{self.cfg_path}: the last layer is [{region.type}], not [region]: not a detector")
        return region

    def detections(self, out: np.ndarray, w: int, h: int, thresh: float = 0.5, hier_thresh: float = 0.5,
                   nms: float = 0.45, map=None, factors=None, printed_only: bool = True) -> list:
        """The detections of a region output `out` for a `w` x `h` image (see `detect`).
        With a tree, `out` is modified in place, as Darknet's hierarchy products do.
        printed_only=False returns Darknet's whole detection array after NMS."""
        from .detect import do_nms_sort, get_region_detections
        from .layers.paths import read_map

        region = self._region()
        if isinstance(map, (str, os.PathLike)):
            map = read_map(os.fspath(map))
        dets = get_region_detections(out, classes=region.classes, coords=region.coords, num=region.num,
                                     biases=region.biases, w=w, h=h, netw=self.width, neth=self.height,
                                     thresh=thresh, hier_thresh=hier_thresh, tree=region.tree, map=map,
                                     background=region.background, factors=factors, ftz=self.numerics.ftz)
        if nms:
            do_nms_sort(dets, region.classes if map is None else len(map), nms, ftz=self.numerics.ftz)
        return [d for d in dets if d.classes_above(thresh)] if printed_only else dets

    def classify(self, image, top: int = 5, decoder: str = "stb") -> list[tuple[int, float]]:
        """`classifier predict` on one image: the top classes as (index, probability),
        after the tree's hierarchy products when the softmax has a tree."""
        from .detect import top_k
        from .tree import hierarchy_predictions

        out = self.forward(self.letterbox(self.image(image, decoder))).reshape(-1).copy()
        tree = getattr(self.output_layer, "tree", None)
        if tree is not None and self.output_layer.type == "softmax":
            hierarchy_predictions(out, min(out.size, tree.n), tree, True, 1, ftz=self.numerics.ftz)
        return [(i, out[i]) for i in top_k(out, top, ftz=self.numerics.ftz)]

    @property
    def classes(self) -> int:
        layer = self.output_layer
        return layer.classes if layer.type == "region" else layer.outputs

    def save_weights(self, path: str) -> None:
        save_layers(path, self.layers, self.header)
