"""Darknet's detection post-processing, bit for bit.

From the float32 output of a `[region]` or `[yolo]` layer to the detections that
`test_detector` prints, and the classifier's top-k lines:

* `get_region_detections`: boxes, objectness and class probabilities for every
  anchor of every cell (Darknet's detection array, `dets[n*w*h + cell]`), including
  the WordNet-tree path (`hierarchy_predictions` + `hierarchy_top_prediction`), then
  `correct_region_boxes`; `get_yolo_detections`: YOLOv3's, only the boxes whose
  objectness passes the threshold.
* `do_nms_sort`: the swap loop, a stable (glibc merge sort) sort per class and the
  IoU suppression, in place.
* `detection_lines` / `classifier_lines`: the exact `printf` lines.

All arithmetic is float32 where Darknet's is `float` and float64 where C promotes to
`double`, one rounding per operation, in Darknet's order. The stock build runs with
MXCSR flush-to-zero and denormals-are-zero; `ftz=True` (the default) reproduces that by
treating subnormal operands as zero and flushing subnormal results, `ftz=False` gives
the plain IEEE results of the -O2 build.

Box corrections: the -Ofast build computes the letterbox scale factors with an
approximate reciprocal (`rcpps` + one Newton step) whose last bits depend on the CPU.
`correct_region_boxes(..., factors=...)` takes the factors that build actually used
(the manifest's `ofast_correct_region_boxes`); without them the C source's exact IEEE
arithmetic is used (what the -O2 build does).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple, Sequence

import numba
import numpy as np

from .tree import Tree, hierarchy_predictions_kernel, hierarchy_top_prediction_kernel, flush32

__all__ = [
    "Box",
    "Detection",
    "OfastFactors",
    "box_iou",
    "classifier_lines",
    "correct_region_boxes",
    "detection_lines",
    "do_nms_sort",
    "get_region_box",
    "get_region_detections",
    "get_yolo_detections",
    "top_k",
]

_F32 = np.float32


class Box(NamedTuple):
    """A box as Darknet stores it: centre x, y and width, height (float32).

    Coordinates are relative to the image (0..1 inside it) after `correct_region_boxes`
    with `relative=True`, in pixels with `relative=False`, and relative to the network
    input before the correction.
    """

    x: np.float32
    y: np.float32
    w: np.float32
    h: np.float32


@dataclass(eq=False)
class Detection:
    """One entry of Darknet's detection array.

    `index` is the entry's position in the array that `get_region_detections` fills
    (`anchor*w*h + cell`), which stays with the detection when `do_nms_sort` reorders
    the list. `probs` holds the nonzero class probabilities only, `{class: float32}` in
    ascending class order (a dense row of `classes` floats in Darknet); a class
    suppressed by NMS is removed. Use `prob(k)` or `prob_array()` for dense access.
    `names` and `image_size` (w, h), which `Network.detect` fills in, give `label`,
    `box_pixels` and `to_dict` their names and pixels; the arithmetic never reads them.
    """

    index: int
    bbox: Box
    objectness: np.float32
    classes: int
    probs: dict[int, np.float32] = field(default_factory=dict)
    names: Sequence[str] | None = field(default=None, repr=False)
    image_size: tuple[int, int] | None = None

    @property
    def label(self) -> str | None:
        """The name of `best_class` (`Network.detect` gives each detection the network's
        names; without them, the class number as text); None when no class is above 0."""
        k = self.best_class
        if k < 0:
            return None
        return self.names[k] if self.names is not None else str(k)

    def pixel_box(self, w: int, h: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in pixels of a w x h image, as Darknet's
        draw_detections computes and clips them (and --json writes them)."""
        x, y, bw, bh = (float(v) for v in self.bbox)
        return (max(int((x - bw / 2) * w), 0), max(int((y - bh / 2) * h), 0),
                min(int((x + bw / 2) * w), w - 1), min(int((y + bh / 2) * h), h - 1))

    @property
    def box_pixels(self) -> tuple[int, int, int, int]:
        """`pixel_box` for the image the detection was found in (`Network.detect` records
        its size in `image_size`)."""
        if self.image_size is None:
            raise ValueError("this detection does not know its image's size: use pixel_box(w, h)")
        return self.pixel_box(*self.image_size)

    def to_dict(self, thresh: float = 0.0) -> dict:
        """The detection as plain Python values (json.dumps takes it): the best class's
        label, class id and probability, the objectness, the relative box, the pixel box
        when the image's size is known, and every class with probability above `thresh`."""
        names = self.names
        x, y, w, h = (float(v) for v in self.bbox)
        k = self.best_class
        d = {"label": self.label, "class_id": k, "prob": float(self.best_prob),
             "objectness": float(self.objectness), "bbox": {"x": x, "y": y, "w": w, "h": h}}
        if self.image_size is not None:
            d["box"] = dict(zip(("left", "top", "right", "bottom"), self.box_pixels))
        d["classes"] = [{"label": names[c] if names is not None else str(c), "class_id": c,
                         "prob": float(self.prob(c))} for c in self.classes_above(thresh)]
        return d

    def prob(self, k: int) -> np.float32:
        """Probability of class `k` (0 where Darknet's row holds 0)."""
        if not 0 <= k < self.classes:
            raise IndexError(f"class {k} out of range 0..{self.classes - 1}")
        return self.probs.get(k, _F32(0.0))

    def prob_array(self) -> np.ndarray:
        """Darknet's dense `prob` row: float32 array of length `classes`."""
        row = np.zeros(self.classes, np.float32)
        if self.probs:
            row[np.fromiter(self.probs.keys(), np.int64)] = np.fromiter(self.probs.values(), np.float32)
        return row

    @property
    def best_class(self) -> int:
        """Class with the highest probability (lowest index on ties), -1 if none is > 0."""
        best, best_p = -1, _F32(0.0)
        for k in sorted(self.probs):
            if self.probs[k] > best_p:
                best, best_p = k, self.probs[k]
        return best

    @property
    def best_prob(self) -> np.float32:
        k = self.best_class
        return self.probs[k] if k >= 0 else _F32(0.0)

    def classes_above(self, thresh: float) -> list[int]:
        """Classes whose probability is `> thresh` (float32 compare), ascending, as
        `draw_detections` visits them."""
        t = _F32(thresh)
        if t < 0:  # zeros pass a negative threshold too
            return [k for k in range(self.classes) if self.prob(k) > t]
        return [k for k in sorted(self.probs) if self.probs[k] > t]


