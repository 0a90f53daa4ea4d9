"""A Graph (see graph.py) as a torch.nn.Module: the same ops as the ONNX export.

`build(graph)` returns a module in eval mode whose `forward(x)` takes (batch, c, h, w)
float32, any batch and any input size Darknet's formulas allow, and returns the output
layer's output (batch first); with `decode=True`, `forward(x, image_size=None)` returns
(boxes, scores, objectness) as the ONNX export's outputs are (see onnx.py), image_size (batch, 2)
being each image's (width, height) (default: the input's own size, so boxes relative
to the network input). The state_dict is named by Darknet's layer indices:
`layers.<index>.weight` / `.bias` (batch norm folded in), `layers.<index>.anchors`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .graph import NETWORK_INPUT, Graph, check_decodable


def activate(x: torch.Tensor, name: str) -> torch.Tensor:
    """Darknet's `activate(x, a)` for each ACTIVATION (graph.ACTIVATIONS)."""
    if name == "linear":
        return x
    if name == "logistic":
        return torch.sigmoid(x)
    if name == "relu":
        return F.relu(x)
    if name == "leaky":
        return F.leaky_relu(x, 0.1)
    if name == "relie":
        return F.leaky_relu(x, 0.01)
    if name == "ramp":
        return F.relu(x) + 0.1 * x
    if name == "tanh":
        return torch.tanh(x)
    if name == "elu":
        return F.elu(x)
    if name == "selu":
        return torch.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * torch.expm1(x))
    if name == "loggy":
        return 2 * torch.sigmoid(x) - 1
    if name == "hardtan":
        return torch.clamp(x, -1.0, 1.0)
    if name == "plse":
        return torch.where(x < -4, 0.01 * (x + 4), torch.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5))
    if name == "lhtan":
        return torch.where(x < 0, 0.001 * x, torch.where(x > 1, 0.001 * (x - 1) + 1, x))
    if name == "stair":
        n = torch.floor(x)
        half = torch.floor(x / 2)
        return torch.where(torch.remainder(n, 2) == 0, half, (x - n) + half)
    raise ValueError(f"unknown activation {name}")


def _buffer(module: nn.Module, name: str, array, persistent: bool = False) -> None:
    module.register_buffer(name, torch.from_numpy(np.ascontiguousarray(array)), persistent=persistent)


class Conv(nn.Conv2d):
    """[convolutional]: the convolution with batch norm folded in, then the activation."""

    def __init__(self, op):
        w = op["weight"]
        super().__init__(w.shape[1] * op["groups"], op["filters"], op["size"], op["stride"], op["padding"],
                         groups=op["groups"], bias=True, device="meta")
        # from_numpy shares the graph's arrays: no second copy of the weights
        self.weight = nn.Parameter(torch.from_numpy(w), requires_grad=False)
        self.bias = nn.Parameter(torch.from_numpy(op["bias"]), requires_grad=False)
        self.activation = op["activation"]

    def forward(self, x):
        return activate(super().forward(x), self.activation)


class Maxpool(nn.Module):
    """[maxpool] with Darknet's padding (-inf where the window leaves the image)."""

    def __init__(self, op):
        super().__init__()
        self.size, self.stride = op["size"], op["stride"]
        top, left, bottom, right = op["pads"]
        self.pads = (left, right, top, bottom)

    def forward(self, x):
        if any(self.pads):
            x = F.pad(x, self.pads, value=float("-inf"))
        return F.max_pool2d(x, self.size, self.stride)


class Avgpool(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=True)


