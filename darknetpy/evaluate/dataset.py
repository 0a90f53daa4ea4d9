"""What evaluation reads: a `.data` file's image list, names, class map and the ground
truth in the label files beside the images (Darknet's path rules, darknetpy/data.py)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

from ..data import TruthBox, data_list, find_file, find_label_file, get_labels, list_entries, names_path, \
    read_boxes, read_data_cfg, resolve
from ..errors import DataError


@dataclass
class Dataset:
    """The images of one list of a `.data` file (`valid=` or `train=`), and what the
    evaluation needs from the same file: the class names, the class map (`map=`, for a
    tree network), Darknet's `results=` folder and `eval=` kind."""

    data_path: str
    list_path: str
    images: list[str]
    options: dict[str, str] = field(default_factory=dict)

    @property
    def results(self) -> str:
        return self.options.get("results", "results")

    @property
    def eval_kind(self) -> str:
        """`eval=`: coco (one JSON file) or voc (a text file per class), as Darknet reads it."""
        return self.options.get("eval", "voc")

    def names(self) -> list[str]:
        """`names=` (Darknet's default data/names.list where it exists; see data.names_path)."""
        return get_labels(names_path(self.data_path, "detector", self.options))

    def class_map(self) -> list[int] | None:
        """`map=`: the tree classes that the output classes stand for (coco9k.map)."""
        from ..layers.paths import read_map

        if not self.options.get("map"):
            return None
        return read_map(resolve(self.options["map"], [self.data_path], "map file"))


def open_dataset(data_path: str, key: str = "valid", images_must_exist: bool = True) -> Dataset:
    """The `.data` file's `key=` list. A relative image path is taken from the working
    directory (as Darknet takes it), else beside the list file or one folder above it.
    With `images_must_exist`, an image found nowhere is a DataError naming the list's
    line, before any network runs."""
    options = read_data_cfg(data_path)
    list_path = data_list(data_path, key, options)
    images = []
    for lineno, path in list_entries(list_path):
        found = find_file(path, [list_path])
        if found is None:
            if images_must_exist:
                raise DataError(f"{list_path}:{lineno}: image {path} not found")
            found = path
        images.append(found)
    if not images:
        raise DataError(f"{list_path}: the {key}= list names no images")
    return Dataset(data_path, list_path, images, options)


@dataclass
class ImageTruth:
    """The objects of one image, from its label file; `missing`: there was no label file
    (the image counts as having no objects). `difficult`: boxes that a detection may
    hit without being a false positive (the `.data` file's `difficult=` list)."""

    path: str
    label_path: str
    boxes: list[TruthBox]
    missing: bool = False
    difficult: list[TruthBox] = field(default_factory=list)


def ground_truth(images: Sequence[str], classes: int | None = None, warn=sys.stderr) -> list[ImageTruth]:
    """The label file of every image (`data.find_label_file`). A missing label file
    counts as an image without objects (as AlexeyAB's `detector map` does), with one
    warning for all of them; a malformed one is a DataError naming its line."""
    truths = []
    for path in images:
        label = find_label_file(path)
        try:
            truths.append(ImageTruth(path, label, read_boxes(label, classes)))
        except FileNotFoundError:
            truths.append(ImageTruth(path, label, [], missing=True))
    missing = [t.label_path for t in truths if t.missing]
    if missing and warn is not None:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        print(f"darknetpy: warning: no label file {missing[0]}{more}: "
              f"{'those images count' if more else 'the image counts'} as having no objects", file=warn)
    return truths


class ScoredBox(NamedTuple):
    """One class of one detection: class id, probability, and the box (centre x, y,
    width, height relative to the image, float32) as Darknet's detection holds it."""

    class_id: int
    prob: np.float32
    x: np.float32
    y: np.float32
    w: np.float32
    h: np.float32


@dataclass
class ImageDetections:
    """A network's detections on one image of a dataset. `error`: why the image could not
    be run (then `boxes` is empty and the image's objects count as missed)."""

    path: str
    width: int | None
    height: int | None
    boxes: list[ScoredBox]
    error: str | None = None
    dets: list = field(default_factory=list, repr=False)


def scored_boxes(dets) -> list[ScoredBox]:
    """Darknet's detections as (class, probability, box) entries: one per nonzero class
    probability of each detection, in list order and ascending class, as
    `print_detector_detections` visits them."""
    out = []
    for d in dets:
        x, y, w, h = (np.float32(v) for v in d.bbox)
        for k in sorted(d.probs):
            p = d.probs[k]
            if p != 0:
                out.append(ScoredBox(int(k), np.float32(p), x, y, w, h))
    return out


def add_difficult(dataset: Dataset, truths: list[ImageTruth], classes: int | None, warn=sys.stderr) -> None:
    """AlexeyAB's `difficult=`: a list of images parallel to `valid=` whose label files
    hold the objects marked difficult (PASCAL VOC); a detection that matches no object
    of the image but one of these is neither a true nor a false positive."""
    if not dataset.options.get("difficult"):
        return
    list_path = data_list(dataset.data_path, "difficult", dataset.options)
    paths = [find_file(p, [list_path]) or p for _, p in list_entries(list_path)]
    if len(paths) != len(truths):
        raise DataError(f"{list_path}: the difficult= list names {len(paths)} images, the valid= list {len(truths)}")
    for truth, other in zip(truths, ground_truth(paths, classes, warn)):
        truth.difficult = other.boxes
