"""darknetpy from two source trees, timed interleaved in one run: a change against its parent.

    git worktree add /tmp/before HEAD~3
    python bench/ab.py /tmp/before . [--models yolov2,yolov2-tiny] [--numerics darknet,fast]
                       [--threads 1,2] [--repeat 10] [--rss]

Each tree runs in a process of its own (its own Numba cache and threads) that loads a kit
model once and then times `Network.forward` on request; the rounds alternate which tree
goes first. The table gives each tree's median ms and the ratio after / before. --rss adds
each tree's peak RSS for one load and forward of each model (a fresh process per tree).
The models and weights are the reference kit's (tests/kit.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SERVE = r"""
import json, sys, time
tree, tests, model, numerics, once = sys.argv[1:6]
sys.path[:0] = [tree, tests]
import numba, numpy as np
import kit
from darknetpy.network import Network
net = Network(kit.cfg_path(model), kit.weights(kit.model(model)["weights"]), numerics=numerics, warn=None)
x = np.random.default_rng(0).random(net.options.inputs, dtype=np.float32)
net.forward(x)
if once == "1":
    sys.exit(0)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    numba.set_num_threads(cmd["threads"])
    net.forward(x)
    start = time.perf_counter()
    net.forward(x)
    print(json.dumps({"ms": 1e3 * (time.perf_counter() - start)}), flush=True)
"""


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", help="the source tree timed first as the reference")
    ap.add_argument("after", help="the source tree compared with it")
    ap.add_argument("--models", default="yolov2,yolov2-voc,yolov2-tiny,yolo9000,darknet19",
                    help="models of the reference kit")
    ap.add_argument("--numerics", default="darknet,fast")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--rss", action="store_true", help="also each tree's peak RSS per model")
    return ap.parse_args(argv)


def start(tree: str, model: str, numerics: str, threads: int) -> subprocess.Popen:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    proc = subprocess.Popen([sys.executable, "-c", SERVE, tree, str(REPO / "tests"), model, numerics, "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line or not json.loads(line).get("ready"):
        raise SystemExit(f"{tree}: the worker for {model} did not start")
    return proc


def ask(proc: subprocess.Popen, threads: int) -> float:
    proc.stdin.write(json.dumps({"threads": threads}) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())["ms"]


def peak_rss(tree: str, model: str, numerics: str) -> float:
    """MiB of peak RSS of a process that loads the model and runs one forward."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE, tree, str(REPO / "tests"), model, numerics, "1"])
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{tree}: the RSS run of {model} failed")
    return usage.ru_maxrss / 1024


def main(argv=None) -> int:
    args = parse_args(argv)
    trees = [str(Path(args.before).resolve()), str(Path(args.after).resolve())]
    threads = [int(t) for t in args.threads.split(",")]
    print(f"{'model':<13}{'numerics':<9}{'threads':>7}{'before ms':>11}{'after ms':>10}{'after/before':>14}")
    for model in args.models.split(","):
        for numerics in args.numerics.split(","):
            procs = [start(tree, model, numerics, max(threads)) for tree in trees]
            try:
                for t in threads:
                    times: list[list[float]] = [[], []]
                    for r in range(args.repeat):
                        order = (0, 1) if r % 2 == 0 else (1, 0)
                        for i in order:
                            time.sleep(0.2)
                            times[i].append(ask(procs[i], t))
                    b, a = statistics.median(times[0]), statistics.median(times[1])
                    print(f"{model:<13}{numerics:<9}{t:>7}{b:>11.1f}{a:>10.1f}{a / b:>14.3f}", flush=True)
            finally:
                for proc in procs:
                    proc.stdin.close()
                    proc.wait()
            if args.rss:
                b, a = (peak_rss(tree, model, numerics) for tree in trees)
                print(f"{model:<13}{numerics:<9}{'RSS MiB':>7}{b:>11.0f}{a:>10.0f}{a / b:>14.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
