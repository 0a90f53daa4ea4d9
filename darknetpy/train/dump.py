"""The training tensors under the reference kit's names, and its dump procedure.

Stages as the kit names them: `d1_forward`, `d1_backward`, `d1_update` for the first
datum, `d<k>_end` after each later one; each stage holds the tensors that step can change.
"""
from __future__ import annotations

import hashlib

import numpy as np

FORWARD = ("output", "indexes", "loss", "mean", "variance", "rolling_mean", "rolling_variance", "x", "x_norm")
BACKWARD = ("delta", "weight_updates", "bias_updates", "scale_updates", "mean_delta", "variance_delta")
UPDATE = ("weight_updates", "bias_updates", "scale_updates", "weights", "biases", "scales")
SAVED = ("mean", "variance", "x", "x_norm", "mean_delta", "variance_delta")
LOSS_TYPES = ("region", "softmax", "cost")
PARAMS = ("weights", "biases", "scales", "rolling_mean", "rolling_variance")


def tensor(executor, layer, name: str):
    """Layer `layer`'s tensor `name` after the last step, or None where it has none."""
    if name == "output":
        return executor.outputs[layer.index]
    if name == "delta":
        return executor.deltas[layer.index]
    if name in ("indexes", "loss"):
        return getattr(layer, name, None)
    if name in SAVED:
        return getattr(layer, "saved", {}).get(name)
    if name.endswith("_updates"):
        p = layer.params.get(name[:-len("_updates")] + "s" if name == "weight_updates" else
                             name[:-len("_updates")] + "es" if name == "bias_updates" else "scales")
        return None if p is None else p.updates
    if name in PARAMS:
        p = layer.params.get(name)
        if p is None or (name == "scales" and not getattr(layer, "batch_normalize", False)):
            return None
        if name.startswith("rolling") and not getattr(layer, "batch_normalize", False):
            return None
        return p.value
    return None


def stage_names(kind: str, layer) -> tuple:
    """The tensors a stage holds for `layer` (kind: forward, backward, update, end)."""
    if kind == "forward":
        names = FORWARD + (("delta",) if layer.type in LOSS_TYPES else ())
    elif kind == "backward":
        names = BACKWARD
    elif kind == "update":
        names = UPDATE
    else:
        names = FORWARD + BACKWARD + UPDATE
    return tuple(dict.fromkeys(names))


def sha256(a) -> str:
    a = np.asarray(a)
    dtype = "<i4" if a.dtype.kind in "iu" else "<f4"
    return hashlib.sha256(np.ascontiguousarray(a, dtype).tobytes()).hexdigest()


def hex_float(v) -> str:
    """`float.hex` of a float32 value; a NaN as "nan" or "-nan" by its sign bit (as the kit)."""
    v = float(v)
    if v != v:
        return "-nan" if np.signbit(v) else "nan"
    return v.hex()


def stage_record(trainer, name: str, kind: str) -> dict:
    """One stage as `dump-train` writes it: cost, seen, rate and each layer's hashes."""
    ex = trainer.executor
    layers = []
    for layer in trainer.layers:
        tensors, nan_canonical = {}, {}
        for t in stage_names(kind, layer):
            a = tensor(ex, layer, t)
            if a is not None:
                tensors[t] = sha256(a)
                if a.dtype.kind == "f" and np.isnan(a).any():
                    nan_canonical[t] = sha256(np.where(np.isnan(a), np.float32(np.nan), a))
        layers.append({"index": layer.index, "type": layer.type, "tensors": tensors})
        if nan_canonical:
            layers[-1]["tensors_nan_canonical"] = nan_canonical
    return {"stage": name, "cost": hex_float(ex.cost), "seen": ex.seen, "rate": hex_float(trainer.rate()),
            "t": ex.t, "layers": layers}


def dump_train(trainer, X, y, datums: int) -> list[dict]:
    """The kit's procedure: datum k takes rows ((k-1) mod subdivisions)*batch of X and y;
    datum 1 recorded after its forward, backward and update, later ones at their end;
    the trainer's log line after every `subdivisions` datums (train_network's body)."""
    o = trainer.options
    stages: list[dict] = []
    count = [0]
    total = [np.float32(0)]

    def record(kind):
        if count[0] == 1:
            stages.append(stage_record(trainer, f"d1_{kind}", kind))

    for k in range(1, datums + 1):
        count[0] = k
        i = (k - 1) % o.subdivisions
        rows = slice(i * o.batch, (i + 1) * o.batch)
        total[0] = np.float32(total[0] + trainer.datum(X[rows], y[rows], record))
        if k > 1:
            stages.append(stage_record(trainer, f"d{k}_end", "end"))
        if k % o.subdivisions == 0:
            trainer.finish_call(np.float32(total[0] / np.float32(o.subdivisions * o.batch)), len(X))
            total[0] = np.float32(0)
    return stages


def cmd_dump_train(args) -> int:
    """`darknetpy dump-train CFG WEIGHTS --x X.npy --y Y.npy --datums K -o DIR`."""
    import json
    import os
    import sys

    from ..errors import DataError
    from ..fileio import atomic_write
    from ..network import Network
    from .trainer import Trainer

    arrays = []
    for flag, path in (("--x", args.x), ("--y", args.y)):
        try:
            arrays.append(np.load(path, allow_pickle=False).astype(np.float32))
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: cannot read {flag} as a .npy array: {e}") from None
    X, y = arrays
    net = Network(args.cfg, args.weights, numerics=args.numerics, compat=args.compat)
    lines: list[str] = []
    trainer = Trainer(net, numerics=args.numerics, compat=args.compat, log=lines.append)
    rows = trainer.rows
    X = X.reshape(X.shape[0], -1)
    if X.shape[0] != rows or X.shape[1] != net.options.inputs:
        raise DataError(f"{args.x}: shape {X.shape} but the network trains on batch x subdivisions = {rows} rows "
                        f"of {net.options.inputs} floats")
    if y.shape[0] != rows:
        raise DataError(f"{args.y}: {y.shape[0]} rows, the network trains on {rows}")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise DataError(f"{args.out}: cannot create the output folder: {e}") from None
    stages = dump_train(trainer, X, y.reshape(rows, -1), args.datums)
    text = json.dumps(stages, indent=1) + "\n"
    atomic_write(os.path.join(args.out, "stages.json"), lambda f: f.write(text.encode()))
    net.save_weights(os.path.join(args.out, "final.weights"))
    log = "".join(line + "\n" for line in lines)
    atomic_write(os.path.join(args.out, "lines.txt"), lambda f: f.write(log.encode()))
    print(f"wrote {len(stages)} stages, final.weights and lines.txt to {args.out}", file=sys.stderr)
    return 0
