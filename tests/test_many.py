"""Many inputs on one machine (darknetpy/many.py and `darknetpy detect PATH...`).

Most tests use a tiny synthetic detector (two convolutions and a [region] on a 32x32
input, weights written here with numpy) so that they run in seconds; the identity with the
one-image path is also checked on the kit's yolov2-tiny where the kit is present.
"""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import kit
from darknetpy import many
from darknetpy.network import Network

ENV = dict(os.environ, NUMBA_NUM_THREADS="1")
THRESH = "0.2"

TINY_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
filters=4
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=14
size=1
activation=linear

[region]
anchors=1,1, 3,2
classes=2
coords=4
num=2
softmax=1
"""


def write_tiny_model(folder):
    """TINY_CFG and a weights file of seeded random values, in `folder`."""
    cfg = folder / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    rng = np.random.default_rng(7)
    arrays = [rng.normal(0, 0.1, 4), rng.normal(0, 0.5, 4 * 3 * 9), rng.normal(0, 0.3, 14), rng.normal(0, 0.8, 14 * 4)]
    weights = folder / "tiny.weights"
    weights.write_bytes(np.array([0, 2, 0], "<i4").tobytes() + bytes(8)
                        + np.concatenate(arrays).astype("<f4").tobytes())
    return cfg, weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


def write_image(path, w, h, seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    pixels = cv2.GaussianBlur(pixels, (5, 5), 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)
    return path


@pytest.fixture()
def folder(tmp_path):
    """b.png, a.JPG, sub/c.png, sub/deeper/d.bmp, a-z.png, notes.txt (not an image)."""
    root = tmp_path / "images"
    write_image(root / "b.png", 40, 30, 1)
    write_image(root / "a.JPG", 37, 23, 2)
    write_image(root / "sub" / "c.png", 20, 50, 3)
    write_image(root / "sub" / "deeper" / "d.bmp", 33, 33, 4)
    write_image(root / "a-z.png", 45, 20, 5)
    (root / "notes.txt").write_text("not an image")
    return root


def run(*args, stdin=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          env=ENV, input=stdin, timeout=300, cwd=cwd)


def jsonl(path):
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def expected_records(cfg, weights, paths, thresh=float(THRESH)):
    """What the one-image path gives: Network.detect on each image, as --json writes it."""
    net = Network(cfg, weights, warn=None)
    names = [str(i) for i in range(net.classes)]
    out = []
    for p in paths:
        im = net.image(str(p))
        dets = net.detect(im, thresh=thresh)
        out.append(many.detection_dicts(dets, names, thresh, im.shape[2], im.shape[1]))
    return out


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def test_directory_walk_is_recursive_sorted_and_by_extension(folder):
    sources = many.plan_inputs([str(folder)])
    items = list(many.iter_items(sources))
    assert [it.rel for it in items] == ["a-z.png", "a.JPG", "b.png", os.path.join("sub", "c.png"),
                                        os.path.join("sub", "deeper", "d.bmp")]
    assert [it.index for it in items] == list(range(5))
    assert all(os.path.isfile(it.path) for it in items)
    assert many.planned_total(sources) == 5


def test_globs_are_expanded_here_relative_to_their_fixed_folder(folder):
    sources = many.plan_inputs([str(folder / "*" / "*.png"), str(folder / "**" / "*.bmp"), str(folder / "b.png")])
    rels = [it.rel for it in many.iter_items(sources)]
    assert rels == [os.path.join("sub", "c.png"), os.path.join("sub", "deeper", "d.bmp"), "b.png"]


@pytest.mark.parametrize("arg,message", [("empty", "no image files"), ("missing", "no such file"),
                                         ("*.gif", "matches no image")])
def test_usage_errors(tmp_path, arg, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(many.UsageError, match=message):
        many.plan_inputs([str(tmp_path / arg)])


def test_stdin_paths_are_read_lazily(folder):
    class Lines:
        read = 0

        def __iter__(self):
            for p in (folder / "b.png", folder / "a.JPG", "", folder / "none.png"):
                Lines.read += 1
                yield f"{p}\n"

    items = many.iter_items(many.plan_inputs(["-"]), stdin=Lines())
    first = next(items)
    assert first.path == str(folder / "b.png") and Lines.read == 1
    assert [it.path for it in items] == [str(folder / "a.JPG"), str(folder / "none.png")]


def write_video(path, frames=7, size=(48, 36), fps=10.0):
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(write_image_array(size, i))
    writer.release()
    return path


def write_image_array(size, seed):
    rng = np.random.default_rng(100 + seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), (7, 7), 0)


def read_frames(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    cap.release()
    return frames


def test_video_frames_every_k(tmp_path):
    video = write_video(tmp_path / "clip.avi")
    items = list(many.iter_items(many.plan_inputs([str(video)]), every=3))
    assert [it.frame for it in items] == [0, 3, 6]
    assert [it.time for it in items] == [0.0, 0.3, 0.6]
    assert [it.rel for it in items] == [os.path.join("clip", f"frame_{n:06d}.jpg") for n in (0, 3, 6)]
    frames = read_frames(video)
    for it in items:
        assert np.array_equal(it.pixels, frames[it.frame])


# ---------------------------------------------------------------------------
# The bounded prefetch
# ---------------------------------------------------------------------------

def test_prefetch_never_holds_more_than_its_bound():
    pulled = []

    def items():
        for i in range(60):
            pulled.append(i)
            yield i

    def slow_square(i):
        return i * i

    pf = many.Prefetcher(slow_square, items(), workers=3, ahead=4)
    got = []
    with pf:
        for taken, (i, r) in enumerate(pf):
            time.sleep(0.002)  # a slow consumer: the producer would run ahead without the bound
            assert len(pulled) <= taken + 1 + 4 + 1  # what was taken, the bound, one waiting for a slot
            assert pf.held <= 4
            got.append((i, r))
    assert got == [(i, i * i) for i in range(60)]
    assert 1 <= pf.high_water <= 4


def test_prefetch_passes_errors_with_their_item_and_keeps_order():
    def fn(i):
        time.sleep(0.001 * (5 - i % 5))
        if i == 3:
            raise ValueError("three")
        return i

    with many.Prefetcher(fn, range(10), workers=4, ahead=3) as pf:
        out = list(pf)
    assert [i for i, _ in out] == list(range(10))
    assert isinstance(out[3][1], ValueError)
    assert [r for i, r in out if i != 3] == [i for i in range(10) if i != 3]


# ---------------------------------------------------------------------------
# Same results as the one-image path
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size,kind", [(1, "thread"), (3, "thread"), (2, "process")])
def test_detect_many_equals_detect(tiny, folder, batch_size, kind):
    cfg, weights = tiny
    net = Network(cfg, weights, warn=None)
    names = [str(i) for i in range(net.classes)]
    sources = many.plan_inputs([str(folder)])
    paths = [it.path for it in many.iter_items(sources)]
    results = list(many.detect_many(net, many.iter_items(sources), thresh=0.2, batch=batch_size, kind=kind,
                                     workers=2))
    assert [r.item.path for r in results] == paths
    got = [many.detection_dicts(r.dets, names, 0.2, r.width, r.height) for r in results]
    assert got == expected_records(cfg, weights, paths)
    assert any(got)  # the tiny detector does detect something


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_detect_many_equals_detect_on_the_kits_yolov2_tiny():
    net = Network(kit.cfg_path("yolov2-tiny"), kit.weights("yolov2-tiny.weights"), warn=None)
    images = [kit.KIT / "images" / n for n in ("dog.png", "gray_50x40.png", "rgba_41x29.png")]
    items = [many.Item(i, str(p), p.name) for i, p in enumerate(images)]
    results = list(many.detect_many(net, items, thresh=0.25, batch=2))
    for r, p in zip(results, images):
        want = net.detect(str(p), thresh=0.25)
        assert [(d.index, tuple(d.bbox), d.objectness, d.probs) for d in r.dets] == \
               [(d.index, tuple(d.bbox), d.objectness, d.probs) for d in want]


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------

def test_cli_folder_with_a_corrupt_file_in_the_middle(tiny, folder, tmp_path):
    cfg, weights = tiny
    (folder / "b0.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    out = tmp_path / "out.jsonl"
    r = run("detect", cfg, weights, folder, "--json", out, "-thresh", THRESH, "--outdir", tmp_path / "drawn")
    assert r.returncode == 1, r.stderr
    records = jsonl(out)
    assert [os.path.relpath(rec["path"], folder) for rec in records] == [
        "a-z.png", "a.JPG", "b.png", "b0.png", os.path.join("sub", "c.png"), os.path.join("sub", "deeper", "d.bmp")]
    bad = records[3]
    assert "detections" not in bad and "b0.png" in bad["error"]
    good = [rec for rec in records if "error" not in rec]
    assert [rec["detections"] for rec in good] == expected_records(cfg, weights, [rec["path"] for rec in good])
    assert all(set(rec) == {"path", "width", "height", "detections"} for rec in good)
    assert "darknetpy: 6 images, 1 failed," in r.stderr.splitlines()[-1]
    assert sum(line.startswith("darknetpy: error:") for line in r.stderr.splitlines()) == 1
    # Darknet's lines on stdout for each image that ran
    assert sum(": Predicted in " in line for line in r.stdout.splitlines()) == 5
    drawn = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "drawn")
                   for d, _, fs in os.walk(tmp_path / "drawn") for f in fs)
    assert drawn == sorted(["a-z.png", "a.JPG", "b.png", os.path.join("sub", "c.png"),
                            os.path.join("sub", "deeper", "d.bmp")])
    assert cv2.imread(str(tmp_path / "drawn" / "sub" / "c.png")).shape == (50, 20, 3)


def test_cli_matches_the_one_image_commands_json(tiny, folder, tmp_path):
    """Image files one at a time and batched write the same detections and lines."""
    cfg, weights = tiny
    files = [folder / "b.png", folder / "sub" / "c.png"]
    legacy = run("detect", cfg, weights, *files, "--json", tmp_path / "legacy.json", "--no-draw", "-thresh", THRESH)
    assert legacy.returncode == 0, legacy.stderr
    many = run("detect", cfg, weights, *files, "--json", "-", "--batch", "2", "-thresh", THRESH)
    assert many.returncode == 0, many.stderr
    old = jsonl(tmp_path / "legacy.json")
    new = [json.loads(line) for line in many.stdout.splitlines()]
    assert [o["detections"] for o in old] == [n["detections"] for n in new]
    assert [o["path"] for o in old] == [n["path"] for n in new] == [str(f) for f in files]
    # and the same printed lines, in the same order
    lines = run("detect", cfg, weights, *files, "--batch", "2", "-thresh", THRESH)
    assert lines.returncode == 0, lines.stderr

    def printed(text):
        return [line.split(": Predicted in ")[0] if ": Predicted in " in line else line for line in text.splitlines()]

    assert printed(lines.stdout) == printed(legacy.stdout) and len(legacy.stdout.splitlines()) > 4


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_cli_folder_prints_c_darknets_lines(tmp_path):
    """A folder of the kit's images through the pipeline prints what C Darknet printed."""
    spec = kit.model("yolov2-tiny")
    cases = [c for c in kit.cases() if c["model"] == "yolov2-tiny" and c["image"].endswith(".png")][:3]
    folder = tmp_path / "kit"
    folder.mkdir()
    for n, c in enumerate(cases):  # numbered, so that the folder's order is the cases' order
        (folder / f"{n}-{os.path.basename(c['image'])}").write_bytes(kit.image_path(c).read_bytes())
    r = run("detector", "test", kit.KIT / spec["data"], kit.cfg_path("yolov2-tiny"),
            kit.weights(spec["weights"]), folder, "-thresh", "0.25", "--batch", "2", cwd=kit.KIT / "darknet")
    assert r.returncode == 0, r.stderr
    got = [line for line in r.stdout.splitlines() if ": Predicted in " not in line]
    want = [line for c in cases
            for line in next(d["lines"] for d in c["results"]["stock"]["detections"] if d["thresh"] == "0.25")]
    assert got == want


