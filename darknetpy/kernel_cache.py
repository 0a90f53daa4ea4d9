"""darknetpy's compiled kernels: a notice while they compile, the time spent getting them
ready, and compiling them ahead.

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
* `compile_model` compiles what running a model needs, ahead: `darknetpy compile CFG`,
  and `darknetpy download`, which starts it for the models' cfg files while their
  weights download (`start_compile`).

Compiling in two processes at once (one from the first layer, one from the last) was
measured and left out: on this project's shared 2-core machine it gained 23% in one run
and lost 29% in another (the processes duplicate the kernels both reach first, and a
busy machine has no idle core to give); see bench/coldstart.py.
"""
from __future__ import annotations

import subprocess
import sys
import time

NOTICE = ("darknetpy: compiling darknetpy's kernels for this CPU, first run only "
          "(about a minute; 'darknetpy compile CFG' does it ahead)")


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


def compile_model(cfg: str, numerics: str = "darknet", compat: str | None = None, warn=None) -> float:
    """Compile (or load from the cache) every kernel that `detect` or `classifier
    predict` of `cfg` in `numerics` needs: the JPEG decoder, the letterbox, the forward
    pass and the head, on a blank image. Returns the seconds it took."""
    import numpy as np

    from .image import decode_rgb
    from .network import Network

    start = time.perf_counter()
    decode_rgb(_blank_jpeg(), "blank.jpg", "stb")
    net = Network(cfg, None, numerics=numerics, compat=compat, warn=warn)
    blank = np.zeros((net.height, net.width + 2, 3), np.uint8)  # + 2: the letterbox resizes
    if net.model.detection_layers:
        net.detect(blank)
    else:
        net.classify(blank)
    return time.perf_counter() - start


def start_compile(cfgs: list[str]) -> subprocess.Popen | None:
    """`darknetpy compile CFG...` in a child process (its output discarded), for a command
    that waits on something else meanwhile (download); None if it cannot start."""
    try:
        return subprocess.Popen([sys.executable, "-m", "darknetpy", "compile", "-q", *cfgs], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError:
        return None
