"""Many inputs on one machine: inputs expanded, decoding overlapped with the network.

Every `detect`, `detector test` and `classifier predict` runs here, whatever its inputs:
image files, folders, globs, videos, `-` (paths on standard input), or none (Darknet's
`Enter Image Path:` prompt, one path at a time). So each kind of input gets the same
JSON Lines, error lines, exit status and Ctrl-C handling:

* `plan_inputs` checks the arguments before the network is loaded (a folder without
  images, a glob matching nothing, a missing path that is not an image's name: usage
  errors, exit status 2; a missing image file fails as its own input, as a broken one
  does) and `iter_items` yields one `Item` per image or video frame, lazily (a video is
  read frame by frame, standard input line by line).
* `Prefetcher` decodes and letterboxes items on a small pool while the network runs, in
  input order, holding at most `ahead` items submitted or prepared but not yet taken: a
  100,000-image folder uses the memory of a few images.
* `detect_many` (and `classify_many`) runs the network on each prepared item. The network
  is batch 1 (`Network.forward` takes one (3, h, w) input, as Darknet's `network_predict`
  does), so `batch=N` means N forward calls on N prepared inputs taken together while the
  pool prepares the next N; the results are those of `Network.detect` on each image, bit
  for bit, in input order.
* `run_many` writes what the command writes (`Output`): Darknet's lines, JSON Lines (one
  complete, flushed line per image or frame; with `--json -` nothing else on stdout),
  drawn images (under `--outdir`, or one image's into predictions.jpg), a progress bar
  when stderr is a terminal and a one-line summary.

Threads or processes: the network's Numba kernels, the stb JPEG decoder and the letterbox
resize (Numba, compiled without nogil=True) hold the GIL while they run; OpenCV's
imdecode releases it. With threads (the default), PNG and other OpenCV formats decode
while the network runs; stb JPEG decoding and the resize interleave with the network's
kernels (the GIL changes hands between kernels) rather than run beside them. Compiling
those kernels with nogil=True would let them overlap too, with no change to their
arithmetic. `kind="process"` prepares in separate processes (parallel for every decoder,
at the cost of about a second's start-up per worker and a pickled copy of each prepared
input). On a 2-core machine (bench/many.py, yolov2-tiny, 200 images) threads gained 5-11%
over the plain loop and processes nothing: the network already uses both cores, and
preparing an image costs ~30 ms against ~80 ms for the forward pass.
"""
from __future__ import annotations

import concurrent.futures as cf
import glob
import json
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import DarknetError, ImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
_GLOB_MAGIC = frozenset("*?[")


class UsageError(DarknetError):
    """Arguments that name no images (exit status 2)."""


