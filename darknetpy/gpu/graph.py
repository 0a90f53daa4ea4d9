"""A whole forward pass captured once as a CUDA graph and replayed (batch 1).

Launching a network of ~30 layers costs ~100 kernel launches from Python per image;
a graph replays them in one call. What capture needs, and how it is met:

* Nothing may call cudaMalloc while capturing. The pass runs once eagerly first (which
  also compiles every kernel and lets the GEMM pick its tiles), with a memory pool of its
  own; its arrays are then freed into that pool, and the captured pass, making the same
  allocations in the same order, is served from the pool's cached blocks.
* Addresses are baked into the graph. The pool is kept for the graph's lifetime and used
  for nothing else, and the arrays the captured pass returns are kept, so no block the
  graph writes is ever handed to anyone else. The input is a fixed device buffer that
  each call fills before replaying.
"""
from __future__ import annotations

import numpy as np


class GraphForward:
    """A forward pass (`run_pass`: device input -> list of device outputs) on the GPU,
    captured; call it with a host input, get the list of host outputs."""

    def __init__(self, run_pass, inputs: int):
        import cupy

        self._cupy = cupy
        self.pool = cupy.cuda.MemoryPool()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
            self.input = cupy.zeros(inputs, cupy.float32)
            warm = run_pass(self.input)
            self.stream.synchronize()
            del warm
            self.stream.begin_capture()
            try:
                self.output = run_pass(self.input)
            finally:
                self.graph = self.stream.end_capture()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.input.set(np.ascontiguousarray(x, np.float32).reshape(-1), stream=self.stream)
        self.graph.launch(self.stream)
        out = [o.get(stream=self.stream) for o in self.output]
        self.stream.synchronize()
        return out
