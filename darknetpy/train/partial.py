"""Darknet's `save_weights_upto` and `partial`: a .weights file of the first N layers.

`./darknet partial CFG WEIGHTS OUT N` loads the network with `clear = 1` (seen = 0) and
writes the header Darknet always writes (0.2.0, `seen` as a uint64) and the arrays of
layers 0..N-1: a convolutional layer's biases, then scales, rolling mean and rolling
variance when it has batch norm (even with `dontloadscales`, which only affects loading),
then its weights; a layer with `dontsave=1` is skipped. The file is written to a temporary
name and renamed, so a full disk leaves no truncated file.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ..errors import DarknetError
from ..fileio import atomic_write
from ..weights import WeightsHeader, open_weights

SAVED_HEADER = (0, 2, 0)


def layer_arrays(layer) -> list[np.ndarray]:
    """The arrays save_weights_upto writes for `layer`, in order (none if it has none)."""
    if layer.section.get_int("dontsave", 0):
        return []
    saved = layer.saved_weights()
    if layer.type == "convolutional":
        names = ["biases"]
        if getattr(layer, "batch_normalize", False):
            names += ["scales", "rolling_mean", "rolling_variance"]
        return [saved[name] for name in names + ["weights"]]
    return [saved[name] for name, _ in layer.weight_arrays(WeightsHeader(*SAVED_HEADER))]


def save_weights_upto(path: str | os.PathLike, layers, seen: int, cutoff: int | None = None) -> None:
    """Write `layers[:cutoff]` as Darknet's save_weights_upto does (header 0.2.0, `seen`)."""
    header = WeightsHeader(*SAVED_HEADER, seen=seen)
    chosen = list(layers) if cutoff is None else list(layers)[:max(cutoff, 0)]

    def write(f):
        f.write(header.to_bytes())
        for layer in chosen:
            for a in layer_arrays(layer):
                f.write(np.ascontiguousarray(a, "<f4").data)
    atomic_write(os.fspath(path), write)


def partial(cfg: str, weights: str, out: str, cutoff: int, warn=sys.stderr) -> int:
    """`darknet partial`: the first `cutoff` layers of `weights` (loaded on `cfg`) to `out`,
    seen = 0; returns how many layers were written."""
    from ..model import Model

    if cutoff < 0:
        raise DarknetError(f"partial: N={cutoff} must be 0 or more")
    open_weights(weights)   # a missing or broken file is reported before the cfg is built
    model = Model(cfg, warn=warn)
    model.load_weights(weights, warn)
    save_weights_upto(out, model.layers, 0, cutoff)
    return min(cutoff, len(model.layers))


def cmd_partial(args) -> int:
    """`darknetpy partial CFG WEIGHTS OUT N`."""
    print(f"Saving weights to {args.out}", file=sys.stderr)
    written = partial(args.cfg, args.weights, args.out, args.n)
    print(f"darknetpy: {written} layers written to {args.out}", file=sys.stderr)
    return 0
