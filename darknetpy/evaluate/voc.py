"""Average precision as PASCAL VOC defines it, with the matching of AlexeyAB's
`detector map` (src/detector.c `validate_detector_map`).

Matching, per class: every detection is compared with the image's objects of its class
(Darknet's `box_iou` on the relative boxes); the object of highest IoU is its match if
that IoU is above the threshold (strictly, as in AlexeyAB's code and py-faster-rcnn's
voc_eval). Going down all detections of the class by descending probability (a stable
sort: equal probabilities keep image order, then detection order), a detection whose
match is still free is a true positive and takes it; any other is a false positive.
Precision and recall at each rank follow.

AP from that curve:
* `points=0`, VOC2010 and later (and ImageNet): the area under the curve after making
  precision non-increasing (each precision replaced by the highest at any rank to its
  right), summed over the ranks where recall changes.
* `points=11`, VOC2007: the mean, over recall levels 0, .1, ..., 1, of the highest
  precision at a recall at or above the level (0 if none).
* `points=101`: the same over 0, .01, ..., 1: COCO's interpolation. With no two
  detections competing for one object it equals pycocotools' AP at that IoU (tested);
  the COCO metric itself (mAP@[.5:.95]) comes from pycocotools (coco.py).

With a `difficult=` list in the `.data` file (AlexeyAB's key: label files of the objects
marked difficult, image by image with `valid=`), a detection that matches no object but a
difficult one is left out, neither true nor false positive, as VOC2007's devkit does.

A class without objects in the ground truth has no AP (None) and is left out of the
mean, as pycocotools leaves it out (AlexeyAB's code counts it as 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .boxes import iou_matrix
from .dataset import ImageDetections, ImageTruth

POINTS = (0, 11, 101)


def average_precision(recall, precision, points: int = 0) -> float:
    """AP of a precision/recall curve given rank by rank (descending probability)."""
    rec = np.asarray(recall, np.float64)
    prec = np.asarray(precision, np.float64)
    if points == 0:
        mrec = np.concatenate(([0.0], rec, [1.0]))
        mpre = np.concatenate(([0.0], prec, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        changed = np.nonzero(mrec[1:] != mrec[:-1])[0]
        return float(np.sum((mrec[changed + 1] - mrec[changed]) * mpre[changed + 1]))
    if points < 2:
        raise ValueError(f"points must be 0 (area) or at least 2, not {points}")
    total = 0.0
    for i in range(points):
        level = i * 1.0 / (points - 1)
        above = prec[rec >= level]
        total += float(above.max()) if above.size else 0.0
    return total / points


@dataclass
class ClassStats:
    """One class: AP (None without ground truth), and at the confidence threshold the
    true and false positives, precision, recall and the mean IoU of the true positives."""

    id: int
    name: str
    ap: float | None
    tp: int
    fp: int
    ground_truth: int
    detections: int
    precision: float | None
    recall: float | None
    iou_sum: float = 0.0


@dataclass
class Ranked:
    """A class's detections by descending probability: probability, true-positive flag
    and IoU with the matched object (0 for a false positive)."""

    prob: np.ndarray
    tp: np.ndarray
    iou: np.ndarray


class Candidates:
    """A class's detections in image order, each with the object it matches (image,
    index among the image's objects of the class) or None, and that IoU."""

    def __init__(self):
        self.probs: list = []
        self.matches: list = []
        self.ious: list = []
        self.objects = 0

    def add_image(self, image: int, dets: list, gt: list, iou_thresh: float, difficult: list = ()) -> None:
        """One image's detections and objects of the class; a detection that matches no
        object but a `difficult` one is left out (AlexeyAB's `difficult=`)."""
        self.objects += len(gt)
        if not dets:
            return
        t = np.float32(iou_thresh)
        boxes = [(b.x, b.y, b.w, b.h) for b in dets]
        m = iou_matrix(boxes, [(b.x, b.y, b.w, b.h) for b in gt]) if gt else np.zeros((len(dets), 0), np.float32)
        hard = (iou_matrix(boxes, [(b.x, b.y, b.w, b.h) for b in difficult]) > t).any(axis=1) if difficult else None
        for i, b in enumerate(dets):
            j = int(np.argmax(m[i])) if gt else -1
            hit = j >= 0 and bool(m[i, j] > t)
            if not hit and hard is not None and hard[i]:
                continue
            self.probs.append(np.float32(b.prob))
            self.matches.append((image, j) if hit else None)
            self.ious.append(float(m[i, j]) if hit else 0.0)

    def rank(self) -> Ranked:
        """Down the detections by descending probability, each free match taken once."""
        prob = np.array(self.probs, np.float32)
        order = np.argsort(-prob, kind="stable")
        taken = set()
        tp = np.zeros(len(order), bool)
        iou = np.zeros(len(order), np.float64)
        for rank, i in enumerate(order.tolist()):
            match = self.matches[i]
            if match is not None and match not in taken:
                taken.add(match)
                tp[rank] = True
                iou[rank] = self.ious[i]
        return Ranked(prob[order], tp, iou)


def candidates(truths: Sequence[ImageTruth], detections: Sequence[ImageDetections], classes: int,
               iou_thresh: float) -> list[Candidates]:
    """Every class's Candidates, in one pass over the images."""
    per_class = [Candidates() for _ in range(classes)]
    for image, (truth, found) in enumerate(zip(truths, detections)):
        gt: dict[int, list] = {}
        for b in truth.boxes:
            gt.setdefault(b.id, []).append(b)
        hard: dict[int, list] = {}
        for b in truth.difficult:
            hard.setdefault(b.id, []).append(b)
        dets: dict[int, list] = {}
        for b in found.boxes:
            if not 0 <= b.class_id < classes:
                raise ValueError(f"{found.path}: a detection of class {b.class_id}, outside 0..{classes - 1}")
            dets.setdefault(b.class_id, []).append(b)
        for k in set(gt) | set(dets):
            if k < classes:
                per_class[k].add_image(image, dets.get(k, []), gt.get(k, []), iou_thresh, hard.get(k, []))
    return per_class


def class_stats(k: int, name: str, ranked: Ranked, objects: int, points: int, thresh: float) -> ClassStats:
    """AP of one class's ranked detections, and the counts at the confidence threshold."""
    ctp = np.cumsum(ranked.tp)
    cfp = np.cumsum(~ranked.tp)
    ap = None
    if objects:
        ap = average_precision(ctp / objects, ctp / np.maximum(ctp + cfp, 1), points) if len(ctp) else 0.0
    n = int(np.count_nonzero(ranked.prob > np.float32(thresh)))
    tp = int(ctp[n - 1]) if n else 0
    fp = n - tp
    return ClassStats(k, name, ap, tp, fp, objects, len(ranked.prob), tp / n if n else None,
                      tp / objects if objects else None, float(ranked.iou[:n].sum()))


def evaluate(truths: Sequence[ImageTruth], detections: Sequence[ImageDetections], names: Sequence[str], *,
             iou: float = 0.5, points: int = 0, thresh: float = 0.25) -> list[ClassStats]:
    """Every class's ClassStats (see the module); `truths` and `detections` are aligned
    image by image."""
    if len(truths) != len(detections):
        raise ValueError(f"{len(truths)} images of ground truth but {len(detections)} of detections")
    return [class_stats(k, name, c.rank(), c.objects, points, thresh)
            for k, (name, c) in enumerate(zip(names, candidates(truths, detections, len(names), iou)))]
