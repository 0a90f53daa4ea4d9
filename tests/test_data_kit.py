"""Every case of the data kit (../shared/reference-data), stock and O2: X, y, the paths
drawn, the number of rand() calls and the next rand(), compared by SHA-256."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from darknetpy.cli import build_parser
from darknetpy.loader.dump import FLOAT_KEYS, INT_KEYS, dump_batch

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


def cli_options(case):
    """The case as dump-batch's --KEY VALUE options (w, h as --width, --height)."""
    opts = []
    for key, value in case["args"].items():
        opts += [{"w": "--width", "h": "--height"}.get(key, f"--{key}"), str(value)]
    if case.get("labels_list"):
        opts += ["--labels", case["labels_list"]]
    return opts


def run_case(case, stock, out):
    """One dump-batch call (the function behind the verb) from the kit's folder."""
    args = parse(["dump-batch", case["list"], "--kind", case["kind"], "--seed", str(case["seed"]),
                  *cli_options(case), "-o", str(out), "--numerics", "darknet" if stock else "ieee"])
    cwd = os.getcwd()
    os.chdir(KIT)
    try:
        call = {k: getattr(args, k) for k in ("w", "h") + INT_KEYS + FLOAT_KEYS if getattr(args, k) is not None}
        dump_batch(args.list, args.kind, args.seed, call, args.out, args.labels, args.numerics, warn=lambda m: None)
    finally:
        os.chdir(cwd)
    return read_dump(out)


def read_dump(out):
    with open(os.path.join(out, "batch.json")) as f:
        info = json.load(f)
    return (np.load(os.path.join(out, "X.npy")), np.load(os.path.join(out, "y.npy")), info["picked_paths"],
            info["rand_calls"], info["next_rand"])


def parse(argv):
    return build_parser().parse_args(argv)


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a, np.float32).tobytes()).hexdigest()


@pytest.mark.parametrize("flavor", ["stock", "O2"])
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_kit_case(case, flavor, tmp_path):
    X, y, picked, calls, nxt = run_case(case, flavor == "stock", tmp_path / "out")
    check(case, flavor, X, y, picked, calls, nxt)


def check(case, flavor, X, y, picked, calls, nxt):
    want = case["results"][flavor]
    assert list(X.shape) == want["X"]["shape"] and list(y.shape) == want["y"]["shape"]
    assert picked == case["picked_paths"]
    assert calls == want["rand_calls"]
    assert nxt == want["next_rand"]
    assert sha(y) == want["y"]["sha256"]
    assert sha(X) == want["X"]["sha256"]


@pytest.mark.parametrize("case_id,flavor", [("det_102x90_n2_s4", "O2"), ("cls_64_n2_s1", "stock")])
def test_dump_batch_subprocess(case_id, flavor, tmp_path):
    """The verb for real: a subprocess run from the kit's folder, as Darknet's cwd."""
    case = next(c for c in CASES if c["id"] == case_id)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-m", "darknetpy", "dump-batch", case["list"], "--kind", case["kind"],
                        "--seed", str(case["seed"]), *cli_options(case), "-o", str(out),
                        "--numerics", "darknet" if flavor == "stock" else "ieee"],
                       cwd=KIT, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    check(case, flavor, *read_dump(out))
    for line in case["results"][flavor].get("stdout", []):
        assert line in r.stderr


def test_dump_batch_needs_labels_for_classification(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-m", "darknetpy", "dump-batch", "train.list", "--kind", "classification",
                        "--seed", "1", "--size", "64", "-o", str(tmp_path / "o")],
                       cwd=KIT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--labels" in r.stderr, r.stderr
