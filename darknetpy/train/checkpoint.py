"""Checkpoints: Darknet's backup names and times, atomic writes, and the resume state.

Darknet's trainers save `save_weights(net, ...)` files only: no momentum buffers, no
random state, no data position, so a resumed Darknet run is another run. Beside each
checkpoint `X.weights` darknetpy writes `X.weights.state` (an .npz: every parameter's
`updates` buffer, and a JSON record of `seen`, `t`, the average loss, the loader's state,
the multi-scale size and counter, and the SHA-256 of the weights file it belongs to).
A save writes the new pair whole first, as `X.weights.next` and `X.weights.state.next`
(each to a temporary name, then renamed), then renames them over `X.weights` and its state,
the state last. A kill before the first of those renames leaves the old pair; between the
two, the new weights with the new state still at `.state.next`, which `load` takes when
its SHA-256 matches: a checkpoint overwritten at every save (`X.backup`) is never lost. A
full disk raises DarknetError and leaves the previous files in place.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass

import numpy as np

from ..errors import DarknetError
from ..fileio import atomic_write
from .partial import save_weights_upto

STATE_SUFFIX = ".state"
NEXT = ".next"
STATE_VERSION = 1


def basecfg(cfg_path: str) -> str:
    """Darknet's basecfg: the cfg's file name without folders and without its extension."""
    name = os.path.basename(cfg_path)
    return name.split(".")[0] if "." in name else name


def detector_backups(iteration: int, backup_every: int = 100) -> list[str]:
    """train_detector's files after batch `iteration` (names relative to backup/<base>):
    `.backup` every 100, `_<N>.weights` every 100 below 1000 and every 10000."""
    names = []
    if iteration % backup_every == 0:
        names.append(".backup")
    if iteration % 10000 == 0 or (iteration < 1000 and iteration % 100 == 0):
        names.append(f"_{iteration}.weights")
    return names


def detector_final() -> str:
    return "_final.weights"


def classifier_backups(iteration: int, epoch_before: int, epoch_now: int, backup_every: int = 1000) -> list[str]:
    """train_classifier's files: `_<epoch>.weights` when an epoch ends, `.backup` every 1000."""
    names = []
    if epoch_now > epoch_before:
        names.append(f"_{epoch_now}.weights")
    if iteration % backup_every == 0:
        names.append(".backup")
    return names


def classifier_final() -> str:
    return ".weights"


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def learned_updates(layers) -> dict[str, np.ndarray]:
    """Every parameter's `updates` buffer (the momentum), keyed `<layer>/<name>`."""
    out = {}
    for layer in layers:
        for name, p in layer.params.items():
            if p.updates is not None:
                out[f"{layer.index}/{name}"] = p.updates
    return out


@dataclass
class Checkpoint:
    """A consistent pair: the .weights file and the record of its state file."""

    weights: str
    record: dict
    updates: dict


def save(path: str, layers, seen: int, record: dict, log=None) -> None:
    """Write `path` (Darknet's save_weights) and `path.state` (the resume record);
    `log` gets Darknet's "Saving weights to" line."""
    if log is not None:
        log(f"Saving weights to {path}")
    save_weights_upto(path + NEXT, layers, seen)
    record = {**record, "version": STATE_VERSION, "seen": seen, "weights_sha256": file_sha256(path + NEXT)}
    buf = io.BytesIO()
    np.savez(buf, record=np.array(json.dumps(record)), **learned_updates(layers))
    data = buf.getvalue()
    state = path + STATE_SUFFIX
    atomic_write(state + NEXT, lambda f: f.write(data))
    try:
        os.replace(path + NEXT, path)
        os.replace(state + NEXT, state)
    except OSError as e:
        raise DarknetError(f"{path}: cannot write: {e.strerror or e}") from None


def load(path: str) -> Checkpoint | None:
    """The checkpoint at `path` with its state file, or the state a save had not yet renamed
    into place (see the module's doc), whichever matches it; None if neither does."""
    if not os.path.isfile(path):
        return None
    for state, required in ((path + STATE_SUFFIX, True), (path + STATE_SUFFIX + NEXT, False)):
        if not os.path.isfile(state):
            continue
        try:
            with np.load(state, allow_pickle=False) as z:
                record = json.loads(str(z["record"]))
                updates = {k: z[k] for k in z.files if k != "record"}
        except (OSError, ValueError, KeyError) as e:
            if not required:
                continue
            raise DarknetError(f"{state}: cannot read the resume state: {e}") from None
        if record.get("version") == STATE_VERSION and record.get("weights_sha256") == file_sha256(path):
            return Checkpoint(path, record, updates)
    return None


def latest(backup_dir: str, base: str) -> Checkpoint | None:
    """The newest consistent checkpoint of `base` in `backup_dir` (largest `seen`)."""
    if not os.path.isdir(backup_dir):
        return None
    best = None
    weights = set()
    for name in os.listdir(backup_dir):
        if name.startswith(base) and name[len(base):len(base) + 1] in ("_", "."):
            for suffix in (STATE_SUFFIX, STATE_SUFFIX + NEXT):
                if name.endswith(suffix):
                    weights.add(name[:-len(suffix)])
    for name in sorted(weights):
        c = load(os.path.join(backup_dir, name))
        if c is not None and (best is None or c.record["seen"] > best.record["seen"]):
            best = c
    return best


def restore_updates(layers, updates: dict, where: str) -> None:
    """Copy the saved momentum buffers into the layers' (allocated) `updates` arrays."""
    for layer in layers:
        for name, p in layer.params.items():
            key = f"{layer.index}/{name}"
            if key in updates:
                if p.updates is None or p.updates.shape != updates[key].shape:
                    raise DarknetError(f"{where}: layer {layer.index} ({layer.type}) {name}: the state does not "
                                       f"fit this cfg")
                np.copyto(p.updates, updates[key])
