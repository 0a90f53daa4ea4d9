"""Convolution GEMM kernels for the GPU backend (the CPU twin: darknetpy/cpu/gemm.py).

``gemm_exact(a, b, c)`` writes ``c = a @ b`` with Darknet's arithmetic: every output
starts from +0.0f and adds ``a[i, k] * b[k, j]`` for k = 0..K-1 in order, product and
sum each rounded to float32 (``__fmul_rn`` then ``__fadd_rn``, never an FMA). It is
bit-identical to the CPU's ``gemm_exact`` for every input (NaN payloads aside).
``conv_exact`` is the same product with B read straight from the image by im2col's
index math (implicit im2col: no workspace, no im2col pass). ``gemm_fast`` is cuBLAS
SGEMM through ``cupy.matmul`` (numpy.matmul under the emulator); TF32 tensor cores
are off unless ``DARKNETPY_TF32=1`` is set or ``TF32`` here is set to True.

Launch shapes (gemm.cu). A block of 256 threads (64 for 32x32) computes a BM x BN
tile of C; thread (ty, tx) = divmod(tid, BN/TN) owns TM x TN outputs in runs of 4
rows/columns (one 128-bit shared load each), and keeps their accumulators in
registers for the whole k loop. Grid = (ceil(N/BN), ceil(M/BM)). k advances by slices
of BK: the A slice (BM x BK, stored k-major with 4 floats of padding per row
against bank conflicts) and the B slice (BK x BN) are double-buffered in shared
memory; the next slice is loaded from global memory into registers while the current
one is multiplied, stored to the other buffer, then one barrier (BK = 16 for the
small tiles: half the barriers per k and twice the loads in flight, for grids that
leave few warps per SM). Shapes (CONFIGS),
measured with ptxas for sm_90 (gemm_exact_nn / conv_exact_im2col):

    tile      threads  per thread  BK  shared memory  registers             blocks/SM (regs)
    128x128   256      8 x 8        8  16.6 KB        128 (8-12 B spilled)  2
    128x64    256      8 x 4        8  12.5 KB        80 / 74               3
    64x64     256      4 x 4       16  16.9 KB        64 / 67               3-4
    32x128    256      2 x 8        8  10.5 KB        64 / 64               4
    32x32      64      4 x 4       16   8.7 KB        74 / 78               12-13

Performance model (what to measure on a GPU). Per thread and value of k the 8x8 tile
issues 64 FMUL + 64 FADD against 4 LDS.128 (two for A, two for B), so 97% of the inner
loop's instructions are FP32 math; the slice loads add 8 LDG + 8 STS per 8 k (about 2
more per k) and one barrier. A block does 2*BM*BN*BK = 262144 flops per slice for
128x128. The 4x4 tiles issue 16 FMUL + 16 FADD per 2 LDS.128 (94%), plus
(BM+BN)/threads = 1 global load per k (about 6 instructions with implicit im2col's tap
stepping), so ~80% of their issue slots are math. Separate multiply and add run at
half the FMA rate: an SM retires 128 FP32 instructions per clock, i.e. 128 flops/clock
as FMUL+FADD pairs (256 as FMA). H100 SXM (132 SMs, ~1.7-1.98 GHz): ~29-33 TFLOP/s
non-FMA peak; the goal is at least 40% of it (~12-13 TFLOP/s counted as 2*M*N*K) over
yolov2-608's convolutions; the tile loop itself should reach 70-85% when the grid
fills the GPU. What limits it: the grid. Sequential k forbids split-K, so a layer with
few outputs (yolov2-608's 19x19 layers: M=1024, N=361) has few tiles. On a GPU, the
first call for a problem size times every tile shape and keeps the fastest (TUNE; all
give the same bits); otherwise `choose_tile` guesses the shape whose busiest SM has
the least work (ceil(blocks / SMs) tiles of BM*BN outputs, weighted by the shape's
guessed relative speed). By that count the guesses keep 86% of the SMs' time busy over
yolov2-608 (flop-weighted; 91-99% on most layers, 57-68% on a few small ones; 72%
without the 32x32 tile, which the 19x19 layers take). So expect ~50-60% of the non-FMA
peak overall if the tile loop reaches ~70%. To measure: tests/test_gpu_conv.py's
gpu+slow speed test prints each layer's TFLOP/s and the tile used; compare with
cupy.matmul (cuBLAS FMA SGEMM, TF32 off: the exact kernel should take about 2x its
time or less on the large layers); `ncu --metrics
sm__inst_executed_pipe_fma,sm__warps_active` if it falls short.
"""
import os

import numpy as np

from . import runtime

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gemm.cu")
# (BM, BN, threads, relative throughput of a block of that shape) for gemm.cu's tiles
CONFIGS = ((128, 128, 256, 1.0), (128, 64, 256, 0.95), (64, 64, 256, 0.85), (32, 128, 256, 0.8),
           (32, 32, 64, 0.7))
EMULATED_SMS = 132      # choose_tile's SM count under the emulator (an H100's)
TF32 = os.environ.get("DARKNETPY_TF32", "") == "1"
# On a GPU, time every tile shape at a problem size's first call and keep the fastest
# (all give the same bits); DARKNETPY_GEMM_TUNE=0 keeps choose_tile's guess.
TUNE = os.environ.get("DARKNETPY_GEMM_TUNE", "1") != "0"

_sms = {}
_tuned = {}


