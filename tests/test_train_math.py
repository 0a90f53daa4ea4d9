"""get_current_rate (every policy, burn_in, C types; hand-computed values; the kit cases
check steps with -1, burn_in and poly bit for bit) and the softmax loss's libmvec log."""
import math

import numpy as np
import pytest

from darknetpy.cfg import parse_cfg_text
from darknetpy.errors import CfgError
from darknetpy.train.rate import current_rate, train_options

F32 = np.float32


def options(text):
    return train_options(parse_cfg_text("[net]\n" + text + "\n[maxpool]\n")[0])


def rates(text, batches):
    o = options(text)
    return [current_rate(o, b) for b in batches]


def test_steps_negative_step_never_changes_the_rate_and_warns():
    o = options("learning_rate=0.001\npolicy=steps\nsteps=-1,2,20000\nscales=.1,10,.1")
    assert [current_rate(o, b) for b in (0, 1, 2, 3, 25000)] == [F32(0.001)] * 5
    assert len(o.warnings) == 1 and "never changes" in o.warnings[0]


def test_steps_scales_as_float_products():
    got = rates("learning_rate=0.001\npolicy=steps\nsteps=3,5\nscales=.1,.1", [2, 3, 4, 5, 9])
    lr, s = F32(0.001), F32(.1)
    assert got == [lr, F32(lr * s), F32(lr * s), F32(F32(lr * s) * s), F32(F32(lr * s) * s)]


def test_burn_in_then_poly():
    got = rates("learning_rate=0.1\npolicy=poly\npower=4\nburn_in=2\nmax_batches=10", [1, 2, 3])
    assert got == [F32(0.1 * (0.5 ** 4)), F32(float(F32(0.1)) * float(F32(0.8)) ** 4),
                   F32(float(F32(0.1)) * float(F32(1) - F32(3) / F32(10)) ** 4)]
    assert got[0] == F32(float(F32(0.1)) * 0.0625)


def test_constant_step_exp_sigmoid():
    lr = float(F32(0.01))
    assert rates("learning_rate=0.01", [7]) == [F32(0.01)]
    assert rates("learning_rate=0.01\npolicy=step\nstep=4\nscale=.5", [3, 4, 9]) == \
        [F32(lr), F32(lr * 0.5), F32(lr * 0.25)]
    assert rates("learning_rate=0.01\npolicy=exp\ngamma=.9", [3]) == [F32(lr * float(F32(.9)) ** 3)]
    g = F32(.5)
    assert rates("learning_rate=0.01\npolicy=sigmoid\ngamma=.5\nstep=4", [6]) == \
        [F32(lr * (1 / (1 + math.exp(float(g * F32(2))))))]
    # batch_num - step is unsigned: below the step it wraps to a huge number, rate 0
    assert rates("learning_rate=0.01\npolicy=sigmoid\ngamma=.5\nstep=4", [2]) == [F32(0)]


def test_random_policy_is_below_the_rate():
    r = rates("learning_rate=0.01\npolicy=random", [5])[0]
    assert 0 <= r <= F32(0.01)


def test_unknown_policy_goes_with_constant():
    o = options("learning_rate=0.01\npolicy=cosine")
    assert o.policy == "constant" and "Couldn't find policy cosine" in o.warnings[0]


def test_steps_without_scales_is_an_error():
    with pytest.raises(CfgError, match="steps and scales"):
        options("policy=steps\nsteps=1,2")


def test_softmax_loss_log_follows_libmvec_where_it_differs_from_log():
    from darknetpy.cpu.backward import log_loss
    p = np.float32(float.fromhex("0x1.827a74p-7"))
    assert log_loss(p, True, True) == np.float32(float.fromhex("0x1.1c2b1ep+2"))
    assert log_loss(p, False, True) == np.float32(float.fromhex("0x1.1c2b2p+2"))
    assert log_loss(np.float32(0.25), True, True) == np.float32(-np.log(0.25))
    tiny = np.float32(1e-40)
    assert log_loss(tiny, True, True) == np.inf and log_loss(tiny, True, False) == np.float32(-np.log(float(tiny)))


