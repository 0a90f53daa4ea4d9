"""darknetpy's compiled kernels: a notice while they compile, the time spent getting them
ready, and compiling them ahead, in several processes at once.

The kernels are Numba functions, compiled for this CPU the first time a model needs
them and cached (`cache=True`: in darknetpy's `__pycache__` folders, or under
NUMBA_CACHE_DIR); later runs load them from there in a fraction of a second. So the
first `detect` of a model on a machine spends most of its time compiling (bench/
coldstart.py measures it; the README has the figures).

* `install_notice` prints one line on stderr when a kernel starts compiling, so that a
  first run is not silent: Numba announces only real compilations (not cache loads)
  through its `numba:compile` event.
* kernel_clock.py counts the time spent getting kernels ready (compiling them, or
  loading them from the cache, which each kernel's first call does).
* `prepare` (the first `detect`, `detector test` or `classifier predict` on a machine)
  and `compile_model` (`darknetpy compile CFG`, and `download`, which starts it while
  the weights download) compile a model's kernels in up to three processes at once
  (PARTS): this one the convolutions fused with their maxpool, a child the other
  convolutions (`compile --part convolutions`), a child everything else: the JPEG
  decoder, the letterbox, the other layers and the head (`--part side`), which shares no
  kernel with the convolutions. Each loads the others' kernels from the cache once all
  are done.
* `lock_cache_files` makes that safe: Numba numbers a function's cache files by reading
  its index and taking the first free number, so two processes saving two signatures
  of one function at once could both take the same number (the two convolution parts
  both compile the GEMM's inner kernels); an advisory lock around each index update
  (and read) orders them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

from numba import njit

NOTICE = ("darknetpy: compiling darknetpy's kernels for this CPU, first run only "
          "(under a minute; 'darknetpy compile CFG' does it ahead)")


def _is_ours(event) -> bool:
    dispatcher = event.data.get("dispatcher") if isinstance(event.data, dict) else None
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    return module.split(".")[0] == "darknetpy"


_said = False
_notice = None


def install_notice(stream=None) -> None:
    """From now on in this process, the first compilation of a darknetpy kernel prints
    NOTICE on `stream` (default: sys.stderr at that time), once."""
    global _notice
    if _notice is not None:
        return
    from numba.core import event

    class Notice(event.Listener):
        def on_start(self, ev):
            global _said
            if not _said and _is_ours(ev):
                _said = True
                print(NOTICE, file=stream or sys.stderr, flush=True)

        def on_end(self, ev):
            pass

    _notice = Notice()
    event.register("numba:compile", _notice)


def _blank_jpeg() -> bytes:
    """A small baseline colour JPEG (4:2:0, as cameras and most files write them)."""
    import cv2
    import numpy as np

    y, x = np.mgrid[0:48, 0:64]
    pixels = np.stack([x * 4, y * 5, (x + y) * 2], axis=2).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()


def _pooled(net, layer) -> bool:
    return layer.type == "convolutional" and layer.index in net.fused_pools


def _convolutions(net, layer) -> bool:
    return layer.type == "convolutional" and layer.index not in net.fused_pools


def _others(net, layer) -> bool:
    return layer.type != "convolutional"


# The parts a first run compiles at once, each the layers it runs: the convolutions
# fused with their maxpool, the other convolutions (the two share the GEMM's inner
# kernels, but each has its own parallel kernels, which are most of the time), and the
# "side": everything but the convolutions, with the JPEG decoder, letterbox and head.
PARTS = {"pooled": _pooled, "convolutions": _convolutions, "side": _others}


def compile_part(net, part: str) -> None:
    """Run what `detect` or `classifier predict` of `net` runs, on blank images, limited
    to one of PARTS, or "all"."""
    import numpy as np

    from .image import decode_rgb

    if part != "side" and part != "all":
        net.forward_part(np.zeros(net.model.options.input_shape, np.float32), lambda layer: PARTS[part](net, layer))
        return
    decode_rgb(_blank_jpeg(), "blank.jpg", "stb")
    blank = np.zeros((net.height, net.width + 2, 3), np.uint8)  # + 2: the letterbox resizes
    only = None if part == "all" else (lambda layer: _others(net, layer))
    outs = net.forward_part(net.letterbox(net.image(blank)), only)
    if net.model.detection_layers:
        net.detections(outs[1:], blank.shape[1], blank.shape[0])
        # a blank image has no box above the threshold, and NMS compares only such boxes
        _compile_nms(net.model.detection_layers[-1].classes, net.numerics.ftz)
    else:
        from .heads import classify

        classify(net.model, outs[0].reshape(-1).copy(), 5, net.numerics.ftz)


def _compile_nms(classes: int, ftz: bool) -> None:
    import numpy as np

    from .detect import Box, Detection, do_nms_sort

    box, one = Box(np.float32(.5), np.float32(.5), np.float32(.2), np.float32(.2)), np.float32(1)
    do_nms_sort([Detection(i, box, one, classes, {0: np.float32(p)}) for i, p in enumerate((.9, .8))], classes, .45,
                ftz=ftz)


def compile_model(cfg: str, numerics: str = "darknet", compat: str | None = None, warn=None) -> float:
    """Compile (or load from the cache) every kernel that `detect` or `classifier
    predict` of `cfg` in `numerics` needs, in several processes when the cache is cold (see
    `prepare`). Returns the seconds it took."""
    from .network import Network

    start = time.perf_counter()
    net = Network(cfg, None, numerics=numerics, compat=compat, warn=warn)
    prepare(net, cfg, numerics, compat)
    compile_part(net, "all")
    return time.perf_counter() - start


@njit(cache=True)
def _probe(x):
    """Looked up in the cache, not used: missing there means the kernels of this darknetpy
    have not been compiled on this machine (or in this NUMBA_CACHE_DIR)."""
    return x + 1


def cold() -> bool:
    """Whether the kernel cache is cold: a first run, which compiles."""
    _probe(1)
    return sum(_probe.stats.cache_misses.values()) > 0


def prepare(net, cfg: str, numerics: str, compat: str | None) -> None:
    """On a cold cache, compile `net`'s kernels in parallel: each part of PARTS that has
    layers in a process of its own (this one takes the first part of convolutions, a
    child each of the others), then wait for the children, so that the run that follows
    loads everything from the cache. Nothing on a warm cache or a GPU; where a child
    cannot start or fails, the run compiles what is missing itself."""
    if not net.backend.is_cpu or not cold() or not lock_cache_files():
        return
    parts = [part for part, runs in PARTS.items() if any(runs(net, layer) for layer in net.layers)] or ["side"]
    children = [start_part(cfg, numerics, compat, part) for part in parts[1:]]
    try:
        compile_part(net, parts[0])
        for child in filter(None, children):
            child.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for child in filter(None, children):
            if child.poll() is None:
                child.kill()
                child.wait()


CHILD_TIMEOUT_S = 600


def start_part(cfg: str, numerics: str, compat: str | None, part: str) -> subprocess.Popen | None:
    """`darknetpy compile --part PART` of cfg in a child process running this darknetpy
    (its output discarded); None if it cannot start."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]))
    command = [sys.executable, "-m", "darknetpy", "compile", "--part", part, "-q", "--numerics", numerics, cfg]
    if compat:
        command += ["--compat", compat]
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
    except OSError:
        return None


