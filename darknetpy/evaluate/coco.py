"""COCO's detection metrics, computed by pycocotools (the implementation every COCO
number is quoted from), not re-implemented: mAP@[.5:.95] with 101 recall points, AP50,
AP75, by object size, and recall at 1, 10 and 100 detections per image.

`ground_truth_json` writes a dataset's label files as a COCO annotation object (boxes in
pixels, categories 1..classes), `results_json` the detections as Darknet's `print_cocos`
writes them, and `evaluate` runs `COCOeval` on the two (objects or JSON files).
pycocotools is the `[eval]` extra: pip install 'darknet-exact[eval]'.
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import DarknetError, DataError
from .dataset import ImageDetections, ImageTruth
from .results import coco_bbox

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def require_pycocotools():
    """pycocotools' COCO and COCOeval, or a DarknetError saying how to install them."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise DarknetError("the COCO metrics need pycocotools: pip install 'darknet-exact[eval]'") from None
    return COCO, COCOeval


def ground_truth_json(truths: Sequence[ImageTruth], sizes: Sequence[tuple[int, int]],
                      names: Sequence[str]) -> dict:
    """The label files as a COCO annotation object: image i has id i+1 and the given
    (width, height); class k is category k+1; a box's pixel [x, y, w, h] is its relative
    box times the image size (in double), area w*h, iscrowd 0."""
    images, annotations = [], []
    for i, (truth, (width, height)) in enumerate(zip(truths, sizes)):
        images.append({"id": i + 1, "width": int(width), "height": int(height), "file_name": truth.path})
        for b in truth.boxes:
            w, h = float(b.w) * width, float(b.h) * height
            x, y = float(b.x) * width - w / 2, float(b.y) * height - h / 2
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": b.id + 1,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def results_json(detections: Sequence[ImageDetections]) -> list[dict]:
    """The detections in COCO's result format (image i is id i+1, class k category
    k+1), boxes as `print_cocos` computes them."""
    out = []
    for i, image in enumerate(detections):
        for b in image.boxes:
            out.append({"image_id": i + 1, "category_id": b.class_id + 1,
                        "bbox": list(coco_bbox(b, image.width, image.height)), "score": float(b.prob)})
    return out


@dataclass
class CocoResult:
    """pycocotools' twelve summary numbers (STAT_NAMES), its printed summary, and per
    category (in the ground truth's order) AP@[.5:.95] and AP50, None where the category
    has no objects."""

    stats: dict[str, float]
    lines: list[str]
    category_ids: list[int]
    ap: list[float | None] = field(default_factory=list)
    ap50: list[float | None] = field(default_factory=list)


def _load(source, what: str):
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        try:
            with open(source, encoding="utf-8") as f:
                return json.load(f)
        except OSError as e:
            raise DarknetError(f"{source}: cannot read the {what}: {e.strerror}") from None
        except ValueError as e:
            raise DataError(f"{source}: the {what} is not JSON: {e}") from None
    return source


def _per_category(precision: np.ndarray, t: slice | int, k: int) -> float | None:
    """Mean of pycocotools' precision array over recall points (and IoUs) for category
    index k, area 'all', 100 detections, leaving out the -1 entries as summarize does."""
    p = precision[t, :, k, 0, -1]
    p = p[p > -1]
    return float(p.mean()) if p.size else None


def evaluate(ground_truth, results) -> CocoResult:
    """COCOeval('bbox') of `results` (a list of detections or a JSON file) against
    `ground_truth` (an annotation object or a JSON file): evaluate, accumulate, summarize."""
    COCO, COCOeval = require_pycocotools()
    gt_data = _load(ground_truth, "ground truth")
    dt_data = _load(results, "results")
    if not isinstance(dt_data, list):
        raise DataError("the COCO results are a JSON array of detections")
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        gt = COCO()
        gt.dataset = gt_data
        gt.createIndex()
        if dt_data:
            dt = gt.loadRes(dt_data)
        else:
            dt = COCO()
            dt.dataset = {"images": gt_data.get("images", []), "categories": gt_data.get("categories", []),
                          "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        ev.summarize()
    precision = ev.eval["precision"]
    cat_ids = list(ev.params.catIds)
    iou50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    return CocoResult(dict(zip(STAT_NAMES, (float(v) for v in ev.stats))), summary.getvalue().splitlines(),
                      cat_ids, [_per_category(precision, slice(None), k) for k in range(len(cat_ids))],
                      [_per_category(precision, iou50, k) for k in range(len(cat_ids))])
