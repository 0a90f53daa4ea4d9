"""Every case of the data kit (../shared/reference-data), stock and O2: X, y, the paths
drawn, the number of rand() calls and the next rand(), compared by SHA-256."""
import hashlib
import json
import os

import numpy as np
import pytest

from darknetpy.loader.classification import load_data_augment, load_data_old
from darknetpy.loader.detection import load_data_detection
from darknetpy.loader.rand import GlibcRand

KIT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference-data"))
HAVE_KIT = os.path.isfile(os.path.join(KIT, "manifest.json"))
pytestmark = pytest.mark.skipif(not HAVE_KIT, reason="data kit ../shared/reference-data absent")


def manifest():
    with open(os.path.join(KIT, "manifest.json")) as f:
        return json.load(f)


CASES = [c for c in manifest()["cases"]] if HAVE_KIT else []


def read_list(name):
    with open(os.path.join(KIT, name)) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def f32(text):
    return np.float32(float(text))


def run_case(case, stock):
    """One call of the case's function after srand(seed), from the kit's folder."""
    a = case["args"]
    rng = GlibcRand(case["seed"])
    paths = read_list(case["list"])
    cwd = os.getcwd()
    os.chdir(KIT)
    try:
        if case["kind"] == "detection":
            X, y, picked = load_data_detection(rng, paths, a["n"], a["w"], a["h"], a["boxes"], f32(a["jitter"]),
                                               f32(a["hue"]), f32(a["saturation"]), f32(a["exposure"]), stock)
        elif case["kind"] == "classification":
            X, y, picked = load_data_augment(rng, paths, a["n"], read_list(case["labels_list"]), a["min"], a["max"],
                                             a["size"], f32(a["angle"]), f32(a["aspect"]), f32(a["hue"]),
                                             f32(a["saturation"]), f32(a["exposure"]), stock, warn=lambda m: None)
        else:
            X, y, picked = load_data_old(rng, paths, a["n"], read_list(case["labels_list"]), a["w"], a["h"],
                                         warn=lambda m: None)
    finally:
        os.chdir(cwd)
    calls = rng.calls
    return X, y, picked, calls, rng.rand()


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a, np.float32).tobytes()).hexdigest()


@pytest.mark.parametrize("flavor", ["stock", "O2"])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_kit_case(case, flavor):
    X, y, picked, calls, nxt = run_case(case, flavor == "stock")
    want = case["results"][flavor]
    assert list(X.shape) == want["X"]["shape"] and list(y.shape) == want["y"]["shape"]
    assert picked == case["picked_paths"]
    assert calls == want["rand_calls"]
    assert nxt == want["next_rand"]
    assert sha(y) == want["y"]["sha256"]
    assert sha(X) == want["X"]["sha256"]