def compile_in_child(cfg: str, numerics: str, compat: str | None, part: str) -> None:
    """A child's work (`darknetpy compile --part PART`)."""
    from .network import Network

    lock_cache_files()
    compile_part(Network(cfg, None, numerics=numerics, compat=compat, warn=None), part)


def start_compile(cfgs: list[str]) -> subprocess.Popen | None:
    """`darknetpy compile CFG...` in a child process (its output discarded), for a command
    that waits on something else meanwhile (download); None if it cannot start."""
    try:
        return subprocess.Popen([sys.executable, "-m", "darknetpy", "compile", "-q", *cfgs], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError:
        return None


_locked = None


def lock_cache_files() -> bool:
    """From now on in this process, Numba's cache index of a darknetpy kernel is read and
    updated under an advisory lock. False where that cannot be done (no fcntl, or a
    Numba without this cache class): then nothing compiles in parallel."""
    global _locked
    if _locked is not None:
        return _locked
    try:
        import fcntl

        from numba.core import caching
        cache_file = caching.IndexDataCacheFile
        save, load = cache_file.save, cache_file.load
    except (ImportError, AttributeError):  # pragma: no cover - not POSIX, or another Numba
        _locked = False
        return False

    def locked(method, mode):
        def call(self, *args):
            if "darknetpy" not in self._cache_path:
                return method(self, *args)
            try:
                fd = os.open(os.path.join(self._cache_path, "darknetpy.lock"), os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return method(self, *args)
            try:
                fcntl.flock(fd, mode)
                return method(self, *args)
            finally:
                os.close(fd)
        return call

    cache_file.save = locked(save, fcntl.LOCK_EX)
    cache_file.load = locked(load, fcntl.LOCK_SH)
    _locked = True
    return True
