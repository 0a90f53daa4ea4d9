"""The PyTorch peer of bench/gpu.py: peers.to_torch's module on a CUDA device, any batch.

peers.to_torch builds the graph (folded batch norm, Darknet's maxpool pads, reorg as a
permutation) for a batch of one: its reorg and softmax reshape to a leading 1. `Batched`
keeps that module's convolutions and op list and walks them with the input's own batch
size, so the same weights serve batch 1 and 16.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import peers


class Batched(nn.Module):
    """peers.to_torch(spec) for inputs (n, c, h, w), on `device`, eval mode."""

    def __init__(self, spec, device):
        super().__init__()
        graph = peers.to_torch(spec)
        self.ops = graph.ops
        self.convs = graph.convs.to(device)
        self.eval()

    def forward(self, x):
        outs = {}
        n = x.shape[0]
        for op in self.ops:
            t = op["type"]
            if t == "conv":
                x = activate(self.convs[op["conv"]](x), op["activation"])
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


def activate(x, name: str):
    if name == "leaky":
        return F.leaky_relu(x, 0.1)
    if name == "relu":
        return F.relu(x)
    if name == "logistic":
        return torch.sigmoid(x)
    return x


def set_tf32(on: bool) -> None:
    """TF32 for cuDNN convolutions and cuBLAS matmuls together."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def event_ms(fn) -> float:
    """Milliseconds of device time fn() enqueues on torch's current stream (CUDA events)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def sgemm_fma_tflops(n: int = 8192, repeat: int = 10) -> float:
    """The GPU's float32 FMA rate: a large random SGEMM with TF32 off, 2*n^3 flops, median."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        g = torch.Generator(device="cuda").manual_seed(0)
        a = torch.rand(n, n, device="cuda", generator=g)
        b = torch.rand(n, n, device="cuda", generator=g)
        c = torch.empty(n, n, device="cuda")
        for _ in range(3):
            torch.matmul(a, b, out=c)
        times = sorted(event_ms(lambda: torch.matmul(a, b, out=c)) for _ in range(repeat))
        return 2.0 * n ** 3 / (times[len(times) // 2] * 1e-3) / 1e12
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
