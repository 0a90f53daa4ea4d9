"""Network: the public object. A model, an inference executor for it, and its heads."""
from __future__ import annotations

import os
import sys

import numpy as np

from .heads import classify, detection_layers
from .heads import detections as decode_detections
from .memory import available_memory
from .backend import get_backend
from .errors import CfgError, DarknetError
from .image import letterbox_image, load_image_color, to_float_chw
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
    Without a weights file the parameters are zero (batch norm scales one), not trained.
    """

    def __init__(self, cfg_path: str | os.PathLike, weights_path: str | os.PathLike | None = None,
                 numerics: str = "darknet", compat: str | None = None, warn=sys.stderr,
                 max_memory: int | None = None, device: str | int | None = "cpu"):
        if numerics not in NUMERICS:
            raise DarknetError(f"unknown numerics {numerics!r} (choose from {', '.join(NUMERICS)})")
        if compat not in COMPAT:
            raise DarknetError(f"unknown compat {compat!r} (the only choice is darknet-cpu)")
        self.warn = warn
        self.numerics = NUMERICS[numerics]
        self.compat = compat
        self.backend = get_backend(device)
        self.model = Model(cfg_path, compat, warn)
        self.executor = InferenceExecutor(self.model, self.backend, self.numerics, warn)
        self._check_memory(max_memory)
        if weights_path is not None:
            self.model.load_weights(weights_path, warn)
        else:
            self.model.init_weights()
        self.executor.prepare()

    def __repr__(self) -> str:
        weights = self.weights_path or "no weights file: zero parameters"
        return f"Network({self.cfg_path!r}, {weights!r}, numerics={self.numerics.name!r}, device={self.device!r})"

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
                      map=None, factors=None) -> list[list]:
        """Letterboxed inputs `xs` of images of `sizes` (w, h) -> each image's detections
        (see `detect`); the inputs run as one batch (on a GPU, side by side)."""
        outs = self._forward_many(xs)
        return [decode_detections(self.model, o[1:], w, h, thresh, hier_thresh, nms, map, factors, self.numerics.ftz)
                for o, (w, h) in zip(outs, sizes)]

    def detections(self, out, w: int, h: int, thresh: float = 0.5, hier_thresh: float = 0.5,
                   nms: float = 0.45, map=None, factors=None, printed_only: bool = True) -> list:
        """The detections for a `w` x `h` image of `out`: the output of the detection layer,
        or a list of every detection layer's (see `detect`; a tree layer's is modified in
        place, as Darknet's hierarchy products do). printed_only=False returns Darknet's
        whole detection array after NMS."""
        outs = out if isinstance(out, (list, tuple)) else [out]
        return decode_detections(self.model, outs, w, h, thresh, hier_thresh, nms, map, factors, self.numerics.ftz,
                                printed_only)

    def classify(self, image, top: int = 5, decoder: str = "stb") -> list[tuple[int, float]]:
        """`classifier predict` on one image: the top classes as (index, probability),
        after the tree's hierarchy products when the softmax has a tree."""
        out = self.forward(self.letterbox(self.image(image, decoder))).reshape(-1).copy()
        return classify(self.model, out, top, self.numerics.ftz)
