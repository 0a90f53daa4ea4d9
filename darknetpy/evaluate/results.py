"""`detector valid`: the results files of Darknet's `validate_detector`.

With the `.data` file's `eval=coco`, one JSON array `<results>/<out>.json` (default
`coco_results`) of `{"image_id", "category_id", "bbox": [x, y, w, h], "score"}` in pixels,
as `print_cocos` writes it; otherwise (`eval=voc`, the default) one file per class,
`<results>/<out><name>.txt` (default `comp4_det_test_`), lines `id prob xmin ymin xmax
ymax` with 1-based pixel corners, as `print_detector_detections` writes them. The image
id is the file name up to its first dot (Darknet's `basecfg`); the COCO image id is the
number after the path's last `_` (or `/`), as Darknet's `get_coco_image_id` reads it.

The numbers are Darknet's: the pixel box is the relative box times the image size in
float32 (`correct_region_boxes` with relative=0), the corners are computed in double and
stored in float, and printed with `%f`. The files are written to temporary files and
renamed when every image has run, so `results/` never holds a half-written file.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..errors import DarknetError, DataError
from ..fileio import atomic_write
from .dataset import ImageDetections, ScoredBox

# examples/detector.c coco_ids: class j of an 80-class COCO network is category coco_ids[j].
COCO_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
            33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
            60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)

_F32 = np.float32


def basecfg(path: str) -> str:
    """Darknet's `basecfg`: the file name after the last `/`, cut at its first `.`."""
    return path.rsplit("/", 1)[-1].split(".", 1)[0]


def coco_image_id(path: str) -> int:
    """Darknet's `get_coco_image_id`: `atoi` of what follows the last `_` in the path,
    else the last `/` (COCO_val2014_000000000139.jpg -> 139; no number -> 0)."""
    cut = path.rfind("_")
    if cut < 0:
        cut = path.rfind("/")
    text = path[cut + 1:].lstrip(" \t\n\v\f\r")
    sign = -1 if text.startswith("-") else 1
    if text[:1] in ("+", "-"):
        text = text[1:]
    digits = ""
    for ch in text:
        if not "0" <= ch <= "9":
            break
        digits += ch
    return sign * int(digits) if digits else 0


def pixel_box(b: ScoredBox, width: int, height: int) -> tuple[np.float32, np.float32, np.float32, np.float32]:
    """The box in pixels as `correct_region_boxes(..., relative=0)` leaves it: each
    relative value times the image size, one float32 product."""
    fw, fh = _F32(width), _F32(height)
    return _F32(b.x) * fw, _F32(b.y) * fh, _F32(b.w) * fw, _F32(b.h) * fh


def voc_corners(b: ScoredBox, width: int, height: int) -> tuple[float, float, float, float]:
    """`print_detector_detections`' xmin, ymin, xmax, ymax: x -/+ w/2. + 1 in double,
    stored in float, clamped to 1 and to the image size."""
    x, y, w, h = (float(v) for v in pixel_box(b, width, height))
    xmin = _F32(x - w / 2.0 + 1)
    xmax = _F32(x + w / 2.0 + 1)
    ymin = _F32(y - h / 2.0 + 1)
    ymax = _F32(y + h / 2.0 + 1)
    xmin = xmin if not xmin < 1 else _F32(1)
    ymin = ymin if not ymin < 1 else _F32(1)
    xmax = xmax if not xmax > width else _F32(width)
    ymax = ymax if not ymax > height else _F32(height)
    return float(xmin), float(ymin), float(xmax), float(ymax)


def coco_bbox(b: ScoredBox, width: int, height: int) -> tuple[float, float, float, float]:
    """`print_cocos`' [x, y, width, height]: corners x -/+ w/2. in double, stored in
    float, clamped to 0 and to the image size; width and height float differences."""
    x, y, w, h = (float(v) for v in pixel_box(b, width, height))
    xmin = _F32(x - w / 2.0)
    xmax = _F32(x + w / 2.0)
    ymin = _F32(y - h / 2.0)
    ymax = _F32(y + h / 2.0)
    xmin = xmin if not xmin < 0 else _F32(0)
    ymin = ymin if not ymin < 0 else _F32(0)
    xmax = xmax if not xmax > width else _F32(width)
    ymax = ymax if not ymax > height else _F32(height)
    return float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)


def voc_line(image_id: str, b: ScoredBox, width: int, height: int) -> str:
    return "%s %f %f %f %f %f\n" % ((image_id, float(b.prob)) + voc_corners(b, width, height))


def coco_line(image_id: int, category_id: int, b: ScoredBox, width: int, height: int) -> str:
    return ('{"image_id":%d, "category_id":%d, "bbox":[%f, %f, %f, %f], "score":%f}'
            % ((image_id, category_id) + coco_bbox(b, width, height) + (float(b.prob),)))