def _ext(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def is_image_name(path: str) -> bool:
    return _ext(path) in IMAGE_EXTENSIONS


def is_video_name(path: str) -> bool:
    return _ext(path) in VIDEO_EXTENSIONS


def is_glob(text: str) -> bool:
    return any(ch in _GLOB_MAGIC for ch in text)


def needs_batch_mode(arg: str) -> bool:
    """Whether a PATH argument is more than one image file: `-`, a folder, a video, or a
    glob (a name with *, ? or [ that is not itself an existing file)."""
    if arg == "-":
        return True
    if os.path.isdir(arg) or is_video_name(arg):
        return True
    return is_glob(arg) and not os.path.exists(arg)


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

@dataclass
class Item:
    """One image or video frame to run.

    `index`: position in input order. `path`: the file (the video, for a frame). `rel`:
    where its drawing goes under --outdir. `pixels`: the decoded RGB frame for a video
    frame (None for an image file, which the pool reads and decodes). `error`: a failure
    known before decoding (a video that cannot be opened)."""

    index: int
    path: str
    rel: str
    frame: int | None = None
    time: float | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None


@dataclass
class Source:
    """One PATH argument, checked: kind is "files" (images from a folder, a glob or a
    plain file, with their relative paths), "video" or "stdin"."""

    kind: str
    arg: str
    files: list[tuple[str, str]] = field(default_factory=list)  # (path, relative path)
    frames: int | None = None  # a video's frame count, as its container says


def _walk_images(root: str) -> list[tuple[str, str]]:
    """Image files under `root`, recursively (symbolic links to folders followed, each
    folder once), by extension (case-insensitive), sorted by their relative path's
    components: a folder's files together, names in code-point order."""
    found = []
    seen = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            st = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # a link cycle
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        for name in files:
            if is_image_name(name):
                path = os.path.join(folder, name)
                found.append((path, os.path.relpath(path, root)))
    found.sort(key=lambda pr: pr[1].split(os.sep))
    return found


def _glob_base(pattern: str) -> str:
    """The folder part of a glob before its first wildcard: matches are relative to it."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if is_glob(part):
            break
        fixed.append(part)
    base = os.sep.join(fixed)
    return base if base or not pattern.startswith(os.sep) else os.sep


def _video_frame_count(path: str) -> int | None:
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            return None
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        return n if n > 0 else None
    finally:
        cap.release()


def plan_inputs(args: Sequence[str]) -> list[Source]:
    """Check and expand the PATH arguments (folders walked, globs expanded, here, so that
    quoted globs work). A path that does not exist, a folder without images or a glob
    matching no image or video is a UsageError."""
    if not args:
        raise UsageError("no input: give images, folders, globs, videos or - (paths on standard input)")
    sources = []
    for arg in args:
        if arg == "-":
            sources.append(Source("stdin", arg))
        elif os.path.isdir(arg):
            files = _walk_images(arg)
            if not files:
                raise UsageError(f"{arg}: no image files in this folder (looked for "
                                 f"{' '.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))}, recursively)")
            sources.append(Source("files", arg, files))
        elif os.path.exists(arg):
            if is_video_name(arg):
                sources.append(Source("video", arg, frames=_video_frame_count(arg)))
            else:
                sources.append(Source("files", arg, [(arg, os.path.basename(arg))]))
        elif is_glob(arg):
            base = _glob_base(arg) or "."
            files, matched = [], 0
            for match in sorted(glob.glob(arg, recursive=True)):
                if os.path.isdir(match):
                    found = _walk_images(match)
                    files += [(p, os.path.join(os.path.relpath(match, base), r)) for p, r in found]
                    matched += len(found)
                elif is_image_name(match):
                    files.append((match, os.path.relpath(match, base)))
                    matched += 1
                elif is_video_name(match):
                    if files:
                        sources.append(Source("files", arg, files))
                        files = []
                    sources.append(Source("video", match, frames=_video_frame_count(match)))
                    matched += 1
            if files:
                sources.append(Source("files", arg, files))
            if not matched:
                raise UsageError(f"{arg}: the pattern matches no image or video file")
        elif is_image_name(arg):
            # a missing image among the inputs fails as a broken one does: its error
            # line, the others still run (exit status 1)
            sources.append(Source("files", arg, [(arg, os.path.basename(arg))]))
        else:
            raise UsageError(f"{arg}: no such file or folder")
    return sources


def planned_total(sources: Sequence[Source], every: int = 1) -> int | None:
    """How many items the sources give, where known (None with standard input or a video
    whose container does not say)."""
    total = 0
    for s in sources:
        if s.kind == "files":
            total += len(s.files)
        elif s.kind == "video" and s.frames is not None:
            total += (s.frames + every - 1) // every
        else:
            return None
    return total


def _stdin_paths(stream) -> Iterator[str]:
    for line in stream:
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


def iter_video(path: str, index: int, every: int = 1) -> Iterator[Item]:
    """Every `every`-th frame of a video (cv2.VideoCapture), as RGB Items; `time` is the
    frame's position in seconds. A video OpenCV cannot open gives one Item with `error`."""
    import cv2

    stem = os.path.splitext(os.path.basename(path))[0]
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        yield Item(index, path, stem, error=f"{path}: cannot open the video (OpenCV)")
        return
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        frame = 0
        read = 0
        while True:
            if frame % every:
                if not cap.grab():
                    break
                frame += 1
                continue
            ok, bgr = cap.read()
            if not ok:
                break
            seconds = frame / fps if fps and fps > 0 else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            rgb = np.ascontiguousarray(bgr[:, :, ::-1]) if bgr.ndim == 3 else np.repeat(bgr[:, :, None], 3, axis=2)
            yield Item(index, path, os.path.join(stem, f"frame_{frame:06d}.jpg"), frame, round(float(seconds), 6),
                       rgb)
            index += 1
            read += 1
            frame += 1
        if not read:
            yield Item(index, path, stem, error=f"{path}: no frame could be read from the video")
    finally:
        cap.release()


def iter_items(sources: Sequence[Source], every: int = 1, stdin=None) -> Iterator[Item]:
    """The items of the planned sources, in order, lazily."""
    index = 0
    for s in sources:
        if s.kind == "files":
            for path, rel in s.files:
                yield Item(index, path, rel)
                index += 1
        elif s.kind == "video":
            for item in iter_video(s.arg, index, every):
                yield item
                index = item.index + 1
        else:
            for path in _stdin_paths(stdin if stdin is not None else sys.stdin):
                if is_video_name(path) and os.path.isfile(path):
                    for item in iter_video(path, index, every):
                        yield item
                        index = item.index + 1
                else:
                    yield Item(index, path, os.path.basename(path))
                    index += 1


# ---------------------------------------------------------------------------
# Preparing inputs (decode + letterbox), on a bounded pool
# ---------------------------------------------------------------------------

@dataclass
class Prepared:
    """An item ready for the network: its size, the letterboxed input, and the RGB
    pixels when they will be drawn."""

    width: int
    height: int
    x: np.ndarray = field(repr=False)
    pixels: np.ndarray | None = field(default=None, repr=False)


def prepare(item: Item, net_w: int, net_h: int, decoder: str = "stb", keep_pixels: bool = False) -> Prepared:
    """What `Network.detect` does before the forward pass: the image as Darknet's
    `load_image_color` gives it (an RGB frame as `Network.image` converts it), letterboxed."""
    from .image import read_bytes, decode_rgb, letterbox_image, to_float_chw

    if item.error is not None:
        raise ImageError(item.error)
    if item.pixels is not None:
        pixels = item.pixels
    else:
        pixels = decode_rgb(read_bytes(item.path), item.path, decoder)
    im = to_float_chw(pixels)
    x = letterbox_image(im, net_w, net_h)
    return Prepared(im.shape[2], im.shape[1], x, pixels if keep_pixels else None)


def _quiet_worker() -> None:
    """Pool processes ignore Ctrl-C: the main process stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_DONE = object()


class Prefetcher:
    """`fn(item)` over `items` on a pool of `workers` threads (or processes), yielded as
    (item, result or exception) in input order.

    At most `ahead` items are pulled from `items` and submitted or prepared but not yet
    taken by the consumer: the producer thread waits for a slot before pulling the next
    item, so memory holds `ahead` prepared items plus those the consumer is working on,
    however long the input. `high_water` records the most held at once."""

    def __init__(self, fn: Callable, items: Iterable, workers: int = 2, ahead: int = 4, kind: str = "thread"):
        if workers < 1 or ahead < 1:
            raise ValueError("workers and ahead must be at least 1")
        if kind not in ("thread", "process"):
            raise ValueError(f"kind must be 'thread' or 'process', not {kind!r}")
        self.fn, self.items, self.ahead = fn, items, ahead
        if kind == "process":
            import multiprocessing

            # spawn, not fork: the parent runs Numba's thread pool and our producer thread
            self.pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                               initializer=_quiet_worker)
        else:
            self.pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="darknetpy-prepare")
        self._slots = threading.Semaphore(ahead)
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.held = 0
        self.high_water = 0
        self._thread = threading.Thread(target=self._produce, name="darknetpy-producer", daemon=True)
        self._started = False

    def _produce(self) -> None:
        try:
            for item in self.items:
                while not self._slots.acquire(timeout=0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                with self._lock:
                    self.held += 1
                    self.high_water = max(self.high_water, self.held)
                try:
                    future = self.pool.submit(self.fn, item)
                except RuntimeError:  # the pool was shut down: we are closing
                    return
                self._queue.put((item, future))
            self._queue.put(_DONE)
        except BaseException as e:  # an input source failed (stdin, a folder): the consumer re-raises
            self._queue.put(e)

    def __iter__(self) -> Iterator[tuple[object, object]]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            entry = self._queue.get()
            if entry is _DONE:
                return
            if isinstance(entry, BaseException):
                raise entry
            item, future = entry
            try:
                result = future.result()
            except Exception as e:  # the item's own failure, passed on with it
                result = e
            with self._lock:
                self.held -= 1
            self._slots.release()
            yield item, result

    def close(self) -> None:
        self._stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# The network over the items
# ---------------------------------------------------------------------------

@dataclass
class Result:
    """One item's outcome: its detections (`dets`) or top classes (`top`, as
    (index, probability)), or `error`; `seconds`: its share of the forward passes."""

    item: Item
    width: int | None = None
    height: int | None = None
    dets: list | None = None
    error: str | None = None
    seconds: float = 0.0
    pixels: np.ndarray | None = field(default=None, repr=False)
    top: list | None = None


def _chunks(iterable, n: int):
    chunk = []
    for x in iterable:
        chunk.append(x)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def error_text(e: BaseException) -> str:
    """An error as one line: the project's and the OS's as they read, others with their type."""
    if isinstance(e, (DarknetError, OSError)):
        return str(e)
    return f"{type(e).__name__}: {e}"


def detect_many(net, items: Iterable[Item], *, thresh: float = 0.5, hier_thresh: float = 0.5, nms: float = 0.45,
                decoder: str = "stb", workers: int = 2, batch: int = 1, ahead: int | None = None,
                kind: str = "thread", keep_pixels: bool = False, prefetcher: list | None = None,
                map=None) -> Iterator[Result]:
    """`Network.detect` over many items, in order, with decoding and letterboxing done
    ahead on a pool (see Prefetcher): the same detections as one `detect` call per image.
    A failing item gives a Result with `error`; the others go on. `prefetcher`: a list
    that receives the Prefetcher (for its `high_water`). `map`: a class map for a tree
    network (see `Network.detect`)."""
    net.require_detector()
    infer = _detector(net, thresh, hier_thresh, nms, map)
    yield from _infer_many(net, items, infer, "dets", decoder, workers, batch, ahead, kind, keep_pixels, prefetcher)


def classify_many(net, items: Iterable[Item], *, top: int = 5, decoder: str = "stb", workers: int = 2,
                  batch: int = 1, ahead: int | None = None, kind: str = "thread") -> Iterator[Result]:
    """`Network.classify` over many items, as `detect_many` runs `detect`: each Result's
    `top` is the (index, probability) list of `classifier predict`."""
    net.require_classifier()
    yield from _infer_many(net, items, _classifier(net, top), "top", decoder, workers, batch, ahead, kind, False, None)


def _detector(net, thresh: float, hier_thresh: float, nms: float, map=None):
    """infer(xs, sizes, seconds) for _infer_group: each input's detections."""
    def infer(xs, sizes, seconds):
        return net.detect_inputs(xs, sizes, thresh, hier_thresh, nms, map, seconds=seconds)
    return infer


