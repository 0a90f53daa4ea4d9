"""[net]'s training options and Darknet's `get_current_rate`, with its C types.

The rate is a float computed from float and double operands as network.c writes them;
`steps` are ints compared with the unsigned batch number, so a negative step is always
"greater" (yolov2-tiny-voc.cfg's `steps=-1,...` keeps the rate at learning_rate for ever).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np

from ..cfg import Section, atof, atoi
from ..errors import CfgError

F32 = np.float32
POLICIES = ("constant", "step", "exp", "poly", "steps", "sigmoid", "random")
SIZE_T = 1 << 64


@dataclass
class TrainOptions:
    """The [net] options training reads (parse_net_options)."""

    batch: int                 # images per datum (net->batch = batch / subdivisions)
    subdivisions: int
    learning_rate: np.float32
    momentum: np.float32
    decay: np.float32
    policy: str
    burn_in: int = 0
    power: np.float32 = F32(4)
    max_batches: int = 0
    step: int = 1
    scale: np.float32 = F32(1)
    gamma: np.float32 = F32(1)
    steps: list = field(default_factory=list)
    scales: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def train_options(section: Section) -> TrainOptions:
    """Read the [net] section as Darknet does; an unknown policy goes with constant."""
    get_int, get_float = section.get_int, section.get_float
    subdivisions = max(get_int("subdivisions", 1), 1)
    batch = max(get_int("batch", 1) // subdivisions, 1)
    name = section.get_str("policy", "constant")
    warnings = []
    if name not in POLICIES:
        warnings.append(f"Couldn't find policy {name}, going with constant")
        name = "constant"
    o = TrainOptions(batch, subdivisions, F32(get_float("learning_rate", .001)), F32(get_float("momentum", .9)),
                     F32(get_float("decay", .0001)), name, burn_in=get_int("burn_in", 0),
                     power=F32(get_float("power", 4)), max_batches=get_int("max_batches", 0), warnings=warnings)
    if name == "step":
        o.step, o.scale = get_int("step", 1), F32(get_float("scale", 1))
    elif name == "steps":
        o.steps, o.scales = section.get_list("steps", atoi), section.get_list("scales", atof)
        if not o.steps or not o.scales:
            raise CfgError(f"{section.where('policy')}: STEPS policy must have steps and scales in cfg file")
        if len(o.scales) < len(o.steps):
            raise CfgError(f"{section.where('scales')}: {len(o.steps)} steps but {len(o.scales)} scales")
        o.scales = [F32(s) for s in o.scales]
        if any(s < 0 for s in o.steps):
            o.warnings.append(f"warning: {section.where('steps')}: steps={','.join(map(str, o.steps))}: a negative "
                              f"step is compared with the unsigned batch number, so the learning rate never "
                              f"changes (as in Darknet)")
    elif name in ("exp", "sigmoid"):
        o.gamma = F32(get_float("gamma", 1))
        if name == "sigmoid":
            o.step = get_int("step", 1)
    return o


def current_rate(o: TrainOptions, batch_num: int, rng: random.Random | None = None) -> np.float32:
    """Darknet's get_current_rate for batch number `batch_num` (a size_t)."""
    lr = o.learning_rate
    if batch_num < o.burn_in % SIZE_T:
        return F32(float(lr) * math.pow(float(F32(F32(batch_num) / F32(o.burn_in))), float(o.power)))
    if o.policy == "constant":
        return lr
    if o.policy == "step":
        return F32(float(lr) * math.pow(float(o.scale), float(batch_num // (o.step % SIZE_T))))
    if o.policy == "steps":
        rate = lr
        for step, scale in zip(o.steps, o.scales):
            if step % SIZE_T > batch_num:
                return rate
            rate = F32(rate * scale)
        return rate
    if o.policy == "exp":
        return F32(float(lr) * math.pow(float(o.gamma), float(batch_num)))
    if o.policy == "poly":
        return F32(float(lr) * math.pow(float(F32(1) - F32(batch_num) / F32(o.max_batches)), float(o.power)))
    if o.policy == "random":
        rng = rng or random.Random(0)
        return F32(float(lr) * math.pow(float(F32(rng.random())), float(o.power)))
    # sigmoid: (batch_num - step) is unsigned, then converted to float
    z = F32(o.gamma * F32((batch_num - o.step) % SIZE_T))
    e = math.exp(float(z)) if z < 709 else math.inf
    return F32(float(lr) * (1.0 / (1.0 + e)))
