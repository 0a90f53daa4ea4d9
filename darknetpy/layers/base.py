"""The layer contract: what every layer declares and does.

A layer is built from its cfg section and what the layers before it made (a `Build`):
it declares its `sources` (the layers whose outputs it reads; -1 is the network input),
its output shape, and its parameters; it never sees the network. At run time an
executor hands it a `Step` (its inputs, its output buffer, the backend's kernels, the
numerics) and calls `forward`. Training adds `backward` and `update` here, on the same
objects, not a second engine.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from ..cfg import Section
from ..errors import CfgError, DarknetError
from ..numerics import Numerics

NETWORK_INPUT = -1   # the source index of the network's input


@dataclass
class Build:
    """What a layer may know while it is built: the output shapes of the layers before it
    (`shape(-1)` is the network input's), where to print warnings, the compat switch."""

    input_shape: tuple[int, int, int]
    shapes: list = field(default_factory=list)
    warn: object = sys.stderr
    compat: str | None = None

    def shape(self, index: int) -> tuple[int, int, int]:
        return self.input_shape if index == NETWORK_INPUT else self.shapes[index]


@dataclass
class Parameter:
    """A parameter array: its value, as the weights file holds it, and Darknet's
    `*_updates` buffer (the gradient summed over a batch, then kept scaled by the momentum
    between steps), None until training allocates it. `learned`: changed by the update
    step (the rolling statistics of batch norm are not)."""

    value: np.ndarray | None = None
    updates: np.ndarray | None = None
    learned: bool = True


class ParameterValue:
    """`layer.weights` reads and sets `layer.params["weights"].value`; setting one counts
    in `layer.version`, so that executors prepare the parameters again."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        return layer.params[self.name].value

    def __set__(self, layer, value):
        layer.params[self.name].value = value
        layer.version += 1


@dataclass
class Step:
    """One call of a layer's forward pass: `inputs` are its sources' outputs in order, each
    (n, c, h, w); `out` is the buffer to write, (n, *out_shape), None for a layer whose
    output is its source's buffer; `state` is what `prepare` made for this executor."""

    inputs: list
    out: object
    kernels: object
    numerics: Numerics
    workspace: object = None
    state: object = None
    train: bool = False          # Darknet's net->train: training-mode forward
    delta: object = None         # this layer's delta (n, *out_shape) float32; zeroed by the executor
                                 # just before this layer's forward (Darknet's forward_network fill_cpu)
    source_deltas: list = None   # the sources' deltas in `sources` order; None entries where Darknet
                                 # has no delta (the network input: layer 0 computes no input delta)
    truth: object = None         # net->truth for this datum: (n, truths) float32 (region: 30*5 per image)
    seen: int = 0                # *net->seen after this datum's increment
    log: object = None           # callable(str): where a layer prints a training line (Region Avg IOU ...)

    @property
    def x(self):
        return self.inputs[0]


class Layer:
    """A Darknet layer: sources, shapes, parameters, forward (backward and update to come).

    Class attributes a layer type sets:
    `aliases`: the output is the first source's buffer (dropout; a one-source route);
    `writes_output`: forward writes a buffer the executor gives it (`step.out`); a layer
    with neither returns an array of its own.
    """

    type = "layer"
    aliases = False
    writes_output = False
    cost = None    # a loss layer's Darknet `*l.cost` (np.float32) after a training forward

    def __init__(self, index: int, section: Section, build: Build):
        self.index = index
        self.section = section
        self.params: dict[str, Parameter] = {}
        self.version = 0    # counts the parameters set (see ParameterValue)
        self.sources = self.read_sources(section, build)
        self.in_shape = build.shape(self.sources[0])
        self.out_shape = self.in_shape

    def read_sources(self, section: Section, build: Build) -> list[int]:
        """The layers this one reads (NETWORK_INPUT for the input): the one before it."""
        return [self.index - 1]

    @property
    def inputs(self) -> int:
        return math.prod(self.in_shape)

    @property
    def outputs(self) -> int:
        return math.prod(self.out_shape)

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

    # -- parameters and the weights file

    def weight_arrays(self, header) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of each array the weights file holds for this layer, in file order."""
        return []

    def set_weights(self, arrays: dict, header) -> None:
        """Take the arrays read from a weights file (see `weight_arrays`)."""

    def init_weights(self) -> None:
        """Parameters for a network built without a weights file."""

    def saved_weights(self) -> dict:
        """name -> array as `save_weights` writes it (Darknet's layout)."""
        return {name: p.value for name, p in self.params.items()}

    def parameter_floats(self) -> int:
        return 0

    # -- execution

    def prepare(self, kernels, place, exact: bool):
        """What `forward` needs made once per executor: parameters on the device (`place`
        copies a host array there) in the form the kernels take. None for most layers."""
        return None

    def workspace(self, kernels, exact: bool) -> int:
        """Floats of scratch memory the layer's forward needs (shared by all layers)."""
        return 0

    def forward(self, step: Step):
        """Compute the output from `step.inputs` into `step.out`; return the output."""
        raise NotImplementedError

    def backward(self, step: Step):
        """Darknet's backward_*_layer: deltas to the sources and to the parameters."""
        raise DarknetError(f"layer {self.index} ({self.type}): training is not supported yet")

    def update(self, kernels, learning_rate: float, momentum: float, decay: float, batch: int,
               ftz: bool = True) -> None:
        """Darknet's update_*_layer: SGD with momentum and weight decay on `params`, by the
        backend's training `kernels` (ftz: flush-to-zero as the stock build)."""
        raise DarknetError(f"layer {self.index} ({self.type}): training is not supported yet")

    # -- description

    def bflops(self) -> float:
        return 0.0

    def summary(self) -> str:
        raise NotImplementedError
