"""What a new user trips over (issue 21): the command and the Python API, end to end.

The command runs for real in a subprocess, on the tiny synthetic detector of
test_many.py and a tiny classifier written here (seconds each, kernels from the cache).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import kit
from test_many import write_image, write_tiny_model

import darknetpy
from darknetpy import many
from darknetpy.cpu import activations as cpu_activations
from darknetpy.detect import Detection, Box
from darknetpy.errors import (CfgError, DarknetError, DataError, ImageError, WeightsError)
from darknetpy.kernel_cache import NOTICE
from darknetpy.network import Network

ENV = dict(os.environ, NUMBA_NUM_THREADS="1")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CLASSIFIER_CFG = """[net]
width=16
height=16
channels=3

[convolutional]
filters=3
size=3
stride=2
pad=1
activation=leaky

[avgpool]

[softmax]
groups=1
"""


def run(*args, stdin=None, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          env=env or ENV, input=stdin, timeout=600, cwd=cwd)


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("darknetpy: error:")]


def jsonl(text):
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two good images, and a file with an image's name that is not one."""
    root = tmp_path_factory.mktemp("images")
    a = write_image(root / "a.png", 40, 30, 1)
    b = write_image(root / "b.png", 37, 23, 2)
    broken = root / "broken.png"
    broken.write_bytes(b"not a png")
    return a, b, broken


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A 3-class classifier (conv, avgpool, softmax), its names, its .data (top=2)."""
    root = tmp_path_factory.mktemp("classifier")
    cfg = root / "cls.cfg"
    cfg.write_text(CLASSIFIER_CFG)
    rng = np.random.default_rng(3)
    weights = root / "cls.weights"
    weights.write_bytes(np.array([0, 2, 0], "<i4").tobytes() + bytes(8)
                        + np.concatenate([rng.normal(0, 0.5, 3), rng.normal(0, 0.5, 81)]).astype("<f4").tobytes())
    (root / "cls.names").write_text("cat\ndog\nbird\n")
    data = root / "cls.data"
    data.write_text(f"classes=3\nnames={root / 'cls.names'}\ntop=2\n")
    return data, cfg, weights


# ---------------------------------------------------------------------------
# 1. cold start
# ---------------------------------------------------------------------------

AVGPOOL_CFG = "[net]\nwidth=5\nheight=4\nchannels=3\n\n[avgpool]\n"


def test_compiling_kernels_says_so_once_and_only_when_compiling(tmp_path):
    """An empty Numba cache: one line on stderr while kernels compile; the next run,
    which loads them, is silent about it."""
    cfg = tmp_path / "avg.cfg"
    cfg.write_text(AVGPOOL_CFG)
    env = dict(ENV, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    first = run("summary", cfg, "--profile", "--repeat", "1", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines().count(NOTICE) == 1, first.stderr
    again = run("summary", cfg, "--profile", "--repeat", "1", env=env)
    assert again.returncode == 0 and NOTICE not in again.stderr, again.stderr


COUNT_COMPILES = """
import collections, json, sys
import numpy as np
from numba.core import event
counts = collections.defaultdict(list)

class Count(event.Listener):
    def on_start(self, ev):
        d = ev.data["dispatcher"]
        counts[d.py_func.__module__ + "." + d.py_func.__qualname__].append(str(ev.data["args"]))

    def on_end(self, ev):
        pass

