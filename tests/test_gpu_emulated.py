"""The GPU backend's CUDA sources, run on the CPU by the emulator, against the kit.

`Network(..., device="cuda:0")` with `DARKNETPY_GPU_EMULATE` compiles every kernel of
darknetpy/gpu/ with g++ and runs it block by block (see gpu/emulator.py): the same
source text that NVRTC compiles on a GPU, so its arithmetic and indexing are checked
here bit for bit; what only a GPU can show (NVRTC's code generation, CUDA's own
rounding modes of each instruction) is checked by tests/test_gpu.py on a device.

By default one case per model and flavor runs, the full-size models once (yolov2 608
takes about a minute emulated); DARKNETPY_EMULATE_ALL=1 runs every case and flavor.
"""
from __future__ import annotations

import os
import shutil

import pytest

import kit

pytestmark = [pytest.mark.skipif(not kit.available(), reason=kit.MISSING),
              pytest.mark.skipif(shutil.which("g++") is None, reason="the CUDA emulator needs g++")]

ALL = os.environ.get("DARKNETPY_EMULATE_ALL") == "1"
FULL_SIZE = {"yolov2", "yolov2-voc", "yolo9000"}
ALWAYS_FULL_SIZE = {("yolov2", "stock")}


@pytest.fixture(autouse=True, scope="module")
def emulator():
    from darknetpy.gpu import runtime

    before = runtime._emulate_override
    runtime.emulate(True)
    yield
    runtime._emulate_override = before


def _params():
    params, seen = [], set()
    for c in kit.cases():
        for flavor in c["flavors"]:
            key = (c["model"], flavor)
            chosen = key not in seen and (c["model"] not in FULL_SIZE or key in ALWAYS_FULL_SIZE)
            seen.add(key)
            marks = [] if chosen else [pytest.mark.slow, pytest.mark.skipif(
                not ALL, reason="one case per model and flavor by default (DARKNETPY_EMULATE_ALL=1 runs all)")]
            params.append(pytest.param(c["id"], flavor, id=f"{c['id']}-{flavor}", marks=marks))
    return params


@pytest.mark.parametrize("case_id,flavor", _params())
def test_case_bit_identical_on_emulated_gpu(case_id, flavor):
    c = kit.case(case_id)
    run = kit.run_case(c, flavor, device="cuda:0")
    assert run.mismatch is None, run.mismatch


def test_forward_batch_runs_lanes_with_the_bits_of_forward():
    """forward_batch on the GPU backend: each input in a lane of its own (stream, arena,
    workspace), the layers taken in step; the outputs are forward()'s, bit for bit."""
    cases = [c for c in kit.cases() if c["model"] == "yolo9000-128"][:3]
    flavor = "fixed-tree"
    xs = [kit.run_case(c, flavor, device="cuda:0").input for c in cases]
    net = kit.network("yolo9000-128", flavor, device="cuda:0")
    cwd = os.getcwd()
    os.chdir(kit.KIT / "darknet")
    try:
        one_by_one = [net.forward(x) for x in xs]
        batched = net.forward_batch(xs + xs[:1])
    finally:
        os.chdir(cwd)
    assert len(net.executor._lanes) == 4
    for got, want in zip(batched, one_by_one + one_by_one[:1]):
        assert got.tobytes() == want.tobytes()


# YOLOv3's kit: yolov3-tiny in both flavors, yolov3 at 128 and the two classifiers by default
# (shortcut, upsample, multi-input route, yolo, SPP-free 416 models cost minutes emulated).
V3_DEFAULT = {("yolov3-tiny", "stock"), ("yolov3-tiny", "O2"), ("yolov3-128", "stock"), ("darknet53", "stock"),
              ("resnet50", "stock")}


def _params_v3():
    params, seen = [], set()
    for c in kit.V3.cases():
        for flavor in c["flavors"]:
            key = (c["model"], flavor)
            chosen = key not in seen and key in V3_DEFAULT
            seen.add(key)
            marks = [] if chosen else [pytest.mark.slow, pytest.mark.skipif(
                not ALL, reason="one case per model by default (DARKNETPY_EMULATE_ALL=1 runs all)")]
            params.append(pytest.param(c["id"], flavor, id=f"{c['id']}-{flavor}", marks=marks))
    return params


@pytest.mark.skipif(not kit.V3.available(), reason=kit.V3.MISSING)
@pytest.mark.parametrize("case_id,flavor", _params_v3())
def test_v3_case_bit_identical_on_emulated_gpu(case_id, flavor):
    c = kit.V3.case(case_id)
    run = kit.V3.run_case(c, flavor, device="cuda:0")
    assert run.mismatch is None, run.mismatch
