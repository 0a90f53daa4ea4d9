"""`detector map`: mean average precision of a network on a `.data` file's `valid=` list.

The detections are `detector valid`'s (thresh .005, hier .5, nms .45, letterboxed, the
`.data` file's `map=`), the ground truth the label files found by Darknet's path rules.
`points=0` (area, VOC2010+) and `points=11` (VOC2007) at one IoU threshold come from
voc.py; `points=101` is COCO's mAP@[.5:.95] from pycocotools (coco.py). In every mode the
per-class TP/FP, precision and recall are counted at the confidence threshold (`thresh`,
.25 as in AlexeyAB's `detector map`) at the IoU threshold `iou`.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Sequence

from ..errors import DarknetError
from .dataset import ImageDetections, ImageTruth, add_difficult, ground_truth, open_dataset
from .voc import POINTS, ClassStats, evaluate


@dataclass
class MapResult:
    """The whole evaluation: mAP and its definition, per-class statistics, the totals at
    the confidence threshold, and for points=101 pycocotools' twelve numbers."""

    mAP: float
    iou: float | str
    points: int
    thresh: float
    classes: list[ClassStats]
    images: int
    failed: int = 0
    coco: dict | None = None
    coco_lines: list[str] = field(default_factory=list)

    @property
    def tp(self) -> int:
        return sum(c.tp for c in self.classes)

    @property
    def fp(self) -> int:
        return sum(c.fp for c in self.classes)

    @property
    def ground_truth(self) -> int:
        return sum(c.ground_truth for c in self.classes)

    @property
    def detections(self) -> int:
        return sum(c.detections for c in self.classes)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.ground_truth if self.ground_truth else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def avg_iou(self) -> float:
        """Mean IoU of the true positives at the confidence threshold."""
        return sum(c.iou_sum for c in self.classes) / self.tp if self.tp else 0.0

    def to_json(self) -> dict:
        classes = [{k: v for k, v in asdict(c).items() if k != "iou_sum"} for c in self.classes]
        out = {"mAP": self.mAP, "iou": self.iou, "points": self.points, "thresh": self.thresh, "images": self.images,
               "failed": self.failed, "tp": self.tp, "fp": self.fp, "fn": self.ground_truth - self.tp,
               "precision": self.precision, "recall": self.recall, "f1": self.f1, "avg_iou": self.avg_iou,
               "classes": classes}
        if self.coco is not None:
            out["coco"] = self.coco
        return out

    def lines(self) -> list[str]:
        """The report, in the words of AlexeyAB's `detector map`."""
        out = [f" detections_count = {self.detections}, unique_truth_count = {self.ground_truth}"]
        out += self.coco_lines
        what = "ap@[.50:.95]" if self.points == 101 else "ap"
        for c in self.classes:
            ap = "n/a (no ground truth)" if c.ap is None else f"{100 * c.ap:.2f}%"
            p = "-" if c.precision is None else f"{c.precision:.2f}"
            r = "-" if c.recall is None else f"{c.recall:.2f}"
            out.append(f"class_id = {c.id}, name = {c.name}, {what} = {ap}   \t (TP = {c.tp}, FP = {c.fp}, "
                       f"precision = {p}, recall = {r}, ground truth = {c.ground_truth})")
        t = self.thresh
        out += ["", f" for conf_thresh = {t:.2f}, precision = {self.precision:.2f}, recall = {self.recall:.2f}, "
                    f"F1-score = {self.f1:.2f}",
                f" for conf_thresh = {t:.2f}, TP = {self.tp}, FP = {self.fp}, FN = {self.ground_truth - self.tp}, "
                f"average IoU = {100 * self.avg_iou:.2f} %", ""]
        if self.points == 101:
            out.append(" IoU thresholds = 50 % to 95 %, used 101 Recall-points (pycocotools)")
            out.append(f" mean average precision (mAP@[.50:.95]) = {self.mAP:f}, or {100 * self.mAP:.2f} %")
            return out
        how = f"used {self.points} Recall-points" if self.points else "used Area-Under-Curve for each unique Recall"
        out.append(f" IoU threshold = {100 * self.iou:2.0f} %, {how}")
        out.append(f" mean average precision (mAP@{self.iou:0.2f}) = {self.mAP:f}, or {100 * self.mAP:.2f} %")
        return out


def mean_of(aps: Sequence[float | None]) -> float:
    present = [a for a in aps if a is not None]
    return sum(present) / len(present) if present else 0.0


def summarize(truths: Sequence[ImageTruth], detections: Sequence[ImageDetections], names: Sequence[str], *,
              iou: float = 0.5, points: int = 0, thresh: float = 0.25) -> MapResult:
    """The MapResult of aligned ground truth and detections (see the module)."""
    if points not in POINTS:
        raise DarknetError(f"--points {points}: choose 0 (area, VOC2010+), 11 (VOC2007) or 101 (COCO)")
    if not 0 < iou < 1:
        raise DarknetError(f"--iou {iou}: an IoU threshold lies between 0 and 1")
    stats = evaluate(truths, detections, names, iou=iou, points=points, thresh=thresh)
    failed = sum(d.error is not None for d in detections)
    if points != 101:
        return MapResult(mean_of([c.ap for c in stats]), iou, points, thresh, stats, len(truths), failed)
    from .coco import evaluate as coco_evaluate, ground_truth_json, results_json

    sizes = [(d.width or 1, d.height or 1) for d in detections]
    result = coco_evaluate(ground_truth_json(truths, sizes, names), results_json(detections))
    for c in stats:
        c.ap = result.ap[c.id]
    return MapResult(result.stats["AP"], "0.50:0.95", points, thresh, stats, len(truths), failed,
                     coco={"stats": result.stats, "ap50": result.ap50}, coco_lines=result.lines)


def mean_average_precision(data: str, net=None, *, detections: Sequence[ImageDetections] | None = None,
                           iou: float = 0.5, points: int = 0, thresh: float = 0.25, batch: int = 1,
                           loaders: int = 2, decoder: str = "stb", progress=None, warn=sys.stderr) -> MapResult:
    """`detector map`: run `net` over the `.data` file's `valid=` list (or take
    `detections`, one ImageDetections per listed image, in list order) and evaluate
    them against the images' label files."""
    from .run import detect_dataset, eval_classes

    if (net is None) == (detections is None):
        raise ValueError("give either a network or the detections")
    if points not in POINTS:
        raise DarknetError(f"--points {points}: choose 0 (area, VOC2010+), 11 (VOC2007) or 101 (COCO)")
    if points == 101:
        from .coco import require_pycocotools

        require_pycocotools()
    dataset = open_dataset(data, "valid", images_must_exist=net is not None)
    names = dataset.names()
    if net is not None:
        class_map = dataset.class_map()
        classes = eval_classes(net, class_map)
        if len(names) < classes:
            raise DarknetError(f"{dataset.data_path}: the names file has {len(names)} names for {classes} classes")
        names = names[:classes]
    truths = ground_truth(dataset.images, len(names), warn)
    add_difficult(dataset, truths, len(names), warn)
    if net is not None:
        detections = list(detect_dataset(net, dataset.images, map=class_map, batch=batch, loaders=loaders,
                                         decoder=decoder, progress=progress, warn=warn))
    elif len(detections) != len(dataset.images):
        raise ValueError(f"{len(detections)} ImageDetections for the {len(dataset.images)} images of "
                         f"{dataset.list_path}")
    return summarize(truths, detections, names, iou=iou, points=points, thresh=thresh)
