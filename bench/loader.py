"""Images/s of darknetpy's training-data pipelines: detection at 416 with Darknet's
augmentation (yolov2-voc's jitter .3, hue .1, saturation 1.5, exposure 1.5), the
deterministic mode (one process) and the fast mode (worker processes), and whether a
training step waits for data in the fast mode: a simulated step (a sleep, the machine
left to the loader) or yolov2-tiny-voc's real training step on the batches (--train: the
step's threads and the workers share the cores, as in `detector train`).

    python3 bench/loader.py --size 416 --n 16 --batches 6 --workers 2 --step 1.0
    python3 bench/loader.py --size 416 --n 8 --batches 6 --workers 2 --train

Images: the data kit's (../shared/reference-data), run from its folder.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
KIT = REPO.parent / "shared" / "reference-data"


def args_for(size: int, n: int) -> dict:
    return dict(n=n, w=size, h=size, boxes=30, classes=20, jitter=".3", hue=".1", saturation="1.5",
                exposure="1.5", threads=64)


def tiny_voc_trainer(size: int, n: int, folder: str):
    """A Trainer of yolov2-tiny-voc at size x size, batch n, random weights (bench/train.py's)."""
    sys.path.insert(0, str(REPO / "bench"))
    import numpy as np
    from train import cfg_copy, random_weights

    import darknetpy

    net = darknetpy.load(cfg_copy("yolov2-tiny-voc", size, n, folder))
    random_weights(net, np.random.default_rng(0))
    return darknetpy.Trainer(net, log=lambda line: None)


def voc_truths(y):
    """The kit's truths for a 20-class model: its YOLO9000 classification truths (x, y past
    100000) and classes past 20 become empty boxes (the region layer stops at the first)."""
    boxes = y.reshape(len(y), -1, 5).copy()
    boxes[(boxes[..., 0] > 1) | (boxes[..., 4] >= 20)] = 0
    return boxes.reshape(len(y), -1)


def warm_up(trainer, paths, size: int, n: int) -> None:
    """One training step first: its kernels compile outside the measurement."""
    from darknetpy.loader import Loader

    with Loader(paths, "detection", args_for(size, n), seed=2, workers=0) as loader:
        X, y = loader.load(size, size)
        trainer.train(X, voc_truths(y))


def measure(paths, size, n, batches, workers, step, trainer=None):
    """(images/s, seconds the consumer waited for data after the first batch); each batch
    then trains `trainer` or sleeps `step` seconds."""
    from darknetpy.loader import Loader

    with Loader(paths, "detection", args_for(size, n), seed=1, workers=workers) as loader:
        for _ in range(max(1, workers)):             # warm-up: compile, spawn, each worker's decode cache
            loader.load(size, size)
        waited = 0.0
        start = time.perf_counter()
        for _ in range(batches):
            t = time.perf_counter()
            X, y = loader.load(size, size)
            waited += time.perf_counter() - t
            if trainer is not None:
                trainer.train(X, voc_truths(y))
            elif step:
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
    p.add_argument("--train", action="store_true", help="yolov2-tiny-voc's training step on each batch")
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
        if a.train:
            with tempfile.TemporaryDirectory() as folder:
                trainer = tiny_voc_trainer(a.size, a.n, folder)
                warm_up(trainer, paths, a.size, a.n)
                rate, waited = measure(paths, a.size, a.n, a.batches, workers, 0.0, trainer)
            line += (f"; with yolov2-tiny-voc's training step: {a.n / rate:.2f} s per batch, waited "
                     f"{waited:.2f} s for data in all")
        print(line, flush=True)


if __name__ == "__main__":
    main()
