"""`detector recall`: Darknet's `validate_detector_recall` (examples/detector.c), on the
`.data` file's `valid=` list (Darknet reads a fixed data/coco_val_5k.list).

Per image, as Darknet does it: the image resized (not letterboxed) to the network size;
every box of the region layer with objectness above .001 (`get_network_boxes`, relative);
`do_nms_obj` at .4 (by objectness, over all classes); the proposals are the boxes left.
Each labelled object takes its best IoU with any proposal: it is found when that IoU is
above .5. After each image one line: image index, objects found, objects so far,
proposals per image, mean best IoU and recall, in Darknet's format and arithmetic (the
IoU sum in float32).
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from ..detect import Detection, do_nms_sort
from .boxes import iou_matrix
from .dataset import ImageTruth, ground_truth, open_dataset

RECALL_THRESH = 0.001
RECALL_IOU = 0.5
RECALL_NMS = 0.4

_F32 = np.float32


@dataclass
class RecallImage:
    """One image's contribution: proposals, objects, objects found and each object's
    best IoU (float32); `error` when the image could not be run."""

    path: str
    proposals: int = 0
    objects: int = 0
    found: int = 0
    best: list = field(default_factory=list)
    error: str | None = None


@dataclass
class RecallResult:
    """Running totals as Darknet keeps them, and the per-image lines."""

    images: list[RecallImage] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    proposals: int = 0
    objects: int = 0
    found: int = 0
    iou_sum: np.float32 = _F32(0)

    @property
    def recall(self) -> float:
        return self.found / self.objects if self.objects else 0.0

    @property
    def avg_iou(self) -> float:
        return float(self.iou_sum) / self.objects if self.objects else 0.0

    @property
    def proposals_per_image(self) -> float:
        return self.proposals / len(self.images) if self.images else 0.0

    def add(self, image: RecallImage) -> str:
        """Fold in one image and return Darknet's line for it."""
        self.images.append(image)
        self.proposals += image.proposals
        self.objects += image.objects
        self.found += image.found
        for v in image.best:  # Darknet's running float sum, object by object
            self.iou_sum = _F32(self.iou_sum + v)
        line = recall_line(len(self.images) - 1, self.found, self.objects, self.proposals, self.iou_sum)
        self.lines.append(line)
        return line

    def summary(self) -> str:
        return (f"recall: {self.found} of {self.objects} objects found ({100 * self.recall:.2f}%), mean best IoU "
                f"{100 * self.avg_iou:.2f}%, {self.proposals_per_image:.2f} proposals per image, "
                f"{len(self.images)} images")

    def to_json(self) -> dict:
        return {"images": len(self.images), "failed": sum(i.error is not None for i in self.images),
                "objects": self.objects, "found": self.found, "recall": self.recall, "avg_iou": self.avg_iou,
                "proposals": self.proposals, "proposals_per_image": self.proposals_per_image,
                "per_image": [{"path": i.path, "proposals": i.proposals, "objects": i.objects, "found": i.found,
                               "best_iou": [float(v) for v in i.best], **({"error": i.error} if i.error else {})}
                              for i in self.images]}


def _c_float(value) -> str:
    """`%.2f` as glibc prints it, "-nan" for the x86 default NaN of 0/0."""
    return "-nan" if math.isnan(value) else "%.2f" % value