class Reorg(nn.Module):
    """[reorg]: the permutation of reorg_cpu (graph.reorg_numpy)."""

    def __init__(self, op):
        super().__init__()
        self.stride, self.reverse = op["stride"], op["reverse"]

    def forward(self, x):
        n, c, h, w = x.shape
        s = self.stride
        if self.reverse:
            y = x.reshape(n, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2)
            return y.reshape(n, c // (s * s), h * s, w * s)
        y = x.reshape(n, c // (s * s), h, s, w, s).permute(0, 3, 5, 1, 2, 4)
        return y.reshape(n, c * s * s, h // s, w // s)


class TreeSoftmax(nn.Module):
    """Softmax within each group of a WordNet tree, along dim 2 (graph.TreeTables)."""

    def __init__(self, tables):
        super().__init__()
        self.n = tables.n
        self.widths = []
        for k, (index, mask) in enumerate(tables.buckets):
            _buffer(self, f"index{k}", index.reshape(-1))
            _buffer(self, f"mask{k}", mask[:, :, None])
            self.widths.append(index.shape)
        _buffer(self, "inverse", tables.inverse)

    def forward(self, x):
        n, a = x.shape[:2]
        parts = []
        for k, (g, width) in enumerate(self.widths):
            y = x.index_select(2, getattr(self, f"index{k}")).reshape(n, a, g, width, -1)
            parts.append(torch.softmax(y + getattr(self, f"mask{k}"), dim=3).reshape(n, a, g * width, -1))
        return torch.cat(parts, 2).index_select(2, self.inverse)


class Softmax(nn.Module):
    """[softmax]: over each of `groups` runs of the flat input, or within the tree's groups."""

    def __init__(self, op):
        super().__init__()
        self.groups, self.temperature = op["groups"], op["temperature"]
        self.tree = TreeSoftmax(op["tree"]) if op["tree"] is not None else None

    def forward(self, x):
        if self.temperature != 1.0:
            x = x / self.temperature
        n = x.shape[0]
        if self.tree is None:
            return torch.softmax(x.reshape(n, self.groups, -1), 2).reshape(x.shape)
        flat = x.reshape(n, 1, -1, 1)
        y = self.tree(flat)
        rest = flat.shape[2] - self.tree.n
        if rest:                 # Darknet's output is zero past the tree's entries
            y = torch.cat([y, flat.new_zeros(n, 1, rest, 1)], 2)
        return y.reshape(x.shape)


class Region(nn.Module):
    """[region]: logistic x, y (and objectness), softmax, tree or logistic classes; with
    `decode`, Darknet's boxes and scores as well (see `detections`)."""

    def __init__(self, op, hier_thresh: float = 0.5):
        super().__init__()
        self.yolo = op["type"] == "yolo"
        self.num, self.classes, self.coords = op["num"], op["classes"], op["coords"]
        self.softmax, self.background = op["softmax"], op["background"]
        _buffer(self, "anchors", op["anchors"].reshape(self.num, 2), persistent=True)
        self.tree = TreeSoftmax(op["tree"]) if op["tree"] is not None else None
        self.hier_thresh = hier_thresh
        if op["tree"] is not None:
            t = op["tree"]
            self.depth = t.depth
            for name in ("parent", "is_root", "group_index", "group_valid", "child", "group_parent"):
                _buffer(self, name, getattr(t, name))

    def forward(self, x):
        n, _, h, w = x.shape
        coords, entries = self.coords, self.classes + self.coords + 1
        r = x.reshape(n, self.num, entries, h * w)
        parts = [torch.sigmoid(r[:, :, :2])]
        if coords > 2:
            parts.append(r[:, :, 2:coords])
        if self.softmax and self.tree is None and self.background:
            parts.append(torch.softmax(r[:, :, coords:], 2))
        else:
            obj = r[:, :, coords:coords + 1]
            parts.append(obj if self.background else torch.sigmoid(obj))
            classes = r[:, :, coords + 1:]
            if self.tree is not None:
                parts.append(self.tree(classes))
            elif self.softmax:
                parts.append(torch.softmax(classes, 2))
            else:
                parts.append(torch.sigmoid(classes))
        return torch.cat(parts, 2).reshape(x.shape)

    def detections(self, y, netw: int, neth: int, image_size):
        """get_region_detections (anchor-major) or get_yolo_detections (cell-major, every
        entry) on this layer's output y, then the letterbox undone."""
        n, _, lh, lw = y.shape
        r = y.reshape(n, self.num, self.classes + self.coords + 1, lh * lw)
        cells = torch.arange(lh * lw, device=y.device)
        col, row = (cells % lw).to(y.dtype), torch.div(cells, lw, rounding_mode="floor").to(y.dtype)
        aw, ah = self.anchors[:, 0].reshape(1, -1, 1, 1), self.anchors[:, 1].reshape(1, -1, 1, 1)
        x = (col + r[:, :, 0:1]) / lw
        yy = (row + r[:, :, 1:2]) / lh
        across, down = (netw, neth) if self.yolo else (lw, lh)      # what w and h are relative to
        w = torch.exp(r[:, :, 2:3]) * aw / across
        h = torch.exp(r[:, :, 3:4]) * ah / down
        iw, ih = image_size[:, 0].long(), image_size[:, 1].long()
        wide = torch.tensor(float(netw)) / iw.float() < torch.tensor(float(neth)) / ih.float()    # float32
        new_w = torch.where(wide, torch.full_like(iw, netw), torch.div(iw * neth, ih, rounding_mode="floor"))
        new_h = torch.where(wide, torch.div(ih * netw, iw, rounding_mode="floor"), torch.full_like(ih, neth))
        new_w, new_h = new_w.float().reshape(-1, 1, 1, 1), new_h.float().reshape(-1, 1, 1, 1)
        x = (x - (netw - new_w) / 2 / netw) / (new_w / netw)
        yy = (yy - (neth - new_h) / 2 / neth) / (new_h / neth)
        w = w * (netw / new_w)
        h = h * (neth / new_h)
        order = (0, 3, 1, 2) if self.yolo else (0, 1, 3, 2)     # -> (n, cells, anchors, .) or (n, a, cells, .)
        boxes = torch.cat([x, yy, w, h], 2).permute(*order).reshape(n, -1, 4)
        start = self.coords + 1 - int(self.background)
        probs = r[:, :, start:start + self.classes].permute(0, 1, 3, 2)
        if self.tree is not None:
            probs = F.one_hot(self._top(probs), self.classes).to(y.dtype)
        if self.yolo:
            probs = probs.permute(0, 2, 1, 3)
        obj = r[:, :, self.coords:self.coords + 1]
        if self.background:
            obj = torch.ones_like(obj)
        obj = obj.permute(*order)
        scores = probs if self.background else probs * obj
        return boxes, scores.reshape(n, -1, self.classes), obj.reshape(n, -1)

    def _top(self, probs):
        """hierarchy_predictions, then hierarchy_top_prediction for every box."""
        p = probs
        for _ in range(self.depth):
            p = probs * torch.where(self.is_root, torch.ones_like(p), p.index_select(3, self.parent))
        shape = p.shape[:3] + (1,)
        group = torch.zeros(shape, dtype=torch.long, device=p.device)
        result = torch.zeros_like(group)
        done = torch.zeros(shape, dtype=torch.bool, device=p.device)
        path = torch.ones(shape, dtype=p.dtype, device=p.device)
        for _ in range(self.depth + 1):
            index = self.group_index[group[..., 0]]
            vals = torch.where(self.group_valid[group[..., 0]], torch.gather(p, 3, index), -1.0)
            best, at = vals.max(3, keepdim=True)
            best_i = torch.where(best > 0, torch.gather(index, 3, at), 0)
            best = torch.clamp(best, min=0.0)
            q = path * best
            down = ~done & (q > self.hier_thresh)
            below = self.child[best_i]
            leaf = down & (below < 0)
            stop = ~done & ~down
            stop_at = torch.where(group == 0, best_i, self.group_parent[group])
            result = torch.where(leaf, best_i, torch.where(stop, stop_at, result))
            path = torch.where(down, q, path)
            group = torch.where(down & ~leaf, below, group)
            done = done | leaf | stop
        return result[..., 0]


class Shortcut(nn.Module):
    """[shortcut]: alpha * x + beta * add over the channels both have (add read every
    `stride` rows and columns), x's own past them; then the activation."""

    def __init__(self, op):
        super().__init__()
        self.activation, self.alpha, self.beta = op["activation"], op["alpha"], op["beta"]
        self.stride, self.channels = op["stride"], op["channels"]

    def forward(self, x, add):
        k, s = self.channels, self.stride
        add = add[:, :k, ::s, ::s][:, :, :x.shape[2], :x.shape[3]]
        kept = x[:, :k]
        y = (kept if self.alpha == 1.0 else self.alpha * kept) + (add if self.beta == 1.0 else self.beta * add)
        if k < x.shape[1]:
            y = torch.cat([y, x[:, k:]], 1)
        return activate(y, self.activation)


class Upsample(nn.Module):
    """[upsample]: each value repeated stride x stride times, times scale."""

    def __init__(self, op):
        super().__init__()
        self.stride, self.scale = op["stride"], op["scale"]

    def forward(self, x):
        n, c, h, w = x.shape
        s = self.stride
        y = x[:, :, :, None, :, None].expand(n, c, h, s, w, s).reshape(n, c, h * s, w * s)
        return y if self.scale == 1.0 else y * self.scale


def _layer(op, hier_thresh):
    t = op["type"]
    if t == "conv":
        return Conv(op)
    if t == "maxpool":
        return Maxpool(op)
    if t == "avgpool":
        return Avgpool()
    if t == "reorg":
        return Reorg(op)
    if t == "softmax":
        return Softmax(op)
    if t in ("region", "yolo"):
        return Region(op, hier_thresh)
    if t == "shortcut":
        return Shortcut(op)
    if t == "upsample":
        return Upsample(op)
    return None


class DarknetModule(nn.Module):
    """The network: `layers` maps each Darknet layer index (as a string) to its module;
    routes and dropouts have none. `forward` returns the graph's output, a tuple of them
    (YOLOv3's detection layers, in network order), or with decode (boxes, scores,
    objectness) of every detection layer, laid end to end as Darknet's array is."""

    def __init__(self, graph: Graph, decode: bool = False, hier_thresh: float = 0.5, info: dict | None = None):
        super().__init__()
        if decode:
            check_decodable(graph)
        self.steps = [(op["index"], op["type"], op["sources"]) for op in graph.ops]
        self.layers = nn.ModuleDict()
        for op in graph.ops:
            module = _layer(op, hier_thresh)
            if module is not None:
                self.layers[str(op["index"])] = module
        self.decode = decode
        self.returned = [op["index"] for op in graph.detections] if decode else list(graph.outputs)
        self.darknet = dict(info or {})
        self.eval()

    def forward(self, x, image_size=None):
        neth, netw = int(x.shape[2]), int(x.shape[3])
        outputs = {NETWORK_INPUT: x}
        for index, kind, sources in self.steps:
            inputs = [outputs[s] for s in sources]
            if kind == "route":
                y = inputs[0] if len(inputs) == 1 else torch.cat(inputs, 1)
            elif kind == "identity":
                y = inputs[0]
            else:
                y = self.layers[str(index)](*inputs)
            outputs[index] = y
        if not self.decode:
            results = [outputs[i] for i in self.returned]
            return results[0] if len(results) == 1 else tuple(results)
        if image_size is None:
            image_size = torch.tensor([[netw, neth]] * x.shape[0])
        parts = [self.layers[str(i)].detections(outputs[i], netw, neth, torch.as_tensor(image_size))
                 for i in self.returned]
        return tuple(torch.cat([p[k] for p in parts], 1) for k in range(3))


def build(graph: Graph, decode: bool = False, hier_thresh: float = 0.5, info: dict | None = None) -> nn.Module:
    """The module of `graph` in eval mode (see the module's doc)."""
    return DarknetModule(graph, decode, hier_thresh, info)
