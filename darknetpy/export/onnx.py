"""A Graph (see graph.py) as an ONNX model, built with the `onnx` package's helpers.

Input `input` (batch, c, height, width) float32, the letterboxed image. Outputs: `output`,
the output layer's output as `net.forward` returns it (batch first); with `decode`, instead
`boxes` (batch, boxes, 4): x, y, w, h of each of Darknet's detections (anchor-major,
`anchor*h*w + cell`, as `get_region_detections` orders them), relative to the image
whose size (width, height) the int64 input `image_size` (batch, 2) gives, undoing the
letterbox as `correct_region_boxes` does; `scores` (batch, boxes, classes):
objectness x class probability, or, with a tree (YOLO9000), the objectness at the class
`hierarchy_top_prediction` picks and 0 elsewhere; and `objectness` (batch, boxes).
Darknet keeps class k of a box when scores[k] > thresh, then runs NMS over the boxes
whose objectness > thresh (darknetpy.export.detections does both).

Every reshape takes its sizes from the tensors at run time, so a graph exported with
`batch=None` or `size=None` (dynamic) runs at any batch and input size.
"""
from __future__ import annotations

import numpy as np

from ..errors import DarknetError
from .graph import NETWORK_INPUT, Graph, check_decodable, shapes

MIN_OPSET = 13           # Softmax over one axis (earlier opsets flatten the trailing axes)


def max_opset() -> int:
    """The newest opset the installed onnx package knows."""
    import onnx.defs

    return onnx.defs.onnx_opset_version()


class _Builder:
    """Nodes and initializers, with fresh tensor names and shared constants."""

    def __init__(self):
        self.nodes, self.inits = [], []
        self.count = 0
        self.consts: dict = {}
        self.prefix = "g"

    def name(self) -> str:
        self.count += 1
        return f"{self.prefix}/{self.count}"

    def node(self, op: str, inputs: list, out: str | None = None, **attrs) -> str:
        from onnx import helper

        out = out or self.name()
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def const(self, value, dtype=np.int64, name: str | None = None) -> str:
        """An initializer (small ones are shared by value)."""
        from onnx import numpy_helper

        array = np.asarray(value, dtype)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 64 and name is None else None
        if key in self.consts:
            return self.consts[key]
        name = name or f"c/{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(array, name))
        if key is not None:
            self.consts[key] = name
        return name

    def ints(self, *values) -> str:
        return self.const(list(values))

    def dims(self, x: str, axes: list[int]) -> str:
        """The sizes of x along `axes`, a 1-D int64 tensor."""
        return self.node("Gather", [self.node("Shape", [x]), self.ints(*axes)], axis=0)

    def dim(self, x: str, axis: int) -> str:
        """The size of x along `axis`, an int64 scalar."""
        return self.node("Gather", [self.node("Shape", [x]), self.const(axis)], axis=0)

    def reshape(self, x: str, *parts, out: str | None = None) -> str:
        """Reshape x to the concatenation of `parts`: ints (0 copies x's size there, -1
        is inferred) and 1-D int64 tensors."""
        pieces, run = [], []
        for p in parts:
            if isinstance(p, str):
                if run:
                    pieces.append(self.ints(*run))
                    run = []
                pieces.append(p)
            else:
                run.append(p)
        if run:
            pieces.append(self.ints(*run))
        shape = pieces[0] if len(pieces) == 1 else self.node("Concat", pieces, axis=0)
        return self.node("Reshape", [x, shape], out)

    def slice(self, x: str, axis: int, start: int, end: int) -> str:
        return self.node("Slice", [x, self.ints(start), self.ints(end), self.ints(axis)])

    def scalar(self, value) -> str:
        return self.const(value, np.float32)


