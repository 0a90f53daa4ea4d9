"""Child processes of bench/cpu.py. Not meant to be run by hand.

    _worker.py serve opencv --cfg C --weights W --input X.npy
    _worker.py serve gemm --shapes '[[M, K, N], ...]'
        Read JSON commands on stdin, one a line, answer one JSON line each on stdout:
        {"op": "run", "threads": n} -> {"ms": time of one forward (or one pass of all GEMMs)}
        {"op": "output", "layer": name-or-null, "path": p} -> {"shape": [...]} (OpenCV only;
        saves that layer's output to p), {"op": "quit"}.
        The first line written is {"ready": true, ...} (or {"error": "..."}).

    _worker.py rss ENGINE [options]
        Load one engine, run one forward and exit; the parent reads this process's peak
        RSS with os.wait4. ENGINE: darknetpy, onnxruntime, torch, opencv.

The OpenCV worker runs under the OpenCV 4 virtual environment's python (OpenCV 5 has no
Darknet importer), so nothing here imports darknetpy except the darknetpy rss mode.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

import numpy as np


def _reply(obj) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class OpenCV:
    def __init__(self, cfg, weights, input_path):
        import cv2

        self.cv2 = cv2
        self.net = cv2.dnn.readNetFromDarknet(cfg, weights)
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.x = np.load(input_path)[None]   # (1, 3, h, w), the letterboxed image
        self.info = {"version": cv2.__version__}

    def run(self, threads):
        self.cv2.setNumThreads(threads)
        t = time.perf_counter()
        self.net.setInput(self.x)
        self.net.forward()
        return (time.perf_counter() - t) * 1e3

    def output(self, layer, path):
        self.net.setInput(self.x)
        out = self.net.forward(layer) if layer else self.net.forward()
        np.save(path, out)
        return list(out.shape)


class Gemm:
    """numpy.matmul on each convolution's GEMM shape: weights (M, K) @ im2col (K, N)."""

    def __init__(self, shapes):
        import _blas

        self.blas = _blas
        rng = np.random.default_rng(0)
        self.ops = []
        for m, k, n in shapes:
            a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
            b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
            self.ops.append((a, b, np.empty((m, n), np.float32)))
        self.info = {"numpy": np.__version__, "blas_core": _blas.corename(),
                     "coretype_env": os.environ.get("OPENBLAS_CORETYPE", "")}

    def run(self, threads):
        self.blas.set_threads(threads)
        t = time.perf_counter()
        for a, b, c in self.ops:
            np.matmul(a, b, out=c)
        return (time.perf_counter() - t) * 1e3


def serve(args) -> None:
    try:
        if args.engine == "opencv":
            engine = OpenCV(args.cfg, args.weights, args.input)
        else:
            engine = Gemm(json.loads(args.shapes))
    except Exception as e:  # report, do not die silently
        _reply({"error": f"{type(e).__name__}: {e}".strip()[:2000]})
        return
    _reply({"ready": True, **engine.info})
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "run":
                _reply({"ms": engine.run(int(cmd["threads"]))})
            elif cmd["op"] == "output":
                _reply({"shape": engine.output(cmd.get("layer"), cmd["path"])})
            elif cmd["op"] == "quit":
                _reply({"bye": True})
                return
            else:
                _reply({"error": f"unknown op {cmd['op']!r}"})
        except Exception as e:
            _reply({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]})


def rss(args) -> None:
    x = np.load(args.input)
    n = args.threads
    if args.engine == "darknetpy":
        import numba
        from darknetpy.network import Network

        numba.set_num_threads(n)
        import _blas
        _blas.set_threads(n)
        net = Network(args.cfg, args.weights, numerics=args.numerics, warn=None)
        net.forward(x)
    elif args.engine == "onnxruntime":
        import peers

        session = peers.ort_session(args.onnx, n)
        session.run(None, {"input": x[None]})
    elif args.engine == "torch":
        import pickle

        import torch

        import peers

        torch.set_num_threads(n)
        with open(args.spec, "rb") as f:
            spec = pickle.load(f)
        model = peers.to_torch(spec)
        xt = torch.from_numpy(x[None])
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
            xt = xt.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            model(xt)
    elif args.engine == "opencv":
        import cv2

        cv2.setNumThreads(n)
        net = cv2.dnn.readNetFromDarknet(args.cfg, args.weights)
        net.setInput(x[None])
        net.forward()
    else:
        raise SystemExit(f"unknown engine {args.engine}")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("engine", choices=["opencv", "gemm"])
    s.add_argument("--cfg")
    s.add_argument("--weights")
    s.add_argument("--input")
    s.add_argument("--shapes")
    r = sub.add_parser("rss")
    r.add_argument("engine", choices=["darknetpy", "onnxruntime", "torch", "opencv"])
    r.add_argument("--input", required=True)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--cfg")
    r.add_argument("--weights")
    r.add_argument("--numerics", default="darknet")
    r.add_argument("--onnx")
    r.add_argument("--spec")
    r.add_argument("--channels-last", action="store_true")
    args = ap.parse_args()
    serve(args) if args.mode == "serve" else rss(args)


if __name__ == "__main__":
    main()
