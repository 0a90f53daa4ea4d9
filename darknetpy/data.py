"""Darknet's small text files: `.data` (key=value), label lists (`.names`), image lists
(`train=`, `valid=`) and the label files found beside the images."""
from __future__ import annotations

import os
import sys
from typing import NamedTuple

import numpy as np

from .errors import DataError

# Names files that plain `darknetpy detect` picks by the network's class count.
NAMES_BY_CLASSES = {80: ("data/coco.names", "COCO"), 20: ("data/voc.names", "VOC"),
                    9418: ("data/9k.names", "YOLO9000 (9k)"), 1000: ("data/imagenet.shortnames.list", "ImageNet")}


def _read_text(path: str, what: str) -> str:
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a {what}")
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"{path}: cannot read {what}: {e.strerror}") from None


def read_data_cfg(path: str, warn=sys.stderr) -> dict[str, str]:
    """Darknet's `read_data_cfg`: spaces and tabs removed, `#`/`;` comments, first key wins."""
    options: dict[str, str] = {}
    for lineno, raw in enumerate(_read_text(path, ".data file").split("\n"), 1):
        line = raw.translate(str.maketrans("", "", " \t\r"))
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        if not eq or not key or not value:
            if warn is not None:
                print(f"{path}:{lineno}: Config file error, could not parse: {raw.strip()}", file=warn)
            continue
        options.setdefault(key, value)
    return options


def get_labels(path: str) -> list[str]:
    """One label per line (Darknet's `get_labels`); a trailing carriage return is dropped."""
    text = _read_text(path, "names file")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def find_file(path: str, base_files: list[str]) -> str | None:
    """`path` from the working directory, else beside or one folder above each base file."""
    if os.path.isfile(path):
        return path
    if os.path.isabs(path):
        return None
    for base in base_files:
        folder = os.path.dirname(os.path.abspath(base))
        for root in (folder, os.path.dirname(folder)):
            candidate = os.path.join(root, path)
            if os.path.isfile(candidate):
                return candidate
    return None


def resolve(path: str, base_files: list[str], what: str) -> str:
    found = find_file(path, base_files)
    if found is None:
        raise DataError(f"{path}: {what} not found (looked in the working directory and beside "
                        f"{', '.join(base_files)})")
    return found


# ---------------------------------------------------------------------------
# Image lists and label files (Darknet's dataset format)
# ---------------------------------------------------------------------------

def list_entries(path: str) -> list[tuple[int, str]]:
    """A list file (`train=`, `valid=`): (line number, path) per non-blank line.

    Darknet's `get_paths` removes only the trailing newline, so a list saved with
    Windows line endings keeps a carriage return in every path and no image opens;
    here the `\\r` is removed too, and blank lines are skipped."""
    entries = []
    for lineno, line in enumerate(_read_text(path, "list file").split("\n"), 1):
        line = line.rstrip("\r")
        if line.strip():
            entries.append((lineno, line))
    return entries


def get_paths(path: str) -> list[str]:
    """The paths of a list file (see `list_entries`)."""
    return [p for _, p in list_entries(path)]


def data_list(data_path: str, key: str, options: dict[str, str] | None = None) -> str:
    """The list file that a `.data` file names under `key` (`train`, `valid`), found as
    `resolve` finds files. Darknet falls back to data/train.list silently; a `.data`
    file without the key is an error here."""
    if options is None:
        options = read_data_cfg(data_path)
    value = options.get(key)
    if not value:
        what = {"train": "training", "valid": "validation"}.get(key, key)
        raise DataError(f"{data_path}: no {key}= line (the list of {what} images)")
    return resolve(value, [data_path], f"{key}= list")


_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})

# Darknet's fill_truth_detection: each find_replace rewrites the FIRST occurrence only,
# anywhere in the path, in this order.
LABEL_PATH_RULES = (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"), (".jpg", ".txt"),
                    (".png", ".txt"), (".JPG", ".txt"), (".JPEG", ".txt"))


