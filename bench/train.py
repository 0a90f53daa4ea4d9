"""ms per training step (forward, backward, update): darknetpy (numerics darknet, fast)
against PyTorch's fp32 step on the same graph, interleaved, medians.

PyTorch runs the same convolutions, batch norm in training mode, leaky, Darknet's
maxpools (a size-2 stride-1 pool pads right and bottom with -inf), route and reorg, with a
sum-of-squares loss on the region layer's input and torch.optim.SGD with momentum and
weight decay (the region loss itself is not written in torch). Weights are random
(Darknet's layout, N(0, 0.01)), inputs random, truths two boxes per image.

    python3 bench/train.py --models yolov2-tiny-voc --size 416 --batch 8 --threads 1 2
    python3 bench/train.py --quick      # 128x128, batch 2, tiny-voc: a minute or so

Each engine runs in a process of its own and the parent asks them for one step each in
turn: in one process, PyTorch's OpenMP workers spin after each of its steps on the cores
darknetpy's next step needs (and the other way round), which slowed both.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CFG_DIR = REPO.parent / "shared" / "reference" / "darknet" / "cfg"
SETTLE_S = 0.5      # pause before each step: the last child's idle threads stop spinning


def cfg_copy(model: str, size: int, batch: int, folder: str) -> str:
    """The cfg with width, height, batch set and subdivisions=1."""
    text = (CFG_DIR / f"{model}.cfg").read_text()
    for key, value in (("width", size), ("height", size), ("batch", batch), ("subdivisions", 1)):
        text = re.sub(rf"(?m)^{key}\s*=.*$", f"{key}={value}", text, count=1)
    path = os.path.join(folder, f"{model}-{size}-b{batch}.cfg")
    Path(path).write_text(text)
    return path


def random_weights(net, rng) -> None:
    for layer in net.layers:
        if layer.type == "convolutional":
            layer.weights = (rng.standard_normal(layer.weights.shape) * 0.01).astype(np.float32)
            layer.biases = (rng.standard_normal(layer.filters) * 0.01).astype(np.float32)
            if layer.batch_normalize:
                layer.rolling_variance = np.ones(layer.filters, np.float32)


def truths(batch: int) -> np.ndarray:
    y = np.zeros((batch, 30 * 5), np.float32)
    y[:, :10] = [0.3, 0.4, 0.2, 0.3, 1, 0.6, 0.7, 0.4, 0.5, 2]
    return y


def torch_model(net):
    """The network up to the region layer as a torch.nn.Module (Darknet's semantics)."""
    import torch
    import torch.nn.functional as F

    class Darknet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = torch.nn.ModuleDict()
            for layer in net.layers:
                if layer.type == "convolutional":
                    conv = torch.nn.Conv2d(layer.in_shape[0], layer.filters, layer.size, layer.stride,
                                           layer.padding, bias=not layer.batch_normalize)
                    mods = [conv] + ([torch.nn.BatchNorm2d(layer.filters)] if layer.batch_normalize else [])
                    self.convs[str(layer.index)] = torch.nn.Sequential(*mods)

        def forward(self, x):
            outs = []
            for layer in net.layers:
                src = [x if s == -1 else outs[s] for s in layer.sources]
                if layer.type == "convolutional":
                    y = self.convs[str(layer.index)](src[0])
                    if layer.activation_name == "leaky":
                        y = F.leaky_relu(y, 0.1)
                elif layer.type == "maxpool":
                    pad = layer.padding
                    y = F.max_pool2d(F.pad(src[0], (0, pad, 0, pad), value=float("-inf")) if pad else src[0],
                                     layer.size, layer.stride)
                elif layer.type == "route":
                    y = torch.cat(src, 1)
                elif layer.type == "reorg":
                    n, c, h, w = src[0].shape
                    s = layer.stride
                    y = src[0].reshape(n, c // (s * s), h, s, w, s).permute(0, 3, 5, 1, 2, 4).reshape(
                        n, c * s * s, h // s, w // s)
                elif layer.type == "region":
                    return src[0]
                else:
                    raise ValueError(layer.type)
                outs.append(y)
            return outs[-1]

    return Darknet()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_step(engine: str, cfg: str, batch: int, size: int):
    """The training step of one engine: "darknet" or "fast" (darknetpy's numerics) or
    "torch", on the same random inputs and truths."""
    import darknetpy
    from darknetpy.train import Trainer

    rng = np.random.default_rng(0)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    y = truths(batch)
    net = darknetpy.load(cfg, None, numerics="darknet" if engine == "torch" else engine)
    random_weights(net, rng)
    if engine != "torch":
        trainer = Trainer(net, numerics=engine, log=lambda line: None)
        return lambda: trainer.train(x, y)
    import torch
    module = torch_model(net)
    opt = torch.optim.SGD(module.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    tx = torch.from_numpy(x)

    def torch_step():
        opt.zero_grad()
        out = module(tx)
        loss = (out * out).sum()
        loss.backward()
        opt.step()
    return torch_step


def serve(engine: str, cfg: str, batch: int, size: int, threads: int) -> None:
    """A child process: one engine, one step per line read; answers the step's ms, and
    its peak RSS on "rss". Each engine in a process of its own: two thread pools in one
    process (Numba's and PyTorch's OpenMP) take each other's cores while they wait."""
    import numba
    numba.set_num_threads(threads)
    if engine == "torch":
        import torch
        torch.set_num_threads(threads)
    step = make_step(engine, cfg, batch, size)
    step()                                   # compile / warm up
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "rss":
            print(f"{peak_rss_mib():.0f}", flush=True)
            continue
        start = time.perf_counter()
        step()
        print(f"{(time.perf_counter() - start) * 1e3:.3f}", flush=True)


class Child:
    def __init__(self, engine, cfg, batch, size, threads):
        self.p = subprocess.Popen([sys.executable, __file__, "--serve", engine, cfg, str(batch), str(size),
                                   str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{engine}: the child process ended before its first step")

    def ask(self, line: str) -> float:
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return float(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


def bench(model: str, size: int, batch: int, threads: int, repeat: int, numerics: list[str], folder: str) -> dict:
    """Median ms per step of each engine, steps interleaved (one of each in turn), and
    each child's peak RSS in MiB."""
    cfg = cfg_copy(model, size, batch, folder)
    names = {n: f"darknetpy {n}" for n in numerics} | {"torch": "pytorch fp32"}
    children = {name: Child(engine, cfg, batch, size, threads) for engine, name in names.items()}
    try:
        times = {name: [] for name in children}
        for _ in range(repeat):
            for name, child in children.items():
                time.sleep(SETTLE_S)
                times[name].append(child.ask("step"))
        rss = {name: child.ask("rss") for name, child in children.items()}
    finally:
        for child in children.values():
            child.close()
    return {name: statistics.median(t) for name, t in times.items()}, rss


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--serve":
        engine, cfg, batch, size, threads = sys.argv[2:7]
        serve(engine, cfg, int(batch), int(size), int(threads))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["yolov2-tiny-voc", "yolov2-voc"])
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--numerics", nargs="+", default=["darknet", "fast"])
    p.add_argument("--quick", action="store_true", help="128x128, batch 2, yolov2-tiny-voc, 2 threads")
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.size, args.batch, args.threads = ["yolov2-tiny-voc"], 128, 2, [2]
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: pip install torch", file=sys.stderr)
        return 2
    engines = [f"darknetpy {k}" for k in args.numerics] + ["pytorch fp32"]
    print("| model | size | batch | threads | " + " | ".join(f"{n} ms" for n in engines)
          + " | exact/torch | " + " | ".join(f"{n} peak RSS MiB" for n in engines) + " |")
    print("|" + " --- |" * (5 + 2 * len(engines)))
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models:
            for threads in args.threads:
                ms, rss = bench(model, args.size, args.batch, threads, args.repeat, args.numerics, folder)
                ratio = ms.get("darknetpy darknet", float("nan")) / ms["pytorch fp32"]
                print(f"| {model} | {args.size} | {args.batch} | {threads} | "
                      + " | ".join(f"{v:.0f}" for v in ms.values()) + f" | {ratio:.1f} | "
                      + " | ".join(f"{v:.0f}" for v in rss.values()) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
