"""The inference executor's batched pass: n inputs in one pass (every kernel takes the
batch) give each input's single-pass bits, for every returned output."""
import numpy as np
import pytest

import kit


def inputs(k, model_name, n):
    xs = []
    for c in [c for c in k.cases() if c["model"] == model_name][:n]:
        xs.append(k.run_case(c, "stock").input)
    return xs


@pytest.mark.parametrize("k, model_name", [(kit.V2, "yolov2-tiny"), (kit.V3, "yolov3-tiny")], ids=["v2", "v3"])
def test_a_batched_pass_equals_one_pass_per_input(k, model_name):
    if not k.available():
        pytest.skip(k.MISSING)
    xs = inputs(k, model_name, 3)
    net = k.network(model_name, "stock")
    ex = net.executor
    together = ex.forward(np.concatenate([x.reshape(-1) for x in xs]), len(xs))
    for i, x in enumerate(xs):
        alone = ex.forward(x)
        assert [o[i].tobytes() for o in together] == [o[0].tobytes() for o in alone]
    assert set(ex.arena_plan(len(xs))) == set(ex.arena_plan(1))


def test_the_arena_of_a_batch_never_overlaps_live_buffers():
    if not kit.V3.available():
        pytest.skip(kit.V3.MISSING)
    net = kit.V3.network("yolov3-tiny", "stock")
    ex = net.executor
    plan = ex.arena_plan(4)
    for i, (oi, si) in plan.items():
        for j, (oj, sj) in plan.items():
            lives_meet = not (ex.last_use[i] < j or ex.last_use[j] < i) if i != j else False
            if lives_meet:
                assert oi + si <= oj or oj + sj <= oi, (i, j)
