"""darknetpy's compiled kernels: a notice while they compile, the time spent getting them
ready, and compiling them ahead, in two processes at once.

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
  the weights download) compile a model's kernels in two processes at once: this one
  the convolutions (the GEMM, its workers and epilogues, which they share), a child
  (`compile --side`) everything else: the JPEG decoder, the letterbox, the other layers
  and the head. The two parts share no kernel, so neither compiles what the other
  does, and each loads the other's from the cache once both are done.
* `lock_cache_files` makes that safe: Numba numbers a function's cache files by reading
  its index and taking the first free number, so two processes saving two signatures
  of one function at once could both take the same number; an advisory lock around
  each index update (and read) orders them.
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


def uses_gemm(layer) -> bool:
    """The layers whose kernels the main part compiles: the convolutions (with the
    maxpools fused into them), which share the GEMM and its workers."""
    return layer.type == "convolutional"


def _others(layer) -> bool:
    return not uses_gemm(layer)


def compile_part(net, part: str) -> None:
    """Run what `detect` or `classifier predict` of `net` runs, on blank images, limited
    to one part of it: "main" (the convolutions), "side" (the JPEG decoder, the
    letterbox, the other layers, the head) or "all"."""
    import numpy as np

    from .image import decode_rgb

    if part == "main":
        net.forward_part(np.zeros(net.model.options.input_shape, np.float32), uses_gemm)
        return
    decode_rgb(_blank_jpeg(), "blank.jpg", "stb")
    blank = np.zeros((net.height, net.width + 2, 3), np.uint8)  # + 2: the letterbox resizes
    outs = net.forward_part(net.letterbox(net.image(blank)), None if part == "all" else _others)
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
    predict` of `cfg` in `numerics` needs, in two processes when the cache is cold (see
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
    """On a cold cache, compile `net`'s kernels in two processes: a child compiles the
    side part (`compile_part`) while this one compiles the main part, then this one
    waits for it, so that the run that follows loads everything from the cache. Nothing
    on a warm cache or a GPU; if the child cannot start or fails, the run compiles what
    is missing itself."""
    if not net.backend.is_cpu or not cold():
        return
    lock_cache_files()
    side = start_side(cfg, numerics, compat)
    try:
        compile_part(net, "main")
        if side is not None:
            side.communicate(timeout=SIDE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if side is not None and side.poll() is None:
            side.kill()
            side.wait()


SIDE_TIMEOUT_S = 600


def start_side(cfg: str, numerics: str, compat: str | None) -> subprocess.Popen | None:
    """`darknetpy compile --side` of cfg in a child process running this darknetpy (its
    output discarded); None if it cannot start."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]))
    command = [sys.executable, "-m", "darknetpy", "compile", "--side", "-q", "--numerics", numerics, cfg]
    if compat:
        command += ["--compat", compat]
    try:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
    except OSError:
        return None


def compile_side(cfg: str, numerics: str, compat: str | None) -> None:
    """The child's work (`darknetpy compile --side`)."""
    from .network import Network

    lock_cache_files()
    compile_part(Network(cfg, None, numerics=numerics, compat=compat, warn=None), "side")


def start_compile(cfgs: list[str]) -> subprocess.Popen | None:
    """`darknetpy compile CFG...` in a child process (its output discarded), for a command
    that waits on something else meanwhile (download); None if it cannot start."""
    try:
        return subprocess.Popen([sys.executable, "-m", "darknetpy", "compile", "-q", *cfgs], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError:
        return None


_locked = False


def lock_cache_files() -> None:
    """From now on in this process, Numba's cache index of a darknetpy kernel is read and
    updated under an advisory lock (fcntl; where there is none, nothing changes)."""
    global _locked
    if _locked:
        return
    _locked = True
    try:
        import fcntl

        from numba.core import caching
        cache_file = caching.IndexDataCacheFile
        save, load = cache_file.save, cache_file.load
    except (ImportError, AttributeError):  # pragma: no cover - not POSIX, or another Numba
        return

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