event.register("numba:compile", Count())
from darknetpy.network import Network
net = Network(sys.argv[1], None, warn=None)
assert net.fused_pools, "the first pair should run fused"
net.forward(np.zeros(net.options.input_shape, np.float32))
print(json.dumps(counts))
"""


@pytest.mark.slow
def test_no_kernel_is_compiled_twice_for_one_network(tmp_path):
    """An empty cache: a convolution fused with its maxpool and narrow convolutions after
    it share the GEMM and epilogue kernels, each compiled once (a literal argument, or the
    prange index's unsigned type, used to make a second specialisation of gemm_block and
    others, about a minute of compiling); once per activation where it takes one (an
    Activation is a literal by design)."""
    cfg = tmp_path / "two_paths.cfg"
    cfg.write_text("[net]\nwidth=256\nheight=256\nchannels=3\n\n"
                   "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n\n"
                   "[maxpool]\nsize=2\nstride=2\n\n"
                   "[convolutional]\nbatch_normalize=1\nfilters=16\nsize=3\nstride=4\npad=1\nactivation=leaky\n\n"
                   "[maxpool]\nsize=2\nstride=1\n\n"
                   "[convolutional]\nfilters=16\nsize=1\nstride=1\nactivation=linear\n")
    env = dict(ENV, NUMBA_NUM_THREADS="2", NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", COUNT_COMPILES, str(cfg)], capture_output=True, text=True, env=env,
                       timeout=1200)
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout.splitlines()[-1])
    assert len(counts["darknetpy.cpu.gemm_blocking.gemm_block"]) == 1
    literal_on_purpose = {"darknetpy.cpu.gemm_blocking._chunk_within"}   # constants typed as literals by design
    # an activation's own function is typed at each kernel that inlines it (`activate`'s overload)
    literal_on_purpose |= {f"darknetpy.cpu.activations._{name}" for name in cpu_activations.CODES}
    activation = re.compile(r"Literal\[int\]\(([0-9]|1[0-3])\)")
    twice = {name: sigs for name, sigs in counts.items() if len(sigs) > 1 and name.startswith("darknetpy")
             and name not in literal_on_purpose
             and (len(set(sigs)) < len(sigs) or len({activation.sub("Activation", s) for s in sigs}) > 1)}
    assert twice == {}
    epilogues = counts["darknetpy.cpu.activations.batchnorm_bias_activate_kernel"]
    assert sorted(activation.search(s).group(1) for s in epilogues) == ["3", "7"]   # linear, leaky


@pytest.mark.slow
def test_compile_verb_leaves_nothing_for_the_first_detect(tiny, tmp_path):
    cfg, weights = tiny
    image = tmp_path / "dog.jpg"
    import cv2
    cv2.imwrite(str(image), (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8))
    env = dict(ENV, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    r = run("compile", cfg, env=env)
    assert r.returncode == 0 and "ready in" in r.stderr, r.stderr
    r = run("detect", cfg, weights, image, "--no-draw", env=env)
    assert r.returncode == 0, r.stderr
    assert NOTICE not in r.stderr


SMALL_DETECTOR_CFG = """[net]
width=256
height=256
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=1

[convolutional]
size=1
stride=1
pad=1
filters=14
activation=linear

[region]
anchors=1,1,2,2
bias_match=1
classes=2
coords=4
num=2
softmax=1
"""

LIST_COMPILES = """
import json, sys, time
from numba.core import event
compiled = []

class Names(event.Listener):
    def on_start(self, ev):
        d = ev.data["dispatcher"]
        compiled.append(d.py_func.__module__ + "." + d.py_func.__qualname__)

    def on_end(self, ev):
        pass

event.register("numba:compile", Names())
from darknetpy import kernel_cache
from darknetpy.network import Network
cfg, what = sys.argv[1:3]
net = Network(cfg, None, warn=None)
if what == "prepare":
    kernel_cache.prepare(net, cfg, "darknet", None)
    main = sorted(set(compiled))
    del compiled[:]
    dets = net.detect(sys.argv[3])
    print(json.dumps({"main": main, "after": sorted(set(compiled)), "lines": len(dets)}))
else:
    kernel_cache.compile_part(net, what)
    print(json.dumps(sorted({n for n in compiled if n.startswith("darknetpy")})))
