#!/usr/bin/env python
"""GPU benchmark: darknetpy (exact and fast numerics) on a CUDA device against PyTorch.

    python bench/gpu.py                      # yolov2 608, yolo9000 544, yolov2-tiny 416, darknet19 256; batch 1, 16
    python bench/gpu.py --quick              # yolov2-tiny and darknet19, batch 1, a few seconds per cell
    python bench/gpu.py --models yolov2 --batches 1 --engines exact,torch-fp32 --json out.json

Prints markdown (stdout; progress on stderr): per model and batch, the median ms per image
of every engine, the achieved TFLOP/s (model GFLOP = the sum of the convolutions' bflops(),
Darknet's count), that rate as a fraction of the GPU's float32 rates measured in the same
run, and the ratios darknetpy / peer (above 1: darknetpy is slower); then the exact mode's
per-layer convolution TFLOP/s on yolov2 608 against the goal (40% of the non-FMA rate).

Engines:

* exact       darknetpy, numerics="darknet", device="cuda:0" (bit-exact: no FMA)
* fast        darknetpy, numerics="fast", device="cuda:0" (cuBLAS convolutions)
* torch-fp32  the same graph as a torch.nn module (bench/peers.py, bench/gpu_torch.py), same
              weights, cuDNN (benchmark mode), eval, no_grad, TF32 off; NCHW or channels_last,
              whichever is faster after the warm-up (the table names it)
* torch-tf32  the same with torch.backends.cuda.matmul.allow_tf32 and cudnn.allow_tf32 on

Rates: the FMA rate is a random 8192^3 float32 matrix product with TF32 off (2 flops per
FMA); the non-FMA rate is half of it (the exact mode multiplies and adds separately).

Timing: CUDA events around each call, after --warmup calls per engine; --rounds rounds run
the engines in rotated order (A B C, B C A, ...), each engine --iters calls in a row (fewer
where one call is slow, to fit --seconds per model and batch); the median of all calls. A
darknetpy call is Network.forward on a host image: upload, forward, download of the output
(at batch 16, Network.forward_batch: each image on a CUDA stream of its own, the layers in
step); a torch call takes and leaves device tensors. Checks: max|x - exact| / max|exact|
on the output of the last layer before [region] (torch) or the network output (fast).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(BENCH)]

import numpy as np  # noqa: E402

MODELS = {"yolov2": 608, "yolo9000": 544, "yolov2-tiny": 416, "darknet19": 256}
QUICK_MODELS = ["yolov2-tiny", "darknet19"]
ENGINES = ["exact", "fast", "torch-fp32", "torch-tf32"]
PEERS = ["torch-fp32", "torch-tf32"]
NUMERICS = {"exact": "darknet", "fast": "fast"}
IMAGES = ["dog.png", "horses.png", "person.png", "eagle.png", "giraffe.png"]
GOAL = 0.40          # per-layer goal of the exact convolutions: this fraction of the non-FMA rate


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help=f"comma-separated, from {','.join(MODELS)} (default: all)")
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,16)")
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"subset of {','.join(ENGINES)}")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--iters", type=int, default=10, help="timed calls per engine per round, at most (default 10)")
    ap.add_argument("--warmup", type=int, default=3, help="calls per engine before timing (default 3)")
    ap.add_argument("--seconds", type=float, default=8.0,
                    help="timed seconds per model and batch, roughly (default 8): bounds --iters")
    ap.add_argument("--layers", default="yolov2", help="model of the per-layer profile ('' for none; default yolov2)")
    ap.add_argument("--layer-runs", type=int, default=5, help="forward passes of the per-layer profile (default 5)")
    ap.add_argument("--quick", action="store_true",
                    help=f"{','.join(QUICK_MODELS)}, batch 1, 3 rounds, 3 s per cell, no per-layer profile")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write every number as JSON")
    args = ap.parse_args(argv)
    args.models = args.models.split(",") if args.models else (QUICK_MODELS if args.quick else list(MODELS))
    for m in args.models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r} (choose from {', '.join(MODELS)})")
    args.batches = [int(b) for b in (args.batches or ("1" if args.quick else "1,16")).split(",")]
    if min(args.batches) < 1:
        ap.error("--batches must be positive")
    args.engines = args.engines.split(",")
    for e in args.engines:
        if e not in ENGINES:
            ap.error(f"unknown engine {e!r} (choose from {', '.join(ENGINES)})")
    if args.quick:
        args.rounds, args.seconds, args.layers = min(args.rounds, 3), min(args.seconds, 3.0), ""
    if args.layers and args.layers not in MODELS:
        ap.error(f"unknown --layers model {args.layers!r}")
    return args


# ---------------------------------------------------------------------------- timing

def cupy_event_ms(cupy, fn) -> float:
    """Milliseconds between CUDA events recorded on CuPy's current stream around fn()."""
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    fn()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end)


