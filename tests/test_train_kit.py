"""The training kit (../shared/reference-train): every tensor of every stage of a case,
its costs, log lines and saved weights, bit for bit (SHA-256), in each flavor:
`stock` = compat="darknet-cpu", `region-backward` = the default, `O2*` = numerics="ieee".

The O2 flavors store only the tensors that differ from the flavor they are compared
with; a differing maxpool `indexes` tensor comes without a hash and is not checked.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

import darknetpy
from darknetpy.train import Trainer
from darknetpy.train.dump import sha256, tensor

import kit

TRAIN_KIT = Path(os.environ.get("DARKNETPY_TRAIN_KIT", kit.REPO.parent / "shared" / "reference-train"))
pytestmark = pytest.mark.skipif(not (TRAIN_KIT / "manifest.json").is_file() or not kit.available(),
                                reason=f"training kit not found at {TRAIN_KIT} (set DARKNETPY_TRAIN_KIT) "
                                       f"or inference kit missing ({kit.MISSING})")
UNKNOWN = "no hash in the kit"


@functools.lru_cache(maxsize=1)
def manifest() -> dict:
    return json.loads((TRAIN_KIT / "manifest.json").read_text())


def case(case_id: str) -> dict:
    return next(c for c in manifest()["cases"] if c["id"] == case_id)


def flavor_settings(flavor: str) -> tuple[str, str | None, str]:
    """(numerics, compat, the flavor whose full results the O2 differences apply to)."""
    numerics = "ieee" if flavor.startswith("O2") else "darknet"
    base = flavor[3:] if flavor.startswith("O2-") else "stock" if flavor == "O2" else flavor
    compat = None if base == "region-backward" else "darknet-cpu"
    return numerics, compat, base


def expected(case_id: str, flavor: str) -> dict:
    """stage name -> {"cost", "tensors": {(index, name): sha256 or UNKNOWN}}, plus the
    log lines and the final weights' SHA-256, with the O2 differences applied."""
    c = case(case_id)
    _, _, base = flavor_settings(flavor)
    full = c["results"][base]
    diff = manifest()["flavor_results"][flavor][case_id] if flavor != base else None
    stages = {}
    for st in full["stages"]:
        tensors = {(rec["index"], name): t["sha256"] for rec in st["layers"] for name, t in rec["tensors"].items()}
        cost = st["cost"]
        if diff:
            d = diff["stages"].get(st["stage"], {})
            for t in d.get("differing_tensors", []):
                tensors[(t["index"], t["tensor"])] = t.get("sha256", UNKNOWN)
            cost = d.get("cost", cost)
        stages[st["stage"]] = {"cost": cost, "tensors": tensors, "seen": st["seen"], "rate": st["rate"]}
    src = diff or full
    return {"stages": stages, "log_lines": src["log_lines"], "final_weights_sha256": src["final_weights_sha256"]}


def mismatches(net, trainer, want: dict, name: str) -> list[str]:
    bad = []
    for (index, tname), digest in want["tensors"].items():
        if digest == UNKNOWN:
            continue
        a = tensor(trainer.executor, net.layers[index], tname)
        if a is None:
            bad.append(f"{name} layer {index} {tname}: missing")
        elif sha256(a) != digest:
            bad.append(f"{name} layer {index} ({net.layers[index].type}) {tname}: SHA-256 differs")
    if float(trainer.executor.cost).hex() != float.fromhex(want["cost"]).hex():
        bad.append(f"{name} cost {float(trainer.executor.cost).hex()} != {want['cost']}")
    if trainer.seen != want["seen"]:
        bad.append(f"{name} seen {trainer.seen} != {want['seen']}")
    if float(trainer.rate()).hex() != float.fromhex(want["rate"]).hex():
        bad.append(f"{name} rate {float(trainer.rate()).hex()} != {want['rate']}")
    return bad


def run_case(case_id: str, flavor: str, tmp_path: Path) -> list[str]:
    """The kit's procedure (README "Source and builds"); the list of what differs."""
    c = case(case_id)
    numerics, compat, _ = flavor_settings(flavor)
    want = expected(case_id, flavor)
    weights = kit.weights(c["weights"]["file"])
    X = np.load(TRAIN_KIT / "inputs" / f"{case_id}_X.npy")
    y = np.load(TRAIN_KIT / "inputs" / f"{case_id}_y.npy")
    cwd = os.getcwd()
    os.chdir(kit.KIT / "darknet")
    try:
        net = darknetpy.load(str(TRAIN_KIT / c["cfg"]), str(weights), numerics=numerics, compat=compat)
        trainer = Trainer(net, numerics=numerics, compat=compat, log=lambda line: None)
        bad: list[str] = []
        datum = [0]

        def stages(kind):
            if datum[0] == 1:
                name = f"d1_{kind}"
                bad.extend(mismatches(net, trainer, want["stages"][name], name))

        rows = trainer.rows
        for call in range(c["K_datums"] // trainer.options.subdivisions):
            sub = trainer.options.subdivisions
            for i in range(sub):
                datum[0] += 1
                b = trainer.options.batch
                trainer.datum(X[i * b:(i + 1) * b], y[i * b:(i + 1) * b], stages)
                if datum[0] > 1:
                    name = f"d{datum[0]}_end"
                    bad.extend(mismatches(net, trainer, want["stages"][name], name))
            assert rows == len(X)
        path = tmp_path / "final.weights"
        net.save_weights(str(path))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != want["final_weights_sha256"]:
            bad.append(f"final weights SHA-256 {digest} != {want['final_weights_sha256']}")
    finally:
        os.chdir(cwd)
    return bad


def log_lines(case_id: str, flavor: str) -> list[str]:
    """The trainer's log lines over the case, through Trainer.train (train_network)."""
    c = case(case_id)
    numerics, compat, _ = flavor_settings(flavor)
    X = np.load(TRAIN_KIT / "inputs" / f"{case_id}_X.npy")
    y = np.load(TRAIN_KIT / "inputs" / f"{case_id}_y.npy")
    cwd = os.getcwd()
    os.chdir(kit.KIT / "darknet")
    try:
        net = darknetpy.load(str(TRAIN_KIT / c["cfg"]), str(kit.weights(c["weights"]["file"])),
                             numerics=numerics, compat=compat)
        lines: list[str] = []
        trainer = Trainer(net, numerics=numerics, compat=compat, log=lines.append)
        for _ in range(c["K_datums"] // trainer.options.subdivisions):
            trainer.train(X, y)
    finally:
        os.chdir(cwd)
    return [line for line in lines if not line.startswith(("Region", "warning"))]


DARKNET19 = [("darknet19-b2", "stock"), ("darknet19-b2", "O2")]


@pytest.mark.parametrize("case_id,flavor", DARKNET19)
def test_train_kit_tensors(case_id, flavor, tmp_path):
    bad = run_case(case_id, flavor, tmp_path)
    assert not bad, f"{len(bad)} differences, first: " + "; ".join(bad[:8])


@pytest.mark.parametrize("case_id,flavor", DARKNET19[:1])
def test_train_kit_log_lines(case_id, flavor):
    assert log_lines(case_id, flavor) == expected(case_id, flavor)["log_lines"]