def _activation(b: _Builder, x: str, name: str, out: str) -> str:
    """Darknet's `activate(x, a)` for each ACTIVATION (graph.ACTIVATIONS)."""
    f = b.scalar
    if name == "linear":
        return b.node("Identity", [x], out)
    if name == "logistic":
        return b.node("Sigmoid", [x], out)
    if name == "relu":
        return b.node("Relu", [x], out)
    if name == "leaky":
        return b.node("LeakyRelu", [x], out, alpha=0.1)
    if name == "relie":
        return b.node("LeakyRelu", [x], out, alpha=0.01)
    if name == "ramp":
        return b.node("Add", [b.node("Relu", [x]), b.node("Mul", [x, f(0.1)])], out)
    if name == "tanh":
        return b.node("Tanh", [x], out)
    if name == "elu":
        return b.node("Elu", [x], out, alpha=1.0)
    if name == "selu":
        return b.node("Selu", [x], out, alpha=1.6732, gamma=1.0507)
    if name == "loggy":
        return b.node("Sub", [b.node("Mul", [b.node("Sigmoid", [x]), f(2.0)]), f(1.0)], out)
    if name == "hardtan":
        return b.node("Clip", [x, f(-1.0), f(1.0)], out)
    if name == "plse":
        low = b.node("Mul", [b.node("Add", [x, f(4.0)]), f(0.01)])
        high = b.node("Add", [b.node("Mul", [b.node("Sub", [x, f(4.0)]), f(0.01)]), f(1.0)])
        mid = b.node("Add", [b.node("Mul", [x, f(0.125)]), f(0.5)])
        return b.node("Where", [b.node("Less", [x, f(-4.0)]), low,
                                b.node("Where", [b.node("Greater", [x, f(4.0)]), high, mid])], out)
    if name == "lhtan":
        low = b.node("Mul", [x, f(0.001)])
        high = b.node("Add", [b.node("Mul", [b.node("Sub", [x, f(1.0)]), f(0.001)]), f(1.0)])
        return b.node("Where", [b.node("Less", [x, f(0.0)]), low,
                                b.node("Where", [b.node("Greater", [x, f(1.0)]), high, x])], out)
    if name == "stair":
        n = b.node("Floor", [x])
        half = b.node("Floor", [b.node("Div", [x, f(2.0)])])
        even = b.node("Equal", [b.node("Mod", [n, f(2.0)], fmod=1), f(0.0)])
        return b.node("Where", [even, half, b.node("Add", [b.node("Sub", [x, n]), half])], out)
    raise ValueError(f"unknown activation {name}")


def _conv(b, op, x, out):
    i = op["index"]
    p = op["padding"]
    y = b.node("Conv", [x, b.const(op["weight"], np.float32, f"layers.{i}.weight"),
                        b.const(op["bias"], np.float32, f"layers.{i}.bias")],
               None if op["activation"] != "linear" else out,
               kernel_shape=[op["size"]] * 2, strides=[op["stride"]] * 2, pads=[p] * 4, group=op["groups"])
    return y if op["activation"] == "linear" else _activation(b, y, op["activation"], out)


def _maxpool(b, op, x, out):
    return b.node("MaxPool", [x], out, kernel_shape=[op["size"]] * 2, strides=[op["stride"]] * 2,
                  pads=list(op["pads"]))


