"""From a decoded export's outputs to Darknet's detections: thresholds and NMS as `detect`."""
from __future__ import annotations

import numpy as np

from ..detect import Box, Detection, do_nms_sort


def detections(boxes, scores, objectness, thresh: float = 0.5, nms: float = 0.45, yolo: bool = False,
               printed_only: bool = True) -> list[Detection]:
    """One image's `boxes` (n, 4), `scores` (n, classes) and `objectness` (n,), as an export
    with decode gives them, -> the Detections `Network.detect` returns: objectness and
    class probabilities kept where > thresh (float32, as get_region_detections), then
    do_nms_sort; printed_only=False keeps the whole array (after NMS). yolo: the model's
    detection layers are [yolo] (its metadata's darknet.detection says): as
    get_yolo_detections, only the boxes whose objectness > thresh are in the array."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32)
    scores = scores.reshape(len(boxes), -1)
    objectness = np.asarray(objectness, np.float32).reshape(-1)
    t = np.float32(thresh)
    classes = scores.shape[1]
    dets = []
    rows = np.nonzero(objectness > t)[0] if yolo else range(len(boxes))
    for i in rows:
        obj = objectness[i] if objectness[i] > t else np.float32(0.0)
        det = Detection(len(dets), Box(*boxes[i]), obj, classes)
        if obj != 0:
            for k in np.nonzero(scores[i] > t)[0].tolist():
                det.probs[k] = scores[i, k]
        dets.append(det)
    if nms:
        do_nms_sort(dets, classes, nms)
    return [d for d in dets if d.classes_above(thresh)] if printed_only else dets
