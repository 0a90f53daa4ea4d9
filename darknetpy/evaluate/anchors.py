"""`detector calc_anchors`: the YOLO9000 paper's dimension clusters (section 2,
"Dimension Clusters", Figure 2).

k-means over the (width, height) of every box in the training set's label files, in
pixels of a `width` x `height` network input, with the distance d(box, centroid) =
1 - IoU(box, centroid) for boxes aligned at their centres (IoU = min(w)·min(h) /
(area + area - min(w)·min(h))), so that large boxes do not dominate as they would under
the Euclidean distance. Initialisation is k-means++ (each next centroid drawn with
probability proportional to the squared distance to the nearest one chosen) from a
seeded generator, so a seed gives the same anchors every time; the best of 10 such
runs (highest average IoU) is kept. Each step assigns every
box to the centroid of highest IoU (the lowest index on ties) and moves each centroid to
the mean width and height of its boxes; an emptied cluster takes the box farthest from
its centroid; it stops when no assignment changes.

The anchors, sorted by area, are printed in a cfg's `anchors=` form for a `[region]`
layer (YOLOv2: in grid cells, pixels / 32) and a `[yolo]` layer (YOLOv3: pixels), with
the average IoU of the boxes with their closest anchor (AlexeyAB's `calc_anchors`).
"""
from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field

import numpy as np

from ..errors import DarknetError, DataError
from .dataset import ground_truth, open_dataset

REGION_STRIDE = 32  # YOLOv2's [region] anchors are in cells of the 32-pixel output grid


