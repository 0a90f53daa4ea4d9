"""Darknet's image augmentation kernels (src/image.c), in the arithmetic of either build.

`stock` is Darknet's Makefile build (`-Ofast`): gcc reassociates `place_image` (a hoisted
reciprocal, another order of the bilinear terms), vectorises `rgb_to_hsv` with the CPU's
`rcpps` approximate reciprocal plus one Newton step, and multiplies by `1/6` instead of
dividing. `stock=False` is the source arithmetic (an `-O2` build, darknetpy's `ieee`
numerics). The reference kit's README describes each difference; these kernels follow it.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
from numba import njit

_KIT_TABLE = os.path.join(os.path.dirname(__file__), "rcpps_table.hex")


def rcpps_table() -> np.ndarray:
    """The 4096 `rcpps(1 + k/4096)` values of the CPU the reference was captured on
    (AMD Zen 4), as uint32 bit patterns."""
    with open(_KIT_TABLE) as f:
        text = f.read().strip()
    return np.array([int(text[8 * k:8 * k + 8], 16) for k in range(4096)], np.uint32)


def write_rcpps_table(manifest_path: str) -> None:
    """Copy the table out of the data kit's manifest (how rcpps_table.hex was made)."""
    with open(manifest_path) as f:
        table = json.load(f)["rcpps"]["table_hex"]
    with open(_KIT_TABLE, "w") as f:
        f.write(table + "\n")


def rcpps_values() -> np.ndarray:
    """The table as float32 values (what the kernels index)."""
    return rcpps_table().view(np.float32)


@njit(cache=True, error_model="numpy", nogil=True)
def _rcpps(x, table):
    """rcpps(x) = T[top 12 mantissa bits] * 2^-exponent (x normal, as in the data path)."""
    if x == 0:
        return np.float32(np.inf)
    m, e = math.frexp(abs(np.float64(x)))
    k = int((2.0 * m - 1.0) * 4096.0)
    r = np.float32(math.ldexp(np.float64(table[k]), 1 - e))
    return r if x > 0 else -r


@njit(cache=True, error_model="numpy", nogil=True)
def _newton_recip(x, table):
    r0 = _rcpps(x, table)
    return np.float32(np.float32(r0 + r0) - np.float32(np.float32(r0 * x) * r0))


@njit(cache=True, error_model="numpy", nogil=True)
def _bilinear(im, x, y, c, stock):
    h, w = im.shape[1], im.shape[2]
    ix = int(math.floor(x))
    iy = int(math.floor(y))
    dx = np.float32(x - np.float32(ix))
    dy = np.float32(y - np.float32(iy))
    one = np.float32(1)
    ox = np.float32(one - dx)
    oy = np.float32(one - dy)
    p00 = im[c, iy, ix] if 0 <= ix < w and 0 <= iy < h else np.float32(0)
    p01 = im[c, iy + 1, ix] if 0 <= ix < w and 0 <= iy + 1 < h else np.float32(0)
    p10 = im[c, iy, ix + 1] if 0 <= ix + 1 < w and 0 <= iy < h else np.float32(0)
    p11 = im[c, iy + 1, ix + 1] if 0 <= ix + 1 < w and 0 <= iy + 1 < h else np.float32(0)
    if stock:
        t1 = np.float32(np.float32(p00 * ox) * oy)
    else:
        t1 = np.float32(np.float32(oy * ox) * p00)
    t2 = np.float32(np.float32(dy * ox) * p01)
    t3 = np.float32(np.float32(oy * dx) * p10)
    t4 = np.float32(np.float32(dy * dx) * p11)
    return np.float32(np.float32(np.float32(t1 + t2) + t3) + t4)


@njit(cache=True, error_model="numpy", nogil=True)
def _pixel(im, c, y, x):
    if 0 <= x < im.shape[2] and 0 <= y < im.shape[1]:
        return im[c, y, x]
    return np.float32(0)


