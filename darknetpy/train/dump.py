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


def stage_record(trainer, name: str, kind: str) -> dict:
    """One stage as `dump-train` writes it: cost, seen, rate and each layer's hashes."""
    ex = trainer.executor
    layers = []
    for layer in trainer.layers:
        tensors = {}
        for t in stage_names(kind, layer):
            a = tensor(ex, layer, t)
            if a is not None:
                tensors[t] = sha256(a)
        layers.append({"index": layer.index, "type": layer.type, "tensors": tensors})
    return {"stage": name, "cost": float(ex.cost).hex(), "seen": ex.seen, "rate": float(trainer.rate()).hex(),
            "t": ex.t, "layers": layers}
