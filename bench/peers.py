"""The same Darknet graph, with the same weights, for the peer engines of bench/cpu.py.

`graph_spec(net)` turns a darknetpy Network into a plain, picklable list of ops
(numpy arrays and ints only, no darknetpy objects), so a child process can build a
peer model without importing darknetpy. `to_onnx(spec)` and `to_torch(spec)` build
the equivalent ONNX graph and torch.nn module from it.

What the graph keeps of Darknet's semantics:

* convolution with batch norm folded into the weights and bias, using Darknet's own
  formula `(x - mean) / (sqrt(var) + 1e-6) * scale + bias` (note: not sqrt(var + eps));
* leaky = LeakyRelu(0.1), linear = nothing (relu and logistic are mapped too);
* maxpool with Darknet's padding: the window origin is -(padding/2) and taps outside
  the image are skipped, so the pads are (padding/2) top/left and whatever the
  remaining output rows need bottom/right, padded with -inf (size 2 stride 1: one
  column/row on the right/bottom, output the same size);
* route = Concat over channels (one source: the tensor itself);
* reorg (reverse=0) = Reshape/Transpose/Reshape reproducing `reorg_cpu(..., forward=0)`,
  the permutation darknetpy/cpu/reorg.py computes (see `reorg_numpy`);
* avgpool = GlobalAveragePool, softmax (no tree, groups=1) = Softmax over channels.

The region layer is left out: the peers compute the *backbone* and are checked against
darknetpy's output of the last layer before [region] (scope "backbone"). Networks
without a region layer (darknet19) are converted whole (scope "full").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class Unsupported(Exception):
    """The layer (or option) has no equivalent in the peer graph."""


@dataclass
class Spec:
    name: str
    input_shape: tuple            # (c, h, w)
    ops: list = field(default_factory=list)   # one dict per darknetpy layer kept, in order
    ref_index: int = -1           # darknetpy layer whose output the peer output must equal
    out_shape: tuple = ()         # that layer's (c, h, w)
    scope: str = "full"           # "full" or "backbone" (region layer left out)
    gflop: float = 0.0            # sum of the convolutions' bflops() (of the whole network)

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """(M, K, N) of each convolution's GEMM: weights (M, K) @ im2col (K, N)."""
        return [(op["filters"], op["k"], op["n"]) for op in self.ops if op["type"] == "conv"]


ACTIVATIONS = ("leaky", "linear", "relu", "logistic")


def fold_bn(layer) -> tuple[np.ndarray, np.ndarray]:
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


def maxpool_pads(layer) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) pads reproducing Darknet's maxpool output size and taps."""
    _, h, w = layer.in_shape
    _, oh, ow = layer.out_shape
    begin = layer.padding // 2
    bottom = max(0, (oh - 1) * layer.stride + layer.size - h - begin)
    right = max(0, (ow - 1) * layer.stride + layer.size - w - begin)
    return begin, begin, bottom, right


def graph_spec(net, name: str = "") -> Spec:
    """The ops of `net` up to (not including) a [region] layer, with folded weights."""
    layers = net.layers
    spec = Spec(name=name, input_shape=tuple(layers[0].in_shape),
                gflop=sum(l.bflops() for l in layers))
    for layer in layers:
        t = layer.type
        op = {"type": None, "index": layer.index, "in_shape": tuple(layer.in_shape),
              "out_shape": tuple(layer.out_shape)}
        if t == "region":
            spec.scope = "backbone"
            break
        if t == "convolutional":
            if layer.activation_name not in ACTIVATIONS:
                raise Unsupported(f"layer {layer.index}: activation {layer.activation_name}")
            w, b = fold_bn(layer)
            _, oh, ow = layer.out_shape
            op.update(type="conv", weight=w, bias=b, size=layer.size, stride=layer.stride,
                      padding=layer.padding, groups=layer.groups, activation=layer.activation_name,
                      filters=layer.filters, k=layer.weights.shape[1], n=oh * ow)
        elif t == "maxpool":
            op.update(type="maxpool", size=layer.size, stride=layer.stride, pads=maxpool_pads(layer))
        elif t == "route":
            op.update(type="route", sources=list(layer.sources))
        elif t == "reorg":
            if layer.reverse:
                raise Unsupported(f"layer {layer.index}: reorg reverse=1")
            op.update(type="reorg", stride=layer.stride)
        elif t == "avgpool":
            op.update(type="avgpool")
        elif t == "softmax":
            if layer.tree is not None or layer.groups != 1 or float(layer.temperature) != 1.0:
                raise Unsupported(f"layer {layer.index}: softmax with a tree, groups or temperature")
            op.update(type="softmax")
        elif t in ("dropout", "cost"):
            op.update(type="identity")
        else:
            raise Unsupported(f"layer {layer.index}: [{t}]")
        spec.ops.append(op)
    last = spec.ops[-1]
    spec.ref_index = last["index"]
    spec.out_shape = last["out_shape"]
    return spec


