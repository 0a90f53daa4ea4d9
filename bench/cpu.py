#!/usr/bin/env python
"""Side-by-side CPU benchmark: darknetpy (exact and fast numerics) against its peers.

    python bench/cpu.py                        # all models, 1 and 2 threads, 10 rounds
    python bench/cpu.py --quick                # yolov2-tiny and darknet19, 3 rounds
    python bench/cpu.py --models yolov2 --threads 1 --repeat 20 --engines exact,ort
    python bench/cpu.py --no-rss               # skip the peak-RSS children

Prints a markdown table (stdout; progress goes to stderr): the median milliseconds of one
forward pass per engine, GFLOP/s (model GFLOP = the sum of the convolutions' bflops()),
and ratios darknetpy / peer (above 1: darknetpy is slower), then the peak RSS of each
engine measured in a fresh child process that loads the model and runs one forward.

Engines (a peer that is not installed is skipped with one line saying how to get it):

* exact    darknetpy, numerics="darknet" (bit-exact, the package's default)
* fast     darknetpy, numerics="fast" (the same GEMM kernel with fused multiply-adds; not bit-exact)
* ort      ONNX Runtime, an equivalent ONNX graph built from the same weights (bench/peers.py)
* torch    PyTorch eager, the same graph as a torch.nn module, the better of NCHW/channels_last
* opencv   OpenCV DNN's Darknet importer, in a subprocess of an OpenCV 4 virtual
           environment (OpenCV 5 dropped readNetFromDarknet); created on first use in
           .cache/bench-venv-opencv4 unless --no-setup
* floor    numpy.matmul of every convolution's GEMM (weights (M,K) @ im2col (K,N)), in a
           subprocess with OPENBLAS_CORETYPE=SkylakeX (Haswell on a CPU without AVX-512; read
           when OpenBLAS loads): what the convolutions would cost with nothing but BLAS GEMMs

Measurement: every engine runs --warmup times first (Numba compiles on the first call),
then --repeat rounds run each engine once per round, interleaved (A B C, B C A, ...), so
machine noise lands on all engines alike, each run after a pause of SETTLE_S (0.3 s) in
which the previous engine's spinning threads go to sleep. The peers are checked against darknetpy's
output (scope "backbone": the output of the last layer before [region]; "full": the
network's output) as max|peer - darknetpy| / max|darknetpy|, which must be below 1e-3.
"""
from __future__ import annotations

