"""Benchmark darknetpy's convolution GEMM kernels on real layer shapes.

    python bench/gemm.py [--threads 1,2] [--reps 5] [--shapes 0,3,5]
                         [--no-exact] [--no-fast] [--no-blas]
                         [--clock wall|thread] [--wait-idle 0.9]

Prints GFLOP/s per thread (2*M*N*K / time / threads), median and best of
``--reps`` runs, for gemm_exact, gemm_fast and numpy.matmul (OpenBLAS, its
thread count set to the same number through its own API when it can be
found; OPENBLAS_CORETYPE picks its kernels), the runs of the three
interleaved, then the ratios of the medians exact/blas and fast/blas.  On a
shared machine, --clock thread (1 thread) leaves out time given to other
processes; --wait-idle waits for idle CPUs before each run (but then the
idle worker threads have to be woken up, which a VM can make slow).
"""

import argparse
import os
import sys
import time

import numpy as np
import numba

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from darknetpy.cpu.gemm import gemm_exact, gemm_fast  # noqa: E402
import _blas  # noqa: E402

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


def _time(fns, reps, clock=time.perf_counter):
    """(median, best) seconds of each function, their runs interleaved."""
    ts = [[] for _ in fns]
    for _ in range(reps):
        for fn, t_fn in zip(fns, ts):
            _wait_idle()
            t = clock()
            fn()
            t_fn.append(clock() - t)
    return [(np.median(t), min(t)) for t in ts]


def _matmul(a, b, c):
    np.matmul(a, b, out=c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--shapes", default=None)
    ap.add_argument("--no-fast", action="store_true")
    ap.add_argument("--no-exact", action="store_true")
    ap.add_argument("--no-blas", action="store_true")
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
    print("OpenBLAS core: %s" % _blas.corename())
    t0 = time.perf_counter()
    gemm_exact(np.ones((9, 17), np.float32), np.ones((17, 50), np.float32),
               np.empty((9, 50), np.float32))
    gemm_fast(np.ones((9, 17), np.float32), np.ones((17, 50), np.float32),
              np.empty((9, 50), np.float32))
    print("first call (compile or cache load): %.2f s" % (time.perf_counter() - t0))
    rng = np.random.default_rng(0)
    print("GFLOP/s per thread, median (best) of %d runs, %s clock" % (args.reps, args.clock))
    kinds = [k for k, off in (("exact", args.no_exact), ("fast", args.no_fast),
                              ("blas", args.no_blas)) if not off]
    fn = {"exact": gemm_exact, "fast": gemm_fast, "blas": _matmul}
    for name, M, K, N in shapes:
        a = rng.standard_normal((M, K), np.float32)
        b = rng.standard_normal((K, N), np.float32)
        cs = {k: np.empty((M, N), np.float32) for k in kinds}
        flops = 2.0 * M * N * K
        row = "%-24s %5d %6d %7d" % (name, M, K, N)
        for nt in threads:
            numba.set_num_threads(nt)
            _blas.set_threads(nt)
            for k in kinds:
                fn[k](a, b, cs[k])
            res = _time([lambda k=k: fn[k](a, b, cs[k]) for k in kinds], args.reps, clock)
            med = {}
            for k, (m, best) in zip(kinds, res):
                med[k] = m
                row += "  %s/%d %6.1f (%6.1f)" % (k, nt, flops / m / 1e9 / nt,
                                                  flops / best / 1e9 / nt)
            if "blas" in med and len(med) > 1:
                row += "  x" + "/".join("%.2f" % (med["blas"] / med[k])
                                        for k in kinds if k != "blas")
        print(row, flush=True)


if __name__ == "__main__":
    main()