def _classifier(net, top: int):
    """infer(xs, sizes, seconds) for _infer_group: each input's top classes."""
    def infer(xs, sizes, seconds):
        return net.classify_inputs(xs, top, seconds=seconds)
    return infer


def _infer_many(net, items, infer, key: str, decoder: str, workers: int, batch: int, ahead: int | None, kind: str,
                keep_pixels: bool, prefetcher: list | None) -> Iterator[Result]:
    from functools import partial

    batch = max(1, int(batch))
    fn = partial(prepare, net_w=net.width, net_h=net.height, decoder=decoder, keep_pixels=keep_pixels)
    pf = Prefetcher(fn, items, workers=workers, ahead=ahead or max(batch, workers), kind=kind)
    if prefetcher is not None:
        prefetcher.append(pf)
    with pf:
        for group in _chunks(pf, batch):
            yield from _infer_group(group, infer, key)


def _infer_group(group: list, infer, key: str) -> Iterator[Result]:
    """One `infer` (Network.detect_inputs or classify_inputs) over a group's prepared
    inputs (on a GPU they run side by side), then each item's result, in order, with its
    share of the forward passes' time."""
    ready = [prepared for _, prepared in group if not isinstance(prepared, BaseException)]
    seconds: list[float] = []
    try:
        found: list | BaseException = infer([p.x for p in ready], [(p.width, p.height) for p in ready], seconds)
    except (DarknetError, MemoryError) as e:
        found = e
    # the time of the forward passes, without getting kernels ready (Network._timed)
    share = sum(seconds) / max(len(ready), 1)
    done = 0
    for item, prepared in group:
        if isinstance(prepared, BaseException):
            yield Result(item, error=error_text(prepared))
        elif isinstance(found, BaseException):
            yield Result(item, prepared.width, prepared.height, error=error_text(found))
        else:
            yield Result(item, prepared.width, prepared.height, seconds=share, pixels=prepared.pixels,
                         **{key: found[done]})
            done += 1