# ---------------------------------------------------------------------------
# -Ofast correct_region_boxes factors
# ---------------------------------------------------------------------------

class OfastFactors(NamedTuple):
    """Scale factors of the -Ofast `correct_region_boxes` for one image/network size.

    `w_factor`, `h_factor` (float32) multiply w and h; `x_recip`, `y_recip` (float64)
    multiply `x - x_offset`, `y - y_offset` (float64) in place of the division by
    `new_w/netw`, `new_h/neth`. `x_ratio`, `y_ratio` are those approximated float32
    ratios (informative only). `new_w`, `new_h`, when given, are the letterboxed size
    the factors belong to; they are checked against the image and network sizes.
    """

    w_factor: np.float32
    h_factor: np.float32
    x_ratio: np.float32
    y_ratio: np.float32
    x_recip: float
    y_recip: float
    x_offset: float
    y_offset: float
    new_w: int | None = None
    new_h: int | None = None

    @classmethod
    def from_mapping(cls, m: Mapping) -> "OfastFactors":
        """From a dict with those keys whose values are numbers or `float.hex` strings
        (the manifest's `ofast_correct_region_boxes`); extra keys are ignored."""
        def num(key):
            v = m[key]
            return float.fromhex(v) if isinstance(v, str) else float(v)

        def f32(key):
            v = num(key)
            out = _F32(v)
            if float(out) != v and not math.isnan(v):
                raise ValueError(f"factor {key}={m[key]!r} is not a float32 value")
            return out

        sizes = [int(m[k]) if m.get(k) is not None else None for k in ("new_w", "new_h")]
        return cls(f32("w_factor"), f32("h_factor"), f32("x_ratio"), f32("y_ratio"),
                   num("x_recip"), num("y_recip"), num("x_offset"), num("y_offset"), *sizes)


def _letterbox_size(w: int, h: int, netw: int, neth: int) -> tuple[int, int]:
    """`new_w, new_h` of `letterbox_image` / `correct_region_boxes` (C integer division)."""
    if _F32(netw) / _F32(w) < _F32(neth) / _F32(h):
        return netw, (h * netw) // w
    return (w * neth) // h, neth


