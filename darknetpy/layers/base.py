"""What every layer has: its place in the graph, its shapes, its (possibly no) weights."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..cfg import Section
from ..errors import CfgError


@dataclass(frozen=True)
class Numerics:
    """How arithmetic is done; see `darknetpy.network.NUMERICS`."""

    name: str
    exact: bool      # GEMM summed in Darknet's order, no FMA
    ftz: bool        # flush-to-zero / denormals-are-zero (the -Ofast build)
    vector: bool     # -Ofast softmax (libmvec expf, 4-lane sums, reciprocal)
    reciprocal: bool  # -Ofast avgpool (multiply by 1/(h*w))


class Layer:
    """A Darknet layer built from its cfg section and the shape of its input.

    `backend` (set by the network) holds the kernels and the arrays' device; a layer
    whose forward writes a new buffer takes it from `backend.output(self)`.
    """

    type = "layer"
    backend = None
    # The layer's output is the buffer of the layer before it (dropout).
    aliases_input = False
    # The layer writes its output into `backend.output(self)` (an arena place).
    arena_output = False

    def __init__(self, index: int, section: Section, in_shape: tuple[int, int, int], net):
        self.index = index
        self.section = section
        self.in_shape = in_shape
        self.out_shape = in_shape
        self.outputs = math.prod(in_shape)

    @property
    def inputs(self) -> int:
        return math.prod(self.in_shape)

    def error(self, message: str, key: str | None = None) -> CfgError:
        return CfgError(f"{self.section.where(key)}: layer {self.index} ({self.type}): {message}")

    def image_input(self) -> tuple[int, int, int]:
        """The input's (c, h, w), for layers that need an image (not a flat vector)."""
        c, h, w = self.in_shape
        if not (c and h and w):
            raise self.error("the layer before must output an image")
        return c, h, w

    def positive(self, key: str, default: int) -> int:
        value = self.section.get_int(key, default)
        if value < 1:
            raise self.error(f"{key}={value} must be at least 1", key)
        return value

    def weight_arrays(self, header) -> list[tuple[str, tuple[int, ...]]]:
        return []

    def set_weights(self, arrays: dict, header) -> None:
        pass

    def upload(self) -> None:
        """Copy the parameters to the backend's device (once, after loading)."""

    def init_weights(self) -> None:
        """Parameters for a network built without a weights file."""

    def parameter_floats(self) -> int:
        return 0

    def saved_weights(self) -> dict:
        return {}

    def workspace(self, backend, exact: bool = True) -> int:
        """Floats of scratch memory the layer's forward needs on `backend` (shared by all)."""
        return 0

    def bflops(self) -> float:
        return 0.0

    def summary(self) -> str:
        raise NotImplementedError

    def alias(self) -> int | None:
        """The index of the earlier layer whose buffer this layer's output is, if any."""
        return self.index - 1 if self.aliases_input else None

    def forward(self, outputs: list, x, numerics: Numerics):
        """x: the previous output (flat float32); outputs: every earlier layer's output."""
        raise NotImplementedError