# ---------------------------------------------------------------------------
# Records, JSON Lines, drawings, progress
# ---------------------------------------------------------------------------

def detection_dicts(dets, names: Sequence[str], thresh: float, w: int, h: int) -> list[dict]:
    """The detections as `--json` writes them: per printed class of each detection, in
    Darknet's printing order, its label, class id, probability, objectness, relative box
    and pixel box (clipped as draw_detections clips it)."""
    items = []
    for d in dets:
        x, y, bw, bh = (float(v) for v in d.bbox)
        box = dict(zip(("left", "top", "right", "bottom"), d.pixel_box(w, h)))
        for k in d.classes_above(thresh):
            items.append({"label": names[k], "class_id": k, "prob": float(d.prob(k)),
                          "objectness": float(d.objectness), "bbox": {"x": x, "y": y, "w": bw, "h": bh},
                          "box": box})
    return items


def top_dicts(top, names: Sequence[str]) -> list[dict]:
    """A classification's top classes as `--json` writes them: label, class id, probability."""
    return [{"label": names[k], "class_id": int(k), "prob": float(p)} for k, p in top]


def record(result: Result, names: Sequence[str], thresh: float) -> dict:
    """One JSON Lines object of a local result (see `make_record`)."""
    item = result.item
    if result.top is not None:
        return make_record(item.path, item.frame, item.time, result.width, result.height, None,
                           top_dicts(result.top, names), key="top")
    dets = None if result.error is not None else detection_dicts(result.dets, names, thresh, result.width,
                                                                 result.height)
    return make_record(item.path, item.frame, item.time, result.width, result.height, result.error, dets)


