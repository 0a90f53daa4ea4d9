"""Darknet's training-data pipeline (src/data.c, src/image.c, src/utils.c), bit for bit.

The names here are the interface the training loop codes against:

* `detection_args(options, region_layer)`: the `load_args` that `train_detector` fills
  (w, h, n, boxes, classes, jitter, hue, saturation, exposure, ...).
* `classification_args(options, classes)`: the `load_args` of `train_classifier`.
* `Loader(paths, kind, args, seed, workers=0, labels=None, warn=None)`: batches.
  `workers=0` is the deterministic mode: one glibc `rand()` stream seeded with `seed`,
  consumed in the single-threaded order of the reference kit's README (the paths of a
  load drawn first, then every image's augmentation in order). `workers>0` is the fast
  mode: worker processes load ahead through a bounded queue, each batch seeded from
  `seed` and its batch number, so a run is reproducible for the same worker count.
* `Loader.next_size(iteration, max_batches, width, height)`: `train_detector`'s
  multi-scale choice for `random=1` (a new size every 10 batches, 608 in the last 200).
* `Loader.load(w, h)`: the next batch, X float32 (n, 3, h, w) and y float32 (n, truths).
* `Loader.state()` / `Loader.restore(state)`: JSON-able position (rand state, data
  position, current size, batch number) for exact resume.
"""
from __future__ import annotations

import numpy as np

KINDS = ("detection", "classification", "classification_old")


def detection_args(options, region_layer) -> dict:
    """`train_detector`'s load_args: from [net] (`options`: a cfg Section or a dict of
    strings) and the last layer (a region/yolo layer: its cfg section gives `jitter`
    and `max`, its `classes` attribute the class count)."""
    raise NotImplementedError


def classification_args(options, classes) -> dict:
    """`train_classifier`'s load_args (size, min, max, angle, aspect, hue, saturation,
    exposure, center=0, k=classes)."""
    raise NotImplementedError


class Loader:
    """Batches in Darknet's order; see the module docstring for the two modes."""

    def __init__(self, paths: list[str], kind: str, args: dict, seed: int, workers: int = 0,
                 labels: list[str] | None = None, warn=None):
        raise NotImplementedError

    def next_size(self, iteration: int, max_batches: int, width: int, height: int) -> tuple[int, int]:
        """The multi-scale size for this iteration (Darknet's `count++ % 10 == 0` draw)."""
        raise NotImplementedError

    def load(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """The next batch at size w x h: X (n, 3, h, w) and y (n, truths), float32."""
        raise NotImplementedError

    def state(self) -> dict:
        """JSON-able: rand state, data position, current size, batch number."""
        raise NotImplementedError

    def restore(self, state: dict) -> None:
        """Continue exactly where `state()` was taken."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop the worker processes (fast mode); a no-op in deterministic mode."""
        raise NotImplementedError