def recall_line(i: int, correct: int, total: int, proposals: int, avg_iou: np.float32) -> str:
    """`"%5d %5d %5d\\tRPs/Img: %.2f\\tIOU: %.2f%%\\tRecall:%.2f%%"`: proposals/(i+1)
    and avg_iou*100/total in float, 100.*correct/total in double."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rps = _F32(proposals) / _F32(i + 1)
        iou = (_F32(avg_iou) * _F32(100)) / _F32(total)
    rec = 100.0 * correct / total if total else math.nan
    return f"{i:5d} {correct:5d} {total:5d}\tRPs/Img: {_c_float(rps)}\tIOU: {_c_float(iou)}%\tRecall:{_c_float(rec)}%"


def nms_obj(dets: list[Detection], nms: float, ftz: bool = True) -> list[Detection]:
    """Darknet's `do_nms_obj`: the boxes left after suppression by objectness over all
    classes. It is `do_nms_sort` with one class whose probability is the objectness (the
    same swap loop, the same stable sort by that value, the same IoU test), so that is
    how it is computed."""
    proxies = [Detection(d.index, d.bbox, d.objectness, 1, {0: d.objectness} if d.objectness != 0 else {})
               for d in dets]
    by_index = {d.index: d for d in dets}
    do_nms_sort(proxies, 1, nms, ftz=ftz)
    return [by_index[p.index] for p in proxies if p.probs]


def image_recall(path: str, dets: list[Detection], truth: ImageTruth, ftz: bool = True) -> RecallImage:
    """One image: the proposals after `nms_obj`, each object's best IoU with them."""
    kept = nms_obj(dets, RECALL_NMS, ftz)
    proposals = [d for d in kept if d.objectness > _F32(RECALL_THRESH)]
    result = RecallImage(path, len(proposals), len(truth.boxes))
    if not truth.boxes:
        return result
    best = np.zeros(len(truth.boxes), np.float32)
    if proposals:
        m = iou_matrix([tuple(d.bbox) for d in proposals], [(b.x, b.y, b.w, b.h) for b in truth.boxes])
        best = np.maximum(np.where(np.isnan(m), _F32(0), m).max(axis=0), _F32(0))
    result.best = [_F32(v) for v in best]
    result.found = int(np.count_nonzero(best > _F32(RECALL_IOU)))
    return result


def prepare_resized(item, net_w: int, net_h: int, decoder: str = "stb") -> np.ndarray:
    """The network input `validate_detector_recall` makes: the image resized to the
    network size (a pool function for many.Prefetcher)."""
    from ..image import load_image_color, resize_image

    return resize_image(load_image_color(item.path, decoder), net_w, net_h)


def recall_images(net, images: Sequence[str], truths: Sequence[ImageTruth], *, loaders: int = 2,
                  decoder: str = "stb") -> Iterator[RecallImage]:
    """Each image's RecallImage, in order, decoding ahead on many.Prefetcher's pool."""
    from functools import partial

    from ..many import Item, Prefetcher
    from ..errors import DarknetError

    fn = partial(prepare_resized, net_w=net.width, net_h=net.height, decoder=decoder)
    items = (Item(i, path, os.path.basename(path)) for i, path in enumerate(images))
    with Prefetcher(fn, items, workers=loaders, ahead=max(2, loaders)) as pf:
        for item, x in pf:
            if isinstance(x, BaseException):
                yield RecallImage(item.path, objects=len(truths[item.index].boxes), error=str(x))
                continue
            try:
                out = net.forward(x)
                dets = net.detections(out, net.width, net.height, RECALL_THRESH, 0.5, 0, printed_only=False)
            except (DarknetError, MemoryError) as e:
                yield RecallImage(item.path, objects=len(truths[item.index].boxes), error=str(e))
                continue
            yield image_recall(item.path, dets, truths[item.index], net.numerics.ftz)


def recall(data: str, net, *, loaders: int = 2, decoder: str = "stb", progress=None, warn=sys.stderr,
           echo=None) -> RecallResult:
    """`detector recall` over the `.data` file's `valid=` list. `echo`: a stream that
    gets each line as its image completes (the CLI's stdout)."""
    dataset = open_dataset(data, "valid")
    net.require_detector()
    truths = ground_truth(dataset.images, None, warn)
    result = RecallResult()
    for image in recall_images(net, dataset.images, truths, loaders=loaders, decoder=decoder):
        if image.error is not None:
            line = f"darknetpy: error: {image.error}"
            if progress is not None:
                progress.write(line)
            elif warn is not None:
                print(line, file=warn)
        text = result.add(image)
        if echo is not None:
            if progress is not None and progress.enabled:
                progress.write(text, echo)
            else:
                print(text, file=echo, flush=True)
        if progress is not None:
            progress.update(failed=image.error is not None)
    return result