"""


def _list_compiles(cfg, what, cache, *more):
    env = dict(ENV, NUMBA_NUM_THREADS="2", NUMBA_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, "-c", LIST_COMPILES, str(cfg), what, *map(str, more)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _listed(proc):
    out, err = proc.communicate(timeout=1200)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])


CACHE_PATH = "from darknetpy import kernel_cache; print(kernel_cache._probe._cache._cache_path)"
SAVE_LOCKED = "from darknetpy import kernel_cache; kernel_cache.lock_cache_files(); kernel_cache._probe(1)"


def test_cache_index_updates_wait_for_the_lock(tmp_path):
    """kernel_cache.lock_cache_files: a process saving a kernel to the cache waits while
    another holds the cache folder's lock (two processes compiling at once cannot number
    two signatures' files alike), and saves once it is released."""
    import fcntl
    env = dict(ENV, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", CACHE_PATH], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    folder = r.stdout.strip()
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "darknetpy.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        child = subprocess.Popen([sys.executable, "-c", SAVE_LOCKED], env=env, stderr=subprocess.PIPE, text=True)
        time.sleep(8)
        assert child.poll() is None
        assert not [f for f in os.listdir(folder) if f.endswith(".nbi")]
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert child.wait(timeout=120) == 0, child.stderr.read()
    assert [f for f in os.listdir(folder) if f.endswith(".nbi")]


@pytest.mark.slow
def test_the_compile_parts_split_the_work(tmp_path):
    """A first run compiles its parts at once, in processes of their own
    (kernel_cache.prepare): each with an empty cache of its own, the side part (the JPEG
    decoder, the region layer, NMS) compiles no kernel that a convolution part does; the
    fused convolutions and the others each compile their own parallel kernels, and share
    only the GEMM's inner ones."""
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_DETECTOR_CFG)
    procs = {part: _list_compiles(cfg, part, tmp_path / part) for part in ("pooled", "convolutions", "side")}
    pooled, plain, side = (set(_listed(procs[part])) for part in ("pooled", "convolutions", "side"))
    assert {"darknetpy.detect._region_kernel", "darknetpy.detect._nms_kernel"} <= side
    assert any(name.startswith("darknetpy.jpeg.") for name in side), side
    assert side & (pooled | plain) == set()
    assert "darknetpy.cpu.gemm_blocking.gemm_block" in pooled & plain
    assert "darknetpy.cpu.convolution._pooled" in pooled - plain
    assert "darknetpy.cpu.gemm_blocking.gemm_parallel" in plain - pooled


@pytest.mark.slow
def test_a_first_detect_compiles_the_rest_in_children(tmp_path):
    """An empty cache: `prepare` compiles the fused convolutions in this process and
    waits for the children that compile the rest, after which the detection itself
    compiles nothing (everything loads from the cache) and this process compiled none of
    the children's parallel kernels. The next process finds the cache warm and starts no
    child."""
    import cv2
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_DETECTOR_CFG)
    image = tmp_path / "dog.jpg"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8))
    first = _listed(_list_compiles(cfg, "prepare", tmp_path / "cache", image))
    assert "darknetpy.cpu.convolution._pooled" in first["main"]
    assert not [n for n in first["main"] if n.startswith(("darknetpy.jpeg.", "darknetpy.detect."))
                or n == "darknetpy.cpu.gemm_blocking.gemm_parallel"], first["main"]
    assert [n for n in first["after"] if n.startswith("darknetpy")] == []
    again = _listed(_list_compiles(cfg, "prepare", tmp_path / "cache", image))
    assert again == {"main": [], "after": [], "lines": first["lines"]}


# ---------------------------------------------------------------------------
# 2. --json - is JSON, with the same schema for every kind of input
# ---------------------------------------------------------------------------

def test_json_to_stdout_with_image_files_is_only_json(tiny, images):
    cfg, weights = tiny
    a, b, _ = images
    files = run("detect", cfg, weights, a, b, "-thresh", "0.2", "--json", "-")
    assert files.returncode == 0, files.stderr
    records = jsonl(files.stdout)            # every line parses
    assert [r["path"] for r in records] == [str(a), str(b)]
    folder = run("detect", cfg, weights, a.parent, "-thresh", "0.2", "--json", "-")
    by_path = {r["path"]: r for r in jsonl(folder.stdout)}
    for r in records:
        assert set(r) == set(by_path[r["path"]]) == {"path", "width", "height", "detections"}
        assert r == by_path[r["path"]]


# ---------------------------------------------------------------------------
# 3. a list of image files runs through the folder's pipeline
# ---------------------------------------------------------------------------

