"""Every case and flavor of the reference kit: each layer's SHA-256 equals C Darknet's.

A forward pass is deterministic, so cases with bit-identical inputs (a JPEG and its PNG
copy) share one run (see kit.run_case).
"""
from __future__ import annotations

import pytest

import kit

pytestmark = pytest.mark.skipif(not kit.available(), reason=kit.MISSING)

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


@pytest.mark.parametrize("case_id,flavor", _params())
def test_case_bit_identical(case_id, flavor):
    c = kit.case(case_id)
    run = kit.run_case(c, flavor)
    want = c["results"]["stock"]["input"]
    assert list(run.input.shape) == want["shape"]
    assert kit.sha256_f32(run.input) == want["sha256"], "network input differs from the kit's"
    assert run.mismatch is None, run.mismatch


def _first_cases():
    seen, params = set(), []
    for c in kit.cases():
        for flavor in c["flavors"]:
            if (c["model"], flavor) not in seen:
                seen.add((c["model"], flavor))
                params.append(pytest.param(c["id"], flavor, id=f"{c['id']}-{flavor}"))
    return params


@pytest.mark.parametrize("case_id,flavor", _first_cases())
def test_forward_in_the_arena_equals_the_kept_pass(case_id, flavor):
    """`forward` (the arena, dead outputs dropped, convolutions fused with their maxpool)
    gives the bits of the pass the kit's per-layer hashes check (every output kept)."""
    c = kit.case(case_id)
    run = kit.run_case(c, flavor)
    net = kit.network(c["model"], flavor)
    pairs = [i for i, (a, b) in enumerate(zip(net.layers, net.layers[1:]))
             if a.type == "convolutional" and b.type == "maxpool" and b.stride == b.size]
    assert pairs and net.fused_pools, "no convolution + maxpool pair was fused"
    assert net.fused_pools <= set(pairs)
    out = net.forward(run.input)
    assert out.tobytes() == run.output.tobytes()
