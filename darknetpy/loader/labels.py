"""Darknet's truth: label files read as `fscanf("%d %f %f %f %f")` does (read_boxes),
classification labels matched by substring of the path (fill_truth), with the issue's
warnings where Darknet is silent or exits."""
from __future__ import annotations

import re
import sys

import numpy as np

from ..data import label_path

_INT = re.compile(rb"\s*([+-]?\d+)")
_FLOAT = re.compile(rb"\s*([+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf(?:inity)?|nan))", re.I)


def emit(warn, message: str) -> None:
    """Send one warning line to `warn` (a callable, a stream, or None for stderr)."""
    if warn is None:
        print(message, file=sys.stderr)
    elif callable(warn):
        warn(message)
    else:
        print(message, file=warn)


def scan_boxes(data: bytes) -> tuple[list[tuple], int | None]:
    """`read_boxes`' fscanf loop over the file's bytes: (id, x, y, w, h) tuples (floats
    as float32) until a field does not parse, and the byte offset where it stopped
    early (None when it reached the end of the file)."""
    boxes = []
    pos = 0
    while True:
        m = _INT.match(data, pos)
        if m is None:
            return boxes, (None if not data[pos:].strip() else pos)
        fields = [int(m.group(1))]
        end = m.end()
        for _ in range(4):
            f = _FLOAT.match(data, end)
            if f is None:
                return boxes, (None if not data[end:].strip() else end)
            fields.append(np.float32(float(f.group(1))))
            end = f.end()
        boxes.append(tuple(fields))
        pos = end


def read_truth_boxes(path: str, warn=None, warned: set | None = None) -> np.ndarray:
    """The boxes of a label file as float32 rows (id, x, y, w, h), as Darknet reads them.

    A missing file warns once and has no boxes (Darknet exits with status 0). A line
    that is not `class x y width height` warns with file and line; the values are still
    what Darknet reads (it stops at the first field that does not parse and reads extra
    fields as the start of the next box)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        if warned is None or path not in warned:
            emit(warn, f"{path}: cannot open label file ({e.strerror}); the image trains as having no objects")
            if warned is not None:
                warned.add(path)
        return np.zeros((0, 5), np.float32)
    boxes, stop = scan_boxes(data)
    if warned is None or path not in warned:
        bad = [n for n, line in enumerate(data.split(b"\n"), 1) if line.split() and len(line.split()) != 5]
        if stop is not None:
            stop += len(data[stop:]) - len(data[stop:].lstrip())
            stop_line = data.count(b"\n", 0, stop) + 1
            emit(warn, f"{path}:{stop_line}: a label line is 'class x y width height'; "
                       f"Darknet stops reading the file here ({len(boxes)} boxes kept)")
        elif bad:
            emit(warn, f"{path}:{bad[0]}: a label line is 'class x y width height'; "
                       f"its extra or missing fields shift the following boxes as in Darknet")
        if warned is not None and (stop is not None or bad):
            warned.add(path)
    out = np.zeros((len(boxes), 5), np.float32)
    for i, b in enumerate(boxes):
        out[i] = b
    return out


def detection_label_file(image_path: str) -> str:
    """Darknet's label path for an image (the first match of each rule, in order)."""
    return label_path(image_path)


def fill_truth(path: str, labels: list[str], warn=None) -> np.ndarray:
    """`fill_truth`: 1 for every label that is a substring of the whole path; Darknet's
    stdout line when the number of matches is not 1 (0 is fine with one label)."""
    row = np.zeros(len(labels), np.float32)
    count = 0
    for j, name in enumerate(labels):
        if name in path:
            row[j] = 1
            count += 1
    if count != 1 and (len(labels) != 1 or count != 0):
        emit(warn, f"Too many or too few labels: {count}, {path}")
    return row


SECRET_NUM = -1234


def fill_hierarchy(row: np.ndarray, tree) -> None:
    """`fill_hierarchy`: every positive's ancestors set to 1, then each group of the tree
    with no positive marked SECRET_NUM (-1234: the softmax-tree loss skips it)."""
    for j in range(min(len(row), tree.n)):
        if row[j]:
            parent = int(tree.parent[j])
            while parent >= 0:
                row[parent] = 1
                parent = int(tree.parent[parent])
    count = 0
    for size in tree.group_size:
        size = int(size)
        if not row[count:count + size].any():
            row[count:count + size] = SECRET_NUM
        count += size
