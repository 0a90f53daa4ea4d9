"""One `load_data` call of Darknet's loader threads, as the deterministic mode runs it:
threads t = 0..T-1 one after another (thread t loads (t+1)*n/T - t*n/T images with its
own call, paths drawn first), rows concatenated in reverse thread order (`concat_datas`)."""
from __future__ import annotations

import numpy as np

from .classification import load_data_augment, load_data_old
from .detection import load_data_detection, run_parallel
from .images import ImageSource
from .rand import GlibcRand

_F32 = np.float32


def f32(value) -> np.float32:
    """A float argument as C's `(float)atof(text)`."""
    return _F32(float(value))


_TREES: dict = {}


def hierarchy_of(args: dict):
    """The classifier's label tree when args names one (`tree`: a path), read once."""
    path = args.get("tree")
    if not path:
        return None
    if path not in _TREES:
        from ..tree import read_tree

        _TREES[path] = read_tree(path)
    return _TREES[path]


def load_call(rng: GlibcRand, kind: str, paths: list[str], args: dict, n: int, w: int, h: int, stock: bool,
              labels: list[str] | None, images: ImageSource, warn=None, warned: set | None = None,
              defer: list | None = None):
    """One call of the kind's Darknet function for n images: X, y, paths drawn (detection
    with `defer`: X filled when the deferred pixel work runs)."""
    if kind == "detection":
        return load_data_detection(rng, paths, n, w, h, int(args.get("boxes", 30)), f32(args.get("jitter", .2)),
                                   f32(args.get("hue", 0)), f32(args.get("saturation", 1)),
                                   f32(args.get("exposure", 1)), stock, images, warn, warned, defer)
    labels = labels or []
    if kind == "classification":
        size = w
        if "min_ratio" in args:
            lo = int(_F32(f32(args["min_ratio"]) * _F32(size)))
            hi = int(_F32(f32(args["max_ratio"]) * _F32(size)))
        else:
            lo, hi = int(args.get("min", size)), int(args.get("max", size))
        return load_data_augment(rng, paths, n, labels, lo, hi, size, f32(args.get("angle", 0)),
                                 f32(args.get("aspect", 1)), f32(args.get("hue", 0)), f32(args.get("saturation", 1)),
                                 f32(args.get("exposure", 1)), stock, images, warn, hierarchy=hierarchy_of(args))
    if kind == "classification_old":
        return load_data_old(rng, paths, n, labels, w, h, images, warn)
    raise ValueError(f"unknown loader kind {kind!r}")


def load_threads(rng: GlibcRand, kind: str, paths: list[str], args: dict, w: int, h: int, stock: bool,
                 labels: list[str] | None, images: ImageSource, warn=None, warned: set | None = None):
    """`load_threads` run single-threaded: X, y and the paths in row order."""
    n = int(args["n"])
    threads = max(1, int(args.get("threads", 1)))
    parts = []
    deferred: list = []
    for t in range(threads):
        count = (t + 1) * n // threads - t * n // threads
        if count == 0 and threads > 1:
            continue
        parts.append(load_call(rng, kind, paths, args, count, w, h, stock, labels, images, warn, warned, deferred))
    run_parallel(lambda item: item[0](item[1]), deferred)
    parts.reverse()
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    picked = [q for p in parts for q in p[2]]
    return X, y, picked
