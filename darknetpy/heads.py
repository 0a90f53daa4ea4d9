"""Heads: what a model's outputs mean.

Detection: every [region] and [yolo] layer decoded in network order, then one NMS, as
Darknet's get_network_boxes and do_nms_sort do. Classification: the top classes of the
output layer, after the tree's hierarchy products.
"""
from __future__ import annotations

import os

import numpy as np

from .detect import do_nms_sort, get_region_detections, get_yolo_detections, top_k
from .errors import CfgError, DarknetError
from .layers.paths import read_map
from .tree import hierarchy_predictions


def detection_layers(model) -> list:
    """The layers a detector decodes, or a clear error for a model that has none."""
    layers = model.detection_layers
    if not layers:
        raise DarknetError(f"{model.cfg_path}: the last layer is [{model.output_layer.type}] and no layer is "
                           f"[region] or [yolo]: not a detector")
    for layer in layers[:-1]:
        if layer.classes != layers[-1].classes:
            # Darknet sizes every detection's probabilities by the last layer's class count
            raise CfgError(f"{layer.section.where('classes')}: layer {layer.index} ({layer.type}) has "
                           f"classes={layer.classes}, the last detection layer {layers[-1].index} has "
                           f"{layers[-1].classes}: the detection layers of a detector must agree")
    return layers


def region_detections(layer, out: np.ndarray, w: int, h: int, model, thresh, hier_thresh, map, factors, ftz,
                      first):
    """One [region] layer's detections for a w x h image (Darknet's get_region_detections)."""
    return get_region_detections(out, classes=layer.classes, coords=layer.coords, num=layer.num,
                                 biases=layer.biases, w=w, h=h, netw=model.width, neth=model.height,
                                 thresh=thresh, hier_thresh=hier_thresh, tree=layer.tree, map=map,
                                 background=layer.background, factors=factors, ftz=ftz)


def yolo_detections(layer, out: np.ndarray, w: int, h: int, model, thresh, hier_thresh, map, factors, ftz, first):
    """One [yolo] layer's detections (Darknet's get_yolo_detections), counted from `first`."""
    return get_yolo_detections(out, classes=layer.classes, mask=layer.mask, biases=layer.biases, w=w, h=h,
                               netw=model.width, neth=model.height, thresh=thresh, factors=factors, first=first,
                               ftz=ftz)


DECODERS = {"region": region_detections, "yolo": yolo_detections}


def detections(model, outs: list, w: int, h: int, thresh: float = 0.5, hier_thresh: float = 0.5,
               nms: float = 0.45, map=None, factors=None, ftz: bool = True, printed_only: bool = True) -> list:
    """The detections of one image from its detection layers' outputs `outs` (one (c, h, w)
    float32 array each, in `detection_layers` order; a tree layer's is modified in place,
    as Darknet's hierarchy products do). See Network.detect for the arguments.
    printed_only=False returns Darknet's whole detection array after NMS."""
    layers = detection_layers(model)
    if isinstance(map, (str, os.PathLike)):
        map = read_map(os.fspath(map))
    dets = []
    for layer, out in zip(layers, outs):
        dets += DECODERS[layer.type](layer, out, w, h, model, thresh, hier_thresh, map, factors, ftz, len(dets))
    if nms:
        # Darknet's test_detector passes the last layer's class count
        do_nms_sort(dets, layers[-1].classes if map is None else len(map), nms, ftz=ftz)
    return [d for d in dets if d.classes_above(thresh)] if printed_only else dets


def classify(model, out: np.ndarray, top: int = 5, ftz: bool = True) -> list[tuple[int, float]]:
    """`classifier predict`'s top classes of one output as (index, probability), after the
    tree's hierarchy products when the softmax has a tree (`out` is modified)."""
    layer = model.output_layer
    if layer.type == "softmax" and layer.tree is not None:
        hierarchy_predictions(out, min(out.size, layer.tree.n), layer.tree, True, 1, ftz=ftz)
    return [(i, out[i]) for i in top_k(out, top, ftz=ftz)]
