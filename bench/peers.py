"""The same Darknet graph, with the same weights, for the peer engines of bench/cpu.py and gpu.py.

The graph is darknetpy's own exporters' (darknetpy/export: one walk over the layers, an
ONNX and a torch.nn builder), so the peers compute exactly what `darknetpy export`
writes. `graph_spec(net)` is that walk (numpy arrays and numbers only: it pickles for a
child process) with what the benchmarks add: the scope, the darknetpy layer whose output
the peers must equal, the GFLOP and the convolutions' GEMM shapes.

The region layer is left out: the peers compute the *backbone* and are checked against
darknetpy's output of the last layer before [region] (scope "backbone"), as every run
in bench/README.md timed them. Networks without a region layer (darknet19) are converted
whole (scope "full").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darknetpy.export import graph as export_graph


@dataclass
class Spec:
    name: str
    graph: export_graph.Graph
    scope: str = "full"           # "full" or "backbone" (region layer left out)
    gflop: float = 0.0            # sum of the convolutions' bflops() (of the whole network)

    @property
    def ops(self) -> list:
        return self.graph.ops

    @property
    def input_shape(self) -> tuple:
        return self.graph.input_shape

    @property
    def ref_index(self) -> int:
        """The darknetpy layer whose output the peer output must equal."""
        return self.graph.output

    @property
    def out_shape(self) -> tuple:
        return self.graph.out_shape

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """(M, K, N) of each convolution's GEMM: weights (M, K) @ im2col (K, N)."""
        return [(op["filters"], op["k"], op["n"]) for op in self.ops if op["type"] == "conv"]


def graph_spec(net, name: str = "") -> Spec:
    """The ops of `net` up to (not including) its [region] layer, with folded weights; a
    network without one up to its output layer (YOLOv3's last [yolo])."""
    region = next((layer.index for layer in net.layers if layer.type == "region"), None)
    graph = export_graph.walk(net, last=net.output_layer.index if region is None else region - 1)
    return Spec(name=name, graph=graph, scope="full" if region is None else "backbone",
                gflop=sum(layer.bflops() for layer in net.layers))


def to_onnx(spec: Spec, opset: int = 17):
    """An onnx.ModelProto computing spec's graph: input 'input' (1, c, h, w), output 'output'."""
    from darknetpy.export import onnx as builder

    c, h, w = spec.input_shape
    return builder.build(spec.graph, opset=opset, batch=1, size=(w, h), name=f"darknet-{spec.name}")


def to_torch(spec: Spec):
    """A torch.nn.Module (eval mode) computing spec's graph on (n, c, h, w) tensors."""
    from darknetpy.export import torch as builder

    return builder.build(spec.graph)


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


# ---------------------------------------------------------------------------- checks

def rel_error(out, ref) -> float:
    """max |out - ref| / max |ref| over the flattened outputs (inf when the sizes differ)."""
    out = np.asarray(out, np.float64).reshape(-1)
    ref = np.asarray(ref, np.float64).reshape(-1)
    if out.size != ref.size:
        return float("inf")
    scale = np.max(np.abs(ref)) or 1.0
    return float(np.max(np.abs(out - ref)) / scale)