def gemm_nt_reference(a, b, vector, c):
    """The README's gemm_nt pattern written out element by element (float32 steps)."""
    m, k = a.shape
    head, rem = k - k % 4, k % 4
    out = c.copy()
    for i in range(m):
        for j in range(b.shape[0]):
            p = [F32(b[j, t] * a[i, t]) for t in range(k)]
            if not vector:
                s = F32(0)
                for v in p:
                    s = F32(s + v)
            else:
                lanes = [F32(0)] * 4
                for t in range(head):
                    lanes[t % 4] = F32(lanes[t % 4] + p[t])
                even, odd = F32(lanes[0] + lanes[2]), F32(lanes[1] + lanes[3])
                if rem == 0:
                    s = F32(even + odd)
                elif rem == 1:
                    s = F32(F32(even + odd) + p[head])
                else:
                    s = F32(F32(even + p[head]) + F32(odd + p[head + 1]))
                    if rem == 3:
                        s = F32(s + p[head + 2])
            out[i, j] = F32(s + c[i, j])
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 70])
@pytest.mark.parametrize("vector", [True, False])
@pytest.mark.parametrize("m, n", [(3, 5), (20, 150)])
def test_gemm_nt_lanes_and_remainders(k, vector, m, n, monkeypatch):
    """Every lane and remainder form; 20 x 150 in three column blocks of 64."""
    from darknetpy.cpu import backward
    monkeypatch.setattr(backward, "NT_LANE_FLOATS", 1)
    rng = np.random.default_rng(k)
    a, b = rng.standard_normal((m, k)).astype(F32), rng.standard_normal((n, k)).astype(F32)
    c = rng.standard_normal((m, n)).astype(F32)
    got = c.copy()
    backward.gemm_nt_add(a, b, vector, True, got, True)
    assert np.array_equal(got.view(np.uint32), gemm_nt_reference(a, b, vector, c).view(np.uint32))


@pytest.mark.parametrize("rows, columns, depth", [(7, 80, 6), (300, 4, 50)])
def test_fast_backward_gemms_are_close_to_float64(rows, columns, depth):
    """numerics="fast": one FMA GEMM each, within float32 rounding of the float64 products."""
    from darknetpy.cpu.backward import gemm_nt_add, gemm_tn_beta0
    rng = np.random.default_rng(rows)
    a, b = rng.standard_normal((depth, rows)).astype(F32), rng.standard_normal((depth, columns)).astype(F32)
    c = np.full((rows, columns), np.nan, F32)
    gemm_tn_beta0(a, b, False, c, True)
    np.testing.assert_allclose(c, a.T.astype(float) @ b.astype(float), rtol=1e-4, atol=1e-4)
    base = rng.standard_normal((rows, columns)).astype(F32)
    got = base.copy()
    gemm_nt_add(np.ascontiguousarray(a.T), np.ascontiguousarray(b.T), True, False, got, True)
    np.testing.assert_allclose(got, base + a.T.astype(float) @ b.astype(float), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rows, columns, depth", [(7, 5, 6), (7, 80, 6), (300, 80, 130), (300, 4, 50),
                                                   (2000, 16, 130)])
def test_gemm_tn_beta0_multiplies_by_zero_then_adds_in_order(rows, columns, depth):
    """a transposed (the first three) or b and c (the last two, where a is the larger copy),
    serial and threaded."""
    from darknetpy.cpu.backward import gemm_tn_beta0
    rng = np.random.default_rng(columns)
    a = np.abs(rng.standard_normal((depth, rows))).astype(F32)
    b = rng.standard_normal((depth, columns)).astype(F32)
    c = rng.standard_normal((rows, columns)).astype(F32)
    b[:, 0] = -0.0      # column 0: every product -0, and c*0 = -0 where c < 0
    c[:, 0] = -np.abs(c[:, 0])
    c[1, 1] = np.inf    # inf * 0 is NaN, and stays NaN
    want = c * F32(0)
    for k in range(depth):
        want = want + a[k][:, None] * b[k][None, :]
    gemm_tn_beta0(a, b, True, c, True)
    assert np.array_equal(c.view(np.uint32), want.view(np.uint32))
    assert np.signbit(c[:, 0]).all()


@pytest.mark.slow
def test_no_fma_in_the_gemm_nt_lane_combination():
    """Darknet's build has no fused multiply-add, nor may the kernel that folds gemm_nt's tail
    products into its lanes (compiled here without threads: the same loop body)."""
    import re

    import numba
    from darknetpy.cpu import backward
    rng = np.random.default_rng(3)
    for k in (8, 9, 10, 11):      # every remainder form
        a, b = rng.standard_normal((3, k)).astype(F32), rng.standard_normal((4, k)).astype(F32)
        backward.gemm_nt_add(a, b, True, True, np.zeros((3, 4), F32), True)
    fn = backward._gemm_nt_combine
    options = {key: v for key, v in fn.targetoptions.items() if key not in ("nopython", "cache", "parallel")}
    assert not options.get("fastmath")
    fresh = numba.njit(**options)(fn.py_func)   # cached code keeps no assembly to inspect
    fma = re.compile(r"\bv?f(n)?m(add|sub)[a-z0-9]*\b", re.I)
    for sig in fn.signatures:
        fresh.compile(sig)
        asm = fresh.inspect_asm(sig)
        assert "mulss" in asm or "mulps" in asm
        assert not fma.search(asm)