def reorg_numpy(x: np.ndarray, stride: int) -> np.ndarray:
    """Darknet's reorg (reverse=0, i.e. reorg_cpu forward=0) of x (c, h, w) as a reshape/transpose.

    reorg_cpu writes out[i + w*(j + h*k)] = x[w2 + w*s*(h2 + h*s*c2)] with c2 = k % (c/s^2),
    offset = k / (c/s^2), h2 = j*s + offset/s, w2 = i*s + offset%s: x read as
    (c/s^2, h, s, w, s) and transposed to (s, s, c/s^2, h, w), then read as (c*s^2, h/s, w/s).
    """
    c, h, w = x.shape
    s = stride
    return (x.reshape(c // (s * s), h, s, w, s).transpose(2, 4, 0, 1, 3)
            .reshape(c * s * s, h // s, w // s))


# ---------------------------------------------------------------------------- ONNX

def to_onnx(spec: Spec, opset: int = 17):
    """An onnx.ModelProto computing spec's graph: input 'input' (1, c, h, w), output 'output'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    names: dict[int, str] = {}   # darknetpy layer index -> tensor name
    current = "input"

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    for op in spec.ops:
        i = op["index"]
        out = f"l{i}"
        t = op["type"]
        if t == "conv":
            p = op["padding"]
            conv_out = out if op["activation"] == "linear" else f"l{i}_conv"
            nodes.append(helper.make_node(
                "Conv", [current, const(f"w{i}", op["weight"]), const(f"b{i}", op["bias"])], [conv_out],
                kernel_shape=[op["size"]] * 2, strides=[op["stride"]] * 2, pads=[p, p, p, p],
                group=op["groups"]))
            if op["activation"] == "leaky":
                nodes.append(helper.make_node("LeakyRelu", [conv_out], [out], alpha=0.1))
            elif op["activation"] == "relu":
                nodes.append(helper.make_node("Relu", [conv_out], [out]))
            elif op["activation"] == "logistic":
                nodes.append(helper.make_node("Sigmoid", [conv_out], [out]))
        elif t == "maxpool":
            top, left, bottom, right = op["pads"]
            nodes.append(helper.make_node("MaxPool", [current], [out], kernel_shape=[op["size"]] * 2,
                                          strides=[op["stride"]] * 2, pads=[top, left, bottom, right]))
        elif t == "route":
            srcs = [names[s] for s in op["sources"]]
            if len(srcs) == 1:
                out = srcs[0]
            else:
                nodes.append(helper.make_node("Concat", srcs, [out], axis=1))
        elif t == "reorg":
            c, h, w = op["in_shape"]
            s = op["stride"]
            oc, oh, ow = op["out_shape"]
            nodes.append(helper.make_node("Reshape", [current, const(f"r{i}_a", np.array(
                [1, c // (s * s), h, s, w, s], np.int64))], [f"l{i}_a"]))
            nodes.append(helper.make_node("Transpose", [f"l{i}_a"], [f"l{i}_b"], perm=[0, 3, 5, 1, 2, 4]))
            nodes.append(helper.make_node("Reshape", [f"l{i}_b", const(f"r{i}_b", np.array(
                [1, oc, oh, ow], np.int64))], [out]))
        elif t == "avgpool":
            nodes.append(helper.make_node("GlobalAveragePool", [current], [out]))
        elif t == "softmax":
            c, h, w = op["in_shape"]
            nodes.append(helper.make_node("Reshape", [current, const(f"r{i}", np.array([1, c * h * w], np.int64))],
                                          [f"l{i}_flat"]))
            nodes.append(helper.make_node("Softmax", [f"l{i}_flat"], [out], axis=1))
        elif t == "identity":
            out = current
        names[i] = out
        current = out
    nodes.append(helper.make_node("Identity", [current], ["output"]))
    c, h, w = spec.input_shape
    oc, oh, ow = spec.out_shape
    out_dims = [1, oc * oh * ow] if spec.ops[-1]["type"] == "softmax" else [1, oc, oh, ow]
    graph = helper.make_graph(
        nodes, f"darknet-{spec.name}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_dims)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="darknetpy-bench")
    model.ir_version = min(model.ir_version, 9)
    onnx.checker.check_model(model, full_check=False)
    return model


def ort_session(model_path: str, threads: int):
    """An ONNX Runtime CPU session: intra_op_num_threads = threads, sequential execution."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------- PyTorch

def to_torch(spec: Spec):
    """A torch.nn.Module (eval mode) computing spec's graph on a (1, c, h, w) tensor."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class DarknetGraph(nn.Module):
        def __init__(self):
            super().__init__()
            self.ops = []
            self.convs = nn.ModuleList()
            for op in spec.ops:
                meta = {k: v for k, v in op.items() if k not in ("weight", "bias")}
                if op["type"] == "conv":
                    conv = nn.Conv2d(op["in_shape"][0], op["filters"], op["size"], op["stride"],
                                     op["padding"], groups=op["groups"], bias=True, device="meta")
                    # from_numpy shares the spec's memory: no second copy of the weights
                    conv.weight = nn.Parameter(torch.from_numpy(op["weight"]), requires_grad=False)
                    conv.bias = nn.Parameter(torch.from_numpy(op["bias"]), requires_grad=False)
                    meta["conv"] = len(self.convs)
                    self.convs.append(conv)
                self.ops.append(meta)
            self.eval()

        def forward(self, x):
            """x (n, c, h, w): any batch size."""
            outs = {}
            n = x.shape[0]
            for op in self.ops:
                t = op["type"]
                if t == "conv":
                    x = self.convs[op["conv"]](x)
                    a = op["activation"]
                    if a == "leaky":
                        x = F.leaky_relu(x, 0.1)
                    elif a == "relu":
                        x = F.relu(x)
                    elif a == "logistic":
                        x = torch.sigmoid(x)
                elif t == "maxpool":
                    top, left, bottom, right = op["pads"]
                    if top or left or bottom or right:
                        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
                    x = F.max_pool2d(x, op["size"], op["stride"])
                elif t == "route":
                    srcs = [outs[s] for s in op["sources"]]
                    x = srcs[0] if len(srcs) == 1 else torch.cat(srcs, 1)
                elif t == "reorg":
                    c, h, w = op["in_shape"]
                    s = op["stride"]
                    x = (x.reshape(n, c // (s * s), h, s, w, s).permute(0, 3, 5, 1, 2, 4)
                         .reshape(n, *op["out_shape"]))
                elif t == "avgpool":
                    x = F.adaptive_avg_pool2d(x, 1)
                elif t == "softmax":
                    x = torch.softmax(x.reshape(n, -1), 1)
                outs[op["index"]] = x
            return x

    return DarknetGraph()


# ---------------------------------------------------------------------------- checks

def rel_error(out, ref) -> float:
    """max |out - ref| / max |ref| over the flattened outputs (inf when the sizes differ)."""
    out = np.asarray(out, np.float64).reshape(-1)
    ref = np.asarray(ref, np.float64).reshape(-1)
    if out.size != ref.size:
        return float("inf")
    scale = np.max(np.abs(ref)) or 1.0
    return float(np.max(np.abs(out - ref)) / scale)