def test_cli_quoted_glob_and_stdin(tiny, folder, tmp_path):
    cfg, weights = tiny
    r = run("detect", cfg, weights, str(folder / "sub" / "**" / "*.*"), "--json", "-", "-thresh", THRESH)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["path"] for line in r.stdout.splitlines()] == [
        str(folder / "sub" / "c.png"), str(folder / "sub" / "deeper" / "d.bmp")]
    stdin = f"{folder / 'b.png'}\n{folder / 'missing.png'}\n{folder / 'a.JPG'}\n"
    r = run("detect", cfg, weights, "-", "--json", "-", "-thresh", THRESH, stdin=stdin)
    assert r.returncode == 1, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["path"] for rec in records] == [str(folder / "b.png"), str(folder / "missing.png"),
                                                str(folder / "a.JPG")]
    assert "error" in records[1] and "Enter Image Path" not in r.stdout


def test_cli_video_every_k_and_outdir(tiny, tmp_path):
    cfg, weights = tiny
    video = write_video(tmp_path / "clip.avi", frames=5)
    out = tmp_path / "out.jsonl"
    r = run("detect", cfg, weights, video, "--every", "2", "--json", out, "--outdir", tmp_path / "drawn",
            "-thresh", THRESH)
    assert r.returncode == 0, r.stderr
    records = jsonl(out)
    assert [(rec["frame"], rec["time"]) for rec in records] == [(0, 0.0), (2, 0.2), (4, 0.4)]
    net = Network(cfg, weights, warn=None)
    frames = read_frames(video)
    for rec in records:
        im = net.image(frames[rec["frame"]])
        want = many.detection_dicts(net.detect(im, thresh=0.2), ["0", "1"], 0.2, im.shape[2], im.shape[1])
        assert rec["detections"] == want and rec["path"] == str(video)
        assert (rec["width"], rec["height"]) == (48, 36)
    assert sorted(os.listdir(tmp_path / "drawn" / "clip")) == ["frame_000000.jpg", "frame_000002.jpg",
                                                                "frame_000004.jpg"]