def test_file_list_with_missing_and_broken_files(tiny, images, tmp_path):
    cfg, weights = tiny
    a, b, broken = images
    out = tmp_path / "out.jsonl"
    r = run("detect", cfg, weights, a, tmp_path / "missing.png", broken, b, "-thresh", "0.2", "--json", out)
    assert r.returncode == 1, r.stderr
    records = jsonl(out.read_text())
    assert [r_["path"] for r_ in records] == [str(a), str(tmp_path / "missing.png"), str(broken), str(b)]
    assert [("error" in r_) for r_ in records] == [False, True, True, False]
    assert "No such file" in records[1]["error"]
    assert len(error_lines(r.stderr)) == 2
    assert "darknetpy: 4 images, 2 failed" in r.stderr


def test_file_list_ctrl_c_keeps_every_finished_line(tiny, images, tmp_path):
    cfg, weights = tiny
    a, b, _ = images
    out = tmp_path / "out.jsonl"
    paths = [a, b] * 1000
    proc = subprocess.Popen([sys.executable, "-m", "darknetpy", "detect", str(cfg), str(weights), *map(str, paths),
                             "--json", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    text = out.read_text()
    assert text.endswith("\n")
    records = jsonl(text)
    assert 3 <= len(records) < len(paths)
    assert [r["path"] for r in records] == [str(p) for p in paths[:len(records)]]
    assert f"interrupted after {len(records)} images" in err


# ---------------------------------------------------------------------------
# 4, 5. the classifier
# ---------------------------------------------------------------------------

def test_classifier_predict_with_a_detector_is_one_line(tiny, images, classifier):
    cfg, weights = tiny
    data, _, _ = classifier
    r = run("classifier", "predict", data, cfg, weights, images[0])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert error_lines(r.stderr) == [f"darknetpy: error: {cfg}: not a classifier: layer 2 is [region], a "
                                     f"detector's (use detect or detector test)"]
    with pytest.raises(DarknetError, match="not a classifier"):
        Network(cfg, weights, warn=None).classify(str(images[0]))


def test_classifier_predict_names_each_input_and_writes_json(classifier, images, tmp_path):
    data, cfg, weights = classifier
    a, b, broken = images
    one = run("classifier", "predict", data, cfg, weights, a)
    assert one.returncode == 0, one.stderr
    lines = one.stdout.splitlines()
    assert len(lines) == 2 and all(": " in line and line.split(": ")[1] in ("cat", "dog", "bird") for line in lines)
    assert f"{a}: Predicted in " in one.stderr          # Darknet writes it on stderr

    several = run("classifier", "predict", data, cfg, weights, a, b)
    assert several.returncode == 0, several.stderr
    assert several.stdout.splitlines() == [f"{a}: {line}" for line in lines] + [
        line for line in several.stdout.splitlines() if line.startswith(f"{b}: ")]
    assert sum(line.startswith(f"{b}: ") for line in several.stdout.splitlines()) == 2

    folder = run("classifier", "predict", data, cfg, weights, a.parent, "--json", "-")
    assert folder.returncode == 1, folder.stderr            # broken.png
    records = {r["path"]: r for r in jsonl(folder.stdout)}
    assert set(records) == {str(a), str(b), str(broken)}
    top = records[str(a)]["top"]
    assert [t["label"] for t in top] == [line.split(": ")[1] for line in lines]
    assert ["%5.2f%%" % (100 * t["prob"]) for t in top] == [line.split(": ")[0] for line in lines]
    assert records[str(a)]["width"] == 40 and "error" in records[str(broken)]


# ---------------------------------------------------------------------------
# 6. weights that belong to another model
# ---------------------------------------------------------------------------

def test_weights_far_larger_than_the_cfg_reads(tiny, images, tmp_path):
    cfg, weights = tiny
    size = weights.stat().st_size
    other = tmp_path / "other.weights"
    other.write_bytes(weights.read_bytes() + bytes(4 * 10_000))
    r = run("detect", cfg, other, images[0], "--no-draw")
    assert r.returncode == 2 and "Predicted in" not in r.stdout
    assert error_lines(r.stderr) == [
        f"darknetpy: error: {other}: {size + 40_000} bytes, but {cfg} reads {size}: probably the weights of another "
        f"model (to read the first {size} bytes anyway: --allow-extra-weights, or allow_extra_weights=True in "
        f"Python)"]
    with pytest.raises(WeightsError, match="probably the weights of another model"):
        Network(cfg, other, warn=None)
    anyway = run("detect", cfg, other, images[0], "--no-draw", "--allow-extra-weights")
    assert anyway.returncode == 0 and "40000 trailing bytes" in anyway.stderr, anyway.stderr
    few = tmp_path / "few.weights"
    few.write_bytes(weights.read_bytes() + bytes(8))
    r = run("detect", cfg, few, images[0], "--no-draw")
    assert r.returncode == 0 and "warning: " in r.stderr and "8 trailing bytes" in r.stderr


# ---------------------------------------------------------------------------
# 7. outputs checked before the work
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--outdir", "--json", "-out"])
def test_unwritable_outputs_fail_before_the_work(tiny, images, tmp_path, flag):
    cfg, weights = tiny
    a, b, _ = images
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "sub" / ("x.jsonl" if flag == "--json" else "x")
    inputs = [a] if flag == "-out" else [a, b, a, b, a]
    r = run("detect", cfg, weights, *inputs, flag, target)
    assert r.returncode == 2, r.stderr
    assert len(error_lines(r.stderr)) == 1 and str(blocker) in r.stderr, r.stderr
    assert "Predicted in" not in r.stdout and "layer" not in r.stderr


# ---------------------------------------------------------------------------
# 8. "Predicted in" is the forward pass
# ---------------------------------------------------------------------------

class SlowHeadNetwork:
    """A stand-in network whose forward pass takes 0.125 s (as it reports) and whose
    decoding takes 0.3 s more: "Predicted in" must say 0.125, as Darknet times only
    network_predict."""

    width = height = 8
    classes = 1

    def require_detector(self):
        pass

    def detect_inputs(self, xs, sizes, *args, seconds=None, **kwargs):
        time.sleep(0.3)
        if seconds is not None:
            seconds.append(0.125 * len(xs))
        return [[] for _ in xs]


def test_predicted_in_is_the_forward_pass_only(images, capsys):
    status = many.run_many(SlowHeadNetwork(), ["thing"], many.plan_inputs([str(images[0])]), progress=False)
    assert status == 0
    out = capsys.readouterr().out
    assert out == f"{images[0]}: Predicted in 0.125000 seconds.\n"


def test_predicted_in_keeps_the_forward_pass_when_decoding_compiles(images, capsys, monkeypatch):
    """A first run compiles the decoding's kernels (region, NMS) after the forward pass:
    that time is not the forward pass's and must not be taken off it (it printed 0)."""
    from darknetpy import kernel_clock
    clock = {"s": 0.0}
    monkeypatch.setattr(kernel_clock, "kernel_seconds", lambda: clock["s"])

    class CompilingHead(SlowHeadNetwork):
        def detect_inputs(self, xs, sizes, *args, seconds=None, **kwargs):
            clock["s"] += 0.3
            return super().detect_inputs(xs, sizes, *args, seconds=seconds, **kwargs)

    assert many.run_many(CompilingHead(), ["thing"], many.plan_inputs([str(images[0])]), progress=False) == 0
    assert capsys.readouterr().out == f"{images[0]}: Predicted in 0.125000 seconds.\n"


def test_predicted_in_leaves_out_the_forward_passs_own_compilation(monkeypatch):
    """Kernels compiled (or loaded) inside the forward pass are left out of its time."""
    from darknetpy import network
    clock = iter([2.0, 2.4])
    monkeypatch.setattr(network, "kernel_seconds", lambda: next(clock))
    seconds = []
    Network._timed(lambda xs: time.sleep(0.5), None, seconds)
    assert 0.09 <= seconds[0] < 0.4, seconds


# ---------------------------------------------------------------------------
# 9. flags
# ---------------------------------------------------------------------------

def test_double_dash_forms_of_darknets_flags(tiny, images, tmp_path):
    cfg, weights = tiny
    a = images[0]
    single = run("detect", cfg, weights, a, "-thresh", "0.3", "-hier", "0.4", "-nms", "0.3", "-out", tmp_path / "s")
    double = run("detect", cfg, weights, a, "--thresh", "0.3", "--hier", "0.4", "--nms", "0.3", "--out",
                 tmp_path / "d")
    assert single.returncode == double.returncode == 0, double.stderr
    strip = [line for line in single.stdout.splitlines() if "Predicted in" not in line]
    assert strip and strip == [line for line in double.stdout.splitlines() if "Predicted in" not in line]
    assert (tmp_path / "s.jpg").read_bytes() == (tmp_path / "d.jpg").read_bytes()
    typo = run("detect", cfg, weights, a, "--thersh", "0.3")
    assert typo.returncode == 2 and "usage: darknetpy detect" in typo.stderr and "did you mean --thresh" in typo.stderr


def test_version_and_help_of_every_verb():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"darknetpy {darknetpy.__version__}"
    r = run("detector", "--help")
    for verb in ("test", "valid", "recall", "map", "calc_anchors"):
        assert f"    {verb}" in r.stdout, r.stdout
    import argparse

    from darknetpy.cli import build_parser

    def undocumented(p, name):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for verb, sub in action.choices.items():
                    yield from undocumented(sub, f"{name} {verb}")
            elif not action.help:
                yield f"{name}: {action.dest}"
        if not p.description and name.count(" ") >= 1 and name not in ("darknetpy detector", "darknetpy classifier"):
            yield f"{name}: no description"

    assert list(undocumented(build_parser(), "darknetpy")) == []


def test_a_missing_argument_is_named(tiny):
    cfg, _ = tiny
    r = run("detect", cfg)
    assert r.returncode == 2 and r.stderr.splitlines()[-1].endswith("the following arguments are required: WEIGHTS")


def test_quiet_singular_and_frames(tiny, images, tmp_path):
    cfg, weights = tiny
    r = run("detect", cfg, weights, images[0], "--no-draw")
    assert "layer     filters" in r.stderr and "darknetpy: 1 image, 0 failed" in r.stderr
    quiet = run("detect", cfg, weights, images[0], "--no-draw", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    from test_many import write_video

    video = write_video(tmp_path / "clip.avi", frames=4)
    r = run("detect", cfg, weights, video, "--every", "2")
    assert r.returncode == 0 and "darknetpy: 2 frames, 0 failed" in r.stderr and "frames/s" in r.stderr


# ---------------------------------------------------------------------------
# 10. -out
# ---------------------------------------------------------------------------

def test_out_names_one_images_drawing_only(tiny, images, tmp_path):
    cfg, weights = tiny
    a, b, _ = images
    one = run("detect", cfg, weights, a, "-out", tmp_path / "one", cwd=tmp_path)
    assert one.returncode == 0 and (tmp_path / "one.jpg").is_file(), one.stderr
    default = run("detect", cfg, weights, a, cwd=tmp_path)
    assert default.returncode == 0 and (tmp_path / "predictions.jpg").is_file()
    for inputs in ([a, b], [a.parent]):
        r = run("detect", cfg, weights, *inputs, "-out", tmp_path / "many", cwd=tmp_path)
        assert r.returncode == 2 and "use --outdir DIR" in r.stderr, r.stderr
    assert not list(tmp_path.glob("many*"))
    several = run("detect", cfg, weights, a, b, cwd=tmp_path)
    assert several.returncode == 0 and sorted(p.name for p in tmp_path.glob("*.jpg")) == ["one.jpg",
                                                                                          "predictions.jpg"]
    assert "several inputs are drawn only with --outdir DIR" in " ".join(run("detect", "--help").stdout.split())


# ---------------------------------------------------------------------------
# 11. the Python API
# ---------------------------------------------------------------------------

def test_detections_are_json_ready_with_labels_and_pixel_boxes(tiny, images):
    cfg, weights = tiny
    net = darknetpy.load(str(cfg), str(weights), names=["cat", "dog"])
    assert net.names == ["cat", "dog"]
    dets = net.detect(str(images[0]), thresh=0.2)
    assert dets
    d = dets[0]
    assert d.label == ["cat", "dog"][d.best_class]
    record = json.loads(json.dumps(d.to_dict(0.2)))
    assert record["label"] == d.label and record["prob"] == float(d.best_prob)
    assert (record["box"]["left"], record["box"]["top"], record["box"]["right"],
            record["box"]["bottom"]) == d.box_pixels == d.pixel_box(40, 30)
    cli = many.detection_dicts(dets, net.names, 0.2, 40, 30)[0]
    assert cli["box"] == record["box"] and cli["bbox"] == record["bbox"]
    plain = Detection(0, Box(np.float32(0.5), np.float32(0.5), np.float32(0.25), np.float32(0.5)), np.float32(0.9),
                      2, {1: np.float32(0.7)})
    assert plain.label == "1" and plain.pixel_box(100, 50) == (37, 12, 62, 37)
    with pytest.raises(ValueError, match="pixel_box"):
        plain.box_pixels


def test_default_names_come_from_beside_the_cfg(tmp_path):
    cfg = tmp_path / "cfg" / "c80.cfg"
    cfg.parent.mkdir()
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n\n[convolutional]\nfilters=425\nsize=1\n"
                   "activation=linear\n\n[region]\nanchors=1,1\nclasses=80\ncoords=4\nnum=5\nsoftmax=1\n")
    assert Network(cfg, None, warn=None).names == [str(i) for i in range(80)]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "coco.names").write_text("".join(f"n{i}\n" for i in range(80)))
    assert Network(cfg, None, warn=None).names[79] == "n79"


@pytest.mark.parametrize("kind", ["cfg", "weights", "image", "names"])
def test_missing_files_are_also_file_not_found(tiny, tmp_path, kind):
    cfg, weights = tiny
    missing = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError) as e:
        if kind == "cfg":
            Network(missing, None, warn=None)
        elif kind == "weights":
            Network(cfg, missing, warn=None)
        elif kind == "image":
            Network(cfg, weights, warn=None).detect(missing + ".png")
        else:
            Network(cfg, weights, warn=None).names = missing
    assert isinstance(e.value, {"cfg": CfgError, "weights": WeightsError, "image": ImageError,
                                "names": DataError}[kind])
    assert "\n" not in str(e.value) and str(e.value).startswith(missing) and e.value.filename.startswith(missing)