def label_path(image_path: str) -> str:
    """Darknet's label file for an image (src/data.c `fill_truth_detection`): the first
    `images` becomes `labels`, then the first `JPEGImages`, the first `raw` (even inside
    a longer name), then the first `.jpg`, `.png`, `.JPG`, `.JPEG` becomes `.txt`. Other
    extensions (`.jpeg`, `.bmp`) are left as they are, as in Darknet."""
    path = image_path
    for old, new in LABEL_PATH_RULES:
        path = path.replace(old, new, 1)
    return path


def find_label_file(image_path: str) -> str:
    """`label_path`, and where Darknet's rules leave an image extension in place
    (`.jpeg`, `.bmp`, `.tif`, ...), that extension replaced by `.txt` (as AlexeyAB's
    fork does), so that such an image is not read as its own label file."""
    path = label_path(image_path)
    stem, ext = os.path.splitext(path)
    if ext.lower() != ".txt" and ext.lower() in _IMAGE_EXTENSIONS:
        return stem + ".txt"
    return path


class TruthBox(NamedTuple):
    """One line of a label file: class id and the box's centre x, y and width, height,
    relative to the image (float32, as Darknet's `read_boxes` keeps them)."""

    id: int
    x: np.float32
    y: np.float32
    w: np.float32
    h: np.float32


def read_boxes(path: str, classes: int | None = None) -> list[TruthBox]:
    """A label file: `class x y width height` per line, blank lines skipped.

    Darknet's `read_boxes` stops silently at the first line that does not parse (and
    reads a line with extra fields as the start of the next box); here such a line is a
    DataError naming the file and line, as is a class outside 0..classes-1 or a value
    that is not finite. A missing file raises FileNotFoundError (callers decide whether
    that means no objects)."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DataError(f"{path}: cannot read label file: {e.strerror}") from None
    boxes = []
    for lineno, line in enumerate(text.split("\n"), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        if len(fields) != 5:
            raise DataError(f"{where}: a label line is 'class x y width height', found {line.strip()[:60]!r}")
        try:
            k = int(fields[0])
            x, y, w, h = (np.float32(float(v)) for v in fields[1:])
        except ValueError:
            raise DataError(f"{where}: a label line is 'class x y width height' (an integer and four numbers), "
                            f"found {line.strip()[:60]!r}") from None
        if not all(np.isfinite(v) for v in (x, y, w, h)):
            raise DataError(f"{where}: box values must be finite numbers, found {line.strip()[:60]!r}")
        if k < 0 or (classes is not None and k >= classes):
            limit = f"0..{classes - 1}" if classes is not None else "0 or more"
            raise DataError(f"{where}: class {k} is outside {limit}")
        boxes.append(TruthBox(k, x, y, w, h))
    return boxes


# ---------------------------------------------------------------------------
# Training keys of a .data file (detector train / classifier train)
# ---------------------------------------------------------------------------

class TrainingData(NamedTuple):
    """What `train_detector` / `train_classifier` read from a `.data` file. `train` is
    the resolved list file (required here; Darknet silently falls back to
    data/train.list); `backup` defaults to Darknet's `/backup/`."""

    train: str
    backup: str
    labels: str | None
    names: str | None
    classes: int | None
    valid: str | None
    top: int | None
    tree: str | None
    map: str | None
    options: dict


def training_data(path: str, warn=sys.stderr) -> TrainingData:
    """The training keys of a `.data` file: `train=` (one clear error if absent), `backup=`,
    `labels=`, `names=`, `classes=`, `valid=`, `top=`, `tree=`, `map=`."""
    options = read_data_cfg(path, warn)
    train = data_list(path, "train", options)

    def number(key: str) -> int | None:
        value = options.get(key)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise DataError(f"{path}: {key}={value} is not a whole number") from None

    return TrainingData(train=train, backup=options.get("backup", "/backup/"), labels=options.get("labels"),
                        names=options.get("names"), classes=number("classes"), valid=options.get("valid"),
                        top=number("top"), tree=options.get("tree"), map=options.get("map"), options=options)