def make_record(path: str, frame: int | None, time: float | None, width: int | None, height: int | None,
                error: str | None, detections: list | None, key: str = "detections") -> dict:
    """One JSON Lines object, the same from the local pipeline and from Ray, for every
    kind of input: path, frame and time (video), width and height (when decoded), and
    the detections (a classifier's: `top`, with key="top"), or error."""
    r: dict = {"path": path}
    if frame is not None:
        r["frame"] = frame
        r["time"] = time
    if width is not None:
        r["width"], r["height"] = width, height
    if error is not None:
        r["error"] = error
    else:
        r[key] = detections
    return r


def emit(rec: dict, writer: "JsonLines | None", bar: "Progress") -> None:
    """A record's error line on the progress bar's stream, its JSON line, its count: the
    line and the count in one guarded section, so that Ctrl-C cannot fall between them
    (the summary's count is the number of lines)."""
    error = rec.get("error")
    if error is not None:
        bar.write(f"darknetpy: error: {error}")

    def count() -> None:
        bar.update(failed=error is not None, frame="frame" in rec)
    if writer is not None:
        writer.write(rec, then=count)
    else:
        count()


class InterruptGuard:
    """Ctrl-C held off while a line is written and raised right after it, so that an
    interrupted run leaves only complete lines. Python runs signal handlers in the main
    thread between bytecodes, so the handler defers while `critical` and the section's end
    raises. Installed only from the main thread, over Python's default handler."""

    def __init__(self):
        self.critical = False
        self.pending = False
        self._old = None

    def _handler(self, signum, frame):
        if self.critical:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def run(self, fn, *args):
        """fn(*args) with Ctrl-C deferred to its end."""
        self.critical = True
        try:
            return fn(*args)
        finally:
            self.critical = False
            if self.pending:
                self.pending = False
                raise KeyboardInterrupt


