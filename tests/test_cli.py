"""The darknetpy command, run for real in a subprocess."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kit

ENV = dict(os.environ, NUMBA_NUM_THREADS="2")


def run(*args, cwd=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "darknetpy", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, input=stdin, timeout=600)


def test_help_for_each_command():
    r = run("--help")
    assert r.returncode == 0 and "dump" in r.stdout
    for cmd in ("summary", "dump"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and "usage" in r.stdout


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_summary_prints_darknets_table():
    r = run("summary", kit.cfg_path("yolov2-tiny"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "layer     filters    size              input                output"
    assert lines[1] == "    0 conv     16  3 x 3 / 1   416 x 416 x   3   ->   416 x 416 x  16  0.150 BFLOPs"
    assert lines[2] == "    1 max          2 x 2 / 2   416 x 416 x  16   ->   208 x 208 x  16"
    assert lines[-2] == "   15 detection"
    assert lines[-1].startswith("Total BFLOPs 5.406")


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_dump_writes_every_layer_with_the_kit_hashes(tmp_path):
    c = kit.case("yolov2-tiny_dog_png")
    w = kit.weights("yolov2-tiny.weights")
    out = tmp_path / "dump"
    r = run("dump", kit.cfg_path("yolov2-tiny"), w, kit.image_path(c), "-o", out, cwd=kit.KIT / "darknet")
    assert r.returncode == 0, r.stderr
    index = json.loads((out / "layers.json").read_text())
    records = c["results"]["stock"]["layers"]
    assert [rec["sha256"] for rec in index["layers"]] == [rec["sha256"] for rec in records]
    x = np.load(out / "input.npy", allow_pickle=False)
    assert kit.sha256_f32(x) == c["results"]["stock"]["input"]["sha256"]
    layer = np.load(out / "layer_015.npy", allow_pickle=False)
    assert layer.shape == tuple(records[15]["shape"]) and kit.sha256_f32(layer) == records[15]["sha256"]


@pytest.mark.parametrize("case", ["missing_cfg", "broken_cfg", "truncated_weights", "missing_image", "bad_numerics",
                                  "out_is_a_file"])
def test_user_errors_are_one_line_and_exit_2(tmp_path, case):
    cfg = tmp_path / "t.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\nsize=3\npad=1\n"
                   "activation=leaky\n")
    weights = tmp_path / "t.weights"
    weights.write_bytes(np.array([0, 2, 0], "<i4").tobytes() + bytes(8) + np.zeros(2 + 54, "<f4").tobytes())
    image = tmp_path / "i.png"
    import cv2
    cv2.imwrite(str(image), np.zeros((4, 4, 3), np.uint8))
    args = ["dump", cfg, weights, image, "-o", tmp_path / "out"]
    if case == "missing_cfg":
        args[1] = tmp_path / "none.cfg"
    elif case == "broken_cfg":
        cfg.write_text("[net]\nwidth=8\nheight\n")
    elif case == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:-8])
    elif case == "missing_image":
        args[3] = tmp_path / "none.png"
    elif case == "out_is_a_file":
        (tmp_path / "out").write_text("")
    else:
        args.append("--numerics=bogus")
    r = run(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    if case != "bad_numerics":
        errors = [line for line in r.stderr.splitlines() if line.startswith("darknetpy: error:")]
        assert len(errors) == 1, r.stderr
    assert not (tmp_path / "out" / "layers.json").exists() and not (tmp_path / "out" / "input.npy").exists()


def _model_params():
    params = []
    for name, spec in (kit.manifest()["models"].items() if kit.available() else []):
        if spec["kind"] != "detector":
            continue
        for thresh in ("0.5", "0.25"):
            slow = name in ("yolov2", "yolov2-voc", "yolo9000") and thresh == "0.5"
            params.append(pytest.param(name, thresh, id=f"{name}-{thresh}", marks=[pytest.mark.slow] if slow else []))
    return params


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
@pytest.mark.parametrize("model,thresh", _model_params())
def test_detector_test_prints_the_kits_lines(model, thresh, tmp_path):
    spec = kit.model(model)
    cases = [c for c in kit.cases() if c["model"] == model and c["image"].endswith(".png")]
    images = [kit.image_path(c) for c in cases]
    r = run("detector", "test", kit.KIT / spec["data"], kit.cfg_path(model), kit.weights(spec["weights"]), *images,
            "-thresh", thresh, "--outdir", tmp_path / "pred", cwd=kit.KIT / "darknet")
    assert r.returncode == 0, r.stderr
    got = [line for line in r.stdout.splitlines() if ": Predicted in " not in line]
    want = []
    for c in cases:
        result = c["results"]["fixed-tree" if "yolo9000" in model else "stock"]
        want += next(d["lines"] for d in result["detections"] if d["thresh"] == thresh)
    assert got == want
    assert sum(": Predicted in " in line for line in r.stdout.splitlines()) == len(images)
    assert len(list((tmp_path / "pred").glob("*.png"))) == len(images)


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_classifier_predict_prints_the_kits_top5(tmp_path):
    spec = kit.model("darknet19")
    cases = [c for c in kit.cases() if c["model"] == "darknet19"]
    r = run("classifier", "predict", kit.KIT / spec["data"], kit.cfg_path("darknet19"), kit.weights(spec["weights"]),
            *[kit.image_path(c) for c in cases], cwd=kit.KIT / "darknet")
    assert r.returncode == 0, r.stderr
    # several images: each line after its image's name
    assert r.stdout.splitlines() == [f"{kit.image_path(c)}: {line}" for c in cases
                                     for line in c["results"]["stock"]["lines"]]
    one = run("classifier", "predict", kit.KIT / spec["data"], kit.cfg_path("darknet19"), kit.weights(spec["weights"]),
              kit.image_path(cases[0]), cwd=kit.KIT / "darknet")
    assert one.stdout.splitlines() == cases[0]["results"]["stock"]["lines"]


@pytest.mark.skipif(not kit.available(), reason=kit.MISSING)
def test_detect_reads_paths_from_stdin_and_writes_json(tmp_path):
    c = kit.case("yolov2-tiny_dog_png")
    missing = tmp_path / "missing.png"
    stdin = f"{kit.image_path(c)}\n{missing}\n"
    r = run("detect", kit.cfg_path("yolov2-tiny"), kit.weights("yolov2-tiny.weights"), "-thresh", "0.25",
            "--json", tmp_path / "out.json", "--no-draw", cwd=kit.KIT / "darknet", stdin=stdin)
    assert r.returncode == 1, r.stderr        # one image failed, the other ran
    assert "Enter Image Path: " in r.stdout
    assert "using the COCO names" in r.stderr and f"{missing}" in r.stderr
    record = json.loads((tmp_path / "out.json").read_text().splitlines()[0])
    lines = c["results"]["stock"]["detections"][1]["lines"]
    assert [d["label"] for d in record["detections"]] == [line.split(":")[0] for line in lines]
    assert record["width"] == 768 and record["height"] == 576
    first = record["detections"][0]
    assert set(first) == {"label", "class_id", "prob", "objectness", "bbox", "box"}
    assert 0 <= first["box"]["left"] <= first["box"]["right"] < 768


def test_cli_kernels_load_without_scipy_linalg():
    """The CLI keeps Numba's BLAS probe from importing scipy.linalg (start-up time and
    memory), its kernels still run, and scipy.linalg can still be imported after."""
    pytest.importorskip("scipy")
    code = ("import sys\n"
            "import numpy as np\n"
            "from darknetpy.cli import _numba_without_scipy_linalg\n"
            "from darknetpy.cpu import activations\n"
            "_numba_without_scipy_linalg()\n"
            "x = np.array([-1.0, 2.0], np.float32)\n"
            "activations.activate_array(x, activations.LEAKY, True)\n"
            "assert x.tolist() == [np.float32(-0.1), 2.0], x\n"
            "assert 'scipy.linalg' not in sys.modules\n"
            "import scipy.linalg\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
