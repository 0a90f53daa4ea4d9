"""The first run of a model on a machine: how long `darknetpy detect` takes with an empty
Numba cache (the kernels compile), with a warm one, and after `darknetpy compile`.

    python3 bench/coldstart.py                      # yolov2-tiny of the reference kit, data/dog.jpg
    python3 bench/coldstart.py --cfg C --weights W --image I --rounds 2 --breakdown

Each measurement is a fresh process of this checkout (`python3 -m darknetpy`, the
repository first on PYTHONPATH) with NUMBA_CACHE_DIR pointing at a new empty folder, so
the kernels cached in the source tree are not used. Wall time is what the user waits;
CPU time (the children's user + system, the compiling child included: a first run
compiles in two processes, see darknetpy/kernel_cache.py) is what the compilation costs,
and moves less with the machine's load, which is printed with each line. --busy keeps a
`while True` process running meanwhile (a machine with no idle core). --breakdown also
runs one cold detect in a child and lists the kernels that process compiled by compile
time (Numba's own pass and LLVM timers, inclusive of the kernels each one calls; the
other process's part is not listed).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KIT = REPO.parent / "shared" / "reference"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def darknetpy(args: list[str], cache: str, cwd: str, nice: int) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stderr) of one `darknetpy ARGS` with NUMBA_CACHE_DIR=cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    cpu0, start = _children_cpu(), time.perf_counter()
    r = subprocess.run(["nice", "-n", str(nice), sys.executable, "-m", "darknetpy", *args], capture_output=True,
                       text=True, env=env, cwd=cwd)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if r.returncode != 0:
        raise SystemExit(f"darknetpy {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return wall, cpu, r.stderr


def breakdown(cfg: str, weights: str, image: str, cwd: str) -> None:
    """One cold detect in a child process (Numba reads NUMBA_CACHE_DIR once, at import, and
    this process has imported it), the kernels listed by compile time."""
    with tempfile.TemporaryDirectory(prefix="coldstart-breakdown-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        subprocess.run([sys.executable, __file__, "--breakdown-child", "--cfg", cfg, "--weights", weights,
                        "--image", image, "--cwd", cwd], env=env, check=True)


def breakdown_child(cfg: str, weights: str, image: str, cwd: str, top: int = 25) -> None:
    sys.path.insert(0, str(REPO))
    os.chdir(cwd)
    from numba.core import event

    stack, rows = [], []

    class Timer(event.Listener):
        def on_start(self, ev):
            stack.append(time.perf_counter())

        def on_end(self, ev):
            d = ev.data["dispatcher"]
            rows.append((time.perf_counter() - stack.pop(), len(stack),
                         f"{d.py_func.__module__}.{d.py_func.__qualname__}"))

    event.register("numba:compile", Timer())
    from darknetpy import cli

    start = time.process_time()
    cli.main(["detect", cfg, weights, image, "--no-draw", "-q"])
    print(f"\nbreakdown: {time.process_time() - start:.1f} s CPU in this process, {len(rows)} compilations "
          f"({sum(1 for r in rows if r[1] == 0)} called from Python); the slowest, inclusive:")
    for seconds, depth, name in sorted(rows, reverse=True)[:top]:
        print(f"{seconds:8.1f} s  {'  ' * depth}{name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cfg", default="cfg/yolov2-tiny.cfg")
    p.add_argument("--weights", default=None, help="default: the kit's yolov2-tiny.weights (regenerated if needed)")
    p.add_argument("--image", default="data/dog.jpg")
    p.add_argument("--cwd", default=str(KIT / "darknet"), help="where the paths are relative to (the kit's darknet/)")
    p.add_argument("--rounds", type=int, default=1, help="cold measurements of each kind")
    p.add_argument("--nice", type=int, default=10, help="niceness of the measured processes (the machine is shared)")
    p.add_argument("--breakdown", action="store_true", help="also list the kernels by compile time")
    p.add_argument("--busy", action="store_true", help="a `while True` process runs during the measurements")
    p.add_argument("--breakdown-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.breakdown_child:
        return breakdown_child(args.cfg, args.weights, args.image, args.cwd)
    weights = args.weights
    if weights is None:
        sys.path.insert(0, str(REPO / "tests"))
        import kit

        weights = str(kit.weights("yolov2-tiny.weights"))
    detect = ["detect", args.cfg, weights, args.image, "--no-draw", "-q"]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    print(f"{os.cpu_count()} CPUs, nice {args.nice}{', one core busy' if busy else ''}; each line: wall, CPU of the "
          f"processes, load average before it")
    try:
        measure(args, detect)
    finally:
        if busy is not None:
            busy.kill()
    if args.breakdown:
        breakdown(args.cfg, weights, args.image, args.cwd)


def measure(args, detect: list[str]) -> None:
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="coldstart-") as cache:
            load = _load()
            wall, cpu, err = darknetpy(detect, cache, args.cwd, args.nice)
            noticed = "notice printed" if "compiling darknetpy's kernels" in err else "NO NOTICE"
            print(f"cold detect:             {wall:6.1f} s wall {cpu:6.1f} s CPU   (load {load}; {noticed})")
            load = _load()
            wall, cpu, _ = darknetpy(detect, cache, args.cwd, args.nice)
            print(f"warm detect, same cache: {wall:6.1f} s wall {cpu:6.1f} s CPU   (load {load})")
        with tempfile.TemporaryDirectory(prefix="coldstart-") as cache:
            load = _load()
            wall, cpu, _ = darknetpy(["compile", args.cfg], cache, args.cwd, args.nice)
            print(f"darknetpy compile:       {wall:6.1f} s wall {cpu:6.1f} s CPU   (load {load})")
            load = _load()
            wall, cpu, err = darknetpy(detect, cache, args.cwd, args.nice)
            noticed = "compiled more" if "compiling darknetpy's kernels" in err else "nothing compiled"
            print(f"then the first detect:   {wall:6.1f} s wall {cpu:6.1f} s CPU   (load {load}; {noticed})")


if __name__ == "__main__":
    main()
