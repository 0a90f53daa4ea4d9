"""`load_data_augment` (the classifier's random crop, rotation, aspect, flip and
distortion) and `load_data_old` (resize only), bit for bit with the data kit."""
from __future__ import annotations

import numpy as np

from ..image import resize_image
from .augment import flip_image, rotate_crop_image
from .detection import random_distort
from .images import ImageSource
from .labels import fill_hierarchy, fill_truth
from .rand import GlibcRand, rand_int, rand_scale, rand_uniform, random_paths

_F32 = np.float32
TWO_PI = _F32(6.2831853071795864769252866)


def random_augment_args(rng: GlibcRand, ow: int, oh: int, angle, aspect, low: int, high: int, size: int,
                        stock: bool) -> tuple:
    """`random_augment_args`: 6 rand() -> (rad, scale, dx, dy, aspect)."""
    aspect = rand_scale(rng, aspect)
    r = rand_int(rng, low, high)
    wa = _F32(_F32(ow) * aspect)
    mn = int(_F32(oh) if _F32(oh) < wa else wa)
    scale = _F32(_F32(r) / _F32(mn))
    turn = float(_F32(rand_uniform(rng, -_F32(angle), _F32(angle)) * TWO_PI))
    rad = _F32(turn * (1.0 / 360) if stock else turn / 360.)
    dx = _F32(_F32(_F32(_F32(_F32(ow) * scale) / aspect) - _F32(size)) / _F32(2))
    dy = _F32(_F32(_F32(_F32(oh) * scale) - _F32(size)) / _F32(2))
    dx = rand_uniform(rng, -dx, dx)
    dy = rand_uniform(rng, -dy, dy)
    return rad, scale, dx, dy, aspect


def load_data_augment(rng: GlibcRand, paths: list[str], n: int, labels: list[str], low: int, high: int,
                      size: int, angle, aspect, hue, saturation, exposure, stock: bool = True,
                      images: ImageSource | None = None, warn=None, picked: list[str] | None = None,
                      hierarchy=None):
    """`load_data_augment` with center=0: X (n, 3, size, size), y (n, k) (with a tree:
    `fill_hierarchy` applied to each row), the paths drawn (n rand() unless `picked`)."""
    if picked is None:
        picked = random_paths(rng, paths, n)
    images = images or ImageSource(paths, warn)
    X = np.empty((len(picked), 3, size, size), np.float32)
    used = []
    for i, path in enumerate(picked):
        path, im = images.load(path)
        used.append(path)
        rad, scale, dx, dy, asp = random_augment_args(rng, im.shape[2], im.shape[1], angle, aspect, low, high,
                                                      size, stock)
        crop = rotate_crop_image(im, rad, scale, size, size, dx, dy, asp, stock)
        if rng.rand() % 2:
            flip_image(crop)
        random_distort(rng, crop, hue, saturation, exposure, stock)
        X[i] = crop
    y = np.stack([fill_truth(p, labels, warn) for p in used]) if used else np.zeros((0, len(labels)), np.float32)
    if hierarchy is not None:
        for row in y:
            fill_hierarchy(row, hierarchy)
    return X, y, picked


def load_data_old(rng: GlibcRand, paths: list[str], n: int, labels: list[str], w: int, h: int,
                  images: ImageSource | None = None, warn=None, picked: list[str] | None = None):
    """`load_data_old`: paths drawn, each image resized to w x h, no further rand()."""
    if picked is None:
        picked = random_paths(rng, paths, n)
    images = images or ImageSource(paths, warn)
    X = np.empty((len(picked), 3, h, w), np.float32)
    used = []
    for i, path in enumerate(picked):
        path, im = images.load(path)
        used.append(path)
        X[i] = im if im.shape[1:] == (h, w) else resize_image(im, w, h)
    y = np.stack([fill_truth(p, labels, warn) for p in used]) if used else np.zeros((0, len(labels)), np.float32)
    return X, y, picked