def _cdiv(a, b):
    return -(-a // b)


def _module():
    return runtime.load_module(SOURCE)


def sm_count():
    """Streaming multiprocessors of the current device."""
    if runtime.emulating():
        return EMULATED_SMS
    import cupy
    dev = cupy.cuda.Device()
    if dev.id not in _sms:
        _sms[dev.id] = dev.attributes["MultiProcessorCount"]
    return _sms[dev.id]


def choose_tile(M, N, sms=None):
    """(BM, BN) of the shape whose busiest SM has the least weighted work."""
    sms = sms or sm_count()

    def cost(config):
        bm, bn, _, speed = config
        blocks = _cdiv(M, bm) * _cdiv(N, bn)
        return _cdiv(blocks, sms) * bm * bn / speed

    return min(CONFIGS, key=cost)[:2]


def _threads(tile):
    for bm, bn, threads, _ in CONFIGS:
        if (bm, bn) == tuple(tile):
            return threads
    raise ValueError("gemm: no %sx%s tile (CONFIGS)" % tuple(tile))


def _best_tile(key, M, N, launch):
    """choose_tile's guess, or on a GPU (TUNE) the tile measured fastest for `key`."""
    if runtime.emulating() or not TUNE:
        return choose_tile(M, N)
    tile = _tuned.get(key)
    if tile is None:
        tile = _tuned[key] = _fastest(launch)
    return tile


def _fastest(launch):
    import cupy
    times = []
    for bm, bn, _, _ in CONFIGS:
        launch((bm, bn))
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        launch((bm, bn))
        stop.record()
        stop.synchronize()
        times.append((cupy.cuda.get_elapsed_time(start, stop), (bm, bn)))
    return min(times)[1]


def _launch(name, tile, M, N, args):
    bm, bn = tile
    kernel = _module().function("%s_%dx%d" % (name, bm, bn))
    kernel((_cdiv(N, bn), _cdiv(M, bm)), (_threads(tile),), (M, N) + args)


def _ld(x):
    """Row stride of x in floats."""
    rows, cols = x.shape
    return x.strides[0] // 4 if rows > 1 else max(cols, 1)


def _check(a, b, c):
    array = runtime.xp().ndarray
    for name, x in (("a", a), ("b", b), ("c", c)):
        if not isinstance(x, array) or x.dtype != np.float32 or x.ndim != 2:
            raise TypeError("gemm: %s must be a 2-D float32 array" % name)
        rows, cols = x.shape
        if x.size and ((cols > 1 and x.strides[1] != 4) or (rows > 1 and (
                x.strides[0] % 4 != 0 or x.strides[0] < 4 * cols))):
            raise TypeError("gemm: the rows of %s must be contiguous and not overlap "
                            "(strides %s)" % (name, x.strides))
    M, K = a.shape
    if b.shape[0] != K or c.shape != (M, b.shape[1]):
        raise ValueError("gemm: shapes %s @ %s -> %s do not match" % (a.shape, b.shape, c.shape))


def gemm_exact(a, b, c, tile=None):
    """c[:] = a @ b with Darknet's exact float32 arithmetic (see module doc).

    a (M, K), b (K, N), c (M, N): float32, rows contiguous, any row stride; c must not
    overlap a or b. `tile` (BM, BN) forces a tile shape (tests, benchmarks).
    """
    _check(a, b, c)
    M, K = a.shape
    N = b.shape[1]
    if M == 0 or N == 0:
        return c
    if K == 0:
        c[...] = 0.0
        return c
    args = (K, a, _ld(a), b, _ld(b), c, _ld(c))

    def launch(t):
        _launch("gemm_exact_nn", t, M, N, args)

    launch(tile or _best_tile(("nn", M, N, K), M, N, launch))
    return c


def conv_exact(a, im, size, stride, pad, out_hw, c, tile=None):
    """c[:] = a @ im2col(im), exactly as gemm_exact(a, im2col(...), c), without the matrix.

    a (M, c*size*size) rows contiguous; im (channels, h, w) C-contiguous; c (M, out_h*out_w).
    """
    M, K = a.shape
    channels, h, w = im.shape
    N = out_hw[0] * out_hw[1]
    if K != channels * size * size or c.shape != (M, N):
        raise ValueError("conv_exact: weights %s, image %s, size %d -> %s do not match"
                         % (a.shape, im.shape, size, c.shape))
    if not im.flags.c_contiguous:
        raise TypeError("conv_exact: the image must be C-contiguous")
    if M == 0 or N == 0:
        return c
    if K == 0:
        c[...] = 0.0
        return c
    args = (K, a, _ld(a), im, h, w, size, stride, pad, out_hw[1], c, _ld(c))

    def launch(t):
        _launch("conv_exact_im2col", t, M, N, args)

    launch(tile or _best_tile(("im2col", M, N, K, h, w, size, stride), M, N, launch))
    return c


def gemm_fast(a, b, c):
    """c[:] = a @ b with cuBLAS (numpy under the emulator); fast but not bit-exact."""
    _check(a, b, c)
    if runtime.emulating():
        np.matmul(a, b, out=c)
        return c
    import cupy
    if not TF32:
        _matmul(cupy, a, b, c)
        return c
    from cupy_backends.cuda.libs import cublas
    handle = cupy.cuda.device.get_cublas_handle()
    old = cublas.getMathMode(handle)
    cublas.setMathMode(handle, getattr(cublas, "CUBLAS_TF32_TENSOR_OP_MATH", 3))
    try:
        _matmul(cupy, a, b, c)
    finally:
        cublas.setMathMode(handle, old)
    return c


def _matmul(cupy, a, b, c):
    if c.flags.c_contiguous:
        cupy.matmul(a, b, out=c)
    else:
        c[...] = cupy.matmul(a, b)
