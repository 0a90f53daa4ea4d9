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

Extra keyword arguments of `Loader`: `numerics` ("darknet": the stock -Ofast build's
arithmetic; "ieee": the source's, the kit's O2), `prefetch` (batches in flight in the fast
mode), `trace` (a callable given each load and resize, for tests). A classifier with a
label tree sets `args["tree"]` to the tree file (`fill_hierarchy`).
"""
from __future__ import annotations

from .options import classification_args, detection_args
from .pipeline import KINDS, Loader, batch_seed

__all__ = ["KINDS", "Loader", "batch_seed", "classification_args", "detection_args"]
