"""`darknetpy dump-batch`: one loader call after `srand(S)`, written as X.npy, y.npy and
batch.json (picked_paths, rand_calls, next_rand), to compare with the data kit."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import numpy as np

from ..data import get_labels, get_paths
from ..errors import DataError

# --KEY VALUE options of dump-batch: the kit's `args` keys (w and h as --width/--height).
INT_KEYS = ("n", "boxes", "classes", "size", "min", "max", "k", "center", "threads")
FLOAT_KEYS = ("jitter", "hue", "saturation", "exposure", "angle", "aspect")


def dump_batch(list_path: str, kind: str, seed: int, args: dict, out: str, labels_path: str | None = None,
               numerics: str = "darknet", warn=None) -> dict:
    """Run one call and write DIR/X.npy, DIR/y.npy, DIR/batch.json (all or nothing)."""
    paths = get_paths(list_path)
    if not paths:
        raise DataError(f"{list_path}: the list names no image")
    labels = get_labels(labels_path) if labels_path else None
    if kind != "detection" and labels is None:
        raise DataError(f"--kind {kind} needs --labels FILE (the classification label list)")
    if labels is not None and args.get("k") is not None:
        labels = labels[:int(args["k"])]
    if kind == "classification":
        size = int(args.get("size") or args.get("w") or 0)
        w = h = size
    else:
        w, h = int(args.get("w") or 0), int(args.get("h") or 0)
    if w < 1 or h < 1:
        raise DataError("dump-batch needs a size: --width and --height (or --size for classification)")
    call = dict(args)
    call.setdefault("threads", 1)
    if "n" not in call:
        call["n"] = 1
    from .batch import load_threads
    from .images import ImageSource
    from .rand import GlibcRand

    rng = GlibcRand(seed)
    X, y, picked = load_threads(rng, kind, paths, call, w, h, numerics != "ieee", labels, ImageSource(paths, warn),
                                warn, set())
    info = {"picked_paths": picked, "rand_calls": rng.calls, "next_rand": rng.rand()}
    write_dir(out, X, y, info)
    return info


def write_dir(out: str, X: np.ndarray, y: np.ndarray, info: dict) -> None:
    """The three files written in a temporary folder beside `out`, then moved in."""
    parent = os.path.dirname(os.path.abspath(out)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".dump-batch-", dir=parent)
    try:
        np.save(os.path.join(tmp, "X.npy"), np.ascontiguousarray(X, np.float32))
        np.save(os.path.join(tmp, "y.npy"), np.ascontiguousarray(y, np.float32))
        with open(os.path.join(tmp, "batch.json"), "w") as f:
            json.dump(info, f, indent=1)
        os.makedirs(out, exist_ok=True)
        for name in ("X.npy", "y.npy", "batch.json"):
            os.replace(os.path.join(tmp, name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def add_arguments(p) -> None:
    """dump-batch's options (registered by the CLI)."""
    p.add_argument("list", metavar="LIST", help="image list, paths relative to the current folder")
    p.add_argument("--kind", required=True, choices=("detection", "classification", "classification_old"))
    p.add_argument("--seed", required=True, type=int, metavar="S", help="srand(S) before the call")
    p.add_argument("--width", "--w", dest="w", type=int, metavar="W")
    p.add_argument("--height", "--h", dest="h", type=int, metavar="H")
    for key in INT_KEYS:
        p.add_argument(f"--{key}", type=int, metavar="N")
    for key in FLOAT_KEYS:
        p.add_argument(f"--{key}", metavar="X", help="read as C's (float)atof")
    p.add_argument("--labels", metavar="FILE", help="classification label list")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for X.npy, y.npy, batch.json")
    p.add_argument("--numerics", choices=("darknet", "ieee"), default="darknet",
                   help="darknet: the stock -Ofast build's arithmetic; ieee: the source's (the kit's O2)")


def run(args) -> int:
    """The verb: options -> dump_batch; warnings (Darknet's label-count line included) on stderr."""
    from .labels import emit

    call = {k: getattr(args, k) for k in ("w", "h") + INT_KEYS + FLOAT_KEYS if getattr(args, k) is not None}
    for key in FLOAT_KEYS:
        if key in call:
            try:
                float(call[key])
            except ValueError:
                raise DataError(f"--{key} {call[key]!r} is not a number") from None
    info = dump_batch(args.list, args.kind, args.seed, call, args.out, args.labels, args.numerics,
                      warn=lambda m: emit(sys.stderr, m))
    print(f"darknetpy: {len(info['picked_paths'])} images, {info['rand_calls']} rand() calls, "
          f"next rand {info['next_rand']} -> {args.out}/", file=sys.stderr)
    return 0