class JsonLines:
    """JSON Lines to a file or stdout ("-"): each object one line, written whole and
    flushed as it completes (under `guard`, Ctrl-C waits for the line's end)."""

    def __init__(self, target: str, guard: InterruptGuard | None = None):
        self.target = target
        self.guard = guard
        if target == "-":
            self.f = sys.stdout
        else:
            try:
                self.f = open(target, "w", encoding="utf-8")
            except OSError as e:
                raise UsageError(f"{target}: cannot write: {e.strerror}") from None

    def _write(self, line: str) -> None:
        try:
            self.f.write(line)
            self.f.flush()
        except BrokenPipeError:
            raise
        except OSError as e:  # a full disk: stop, with the summary of what was written
            raise DarknetError(f"{self.target}: cannot write: {e.strerror or e}") from None

    def write(self, obj: dict, then=None) -> None:
        """One object's line; then(), if given, right after it in the same guarded section."""
        line = json.dumps(obj) + "\n"

        def write_line() -> None:
            self._write(line)
            if then is not None:
                then()
        if self.guard is not None:
            self.guard.run(write_line)
        else:
            write_line()

    def close(self) -> None:
        if self.f is not sys.stdout:
            try:
                self.f.close()
            except OSError:  # already reported by the write that failed
                pass


def output_path(outdir: str, rel: str) -> str:
    """Where an item's drawing goes: DIR/rel, in the input's own format; a format OpenCV
    cannot write in colour (.pgm) or a name without an image extension gets .jpg added."""
    path = os.path.join(outdir, rel)
    ext = _ext(path)
    if ext not in IMAGE_EXTENSIONS or ext == ".pgm":
        path += ".jpg"
    return path


def save_drawing(pixels: np.ndarray, dets, names: Sequence[str], thresh: float, path: str) -> None:
    """Draw as Darknet draws into predictions.jpg and write `path` atomically (JPEG
    quality 80 as Darknet's save_image; other formats OpenCV's defaults)."""
    import cv2

    from .draw import draw_detections
    from .fileio import atomic_write

    drawn = draw_detections(np.array(pixels, np.uint8, copy=True), dets, names, thresh)
    ext = _ext(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, 80] if ext in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(ext, np.ascontiguousarray(drawn[:, :, ::-1]), params)
    if not ok:
        raise DarknetError(f"{path}: could not encode the drawn image")
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder or ".", exist_ok=True)
    except OSError as e:
        raise DarknetError(f"{folder}: cannot create the folder: {e.strerror}") from None
    atomic_write(path, lambda f: f.write(data.tobytes()))


