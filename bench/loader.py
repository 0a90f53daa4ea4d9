"""Images/s of darknetpy's training-data pipelines: detection at 416 with Darknet's
augmentation (yolov2-voc's jitter .3, hue .1, saturation 1.5, exposure 1.5), the
deterministic mode (one process) and the fast mode (worker processes), and whether a
training step of a given length waits for data in the fast mode.

    python3 bench/loader.py --size 416 --n 16 --batches 6 --workers 2 --step 1.0

Images: the data kit's (../shared/reference-data), run from its folder.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
KIT = REPO.parent / "shared" / "reference-data"


def args_for(size: int, n: int) -> dict:
    return dict(n=n, w=size, h=size, boxes=30, classes=20, jitter=".3", hue=".1", saturation="1.5",
                exposure="1.5", threads=64)


def measure(paths, size, n, batches, workers, step):
    """(images/s, seconds the consumer waited for data after the first batch)."""
    from darknetpy.loader import Loader

    with Loader(paths, "detection", args_for(size, n), seed=1, workers=workers) as loader:
        for _ in range(max(1, workers)):             # warm-up: compile, spawn, each worker's decode cache
            loader.load(size, size)
        waited = 0.0
        start = time.perf_counter()
        for _ in range(batches):
            t = time.perf_counter()
            loader.load(size, size)
            waited += time.perf_counter() - t
            if step:
                time.sleep(step)
        total = time.perf_counter() - start
    return n * batches / total, waited


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--n", type=int, default=16, help="images per batch")
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--step", type=float, default=0.0, help="seconds of simulated training step per batch")
    a = p.parse_args()
    os.chdir(KIT)
    with open("train.list") as f:
        paths = [line.strip() for line in f if line.strip()]
    for workers in (0, a.workers):
        mode = "deterministic" if workers == 0 else f"fast, {workers} workers"
        rate, _ = measure(paths, a.size, a.n, a.batches, workers, 0.0)
        line = f"{mode:>22}: {rate:6.1f} images/s at {a.size}x{a.size} ({a.batches} batches of {a.n})"
        if a.step:
            _, waited = measure(paths, a.size, a.n, a.batches, workers, a.step)
            line += f"; with a {a.step} s training step: waited {waited:.2f} s for data in all"
        print(line)


if __name__ == "__main__":
    main()