def test_device_errors_and_untrained_networks(tiny):
    cfg, _ = tiny
    with pytest.raises(DarknetError) as e:
        darknetpy.load(str(cfg), device="gpu")
    assert str(e.value) == "invalid device 'gpu': use 'cpu', or 'cuda:N' for CUDA device N"
    assert "zero" in darknetpy.load.__doc__ and "untrained" in darknetpy.load.__doc__
    assert "untrained" in repr(darknetpy.load(str(cfg)))


@pytest.mark.slow
@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
@pytest.mark.skipif(not kit.V3.available(), reason=kit.V3.MISSING)
def test_readme_python_api_runs_as_written(tmp_path):
    """The README's Python example, in a folder laid out as `darknetpy download` lays it
    out (the kits' cfg files and data/, their yolov2, darknet19 and yolov3 weights in
    weights/)."""
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    code = readme.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "cfg").mkdir()
    for cfg in [*(kit.KIT / "darknet" / "cfg").iterdir(), kit.V3.root / "darknet" / "cfg" / "yolov3.cfg"]:
        (tmp_path / "cfg" / cfg.name).symlink_to(cfg)
    (tmp_path / "data").symlink_to(kit.KIT / "darknet" / "data")
    (tmp_path / "weights").mkdir()
    for name in ("yolov2", "darknet19"):
        (tmp_path / "weights" / f"{name}.weights").symlink_to(kit.weights(f"{name}.weights"))
    v3_weights = kit.V3.model("yolov3-416")["weights"]
    (tmp_path / "weights" / "yolov3.weights").symlink_to(kit.V3.weights(v3_weights))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=ENV,
                       timeout=1200)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("['person', 'bicycle', 'car']\n")
    assert (tmp_path / "predictions.jpg").is_file()


