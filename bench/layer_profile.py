#!/usr/bin/env python
"""Per-layer time of one darknetpy forward pass, hot layers first.

    python bench/layer_profile.py                          # yolov2 608, numerics darknet (exact), 2 threads
    python bench/layer_profile.py --model darknet19 --threads 1 --numerics fast --repeat 5
    python bench/layer_profile.py --split                  # conv time split into im2col / GEMM / epilogue
    python bench/layer_profile.py --unfused                # the epilogue as a pass of its own

Runs the layers one by one as Network.forward_layers does, timing each (median over
--repeat passes after one warm-up pass), and prints a markdown table sorted by time with
each layer's share of the total, the running share, and the convolutions' GFLOP/s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MODELS = ["yolov2", "yolov2-voc", "yolov2-tiny", "yolo9000", "darknet19"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="yolov2", help=f"one of {', '.join(MODELS)} (default yolov2)")
    ap.add_argument("--numerics", default="darknet", choices=["darknet", "ieee", "fast"],
                    help="darknet = exact (default), fast = BLAS convolutions")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5, help="timed passes (default 5)")
    ap.add_argument("--split", action="store_true",
                    help="also time each convolution's im2col, GEMM and epilogue separately")
    ap.add_argument("--top", type=int, default=0, help="print only the N slowest layers (0: all)")
    ap.add_argument("--unfused", action="store_true",
                    help="run the convolutions as cpu.convolution.convolution then epilogue (the epilogue as "
                         "a pass of its own) instead of the layer's forward (epilogue per column block)")
    return ap.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    os.environ.setdefault("NUMBA_NUM_THREADS", str(ARGS.threads))
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(BENCH)]

import numpy as np  # noqa: E402

import _blas  # noqa: E402


def unfused_convolution(layer, x, numerics, workspace):
    from darknetpy.cpu.convolution import convolution, epilogue

    bn = (layer.rolling_mean, layer.rolling_variance, layer.scales) if layer.batch_normalize else None
    out = convolution(x.reshape(layer.in_shape), layer.weights, layer.groups, layer.size, layer.stride,
                      layer.padding, layer.out_shape[1:], workspace, numerics.exact, ftz=numerics.ftz)
    epilogue(out, bn, layer.biases, layer.activation, numerics.ftz)
    return out.reshape(-1)


def forward_timed(net, x, unfused=False):
    """Every layer's flat output for x and its seconds, each layer run on its own (no
    fused pairs, no arena); unfused: convolutions as one im2col + GEMM, then the epilogue."""
    from darknetpy.layers.base import NETWORK_INPUT, Step

    ex = net.executor
    x = ex.check_input(x).reshape(1, *net.options.input_shape)
    outputs, times = [], []
    for layer in net.layers:
        t = time.perf_counter()
        inputs = [x if s == NETWORK_INPUT else outputs[s] for s in layer.sources]
        if layer.type == "convolutional" and unfused:
            out = unfused_convolution(layer, inputs[0], net.numerics, net.workspace).reshape(1, *layer.out_shape)
        else:
            out = np.empty((1, *layer.out_shape), np.float32) if layer.writes_output else None
            out = layer.forward(Step(inputs, out, ex.kernels, net.numerics, ex.workspace, ex.state[layer.index]))
        times.append(time.perf_counter() - t)
        outputs.append(out)
    return [out.reshape(-1) for out in outputs], times


def conv_split(net, outputs, x, repeat):
    """{layer index: (im2col s, GEMM s, epilogue s)} for the convolutions, each part timed
    alone, as one im2col of the whole matrix and one GEMM (not by column blocks)."""
    from darknetpy.cpu import gemm
    from darknetpy.cpu.convolution import epilogue
    from darknetpy.cpu.im2col import im2col

    multiply = gemm.gemm_exact if net.numerics.exact else gemm.gemm_fast
    parts = {}
    widest = max(layer.weights.size // layer.filters * layer.out_shape[1] * layer.out_shape[2]
                 for layer in net.layers if layer.type == "convolutional")
    workspace = np.empty(widest, np.float32)
    for layer in net.layers:
        if layer.type != "convolutional" or layer.groups != 1:
            continue
        inp = x.reshape(-1) if layer.index == 0 else outputs[layer.index - 1]
        c, h, w = layer.in_shape
        _, oh, ow = layer.out_shape
        k, n = layer.weights.shape[1], oh * ow
        im = inp.reshape(c, h, w)
        out = np.empty((layer.filters, n), np.float32)
        t_im, t_mm, t_ep = [], [], []
        for _ in range(repeat + 1):
            t = time.perf_counter()
            if layer.size == 1:
                b = inp[:k * n].reshape(k, n)
            else:
                b = workspace[:k * n].reshape(k, n)
                im2col(im, layer.size, layer.stride, layer.padding, b)
            t_im.append(time.perf_counter() - t)
            t = time.perf_counter()
            multiply(layer.weights, b, out)
            t_mm.append(time.perf_counter() - t)
            bn = (layer.rolling_mean, layer.rolling_variance, layer.scales) if layer.batch_normalize else None
            t = time.perf_counter()
            epilogue(out, bn, layer.biases, layer.activation, net.numerics.ftz)
            t_ep.append(time.perf_counter() - t)
        parts[layer.index] = tuple(statistics.median(v[1:]) for v in (t_im, t_mm, t_ep))
    return parts


def shape(s):
    return "x".join(str(v) for v in (s[2], s[1], s[0]))  # w x h x c, as Darknet prints


def main(args) -> int:
    import numba

    import kit
    from darknetpy.network import Network

    if args.model not in MODELS:
        sys.exit(f"unknown model {args.model!r} (choose from {', '.join(MODELS)})")
    numba.set_num_threads(args.threads)
    _blas.set_threads(args.threads)
    net = Network(kit.cfg_path(args.model), kit.weights(kit.model(args.model)["weights"]),
                  numerics=args.numerics, warn=None)
    x = net.load_input(str(kit.KIT / "images" / "dog.png"))
    print("warming up (the first pass compiles the Numba kernels) ...", file=sys.stderr, flush=True)
    outputs, _ = forward_timed(net, x, args.unfused)
    runs = [forward_timed(net, x, args.unfused)[1] for _ in range(args.repeat)]
    per_layer = [statistics.median(r[i] for r in runs) for i in range(len(net.layers))]
    totals = [sum(r) for r in runs]
    total = statistics.median(totals)
    split = conv_split(net, outputs, x, max(1, args.repeat // 2)) if args.split else {}

    gflop = sum(l.bflops() for l in net.layers)
    print(f"## darknetpy per-layer profile: {args.model} "
          f"{net.width}x{net.height}, numerics={args.numerics}, {args.threads} thread(s)"
          f"{', convolution and epilogue as separate passes' if args.unfused else ''}")
    print()
    print(f"median of {args.repeat} passes: {total * 1e3:.1f} ms for {gflop:.2f} GFLOP "
          f"({gflop / total:.1f} GFLOP/s); load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print()
    head = "| # | layer | type | input | output | GFLOP | ms | share | cumulative | GFLOP/s |"
    rule = "|---:|---:|---|---|---|---:|---:|---:|---:|---:|"
    if split:
        head += " im2col ms | GEMM ms | GEMM GFLOP/s | epilogue ms |"
        rule += "---:|---:|---:|---:|"
    print(head)
    print(rule)
    order = sorted(range(len(net.layers)), key=lambda i: -per_layer[i])
    if args.top:
        order = order[:args.top]
    cumulative = 0.0
    layer_sum = sum(per_layer)
    for rank, i in enumerate(order, 1):
        layer = net.layers[i]
        t = per_layer[i]
        cumulative += t
        bf = layer.bflops()
        what = layer.type
        if layer.type == "convolutional":
            what = f"conv {layer.filters} {layer.size}x{layer.size}/{layer.stride} {layer.activation_name}"
        elif layer.type == "maxpool":
            what = f"maxpool {layer.size}x{layer.size}/{layer.stride}"
        line = (f"| {rank} | {i} | {what} | {shape(layer.in_shape)} | {shape(layer.out_shape)} | "
                f"{bf:.3f} | {t * 1e3:.2f} | {t / layer_sum:.1%} | {cumulative / layer_sum:.1%} | "
                f"{bf / t if bf else 0:.1f} |")
        if split:
            if i in split:
                a, b, c = split[i]
                line += f" {a * 1e3:.2f} | {b * 1e3:.2f} | {bf / b:.1f} | {c * 1e3:.2f} |"
            else:
                line += " | | | |"
        print(line.replace("| 0.0 |", "|  |"))
    if split:
        im, mm, ep = (sum(v[j] for v in split.values()) for j in range(3))
        print()
        print(f"convolutions, parts timed alone: im2col {im * 1e3:.1f} ms, GEMM {mm * 1e3:.1f} ms "
              f"({gflop / mm:.1f} GFLOP/s), epilogue {ep * 1e3:.1f} ms; all layers {layer_sum * 1e3:.1f} ms")
    by_type = {}
    for layer, t in zip(net.layers, per_layer):
        by_type[layer.type] = by_type.get(layer.type, 0.0) + t
    print()
    print("by type: " + ", ".join(f"{k} {v * 1e3:.1f} ms ({v / layer_sum:.1%})"
                                   for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
