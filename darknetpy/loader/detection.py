"""`load_data_detection` (src/data.c): the YOLOv2 detector's jitter crop and placement,
hue/saturation/exposure, flip and the truth boxes' correction, bit for bit with the
data kit in both builds (`stock`: Darknet's -Ofast arithmetic; otherwise the source's)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .augment import distort_image, flip_image, place_image, rcpps_values
from .images import ImageSource
from .labels import detection_label_file, read_truth_boxes
from .rand import GlibcRand, rand_scale, rand_uniform, random_paths

_F32 = np.float32
_TABLE = None


def table() -> np.ndarray:
    """The rcpps table, loaded once per process."""
    global _TABLE
    if _TABLE is None:
        _TABLE = rcpps_values()
    return _TABLE


_POOL = None
_THREADS = [os.cpu_count() or 1]


def set_augment_threads(n: int) -> None:
    """Threads for the pixel work (a fast-mode worker process uses 1)."""
    _THREADS[0] = max(1, int(n))


def run_parallel(work, jobs: list) -> None:
    """`work(job)` for every job, on up to `set_augment_threads` threads (in order when one)."""
    global _POOL
    threads = min(len(jobs), _THREADS[0])
    if threads <= 1:
        for job in jobs:
            work(job)
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_THREADS[0], thread_name_prefix="darknetpy-augment")
    for future in [_POOL.submit(work, job) for job in jobs]:
        future.result()


def random_distort(rng: GlibcRand, im: np.ndarray, hue, saturation, exposure, stock: bool) -> None:
    """`random_distort_image`: 5 rand() (hue, then the two rand_scale), then `distort_image`."""
    dhue = rand_uniform(rng, -_F32(hue), _F32(hue))
    dsat = rand_scale(rng, saturation)
    dexp = rand_scale(rng, exposure)
    distort_image(im, dhue, dsat, dexp, stock, table())


def _constrain(v):
    return _F32(0) if v < 0 else (_F32(1) if v > 1 else v)


def correct_boxes(boxes: np.ndarray, dx, dy, sx, sy, flip: bool, stock: bool) -> list[tuple]:
    """`correct_boxes` on the shuffled rows (id, x, y, w, h): (x, y, w, h, id) per box."""
    out = []
    half = _F32(2)
    one = _F32(1)
    for k, x, y, w, h in boxes:
        if x == 0 and y == 0:
            big = _F32(999999)
            out.append((big, big, big, big, k))
            continue
        left, right = _F32(x - _F32(w / half)), _F32(x + _F32(w / half))
        top, bottom = _F32(y - _F32(h / half)), _F32(y + _F32(h / half))
        nl, nr = _F32(_F32(left * sx) - dx), _F32(_F32(right * sx) - dx)
        top, bottom = _F32(_F32(top * sy) - dy), _F32(_F32(bottom * sy) - dy)
        if flip:
            if stock:
                base = _F32(one + dx)
                nl, nr = _F32(base - _F32(right * sx)), _F32(base - _F32(left * sx))
            else:
                nl, nr = _F32(one - nr), _F32(one - nl)
        nl, nr, top, bottom = _constrain(nl), _constrain(nr), _constrain(top), _constrain(bottom)
        bx = _F32(_F32(nl + nr) / half)
        by = _F32(_F32(top + bottom) / half)
        bw = _constrain(_F32(nr - nl))
        bh = _constrain(_F32(bottom - top))
        out.append((bx, by, bw, bh, k))
    return out


def fill_truth_detection(rng: GlibcRand, path: str, num_boxes: int, flip: bool, dx, dy, sx, sy,
                         stock: bool, warn=None, warned: set | None = None) -> np.ndarray:
    """One row of y: the label file's boxes shuffled (one rand() each), corrected,
    cut to `num_boxes`, and the ones narrower or lower than .001 dropped."""
    boxes = read_truth_boxes(detection_label_file(path), warn, warned)
    count = len(boxes)
    for i in range(count):
        j = rng.rand() % count
        boxes[[i, j]] = boxes[[j, i]]
    corrected = correct_boxes(boxes, dx, dy, sx, sy, flip, stock)[:num_boxes]
    row = np.zeros(5 * num_boxes, np.float32)
    k = 0
    for x, y, w, h, cls in corrected:
        if float(w) < .001 or float(h) < .001:
            continue
        row[5 * k:5 * k + 5] = (x, y, w, h, cls)
        k += 1
    return row


def augment_image(orig: np.ndarray, w: int, h: int, place: tuple, distort: tuple, flip: bool,
                  stock: bool) -> np.ndarray:
    """The pixel work of one image, once its random numbers are drawn (it draws none):
    the 0.5 canvas, place_image, distort_image, flip."""
    sized = np.full((3, h, w), 0.5, np.float32)
    place_image(orig, *place, sized, stock)
    distort_image(sized, *distort, stock, table())
    if flip:
        flip_image(sized)
    return sized


def load_detection_images(rng: GlibcRand, paths: list[str], w: int, h: int, boxes: int, jitter, hue,
                          saturation, exposure, stock: bool, images: ImageSource, warn=None,
                          warned: set | None = None, defer: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-image part of `load_data_detection` for paths already drawn. Every rand()
    is drawn here in Darknet's order; the pixel kernels, which draw none, then run on a
    few threads (Numba releases the GIL), so the result does not depend on the threads.
    With `defer` (a list), the pixel work is appended to it as callables and X is filled
    only when the caller runs them (`run_parallel(call, defer)`)."""
    n = len(paths)
    X = np.empty((n, 3, h, w), np.float32)
    y = np.zeros((n, 5 * boxes), np.float32)
    jitter = _F32(jitter)
    fw, fh = _F32(w), _F32(h)
    rw, rh = _F32(_F32(1) / fw), _F32(_F32(1) / fh)
    jobs = []
    for i, path in enumerate(paths):
        path, orig = images.load(path)
        oh, ow = orig.shape[1], orig.shape[2]
        dw, dh = _F32(jitter * _F32(ow)), _F32(jitter * _F32(oh))
        a = rand_uniform(rng, -dw, dw)
        b = rand_uniform(rng, -dh, dh)
        new_ar = _F32(_F32(_F32(ow) + a) / _F32(_F32(oh) + b))
        if new_ar < 1:
            nh = fh
            nw = _F32(nh * new_ar)
        else:
            nw = fw
            nh = _F32(nw / new_ar)
        dx = rand_uniform(rng, 0, _F32(fw - nw))
        dy = rand_uniform(rng, 0, _F32(fh - nh))
        dhue = rand_uniform(rng, -_F32(hue), _F32(hue))
        dsat = rand_scale(rng, saturation)
        dexp = rand_scale(rng, exposure)
        flip = rng.rand() % 2 == 1
        jobs.append((i, orig, (int(nw), int(nh), int(dx), int(dy)), (dhue, dsat, dexp), flip))
        if stock:
            args = (-_F32(dx * rw), -_F32(dy * rh), _F32(nw * rw), _F32(nh * rh))
        else:
            args = (-_F32(dx / fw), -_F32(dy / fh), _F32(nw / fw), _F32(nh / fh))
        y[i] = fill_truth_detection(rng, path, boxes, flip, *args, stock, warn, warned)

    def work(job):
        i, orig, place, distort, flip = job
        X[i] = augment_image(orig, w, h, place, distort, flip, stock)

    if defer is not None:
        defer.extend((work, job) for job in jobs)
    else:
        run_parallel(work, jobs)
    return X, y


def load_data_detection(rng: GlibcRand, paths: list[str], n: int, w: int, h: int, boxes: int, jitter, hue,
                        saturation, exposure, stock: bool = True, images: ImageSource | None = None,
                        warn=None, warned: set | None = None, defer: list | None = None):
    """`load_data_detection`: n paths drawn by `rand() % m`, then each image augmented in
    order. Returns X (n, 3, h, w), y (n, 5*boxes) and the paths drawn."""
    picked = random_paths(rng, paths, n)
    images = images or ImageSource(paths, warn)
    X, y = load_detection_images(rng, picked, w, h, boxes, jitter, hue, saturation, exposure, stock,
                                 images, warn, warned, defer)
    return X, y, picked
