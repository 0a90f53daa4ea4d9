"""Darknet .weights files: the header, then each layer's float32 arrays in cfg order.

The header is three int32 (major, minor, revision) and `seen`, which is a uint64 when
`major*10 + minor >= 2` and both are below 1000, else an int32 (Darknet's
`load_weights_upto`). `major > 1000 or minor > 1000` marks transposed connected-layer
weights. The file is read into one buffer, as Darknet `fread`s it, and each layer's
arrays are views of it: a memory map would kill the process with SIGBUS on the next
forward pass if the file were truncated in place while in use (`cp new.weights
old.weights` truncates first).
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

import numpy as np

from .errors import WeightsError, WeightsNotFoundError
from .fileio import atomic_write


@dataclass(frozen=True)
class WeightsHeader:
    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0

    @property
    def seen_is_64bit(self) -> bool:
        return self.major * 10 + self.minor >= 2 and self.major < 1000 and self.minor < 1000

    @property
    def transpose(self) -> bool:
        return self.major > 1000 or self.minor > 1000

    @property
    def nbytes(self) -> int:
        return 20 if self.seen_is_64bit else 16

    def to_bytes(self) -> bytes:
        head = np.array([self.major, self.minor, self.revision], "<i4").tobytes()
        seen = np.array([self.seen], "<u8" if self.seen_is_64bit else "<i4")
        return head + seen.tobytes()


def read_header(raw: np.ndarray, path: str) -> WeightsHeader:
    if raw.size < 16:
        raise WeightsError(f"{path}: {raw.size} bytes is too short for a weights header (16 or 20 bytes)")
    major, minor, revision = (int(v) for v in raw[:12].view("<i4"))
    header = WeightsHeader(major, minor, revision)
    if header.seen_is_64bit:
        if raw.size < 20:
            raise WeightsError(f"{path}: header of version {major}.{minor}.{revision} needs 20 bytes, file has {raw.size}")
        seen = int(raw[12:20].view("<u8")[0])
    else:
        seen = int(raw[12:16].view("<i4")[0])
    return WeightsHeader(major, minor, revision, seen)


def _read(path: str) -> np.ndarray:
    """The whole file in one buffer, read straight into it (no second copy); a file
    that shrinks while being read gives what was there."""
    if os.path.isdir(path):
        raise WeightsError(f"{path}: is a directory, not a .weights file")
    try:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            try:
                raw = np.empty(size, np.uint8)
            except MemoryError:
                raise WeightsError(f"{path}: {size} bytes do not fit in memory") from None
            view, got = memoryview(raw), 0
            while got < size:
                n = f.readinto(view[got:])
                if not n:
                    break
                got += n
    except FileNotFoundError as e:
        raise WeightsNotFoundError(f"{path}: cannot read weights: {e.strerror}", path) from None
    except OSError as e:
        raise WeightsError(f"{path}: cannot read weights: {e.strerror}") from None
    return raw[:got]


def _split(raw: np.ndarray, path: str) -> tuple[WeightsHeader, np.ndarray, int]:
    """(header, float32 body, bytes after the last whole float)."""
    header = read_header(raw, path)
    body = raw[header.nbytes:]
    odd = body.size % 4
    return header, body[:body.size - odd].view("<f4"), odd


def open_weights(path: str | os.PathLike) -> tuple[WeightsHeader, np.ndarray]:
    """Read the file; returns the header and the float32 body after it."""
    path = os.fspath(path)
    header, body, _ = _split(_read(path), path)
    return header, body


# Trailing bytes tolerated with a warning, as Darknet ignores them: up to this many, or
# up to a tenth of what the cfg reads. More means another model's weights.
EXTRA_TOLERATED = 1024


def load_layers(path: str | os.PathLike, layers, warn=sys.stderr, allow_extra: bool = False,
                cfg_path: str | None = None) -> WeightsHeader:
    """Give each layer its arrays, views of the one buffer the file is read into, in
    order; a short file names the layer that ran out.

    `layers` are objects with `weight_arrays()` -> [(name, shape)] in file order and
    `set_weights(dict)`. A few trailing bytes are reported as a warning (Darknet ignores
    them); a file far larger than the cfg reads (see EXTRA_TOLERATED) is a WeightsError
    giving both sizes, before any layer is touched, unless `allow_extra`: it is almost
    always another model's weights, whose first layers would load and give nonsense.
    """
    path = os.fspath(path)
    raw = _read(path)
    header, body, odd = _split(raw, path)
    specs = [(layer, layer.weight_arrays(header)) for layer in layers]
    needed = sum(math.prod(shape) for _, spec in specs for _, shape in spec)
    extra = (body.size - needed) * 4 + odd
    if extra > max(EXTRA_TOLERATED, (header.nbytes + 4 * needed) // 10) and not allow_extra:
        cfg = cfg_path or "the cfg"
        raise WeightsError(
            f"{path}: {raw.size} bytes, but {cfg} reads {header.nbytes + 4 * needed}: probably the weights of "
            f"another model (to read the first {header.nbytes + 4 * needed} bytes anyway: --allow-extra-weights, "
            f"or allow_extra_weights=True in Python)")
    pos = 0
    for layer, spec in specs:
        need = sum(math.prod(shape) for _, shape in spec)
        if pos + need > body.size:
            raise WeightsError(
                f"{path}: ends early at layer {layer.index} ({layer.type}): "
                f"expected {need} floats, {body.size - pos} left")
        arrays = {}
        for name, shape in spec:
            count = math.prod(shape)
            arrays[name] = body[pos:pos + count].reshape(shape)
            pos += count
        layer.set_weights(arrays, header)
    if extra and warn is not None:
        print(f"warning: {path}: {extra} trailing bytes after the last layer (ignored, as Darknet does)",
              file=warn)
    return header


def save_layers(path: str | os.PathLike, layers, header: WeightsHeader) -> None:
    """Write the header and every layer's arrays in file order (Darknet's layout)."""
    def write(f):
        f.write(header.to_bytes())
        for layer in layers:
            for name, _ in layer.weight_arrays(header):
                f.write(np.ascontiguousarray(layer.saved_weights()[name], "<f4").data)
    atomic_write(os.fspath(path), write)