@pytest.mark.parametrize("args,message", [(["EMPTY"], "no image files"), (["FOLDER", "MISSING"], "no such file"),
                                          (["FOLDER", "--workers", "2"], "--workers")])
def test_cli_usage_errors_exit_2(tiny, folder, tmp_path, args, message):
    """Before the network is loaded. (A missing file with an image's name is an input that
    fails, as a broken one: its error line, the others run, exit status 1.)"""
    cfg, weights = tiny
    (tmp_path / "empty").mkdir()
    args = [{"EMPTY": tmp_path / "empty", "MISSING": tmp_path / "missing", "FOLDER": folder}.get(a, a)
            for a in args]
    r = run("detect", cfg, weights, *args)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("darknetpy: error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    assert "layer     filters" not in r.stderr  # the network was not loaded


def test_cli_ray_missing_is_one_line_and_exit_2(tiny, folder, tmp_path):
    """--ray without Ray installed (a stub package that fails to import stands in for it)."""
    cfg, weights = tiny
    stub = tmp_path / "stub" / "ray"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = dict(ENV, PYTHONPATH=os.pathsep.join([str(tmp_path / "stub"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "darknetpy", "detect", str(cfg), str(weights), str(folder),
                        "--ray", "local"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["darknetpy: error: --ray needs Ray, which is not installed: "
                                             "pip install 'darknet-exact[ray]'"]


def test_cli_sigint_leaves_complete_lines_and_a_summary(tiny, folder, tmp_path):
    """Ctrl-C mid-run (the command waits for more paths on stdin): exit 130, only complete
    JSON lines, and the summary says how many were done."""
    cfg, weights = tiny
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "darknetpy", "detect", str(cfg), str(weights), "-", "--json",
                             str(out), "-thresh", THRESH], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        for name in ("b.png", "a.JPG", "a-z.png"):
            proc.stdin.write(f"{folder / name}\n")
        proc.stdin.flush()
        deadline = time.time() + 120
        while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    records = jsonl(out)
    assert len(records) == 3
    assert err.splitlines()[-1].startswith("darknetpy: interrupted after 3 images, 0 failed,")


def test_write_is_not_cut_by_ctrl_c():
    """The guard defers a Ctrl-C that arrives during a line's write to the line's end."""
    guard = many.InterruptGuard()
    written = []

    def write():
        written.append("start")
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler has run by now (between bytecodes)
        written.append("end")

    with guard:
        with pytest.raises(KeyboardInterrupt):
            guard.run(write)
    assert written == ["start", "end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_progress_summary_and_fallback_bar():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = many.Progress(3, stream=stream, enabled=True)
    bar._tqdm = None  # the self-written bar, whether or not tqdm is installed
    for failed in (False, True, False):
        bar.update(failed)
    line = bar.summary()
    assert line.startswith("darknetpy: 3 images, 1 failed, ") and "images/s" in line
    assert "3/3 images" in stream.getvalue()
    quiet = io.StringIO()
    bar = many.Progress(None, stream=quiet)
    bar.update()
    bar.summary()
    assert quiet.getvalue().startswith("darknetpy: 1 image, 0 failed")


def test_outdir_names():
    assert many.output_path("o", os.path.join("a", "x.PNG")) == os.path.join("o", "a", "x.PNG")
    assert many.output_path("o", "x.pgm") == os.path.join("o", "x.pgm.jpg")
    assert many.output_path("o", "noext") == os.path.join("o", "noext.jpg")
