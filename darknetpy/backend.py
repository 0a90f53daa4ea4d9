"""Where a network's arrays live and whose kernels run on them: the CPU or a GPU.

A backend is a device, its array module and its kernels: `darknetpy/cpu/kernels.py`
(Numba, numpy arrays) or `darknetpy/gpu/kernels.py` (CUDA sources through CuPy, or
through the CUDA-on-CPU emulator in tests), both the protocol of `darknetpy/kernels.py`.
It holds no per-pass state: that is the executor's (darknetpy/run/).
"""
from __future__ import annotations

import contextlib
import re

import numpy as np

from .cpu import kernels as cpu_kernels
from .errors import DarknetError
from .kernels import Kernels


class Backend:
    """The arrays and kernels of one device ("cpu" or "cuda:N")."""

    def __init__(self, device: str, kernels, xp, runtime=None):
        self.device = device
        self.kernels: Kernels = kernels
        self.xp = xp
        self.runtime = runtime

    @property
    def is_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def trains(self) -> bool:
        """Whether the kernels include darknetpy/kernels.py's TrainingKernels (the module says so)."""
        return bool(getattr(self.kernels, "TRAINING", False))

    def empty(self, shape):
        return self.xp.empty(shape, self.xp.float32)

    def zeros(self, shape):
        return self.xp.zeros(shape, self.xp.float32)

    def upload(self, a: np.ndarray):
        return a if self.is_cpu else self.runtime.upload(np.ascontiguousarray(a))

    def download(self, a) -> np.ndarray:
        return a if self.is_cpu else self.runtime.download(a)

    def synchronize(self) -> None:
        """Wait for the device's queued work (for timing); nothing to wait for on the CPU."""
        if not self.is_cpu:
            self.runtime.synchronize()

    def stream(self):
        """A context in which launches go to a stream of their own (GPU), else nothing."""
        if self.is_cpu or self.runtime.emulating():
            return contextlib.nullcontext()
        import cupy

        return cupy.cuda.Stream(non_blocking=True)


_DEVICE = re.compile(r"^(cpu|cuda|gpu)(?::(\d+))?$")


def parse_device(device: str | int | None) -> tuple[str, int]:
    """"cpu", "cuda", "cuda:N", "gpu:N" or an int N -> ("cpu" | "cuda", index)."""
    if device is None:
        return "cpu", 0
    if isinstance(device, int):
        return "cuda", device
    m = _DEVICE.match(str(device).strip().lower())
    if m is None:
        raise DarknetError(f"unknown device {device!r} (use cpu, cuda or cuda:N)")
    kind = "cpu" if m.group(1) == "cpu" else "cuda"
    return kind, int(m.group(2) or 0)


def get_backend(device: str | int | None = "cpu") -> Backend:
    """A backend for `device`; a GPU one needs CuPy and a CUDA device (or the emulator)."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return Backend("cpu", cpu_kernels, np)
    from .gpu import kernels as gpu_kernels
    from .gpu import runtime

    runtime.require(index)
    return Backend(f"cuda:{index}", gpu_kernels, runtime.xp(), runtime)