def plural(n: int, word: str) -> str:
    """'1 image', '2 images'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Progress:
    """A progress bar on stderr when it is a terminal (tqdm if installed, else a line
    redrawn in place), and the summary line always."""

    def __init__(self, total: int | None, stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.failed = 0
        self.frames = 0
        self.start = time.perf_counter()
        self._last = 0.0
        if enabled is None:
            enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self._tqdm = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._tqdm = tqdm(total=total, unit="img", file=self.stream, dynamic_ncols=True, smoothing=0.1)

    def update(self, failed: bool = False, frame: bool = False) -> None:
        self.done += 1
        self.failed += failed
        self.frames += frame
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.update(1)
            if failed:
                self._tqdm.set_postfix(failed=self.failed, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= 0.2 or self.done == self.total:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        bar = ""
        if self.total:
            filled = int(30 * self.done / self.total)
            bar = "[" + "#" * filled + "." * (30 - filled) + "] "
        failed = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r\x1b[K{bar}{self.done}{of} images, {rate:.2f} images/s{failed}")
        self.stream.flush()

    def write(self, line: str, stream=None) -> None:
        """A line of text (an error line) without breaking the bar."""
        stream = stream or self.stream
        if self._tqdm is not None:
            self._tqdm.write(line, file=stream)
            return
        if self.enabled:
            self.stream.write("\r\x1b[K")
        print(line, file=stream, flush=True)
        if self.enabled and self.done:
            self._draw()

    def close(self) -> None:
        """Take the bar off the terminal."""
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self.enabled and self.done:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def summary(self, interrupted: bool = False, kernel_seconds: float = 0.0) -> str:
        """The one-line summary; `kernel_seconds`: the part of the run spent compiling or
        loading kernels (a first run), said when it is a noticeable part."""
        self.close()
        seconds = time.perf_counter() - self.start
        rate = self.done / seconds if seconds > 0 else 0.0
        state = "interrupted after " if interrupted else ""
        images = self.done - self.frames
        counts = [plural(n, word) for n, word in ((images, "image"), (self.frames, "frame")) if n]
        unit = "frames" if images == 0 and self.frames else "images" if not self.frames else "inputs"
        kernels = f"; {kernel_seconds:.1f} s of it getting kernels ready" if kernel_seconds >= 0.5 else ""
        line = (f"darknetpy: {state}{' and '.join(counts) or '0 images'}, {self.failed} failed, {rate:.2f} {unit}/s "
                f"({seconds:.1f} s{kernels})")
        print(line, file=self.stream, flush=True)
        return line


# ---------------------------------------------------------------------------
# The command's many-input mode
# ---------------------------------------------------------------------------

def _label(item: Item) -> str:
    return item.path if item.frame is None else f"{item.path} frame {item.frame}"


def _print_lines(result: Result, names, thresh) -> list[str]:
    from .detect import detection_lines

    return [f"{_label(result.item)}: Predicted in {result.seconds:f} seconds."] + detection_lines(result.dets, names,
                                                                                                  thresh)


def _top_lines(result: Result, names, prefix: bool) -> list[str]:
    """`classifier predict`'s lines ("%5.2f%%: %s"), each after the input's name and ': '
    when there are several inputs (as grep names the file when given several)."""
    from .detect import percent

    head = f"{_label(result.item)}: " if prefix else ""
    return [head + "%5.2f%%: %s" % (percent(p), names[k]) for k, p in result.top]


def prompt_items(stdin, out) -> Iterator[Item]:
    """Darknet's loop without an image argument: `Enter Image Path: ` on `out`, one path
    read from `stdin`, until it ends (blank lines skipped)."""
    index = 0
    while True:
        print("Enter Image Path: ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            return
        line = line.rstrip("\r\n")
        if line.strip():
            yield Item(index, line, os.path.basename(line))
            index += 1


def _one_at_a_time(net, items: Iterable[Item], infer, key: str, decoder: str, keep_pixels: bool) -> Iterator[Result]:
    """Each item prepared and run before the next is taken (the prompt: the next path is
    asked for after this one's lines)."""
    for item in items:
        try:
            prepared = prepare(item, net.width, net.height, decoder, keep_pixels)
        except Exception as e:  # noqa: BLE001 (the item's own failure, reported with it)
            prepared = e
        yield from _infer_group([(item, prepared)], infer, key)


@dataclass
class Output:
    """Where the command's results go, the same for every kind of input: Darknet's lines
    (a detector's all on stdout; a classifier's "Predicted in" on stderr, as Darknet
    writes it), none on stdout when the JSON Lines go there; the JSON Lines; drawings
    (under `outdir` by relative path, or the one input's into `draw_to`); error lines
    and counts on the progress bar."""

    names: Sequence[str]
    thresh: float = 0.5
    json_target: str | None = None
    outdir: str | None = None
    draw_to: str | None = None
    prefix: bool = False      # a classifier's lines begin with the input's name

    def write(self, result: Result, writer: "JsonLines | None", bar: "Progress", guard: "InterruptGuard") -> None:
        error = result.error
        path = self._drawing(result)
        if error is None and path is not None:
            try:
                save_drawing(result.pixels, result.dets, self.names, self.thresh, path)
            except DarknetError as e:
                error = result.error = str(e)
        if error is None:
            if result.top is not None:
                print(f"{_label(result.item)}: Predicted in {result.seconds:f} seconds.", file=sys.stderr,
                      flush=True)
                lines = _top_lines(result, self.names, self.prefix)
            else:
                lines = _print_lines(result, self.names, self.thresh)
            if self.json_target != "-":
                text = "\n".join(lines)
                if bar.enabled:
                    bar.write(text, sys.stdout)
                else:
                    guard.run(sys.stdout.write, text + "\n")
        emit(record(result, self.names, self.thresh), writer, bar)

    def _drawing(self, result: Result) -> str | None:
        if result.dets is None:
            return None
        if self.outdir is not None:
            return output_path(self.outdir, result.item.rel)
        return self.draw_to


def run_many(net, names: Sequence[str], sources: Sequence[Source] | None, *, thresh: float = 0.5,
             hier_thresh: float = 0.5, nms: float = 0.45, decoder: str = "stb", json_target: str | None = None,
             outdir: str | None = None, every: int = 1, batch: int = 1, workers: int = 2, kind: str = "thread",
             stdin=None, progress: bool | None = None, draw_to: str | None = None, top: int | None = None,
             summary: bool = True) -> int:
    """The command over its inputs, the same way for one image file, several, folders,
    globs, videos and standard input: `detect` (or, with `top`, `classifier predict`) on
    each, written by `Output`. sources=None: Darknet's prompt (see prompt_items), one
    path at a time. Exit status 0 (all done), 1 (some failed), 130 (Ctrl-C; the JSON
    Lines so far are complete lines and the summary says how many were done)."""
    from .kernel_clock import process_kernel_seconds

    guard = InterruptGuard()
    writer = JsonLines(json_target, guard) if json_target is not None else None
    total = planned_total(sources, every) if sources is not None else None
    out = Output(names, thresh, json_target, outdir, draw_to, prefix=sources is not None and total != 1)
    bar = Progress(total, enabled=False if sources is None else progress)
    keep_pixels = top is None and (outdir is not None or draw_to is not None)
    if top is not None:
        infer, key = _classifier(net, top), "top"
    else:
        infer, key = _detector(net, thresh, hier_thresh, nms), "dets"
    stdin = stdin if stdin is not None else sys.stdin
    if sources is None:
        prompts = sys.stderr if json_target == "-" else sys.stdout
        results = _one_at_a_time(net, prompt_items(stdin, prompts), infer, key, decoder, keep_pixels)
    else:
        results = _infer_many(net, iter_items(sources, every, stdin), infer, key, decoder, workers, batch, None,
                              kind, keep_pixels, None)
    interrupted = False
    kernels_before = process_kernel_seconds()
    try:
        with guard:
            for result in results:
                out.write(result, writer, bar, guard)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        results.close()
        if writer is not None:
            writer.close()
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        if summary or interrupted:
            bar.summary(interrupted, process_kernel_seconds() - kernels_before)
        else:
            bar.close()
    if interrupted:
        return 130
    return 1 if bar.failed else 0
