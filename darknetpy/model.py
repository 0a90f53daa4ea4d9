"""The model: cfg sections -> layers with shapes and parameters. No execution state.

An executor (darknetpy/run/) runs a model on a backend; heads (darknetpy/heads.py) read
its detection or classification layers' outputs.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from .cfg import COMMON_OPTIONS, Section, read_cfg, warn_unused
from .errors import CfgError
from .layers import LAYER_TYPES
from .layers.base import Build, Layer
from .weights import WeightsHeader, load_layers, save_layers

# [net] keys Darknet reads (parse_net_options); it reports none of them as unused.
NET_INTS = ("batch", "subdivisions", "time_steps", "notruth", "random", "adam", "height", "width",
            "channels", "inputs", "max_crop", "min_crop", "center", "burn_in", "max_batches", "step")
# Layers whose outputs hold boxes, walked in order as Darknet's fill_network_boxes does.
DETECTION_TYPES = ("region", "yolo")


@dataclass
class NetOptions:
    batch: int
    width: int
    height: int
    channels: int
    inputs: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(c, h, w) of the network's input; a flat input is (inputs, 1, 1)."""
        if self.width and self.height and self.channels:
            return self.channels, self.height, self.width
        return self.inputs, 1, 1


def net_options(section: Section) -> NetOptions:
    """The [net] section as Darknet's parse_net_options reads it (batch / subdivisions)."""
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
    for key in NET_INTS:
        get(key, 0)
    section.get_str("policy")
    for opt in section.options:
        opt.used = True
    return NetOptions(max(batch // subdivisions, 1), w, h, c, inputs)


def build_layers(sections: list[Section], build: Build, cfg_path: str) -> list[Layer]:
    """One layer per section, each given the shapes of those before it."""
    layers = []
    for index, section in enumerate(sections):
        cls = LAYER_TYPES.get(section.type)
        if cls is None:
            raise CfgError(f"{section.file}:{section.line}: layer type {section.header} is not supported "
                           f"by darknetpy")
        layer = cls(index, section, build)
        for key in COMMON_OPTIONS:
            section.get_str(key)
        if section.get_int("numload", 0):
            raise layer.error("numload is not supported (Darknet fills the rest randomly)", "numload")
        if section.get_int("dontload", 0):
            raise layer.error("dontload is not supported (Darknet leaves random weights)", "dontload")
        if build.warn is not None:
            warn_unused(section, build.warn)
        layers.append(layer)
        build.shapes.append(layer.out_shape)
    if not layers:
        raise CfgError(f"{cfg_path}: the cfg has a [net] section but no layers")
    return layers


class Model:
    """A Darknet network's graph and parameters, as its cfg and weights files give them.

    compat: None or "darknet-cpu" (YOLO9000's tree softmax as the stock CPU build computes
    it; see layers/region.py). Parameters are zero (scales one) until `load_weights`.
    """

    def __init__(self, cfg_path: str | os.PathLike, compat: str | None = None, warn=sys.stderr):
        self.cfg_path = os.fspath(cfg_path)
        sections = read_cfg(self.cfg_path)
        self.options = net_options(sections[0])
        build = Build(self.options.input_shape, warn=warn, compat=compat)
        self.layers: list[Layer] = build_layers(sections[1:], build, self.cfg_path)
        self.header = WeightsHeader()
        self.weights_path: str | None = None

    def load_weights(self, path: str | os.PathLike, warn=sys.stderr, allow_extra: bool = False) -> None:
        self.weights_path = os.fspath(path)
        self.header = load_layers(self.weights_path, self.layers, warn, allow_extra, self.cfg_path)

    def init_weights(self) -> None:
        for layer in self.layers:
            layer.init_weights()

    def save_weights(self, path: str | os.PathLike) -> None:
        save_layers(path, self.layers, self.header)

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

    @property
    def detection_layers(self) -> list[Layer]:
        """The [region] and [yolo] layers, in the order Darknet decodes them."""
        return [layer for layer in self.layers if layer.type in DETECTION_TYPES]

    def summary_lines(self) -> list[str]:
        lines = ["layer     filters    size              input                output"]
        lines += [f"{layer.index:5d} {layer.summary()}" for layer in self.layers]
        total = sum(layer.bflops() for layer in self.layers)
        lines.append(f"Total BFLOPs {total:.3f}")
        return lines
