"""The walk over a network's layers that both exporters share: Darknet's semantics as plain ops.

`walk(net)` turns a darknetpy Network into a `Graph`: one dict per layer kept, holding
numpy arrays, numbers and this module's TreeTables only (no layer objects: it pickles for
a child process), with everything the ONNX and PyTorch builders need worked out here, once:

* convolution: batch norm folded into the weights and bias by Darknet's own formula
  `(x - mean) / (sqrt(var) + 1e-6f) * scale + bias` (not `sqrt(var + eps)`), in float64,
  rounded once to float32; the activation by name (Darknet has fourteen);
* maxpool: Darknet's window origin is -(padding/2) and taps outside the image are
  skipped, so the pads are padding/2 before and padding - padding/2 after, padded with
  -inf: that gives Darknet's output size (h + padding - size)/stride + 1 at any input
  size, and the same taps (a size-2 stride-1 pool keeps the size);
* reorg: the permutation `reorg_cpu(..., forward=0)` makes (or its inverse, reverse=1),
  a reshape, transpose and reshape (see `reorg_numpy`);
* region and softmax: their logistic, softmax and WordNet-tree softmax, the tree given as
  index tables (`TreeTables`) so that the builders need no loop over its 1846 groups.

The builders compute shapes from their inputs at run time, so one graph serves any batch
and any input size that Darknet's formulas allow; `shapes` checks a size against them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DarknetError

ACTIVATIONS = ("logistic", "relu", "relie", "linear", "ramp", "tanh", "plse", "leaky", "elu", "loggy",
               "stair", "hardtan", "lhtan", "selu")
# Darknet's ACTIVATION enum order (darknetpy.cpu.activations.CODES): code -> name
ACTIVATION_NAMES = dict(enumerate(ACTIVATIONS))

# Letterboxed input, as darknetpy.network.Network.letterbox and Darknet's letterbox_image make it.
LETTERBOX = ("darknet letterbox_image: RGB float32 in [0, 1], (3, height, width); the image resized "
             "(Darknet's bilinear resize_image) to fit the input keeping its aspect ratio, centred on a "
             "canvas filled with 0.5")


class Unsupported(DarknetError):
    """A layer (or an option of one) that the exporters cannot express."""


@dataclass
class TreeTables:
    """A WordNet tree (darknetpy.tree.Tree) as the index arrays the exporters gather with.

    Softmax: the groups in buckets of equal padded size (the next power of two), so that
    each bucket is one gather, one softmax and the padding masked out. `buckets` holds
    (index (groups, width) into the tree's entries, mask (groups, width): 0 or -big);
    `inverse[j]` is entry j's place in the buckets' outputs laid end to end.
    Hierarchy (decoding): `parent` (a root points at itself, `is_root` says which),
    `depth` the longest path; `group_index`/`group_valid` (groups, widest group) list each
    group's entries, `child[j]` the group below entry j (-1: a leaf),
    `group_parent[g]` the parent of group g's first entry.
    """

    n: int
    buckets: list = field(default_factory=list)
    inverse: np.ndarray = None
    parent: np.ndarray = None
    is_root: np.ndarray = None
    depth: int = 0
    group_index: np.ndarray = None
    group_valid: np.ndarray = None
    child: np.ndarray = None
    group_parent: np.ndarray = None


MASKED = np.float32(np.finfo(np.float32).min)


def tree_tables(tree) -> TreeTables:
    """The tables of `tree` (a darknetpy.tree.Tree)."""
    offsets = np.asarray(tree.group_offset, np.int64)
    sizes = np.asarray(tree.group_size, np.int64)
    n = int(tree.n)
    tables = TreeTables(n=n)
    widths = np.array([1 << max(int(s) - 1, 0).bit_length() for s in sizes], np.int64)
    place = 0
    inverse = np.zeros(n, np.int64)
    for width in sorted({int(w) for w, s in zip(widths, sizes) if s > 0}):
        groups = np.nonzero((widths == width) & (sizes > 0))[0]
        index = np.zeros((len(groups), width), np.int64)
        mask = np.full((len(groups), width), MASKED, np.float32)
        for row, g in enumerate(groups):
            members = offsets[g] + np.arange(sizes[g])
            index[row, :sizes[g]] = members
            mask[row, :sizes[g]] = 0
            inverse[members] = place + row * width + np.arange(sizes[g])
        tables.buckets.append((index, mask))
        place += index.size
    tables.inverse = inverse
    parent = np.asarray(tree.parent, np.int64)
    tables.is_root = parent < 0
    tables.parent = np.where(parent < 0, np.arange(n), parent)
    depth = np.zeros(n, np.int64)
    for j in range(n):             # parents come before their children in a tree file
        depth[j] = 0 if parent[j] < 0 else depth[parent[j]] + 1
    tables.depth = int(depth.max(initial=0))
    widest = max(int(sizes.max(initial=1)), 1)
    tables.group_index = np.zeros((len(sizes), widest), np.int64)
    tables.group_valid = np.zeros((len(sizes), widest), bool)
    for g, (off, size) in enumerate(zip(offsets, sizes)):
        tables.group_index[g, :size] = off + np.arange(size)
        tables.group_valid[g, :size] = True
    tables.child = np.asarray(tree.child, np.int64)
    tables.group_parent = np.array([parent[off] if size > 0 and off < n else -1
                                    for off, size in zip(offsets, sizes)], np.int64)
    return tables


NETWORK_INPUT = -1               # a source index: the network's input (darknetpy.layers.base)
DETECTION_TYPES = ("region", "yolo")


@dataclass
class Graph:
    """A network as ops, in layer order, up to the last of `outputs` (see `walk`). Each op
    reads the outputs of its `sources` (layer indices; NETWORK_INPUT is the input)."""

    input_shape: tuple            # (c, h, w) of the cfg
    ops: list = field(default_factory=list)
    outputs: list = field(default_factory=list)   # the layers whose outputs the graph returns

    @property
    def output(self) -> int:
        """The last layer the graph returns (the only one, but for YOLOv3's)."""
        return self.outputs[-1]

    @property
    def out_shape(self) -> tuple:
        """The output's (c, h, w) at the cfg's size."""
        return next(op["out_shape"] for op in self.ops if op["index"] == self.output)

    @property
    def detections(self) -> list[dict]:
        """The [region] and [yolo] ops, in the order Darknet decodes them."""
        return [op for op in self.ops if op["type"] in DETECTION_TYPES]


def fold_batchnorm(layer) -> tuple[np.ndarray, np.ndarray]:
    """(filters, c/groups, size, size) weights and (filters,) bias with Darknet's batch norm folded."""
    c = layer.in_shape[0] // layer.groups
    w = layer.weights.astype(np.float64).reshape(layer.filters, c, layer.size, layer.size)
    b = layer.biases.astype(np.float64)
    if layer.batch_normalize:
        inv = layer.scales.astype(np.float64) / (np.sqrt(layer.rolling_variance.astype(np.float64))
                                                 + np.float64(np.float32(1e-6)))
        w = w * inv[:, None, None, None]
        b = b - layer.rolling_mean.astype(np.float64) * inv
    return np.ascontiguousarray(w, np.float32), np.ascontiguousarray(b, np.float32)


def maxpool_pads(padding: int) -> tuple[int, int]:
    """(before, after) pads giving Darknet's maxpool windows and output size."""
    return padding // 2, padding - padding // 2


def _convolutional(layer, op):
    if layer.activation_name not in ACTIVATIONS:
        raise _unsupported(layer, f"activation {layer.activation_name}")
    w, b = fold_batchnorm(layer)
    _, oh, ow = layer.out_shape
    op.update(weight=w, bias=b, size=layer.size, stride=layer.stride, padding=layer.padding,
              groups=layer.groups, activation=layer.activation_name, filters=layer.filters,
              k=w[0].size, n=oh * ow)


def _maxpool(layer, op):
    if layer.padding < 0:
        raise _unsupported(layer, f"padding={layer.padding} (negative)")
    before, after = maxpool_pads(layer.padding)
    if after >= layer.size:
        raise _unsupported(layer, f"padding={layer.padding} with size={layer.size} (a window can lie wholly "
                                  f"outside the image)")
    op.update(size=layer.size, stride=layer.stride, pads=(before, before, after, after))


def _shortcut(layer, op):
    c, h, w = layer.in_shape
    c1, h1, w1 = layer.add_shape
    if w1 < w or h1 < h:
        raise _unsupported(layer, f"a sum with the smaller {w1}x{h1} output of layer {layer.sources[1]}")
    op.update(activation=ACTIVATION_NAMES.get(layer.activation), alpha=float(layer.alpha), beta=float(layer.beta),
              stride=max(w1 // w, 1), channels=min(c, c1), add_channels=c1)


def _upsample(layer, op):
    op.update(stride=layer.stride, scale=float(layer.scale))


def _yolo(layer, op):
    anchors = np.array([layer.biases[2 * m:2 * m + 2] for m in layer.mask], np.float32).reshape(-1)
    op.update(num=layer.num, classes=layer.classes, coords=4, softmax=False, background=False, anchors=anchors,
              tree=None)


def _reorg(layer, op):
    op.update(stride=layer.stride, reverse=bool(layer.reverse))


def _softmax(layer, op):
    op.update(groups=layer.groups, temperature=float(layer.temperature),
              tree=tree_tables(layer.tree) if layer.tree is not None else None)


def _region(layer, op):
    if layer.compat is not None:
        raise _unsupported(layer, f"compat={layer.compat} (the stock CPU build's tree softmax, NaN over "
                                  f"anchor 0; load the network without compat)")
    if layer.coords < 4:
        raise _unsupported(layer, f"coords={layer.coords} (fewer than the 4 box coordinates)")
    op.update(num=layer.num, classes=layer.classes, coords=layer.coords, softmax=bool(layer.softmax),
              background=bool(layer.background), anchors=np.array(layer.biases[:2 * layer.num], np.float32),
              tree=tree_tables(layer.tree) if layer.tree is not None else None)


def _nothing(layer, op):
    """Nothing besides the sources (avgpool, route; dropout, whose output is its input at inference)."""


# layer type -> (op type, fills the op from the layer)
OPS = {
    "convolutional": ("conv", _convolutional),
    "maxpool": ("maxpool", _maxpool),
    "avgpool": ("avgpool", _nothing),
    "route": ("route", _nothing),
    "reorg": ("reorg", _reorg),
    "softmax": ("softmax", _softmax),
    "region": ("region", _region),
    "dropout": ("identity", _nothing),
    "shortcut": ("shortcut", _shortcut),
    "upsample": ("upsample", _upsample),
    "yolo": ("yolo", _yolo),
}


def check_decodable(graph: Graph) -> None:
    """Raise the project's error unless decoding `graph` makes sense: detection layers of
    one type ([region] or [yolo]) with one class count."""
    layers = graph.detections
    if not layers:
        last = graph.ops[-1]
        raise DarknetError(f"--decode: the output layer {last['index']} is [{last['type']}] and no layer is "
                           f"[region] or [yolo]: nothing to decode")
    kinds = {op["type"] for op in layers}
    if len(kinds) > 1 or len({op["classes"] for op in layers}) > 1:
        raise DarknetError("--decode: the detection layers mix [region] and [yolo] or class counts")


def _unsupported(layer, what: str) -> Unsupported:
    section = getattr(layer, "section", None)
    where = f"{section.where()}: " if section is not None else ""
    return Unsupported(f"{where}layer {layer.index} ({layer.type}): cannot export {what}")


def walk(net, last: int | None = None) -> Graph:
    """The ops of `net` up to its outputs: the detection layers ([region], [yolo]) if it
    has any, else the output layer (the last that is not [cost], what `net.forward`
    returns); with `last`, that layer's output alone."""
    if not (net.width and net.height and net.options.channels):
        raise Unsupported(f"{net.cfg_path}: the network's input is not an image (set width, height and "
                          f"channels in [net])")
    if last is not None:
        outputs = [last]
    else:
        outputs = [layer.index for layer in net.layers if layer.type in DETECTION_TYPES] or [net.output_layer.index]
    graph = Graph(input_shape=(net.options.channels, net.height, net.width), outputs=outputs)
    for layer in net.layers[:max(outputs) + 1]:
        kind = OPS.get(layer.type)
        if kind is None:
            raise _unsupported(layer, f"a [{layer.type}] layer")
        op = {"type": kind[0], "index": layer.index, "sources": list(layer.sources),
              "in_shape": tuple(layer.in_shape), "out_shape": tuple(layer.out_shape)}
        kind[1](layer, op)
        graph.ops.append(op)
    return graph


def shapes(graph: Graph, h: int, w: int) -> dict[int, tuple[int, int, int]]:
    """Each op's output (c, h, w) for an h x w input, by Darknet's formulas; an input
    size the network cannot take raises a DarknetError naming the layer."""
    size = f"{w}x{h}"
    out: dict[int, tuple[int, int, int]] = {NETWORK_INPUT: (graph.input_shape[0], h, w)}
    for op in graph.ops:
        shape = c, h, w = out[op["sources"][0]]
        t, i = op["type"], op["index"]
        if t == "conv":
            p, k, s = op["padding"], op["size"], op["stride"]
            shape = (op["filters"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        elif t == "maxpool":
            before, _, after, _ = op["pads"]
            k, s = op["size"], op["stride"]
            shape = (c, (h + before + after - k) // s + 1, (w + before + after - k) // s + 1)
        elif t == "avgpool":
            shape = (c, 1, 1)
        elif t == "route":
            first = out[op["sources"][0]]
            if any(out[j][1:] != first[1:] for j in op["sources"]):
                raise DarknetError(f"layer {i} (route): with a {size} input its sources differ in size")
            shape = (sum(out[j][0] for j in op["sources"]),) + first[1:]
        elif t == "reorg":
            s = op["stride"]
            if op["reverse"]:
                shape = (c // (s * s), h * s, w * s)
            elif h % s or w % s:
                raise DarknetError(f"layer {i} (reorg): with a {size} input, stride {s} does not divide "
                                   f"its {w}x{h} input")
            else:
                shape = (c * s * s, h // s, w // s)
        elif t == "upsample":
            shape = (c, h * op["stride"], w * op["stride"])
        elif t == "shortcut":
            c1, h1, w1 = out[op["sources"][1]]
            if (max(w1 // w, 1), max(h1 // h, 1)) != (op["stride"],) * 2 or h1 < h or w1 < w:
                raise DarknetError(f"layer {i} (shortcut): with a {size} input, layer {op['sources'][1]}'s "
                                   f"{w1}x{h1} grid does not scale to its {w}x{h} input as at the cfg's size")
        elif t == "softmax":
            if (c * h * w) % op["groups"]:
                raise DarknetError(f"layer {i} (softmax): with a {size} input, groups={op['groups']} does "
                                   f"not divide its {c * h * w} inputs")
        if min(shape) < 1:
            raise DarknetError(f"layer {i} ({t}): a {size} input is too small for it")
        out[i] = shape
    return out


def model_info(net, graph: Graph, names: list[str] | None, size: tuple[int, int] | None, decode: bool,
               hier_thresh: float) -> dict[str, str]:
    """What a user of the exported model needs besides the weights, as strings (ONNX
    metadata_props; the PyTorch module's `darknet` attribute). size: the exported input
    (width, height), None when dynamic."""
    import json

    info = {"darknet.cfg": str(net.cfg_path), "darknet.cfg_input": f"{net.width}x{net.height}",
            "darknet.input": f"{size[0]}x{size[1]}" if size else "dynamic",
            "darknet.letterbox": LETTERBOX, "darknet.outputs": ",".join(map(str, graph.outputs)),
            "darknet.decode": "1" if decode else "0"}
    layers = graph.detections
    if layers:
        info.update({"darknet.detection": ",".join(f"{op['type']} {op['index']}" for op in layers),
                     "darknet.classes": str(layers[-1]["classes"]),
                     "darknet.num": ",".join(str(op["num"]) for op in layers),
                     "darknet.anchors": ";".join(",".join(f"{float(a):g}" for a in op["anchors"]) for op in layers),
                     "darknet.tree": "1" if any(op["tree"] is not None for op in layers) else "0"})
        if decode and any(op["tree"] is not None for op in layers):
            info["darknet.hier_thresh"] = f"{hier_thresh:g}"
    if names is not None:
        info["darknet.names"] = json.dumps(list(names))
    return info


def reorg_numpy(x: np.ndarray, stride: int, reverse: bool = False) -> np.ndarray:
    """Darknet's reorg of x (c, h, w), as the builders compute it.

    reorg_cpu(forward=0) writes out[i + w*(j + h*k)] = x[w2 + w*s*(h2 + h*s*c2)] with
    c2 = k % (c/s^2), offset = k / (c/s^2), h2 = j*s + offset/s, w2 = i*s + offset%s: x read
    as (c/s^2, h, s, w, s), transposed to (s, s, c/s^2, h, w), read as (c*s^2, h/s, w/s).
    reverse=1 (forward=1) is the inverse: x read as (s, s, c/s^2, h, w), transposed to
    (c/s^2, h, s, w, s), read as (c/s^2, h*s, w*s).
    """
    c, h, w = x.shape
    s = stride
    if reverse:
        return x.reshape(s, s, c // (s * s), h, w).transpose(2, 3, 0, 4, 1).reshape(c // (s * s), h * s, w * s)
    return x.reshape(c // (s * s), h, s, w, s).transpose(2, 4, 0, 1, 3).reshape(c * s * s, h // s, w // s)