class Spool:
    """Text gathered in a temporary file (memory first, disk when large), then written
    to its final name atomically by `commit`."""

    def __init__(self, path: str):
        self.path = path
        self.f = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")

    def write(self, text: str) -> None:
        self.f.write(text.encode())

    def commit(self) -> None:
        self.f.seek(0)

        def copy(out):
            while True:
                block = self.f.read(1 << 20)
                if not block:
                    return
                out.write(block)

        atomic_write(self.path, copy)

    def close(self) -> None:
        self.f.close()


@dataclass
class ValidResult:
    """What `valid` wrote: the files, how many images ran, failed, and detections were written."""

    files: list[str]
    images: int = 0
    failed: int = 0
    detections: int = 0
    errors: list[str] = field(default_factory=list)


def results_folder(path: str) -> None:
    """Darknet writes into `results=` and crashes when the folder is missing; here it is
    created."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise DataError(f"{path}: the results= folder exists and is not a folder") from None
    except OSError as e:
        raise DataError(f"{path}: cannot create the results= folder: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(f"{path}: the results= folder is not writable")


def write_results(detections: Iterable[ImageDetections], names: Sequence[str], classes: int, *,
                  folder: str = "results", kind: str = "voc", out: str | None = None) -> ValidResult:
    """Write `validate_detector`'s files for the images' detections (see the module).
    `kind`: the `.data` file's `eval=` (`voc` or `coco`); `out`: Darknet's `-out`."""
    if kind not in ("voc", "coco"):
        raise DataError(f"eval={kind}: darknetpy writes eval=voc (the default) or eval=coco results")
    if kind == "coco" and classes > len(COCO_IDS):
        raise DataError(f"eval=coco maps classes to COCO's {len(COCO_IDS)} category ids; the network has "
                        f"{classes} classes")
    if kind == "voc" and len(names) < classes:
        raise DataError(f"the names file has {len(names)} names for {classes} classes")
    results_folder(folder)
    if kind == "coco":
        spools = [Spool(os.path.join(folder, f"{out or 'coco_results'}.json"))]
    else:
        spools = [Spool(os.path.join(folder, f"{out or 'comp4_det_test_'}{names[j]}.txt")) for j in range(classes)]
    result = ValidResult([s.path for s in spools])
    try:
        if kind == "coco":
            spools[0].write("[\n")
        for image in detections:
            result.images += 1
            if image.error is not None:
                result.failed += 1
                result.errors.append(image.error)
                continue
            _write_image(spools, kind, image, result)
        if kind == "coco":
            spools[0].write("\n]\n" if result.detections else "]\n")
        for s in spools:
            s.commit()
    finally:
        for s in spools:
            s.close()
    return result


def _write_image(spools: list[Spool], kind: str, image: ImageDetections, result: ValidResult) -> None:
    if kind == "coco":
        image_id = coco_image_id(image.path)
        for b in image.boxes:
            sep = ",\n" if result.detections else ""
            spools[0].write(sep + coco_line(image_id, COCO_IDS[b.class_id], b, image.width, image.height))
            result.detections += 1
        return
    image_id = basecfg(image.path)
    for b in image.boxes:
        spools[b.class_id].write(voc_line(image_id, b, image.width, image.height))
        result.detections += 1


def valid(data: str, net, *, out: str | None = None, batch: int = 1, loaders: int = 2, decoder: str = "stb",
          progress=None, warn=sys.stderr) -> ValidResult:
    """`./darknet detector valid DATA CFG WEIGHTS`: run every image of the `.data`
    file's `valid=` list (thresh .005, hier .5, nms .45, its `map=` for a tree network)
    and write the results files into its `results=` folder (see the module)."""
    from .dataset import open_dataset
    from .run import detect_dataset, eval_classes

    dataset = open_dataset(data, "valid")
    class_map = dataset.class_map()
    classes = eval_classes(net, class_map)
    names = dataset.names() if dataset.eval_kind != "coco" else []
    detections = detect_dataset(net, dataset.images, map=class_map, batch=batch, loaders=loaders, decoder=decoder,
                                progress=progress, warn=warn)
    return write_results(detections, names, classes, folder=dataset.results, kind=dataset.eval_kind, out=out)


def read_voc_results(path: str) -> list[tuple[str, float, float, float, float, float]]:
    """A `comp4_det_test_<class>.txt` file: (image id, prob, xmin, ymin, xmax, ymax) per line."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 6:
                    raise DataError(f"{path}:{lineno}: expected 'id prob xmin ymin xmax ymax'")
                rows.append((fields[0],) + tuple(float(v) for v in fields[1:]))
    except OSError as e:
        raise DarknetError(f"{path}: cannot read: {e.strerror}") from None
    except ValueError:
        raise DataError(f"{path}: not a results file of numbers") from None
    return rows


def read_coco_results(path: str) -> list[dict]:
    """A `coco_results.json` file: its list of detections."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise DarknetError(f"{path}: cannot read: {e.strerror}") from None
    except ValueError as e:
        raise DataError(f"{path}: not JSON: {e}") from None