def _factors_tuple(w, h, netw, neth, factors):
    """(use_recip, wf, hf, xmul_or_div, ymul_or_div, xoff, yoff) for the kernel."""
    if w <= 0 or h <= 0 or netw <= 0 or neth <= 0:
        raise ValueError(f"image {w}x{h} and network {netw}x{neth} must be positive")
    if factors is None:
        new_w, new_h = _letterbox_size(w, h, netw, neth)
        wf = _F32(netw) / _F32(new_w)
        hf = _F32(neth) / _F32(new_h)
        xr = float(_F32(new_w) / _F32(netw))
        yr = float(_F32(new_h) / _F32(neth))
        xoff = (netw - new_w) / 2.0 / netw
        yoff = (neth - new_h) / 2.0 / neth
        return False, wf, hf, xr, yr, xoff, yoff
    if not isinstance(factors, OfastFactors):
        factors = OfastFactors.from_mapping(factors)
    if factors.new_w is not None or factors.new_h is not None:
        new_w, new_h = _letterbox_size(w, h, netw, neth)
        if (factors.new_w, factors.new_h) != (new_w, new_h):
            raise ValueError(f"-Ofast factors are for a {factors.new_w}x{factors.new_h} letterbox, "
                             f"this {w}x{h} image in a {netw}x{neth} network gives {new_w}x{new_h}")
    return (True, factors.w_factor, factors.h_factor, factors.x_recip, factors.y_recip,
            factors.x_offset, factors.y_offset)


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------

@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _correct_boxes_kernel(bbox, w, h, relative, use_recip, wf, hf, xq, yq, xoff, yoff, ftz):
    # x, y: (x - offset) in double, divided by (or, -Ofast, multiplied by the
    # reciprocal of) the float ratio new/net; w, h: float products.
    fw = np.float32(w)
    fh = np.float32(h)
    for i in range(bbox.shape[0]):
        x = np.float64(flush32(bbox[i, 0], ftz))
        y = np.float64(flush32(bbox[i, 1], ftz))
        if use_recip:
            bx = flush32(np.float32((x - xoff) * xq), ftz)
            by = flush32(np.float32((y - yoff) * yq), ftz)
        else:
            bx = flush32(np.float32((x - xoff) / xq), ftz)
            by = flush32(np.float32((y - yoff) / yq), ftz)
        bw = flush32(flush32(bbox[i, 2], ftz) * wf, ftz)
        bh = flush32(flush32(bbox[i, 3], ftz) * hf, ftz)
        if not relative:
            bx = flush32(bx * fw, ftz)
            bw = flush32(bw * fw, ftz)
            by = flush32(by * fh, ftz)
            bh = flush32(bh * fh, ftz)
        bbox[i, 0] = bx
        bbox[i, 1] = by
        bbox[i, 2] = bw
        bbox[i, 3] = bh


@numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _region_box(out, biases, n, index, col, row, lw, lh, stride, ftz):
    # x, y: float sum and float quotient; w, h: double exp (libm) times the anchor,
    # divided by the grid size in double, rounded once to float.
    x = flush32((np.float32(col) + flush32(out[index], ftz)) / np.float32(lw), ftz)
    y = flush32((np.float32(row) + flush32(out[index + stride], ftz)) / np.float32(lh), ftz)
    tw = np.float64(flush32(out[index + 2 * stride], ftz))
    th = np.float64(flush32(out[index + 3 * stride], ftz))
    w = flush32(np.float32(math.exp(tw) * np.float64(biases[2 * n]) / np.float64(lw)), ftz)
    h = flush32(np.float32(math.exp(th) * np.float64(biases[2 * n + 1]) / np.float64(lh)), ftz)
    return x, y, w, h


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _region_kernel(out, lw, lh, num, classes, coords, biases, background, thresh,
                   use_tree, parent, leaf, group_offset, group_size, child, hier_thresh,
                   use_map, cmap, ftz, bbox, objectness, prob, top_class):
    # Mirrors get_region_detections for batch 1. `out` is the flat region output
    # ([anchor][entry][cell]); it is modified in place on the tree path.
    # prob: (N, classes) for the plain softmax, (N, len(cmap)) with a map, (N, 1) plus
    # top_class for the tree without a map.
    cells = lw * lh
    entries = classes + coords + 1
    bg = 1 if background else 0
    for i in range(cells):
        row = i // lw
        col = i % lw
        for n in range(num):
            index = n * cells + i
            base = n * cells * entries + i
            obj_index = base + coords * cells
            box_index = base
            class_index = base + (coords + 1 - bg) * cells
            if background:
                scale = np.float32(1.0)
            else:
                scale = flush32(out[obj_index], ftz)
            x, y, w, h = _region_box(out, biases, n, box_index, col, row, lw, lh, cells, ftz)
            bbox[index, 0] = x
            bbox[index, 1] = y
            bbox[index, 2] = w
            bbox[index, 3] = h
            objectness[index] = scale if scale > thresh else np.float32(0.0)
            if use_tree:
                hierarchy_predictions_kernel(out, class_index, classes, parent, leaf, False, cells, ftz)
                if use_map:
                    for j in range(cmap.shape[0]):
                        p = flush32(scale * flush32(out[class_index + cmap[j] * cells], ftz), ftz)
                        prob[index, j] = p if p > thresh else np.float32(0.0)
                else:
                    top_class[index] = hierarchy_top_prediction_kernel(
                        out, class_index, group_offset, group_size, child, parent,
                        hier_thresh, cells, ftz)
                    prob[index, 0] = scale if scale > thresh else np.float32(0.0)
            elif objectness[index] != 0:
                for j in range(classes):
                    p = flush32(scale * flush32(out[class_index + j * cells], ftz), ftz)
                    prob[index, j] = p if p > thresh else np.float32(0.0)


@numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _box_edges(x, y, w, h, ftz):
    # The per-box half of box.c's overlap(): edges x -/+ w/2, y -/+ h/2 and the area
    # w*h, each one float32 rounding (computing them once per box changes no bit).
    x = flush32(x, ftz)
    y = flush32(y, ftz)
    w = flush32(w, ftz)
    h = flush32(h, ftz)
    two = np.float32(2.0)
    hw = flush32(w / two, ftz)
    hh = flush32(h / two, ftz)
    return (flush32(x - hw, ftz), flush32(x + hw, ftz), flush32(y - hh, ftz),
            flush32(y + hh, ftz), flush32(w * h, ftz))


@numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _iou_edges(l1, r1, t1, b1, area1, l2, r2, t2, b2, area2, ftz):
    # box_iou: overlaps (max of the left edges, min of the right ones, first box on
    # the left of each comparison as in C), intersection 0 if either is negative,
    # union = (area_a + area_b) - intersection, then one float division.
    left = l1 if l1 > l2 else l2
    right = r1 if r1 < r2 else r2
    ow = flush32(right - left, ftz)
    top = t1 if t1 > t2 else t2
    bot = b1 if b1 < b2 else b2
    oh = flush32(bot - top, ftz)
    if ow < 0 or oh < 0:
        inter = np.float32(0.0)
    else:
        inter = flush32(ow * oh, ftz)
    union = flush32(flush32(area1 + area2, ftz) - inter, ftz)
    return flush32(inter / union, ftz)


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _iou(ax, ay, aw, ah, bx, by, bw, bh, ftz):
    l1, r1, t1, b1, a1 = _box_edges(ax, ay, aw, ah, ftz)
    l2, r2, t2, b2, a2 = _box_edges(bx, by, bw, bh, ftz)
    return _iou_edges(l1, r1, t1, b1, a1, l2, r2, t2, b2, a2, ftz)


@numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _nms_cmp(prob, a, b, col, ftz):
    # nms_comparator: sign of the float difference, larger probability first.
    diff = flush32(flush32(prob[a, col], ftz) - flush32(prob[b, col], ftz), ftz)
    if diff < 0:
        return 1
    if diff > 0:
        return -1
    return 0


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _merge(order, tmp, lo, n1, n2, prob, col, ftz):
    # Merge the sorted runs order[lo:lo+n1] and order[lo+n1:lo+n1+n2], taking the left
    # element when cmp(left, right) <= 0 (so equal keys keep their order).
    i = lo
    j = lo + n1
    end1 = lo + n1
    end2 = lo + n1 + n2
    t = 0
    while i < end1 and j < end2:
        if _nms_cmp(prob, order[i], order[j], col, ftz) <= 0:
            tmp[t] = order[i]
            i += 1
        else:
            tmp[t] = order[j]
            j += 1
        t += 1
    while i < end1:
        tmp[t] = order[i]
        i += 1
        t += 1
    # whatever is left of the right run is already in place
    for q in range(t):
        order[lo + q] = tmp[q]


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _msort(order, tmp, total, prob, col, ftz):
    # glibc's qsort for this element size is a top-down merge sort (msort_with_tmp):
    # split n into n/2 | n - n/2, sort both halves, merge. Reproduced split for split
    # (with an explicit stack: Numba cannot cache recursive functions), so that even a
    # comparator made inconsistent by flush-to-zero gives glibc's order.
    stack = np.empty((256, 3), np.int64)  # (lo, n, halves_sorted); depth <= 64
    stack[0, 0] = 0
    stack[0, 1] = total
    stack[0, 2] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        lo = stack[sp, 0]
        n = stack[sp, 1]
        done = stack[sp, 2]
        if n <= 1:
            continue
        n1 = n // 2
        n2 = n - n1
        if done:
            _merge(order, tmp, lo, n1, n2, prob, col, ftz)
            continue
        stack[sp, 2] = 1
        sp += 1
        stack[sp, 0] = lo + n1
        stack[sp, 1] = n2
        stack[sp, 2] = 0
        sp += 1
        stack[sp, 0] = lo
        stack[sp, 1] = n1
        stack[sp, 2] = 0
        sp += 1


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _nms_kernel(bbox, objectness, prob, nms, ftz):
    # do_nms_sort on index arrays; `prob` holds only the class columns that have a
    # nonzero entry (a class whose probabilities are all zero sorts to the identity
    # permutation and suppresses nothing). Returns the final order; zeroes `prob`.
    total = objectness.shape[0]
    order = np.arange(total)
    k = total - 1
    i = 0
    while i <= k:
        if flush32(objectness[order[i]], ftz) == 0:
            s = order[i]
            order[i] = order[k]
            order[k] = s
            k -= 1
        else:
            i += 1
    total = k + 1
    tmp = np.empty(max(total, 1), np.int64)
    edges = np.empty((bbox.shape[0], 5), np.float32)
    for q in range(bbox.shape[0]):
        l, r, t, b, area = _box_edges(bbox[q, 0], bbox[q, 1], bbox[q, 2], bbox[q, 3], ftz)
        edges[q, 0] = l
        edges[q, 1] = r
        edges[q, 2] = t
        edges[q, 3] = b
        edges[q, 4] = area
    for col in range(prob.shape[1]):
        anything = False
        for q in range(total):
            if flush32(prob[order[q], col], ftz) != 0:
                anything = True
                break
        if not anything:
            continue
        _msort(order, tmp, total, prob, col, ftz)
        for q in range(total):
            a = order[q]
            if flush32(prob[a, col], ftz) == 0:
                continue
            for r in range(q + 1, total):
                b = order[r]
                cur = prob[b, col]
                if cur == 0 and math.copysign(1.0, cur) > 0:
                    continue  # already +0: zeroing it again changes nothing
                v = _iou_edges(edges[a, 0], edges[a, 1], edges[a, 2], edges[a, 3], edges[a, 4],
                               edges[b, 0], edges[b, 1], edges[b, 2], edges[b, 3], edges[b, 4], ftz)
                if v > nms:
                    prob[b, col] = np.float32(0.0)
    return order


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _top_k_kernel(a, k, ftz):
    # utils.c top_k: insert each element into a k-slot list; a newcomer only displaces
    # a slot holding a strictly smaller value, and the displaced one moves on down.
    index = np.full(k, -1, np.int64)
    for i in range(a.shape[0]):
        curr = i
        for j in range(k):
            if index[j] < 0 or (curr >= 0 and flush32(a[curr], ftz) > flush32(a[index[j]], ftz)):
                s = curr
                curr = index[j]
                index[j] = s
    return index


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def get_region_box(output, biases, n: int, index: int, col: int, row: int,
                   lw: int, lh: int, stride: int, *, ftz: bool = True) -> Box:
    """Darknet's `get_region_box` for one anchor/cell: `output` is the flat float32
    region output, `index` the flat index of the anchor's x entry at that cell,
    `stride` the distance between entries (`lw*lh`). Relative to the network input."""
    out = np.ascontiguousarray(output, np.float32).reshape(-1)
    b = np.ascontiguousarray(biases, np.float32)
    x, y, w, h = _region_box(out, b, int(n), int(index), int(col), int(row),
                             int(lw), int(lh), int(stride), bool(ftz))
    return Box(_F32(x), _F32(y), _F32(w), _F32(h))