@njit(cache=True, error_model="numpy", nogil=True)
def place_image(im, w, h, dx, dy, canvas, stock):
    """`place_image`: im resized (bilinear, sampled at x/w*im.w) into canvas at (dx, dy).
    The sample positions and weights depend on x or y only, so they are computed once per
    column and row (the same float32 operations as the per-pixel C code)."""
    c_n, ih, iw = im.shape
    ch, cw = canvas.shape[1], canvas.shape[2]
    one = np.float32(1)
    sx = np.float32(np.float32(iw) * np.float32(one / np.float32(w)))
    sy = np.float32(np.float32(ih) * np.float32(one / np.float32(h)))
    x0, x1 = max(0, -dx), min(w, cw - dx)
    y0, y1 = max(0, -dy), min(h, ch - dy)
    if x1 <= x0 or y1 <= y0:
        return
    ixs = np.empty(x1 - x0, np.int64)
    fxs = np.empty(x1 - x0, np.float32)
    for x in range(x0, x1):
        if stock:
            rx = np.float32(np.float32(x) * sx)
        else:
            rx = np.float32(np.float32(np.float32(x) / np.float32(w)) * np.float32(iw))
        ix = int(math.floor(rx))
        ixs[x - x0] = ix
        fxs[x - x0] = np.float32(rx - np.float32(ix))
    for c in range(c_n):
        for y in range(y0, y1):
            if stock:
                ry = np.float32(np.float32(y) * sy)
            else:
                ry = np.float32(np.float32(np.float32(y) / np.float32(h)) * np.float32(ih))
            iy = int(math.floor(ry))
            fy = np.float32(ry - np.float32(iy))
            oy = np.float32(one - fy)
            for k in range(x1 - x0):
                ix = ixs[k]
                fx = fxs[k]
                ox = np.float32(one - fx)
                p00 = _pixel(im, c, iy, ix)
                p01 = _pixel(im, c, iy + 1, ix)
                p10 = _pixel(im, c, iy, ix + 1)
                p11 = _pixel(im, c, iy + 1, ix + 1)
                if stock:
                    t1 = np.float32(np.float32(p00 * ox) * oy)
                else:
                    t1 = np.float32(np.float32(oy * ox) * p00)
                t2 = np.float32(np.float32(fy * ox) * p01)
                t3 = np.float32(np.float32(oy * fx) * p10)
                t4 = np.float32(np.float32(fy * fx) * p11)
                canvas[c, y + dy, x0 + k + dx] = np.float32(np.float32(np.float32(t1 + t2) + t3) + t4)


@njit(cache=True, error_model="numpy", nogil=True)
def _hsv_pixel(r, g, b, stock_vector, stock, table):
    mx = (r if r > b else b) if r > g else (g if g > b else b)
    mn = (r if r < b else b) if r < g else (g if g < b else b)
    delta = np.float32(mx - mn)
    v = mx
    if mx == 0:
        return np.float32(0), np.float32(0), v
    if stock_vector:
        s = np.float32(delta * _newton_recip(mx, table))
        rd = _newton_recip(delta, table)
        if r == mx:
            h = np.float32(np.float32(g - b) * rd)
        elif g == mx:
            h = np.float32(np.float32(2) + np.float32(np.float32(b - r) * rd))
        else:
            h = np.float32(np.float32(4) + np.float32(np.float32(r - g) * rd))
    else:
        s = np.float32(delta / mx)
        if r == mx:
            h = np.float32(np.float32(g - b) / delta)
        elif g == mx:
            h = np.float32(np.float32(2) + np.float32(np.float32(b - r) / delta))
        else:
            h = np.float32(np.float32(4) + np.float32(np.float32(r - g) / delta))
    if h < 0:
        h = np.float32(h + np.float32(6))
    if stock:
        h = np.float32(np.float64(h) * (1.0 / 6))
    else:
        h = np.float32(np.float64(h) / 6.0)
    return h, s, v


