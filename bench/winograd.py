"""Winograd F(2x2,3x3) (darknetpy/cpu/winograd.py) against the current fast path
(convolution.convolution with exact=False) on yolov2 608's 3x3 layers.

    python bench/winograd.py [--threads 1,2] [--repeat 5] [--shapes all|i,j,...]

Both get preallocated workspaces of their workspace_floats size, as in a network.
Per shape and thread count: the two run interleaved, `repeat` times each after one
warm-up call; prints the medians in ms, their ratio (direct / Winograd: above 1 means
Winograd is faster), Winograd's max error relative to max|direct| and worth_it's answer.
"""
import argparse
import statistics
import time

import numba
import numpy as np

from darknetpy.cpu import convolution, winograd

SHAPES = [(3, 608, 608, 32), (32, 304, 304, 64), (64, 152, 152, 128), (128, 76, 76, 256),
          (256, 38, 38, 512), (512, 19, 19, 1024), (1024, 19, 19, 1024), (1280, 19, 19, 1024)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--shapes", default="all", help="indices into SHAPES, e.g. 0,4")
    args = p.parse_args()
    shapes = SHAPES if args.shapes == "all" else [SHAPES[int(i)] for i in args.shapes.split(",")]
    rng = np.random.default_rng(0)
    print("%-22s %3s %10s %10s %7s %9s %6s %s" % ("c,h,w,m", "thr", "direct ms", "wino ms",
                                                  "ratio", "rel err", "worth", "plan"))
    for c, h, w, m in shapes:
        x = rng.standard_normal((c, h, w)).astype(np.float32)
        weights = (rng.standard_normal((m, 9 * c)) / np.sqrt(9 * c)).astype(np.float32)
        u = winograd.transform_weights(weights)
        ref = np.empty((m, h * w), np.float32)
        out = np.empty((m, h * w), np.float32)
        for nt in [int(t) for t in args.threads.split(",")]:
            numba.set_num_threads(nt)

            # workspaces as the network's arena gives them (with None the direct path
            # allocates one block and then runs its blocked layers on one thread)
            wd = np.empty(convolution.workspace_floats(c, h, w, 3, 1, 1, 1, h, w, False), np.float32)
            ww = np.empty(winograd.workspace_floats(c, h, w, m, nt), np.float32)

            def direct():
                return convolution.convolution(x, weights, 1, 3, 1, 1, (h, w), wd, False, out=ref)

            def wino():
                return winograd.convolution3x3(x, u, out, ww)

            direct()
            wino()
            td, tw = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                direct()
                td.append(time.perf_counter() - t)
                t = time.perf_counter()
                wino()
                tw.append(time.perf_counter() - t)
            d, wt = statistics.median(td) * 1e3, statistics.median(tw) * 1e3
            err = np.max(np.abs(out.astype(np.float64) - ref)) / np.max(np.abs(ref))
            print("%-22s %3d %10.2f %10.2f %7.2f %9.2e %6s %s" % (
                "%d,%d,%d,%d" % (c, h, w, m), nt, d, wt, d / wt, err,
                winograd.worth_it(c, h, w, m), winograd.plan(c, h, w, m, nt)), flush=True)


if __name__ == "__main__":
    main()