def test_readme_documents_the_api():
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    for name in ("draw_detections", "to_dict", "d.label", "box_pixels", "net.names", "FileNotFoundError"):
        assert name in readme, name


# ---------------------------------------------------------------------------
# 12. names files
# ---------------------------------------------------------------------------

def write_data(folder, text):
    data = folder / "t.data"
    data.write_text(text)
    return data


def test_data_without_names_says_so(tiny, images, tmp_path):
    cfg, weights = tiny
    data = write_data(tmp_path, "classes=2\n")
    r = run("detector", "test", data, cfg, weights, images[0], "--no-draw", cwd=tmp_path)
    assert r.returncode == 2
    assert error_lines(r.stderr) == [f"darknetpy: error: {data}: no names= line (the file of class names, one per "
                                     f"line; Darknet would read data/names.list, which is not there either)"]


def test_names_count_checks_name_the_file(tiny, images, tmp_path):
    cfg, weights = tiny
    few = tmp_path / "few.names"
    few.write_text("one\n")
    r = run("detector", "test", write_data(tmp_path, f"names={few}\n"), cfg, weights, images[0], "--no-draw")
    assert r.returncode == 2 and error_lines(r.stderr) == [
        f"darknetpy: error: {few}: 1 names, but {cfg} has 2 classes"]
    many_ = tmp_path / "many.names"
    many_.write_text("".join(f"n{i}\n" for i in range(5)))
    r = run("detector", "test", write_data(tmp_path, f"names={many_}\n"), cfg, weights, images[0], "--no-draw")
    assert r.returncode == 0
    assert f"darknetpy: warning: {many_}: 5 names for the 2 classes of {cfg} (the first 2 are used)" in r.stderr


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_names_line_names_the_file_used(tmp_path):
    """detect run away from the cfg's folder: the COCO names are found beside the cfg,
    and the line says which file that is."""
    used = kit.KIT / "darknet" / "data" / "coco.names"
    r = run("detect", kit.cfg_path("yolov2-tiny"), kit.weights("yolov2-tiny.weights"), cwd=tmp_path, stdin="")
    assert r.returncode == 0, r.stderr
    assert f"80 classes: using the COCO names from {used}\n" in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# 13. small things
