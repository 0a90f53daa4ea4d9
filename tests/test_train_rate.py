"""get_current_rate: every policy and burn_in with Darknet's C types (hand-computed
values; the kit cases check steps with -1, burn_in and poly bit for bit)."""
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