def box_iou(a: Sequence[float], b: Sequence[float], *, ftz: bool = True) -> np.float32:
    """Darknet's `box_iou` in float32 (boxes as x, y, w, h)."""
    a = [_F32(v) for v in a]
    b = [_F32(v) for v in b]
    return _F32(_iou(*a, *b, bool(ftz)))


def _correct_array(bbox, w, h, netw, neth, relative, factors, ftz):
    use_recip, wf, hf, xq, yq, xoff, yoff = _factors_tuple(int(w), int(h), int(netw), int(neth), factors)
    _correct_boxes_kernel(bbox, int(w), int(h), bool(relative), use_recip, _F32(wf), _F32(hf),
                          float(xq), float(yq), float(xoff), float(yoff), bool(ftz))


def correct_region_boxes(dets: list[Detection], w: int, h: int, netw: int, neth: int,
                         relative: bool = True, factors=None, *, ftz: bool = True) -> list[Detection]:
    """Darknet's `correct_region_boxes`, in place: undo the letterbox of a `w`x`h`
    image into the `netw`x`neth` network input; with `relative=False` scale to pixels.

    `factors`: None for the C source's exact arithmetic, or the -Ofast build's factors
    (an `OfastFactors` or a mapping such as the manifest's `ofast_correct_region_boxes`).
    Returns `dets` for convenience.
    """
    bbox = np.array([d.bbox for d in dets], np.float32).reshape(-1, 4)
    _correct_array(bbox, w, h, netw, neth, relative, factors, ftz)
    for d, b in zip(dets, bbox):
        d.bbox = Box(*b)
    return dets


_EMPTY_I32 = np.zeros(0, np.int32)


