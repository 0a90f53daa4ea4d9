"""Network: the public object. A model, an inference executor for it, and its heads."""
from __future__ import annotations

import os
import re
import sys
import time

import numpy as np

from .heads import classify, detection_layers
from .heads import detections as decode_detections
from .memory import available_memory
from .backend import get_backend
from .errors import CfgError, DarknetError
from .image import letterbox_image, load_image_color, to_float_chw
from .kernel_clock import kernel_seconds
from .layers.base import Layer
from .layers.region import COMPAT
from .model import DETECTION_TYPES, Model
from .numerics import NUMERICS
from .run.inference import InferenceExecutor

__all__ = ["NUMERICS", "Network"]


class Network:
    """A Darknet network for inference (batch 1, as `network_predict` runs it).

    numerics: "darknet" (default, the stock -Ofast build bit for bit), "ieee" (the build
    without fast-math), or "fast" (Winograd/FMA convolutions, not bit-exact).
    compat: None (YOLO9000's tree as Darknet's GPU build computes it) or "darknet-cpu"
    (the stock CPU build's tree softmax, NaNs and all; see layers/region.py).
    device: "cpu" (default) or "cuda:N" (CuPy kernels, the same numerics on the GPU).
    Without a weights file the parameters are zero (batch norm scales one), not trained:
    the outputs mean nothing. A weights file far larger than the cfg reads is refused as
    another model's unless allow_extra_weights=True (see weights.load_layers).
    names: the class names (a list, or a names file); default: those Darknet ships for
    the class count, found beside the cfg, else the class numbers (see `names`).
    """

    def __init__(self, cfg_path: str | os.PathLike, weights_path: str | os.PathLike | None = None,
                 numerics: str = "darknet", compat: str | None = None, warn=sys.stderr,
                 max_memory: int | None = None, device: str | int | None = "cpu",
                 allow_extra_weights: bool = False, names=None):
        if numerics not in NUMERICS:
            raise DarknetError(f"unknown numerics {numerics!r} (choose from {', '.join(NUMERICS)})")
        if compat not in COMPAT:
            raise DarknetError(f"unknown compat {compat!r} (the only choice is darknet-cpu)")
        self.warn = warn
        self.numerics = NUMERICS[numerics]
        self.compat = compat
        self.backend = get_backend(_checked_device(device))
        self.model = Model(cfg_path, compat, warn)
        self.executor = InferenceExecutor(self.model, self.backend, self.numerics, warn)
        self._check_memory(max_memory)
        if weights_path is not None:
            self.model.load_weights(weights_path, warn, allow_extra_weights)
        else:
            self.model.init_weights()
        self.executor.prepare()
        self._names = None
        if names is not None:
            self.names = names

    def __repr__(self) -> str:
        weights = repr(self.weights_path) if self.weights_path else "None (no weights file: zero parameters, untrained)"
        return f"Network({self.cfg_path!r}, {weights}, numerics={self.numerics.name!r}, device={self.device!r})"

    @property
    def names(self) -> list[str]:
        """The class names that `detect` gives its detections (`Detection.label`) and
        `classify` is read with: set them to a list or a names file; by default the names
        Darknet ships for the class count (data/coco.names for 80, ...), found from the
        cfg's folder, else the class numbers as text."""
        if self._names is None:
            from .data import names_by_class_count, read_names

            found = names_by_class_count(self.classes, self.cfg_path)
            self._names = [str(i) for i in range(self.classes)]
            if found is not None:
                try:
                    self._names = read_names(found[0], self.classes, self.cfg_path, None)
                except DarknetError:  # a short or unreadable file: the numbers, as for no file
                    pass
        return self._names

    @names.setter
    def names(self, names) -> None:
        from .data import read_names

        if isinstance(names, (str, os.PathLike)):
            names = read_names(os.fspath(names), self.classes, self.cfg_path, self.warn)
        names = [str(n) for n in names]
        if len(names) < self.classes:
            raise DarknetError(f"{len(names)} names, but {self.cfg_path} has {self.classes} classes")
        self._names = names

    def _check_memory(self, limit: int | None) -> None:
        """Refuse, before allocating anything, a network that cannot fit in `limit` bytes."""
        limit = available_memory() if limit is None else limit
        total = 0
        for layer, nbytes in self.executor.memory_estimate():
            total += nbytes
            if total > limit:
                raise CfgError(f"{layer.section.where()}: layer {layer.index} ({layer.type}, output "
                               f"{'x'.join(map(str, layer.out_shape))}) brings the network to {total / 2**20:.0f} MiB, "
                               f"over the {limit / 2**20:.0f} MiB limit (--max-memory)")

    # -- the model's description

    @property
    def layers(self) -> list[Layer]:
        return self.model.layers

    @property
    def options(self):
        return self.model.options

    @property
    def cfg_path(self) -> str:
        return self.model.cfg_path

    @property
    def weights_path(self) -> str | None:
        return self.model.weights_path

    @property
    def header(self):
        return self.model.header

    @property
    def device(self) -> str:
        return self.backend.device

    @property
    def width(self) -> int:
        return self.model.width

    @property
    def height(self) -> int:
        return self.model.height

    @property
    def output_layer(self) -> Layer:
        return self.model.output_layer

    @property
    def classes(self) -> int:
        layer = self.output_layer
        return layer.classes if layer.type in DETECTION_TYPES else layer.outputs

    @property
    def fused_pools(self) -> frozenset[int]:
        return self.executor.fused_pools

    @property
    def workspace(self):
        return self.executor.workspace

    def summary_lines(self) -> list[str]:
        return self.model.summary_lines()

    def memory_estimate(self) -> list[tuple[Layer, int]]:
        return self.executor.memory_estimate()

    def save_weights(self, path: str) -> None:
        self.model.save_weights(path)

    # -- running

    def forward_layers(self, x: np.ndarray, keep: bool = True, times: list | None = None) -> list:
        """Every layer's flat output for one input x (c, h, w); see InferenceExecutor."""
        return self.executor.forward_layers(x, keep, times)

    def profile(self, x: np.ndarray, repeat: int = 3) -> list[float]:
        return self.executor.profile(x, repeat)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Darknet's `network_predict`: the output layer's output, shape (c, h, w), on the host."""
        return self._outputs(self.executor.forward(x))[0]

    def _outputs(self, outs: list, image: int = 0) -> list[np.ndarray]:
        """One image's returned outputs: the output layer's first, then each detection layer's."""
        returned = self.executor.returned
        order = [self.output_layer.index] + [layer.index for layer in self.model.detection_layers]
        return [outs[returned.index(i)][image].reshape(self.layers[i].out_shape) for i in order]

    def forward_part(self, x: np.ndarray, only) -> list[np.ndarray]:
        """The outputs `_outputs` orders, of a pass that runs only the layers for which
        only(layer) is true (the others' outputs are left as their buffers hold them):
        to compile one part of the network's kernels (kernel_cache.py)."""
        return self._outputs(self.executor.forward(x, only=only))

    def forward_detection(self, x: np.ndarray) -> list[np.ndarray]:
        """Each detection layer's output for one input, (c, h, w), in network order: what
        `detections` decodes."""
        return self._outputs(self.executor.forward(x))[1:]

    def forward_batch(self, xs) -> list[np.ndarray]:
        """Several inputs, each output as `forward` gives it (the same bits): on a GPU side
        by side on streams of their own, on the CPU one pass after another."""
        return [outs[0] for outs in self._forward_many(xs)]

    def _forward_many(self, xs) -> list[list[np.ndarray]]:
        """Each input's outputs as `_outputs` orders them."""
        xs = list(xs)
        if self.backend.is_cpu or len(xs) < 2:
            return [self._outputs(self.executor.forward(x)) for x in xs]
        return [self._outputs(outs) for outs in self.executor.forward_lanes(xs)]

    # -- images

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

    # -- heads

    def require_detector(self) -> None:
        """Raise the project's error unless the network has a detection layer."""
        detection_layers(self.model)

    def detect(self, image, thresh: float = 0.5, hier_thresh: float = 0.5, nms: float = 0.45,
               map=None, factors=None, decoder: str = "stb") -> list:
        """`detector test` on one image: the detections it prints, in Darknet's order.

        Each Detection keeps the classes whose probability is nonzero after NMS; those
        above `thresh` are the printed ones. `map`: a class map (a path such as
        data/coco9k.map, or a list) for a tree network, as Darknet's validation uses it.
        `factors`: the -Ofast box-correction factors (see detect.correct_region_boxes).
        A list of images gives a list of results (on a GPU, run side by side).
        """
        self.require_detector()
        many = isinstance(image, (list, tuple))
        ims = [self.image(i, decoder) for i in (image if many else [image])]
        results = self.detect_inputs([self.letterbox(im) for im in ims], [(im.shape[2], im.shape[1]) for im in ims],
                                     thresh, hier_thresh, nms, map, factors)
        return results if many else results[0]

    def detect_inputs(self, xs, sizes, thresh: float = 0.5, hier_thresh: float = 0.5, nms: float = 0.45,
                      map=None, factors=None, seconds: list | None = None) -> list[list]:
        """Letterboxed inputs `xs` of images of `sizes` (w, h) -> each image's detections
        (see `detect`); the inputs run as one batch (on a GPU, side by side). `seconds`:
        a list that receives the time of the forward passes alone (what Darknet's
        "Predicted in" reports: network_predict, not the decoding and NMS after it)."""
        outs = self._timed(self._forward_many, xs, seconds)
        names = self.names
        results = []
        for o, (w, h) in zip(outs, sizes):
            dets = decode_detections(self.model, o[1:], w, h, thresh, hier_thresh, nms, map, factors, self.numerics.ftz)
            for d in dets:
                d.names, d.image_size = names, (w, h)
            results.append(dets)
        return results

    @staticmethod
    def _timed(fn, xs, seconds: list | None):
        """fn(xs), its time appended to `seconds` less the time its kernels took to load or
        compile (a first call): Darknet's `network_predict` time."""
        start, ready = time.perf_counter(), kernel_seconds()
        out = fn(xs)
        if seconds is not None:
            seconds.append(max(0.0, time.perf_counter() - start - (kernel_seconds() - ready)))
        return out

    def detections(self, out, w: int, h: int, thresh: float = 0.5, hier_thresh: float = 0.5,
                   nms: float = 0.45, map=None, factors=None, printed_only: bool = True) -> list:
        """The detections for a `w` x `h` image of `out`: the output of the detection layer,
        or a list of every detection layer's (see `detect`; a tree layer's is modified in
        place, as Darknet's hierarchy products do). printed_only=False returns Darknet's
        whole detection array after NMS."""
        outs = out if isinstance(out, (list, tuple)) else [out]
        return decode_detections(self.model, outs, w, h, thresh, hier_thresh, nms, map, factors, self.numerics.ftz,
                                printed_only)

    def require_classifier(self) -> None:
        """Raise the project's error if the network is a detector: its output is boxes,
        not one score per class, and top-k over it would be nonsense."""
        layers = self.model.detection_layers
        if layers:
            raise DarknetError(f"{self.cfg_path}: not a classifier: layer {layers[-1].index} is "
                               f"[{layers[-1].type}], a detector's (use detect or detector test)")

    def classify(self, image, top: int = 5, decoder: str = "stb") -> list[tuple[int, float]]:
        """`classifier predict` on one image: the top classes as (index, probability),
        after the tree's hierarchy products when the softmax has a tree (`names[index]`
        is the class's name). A detector raises DarknetError."""
        self.require_classifier()
        return self.classify_inputs([self.letterbox(self.image(image, decoder))], top)[0]

    def classify_inputs(self, xs, top: int = 5, seconds: list | None = None) -> list[list[tuple[int, float]]]:
        """Letterboxed inputs -> each one's top classes (see `classify`); `seconds`
        receives the forward passes' time, as in `detect_inputs`."""
        self.require_classifier()
        outs = self._timed(self._forward_many, xs, seconds)
        return [classify(self.model, o[0].reshape(-1).copy(), top, self.numerics.ftz) for o in outs]


_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def _checked_device(device):
    """The device as the backend takes it, or the project's error naming the forms."""
    if device is None or isinstance(device, int) or (isinstance(device, str) and _DEVICE.match(device.strip().lower())):
        return device
    raise DarknetError(f"invalid device {device!r}: use 'cpu', or 'cuda:N' for CUDA device N")
