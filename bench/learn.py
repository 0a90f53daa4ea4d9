"""Does training learn? The synthetic shapes dataset (darknetpy.datasets), bench/learn.cfg
(a small YOLOv2-style detector) trained from Darknet's random initial weights with
`detector train --deterministic` on the CPU (NUMBA_NUM_THREADS=2), then `detector map`
on the validation images. Prints the time, the loss curve's ends and mAP@0.5, and writes
ROOT/learn.json (ROOT/backup/learn_loss.png is the loss chart).

    python bench/learn.py [--root DIR] [--max-batches N] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "bench" / "learn.cfg"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default="/tmp/darknetpy-learn", help="where the dataset and backup/ go")
    p.add_argument("--max-batches", type=int, default=None, help="stop early (default: the cfg's max_batches)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--valid", type=int, default=200)
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    from darknetpy.datasets import make_detection_dataset

    root = Path(args.root)
    data = make_detection_dataset(str(root), args.train, args.valid, size=48, seed=0)
    for old in (root / "backup").glob("learn*"):
        old.unlink()
    env = {**os.environ, "NUMBA_NUM_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cfg = root / "learn.cfg"
    cfg.write_text(CFG.read_text())
    cmd = [sys.executable, "-m", "darknetpy", "detector", "train", data, str(cfg), "--deterministic",
           "--no-progress"]
    if args.max_batches:
        cmd += ["--max-batches", str(args.max_batches)]
    start = time.time()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, cwd=root)
    seconds = time.time() - start
    weights = root / "backup" / "learn_final.weights"
    if not weights.exists():
        weights = root / "backup" / "learn.backup"
    out = root / "map.json"
    subprocess.run([sys.executable, "-m", "darknetpy", "detector", "map", data, str(cfg), str(weights),
                    "--json", str(out)], env=env, check=True, stdout=subprocess.DEVNULL, cwd=root)
    result = json.loads(out.read_text())
    log = [json.loads(line) for line in (root / "backup" / "learn.jsonl").read_text().splitlines()]
    summary = {"train_seconds": round(seconds, 1), "batches": log[-1]["batch"], "threads": args.threads,
               "first_avg_loss": log[0]["avg"], "last_avg_loss": log[-1]["avg"],
               "map": result["mAP"], "weights": str(weights)}
    (root / "learn.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