import argparse
import datetime
import faulthandler
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CACHE = REPO / ".cache" / "bench"
VENV = REPO / ".cache" / "bench-venv-opencv4"
MODELS = ["yolov2", "yolov2-voc", "yolov2-tiny", "yolo9000", "darknet19", "yolov3-416", "yolov3-tiny", "darknet53"]
V3_MODELS = {"yolov3-416", "yolov3-tiny", "darknet53"}     # from the YOLOv3 kit
QUICK_MODELS = ["yolov2-tiny", "darknet19"]
ENGINES = ["exact", "fast", "ort", "torch", "opencv", "floor"]
TOLERANCE = 1e-3
# Pause before each timed run: the engine before may leave worker threads spinning for a
# while (OpenBLAS about 2^28 cycles, ONNX Runtime and OpenMP pools too), which on 2 cores
# takes one from whichever engine runs next (with a 5 ms pause, darknetpy exact, which
# follows the OpenBLAS floor in every round, measured a 2-thread median twice its minimum)
SETTLE_S = 0.3
INSTALL = {
    "ort": "pip install onnxruntime onnx",
    "torch": "pip install torch==2.13.0   (the local CPU wheel; another version pulls CUDA packages)",
}


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help=f"comma-separated, from {','.join(MODELS)} (default: all)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeat", type=int, help="interleaved rounds, one run per engine each (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="runs per engine before timing (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help=f"{','.join(QUICK_MODELS)} with 3 rounds (unless --models/--repeat say otherwise)")
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"subset of {','.join(ENGINES)}")
    ap.add_argument("--input", choices=["image", "random"], default="image",
                    help="letterboxed kit dog.png (default) or uniform random in [0, 1)")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS measurement")
    ap.add_argument("--no-setup", action="store_true",
                    help=f"do not create the OpenCV 4 virtual environment ({VENV.relative_to(REPO)})")
    args = ap.parse_args(argv)
    args.models = args.models.split(",") if args.models else (QUICK_MODELS if args.quick else MODELS)
    for m in args.models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r} (choose from {', '.join(MODELS)})")
    if args.repeat is None:
        args.repeat = 3 if args.quick else 10
    args.threads = [int(t) for t in args.threads.split(",")]
    args.engines = args.engines.split(",")
    for e in args.engines:
        if e not in ENGINES:
            ap.error(f"unknown engine {e!r} (choose from {', '.join(ENGINES)})")
    if "exact" not in args.engines:
        args.engines.insert(0, "exact")   # the reference output and the ratios need it
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # Numba sizes its thread pool when it starts: it must allow the largest count asked for.
    os.environ.setdefault("NUMBA_NUM_THREADS", str(max(ARGS.threads)))
    # A cache of its own: Numba looks up compiled code by the source file's timestamp, so a
    # kernel edited (and recompiled by another process) while a long run is going would
    # hand this process machine code built from a different source. Children inherit it.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(CACHE / "numba-cache"))
    if int(os.environ["NUMBA_NUM_THREADS"]) < max(ARGS.threads):
        sys.exit(f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']} is below --threads {max(ARGS.threads)}")

sys.path[:0] = [str(REPO), str(REPO / "tests"), str(BENCH)]

import numpy as np  # noqa: E402

import _blas  # noqa: E402
import peers  # noqa: E402


# ---------------------------------------------------------------------------- engines

class Skip(Exception):
    """An engine that cannot run here; the message says why and how to fix it."""


class Engine:
    key = ""
    label = ""
    scope = "full"
    check = ""        # verification against darknetpy
    note = ""

    def warmup(self, threads: int, runs: int) -> None:
        for _ in range(runs):
            self.run(threads)

    def run(self, threads: int) -> float:
        raise NotImplementedError

    def rss_argv(self, threads: int):
        """(argv, env) of a child that loads this engine and runs one forward, or None."""
        return None

    def close(self) -> None:
        pass


class Darknetpy(Engine):
    def __init__(self, key, net, x):
        import numba

        self.numba = numba
        self.key = key
        self.label = f"darknetpy {key}"
        self.net = net
        self.x = x

    def run(self, threads):
        self.numba.set_num_threads(threads)
        _blas.set_threads(threads)       # any numpy product left on OpenBLAS uses the same count
        t = time.perf_counter()
        self.net.forward(self.x)
        return (time.perf_counter() - t) * 1e3

    def rss_argv(self, threads):
        return ([sys.executable, str(BENCH / "_worker.py"), "rss", "darknetpy", "--input", str(self.input_path),
                 "--threads", str(threads), "--cfg", self.net.cfg_path, "--weights", self.net.weights_path,
                 "--numerics", self.net.numerics.name], None)


class OnnxRuntime(Engine):
    key = "ort"

    def __init__(self, spec, x, ref, path):
        try:
            import onnx
            import onnxruntime
        except ImportError:
            raise Skip(f"onnxruntime/onnx not installed: {INSTALL['ort']}") from None
        self.label = f"onnxruntime {onnxruntime.__version__}"
        self.scope = spec.scope
        self.path = path
        onnx.save(peers.to_onnx(spec), str(path))
        self.sessions = {}
        self.feed = {"input": x[None]}
        self.check = check(self.session(1).run(None, self.feed)[0], ref)

    def session(self, threads):
        if threads not in self.sessions:
            self.sessions[threads] = peers.ort_session(str(self.path), threads)
        return self.sessions[threads]

    def run(self, threads):
        session = self.session(threads)
        t = time.perf_counter()
        session.run(None, self.feed)
        return (time.perf_counter() - t) * 1e3

    def rss_argv(self, threads):
        return ([sys.executable, str(BENCH / "_worker.py"), "rss", "onnxruntime", "--input", str(self.input_path),
                 "--threads", str(threads), "--onnx", str(self.path)], None)


class Torch(Engine):
    key = "torch"

    def __init__(self, spec, x, ref, spec_path):
        try:
            import torch
        except ImportError:
            raise Skip(f"torch not installed: {INSTALL['torch']}") from None
        self.torch = torch
        self.version = torch.__version__
        self.scope = spec.scope
        self.spec_path = spec_path
        # two modules: Module.to(memory_format=...) converts in place
        self.models = {False: peers.to_torch(spec),
                       True: peers.to_torch(spec).to(memory_format=torch.channels_last)}
        xt = torch.from_numpy(x[None].copy())
        self.inputs = {False: xt, True: xt.contiguous(memory_format=torch.channels_last)}
        self.layout = {}          # threads -> channels_last chosen
        self.threads = None
        checks = []
        for cl in (False, True):
            with torch.no_grad():
                checks.append(check(self.models[cl](self.inputs[cl]).numpy(), ref))
        self.check = max(checks, key=lambda c: float(c.split()[-1]))
        self.label = f"torch {self.version}"

    def _set_threads(self, threads):
        if self.threads != threads:
            self.torch.set_num_threads(threads)
            self.threads = threads

    def _time(self, threads, cl):
        self._set_threads(threads)
        with self.torch.no_grad():
            t = time.perf_counter()
            self.models[cl](self.inputs[cl])
            return (time.perf_counter() - t) * 1e3

    def warmup(self, threads, runs):
        """Run both layouts; keep the faster (median of 3 after the warm-up runs)."""
        times = {}
        for cl in (False, True):
            for _ in range(runs):
                self._time(threads, cl)
            times[cl] = statistics.median(self._time(threads, cl) for _ in range(3))
        self.layout[threads] = min(times, key=times.get)

    def run(self, threads):
        return self._time(threads, self.layout.get(threads, False))

    def label_for(self, threads):
        return f"torch {self.version} {'channels_last' if self.layout.get(threads) else 'NCHW'}"

    def rss_argv(self, threads):
        argv = [sys.executable, str(BENCH / "_worker.py"), "rss", "torch", "--input", str(self.input_path),
                "--threads", str(threads), "--spec", str(self.spec_path)]
        if self.layout.get(threads):
            argv.append("--channels-last")
        return argv, None


class Worker:
    """A bench/_worker.py serve process: JSON lines in, JSON lines out."""

    def __init__(self, argv, env=None):
        self.stderr = tempfile.TemporaryFile("w+")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                  text=True, env=env, cwd=str(BENCH))
        self.info = self._read()
        if "error" in self.info:
            self.close()
            raise RuntimeError(self.info["error"])

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            self.stderr.seek(0)
            tail = self.stderr.read()[-1500:].strip()
            raise RuntimeError(f"worker exited ({self.p.poll()}): {tail}")
        return json.loads(line)

    def ask(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.p.stdin.flush()
                self.p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()


def opencv_python(setup: bool) -> Path:
    """The OpenCV 4 venv's python, created (with opencv-python-headless<5 and numpy) if needed."""
    py = VENV / "bin" / "python"
    probe = [str(py), "-c", "import cv2, numpy; assert hasattr(cv2.dnn, 'readNetFromDarknet')"]
    if py.is_file() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    how = (f"python -m venv {VENV.relative_to(REPO)} && {VENV.relative_to(REPO)}/bin/pip install "
           f"'opencv-python-headless<5' numpy")
    if not setup:
        raise Skip(f"OpenCV 4 environment missing (OpenCV 5 has no Darknet importer): {how}")
    log(f"creating {VENV} (opencv-python-headless<5, numpy) ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "opencv-python-headless<5", "numpy"],
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        raise Skip(f"could not create the OpenCV 4 environment ({(e.stderr or b'').decode()[-300:].strip()}): "
                   f"{how}") from None
    if subprocess.run(probe, capture_output=True).returncode != 0:
        raise Skip(f"the OpenCV 4 environment has no cv2.dnn.readNetFromDarknet: {how}")
    return py


def without_region(cfg: str, path: Path) -> Path:
    """cfg with its [region] section (the last) cut off: the backbone, for OpenCV."""
    text = Path(cfg).read_text()
    cut = text.rfind("[region]")
    path.write_text(text[:cut])
    return path


class OpenCV(Engine):
    key = "opencv"

    def __init__(self, model, cfg, weights, spec, ref, input_path, setup):
        py = opencv_python(setup)
        self.py, self.weights, self.input_path = py, weights, input_path
        self.scope = "full"
        self.cfg = cfg
        self.worker = self._start(cfg)
        try:
            self.worker.ask(op="run", threads=1)
        except RuntimeError as e:
            if spec.scope != "backbone":
                self.worker.close()
                raise Skip(f"OpenCV cannot run {model}: {e}") from None
            # e.g. "Yolo9000 is not implemented": time what it can, the network without [region]
            self.worker.close()
            why = str(e).splitlines()[0].rsplit(") ", 1)[-1]   # after OpenCV's "(-213:...)" prefix
            self.note = f"OpenCV cannot run the region layer ({why}): backbone timed"
            self.cfg = str(without_region(cfg, CACHE / f"{model}-backbone.cfg"))
            self.scope = "backbone"
            self.worker = self._start(self.cfg)
        self.label = f"opencv {self.worker.info['version']}"
        out = CACHE / f"{model}-opencv-out.npy"
        # compare the output of darknetpy's layer spec.ref_index: OpenCV's final output when
        # there is no region (darknet19) or it was cut off, else its layer conv_<index>
        layer = f"conv_{spec.ref_index}" if self.scope == "full" and spec.scope == "backbone" else None
        try:
            self.worker.ask(op="output", layer=layer, path=str(out))
            self.check = check(np.load(out), ref)
        except RuntimeError as e:
            self.check = f"n/a ({str(e)[:60]})"

    def _start(self, cfg):
        return Worker([str(self.py), str(BENCH / "_worker.py"), "serve", "opencv", "--cfg", cfg,
                       "--weights", str(self.weights), "--input", str(self.input_path)])

    def run(self, threads):
        return self.worker.ask(op="run", threads=threads)["ms"]

    def rss_argv(self, threads):
        return ([str(self.py), str(BENCH / "_worker.py"), "rss", "opencv", "--input", str(self.input_path),
                 "--threads", str(threads), "--cfg", self.cfg, "--weights", str(self.weights)], None)

    def close(self):
        self.worker.close()


class Floor(Engine):
    key = "floor"
    scope = "conv GEMMs"

    def __init__(self, shapes):
        env = dict(os.environ, OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE", fastest_coretype()))
        self.worker = Worker([sys.executable, str(BENCH / "_worker.py"), "serve", "gemm",
                              "--shapes", json.dumps(shapes)], env=env)
        self.label = f"numpy.matmul floor ({self.worker.info['blas_core']})"
        self.check = "—"

    def run(self, threads):
        return self.worker.ask(op="run", threads=threads)["ms"]

    def close(self):
        self.worker.close()


def fastest_coretype() -> str:
    """OpenBLAS's kernels for this CPU: SkylakeX where it has AVX-512 (an older OpenBLAS
    misnames Zen 4), else Haswell (AVX2 + FMA; SkylakeX's would be illegal instructions)."""
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        flags = []
    return "SkylakeX" if "avx512f" in flags else "Haswell"


def check(out, ref) -> str:
    err = peers.rel_error(out, ref)
    return f"{'ok' if err < TOLERANCE else 'MISMATCH'} {err:.1e}"


# The parent is large (torch, the models): a child forked from it starts with the parent's
# high-water mark, which Linux carries into the child's ru_maxrss across exec. So a tiny
# launcher (python -S, no imports beyond the standard library) starts the measured child
# and reports resource.getrusage(RUSAGE_CHILDREN).ru_maxrss: at most the launcher's ~10 MiB
# comes along.
_LAUNCHER = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.exit(r)\n")


def child_rss_mib(argv, env=None) -> float | None:
    """Peak RSS (MiB) of a child process that loads one engine and runs one forward."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    p = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *argv], capture_output=True, text=True,
                       env=env, cwd=str(BENCH))
    if p.returncode != 0:
        log(f"  rss child failed ({p.returncode}): {p.stderr[-300:]}")
        return None
    return int(p.stdout.split()[-1]) / 1024.0


# ---------------------------------------------------------------------------- one model

def load_input(net, kind):
    import kit

    if kind == "image":
        return net.load_input(str(kit.KIT / "images" / "dog.png"))
    c, h, w = net.layers[0].in_shape
    return np.random.default_rng(0).random((c, h, w), dtype=np.float32)


def bench_model(model, args, skipped):
    import kit
    from darknetpy.network import Network

    k = kit.V3 if model in V3_MODELS else kit.V2
    cfg = str(k.cfg_path(model))
    weights = k.weights(k.model(model)["weights"])
    log(f"== {model}: loading")
    nets = {key: Network(cfg, weights, numerics=numerics, warn=None)
            for key, numerics in (("exact", "darknet"), ("fast", "fast")) if key in args.engines}
    net = nets["exact"]
    x = load_input(net, args.input)
    input_path = CACHE / f"{model}-input.npy"
    np.save(input_path, x)
    spec = peers.graph_spec(net, model)
    gflop = spec.gflop
    t = time.perf_counter()
    ref = net.forward_layers(x)[spec.ref_index]          # also compiles darknetpy's kernels
    log(f"   darknetpy first forward (compiles Numba kernels): {time.perf_counter() - t:.1f} s")

    engines: list[Engine] = [Darknetpy(k, n, x) for k, n in nets.items()]
    makers = {
        "ort": lambda: OnnxRuntime(spec, x, ref, CACHE / f"{model}.onnx"),
        "torch": lambda: Torch(spec, x, ref, spec_file(spec, CACHE / f"{model}.spec.pkl")),
        "opencv": lambda: OpenCV(model, cfg, weights, spec, ref, input_path, not args.no_setup),
        "floor": lambda: Floor(spec.conv_shapes()),
    }
    for key in ("ort", "torch", "opencv", "floor"):
        if key not in args.engines:
            continue
        try:
            engine = makers[key]()
        except Skip as e:
            skipped.setdefault(key, str(e))
            continue
        except Exception as e:   # a peer failing must not stop the others
            skipped.setdefault(key, f"{model}: {type(e).__name__}: {str(e)[:300]}")
            continue
        log(f"   {engine.label}: scope {engine.scope}, check {engine.check}" + (f"; {engine.note}" if engine.note else ""))
        engines.append(engine)
    for e in engines:
        e.input_path = input_path

    rows = []
    try:
        for threads in args.threads:
            log(f"   {threads} thread(s): warm-up")
            for e in engines:
                e.warmup(threads, args.warmup)
            times = {e.key: [] for e in engines}
            for r in range(args.repeat):
                order = engines[r % len(engines):] + engines[:r % len(engines)]
                for e in order:
                    times[e.key].append(e.run(threads))
                    time.sleep(SETTLE_S)    # the previous engine's spinning threads go to sleep
                log(f"   {threads} thread(s): round {r + 1}/{args.repeat}")
            med = {k: statistics.median(v) for k, v in times.items()}
            for e in engines:
                label = e.label_for(threads) if isinstance(e, Torch) else e.label
                rows.append(dict(model=model, gflop=gflop, threads=threads, engine=label, key=e.key,
                                 scope=e.scope, median=med[e.key], min=min(times[e.key]),
                                 exact_ratio=med["exact"] / med[e.key] if e.key != "exact" else None,
                                 fast_ratio=(med["fast"] / med[e.key] if "fast" in med and e.key not in
                                             ("exact", "fast") else None),
                                 check=e.check, note=e.note))
        rss = {}
        if not args.no_rss:
            threads = max(args.threads)
            for e in engines:
                spec_argv = e.rss_argv(threads)
                if spec_argv is not None:
                    log(f"   peak RSS: {e.label}")
                    rss[e.key] = child_rss_mib(*spec_argv)
    finally:
        for e in engines:
            e.close()
    return rows, rss


def spec_file(spec, path):
    import pickle

    with open(path, "wb") as f:
        pickle.dump(spec, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


# ---------------------------------------------------------------------------- report

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return platform.processor() or "?"
    name = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in lines if l.startswith("flags")), [])
    isa = [f for f in ("avx2", "fma", "avx512f") if f in flags]
    return f"{name} ({os.cpu_count()} logical CPUs; {', '.join(isa) or 'no AVX2'})"


def versions() -> str:
    import numba

    parts = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"numba {numba.__version__}"
             f" (threading layer {numba.threading_layer()})", f"OpenBLAS core {_blas.corename()}"]
    return ", ".join(parts)


def report_rows(rows) -> list[str]:
    return [f"| {r['model']} | {r['gflop']:.1f} | {r['threads']} | {r['engine']} | {r['scope']} | "
            f"{r['median']:.1f} | {r['min']:.1f} | {r['gflop'] / r['median'] * 1e3:.1f} | "
            f"{fmt_ratio(r['exact_ratio'])} | {fmt_ratio(r['fast_ratio'])} | {r['check']} |" for r in rows]


def fmt_ratio(r):
    return "" if r is None else f"{r:.2f}"


def report(rows, rss, skipped, notes, args, load_start, started) -> str:
    out = []
    now = datetime.datetime.now().astimezone()
    out.append("## darknetpy CPU benchmark")
    out.append("")
    out.append(f"- date: {now:%Y-%m-%d %H:%M %Z} (run took {time.time() - started:.0f} s)")
    out.append(f"- CPU: {cpu_model()}")
    out.append(f"- load average (1/5/15 min) at start: {load_start}; at end: {loadavg()}")
    out.append(f"- {versions()}")
    out.append(f"- {args.repeat} interleaved rounds after {args.warmup} warm-up runs per engine; "
               f"input: {'letterboxed kit dog.png' if args.input == 'image' else 'uniform random'}")
    out.append("- ms: median (and min) of one forward pass; GFLOP/s: model GFLOP (sum of conv bflops()) / "
               "median; exact/peer and fast/peer: darknetpy median / peer median (above 1: darknetpy slower)")
    out.append("- scope: full network, or backbone (the [region] layer left out; darknetpy always runs the "
               "full network); check: max|peer - darknetpy| / max|darknetpy| on the scope's output")
    out.append("")
    out.append("| model | GFLOP | threads | engine | scope | median ms | min ms | GFLOP/s | exact/peer | fast/peer "
               "| check |")
    out.append("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|")
    out += report_rows(rows)
    if rss:
        keys = [k for k in ENGINES if any(k in v for v in rss.values())]
        names = {"exact": "darknetpy exact", "fast": "darknetpy fast", "ort": "onnxruntime", "torch": "torch",
                 "opencv": "opencv"}
        out.append("")
        out.append(f"Peak RSS (MiB) of a fresh process that loads the model and runs one forward at "
                   f"{max(args.threads)} thread(s) (interpreter and libraries included):")
        out.append("")
        out.append("| model | " + " | ".join(names[k] for k in keys) + " |")
        out.append("|---|" + "---:|" * len(keys))
        for model, v in rss.items():
            cells = [("failed" if v.get(k, 0) is None else f"{v[k]:.0f}") if k in v else "" for k in keys]
            out.append(f"| {model} | " + " | ".join(cells) + " |")
    if notes or skipped:
        out.append("")
    for n in notes:
        out.append(f"- note: {n}")
    for key, why in skipped.items():
        out.append(f"- {key} not measured: {why}")
    return "\n".join(out)


def loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def main(args) -> int:
    started = time.time()
    load_start = loadavg()
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        import darknetpy.cpu.gemm  # noqa: F401
    except ImportError as e:
        sys.exit(f"darknetpy's GEMM kernels cannot be imported ({e}): darknetpy cannot run")
    faulthandler.enable()      # a crash in a native library leaves a traceback on stderr
    rows, rss, skipped, notes = [], {}, {}, []
    partial = CACHE / "last-run.json"   # the rows so far, in case a later model kills the run
    for model in args.models:
        try:
            model_rows, model_rss = bench_model(model, args, skipped)
        except Exception as e:
            log(f"{model}: failed: {type(e).__name__}: {e}")
            notes.append(f"{model}: not measured: {type(e).__name__}: {str(e)[:200]}")
            continue
        log("\n".join(report_rows(model_rows)))
        rows += model_rows
        if model_rss:
            rss[model] = model_rss
        for r in model_rows:
            if r["note"] and f"{model}: {r['engine']}: {r['note']}" not in notes:
                notes.append(f"{model}: {r['engine']}: {r['note']}")
        partial.write_text(json.dumps({"rows": rows, "rss": rss, "skipped": skipped, "notes": notes}, indent=1))
    for key in args.engines:
        if key in skipped:
            log(f"{key}: skipped: {skipped[key]}")
    print(report(rows, rss, skipped, notes, args, load_start, started))
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
