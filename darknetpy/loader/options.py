"""The `load_args` that Darknet's `train_detector` and `train_classifier` fill from the
cfg, as a JSON-able dict (floats as the doubles `atof` read; the loader rounds them to
float as C does)."""
from __future__ import annotations

import numpy as np

from ..errors import CfgError

_F32 = np.float32


def _get(options, key: str, default, kind):
    """A key of a cfg Section (its `get_int`/`get_float` mark it used) or of a dict."""
    if hasattr(options, "get_int"):
        return options.get_int(key, default) if kind is int else options.get_float(key, default)
    value = options.get(key) if options is not None else None
    if value is None:
        return default
    try:
        return int(float(value)) if kind is int else float(value)
    except (TypeError, ValueError):
        raise CfgError(f"[net] {key}={value!r} is not a number") from None


def _images_per_batch(options) -> int:
    batch = _get(options, "batch", 1, int)
    subdivisions = max(1, _get(options, "subdivisions", 1, int))
    n = (batch // subdivisions) * subdivisions
    if n < 1:
        raise CfgError(f"[net] batch={batch} with subdivisions={subdivisions} gives no image per batch")
    return n


def _size(options) -> tuple[int, int]:
    w, h = _get(options, "width", 0, int), _get(options, "height", 0, int)
    if w < 1 or h < 1:
        raise CfgError("[net] needs width= and height= to train")
    return w, h


def detection_args(options, region_layer) -> dict:
    """`train_detector`'s load_args: n = imgs = batch*subdivisions images, the net's size,
    boxes = the layer's `max` (30 for [region], 90 for [yolo]), its classes, jitter and
    random, [net]'s hue/saturation/exposure, 64 loader threads."""
    w, h = _size(options)
    section = getattr(region_layer, "section", None)
    kind = getattr(region_layer, "type", "region")
    layer_get = (lambda k, d, t: _get(section, k, d, t)) if section is not None else (
        lambda k, d, t: getattr(region_layer, k, d))
    saturation = _get(options, "saturation", 1, float)
    exposure = _get(options, "exposure", 1, float)
    return {
        "n": _images_per_batch(options), "w": w, "h": h,
        "boxes": int(layer_get("max", 90 if kind == "yolo" else 30, int)),
        "classes": int(getattr(region_layer, "classes", 0) or layer_get("classes", 20, int)),
        "jitter": float(layer_get("jitter", .2, float)),
        "random": int(layer_get("random", 0, int)),
        "hue": _get(options, "hue", 0, float),
        "saturation": saturation if saturation != 0 else 1.0,
        "exposure": exposure if exposure != 0 else 1.0,
        "threads": 64,
    }


def classification_args(options, classes) -> dict:
    """`train_classifier`'s load_args: size = width, min/max = (int)(min_crop/width * size)
    and (int)(max_crop/width * size) (kept as ratios for the multi-scale sizes), angle,
    aspect, hue, saturation, exposure (0 read as 1 by load_thread), center = 0, 32 threads."""
    w, h = _size(options)
    min_ratio = _F32(_F32(_get(options, "min_crop", w, int)) / _F32(w))
    max_ratio = _F32(_F32(_get(options, "max_crop", 2 * w, int)) / _F32(w))

    def nonzero(key, default):
        value = _get(options, key, default, float)
        return value if value != 0 else 1.0

    return {
        "n": _images_per_batch(options), "w": w, "h": h, "size": w, "k": int(classes),
        "min_ratio": float(min_ratio), "max_ratio": float(max_ratio),
        "min": int(_F32(min_ratio * _F32(w))), "max": int(_F32(max_ratio * _F32(w))),
        "angle": _get(options, "angle", 0, float), "aspect": nonzero("aspect", 1),
        "hue": _get(options, "hue", 0, float), "saturation": nonzero("saturation", 1),
        "exposure": nonzero("exposure", 1), "center": 0,
        "random": _get(options, "random", 0, int),
        "threads": 32,
    }
