"""The PyTorch peer of bench/gpu.py: peers.to_torch's module on a CUDA device, any batch,
with the TF32 switch, CUDA-event timing and the SGEMM rate."""
from __future__ import annotations

import torch

import peers


def Batched(spec, device):
    """peers.to_torch(spec) on `device`, eval mode; it takes inputs (n, c, h, w)."""
    return peers.to_torch(spec).to(device).eval()


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
