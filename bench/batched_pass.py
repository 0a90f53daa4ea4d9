"""One batched pass of n inputs against n passes of one input, darknetpy on the CPU.

    python bench/batched_pass.py [--models yolov2-tiny,darknet19] [--n 4] [--threads 1,2] [--repeat 9]

Both ways compute the same bits (checked here); the table gives each way's median ms per
image over interleaved rounds and their ratio, which decides what `Network.forward_batch`
does on the CPU.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="yolov2-tiny,darknet19", help="models of the reference kit")
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=9)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(max(int(t) for t in args.threads.split(","))))
    import numba
    import numpy as np

    import kit

    print(f"{'model':<14}{'threads':>8}{'n':>4}{'batched ms/img':>16}{'one by one ms/img':>19}{'ratio':>8}")
    for name in args.models.split(","):
        net = kit.network(name, "stock")
        rng = np.random.default_rng(0)
        xs = [rng.random(net.options.inputs, dtype=np.float32) for _ in range(args.n)]
        batch = np.concatenate(xs)
        ex = net.executor
        one = [ex.forward(x)[0] for x in xs]
        together = ex.forward(batch, args.n)[0]
        assert all(together[i].tobytes() == one[i].tobytes() for i in range(args.n)), "batched bits differ"
        for threads in map(int, args.threads.split(",")):
            numba.set_num_threads(threads)
            batched, single = [], []
            for _ in range(args.repeat):
                start = time.perf_counter()
                ex.forward(batch, args.n)
                batched.append((time.perf_counter() - start) / args.n)
                start = time.perf_counter()
                for x in xs:
                    ex.forward(x)
                single.append((time.perf_counter() - start) / args.n)
            b, s = statistics.median(batched) * 1e3, statistics.median(single) * 1e3
            print(f"{name:<14}{threads:>8}{args.n:>4}{b:>16.2f}{s:>19.2f}{b / s:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
