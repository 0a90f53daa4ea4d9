"""The GPU backend: Darknet's forward pass as CUDA kernels, bit for bit like darknetpy.cpu.

It mirrors `darknetpy/cpu/`: one Python module per kernel family, with the same
function names and signatures as its CPU twin, and the CUDA source beside it as a
`.cu` file of the same stem (kernels are `extern "C" __global__`; shared device
helpers live in `.cuh` headers). `runtime` compiles and launches them: with CuPy
(NVRTC) on an NVIDIA GPU, or, with `DARKNETPY_GPU_EMULATE=1`, through `emulator`,
which runs the same sources on the CPU with g++ and OpenMP so that CI can check the
kernels' numbers without a GPU.

Exact kernels are compiled without FMA contraction (--fmad=false) and flush
subnormals explicitly where Darknet's stock build does, so that the emulator and a
GPU compute the same bits. Nothing here imports CuPy until a GPU is asked for.
"""