class NoDevice(Exception):
    """No CUDA device to run on."""


def fma_rate(n: int = 8192, repeat: int = 10) -> tuple[float, str]:
    """(TFLOP/s, how): the float32 FMA rate of a large random SGEMM with TF32 off."""
    try:
        import torch
        if torch.cuda.is_available():
            import gpu_torch
            return gpu_torch.sgemm_fma_tflops(n, repeat), f"torch.matmul {n}^3 float32, TF32 off"
    except ImportError:
        pass
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:    # CuPy missing, or no driver or device
        raise NoDevice(f"neither PyTorch nor CuPy sees a CUDA device ({type(e).__name__}: {e})") from None
    if os.environ.get("CUPY_TF32") == "1":
        raise RuntimeError("CUPY_TF32=1: CuPy's SGEMM would use TF32; unset it to measure the float32 rate")
    rng = cupy.random.default_rng(0)
    a, b = rng.random((n, n), dtype=cupy.float32), rng.random((n, n), dtype=cupy.float32)
    c = cupy.empty((n, n), cupy.float32)
    for _ in range(3):
        cupy.matmul(a, b, out=c)
    times = sorted(cupy_event_ms(cupy, lambda: cupy.matmul(a, b, out=c)) for _ in range(repeat))
    return 2.0 * n ** 3 / (times[len(times) // 2] * 1e-3) / 1e12, f"cupy.matmul {n}^3 float32"


# ---------------------------------------------------------------------------- engines

class Engine:
    key = ""
    label = ""
    note = ""
    check = ""

    def warmup(self, runs: int) -> None:
        for _ in range(runs):
            self.run()

    def run(self) -> float:
        """Device milliseconds of one call on the whole batch."""
        raise NotImplementedError


class Darknetpy(Engine):
    def __init__(self, key, net, images, cupy):
        self.key = key
        self.label = f"darknetpy {key}"
        self.net, self.images, self.cupy = net, images, cupy
        self.batch = len(images)
        notes = [f"Network.forward_batch: {self.batch} images, one CUDA stream each"] if self.batch > 1 else []
        notes.append(f"includes {copies_ms(cupy, images[0], net.output_layer.outputs):.3f} ms/image of "
                     f"host-device copies")
        self.note = "; ".join(notes)

    def _call(self):
        if self.batch > 1:
            self.net.forward_batch(self.images)
        else:
            self.net.forward(self.images[0])

    def run(self):
        return cupy_event_ms(self.cupy, self._call)


def copies_ms(cupy, x: np.ndarray, outputs: int, repeat: int = 10) -> float:
    """Median ms of one input upload and one output download, as Network.forward does them."""
    out = cupy.empty(outputs, cupy.float32)

    def copies():
        cupy.asarray(np.ascontiguousarray(x))
        cupy.asnumpy(out)
    copies()
    return statistics.median(cupy_event_ms(cupy, copies) for _ in range(repeat))


class TorchModels:
    """The peer module on the GPU twice, NCHW and channels_last (Module.to converts in place)."""

    def __init__(self, spec, images):
        import torch

        import gpu_torch

        self.torch, self.gpu_torch = torch, gpu_torch
        torch.backends.cudnn.benchmark = True
        x = torch.from_numpy(np.stack(images)).cuda()
        self.models = {False: gpu_torch.Batched(spec, "cuda"),
                       True: gpu_torch.Batched(spec, "cuda").to(memory_format=torch.channels_last)}
        self.inputs = {False: x.contiguous(), True: x.contiguous(memory_format=torch.channels_last)}
        self.version = torch.__version__


class Torch(Engine):
    def __init__(self, key, models: TorchModels):
        self.key = key
        self.tf32 = key == "torch-tf32"
        self.m = models
        self.channels_last = False
        self.label = f"torch {models.version} {'TF32' if self.tf32 else 'fp32'}"

    def forward(self, channels_last: bool):
        self.m.gpu_torch.set_tf32(self.tf32)
        with self.m.torch.no_grad():
            return self.m.models[channels_last](self.m.inputs[channels_last])

    def _time(self, channels_last: bool) -> float:
        self.m.gpu_torch.set_tf32(self.tf32)
        model, x = self.m.models[channels_last], self.m.inputs[channels_last]
        with self.m.torch.no_grad():
            return self.m.gpu_torch.event_ms(lambda: model(x))

    def warmup(self, runs):
        """Both layouts; keep the faster (median of 3 after the warm-up calls)."""
        times = {}
        for cl in (False, True):
            for _ in range(runs):
                self._time(cl)
            times[cl] = statistics.median(self._time(cl) for _ in range(3))
        self.channels_last = min(times, key=times.get)
        self.label += " channels_last" if self.channels_last else " NCHW"

    def run(self):
        return self._time(self.channels_last)

    def output(self) -> np.ndarray:
        """The first image's output, on the host."""
        return self.forward(self.channels_last)[0].float().cpu().numpy()


# ---------------------------------------------------------------------------- one model

def kit_images(net, batch: int) -> list[np.ndarray]:
    """`batch` letterboxed kit images (dog, horses, person, eagle, giraffe, dog, ...)."""
    import kit

    loaded = [net.load_input(str(kit.KIT / "images" / name)) for name in IMAGES[:batch]]
    return [loaded[i % len(loaded)] for i in range(batch)]


def gpu_network(cfg, weights, numerics):
    """darknetpy's Network on cuda:0, or the one-line reason it cannot be built."""
    try:
        from darknetpy.errors import DarknetError
        from darknetpy.network import Network

        net = Network(cfg, weights, numerics=numerics, warn=None, device="cuda:0")
    except (ImportError, DarknetError, TypeError, RuntimeError, OSError) as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if net.backend.xp is np:
        return "the GPU backend runs under the CUDA-on-CPU emulator (DARKNETPY_GPU_EMULATE): nothing to time"
    return net


def rel_error(out, ref) -> float:
    import peers

    return peers.rel_error(out, ref)


def check_text(err: float) -> str:
    return f"{'ok' if err < 1e-3 else 'MISMATCH'} {err:.1e}"


def load_engines(model, args, state):
    """The darknetpy networks and the PyTorch models of one model, plus its graph spec."""
    import kit
    import peers
    from darknetpy.network import Network

    cfg = str(kit.cfg_path(model))
    weights = kit.weights(kit.model(model)["weights"])
    host = Network(cfg, weights, warn=None)     # the CPU network: the spec and letterboxing only
    spec = peers.graph_spec(host, model)
    nets = {}
    for key in ("exact", "fast"):
        if key not in args.engines or state.get("no_darknetpy"):
            continue
        net = gpu_network(cfg, weights, NUMERICS[key])
        if isinstance(net, str):
            state["no_darknetpy"] = net
            log(f"darknetpy GPU backend not available ({net}): timing the PyTorch side only")
            nets.clear()
            break
        nets[key] = net
    return host, spec, nets


def bench_model(model, args, state) -> list[dict]:
    host, spec, nets = load_engines(model, args, state)
    images = kit_images(host, max(args.batches))
    refs = {}
    checks = {}
    try:
        if "exact" in nets:
            t = time.perf_counter()
            outputs = nets["exact"].forward_layers(images[0])
            log(f"   {model}: darknetpy exact first forward (compiles kernels): {time.perf_counter() - t:.1f} s")
            refs = {"backbone": outputs[spec.ref_index], "full": outputs[host.output_layer.index]}
        if "fast" in nets:
            fast = nets["fast"].forward(images[0])
            checks["fast"] = check_text(rel_error(fast, refs["full"])) if refs else "n/a"
    except Exception as e:     # a kernel that does not compile or launch: the PyTorch side still runs
        why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        state.setdefault("failures", []).append(f"{model}: darknetpy failed ({why[:200]}): PyTorch side only")
        log(f"   {model}: darknetpy failed ({why}): timing the PyTorch side only")
        nets, refs = {}, {}
    peers_wanted = [k for k in PEERS if k in args.engines]
    rows = []
    for batch in args.batches:
        engines = []
        if nets:
            import cupy
            engines += [Darknetpy(k, n, images[:batch], cupy) for k, n in nets.items()]
        if peers_wanted:
            models = TorchModels(spec, images[:batch])
            engines += [Torch(k, models) for k in peers_wanted]
        if not engines:
            continue
        rows += time_engines(model, spec, batch, engines, args)
        for e in engines:
            if isinstance(e, Torch) and batch == args.batches[0]:
                checks[e.key] = check_text(rel_error(e.output(), refs["backbone"])) if refs else "n/a"
        del engines
    for r in rows:
        r["check"] = "reference" if r["key"] == "exact" else checks.get(r["key"], "")
        r["scope"] = spec.scope if r["key"] in PEERS else "full"
    return rows


def time_engines(model, spec, batch, engines, args) -> list[dict]:
    log(f"   {model} batch {batch}: warm-up")
    cost = {}
    for e in engines:
        e.warmup(args.warmup)
        cost[e.key] = statistics.median(e.run() for _ in range(3))
    budget_ms = args.seconds * 1e3 / (args.rounds * len(engines))
    iters = {k: max(1, min(args.iters, int(budget_ms / max(ms, 1e-3)))) for k, ms in cost.items()}
    times = {e.key: [] for e in engines}
    for r in range(args.rounds):
        for e in engines[r % len(engines):] + engines[:r % len(engines)]:
            times[e.key] += [e.run() for _ in range(iters[e.key])]
    rows = []
    for e in engines:
        per_image = [t / batch for t in times[e.key]]
        rows.append(dict(model=model, size=MODELS[model], gflop=spec.gflop, batch=batch, key=e.key, engine=e.label,
                         ms=statistics.median(per_image), min=min(per_image), calls=len(per_image), note=e.note))
    log("\n".join(f"   {r['engine']}: {r['ms']:.3f} ms/image ({r['calls']} calls)" for r in rows))
    return rows


# ---------------------------------------------------------------------------- per layer

def profile_layers(net, x, runs: int, cupy) -> list[dict]:
    """Median device ms of each layer's forward over `runs` passes, from CUDA events
    recorded around the layer's own forward call (wrapped for the duration)."""
    events: dict[int, tuple] = {}

    def wrap(layer):
        inner = layer.forward

        def timed(*a, **k):
            start, end = cupy.cuda.Event(), cupy.cuda.Event()
            start.record()
            out = inner(*a, **k)
            end.record()
            events[layer.index] = (start, end)
            return out
        return timed

    for layer in net.layers:
        layer.forward = wrap(layer)
    samples: dict[int, list[float]] = {layer.index: [] for layer in net.layers}
    try:
        net.forward(x)
        for _ in range(runs):
            events.clear()
            net.forward(x)
            cupy.cuda.get_current_stream().synchronize()
            for index, (start, end) in events.items():
                samples[index].append(cupy.cuda.get_elapsed_time(start, end))
    finally:
        for layer in net.layers:
            del layer.forward
    return [dict(index=layer.index, type=layer.type, summary=layer.summary().strip(), gflop=layer.bflops(),
                 shape=conv_shape(layer), ms=statistics.median(samples[layer.index]) if samples[layer.index] else None)
            for layer in net.layers]


def conv_shape(layer) -> str:
    """M x K x N of a convolution's GEMM (filters, c/groups*size*size, out_h*out_w)."""
    if layer.type != "convolutional":
        return ""
    _, oh, ow = layer.out_shape
    k = layer.in_shape[0] // layer.groups * layer.size * layer.size
    return f"{layer.filters}x{k}x{oh * ow}"


def layer_profile(args, state) -> list[dict]:
    if not args.layers or state.get("no_darknetpy") or "exact" not in args.engines:
        return []
    import cupy

    import kit

    cfg = str(kit.cfg_path(args.layers))
    net = gpu_network(cfg, kit.weights(kit.model(args.layers)["weights"]), "darknet")
    if isinstance(net, str):
        return []
    log(f"   per-layer profile: {args.layers}, exact, {args.layer_runs} passes")
    return profile_layers(net, kit_images(net, 1)[0], args.layer_runs, cupy)


# ---------------------------------------------------------------------------- report

def ratios(rows) -> None:
    """r['vs'][peer] = r's ms / peer's ms, same model and batch (above 1: r is slower)."""
    for r in rows:
        r["vs"] = {}
        for p in rows:
            if p["key"] in PEERS and p is not r and (p["model"], p["batch"]) == (r["model"], r["batch"]):
                r["vs"][p["key"]] = r["ms"] / p["ms"]


def report_rows(rows, fma: float) -> list[str]:
    peers_present = [p for p in PEERS if any(r["key"] == p for r in rows)]
    head = ("| model | batch | engine | scope | ms/image | min | TFLOP/s | % FMA rate | % non-FMA rate | "
            + "".join(f"÷ {p} | " for p in peers_present) + "check | note |")
    out = [head, "|---|---:|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(peers_present) + "---|---|"]
    for r in rows:
        tflops = r["gflop"] / r["ms"]          # GFLOP per ms = TFLOP/s
        cells = [f"{r['model']} {r['size']}", str(r["batch"]), r["engine"], r.get("scope", "full"),
                 f"{r['ms']:.3f}", f"{r['min']:.3f}", f"{tflops:.2f}", f"{100 * tflops / fma:.1f}",
                 f"{200 * tflops / fma:.1f}"]
        cells += [f"{r['vs'][p]:.2f}" if p in r.get("vs", {}) else "" for p in peers_present]
        cells += [r.get("check", ""), r.get("note", "")]
        out.append("| " + " | ".join(cells) + " |")
    return out


def layer_rows(layers, fma: float) -> list[str]:
    nonfma = fma / 2
    out = ["| layer | conv | M x K x N | GFLOP | ms | TFLOP/s | % non-FMA rate | goal 40% |",
           "|---:|---|---|---:|---:|---:|---:|---|"]
    convs = [r for r in layers if r["type"] == "convolutional" and r["ms"]]
    for r in convs:
        tflops = r["gflop"] / r["ms"]
        out.append(f"| {r['index']} | {' '.join(r['summary'].split('->')[0].split())} | {r['shape']} | {r['gflop']:.3f} | "
                   f"{r['ms']:.3f} | {tflops:.2f} | {100 * tflops / nonfma:.1f} | "
                   f"{'met' if tflops >= GOAL * nonfma else 'below'} |")
    gflop, ms = sum(r["gflop"] for r in convs), sum(r["ms"] for r in convs)
    met = sum(r["gflop"] / r["ms"] >= GOAL * nonfma for r in convs)
    other = sum(r["ms"] for r in layers if r["type"] != "convolutional" and r["ms"])
    if ms:
        out.append(f"| all | {len(convs)} convolutions | | {gflop:.3f} | {ms:.3f} | {gflop / ms:.2f} | "
                   f"{100 * gflop / ms / nonfma:.1f} | {met}/{len(convs)} met |")
        out.append(f"| | other layers | | | {other:.3f} | | | |")
    return out


def report(rows, layers, fma, fma_how, device, versions, notes, args, started) -> str:
    ratios(rows)
    now = datetime.datetime.now().astimezone()
    out = ["## darknetpy GPU benchmark", "",
           f"- date: {now:%Y-%m-%d %H:%M %Z} (run took {time.time() - started:.0f} s)",
           f"- GPU: {device}; {versions}",
           f"- float32 FMA rate measured: {fma:.1f} TFLOP/s ({fma_how}); non-FMA rate: {fma / 2:.1f} TFLOP/s",
           f"- {args.rounds} interleaved rounds after {args.warmup} warm-up calls per engine, up to {args.iters} calls "
           f"per engine per round (about {args.seconds:g} s per model and batch); ms/image: median (and min) of "
           f"the calls' CUDA-event time over the batch; input: letterboxed kit images",
           "- TFLOP/s: model GFLOP (Darknet's bflops(), the region layer's none) / ms per image; "
           "÷ peer: this engine's ms / the peer's (above 1: slower); check: max|x - exact| / max|exact| "
           "(torch: on the last layer before [region]; fast: the network output)",
           ""]
    out += report_rows(rows, fma)
    if layers:
        out += ["", f"Exact mode, per layer, {args.layers} {MODELS[args.layers]}, batch 1 (median of "
                    f"{args.layer_runs} passes; CUDA events around each layer's forward):", ""]
        out += layer_rows(layers, fma)
    if notes:
        out.append("")
        out += [f"- note: {n}" for n in notes]
    return "\n".join(out)


def device_and_versions() -> tuple[str, str]:
    parts = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    device = "?"
    try:
        import cupy
        parts.append(f"cupy {cupy.__version__}")
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        device = name.decode() if isinstance(name, bytes) else str(name)
        parts.append(f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
                     f"driver {cupy.cuda.runtime.driverGetVersion()}")
    except Exception as e:   # CuPy missing or no device: the PyTorch side may still run
        parts.append(f"cupy unavailable ({type(e).__name__})")
    try:
        import torch
        parts.append(f"torch {torch.__version__} (cuDNN {torch.backends.cudnn.version()})")
        if torch.cuda.is_available():
            device = torch.cuda.get_device_name(0)
    except ImportError:
        parts.append("torch unavailable")
    return device, ", ".join(parts)


def main(args) -> int:
    started = time.time()
    device, versions = device_and_versions()
    log(f"{device}; {versions}")
    try:
        fma, fma_how = fma_rate()
    except NoDevice as e:
        print(f"bench/gpu.py: {e}", file=sys.stderr)
        return 2
    log(f"float32 FMA rate: {fma:.1f} TFLOP/s ({fma_how})")
    state: dict = {}
    rows, notes = [], []
    layers = []
    try:
        for model in args.models:
            try:
                rows += bench_model(model, args, state)
            except Exception as e:    # one model failing must not lose the others
                log(f"{model}: failed: {type(e).__name__}: {e}")
                notes.append(f"{model}: not measured: {type(e).__name__}: {str(e)[:200]}")
        try:
            layers = layer_profile(args, state)
        except Exception as e:
            log(f"per-layer profile failed: {type(e).__name__}: {e}")
            notes.append(f"per-layer profile not measured: {type(e).__name__}: {str(e)[:200]}")
    except KeyboardInterrupt:     # SIGINT from a time limit (bench/gpu_session.sh): report what was measured
        notes.append("interrupted (SIGINT): the rows above are what was measured before")
    notes[:0] = state.get("failures", [])
    if state.get("no_darknetpy"):
        notes.insert(0, f"darknetpy GPU backend not available ({state['no_darknetpy']}): PyTorch side only")
    text = report(rows, layers, fma, fma_how, device, versions, notes, args, started)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(device=device, versions=versions, fma_tflops=fma, rows=rows,
                                                   layers=layers, notes=notes), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