def wh_iou(boxes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """IoU (n, k) of boxes (n, 2) and centroids (k, 2), both (w, h), aligned at their centres."""
    inter = (np.minimum(boxes[:, None, 0], centroids[None, :, 0])
             * np.minimum(boxes[:, None, 1], centroids[None, :, 1]))
    union = (boxes[:, 0] * boxes[:, 1])[:, None] + (centroids[:, 0] * centroids[:, 1])[None, :] - inter
    return inter / union


def kmeans_pp_init(boxes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with the 1 - IoU distance."""
    n = len(boxes)
    chosen = [int(rng.integers(n))]
    for _ in range(1, k):
        d = 1.0 - wh_iou(boxes, boxes[chosen]).max(axis=1)
        weights = d * d
        total = weights.sum()
        if total <= 0:  # every box coincides with a centroid: take any box not chosen yet
            rest = np.setdiff1d(np.arange(n), chosen)
            chosen.append(int(rest[rng.integers(len(rest))]))
        else:
            chosen.append(int(rng.choice(n, p=weights / total)))
    return boxes[chosen].copy()


def kmeans_once(boxes: np.ndarray, k: int, rng: np.random.Generator,
                max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """One k-means run from a k-means++ start: centroids (k, 2) and each box's cluster."""
    centroids = kmeans_pp_init(boxes, k, rng)
    assign = None
    for _ in range(max_iter):
        iou = wh_iou(boxes, centroids)
        new = np.argmax(iou, axis=1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = boxes[assign == j]
            if len(members):
                centroids[j] = members.mean(axis=0)
            else:
                far = int(np.argmin(iou[np.arange(len(boxes)), assign]))
                centroids[j] = boxes[far]
                assign[far] = j
    return centroids, assign


def kmeans(boxes: np.ndarray, k: int, seed: int = 0, restarts: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (k, 2), sorted by area, and each box's cluster: the best (highest
    average IoU) of `restarts` runs, their starts drawn one after another from one
    generator seeded with `seed`."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 2)
    if k < 1:
        raise DarknetError(f"-num_of_clusters {k}: at least 1")
    distinct = len(np.unique(boxes, axis=0))
    if distinct < k:
        raise DataError(f"{k} clusters asked for but the labels hold only {distinct} distinct box sizes")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(max(1, restarts)):
        centroids, assign = kmeans_once(boxes, k, rng)
        score = average_iou(boxes, centroids)
        if best is None or score > best[0]:
            best = (score, centroids, assign)
    _, centroids, assign = best
    order = np.argsort(centroids[:, 0] * centroids[:, 1], kind="stable")
    rank = np.empty(k, np.int64)
    rank[order] = np.arange(k)
    return centroids[order], rank[assign]


def average_iou(boxes: np.ndarray, anchors: np.ndarray) -> float:
    """Mean over the boxes of the IoU with their closest anchor."""
    return float(wh_iou(np.asarray(boxes, np.float64), np.asarray(anchors, np.float64)).max(axis=1).mean())


@dataclass
class AnchorsResult:
    """The anchors (pixels of the `width` x `height` input, sorted by area), the average
    IoU of the boxes with their closest anchor, and what they came from."""

    anchors: np.ndarray
    avg_iou: float
    width: int
    height: int
    seed: int
    boxes: np.ndarray = field(repr=False)
    assignment: np.ndarray = field(repr=False)
    images: int = 0
    counts_per_class: list[int] = field(default_factory=list)

    def region_line(self) -> str:
        """`anchors=` for a [region] layer (grid cells)."""
        return ", ".join(f"{w / REGION_STRIDE:.4f},{h / REGION_STRIDE:.4f}" for w, h in self.anchors)

    def yolo_line(self) -> str:
        """`anchors=` for a [yolo] layer (whole pixels)."""
        return ", ".join(f"{round(w)},{round(h)}" for w, h in self.anchors)

    def lines(self) -> list[str]:
        return [f" num_of_clusters = {len(self.anchors)}, width = {self.width}, height = {self.height}, "
                f"seed = {self.seed}",
                f" read labels from {self.images} images: {len(self.boxes)} boxes",
                f" counters_per_class = {', '.join(map(str, self.counts_per_class))}",
                f" avg IoU = {100 * self.avg_iou:2.2f} %",
                f"[region] anchors = {self.region_line()}",
                f"[yolo]   anchors = {self.yolo_line()}"]

    def to_json(self) -> dict:
        return {"anchors": [[float(w), float(h)] for w, h in self.anchors], "avg_iou": self.avg_iou,
                "width": self.width, "height": self.height, "seed": self.seed, "boxes": int(len(self.boxes)),
                "images": self.images, "counts_per_class": self.counts_per_class,
                "region_anchors": self.region_line(), "yolo_anchors": self.yolo_line()}


def training_boxes(data: str, width: int, height: int, warn=sys.stderr) -> tuple[np.ndarray, int, list[int]]:
    """(w, h) in pixels of every box in the label files of the `.data` file's `train=`
    list, the number of images, and the boxes per class. Boxes without area are left
    out (one warning)."""
    dataset = open_dataset(data, "train", images_must_exist=False)
    truths = ground_truth(dataset.images, None, warn)
    sizes, counts, empty = [], [], 0
    for t in truths:
        for b in t.boxes:
            if not (b.w > 0 and b.h > 0):
                empty += 1
                continue
            sizes.append((float(b.w) * width, float(b.h) * height))
            counts += [0] * (b.id + 1 - len(counts))
            counts[b.id] += 1
    if empty and warn is not None:
        print(f"darknetpy: warning: {empty} label boxes without width or height left out", file=warn)
    if not sizes:
        raise DataError(f"{dataset.list_path}: the label files of its images hold no boxes")
    return np.array(sizes, np.float64), len(truths), counts


def anchors(data, k: int, width: int, height: int, *, seed: int = 0, warn=sys.stderr) -> AnchorsResult:
    """`detector calc_anchors`: `data` is a `.data` file (its `train=` list's labels) or
    an array of (w, h) boxes in pixels."""
    if width < 1 or height < 1:
        raise DarknetError(f"-width {width} -height {height}: the network input size, e.g. -width 416 -height 416")
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        boxes, images, counts = training_boxes(data, width, height, warn)
    else:
        boxes, images, counts = np.asarray(data, np.float64).reshape(-1, 2), 0, []
    centroids, assignment = kmeans(boxes, k, seed)
    return AnchorsResult(centroids, average_iou(boxes, centroids), width, height, seed, boxes, assignment, images,
                         counts)


def iou_by_k(boxes: np.ndarray, ks=range(1, 11), seed: int = 0) -> list[tuple[int, float]]:
    """Average IoU against the number of clusters (the paper's Figure 2, left)."""
    distinct = len(np.unique(boxes, axis=0))
    return [(k, average_iou(boxes, kmeans(boxes, k, seed)[0])) for k in ks if k <= distinct]


def require_matplotlib():
    """matplotlib, or a DarknetError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise DarknetError("--show needs matplotlib: pip install 'darknet-exact[eval]'") from None
    return matplotlib


def plot_png(result: AnchorsResult) -> bytes:
    """The boxes' (w, h) cloud coloured by cluster with the centroids, beside the average
    IoU for k = 1..10, as PNG bytes (matplotlib, the [eval] extra)."""
    matplotlib = require_matplotlib()
    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    b = result.boxes
    left.scatter(b[:, 0], b[:, 1], c=[f"C{j % 10}" for j in result.assignment], s=6, alpha=0.5)
    left.scatter(result.anchors[:, 0], result.anchors[:, 1], c="black", marker="x", s=80, label="anchors")
    left.set(xlabel="width (pixels)", ylabel="height (pixels)",
             title=f"{len(b)} boxes, k = {len(result.anchors)}, avg IoU {100 * result.avg_iou:.1f}%")
    left.legend(loc="upper left")
    curve = iou_by_k(b, seed=result.seed)
    right.plot([k for k, _ in curve], [v for _, v in curve], marker="o")
    right.set(xlabel="# clusters (k)", ylabel="average IoU", title="average IoU against k", ylim=(0, 1))
    right.grid(True, alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
