"""Where a network's arrays live and whose kernels run on them: the CPU or a GPU.

A layer calls its kernels through `layer.backend` (`backend.pool.maxpool(...)`), so the
same layer code runs on `darknetpy/cpu/` (Numba, numpy arrays) and `darknetpy/gpu/`
(CUDA sources through CuPy, or through the CUDA-on-CPU emulator in tests): the two
packages have the same modules and function signatures.

Outputs come from an arena: one buffer for the whole forward pass, each layer's output
at an offset planned from the graph (`plan_arena`), so that a pass allocates nothing
and a buffer is reused once no later layer reads it.
"""
from __future__ import annotations

import contextlib
import importlib
import re

import numpy as np

from .errors import DarknetError

KERNEL_MODULES = ("convolution", "pool", "reorg", "softmax", "region")


class Backend:
    """The arrays and kernels of one device ("cpu" or "cuda:N")."""

    def __init__(self, device: str, package: str, xp):
        self.device = device
        self.xp = xp
        for name in KERNEL_MODULES:
            setattr(self, name, importlib.import_module(f"{package}.{name}"))
        self.arena = None
        self.views: dict[int, object] = {}
        self._plan = None

    @property
    def is_cpu(self) -> bool:
        return self.device == "cpu"

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

    def concatenate(self, arrays, out):
        """Route's channel concatenation of flat arrays into `out`."""
        start = 0
        for a in arrays:
            out[start:start + a.size] = a
            start += a.size
        return out

    def output(self, layer):
        """The buffer for `layer`'s output: its place in the arena, or a new array."""
        view = self.views.get(layer.index)
        return view if view is not None else self.empty(layer.outputs)

    def use_arena(self, plan: dict[int, tuple[int, int]] | None) -> None:
        """Give each planned layer its arena view (offset, floats); None: no arena.
        The views of the plan last used are kept, so a pass builds none."""
        if not plan:
            self.views = {}
        elif plan is not self._plan or not self.views:
            self.arena, self.views = self.arena_views(plan, self.arena)
        self._plan = plan

    def arena_views(self, plan: dict[int, tuple[int, int]], arena=None):
        """(arena, {layer index: view}) for `plan`, in `arena` if it is large enough."""
        total = max(offset + size for offset, size in plan.values())
        if arena is None or arena.size < total:
            arena = self.empty(total)
        return arena, {index: arena[offset:offset + size] for index, (offset, size) in plan.items()}

    def stream(self):
        """A context in which launches go to a stream of their own (GPU), else nothing."""
        if self.is_cpu or self.runtime.emulating():
            return contextlib.nullcontext()
        import cupy

        return cupy.cuda.Stream(non_blocking=True)


def plan_arena(sizes: dict[int, int], live: dict[int, tuple[int, int]], align: int = 16) -> dict[int, tuple[int, int]]:
    """First-fit offsets (in floats) for buffers live over [first, last] layer indices.

    Buffers whose lives overlap never share bytes; the largest are placed first (the
    greedy-by-size order of TFLite's arena planner), which keeps the total near the
    largest set of buffers alive at once.
    """
    placed: list[tuple[int, int, int, int]] = []
    plan = {}
    for index in sorted(sizes, key=lambda i: (-sizes[i], i)):
        size = -(-sizes[index] // align) * align
        first, last = live[index]
        taken = sorted((o, o + s) for o, s, f, l in placed if f <= last and first <= l)
        offset = 0
        for start, end in taken:
            if offset + size <= start:
                break
            offset = max(offset, end)
        placed.append((offset, size, first, last))
        plan[index] = (offset, sizes[index])
    return plan


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
        return Backend("cpu", "darknetpy.cpu", np)
    from .gpu import runtime

    runtime.require(index)
    backend = Backend(f"cuda:{index}", "darknetpy.gpu", runtime.xp())
    backend.runtime = runtime
    return backend
