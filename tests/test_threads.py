"""Numba's threading layer: darknetpy makes the TBB layer loadable when the tbb package
is installed, leaves a layer the user chose alone, and computes the same bits on every
layer (the work split changes with the layer, never an output's order of operations)."""
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kit

REPO = Path(__file__).resolve().parents[1]


def _tbb_installed():
    try:
        importlib.metadata.distribution("tbb")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_tbb = pytest.mark.skipif(not _tbb_installed(), reason="the tbb package is not installed (pip install tbb)")

LAYER = "import darknetpy, numba; numba.get_num_threads(); print(numba.threading_layer())"

# the YOLOv2 kit's yolov2 at 128x128 (convolutions wide and narrow, maxpools, route,
# reorg, region), random weights
SMALL_CFG = kit.KIT / "cfg-small" / "yolov2-128.cfg"
PROGRAM = """
import hashlib, sys
import numpy as np, numba
import darknetpy
numba.set_num_threads(2)
net = darknetpy.load(sys.argv[1])
rng = np.random.default_rng(1)
for layer in net.layers:
    if layer.type == "convolutional":
        layer.weights[...] = rng.standard_normal(layer.weights.shape).astype(np.float32) * 0.1
        layer.biases[...] = rng.standard_normal(layer.biases.shape).astype(np.float32) * 0.1
x = rng.random(net.layers[0].in_shape, dtype=np.float32)
outs = net.forward_layers(x)
print(numba.threading_layer(), hashlib.sha256(b"".join(o.tobytes() for o in outs)).hexdigest())
"""

def _omp_available():
    try:
        from numba.np.ufunc import omppool  # noqa: F401
        return True
    except ImportError:
        return False


def run(code, env_extra=None, *args):
    env = dict(os.environ)
    env.pop("NUMBA_THREADING_LAYER", None)
    env.update(env_extra or {})
    p = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.split()


@needs_tbb
def test_tbb_is_the_layer_when_installed():
    assert run(LAYER) == ["tbb"]


def test_the_users_choice_stands():
    assert run(LAYER, {"NUMBA_THREADING_LAYER": "workqueue"}) == ["workqueue"]


@needs_tbb
def test_tbb_library_found():
    from darknetpy.cpu import parallel
    path = parallel.tbb_library_path()
    assert path is not None and os.path.exists(path)


def test_no_tbb_library_without_the_package(monkeypatch):
    from darknetpy.cpu import parallel

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "files", missing)
    assert parallel.tbb_library_path() is None


@needs_tbb
@pytest.mark.skipif(not SMALL_CFG.is_file(), reason=kit.V2.MISSING)
def test_same_bits_on_every_layer():
    cfg = SMALL_CFG
    layers = ("tbb", "omp", "workqueue") if _omp_available() else ("tbb", "workqueue")
    results = {layer: run(PROGRAM, {"NUMBA_THREADING_LAYER": layer}, str(cfg)) for layer in layers}
    assert {layer: r[0] for layer, r in results.items()} == {layer: layer for layer in results}
    assert len({r[1] for r in results.values()}) == 1