def _reorg(b, op, x, out):
    c = op["in_shape"][0]
    s = op["stride"]
    hw = b.dims(x, [2, 3])
    if op["reverse"]:
        y = b.reshape(x, 0, s, s, c // (s * s), hw)
        y = b.node("Transpose", [y], perm=[0, 3, 4, 1, 5, 2])
        return b.reshape(y, 0, c // (s * s), b.node("Mul", [hw, b.ints(s)]), out=out)
    y = b.reshape(x, 0, c // (s * s), 0, -1)          # (n, c/s^2, h, s*w*s)
    y = b.reshape(y, 0, 0, 0, s, -1, s)               # (n, c/s^2, h, s, w, s)
    y = b.node("Transpose", [y], perm=[0, 3, 5, 1, 2, 4])
    return b.reshape(y, 0, c * s * s, b.node("Div", [hw, b.ints(s)]), out=out)


def _tree_softmax(b, tables, x, axis: int) -> str:
    """Softmax within each tree group along `axis` of x; the result holds the tree's
    `n` entries along that axis (entries past them are the caller's)."""
    parts = []
    for index, mask in tables.buckets:
        g, width = index.shape
        y = b.node("Gather", [x, b.const(index)], axis=axis)          # axis -> (g, width)
        m = mask.reshape((g, width) + (1,) * (3 - axis))
        y = b.node("Add", [y, b.const(m, np.float32)])
        y = b.node("Softmax", [y], axis=axis + 1)
        parts.append(b.reshape(y, *([0] * axis), g * width, -1))
    y = parts[0] if len(parts) == 1 else b.node("Concat", parts, axis=axis)
    return b.node("Gather", [y, b.const(tables.inverse)], axis=axis)


def _softmax(b, op, x, out):
    shape = b.node("Shape", [x])
    if op["temperature"] != 1.0:
        x = b.node("Div", [x, b.scalar(op["temperature"])])
    tables = op["tree"]
    if tables is None:
        y = b.node("Softmax", [b.reshape(x, 0, op["groups"], -1)], axis=2)
        return b.node("Reshape", [y, shape], out)
    flat = b.reshape(x, 0, 1, -1, 1)
    y = _tree_softmax(b, tables, flat, 2)
    inputs = int(np.prod(op["in_shape"]))
    if tables.n < inputs:         # Darknet's output is zero past the tree's entries
        rest = b.node("ConstantOfShape", [b.node("Shape", [b.slice(flat, 2, tables.n, inputs)])])
        y = b.node("Concat", [y, rest], axis=2)
    return b.node("Reshape", [y, shape], out)


def _region(b, op, x, out):
    """forward_region_layer: logistic x, y (and objectness), softmax, tree or logistic classes."""
    coords, entries = op["coords"], op["classes"] + op["coords"] + 1
    r = b.reshape(x, 0, op["num"], entries, -1)               # (n, anchors, entries, cells)
    parts = [b.node("Sigmoid", [b.slice(r, 2, 0, 2)])]
    if coords > 2:
        parts.append(b.slice(r, 2, 2, coords))
    if op["softmax"] and op["tree"] is None and op["background"]:
        parts.append(b.node("Softmax", [b.slice(r, 2, coords, entries)], axis=2))
    else:
        obj = b.slice(r, 2, coords, coords + 1)
        parts.append(obj if op["background"] else b.node("Sigmoid", [obj]))
        classes = b.slice(r, 2, coords + 1, entries)
        if op["tree"] is not None:
            parts.append(_tree_softmax(b, op["tree"], classes, 2))
        elif op["softmax"]:
            parts.append(b.node("Softmax", [classes], axis=2))
        else:
            parts.append(b.node("Sigmoid", [classes]))
    y = b.node("Concat", parts, axis=2)
    return b.node("Reshape", [y, b.node("Shape", [x])], out)


def _letterbox(b, image, image_size):
    """correct_region_boxes' (and correct_yolo_boxes') sizes: the network input's width and
    height, and each image's letterboxed new_w, new_h (n, 1, 1, 1), as float32."""
    netw, neth = b.dim(image, 3), b.dim(image, 2)
    netwf, nethf = b.node("Cast", [netw], to=1), b.node("Cast", [neth], to=1)
    iw = b.node("Squeeze", [b.slice(image_size, 1, 0, 1), b.ints(1)])
    ih = b.node("Squeeze", [b.slice(image_size, 1, 1, 2), b.ints(1)])
    wide = b.node("Less", [b.node("Div", [netwf, b.node("Cast", [iw], to=1)]),
                           b.node("Div", [nethf, b.node("Cast", [ih], to=1)])])
    new_w = b.node("Where", [wide, b.node("Expand", [netw, b.node("Shape", [iw])]),
                             b.node("Div", [b.node("Mul", [iw, neth]), ih])])
    new_h = b.node("Where", [wide, b.node("Div", [b.node("Mul", [ih, netw]), iw]),
                             b.node("Expand", [neth, b.node("Shape", [ih])])])
    new_wf = b.reshape(b.node("Cast", [new_w], to=1), -1, 1, 1, 1)
    new_hf = b.reshape(b.node("Cast", [new_h], to=1), -1, 1, 1, 1)
    return netwf, nethf, new_wf, new_hf


def _decode(b, op, y, sizes, hier_thresh):
    """One detection layer's boxes, scores and objectness from its output y: Darknet's
    get_region_detections (anchor-major) or get_yolo_detections (cell-major, every entry:
    Darknet keeps those whose objectness > thresh), then the letterbox undone."""
    coords, num, classes = op["coords"], op["num"], op["classes"]
    bg = 1 if op["background"] else 0
    f = b.scalar
    netwf, nethf, new_wf, new_hf = sizes
    r = b.reshape(y, 0, num, classes + coords + 1, -1)        # (n, anchors, entries, cells)
    lh, lw = b.dim(y, 2), b.dim(y, 3)
    cells = b.node("Range", [b.const(0), b.node("Mul", [lh, lw]), b.const(1)])
    col = b.node("Cast", [b.node("Mod", [cells, lw])], to=1)
    row = b.node("Cast", [b.node("Div", [cells, lw])], to=1)
    lwf, lhf = b.node("Cast", [lw], to=1), b.node("Cast", [lh], to=1)
    anchors = op["anchors"].reshape(num, 2)
    across, down = (netwf, nethf) if op["type"] == "yolo" else (lwf, lhf)   # what w and h are relative to
    x = b.node("Div", [b.node("Add", [col, b.slice(r, 2, 0, 1)]), lwf])
    yy = b.node("Div", [b.node("Add", [row, b.slice(r, 2, 1, 2)]), lhf])
    w = b.node("Div", [b.node("Mul", [b.node("Exp", [b.slice(r, 2, 2, 3)]),
                                      b.const(anchors[:, 0].reshape(1, num, 1, 1), np.float32)]), across])
    h = b.node("Div", [b.node("Mul", [b.node("Exp", [b.slice(r, 2, 3, 4)]),
                                      b.const(anchors[:, 1].reshape(1, num, 1, 1), np.float32)]), down])
    x = b.node("Div", [b.node("Sub", [x, b.node("Div", [b.node("Div", [b.node("Sub", [netwf, new_wf]), f(2.0)]),
                                                         netwf])]), b.node("Div", [new_wf, netwf])])
    yy = b.node("Div", [b.node("Sub", [yy, b.node("Div", [b.node("Div", [b.node("Sub", [nethf, new_hf]), f(2.0)]),
                                                           nethf])]), b.node("Div", [new_hf, nethf])])
    w = b.node("Mul", [w, b.node("Div", [netwf, new_wf])])
    h = b.node("Mul", [h, b.node("Div", [nethf, new_hf])])
    order = [0, 3, 1, 2] if op["type"] == "yolo" else [0, 1, 3, 2]     # -> (n, cells, anchors, .) or (n, a, cells, .)
    boxes = b.reshape(b.node("Transpose", [b.node("Concat", [x, yy, w, h], axis=2)], perm=order), 0, -1, 4)
    obj = b.slice(r, 2, coords, coords + 1)                  # (n, anchors, 1, cells)
    if bg:
        obj = b.node("Expand", [b.scalar(1.0), b.node("Shape", [obj])])
    obj = b.node("Transpose", [obj], perm=order)
    start = coords + 1 - bg
    probs = b.node("Transpose", [b.slice(r, 2, start, start + classes)], perm=[0, 1, 3, 2])  # (n, a, cells, k)
    if op["tree"] is not None:
        top = _tree_top(b, op["tree"], probs, hier_thresh)
        probs = b.node("OneHot", [top, b.const(classes), b.const([0.0, 1.0], np.float32)], axis=-1)
    if op["type"] == "yolo":
        probs = b.node("Transpose", [probs], perm=[0, 2, 1, 3])
    scores = probs if bg else b.node("Mul", [probs, obj])
    return boxes, b.reshape(scores, 0, -1, classes), b.reshape(obj, 0, -1)


def _tree_top(b, t, probs, hier_thresh: float) -> str:
    """hierarchy_predictions (path products) then hierarchy_top_prediction, for every box:
    probs (n, anchors, cells, classes) -> the class index (n, anchors, cells)."""
    root = b.const(t.is_root, bool)
    parent = b.const(t.parent)
    p = probs
    for _ in range(t.depth):
        up = b.node("Where", [root, b.scalar(1.0), b.node("Gather", [p, parent], axis=3)])
        p = b.node("Mul", [probs, up])
    zero_i = b.const(0)
    shape = b.node("Shape", [b.slice(p, 3, 0, 1)])                # (n, anchors, cells, 1)
    group = b.node("ConstantOfShape", [shape], value=_tensor(np.zeros(1, np.int64)))
    done = b.node("ConstantOfShape", [shape], value=_tensor(np.zeros(1, bool)))
    result = group
    path = b.node("ConstantOfShape", [shape], value=_tensor(np.ones(1, np.float32)))
    thresh = b.scalar(hier_thresh)
    table, valid = b.const(t.group_index), b.const(t.group_valid, bool)
    child, group_parent = b.const(t.child), b.const(t.group_parent)
    for _ in range(t.depth + 1):
        g = b.node("Squeeze", [group, b.ints(3)])
        index = b.node("Gather", [table, g], axis=0)               # (n, a, cells, widest)
        vals = b.node("Where", [b.node("Gather", [valid, g], axis=0),
                                b.node("GatherElements", [p, index], axis=3), b.scalar(-1.0)])
        at = b.node("ArgMax", [vals], axis=3, keepdims=1)
        best = b.node("GatherElements", [vals, at], axis=3)
        positive = b.node("Greater", [best, b.scalar(0.0)])
        best = b.node("Where", [positive, best, b.scalar(0.0)])
        best_i = b.node("Where", [positive, b.node("GatherElements", [index, at], axis=3), zero_i])
        q = b.node("Mul", [path, best])
        active = b.node("Not", [done])
        down = b.node("And", [active, b.node("Greater", [q, thresh])])
        below = b.node("Gather", [child, best_i], axis=0)
        leaf = b.node("And", [down, b.node("Less", [below, zero_i])])
        stop = b.node("And", [active, b.node("Not", [down])])
        stop_at = b.node("Where", [b.node("Equal", [group, zero_i]), best_i,
                                   b.node("Gather", [group_parent, group], axis=0)])
        result = b.node("Where", [leaf, best_i, b.node("Where", [stop, stop_at, result])])
        path = b.node("Where", [down, q, path])
        group = b.node("Where", [b.node("And", [down, b.node("Not", [leaf])]), below, group])
        done = b.node("Or", [done, b.node("Or", [leaf, stop])])
    return b.node("Squeeze", [result, b.ints(3)])


def _tensor(array):
    from onnx import numpy_helper

    return numpy_helper.from_array(array)


def _shortcut(b, op, x, add, out):
    """shortcut_cpu: alpha * x + beta * add over the channels both have (add read every
    `stride` rows and columns), x's own past them; then the activation."""
    c = op["in_shape"][0]
    if op["stride"] > 1:
        s = op["stride"]
        add = b.node("Slice", [add, b.ints(0, 0), b.ints(np.iinfo(np.int64).max, np.iinfo(np.int64).max),
                               b.ints(2, 3), b.ints(s, s)])
        add = b.node("Slice", [add, b.ints(0, 0), b.dims(x, [2, 3]), b.ints(2, 3)])
    k = op["channels"]
    if op["add_channels"] > k:
        add = b.slice(add, 1, 0, k)
    kept = b.slice(x, 1, 0, k)
    if op["alpha"] != 1.0:
        kept = b.node("Mul", [kept, b.scalar(op["alpha"])])
    if op["beta"] != 1.0:
        add = b.node("Mul", [add, b.scalar(op["beta"])])
    y = b.node("Add", [kept, add])
    if k < c:
        y = b.node("Concat", [y, b.slice(x, 1, k, c)], axis=1)
    return _activation(b, y, op["activation"], out)


def _upsample(b, op, x, out):
    """upsample_cpu: each value repeated stride x stride times, times scale."""
    s = op["stride"]
    y = b.node("Expand", [b.node("Unsqueeze", [x, b.ints(3, 5)]), b.ints(1, 1, 1, s, 1, s)])
    hw = b.node("Mul", [b.dims(x, [2, 3]), b.ints(s)])
    if op["scale"] == 1.0:
        return b.reshape(y, 0, 0, hw, out=out)
    return b.node("Mul", [b.reshape(y, 0, 0, hw), b.scalar(op["scale"])], out)


BUILD = {"conv": _conv, "maxpool": _maxpool, "reorg": _reorg, "softmax": _softmax, "region": _region,
         "yolo": _region, "upsample": _upsample}


def output_names(graph: Graph) -> dict[int, str]:
    """The graph outputs' names: `output` when there is one, else `output_<layer index>`."""
    if len(graph.outputs) == 1:
        return {graph.outputs[0]: "output"}
    return {i: f"output_{i}" for i in graph.outputs}


def build(graph: Graph, *, opset: int = 17, batch: int | None = 1, size: tuple[int, int] | None = None,
          decode: bool = False, hier_thresh: float = 0.5, metadata: dict | None = None, name: str = "darknet"):
    """The ONNX ModelProto of `graph`.

    batch: a fixed batch size, or None for a dynamic one. size: (width, height) of the
    input, or None for a dynamic one. decode: boxes, scores and objectness (see the
    module's doc) instead of the detection layers' outputs; hier_thresh: YOLO9000's tree
    threshold for that. metadata: metadata_props (graph.model_info).
    """
    import onnx
    from onnx import TensorProto, helper

    if not MIN_OPSET <= opset <= max_opset():
        raise DarknetError(f"opset {opset}: choose {MIN_OPSET} to {max_opset()}")
    c = graph.input_shape[0]
    layers = graph.detections
    if decode:
        check_decodable(graph)
    n_dim = batch if batch is not None else "batch"
    h_dim, w_dim = (size[1], size[0]) if size is not None else ("height", "width")
    out_dims = shapes(graph, size[1], size[0]) if size is not None else None
    returned = {} if decode else output_names(graph)

    b = _Builder()
    names: dict[int, str] = {NETWORK_INPUT: "input"}
    for op in graph.ops:
        i, t = op["index"], op["type"]
        b.prefix = f"l{i}"
        out = returned.get(i, f"l{i}")
        x = names[op["sources"][0]]
        if t == "route":
            sources = [names[s] for s in op["sources"]]
            y = sources[0] if len(sources) == 1 else b.node("Concat", sources, out, axis=1)
        elif t == "identity":
            y = x
        elif t == "avgpool":
            y = b.node("GlobalAveragePool", [x], out)
        elif t == "shortcut":
            y = _shortcut(b, op, x, names[op["sources"][1]], out)
        else:
            y = BUILD[t](b, op, x, out)
        if i in returned and y != returned[i]:
            y = b.node("Identity", [y], returned[i])
        names[i] = y

    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [n_dim, c, h_dim, w_dim])]
    if decode:
        b.prefix = "decode"
        sizes = _letterbox(b, "input", "image_size")
        parts = [_decode(b, op, names[op["index"]], sizes, hier_thresh) for op in layers]
        for k, out in enumerate(("boxes", "scores", "objectness")):
            if len(parts) == 1:
                b.node("Identity", [parts[0][k]], out)
            else:
                b.node("Concat", [p[k] for p in parts], out, axis=1)
        inputs.append(helper.make_tensor_value_info("image_size", TensorProto.INT64, [n_dim, 2]))
        count = sum(op["num"] * out_dims[op["index"]][1] * out_dims[op["index"]][2] for op in layers) \
            if out_dims else "boxes"
        outputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [n_dim, count, 4]),
                   helper.make_tensor_value_info("scores", TensorProto.FLOAT, [n_dim, count, layers[0]["classes"]]),
                   helper.make_tensor_value_info("objectness", TensorProto.FLOAT, [n_dim, count])]
    else:
        outputs = []
        for i, out in returned.items():
            channels = next(op["out_shape"][0] for op in graph.ops if op["index"] == i)
            dims = list(out_dims[i]) if out_dims else [channels, f"{out}_height", f"{out}_width"]
            outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [n_dim] + dims))
    g = helper.make_graph(b.nodes, name, inputs, outputs, b.inits)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(g, opset_imports=opsets, producer_name="darknetpy",
                              ir_version=helper.find_min_ir_version_for(opsets))
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model
