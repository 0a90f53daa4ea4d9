"""Benchmark darknetpy's convolution GEMM kernels on real layer shapes.

    python bench/gemm.py [--threads 1,2] [--reps 5] [--shapes 0,3,5] [--no-fast]
                         [--clock wall|thread] [--wait-idle 0.9]

Prints GFLOP/s per thread (2*M*N*K / time / threads), median and best of
``--reps`` runs, for gemm_exact and gemm_fast (BLAS, thread count set to
the same number through OpenBLAS's own API when it can be found).  On a
shared machine, --clock thread (1 thread) leaves out time given to other
processes; --wait-idle waits for idle CPUs before each run (but then the
idle worker threads have to be woken up, which a VM can make slow).
"""

import argparse
import ctypes
import os
import sys
import time

import numpy as np
import numba

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from darknetpy.cpu.gemm import gemm_exact, gemm_fast  # noqa: E402

SHAPES = [
    # (M, K, N): M = filters, K = c*size*size, N = out_h*out_w
    ("yolov2-608 conv0", 32, 27, 369664),
    ("yolov2-608 conv2", 64, 288, 92416),
    ("yolov2-608 conv4", 128, 576, 23104),
    ("yolov2-608 conv5 1x1", 64, 128, 23104),
    ("yolov2-608 conv10", 256, 1152, 5776),
    ("yolov2-608 conv14", 512, 2304, 1444),
    ("yolov2-608 conv18", 1024, 4608, 361),
    ("yolov2-608 conv29 route", 1024, 12800, 361),
    ("yolov2-608 conv30 det", 425, 1024, 361),
    ("darknet19-256 conv0", 32, 27, 65536),
    ("darknet19-256 conv18", 1000, 1024, 64),
]


def _blas_set_threads():
    """Return a function setting OpenBLAS's thread count, or None."""
    names = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
             "openblas_set_num_threads64_", "openblas_set_num_threads")
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        for n in names:
            fn = getattr(lib, n, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                return fn
    return None


def _idle_fraction(dt=0.25):
    """Fraction of all CPUs idle over dt seconds (Linux /proc/stat)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)
    i0, t0 = read()
    time.sleep(dt)
    i1, t1 = read()
    return (i1 - i0) / max(1, t1 - t0)


_WAIT_IDLE = 0.0


def _wait_idle(timeout=30.0):
    """On a shared machine: wait (up to timeout) until the CPUs are idle."""
    if _WAIT_IDLE <= 0:
        return
    t = time.time()
    while time.time() - t < timeout:
        try:
            if _idle_fraction() >= _WAIT_IDLE:
                return
        except OSError:
            return


def _time(fn, reps, clock=time.perf_counter):
    ts = []
    for _ in range(reps):
        _wait_idle()
        t = clock()
        fn()
        ts.append(clock() - t)
    return np.median(ts), min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--shapes", default=None)
    ap.add_argument("--no-fast", action="store_true")
    ap.add_argument("--no-exact", action="store_true")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="FRACTION",
                    help="before each run wait (up to 30 s) until this fraction of "
                         "the CPUs is idle (shared machines)")
    ap.add_argument("--clock", choices=["wall", "thread"], default="wall",
                    help="thread: this thread's CPU time (1 thread only; leaves out "
                         "time the machine gave to other processes)")
    args = ap.parse_args()
    shapes = SHAPES
    if args.shapes:
        shapes = [SHAPES[int(i)] for i in args.shapes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    global _WAIT_IDLE
    _WAIT_IDLE = args.wait_idle
    clock = time.perf_counter
    if args.clock == "thread":
        if threads != [1]:
            ap.error("--clock thread needs --threads 1")
        clock = time.thread_time
    np.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
    blas_threads = _blas_set_threads()
    t0 = time.perf_counter()
    gemm_exact(np.ones((9, 17), np.float32), np.ones((17, 50), np.float32),
               np.empty((9, 50), np.float32))
    print("first call (compile or cache load): %.2f s" % (time.perf_counter() - t0))
    rng = np.random.default_rng(0)
    print("GFLOP/s per thread, median (best) of %d runs, %s clock" % (args.reps, args.clock))
    for name, M, K, N in shapes:
        a = rng.standard_normal((M, K), np.float32)
        b = rng.standard_normal((K, N), np.float32)
        c = np.empty((M, N), np.float32)
        flops = 2.0 * M * N * K
        row = "%-24s %5d %6d %7d" % (name, M, K, N)
        for nt in threads:
            numba.set_num_threads(nt)
            if not args.no_exact:
                gemm_exact(a, b, c)
                med, best = _time(lambda: gemm_exact(a, b, c), args.reps, clock)
                row += "  exact/%d %6.1f (%6.1f)" % (nt, flops / med / 1e9 / nt,
                                                     flops / best / 1e9 / nt)
            if not args.no_fast:
                if blas_threads is not None:
                    blas_threads(nt)
                gemm_fast(a, b, c)
                med, best = _time(lambda: gemm_fast(a, b, c), args.reps, clock)
                row += "  fast/%d %6.1f (%6.1f)" % (nt, flops / med / 1e9 / nt,
                                                    flops / best / 1e9 / nt)
        print(row, flush=True)


if __name__ == "__main__":
    main()