def get_region_detections(output, *, classes: int, coords: int, num: int, biases,
                          w: int, h: int, netw: int, neth: int, thresh: float,
                          hier_thresh: float = 0.5, tree: Tree | None = None, map=None,
                          relative: bool = True, background: bool = False,
                          factors=None, ftz: bool = True) -> list[Detection]:
    """Darknet's `get_region_detections` for one image (batch 1): returns all
    `lw*lh*num` detections in Darknet's array order (`anchor*lw*lh + cell`).

    `output`: the region layer's float32 output, shape (num*(classes+coords+1), lh, lw),
    C-contiguous. With a `tree` it is modified in place, as in
    Darknet (`hierarchy_predictions` multiplies the class entries along the tree);
    pass a copy to keep the original.
    `biases`: the 2*num anchor values (float32, as `parse_region` stores them).
    `w`, `h`: the original image size; `netw`, `neth`: the network input size.
    `map`: optional class map (`map[j]` = tree class of output class j), as in
    `get_network_boxes(..., map, ...)`; `factors`, `relative`: see
    `correct_region_boxes`.
    """
    arr = np.asarray(output)
    if arr.dtype != np.float32:
        raise TypeError(f"region output must be float32, got {arr.dtype}")
    entries = classes + coords + 1
    if arr.ndim != 3:
        raise ValueError(f"region output must have shape (c, h, w), got {arr.shape}")
    c, lh, lw = arr.shape
    if c != num * entries or arr.size != c * lh * lw:
        raise ValueError(f"region output has {c} channels, expected num*(classes+coords+1) = "
                         f"{num}*({classes}+{coords}+1) = {num * entries}")
    flat = arr.reshape(-1)
    if tree is not None and not np.shares_memory(flat, arr):
        raise ValueError("region output must be contiguous: the tree path updates it in place")
    b = np.ascontiguousarray(biases, np.float32).reshape(-1)
    if b.size < 2 * num:
        raise ValueError(f"{b.size} anchor values for num={num} (need {2 * num})")
    nboxes = lw * lh * num
    if tree is not None and tree.n < classes:
        raise ValueError(f"tree {tree.path} has {tree.n} classes, the layer {classes}")

    use_tree = tree is not None
    use_map = map is not None
    cmap = np.asarray(map if use_map else [], np.int64).reshape(-1)
    if use_map and not use_tree:
        raise ValueError("a class map is only used with a tree (softmax_tree) region layer")
    if use_map and (cmap.min(initial=0) < 0 or cmap.max(initial=0) >= classes):
        raise ValueError("class map entries must lie in 0..classes-1")
    if use_tree:
        width = cmap.size if use_map else 1
        parent, leaf, goff, gsize, child = (tree.parent, tree.leaf, tree.group_offset,
                                            tree.group_size, tree.child)
    else:
        width = classes
        parent = leaf = goff = gsize = child = _EMPTY_I32
    bbox = np.zeros((nboxes, 4), np.float32)
    objectness = np.zeros(nboxes, np.float32)
    prob = np.zeros((nboxes, width), np.float32)
    top_class = np.zeros(nboxes, np.int64)
    _region_kernel(flat, lw, lh, num, classes, coords, b, bool(background), _F32(thresh),
                   use_tree, parent, leaf, goff, gsize, child, _F32(hier_thresh),
                   use_map, cmap, bool(ftz), bbox, objectness, prob, top_class)
    _correct_array(bbox, w, h, netw, neth, relative, factors, ftz)

    rows, cols = np.nonzero(prob)
    vals = prob[rows, cols]
    cls = top_class[rows] if use_tree and not use_map else cols
    dets = [Detection(i, Box(*bbox[i]), objectness[i], classes) for i in range(nboxes)]
    for r, k, v in zip(rows.tolist(), cls.tolist(), vals):
        dets[r].probs[k] = v
    return dets


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def _yolo_kernel(out, lw, lh, num, classes, mask, biases, netw, neth, thresh, ftz, bbox, objectness, prob):
    # Mirrors get_yolo_detections for batch 1: cells in order, then anchors; only the
    # entries whose objectness passes thresh. Returns how many it filled.
    cells = lw * lh
    entries = classes + 5
    count = 0
    for i in range(cells):
        row = i // lw
        col = i % lw
        for n in range(num):
            base = n * cells * entries + i
            scale = flush32(out[base + 4 * cells], ftz)
            if scale <= thresh:
                continue
            m = mask[n]
            bbox[count, 0] = flush32((np.float32(col) + flush32(out[base], ftz)) / np.float32(lw), ftz)
            bbox[count, 1] = flush32((np.float32(row) + flush32(out[base + cells], ftz)) / np.float32(lh), ftz)
            tw = np.float64(flush32(out[base + 2 * cells], ftz))
            th = np.float64(flush32(out[base + 3 * cells], ftz))
            bbox[count, 2] = flush32(np.float32(math.exp(tw) * np.float64(biases[2 * m]) / np.float64(netw)), ftz)
            bbox[count, 3] = flush32(np.float32(math.exp(th) * np.float64(biases[2 * m + 1]) / np.float64(neth)),
                                     ftz)
            objectness[count] = scale
            for j in range(classes):
                p = flush32(scale * flush32(out[base + (5 + j) * cells], ftz), ftz)
                prob[count, j] = p if p > thresh else np.float32(0.0)
            count += 1
    return count


def get_yolo_detections(output, *, classes: int, mask, biases, w: int, h: int, netw: int, neth: int,
                        thresh: float, relative: bool = True, factors=None, first: int = 0,
                        ftz: bool = True) -> list[Detection]:
    """Darknet's `get_yolo_detections` for one image (batch 1): the entries of one [yolo]
    layer whose objectness is above `thresh`, cell by cell and anchor by anchor, boxes
    corrected for the letterbox (`correct_yolo_boxes`, the same arithmetic as
    `correct_region_boxes`; `factors`: the -Ofast build's, the manifest's
    `ofast_correct_yolo_boxes`). `output`: the layer's float32 output (len(mask) *
    (classes + 5), lh, lw); `biases`: every anchor (the `anchors=` list), `mask` the
    layer's. Detection.index counts from `first` (the entries of earlier layers)."""
    arr = np.asarray(output)
    if arr.dtype != np.float32 or arr.ndim != 3:
        raise ValueError(f"yolo output must be float32 (c, h, w), got {arr.dtype} {arr.shape}")
    num = len(mask)
    c, lh, lw = arr.shape
    if c != num * (classes + 5):
        raise ValueError(f"yolo output has {c} channels, expected len(mask)*(classes+5) = {num * (classes + 5)}")
    flat = np.ascontiguousarray(arr).reshape(-1)
    most = lw * lh * num
    bbox = np.zeros((most, 4), np.float32)
    objectness = np.zeros(most, np.float32)
    prob = np.zeros((most, classes), np.float32)
    count = _yolo_kernel(flat, lw, lh, num, classes, np.asarray(mask, np.int64),
                         np.ascontiguousarray(biases, np.float32), int(netw), int(neth), _F32(thresh), bool(ftz),
                         bbox, objectness, prob)
    bbox, objectness, prob = bbox[:count], objectness[:count], prob[:count]
    _correct_array(bbox, w, h, netw, neth, relative, factors, ftz)
    dets = [Detection(first + i, Box(*bbox[i]), objectness[i], classes) for i in range(count)]
    rows, cols = np.nonzero(prob)
    for r, k, v in zip(rows.tolist(), cols.tolist(), prob[rows, cols]):
        dets[r].probs[k] = v
    return dets


