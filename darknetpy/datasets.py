"""A synthetic detection dataset in Darknet's format, to check that training learns.

Coloured shapes (circle, square, triangle, cross: the class is the shape, never the
colour) of several sizes on textured backgrounds (smooth colour fields, stripes, noise),
one to four per image, written as Darknet reads a dataset:

    ROOT/images/train/000000.png    ROOT/labels/train/000000.txt   (Darknet's images -> labels rule)
    ROOT/train.txt, ROOT/valid.txt  (absolute image paths, one a line)
    ROOT/shapes.names, ROOT/shapes.data (classes, train, valid, names, backup=ROOT/backup)

Everything is drawn from one numpy generator seeded with `seed`, so a dataset is the same
on every machine with the same numpy and OpenCV. `python -m darknetpy.datasets ROOT`
writes one from the command line.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross")


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured HxWx3 uint8 background: a smooth colour field, stripes, pixel noise."""
    import cv2

    coarse = rng.uniform(40, 215, (4, 4, 3)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(4, 16)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    field += stripes[..., None] * rng.uniform(0, 25, 3).astype(np.float32)
    field += rng.normal(0, rng.uniform(2, 12), (size, size, 3)).astype(np.float32)
    return np.clip(field, 0, 255).astype(np.uint8)


def iou(a, b) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def draw_shape(im: np.ndarray, shape: int, box, color) -> None:
    """Fill `shape` inside the pixel box (x0, y0, x1, y1) on `im` (BGR)."""
    import cv2

    x0, y0, x1, y1 = box
    color = tuple(int(c) for c in color)
    if SHAPES[shape] == "circle":
        center = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
        cv2.ellipse(im, center, (int(round((x1 - x0) / 2)), int(round((y1 - y0) / 2))), 0, 0, 360, color, -1,
                    cv2.LINE_AA)
    elif SHAPES[shape] == "square":
        cv2.rectangle(im, (int(round(x0)), int(round(y0))), (int(round(x1)) - 1, int(round(y1)) - 1), color, -1)
    elif SHAPES[shape] == "triangle":
        pts = np.array([[(x0 + x1) / 2, y0], [x1, y1], [x0, y1]], np.float32)
        cv2.fillPoly(im, [np.round(pts * 16).astype(np.int32)], color, cv2.LINE_AA, 4)
    else:
        t = max((x1 - x0) / 3.5, 1)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        cv2.rectangle(im, (int(round(x0)), int(round(cy - t / 2))), (int(round(x1)) - 1, int(round(cy + t / 2))),
                      color, -1)
        cv2.rectangle(im, (int(round(cx - t / 2)), int(round(y0))), (int(round(cx + t / 2)), int(round(y1)) - 1),
                      color, -1)


def contrasting(rng: np.random.Generator, im: np.ndarray, box) -> np.ndarray:
    """A colour at least 90 away (L1) from the background's mean colour under the box."""
    x0, y0, x1, y1 = (int(v) for v in box)
    mean = im[max(y0, 0):max(y1, 1), max(x0, 0):max(x1, 1)].reshape(-1, 3).mean(axis=0)
    for _ in range(50):
        color = rng.integers(0, 256, 3)
        if np.abs(color - mean).sum() >= 90:
            return color
    return 255 - mean.astype(np.int64)


def make_image(rng: np.random.Generator, size: int, max_objects: int, min_frac: float, max_frac: float):
    """One image (HxWx3 BGR uint8) and its Darknet label lines."""
    im = background(rng, size)
    boxes, lines = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            w = rng.uniform(min_frac, max_frac) * size
            h = w * rng.uniform(0.75, 1.33)
            h = min(h, max_frac * size)
            x0 = rng.uniform(0, size - w)
            y0 = rng.uniform(0, size - h)
            box = (x0, y0, x0 + w, y0 + h)
            if all(iou(box, b) < 0.05 for b in boxes):
                break
        else:
            continue
        shape = int(rng.integers(len(SHAPES)))
        draw_shape(im, shape, box, contrasting(rng, im, box))
        boxes.append(box)
        lines.append(f"{shape} {(box[0] + box[2]) / 2 / size:.6f} {(box[1] + box[3]) / 2 / size:.6f} "
                     f"{w / size:.6f} {h / size:.6f}")
    return im, lines


def make_detection_dataset(root: str, train: int = 2000, valid: int = 200, size: int = 64, seed: int = 0,
                           max_objects: int = 3, min_frac: float = 0.18, max_frac: float = 0.45) -> str:
    """Write the dataset under `root`; returns the path of its .data file."""
    import cv2

    rng = np.random.default_rng(seed)
    root = os.path.abspath(root)
    for split, count in (("train", train), ("valid", valid)):
        images = os.path.join(root, "images", split)
        labels = os.path.join(root, "labels", split)
        os.makedirs(images, exist_ok=True)
        os.makedirs(labels, exist_ok=True)
        paths = []
        for i in range(count):
            im, lines = make_image(rng, size, max_objects, min_frac, max_frac)
            path = os.path.join(images, f"{i:06d}.png")
            cv2.imwrite(path, im)
            with open(os.path.join(labels, f"{i:06d}.txt"), "w") as f:
                f.write("".join(line + "\n" for line in lines))
            paths.append(path)
        with open(os.path.join(root, f"{split}.txt"), "w") as f:
            f.write("".join(p + "\n" for p in paths))
    with open(os.path.join(root, "shapes.names"), "w") as f:
        f.write("".join(name + "\n" for name in SHAPES))
    os.makedirs(os.path.join(root, "backup"), exist_ok=True)
    data = os.path.join(root, "shapes.data")
    with open(data, "w") as f:
        f.write(f"classes={len(SHAPES)}\ntrain={root}/train.txt\nvalid={root}/valid.txt\n"
                f"names={root}/shapes.names\nbackup={root}/backup\n")
    return data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m darknetpy.datasets", description=__doc__.split("\n")[0])
    p.add_argument("root", metavar="ROOT")
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--valid", type=int, default=200)
    p.add_argument("--size", type=int, default=64, help="image width and height (64)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    data = make_detection_dataset(args.root, args.train, args.valid, args.size, args.seed)
    print(f"darknetpy: {args.train} + {args.valid} images, {data}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
