"""Every case and flavor of the reference kit: each layer's SHA-256 equals C Darknet's.

A forward pass is deterministic, so cases with bit-identical inputs (a JPEG and its PNG
copy) share one run: the run's per-layer hashes are cached by (model, flavor, input).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import kit
from darknetpy.network import Network

pytestmark = pytest.mark.skipif(not kit.available(), reason=kit.MISSING)

FLAVOR_SETTINGS = {"stock": ("darknet", "darknet-cpu"), "O2": ("ieee", "darknet-cpu"),
                   "fixed-tree": ("darknet", None)}
# One case per model runs by default; the rest are marked slow only where they cost.
FULL_SIZE = {"yolov2", "yolov2-voc", "yolo9000"}


def _params():
    params, seen_models = [], set()
    order = sorted(((c["model"], flavor, i, c) for i, c in enumerate(kit.cases()) for flavor in c["flavors"]),
                   key=lambda t: t[:3])
    for _, flavor, _, c in order:
        first = (c["model"], flavor) not in seen_models
        seen_models.add((c["model"], flavor))
        marks = [pytest.mark.slow] if c["model"] in FULL_SIZE and not first else []
        params.append(pytest.param(c["id"], flavor, id=f"{c['id']}-{flavor}", marks=marks))
    return params


def expected_layers(c: dict, flavor: str) -> list[dict]:
    if flavor == "fixed-tree":
        return c["results"]["fixed-tree"]["layers"]
    stock = c["results"]["stock"]["layers"]
    if flavor == "stock":
        return stock
    differing = {d["index"]: d for d in kit.manifest()["flavors"][flavor]["results"][c["id"]]["differing_layers"]}
    records = []
    for rec in stock:
        if rec["index"] in differing:
            d = differing[rec["index"]]
            rec = {k: v for k, v in rec.items() if k not in ("sha256", "sha256_nan_canonical")}
            rec["sha256"] = d["sha256"]
            if "sha256_nan_canonical" in d:
                rec["sha256_nan_canonical"] = d["sha256_nan_canonical"]
        records.append(rec)
    return records


_networks: dict = {}
_runs: dict = {}


def network(model: str, flavor: str) -> Network:
    numerics, compat = FLAVOR_SETTINGS[flavor]
    if "yolo9000" not in model:
        compat = None
    key = (model, numerics, compat)
    if key not in _networks:
        _networks.clear()
        _networks[key] = Network(kit.cfg_path(model), kit.weights(kit.model(model)["weights"]),
                                 numerics=numerics, compat=compat, warn=None)
    return _networks[key]


def run_case(c: dict, flavor: str) -> tuple[np.ndarray, list[dict]]:
    """The case's network input, and per layer: matches-the-kit flag and a mismatch line."""
    net = network(c["model"], flavor)
    x = net.load_input(str(kit.image_path(c)))
    key = (c["model"], flavor, hashlib.sha256(x.tobytes()).hexdigest())
    if key not in _runs:
        outputs = net.forward_layers(x)
        records = expected_layers(c, flavor)
        _runs[key] = kit.first_mismatch(records, outputs)
    return x, _runs[key]


@pytest.mark.parametrize("case_id,flavor", _params())
def test_case_bit_identical(case_id, flavor, monkeypatch):
    monkeypatch.chdir(kit.KIT / "darknet")
    c = kit.case(case_id)
    x, mismatch = run_case(c, flavor)
    want = c["results"]["stock"]["input"]
    assert list(x.shape) == want["shape"]
    assert kit.sha256_f32(x) == want["sha256"], "network input differs from the kit's"
    assert mismatch is None, mismatch