# ---------------------------------------------------------------------------

def test_dump_removes_a_larger_networks_layer_files(tiny, images, tmp_path):
    cfg, weights = tiny
    out = tmp_path / "dump"
    out.mkdir()
    for i in range(3, 20):
        (out / f"layer_{i:03d}.npy").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    r = run("dump", cfg, weights, images[0], "-o", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["input.npy", "layer_000.npy", "layer_001.npy", "layer_002.npy",
                                                      "layers.json", "notes.txt"]


def test_failed_download_leaves_no_empty_folder(tmp_path):
    import socket

    from darknetpy import download as dl

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "data").mkdir()
    with pytest.raises(DarknetError):
        dl.download(["yolov2-tiny"], str(tmp_path), mirror=f"http://127.0.0.1:{port}", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]      # cfg/ removed, data/ was there before


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_download_hands_the_cfgs_over_before_the_weights(tmp_path):
    """What `darknetpy download` compiles the kernels from, while the weights download:
    the cfg files, once every file but the weights is in place."""
    from dataclasses import replace

    from darknetpy import download as dl

    mirror, dest = tmp_path / "mirror", tmp_path / "dest"
    files = []
    for spec in dl.model_files(["yolov2-tiny"]):
        target = mirror / spec.path
        target.parent.mkdir(parents=True, exist_ok=True)
        source = kit.KIT / "darknet" / spec.path
        target.write_bytes(source.read_bytes() if source.is_file() else b"weights" * 100)
        files.append(replace(spec, size=None, sha256=None))
    catalogue = {"yolov2-tiny": dl.Model("yolov2-tiny", tuple(files))}
    seen = []

    def before_weights(cfgs):
        seen.append((cfgs, sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())))

    dl.download(["yolov2-tiny"], str(dest), mirror=str(mirror), progress=False, catalogue=catalogue,
                before_weights=before_weights)
    assert len(seen) == 1
    cfgs, present = seen[0]
    assert cfgs == [str(dest / "cfg" / "yolov2-tiny.cfg")]
    assert "cfg/yolov2-tiny.cfg" in present and not any(p.startswith("weights/") for p in present)
    assert (dest / "weights" / "yolov2-tiny.weights").is_file()
