"""A network's starting parameters for training: Darknet's random initial weights, then
as many layers as a (possibly partial) .weights file holds.

Darknet's trainers call `srand(seed)` and `load_network`: every convolutional layer draws
`scale * rand_normal()` per weight (scale = sqrt(2 / (size*size*c/groups)), Box-Muller on
glibc's `rand()`, its spare value kept across layers), biases 0, batch-norm scales 1; then
`load_weights` overwrites the layers the file holds. A file that ends early (a `partial`
file such as darknet19_448.conv.23) leaves the later layers as drawn. The draws run in a
Numba loop (a Python loop would take minutes for YOLOv2's 50 M weights); glibc's
`rand()` is the loader's emulation (darknetpy/loader/rand.py), advanced in bulk here.
"""
from __future__ import annotations

import math
import sys

import numba
import numpy as np

from ..errors import WeightsError
from ..loader.rand import GlibcRand
from ..weights import open_weights

TWO_PI = float(np.float32(6.2831853071795864769252866))


@numba.njit(cache=True)
def _normals(table, front, rear, out, scale, have, spare):
    """Fill `out` with float32(scale * float32(rand_normal())); returns (front, rear,
    have, spare, calls) so that the stream and the spare continue in the next layer."""
    calls = 0
    for i in range(out.size):
        if have:
            have = False
            z = spare
        else:
            v = (table[front] + table[rear]) & 0xFFFFFFFF
            table[front] = v
            front = front + 1 if front + 1 < 31 else 0
            rear = rear + 1 if rear + 1 < 31 else 0
            r1 = (v >> 1) / 2147483647.0
            v = (table[front] + table[rear]) & 0xFFFFFFFF
            table[front] = v
            front = front + 1 if front + 1 < 31 else 0
            rear = rear + 1 if rear + 1 < 31 else 0
            calls += 2
            r2 = (v >> 1) / 2147483647.0 * TWO_PI
            if r1 < 1e-100:
                r1 = 1e-100
            r1 = -2 * math.log(r1)
            spare = math.sqrt(r1) * math.sin(r2)
            have = True
            z = math.sqrt(r1) * math.cos(r2)
        out[i] = np.float32(scale) * np.float32(z)
    return front, rear, have, spare, calls


def darknet_init(model, seed: int) -> None:
    """Darknet's initial parameters for `model` after `srand(seed)` (convolutional layers)."""
    rng = GlibcRand(seed)
    table = np.array(rng.table, np.uint64)
    front, rear, have, spare = rng.front, rng.rear, False, 0.0
    for layer in model.layers:
        if layer.type != "convolutional":
            continue
        c = layer.in_shape[0]
        scale = np.float32(math.sqrt(2.0 / (layer.size * layer.size * c // layer.groups)))
        weights = np.empty(layer.weights_shape, np.float32)
        front, rear, have, spare, _ = _normals(table, front, rear, weights.reshape(-1), scale, have, spare)
        layer.weights = weights
        layer.biases = np.zeros(layer.filters, np.float32)
        layer.scales = np.ones(layer.filters, np.float32)
        layer.rolling_mean = np.zeros(layer.filters, np.float32)
        layer.rolling_variance = np.zeros(layer.filters, np.float32)


def load_upto(model, path: str, warn=sys.stderr) -> tuple[int, object]:
    """Darknet's load_weights on a file that may hold only the first layers: each layer
    the file holds entirely is set (copies, so training may change them); returns the
    number of layers set and the file's header."""
    header, body = open_weights(path)
    pos, done = 0, 0
    for layer in model.layers:
        spec = layer.weight_arrays(header)
        need = sum(math.prod(shape) for _, shape in spec)
        if not spec:
            done += 1
            continue
        if pos + need > body.size:
            if pos < body.size:
                raise WeightsError(f"{path}: ends inside layer {layer.index} ({layer.type}): expected {need} "
                                   f"floats, {body.size - pos} left")
            break
        arrays = {}
        for name, shape in spec:
            count = math.prod(shape)
            arrays[name] = np.array(body[pos:pos + count].reshape(shape))
            pos += count
        kept = {name: getattr(layer, name) for name in ("scales", "rolling_mean", "rolling_variance")
                if name not in arrays and name in layer.params}
        layer.set_weights(arrays, header)
        for name, value in kept.items():
            setattr(layer, name, value)
        layer.version += 1
        done += 1
    if pos < body.size and warn is not None:
        print(f"warning: {path}: {(body.size - pos) * 4} trailing bytes after the last layer (ignored, as Darknet "
              f"does)", file=warn)
    return done, header
