"""Box drawing of Darknet's `draw_detections` on an RGB uint8 image.

Boxes, their colours and line widths follow `src/image.c` exactly (including the
float32 colour arithmetic of `get_color` and the `(unsigned char)(255*v)` truncation of
`save_image`, so box pixels have the values Darknet writes). Darknet renders labels
from glyph images (`data/labels/*.png`) that are not shipped here; the label is drawn
the same way in spirit: a filled rectangle of the box colour, above the box's top
edge when it fits, with black text, at the glyph size Darknet would pick (OpenCV's
Hershey font instead of Futura, so label pixels are not Darknet's).
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .detect import Detection

_F32 = np.float32

# Darknet's colour ramp (magenta, blue, cyan, green, yellow, red), as float32.
_COLORS = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]], np.float32)

_INT_MIN = -(2 ** 31)


def _c_int(v: float) -> int:
    """C's `(int)` of a double on x86-64: truncation toward zero, INT_MIN when the value
    does not fit (cvttsd2si's 'integer indefinite')."""
    if not math.isfinite(v):
        return _INT_MIN
    t = math.trunc(v)
    return t if -(2 ** 31) <= t < 2 ** 31 else _INT_MIN


def _c_mod(a: int, b: int) -> int:
    """C's `%` (remainder with the sign of the dividend)."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def get_color(c: int, x: int, max: int) -> np.float32:  # noqa: A002 (Darknet's name)
    """Darknet's `get_color`: component `c` of the colour at position `x` of `max` on
    its 6-stop ramp, in float32 (`draw_detections` takes red from component 2, green
    from 1, blue from 0)."""
    ratio = (_F32(x) / _F32(max)) * _F32(5)
    i = int(math.floor(ratio))
    j = int(math.ceil(ratio))
    ratio = ratio - _F32(i)
    return (_F32(1) - ratio) * _COLORS[i, c] + ratio * _COLORS[j, c]


def class_color(cls: int, classes: int) -> tuple[np.float32, np.float32, np.float32]:
    """(red, green, blue) floats in [0, 1] that `draw_detections` uses for a class."""
    # class*123457 in C int arithmetic (wraps past 2^31, reached only for class >= 17395)
    prod = (cls * 123457 + 2 ** 31) % 2 ** 32 - 2 ** 31
    offset = _c_mod(prod, classes)
    if offset < 0:  # Darknet would index its colour table out of bounds here
        offset += classes
    return get_color(2, offset, classes), get_color(1, offset, classes), get_color(0, offset, classes)


def _to_byte(v) -> int:
    """`(unsigned char)(255*v)` of save_image (float32 product, truncated)."""
    p = _F32(255) * _F32(v)
    return int(min(max(math.trunc(float(p)), 0), 255))


def _draw_box(img: np.ndarray, x1: int, y1: int, x2: int, y2: int, color: np.ndarray) -> None:
    h, w = img.shape[:2]
    x1 = min(max(x1, 0), w - 1)
    x2 = min(max(x2, 0), w - 1)
    y1 = min(max(y1, 0), h - 1)
    y2 = min(max(y2, 0), h - 1)
    if x1 <= x2:
        img[y1, x1:x2 + 1] = color
        img[y2, x1:x2 + 1] = color
    if y1 <= y2:
        img[y1:y2 + 1, x1] = color
        img[y1:y2 + 1, x2] = color


def _label_image(text: str, im_h: int) -> np.ndarray:
    """A float label: 1 = background, 0 = ink; sized like Darknet's glyph set
    `min(int(im_h*.03)/10, 7)` (pointsize 12*(set+1)) plus a border of a quarter of
    its height on every side."""
    size = min(_c_int(im_h * .03) // 10, 7)
    target = int(round(12 * (size + 1) * 1.17))  # ImageMagick line height of that pointsize
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw1, th1), base1 = cv2.getTextSize(text, font, 1.0, 1)
    scale = target / max(th1 + base1, 1)
    thick = max(1, int(round(scale * 1.5)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    text_h = th + base
    canvas = np.full((text_h, tw + 2), 255, np.uint8)
    cv2.putText(canvas, text, (1, th), font, scale, 0, thick, cv2.LINE_AA)
    border = int(text_h * .25)
    canvas = cv2.copyMakeBorder(canvas, border, border, border, border,
                                cv2.BORDER_CONSTANT, value=255)
    return canvas.astype(np.float32) / np.float32(255)


def _draw_label(img: np.ndarray, r: int, c: int, label: np.ndarray, rgb) -> None:
    h, w = img.shape[:2]
    lh, lw = label.shape
    if r - lh >= 0:
        r = r - lh
    if r < 0 or c < 0 or r >= h or c >= w:
        return
    rows = min(lh, h - r)
    cols = min(lw, w - c)
    patch = label[:rows, :cols, None] * np.asarray(rgb, np.float32)[None, None, :]
    img[r:r + rows, c:c + cols] = np.trunc(np.float32(255) * patch).clip(0, 255).astype(np.uint8)


def draw_detections(image: np.ndarray, dets: Sequence[Detection], names: Sequence[str],
                    thresh: float, *, labels: bool = True) -> np.ndarray:
    """Darknet's `draw_detections` on a copy of an (h, w, 3) RGB uint8 image.

    For each detection with a class above `thresh` (float32 `>`): a box of
    `int(h*.006)` nested 1-pixel rectangles (none below 167 pixels of height, as in
    Darknet) in the colour of the first such class, from the box given relative to
    the image (`relative=True` detections), and, with `labels`, the comma-separated
    class names on the box colour. Returns the new image; `image` is not modified.
    """
    img = np.array(image, dtype=np.uint8, copy=True)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) RGB image, got shape {img.shape}")
    im_h, im_w = img.shape[:2]
    t = _F32(thresh)
    for d in dets:
        above = d.classes_above(t)
        if not above:
            continue
        cls = above[0]
        width = _c_int(im_h * .006)
        red, green, blue = class_color(cls, d.classes)
        color = np.array([_to_byte(red), _to_byte(green), _to_byte(blue)], np.uint8)
        bx, by, bw, bh = (float(v) for v in d.bbox)
        left = _c_int((bx - bw / 2.) * im_w)
        right = _c_int((bx + bw / 2.) * im_w)
        top = _c_int((by - bh / 2.) * im_h)
        bot = _c_int((by + bh / 2.) * im_h)
        if left < 0:
            left = 0
        if right > im_w - 1:
            right = im_w - 1
        if top < 0:
            top = 0
        if bot > im_h - 1:
            bot = im_h - 1
        for i in range(width):
            _draw_box(img, left + i, top + i, right - i, bot - i, color)
        if labels:
            text = ", ".join(names[k] for k in above)
            _draw_label(img, top + width, left, _label_image(text, im_h), (red, green, blue))
    return img
