"""Layers whose output is another buffer (a [dropout], a one-source [route]) where the
chain of aliases ends at the network's input, not at a layer (issue 23: the chain once
followed index -1, which Python reads as the last layer, and looped forever).

The CLI runs in a subprocess with a timeout, so that a hang fails the test; the Python
API runs here under an alarm that raises in the looping code (a Python loop sees it)."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from darknetpy import DarknetError, load

ENV = dict(os.environ, NUMBA_NUM_THREADS="2")
TIMEOUT = 120  # seconds; each of these runs takes about one (a hang fails, a cold Numba cache does not)
NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"
CONV = "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=leaky\n"

# name: (cfg after [net], the layers whose output is the network's input)
CFGS = {
    "dropout": ("[dropout]\n", [0]),
    "dropout-then-cost": ("[dropout]\nprobability=0.54\n[cost]\n", [0]),
    "dropout-dropout": ("[dropout]\n[dropout]\n", [0, 1]),
    "route-to-dropout": ("[dropout]\n[route]\nlayers=0\n", [0, 1]),
    "route-over-layers": (f"[dropout]\n{CONV}[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-3\n[cost]\n", [0, 3]),
}


def run(*args):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=TIMEOUT)


@pytest.fixture
def files(tmp_path, name):
    """The cfg's weights (the convolution's 2 biases and 54 weights, if it has one) and a small image."""
    import cv2

    rng = np.random.default_rng(1)
    weights = tmp_path / "w.weights"
    floats = rng.standard_normal(56 * CFGS[name][0].count("[convolutional]"), np.float32)
    weights.write_bytes(np.array([0, 2, 0], "<i4").tobytes() + bytes(8) + floats.astype("<f4").tobytes())
    image = tmp_path / "i.png"
    cv2.imwrite(str(image), rng.integers(0, 256, (20, 30, 3), np.uint8))
    return weights, image


def _cfg(tmp_path, name):
    path = tmp_path / f"{name}.cfg"
    path.write_text(NET + CFGS[name][0])
    return path


@pytest.fixture
def watchdog():
    def hang(signum, frame):
        raise TimeoutError(f"still running after {TIMEOUT} s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_the_issues_cfg_gives_its_summary(tmp_path):
    cfg = tmp_path / "seed.cfg"
    cfg.write_text("[net]\nwidth=21\nheight=2\nchannels=1\n[dropout]\nprobability=0.54\n")
    r = run("summary", cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "    0 dropout       p = 0.54                 42  ->    42"


@pytest.mark.parametrize("name", CFGS)
def test_summary(tmp_path, name):
    r = run("summary", _cfg(tmp_path, name))
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == CFGS[name][0].count("[") + 2


@pytest.mark.parametrize("name", CFGS)
def test_detect_says_not_a_detector(tmp_path, name, files):
    weights, image = files
    r = run("detect", _cfg(tmp_path, name), weights, image, "--no-draw")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1].endswith("[region] or [yolo]: not a detector")


@pytest.mark.parametrize("name", CFGS)
def test_dump_writes_the_input_for_the_aliases(tmp_path, name, files):
    weights, image = files
    out = tmp_path / "out"
    r = run("dump", _cfg(tmp_path, name), weights, image, "-o", out)
    assert r.returncode == 0, r.stderr
    index = json.loads((out / "layers.json").read_text())
    assert len(index["layers"]) == CFGS[name][0].count("[")
    x = np.load(out / "input.npy")
    for i in CFGS[name][1]:
        assert np.array_equal(np.load(out / f"layer_{i:03d}.npy").reshape(-1), x.reshape(-1))


def test_a_route_cannot_alias_the_input_itself(tmp_path):
    """A route names earlier layers only, so as the first layer it is a cfg error."""
    for layers in ("-1", "0"):
        cfg = tmp_path / "route.cfg"
        cfg.write_text(f"{NET}[route]\nlayers={layers}\n")
        r = run("summary", cfg)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert "which is not an earlier layer" in r.stderr


@pytest.mark.parametrize("numerics", ["darknet", "fast"])
@pytest.mark.parametrize("name", CFGS)
def test_python_api(tmp_path, name, numerics, files, watchdog):
    weights, image = files
    net = load(str(_cfg(tmp_path, name)), str(weights), numerics=numerics)
    x = net.load_input(str(image))
    assert np.array_equal(net.forward(x).reshape(-1), x.reshape(-1))
    kept, dropped = net.forward_layers(x), net.forward_layers(x, keep=False)
    for i in CFGS[name][1]:
        assert np.array_equal(kept[i], x.reshape(-1))
    assert np.array_equal(dropped[net.output_layer.index], x.reshape(-1))
    # the output layer's buffer is the input's: nothing of the arena holds it
    assert net.output_layer.index not in net.executor.arena_plan()
    with pytest.raises(DarknetError, match="not a detector"):
        net.detect(image)