@njit(cache=True, error_model="numpy", nogil=True)
def distort_image(im, hue, sat, val, stock, table):
    """hue, sat, val: float32.
    `distort_image` in place: rgb_to_hsv, saturation and exposure scaled, hue shifted
    and wrapped, hsv_to_rgb, values clamped to [0, 1]."""
    _, h_n, w_n = im.shape
    vec_w = (w_n // 4) * 4 if stock else 0
    one = np.float32(1)
    for y in range(h_n):
        for x in range(w_n):
            r, g, b = im[0, y, x], im[1, y, x], im[2, y, x]
            hh, s, v = _hsv_pixel(r, g, b, x < vec_w, stock, table)
            s = np.float32(s * sat)
            v = np.float32(v * val)
            hh = np.float32(hh + hue)
            if hh > 1:
                hh = np.float32(hh - one)
            if hh < 0:
                hh = np.float32(hh + one)
            if s == 0:
                r = g = b = v
            else:
                hh6 = np.float32(np.float32(6) * hh)
                index = int(math.floor(hh6))
                f = np.float32(hh6 - np.float32(index))
                p = np.float32(v * np.float32(one - s))
                q = np.float32(v * np.float32(one - np.float32(s * f)))
                t = np.float32(v * np.float32(one - np.float32(s * np.float32(one - f))))
                if index == 0:
                    r, g, b = v, t, p
                elif index == 1:
                    r, g, b = q, v, p
                elif index == 2:
                    r, g, b = p, v, t
                elif index == 3:
                    r, g, b = p, q, v
                elif index == 4:
                    r, g, b = t, p, v
                else:
                    r, g, b = v, p, q
            im[0, y, x] = min(max(r, np.float32(0)), one)
            im[1, y, x] = min(max(g, np.float32(0)), one)
            im[2, y, x] = min(max(b, np.float32(0)), one)


@njit(cache=True, error_model="numpy", nogil=True)
def flip_image(im):
    """`flip_image`: mirrored left to right, in place."""
    c_n, h_n, w_n = im.shape
    for c in range(c_n):
        for y in range(h_n):
            for x in range(w_n // 2):
                a = im[c, y, x]
                im[c, y, x] = im[c, y, w_n - 1 - x]
                im[c, y, w_n - 1 - x] = a


@njit(cache=True, error_model="numpy", nogil=True)
def rotate_crop_image(im, rad, scale, w, h, dx, dy, aspect, stock):
    """`rotate_crop_image`: a w x h crop, rotated by rad and scaled, shifted by (dx, dy);
    the source `bilinear_interpolate` term order in both builds (not inlined there)."""
    c_n, ih, iw = im.shape
    rad, scale, dx, dy, aspect = np.float32(rad), np.float32(scale), np.float32(dx), np.float32(dy), np.float32(aspect)
    out = np.empty((c_n, h, w), np.float32)
    cx = np.float32(iw / 2.0)
    cy = np.float32(ih / 2.0)
    co = math.cos(np.float64(rad))
    si = math.sin(np.float64(rad))
    scale64 = np.float64(scale)
    dys = np.float64(np.float32(dy / scale))
    if stock:
        inv = 1.0 / scale64
        dxa = np.float64(np.float32(aspect * np.float32(dx / scale)))
        asp_i = np.float64(aspect) * inv
    else:
        dxa = np.float64(np.float32(np.float32(dx / scale) * aspect))
    for c in range(c_n):
        for y in range(h):
            for x in range(w):
                if stock:
                    a = (h * 0.5 - y) * inv
                    bb = dys - a
                    nb = a - dys
                    ax = (x - w * 0.5) * asp_i + dxa
                    ry = np.float32(ax * si + (bb * co + cy))
                    rx = np.float32(ax * co + (nb * si + cx))
                else:
                    ax = ((x - w / 2.0) / scale64) * aspect + dxa
                    by = (y - h / 2.0) / scale64 + dys
                    rx = np.float32((co * ax - si * by) + cx)
                    ry = np.float32((si * ax + co * by) + cy)
                out[c, y, x] = _bilinear(im, rx, ry, c, False)
    return out
