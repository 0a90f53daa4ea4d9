"""Darknet's `box_iou` for many pairs at once, in float32, in Darknet's order of operations."""
from __future__ import annotations

import numpy as np


def _edges(xywh: np.ndarray):
    x, y, w, h = (np.asarray(xywh[:, i], np.float32) for i in range(4))
    two = np.float32(2.0)
    hw, hh = w / two, h / two
    return x - hw, x + hw, y - hh, y + hh, w * h


def iou_matrix(a, b) -> np.ndarray:
    """IoU of every box of `a` (n, 4: x, y, w, h) with every box of `b` (m, 4), float32
    (n, m). Each value is `detect.box_iou(a[i], b[j], ftz=False)` bit for bit: the edges
    x -/+ w/2, the overlaps (max of the left edges, min of the right ones, `a` on the left
    of each comparison as in box.c), 0 when either overlap is negative, and
    inter / ((area_a + area_b) - inter). Subnormal values are not flushed; a box that
    small has an IoU of about 0 either way."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    l1, r1, t1, b1, area1 = (v[:, None] for v in _edges(a))
    l2, r2, t2, b2, area2 = (v[None, :] for v in _edges(b))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ow = np.where(r1 < r2, r1, r2) - np.where(l1 > l2, l1, l2)
        oh = np.where(b1 < b2, b1, b2) - np.where(t1 > t2, t1, t2)
        inter = np.where((ow < 0) | (oh < 0), np.float32(0.0), ow * oh)
        union = (area1 + area2) - inter
        return (inter / union).astype(np.float32, copy=False)
