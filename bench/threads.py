"""Thread scaling of the CPU engine: 1 against 2 threads, on a quiet machine, with one
core busy with another process, and with two darknetpy processes side by side; and the
work split at many threads, simulated from each layer's work units.

    python3 bench/threads.py                       # every model, exact and fast
    python3 bench/threads.py --models yolov2-tiny --numerics darknet --rounds 5
    python3 bench/threads.py --split-only          # the simulation alone (no timing)

Every timed pass runs in a child process (one per model and numerics) that loads the
kit's model with its random weights and the letterboxed dog.png; the parent tells it
how many threads to use for each pass. Rounds alternate 1 and 2 threads, and the
figures are medians, so a change in the machine's load hits both thread counts alike.
"busy": a `while True: pass` process runs during the rounds (unpinned, as another
program would be). "two processes": two children of 2 threads each run the same number
of passes at the same time; their summed passes per second against one child's alone.
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

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

MODELS = {"yolov2": 608, "yolov2-voc": 416, "yolov2-tiny": 416, "darknet19": 256}
GOAL_QUIET = {"yolov2": 1.8, "yolov2-voc": 1.8, "yolov2-tiny": 1.6, "darknet19": 1.6}
GOAL_BUSY = 1.05            # 2-thread ms / 1-thread ms with a busy core, at most
SIM_THREADS = (8, 16, 64)


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- child

def load(model: str, numerics: str):
    import kit
    from darknetpy.network import Network

    net = Network(str(kit.cfg_path(model)), kit.weights(kit.model(model)["weights"]),
                  numerics=numerics, warn=None)
    x = net.load_input(str(kit.KIT / "images" / "dog.png"))
    return net, x


def serve(model: str, numerics: str) -> None:
    """Answer {"threads": n, "passes": k} lines with {"ms": [...], "t0": ..., "t1": ...}."""
    import numba

    net, x = load(model, numerics)
    for n in (1, 2, 1, 2):
        numba.set_num_threads(n)
        net.forward(x)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        numba.set_num_threads(cmd["threads"])
        ms = []
        t0 = time.time()
        for _ in range(cmd["passes"]):
            t = time.perf_counter()
            net.forward(x)
            ms.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"ms": ms, "t0": t0, "t1": time.time()}), flush=True)


class Child:
    def __init__(self, model, numerics, threading_layer=None):
        env = dict(os.environ)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        if threading_layer:
            env["NUMBA_THREADING_LAYER"] = threading_layer
        self.p = subprocess.Popen([sys.executable, __file__, "--serve", model, numerics],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = self.p.stdout.readline()
        if not ready:
            raise RuntimeError(f"{model} {numerics}: the child process ended before it was ready")

    def send(self, threads, passes):
        self.p.stdin.write(json.dumps({"threads": threads, "passes": passes}) + "\n")
        self.p.stdin.flush()

    def receive(self):
        return json.loads(self.p.stdout.readline())

    def run(self, threads, passes=1):
        self.send(threads, passes)
        return self.receive()

    def close(self):
        try:
            self.p.stdin.write(json.dumps({"quit": True}) + "\n")
            self.p.stdin.flush()
        except OSError:
            pass
        self.p.wait(timeout=30)


class Busy:
    """Another program keeping one core busy: `while True: pass` in its own process."""

    def __enter__(self):
        self.p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.p.kill()
        self.p.wait()


# ---------------------------------------------------------------------------- timing

def interleaved(child, rounds):
    """Median ms at 1 and 2 threads, rounds alternating."""
    ms = {1: [], 2: []}
    for r in range(rounds):
        for n in ((1, 2) if r % 2 == 0 else (2, 1)):
            ms[n] += child.run(n)["ms"]
    return {n: statistics.median(v) for n, v in ms.items()}


def two_processes(a, b, passes):
    """Passes per second of a and b together (2 threads each, started at once) and of a
    alone, as measured in the same call."""
    alone = a.run(2, passes)
    a.send(2, passes)
    b.send(2, passes)
    ra, rb = a.receive(), b.receive()
    # the window where both ran: from the later start to the earlier end
    t0, t1 = max(ra["t0"], rb["t0"]), min(ra["t1"], rb["t1"])
    both = 0.0
    for r in (ra, rb):
        # passes finished inside the window, by each pass's end time
        t, done = r["t0"], 0
        for ms in r["ms"]:
            t += ms / 1e3
            done += t0 <= t <= t1
        both += done / max(t1 - t0, 1e-9)
    return {"alone": passes / (alone["t1"] - alone["t0"]), "both": both}


def measure(model, numerics, args):
    log(f"== {model} {numerics}")
    child = Child(model, numerics, args.threading_layer)
    row = {"model": model, "numerics": numerics}
    try:
        row["quiet"] = interleaved(child, args.rounds)
        log(f"   quiet: {row['quiet']}")
        with Busy():
            row["busy"] = interleaved(child, args.rounds)
        log(f"   busy: {row['busy']}")
        if not args.no_pair:
            other = Child(model, numerics, args.threading_layer)
            try:
                row["pair"] = two_processes(child, other, max(2, args.rounds // 2))
            finally:
                other.close()
            log(f"   two processes: {row['pair']}")
    finally:
        child.close()
    return row


def table(rows) -> list[str]:
    out = ["| model | numerics | quiet 1t ms | quiet 2t ms | quiet 1t/2t (goal) | busy 1t ms | busy 2t ms "
           f"| busy 2t/1t (goal <= {GOAL_BUSY}) | two processes / one (goal >= 1) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        q, b = r["quiet"], r["busy"]
        pair = f"{r['pair']['both'] / r['pair']['alone']:.2f}" if "pair" in r else ""
        out.append(f"| {r['model']} {MODELS[r['model']]} | {r['numerics']} | {q[1]:.0f} | {q[2]:.0f} | "
                   f"{q[1] / q[2]:.2f} ({GOAL_QUIET[r['model']]}) | {b[1]:.0f} | {b[2]:.0f} | "
                   f"{b[2] / b[1]:.2f} | {pair} |")
    return out


# ---------------------------------------------------------------------------- simulation

def split_table(model, threads_list) -> list[str]:
    """Per layer with a parallel region of its own: its units and the largest share of
    its time a thread idles, at each thread count (darknetpy/cpu/work_split.py)."""
    from darknetpy.cpu import work_split

    net, _ = load(model, "darknet")
    splits = {t: work_split.network_split(net, t) for t in threads_list}
    out = [f"{model} {MODELS[model]} (exact numerics): work units and the largest idle share of a thread", "",
           "| layer | " + " | ".join(f"{t} threads" for t in threads_list) + " |",
           "|---|" + "---:|" * len(threads_list)]
    by_layer = {t: {i: s for i, _, s in splits[t]} for t in threads_list}
    kinds = {i: kind for t in threads_list for i, kind, _ in splits[t]}
    for index in sorted(kinds):
        cells = ["fused" if index not in by_layer[t] else "small: one thread" if by_layer[t][index].serial
                 else f"{by_layer[t][index].units} {by_layer[t][index].region}, {by_layer[t][index].idle:.0%}"
                 for t in threads_list]
        out.append(f"| {index} {kinds[index]} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("worst layer (of those split among threads): " + ", ".join(
        f"{t} threads {max(s.idle for _, _, s in splits[t] if not s.serial):.0%}" for t in threads_list))
    return out


# ---------------------------------------------------------------------------- main

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", nargs=2, metavar=("MODEL", "NUMERICS"), help=argparse.SUPPRESS)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ",".join(MODELS))
    ap.add_argument("--numerics", default="darknet,fast")
    ap.add_argument("--rounds", type=int, default=9, help="rounds per scenario (each: one pass at 1 and at 2 threads)")
    ap.add_argument("--no-pair", action="store_true", help="skip the two-process runs")
    ap.add_argument("--split-only", action="store_true", help="only the many-thread simulation")
    ap.add_argument("--threading-layer", choices=["omp", "tbb", "workqueue"],
                    help="NUMBA_THREADING_LAYER of the children (default: Numba's choice)")
    args = ap.parse_args(argv)
    args.models = args.models.split(",")
    args.numerics = args.numerics.split(",")
    for m in args.models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r} (choose from {', '.join(MODELS)})")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    out = [f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", ""]
    if not args.split_only:
        rows = [measure(m, n, args) for m in args.models for n in args.numerics]
        out += table(rows)
        out += ["", f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", ""]
    for m in args.models:
        out += split_table(m, SIM_THREADS) + [""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
