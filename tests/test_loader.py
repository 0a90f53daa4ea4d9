"""darknetpy.loader.Loader: the multi-scale order of the kit's replay, resume from
state(), the fast mode's reproducibility, and the load_args read from real cfgs."""
import hashlib
import json
import os

import numpy as np
import pytest

from darknetpy.cfg import read_cfg
from darknetpy.loader import Loader, batch_seed, classification_args, detection_args
from darknetpy.loader.batch import load_threads
from darknetpy.loader.images import ImageSource
from darknetpy.loader.rand import GlibcRand

HERE = os.path.dirname(os.path.abspath(__file__))
KIT = os.path.join(HERE, "..", "..", "shared", "reference-data")
CFGS = os.path.join(HERE, "..", "..", "shared", "reference", "darknet", "cfg")
pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(KIT, "manifest.json")), reason="data kit absent")


@pytest.fixture
def in_kit(monkeypatch):
    monkeypatch.chdir(KIT)
    with open("train.list") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def replay():
    with open(os.path.join(KIT, "manifest.json")) as f:
        return json.load(f)["multiscale"]["replay"]


def digest(X, y):
    return hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()


@pytest.mark.parametrize("max_batches", ["250", pytest.param("500200", marks=pytest.mark.slow)])
def test_multiscale_order_is_the_kits_replay(in_kit, max_batches):
    """Deterministic mode = the kit's single-threaded order: every resize draw, every
    load (discarded or not), the rand() count after each, and the size of each batch."""
    r = replay()
    args = dict(r["load_args"], n=r["n_per_load"], threads=r["threads"], w=r["initial_dim"], h=r["initial_dim"])
    events = []
    loader = Loader(in_kit, "detection", args, seed=7, trace=events.append)
    dims = []
    for b in range(r["batches"]):
        w, h = loader.next_size(b, int(max_batches), r["initial_dim"], r["initial_dim"])
        X, _ = loader.load(w, h)
        assert X.shape[2:] == (h, w)
        dims.append(w)
    want = r["max_batches"][max_batches]
    assert dims == [e["train_dim"] for e in want if "train_dim" in e]
    want_loads = [(e["dim"], e["rand_calls_so_far"]) for e in want if "load" in e]
    got_loads = [(e[1], e[3]) for e in events if e[0] == "load"]
    assert got_loads == want_loads[:-1]          # the last load (started after batch 99) is never needed
    assert [e[1] for e in events if e[0] == "resize"] == [e["dim"] for e in want if "resize_rand" in e]


def small_args(**kw):
    return dict(dict(n=2, w=64, h=64, boxes=30, classes=20, jitter="0.3", hue="0.1", saturation="1.5",
                     exposure="1.5", threads=2), **kw)


def run(loader, batches, max_batches=30, random=True):
    out = []
    for b in batches:
        w, h = loader.next_size(b, max_batches, 64, 64) if random else (64, 64)
        out.append(digest(*loader.load(8 * (w // 32), 8 * (h // 32))))
    return out


def test_state_restore_continues_the_same_batches(in_kit):
    a = Loader(in_kit, "detection", small_args(), seed=3)
    first = run(a, range(0, 14))
    b = Loader(in_kit, "detection", small_args(), seed=3)
    run(b, range(0, 6))
    saved = json.loads(json.dumps(b.state()))
    c = Loader(in_kit, "detection", small_args(), seed=99)
    c.restore(saved)
    assert run(c, range(6, 14)) == first[6:]
    assert len(set(first)) == len(first)


def test_fast_mode_is_reproducible_and_resumable(in_kit):
    args = small_args()
    with Loader(in_kit, "detection", args, seed=5, workers=2) as a:
        first = run(a, range(0, 6), random=False)
        saved = a.state()
    with Loader(in_kit, "detection", args, seed=5, workers=2) as b:
        assert run(b, range(0, 6), random=False) == first
    with Loader(in_kit, "detection", args, seed=5, workers=1) as c:
        c.restore(saved)
        more = run(c, range(6, 8), random=False)
    rng = GlibcRand(batch_seed(5, 6))
    X, y, _ = load_threads(rng, "detection", in_kit, args, 16, 16, True, None, ImageSource(in_kit))
    assert more[0] == digest(X, y)
    assert len(set(first + more)) == 8


def test_load_args_from_the_yolov2_and_darknet19_cfgs():
    sections = read_cfg(os.path.join(CFGS, "yolov2-voc.cfg"))
    region = sections[-1]

    class Layer:
        type, classes, section = "region", 20, region

    net = {"batch": "64", "subdivisions": "8", "width": "416", "height": "416", "hue": ".1", "saturation": "1.5",
           "exposure": "1.5"}
    assert detection_args(net, Layer())["n"] == 64
    a = detection_args(sections[0], Layer())
    a["n"] = 64
    assert (a["n"], a["w"], a["h"], a["boxes"], a["classes"], a["random"], a["threads"]) == (64, 416, 416, 30, 20, 1, 64)
    assert np.float32(a["jitter"]) == np.float32(.3) and np.float32(a["hue"]) == np.float32(.1)
    assert np.float32(a["saturation"]) == np.float32(1.5) and np.float32(a["exposure"]) == np.float32(1.5)
    c = classification_args(read_cfg(os.path.join(CFGS, "darknet19.cfg"))[0], 1000)
    assert (c["size"], c["min"], c["max"], c["k"], c["center"], c["threads"]) == (256, 128, 448, 1000, 0, 32)
    assert np.float32(c["aspect"]) == np.float32(.75) and np.float32(c["angle"]) == np.float32(7)


@pytest.mark.parametrize("case_id", ["cls_64_n2_s1", "det_102x90_n2_s4", "old_64_n4_s1"])
def test_first_batch_is_the_kits_call(in_kit, case_id):
    """A deterministic Loader's first batch is one Darknet call after srand(seed) (one thread)."""
    with open("manifest.json") as f:
        case = next(c for c in json.load(f)["cases"] if c["id"] == case_id)
    with open("labels.list") as f:
        labels = [line.rstrip("\n") for line in f]
    args = dict(case["args"], threads=1)
    loader = Loader(in_kit, case["kind"], args, seed=case["seed"], labels=labels, warn=lambda m: None)
    w = args.get("size") or args["w"]
    h = args.get("size") or args["h"]
    X, y = loader.load(w, h)
    want = case["results"]["stock"]
    assert hashlib.sha256(X.tobytes()).hexdigest() == want["X"]["sha256"]
    assert hashlib.sha256(y.tobytes()).hexdigest() == want["y"]["sha256"]
    assert loader.rng.calls == want["rand_calls"]
