"""The backend layer: device names, the arena plan, outputs that survive the next pass."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from darknetpy import DarknetError, Network
from darknetpy.backend import parse_device
from darknetpy.run.arena import plan_arena

from test_layers import CONV_CFG


@pytest.mark.parametrize("text,want", [("cpu", ("cpu", 0)), (None, ("cpu", 0)), ("cuda", ("cuda", 0)),
                                       ("cuda:3", ("cuda", 3)), ("GPU:1", ("cuda", 1)), (2, ("cuda", 2))])
def test_parse_device(text, want):
    assert parse_device(text) == want


@pytest.mark.parametrize("text", ["tpu", "cuda:", "cuda:-1", "cuda:x", ""])
def test_parse_device_rejects(text):
    with pytest.raises(DarknetError, match="unknown device"):
        parse_device(text)


lives = st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 30), st.integers(0, 8)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(lives)
def test_arena_plan_never_overlaps_live_buffers(spec):
    sizes = {i: size for i, (size, _, _) in enumerate(spec)}
    live = {i: (first, first + span) for i, (_, first, span) in enumerate(spec)}
    plan = plan_arena(sizes, live)
    assert set(plan) == set(sizes)
    for i in plan:
        oi, si = plan[i]
        assert si == sizes[i] and oi % 16 == 0
        for j in plan:
            if j <= i:
                continue
            oj, sj = plan[j]
            overlap_in_time = live[i][0] <= live[j][1] and live[j][0] <= live[i][1]
            if overlap_in_time:
                assert oi + si <= oj or oj + sj <= oi, (i, j, plan[i], plan[j])


def test_arena_plan_reuses_dead_buffers():
    sizes = {0: 100, 1: 100, 2: 100}
    plan = plan_arena(sizes, {0: (0, 1), 1: (1, 2), 2: (2, 3)})
    assert plan[0][0] == plan[2][0] != plan[1][0]


POOL_CFG = """[net]
width=8
height=8
channels=2
[maxpool]
size=2
stride=2
[maxpool]
size=2
stride=1
[route]
layers=-1,-2
[reorg]
stride=2
[softmax]
"""


def test_arena_pass_equals_kept_pass_and_output_is_not_reused(tmp_path):
    cfg = tmp_path / "p.cfg"
    cfg.write_text(POOL_CFG)
    net = Network(cfg, warn=None)
    rng = np.random.default_rng(1)
    x1, x2 = rng.random((2, 8, 8), dtype=np.float32), rng.random((2, 8, 8), dtype=np.float32)
    kept = net.forward_layers(x1)
    first = net.forward(x1)
    assert first.tobytes() == kept[-1].tobytes()
    second = net.forward(x2)
    assert first.tobytes() == kept[-1].tobytes(), "the first result was overwritten by the second pass"
    assert second.tobytes() == net.forward_layers(x2)[-1].tobytes()
    plan = net.executor.arena_plan()
    assert net.output_layer.index not in plan and set(plan) == {0, 1, 2, 3}


def test_profile_lists_every_layer(tmp_path):
    cfg = tmp_path / "c.cfg"
    cfg.write_text(CONV_CFG.format(bn=1, size=3, stride=1))
    r = subprocess.run([sys.executable, "-m", "darknetpy", "summary", str(cfg), "--profile", "--repeat", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[-3:] == ["ms", "%", "GFLOP/s"]
    assert len(lines) == 1 + 4 + 1 and "ms per forward pass (darknet, cpu)" in lines[-1]
    assert float(lines[1].split()[-3]) > 0


def test_gpu_flag_validation(tmp_path):
    cfg = tmp_path / "c.cfg"
    cfg.write_text(CONV_CFG.format(bn=1, size=3, stride=1))
    r = subprocess.run([sys.executable, "-m", "darknetpy", "summary", str(cfg), "--profile", "--gpu", "-1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "darknetpy: error: --gpu -1: a CUDA device index is 0 or more"]


def test_detect_takes_a_list_of_images(tmp_path):
    from test_many import write_tiny_model

    cfg, weights = write_tiny_model(tmp_path)
    net = Network(cfg, weights, warn=None)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((40, 60), (33, 21), (64, 64))]
    one_by_one = [net.detect(im, thresh=0.2) for im in images]
    together = net.detect(images, thresh=0.2)
    def bits(results):
        return [[(tuple(d.bbox), d.objectness, d.prob_array().tobytes()) for d in r] for r in results]

    assert len(together) == 3 and bits(together) == bits(one_by_one)
    assert sum(map(len, one_by_one)) > 0