def do_nms_sort(dets: list[Detection], classes: int, nms: float, *, ftz: bool = True) -> list[Detection]:
    """Darknet's `do_nms_sort`, in place on the list and on the detections' `probs`.

    Detections with objectness 0 are swapped to the end (Darknet's swap loop, which
    permutes the others); then for each class in order the remaining ones are
    stably sorted by that class's probability, descending, and every later box whose
    IoU with a kept one is `> nms` loses that class. The list ends in the order of the
    last class sort. Returns `dets`.
    """
    n = len(dets)
    if n == 0:
        return dets
    used = sorted({k for d in dets for k in d.probs})
    if any(not 0 <= k < classes for k in used):
        raise ValueError(f"a detection has a class outside 0..{classes - 1}")
    col_of = {k: c for c, k in enumerate(used)}
    prob = np.zeros((n, len(used)), np.float32)
    for r, d in enumerate(dets):
        for k, v in d.probs.items():
            prob[r, col_of[k]] = v
    bbox = np.array([d.bbox for d in dets], np.float32).reshape(n, 4)
    objectness = np.array([d.objectness for d in dets], np.float32)
    before = prob.copy()
    order = _nms_kernel(bbox, objectness, prob, _F32(nms), bool(ftz))
    for r, c in zip(*np.nonzero((prob == 0) & (before != 0))):
        del dets[r].probs[used[c]]
    dets[:] = [dets[o] for o in order.tolist()]
    return dets


def percent(p) -> float:
    """`p*100` as Darknet computes it before printf: a float32 product, then double."""
    return float(_F32(p) * _F32(100.0))


def detection_lines(dets: Sequence[Detection], names: Sequence[str], thresh: float) -> list[str]:
    """The lines `draw_detections` prints (`"%s: %.0f%%"`), per detection in list order
    and per class in ascending order whose probability is `> thresh`.

    Python's `%.0f` rounds the exact binary value half to even, as glibc's printf does.
    """
    lines = []
    for d in dets:
        for k in d.classes_above(thresh):
            lines.append("%s: %.0f%%" % (names[k], percent(d.prob(k))))
    return lines


def top_k(probs, k: int, *, ftz: bool = True) -> list[int]:
    """Darknet's `top_k`: indices of the `k` largest values, largest first.

    Each value is inserted into a k-slot list and only displaces a strictly smaller
    one (`>`), so of equal values the lower index stays ahead. As in Darknet, an entry
    pushed down the list also needs a strictly larger value to take the next slot,
    so with ties the result can differ from a stable sort ([.1 .5 .5 .3 .5 .7], k=3
    gives 5, 2, 4). Fewer than `k` values give fewer indices."""
    a = np.ascontiguousarray(probs, np.float32).reshape(-1)
    if k < 0:
        raise ValueError("k must be >= 0")
    idx = _top_k_kernel(a, int(k), bool(ftz))
    return [int(i) for i in idx if i >= 0]


def classifier_lines(probs, names: Sequence[str], k: int = 5) -> list[str]:
    """`predict_classifier`'s `"%5.2f%%: %s"` lines for the `top_k` classes."""
    a = np.ascontiguousarray(probs, np.float32).reshape(-1)
    return ["%5.2f%%: %s" % (percent(a[i]), names[i]) for i in top_k(a, k)]
