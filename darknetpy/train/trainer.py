"""Trainer: Darknet's train_network on a Network, and the log line its trainers print.

`trainer.train(X, y)` runs `subdivisions` datums of `batch` rows each (X: batch *
subdivisions rows) and returns Darknet's loss, `(float)sum / (subdivisions*batch)`; each
layer's output, delta and parameters stay readable (`outputs`, `deltas`, `layer.params`).
"""
from __future__ import annotations

import math
import sys
from dataclasses import replace

import numpy as np

from ..cfg import read_cfg
from ..errors import DarknetError
from ..layers.region import COMPAT
from ..numerics import NUMERICS
from ..run.training import TrainingExecutor
from .rate import train_options

F32 = np.float32


def c_float(v) -> str:
    """printf("%f") of a float, NaN as glibc prints it."""
    v = float(v)
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    return f"{v:f}"


class Trainer:
    """Trains `net` (a darknetpy Network built from the cfg to train) in place.

    numerics: "darknet" (the stock -Ofast build, default: the network's), "ieee" (built
    without fast-math), "fast". compat: must be the network's (it decides how the
    network was built); "darknet-cpu" trains as the stock CPU build (empty region
    backward). `log`: where the printed lines go (a callable taking a str; default stderr).
    """

    def __init__(self, net, numerics: str | None = None, compat: str | None = None, log=None):
        if compat not in COMPAT:
            raise DarknetError(f"unknown compat {compat!r} (the only choice is darknet-cpu)")
        if compat != net.compat:
            raise DarknetError(f"compat={compat!r} but the network was built with compat={net.compat!r}: "
                               f"build it with the same compat")
        if numerics is not None and numerics not in NUMERICS:
            raise DarknetError(f"unknown numerics {numerics!r} (choose from {', '.join(NUMERICS)})")
        self.net = net
        self.numerics = net.numerics if numerics is None else NUMERICS[numerics]
        self.lines: list[str] = []
        self._print = log if log is not None else (lambda line: print(line, file=sys.stderr))
        self.options = train_options(read_cfg(net.cfg_path)[0])
        self.executor = TrainingExecutor(net.model, net.backend, self.numerics, self.options,
                                         seen=net.header.seen, log=self.log)
        self.avg_loss = F32(-1)
        self.detector = bool(net.model.detection_layers)
        for warning in self.options.warnings:
            self.log(warning)

    def log(self, line: str) -> None:
        self.lines.append(line)
        self._print(line)

    @property
    def layers(self):
        return self.net.layers

    @property
    def outputs(self) -> list:
        """Each layer's output of the last datum, (batch, *out_shape)."""
        return self.executor.outputs

    @property
    def deltas(self) -> list:
        return self.executor.deltas

    @property
    def seen(self) -> int:
        return self.executor.seen

    @property
    def rows(self) -> int:
        return self.options.batch * self.options.subdivisions

    def rate(self) -> np.float32:
        return self.executor.rate()

    def datum(self, x, truth, stages=None) -> np.float32:
        """train_network_datum on `batch` rows."""
        error = self.executor.datum(x, truth, stages)
        self.net.model.header = replace(self.net.model.header, major=0, minor=2, revision=0,
                                        seen=self.executor.seen)
        return error

    def train(self, X, y, images: int | None = None, stages=None) -> np.float32:
        """Darknet's train_network on X (batch*subdivisions rows, each the network's input)
        and y (the truths, one row per image); prints the trainer's log line (`images`:
        the data set's size, for the classifier's epoch; default len(X))."""
        n, batch = self.options.subdivisions, self.options.batch
        inputs = self.net.options.input_shape
        X = np.ascontiguousarray(X, np.float32).reshape(-1, *inputs)
        y = np.ascontiguousarray(y, np.float32).reshape(X.shape[0], -1)
        if X.shape[0] != n * batch:
            raise DarknetError(f"{X.shape[0]} rows, the network trains on batch x subdivisions = {n * batch}")
        total = F32(0)
        for i in range(n):
            rows = slice(i * batch, (i + 1) * batch)
            total = F32(total + self.datum(X[rows], y[rows], stages))
        loss = F32(total / F32(n * batch))
        self.finish_call(loss, len(X) if images is None else images)
        return loss

    def finish_call(self, loss, images: int) -> None:
        """After a train_network body: the trainer's running average and its log line."""
        if self.avg_loss < 0:
            self.avg_loss = loss
        self.avg_loss = F32(float(self.avg_loss) * .9 + float(loss) * .1)
        self.log(self.log_line(loss, images))

    def log_line(self, loss, images: int) -> str:
        """train_detector's or train_classifier's line, without its seconds field."""
        b, rate = self.executor.batch_num, c_float(self.rate())
        if self.detector:
            return (f"{b}: {c_float(loss)}, {c_float(self.avg_loss)} avg, {rate} rate, "
                    f"{b * self.rows} images")
        epoch = F32(F32(self.seen) / F32(images))
        return (f"{b}, {float(epoch):.3f}: {c_float(loss)}, {c_float(self.avg_loss)} avg, {rate} rate, "
                f"{self.seen} images")
