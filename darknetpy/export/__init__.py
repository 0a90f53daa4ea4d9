"""A loaded network as an ONNX model or a PyTorch module, with Darknet's semantics.

    net = darknetpy.load("yolov2.cfg", "yolov2.weights")
    darknetpy.export.save_onnx(net, "yolov2.onnx", decode=True)
    module = darknetpy.export.to_torch(net)

`detections(boxes, scores, objectness)` turns a decoded export's outputs for one image
into the Detections `Network.detect` gives (Darknet's thresholds and NMS).

graph.py walks the layers once (batch norm folded by Darknet's formula, maxpool's
padding, reorg's permutation, the region and tree softmaxes); onnx.py and torch.py
build the same ops from that walk. `onnx` (the `export` extra) and `torch` are needed
only by the builder that uses them.
"""
from __future__ import annotations

import importlib

from ..errors import DarknetError
from ..fileio import atomic_write
from .decode import detections
from .graph import Graph, Unsupported, model_info, walk

__all__ = ["Graph", "Unsupported", "detections", "save_onnx", "to_onnx", "to_torch", "walk"]


def _need(package: str, extra: str):
    try:
        return importlib.import_module(package)
    except ImportError:
        raise DarknetError(f"exporting needs the {package} package: pip install 'darknet-exact[{extra}]'") from None


def to_onnx(net, *, opset: int = 17, batch: int | None = 1, size: tuple[int, int] | None | str = "cfg",
            decode: bool = False, hier_thresh: float = 0.5, names: list[str] | None = None):
    """The network as an onnx.ModelProto (checked by onnx.checker).

    batch: a fixed batch size or None (dynamic). size: "cfg" (the cfg's width x height),
    (width, height), or None (dynamic). decode: outputs `boxes` and `scores` (input
    `image_size`) in place of `output`; see darknetpy/export/onnx.py. names: the class
    names, kept in the model's metadata with the input size, letterbox and anchors.
    """
    _need("onnx", "export")
    from . import onnx as builder

    graph = walk(net)
    if size == "cfg":
        size = (net.width, net.height)
    info = model_info(net, graph, names, size, decode, hier_thresh)
    return builder.build(graph, opset=opset, batch=batch, size=size, decode=decode, hier_thresh=hier_thresh,
                         metadata=info, name=f"darknet {net.cfg_path}")


def save_onnx(net, path: str, **options) -> list[str]:
    """to_onnx(net, **options) written to `path` atomically (nothing is left under that
    name if building or writing fails); returns the model's output names."""
    model = to_onnx(net, **options)
    data = model.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return [o.name for o in model.graph.output]


def to_torch(net, decode: bool = False, hier_thresh: float = 0.5, names: list[str] | None = None):
    """The network as a torch.nn.Module in eval mode: `module(x)` for x (batch, c, h, w);
    with decode, `module(x, image_size)` -> (boxes, scores, objectness). state_dict keys
    `layers.<Darknet layer index>.weight`/`.bias`; `module.darknet` holds the metadata."""
    _need("torch", "torch")
    from . import torch as builder

    graph = walk(net)
    info = model_info(net, graph, names, None, decode, hier_thresh)
    return builder.build(graph, decode=decode, hier_thresh=hier_thresh, info=info)
