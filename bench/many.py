"""Images per second over a folder: the plain one-image loop against many.py's pipeline.

    python bench/many.py [--count 200] [--numerics darknet fast] [--ray]

Makes `--count` images (default 200) from the kit's images (../shared/reference/images,
random crops and resizes, half JPEG and half PNG) in a temporary folder, loads yolov2-tiny
with the kit's weights (tests/kit.py regenerates them into .cache/), and runs each row:

* plain: `Network.detect(path)` image after image (decode, letterbox, forward, boxes);
* pipeline: `many.detect_many` with 2 decoding threads (the command's default), and with
  2 decoding processes;
* with --ray: Ray Data with darknetpy.ray_actor.Detector on a local Ray, 1 and 2 actors
  (threads split between them), after ray.init and excluding it.

Every row's detections are checked equal to the plain loop's. Numba threads: all cores
unless NUMBA_NUM_THREADS says otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def make_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    import cv2

    import kit

    sources = [cv2.imread(str(p)) for p in sorted((kit.KIT / "images").glob("*.png"))]
    sources = [s for s in sources if s is not None and min(s.shape[:2]) >= 200]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.5, 1.0)), int(w * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        scale = rng.uniform(0.6, 1.6)
        crop = cv2.resize(src[y:y + ch, x:x + cw], (max(16, int(cw * scale)), max(16, int(ch * scale))),
                          interpolation=cv2.INTER_AREA)
        path = folder / f"{i:04d}.{'jpg' if i % 2 else 'png'}"
        cv2.imwrite(str(path), crop)
        paths.append(path)
    return paths


def key(dets):
    return [(d.index, tuple(float(v) for v in d.bbox), float(d.objectness), sorted(d.probs.items())) for d in dets]


def run_plain(net, paths, thresh):
    return [key(net.detect(str(p), thresh=thresh)) for p in paths]


def run_pipeline(net, paths, thresh, kind, workers=2, batch_size=1):
    from darknetpy import many

    items = (many.Item(i, str(p), p.name) for i, p in enumerate(paths))
    out = []
    for r in many.detect_many(net, items, thresh=thresh, workers=workers, kind=kind, batch=batch_size):
        assert r.error is None, r.error
        out.append(key(r.dets))
    return out


def run_ray(cfg, weights, paths, thresh, workers, numerics):
    import ray
    import ray.data

    from darknetpy.ray_actor import Detector

    threads = max(1, (os.cpu_count() or 1) // workers)
    ds = ray.data.from_items([{"path": str(p)} for p in paths], override_num_blocks=4 * workers)
    out = ds.map_batches(Detector, batch_size=8, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                         num_cpus=threads, fn_constructor_kwargs=dict(cfg=str(cfg), weights=str(weights),
                                                                      thresh=thresh, numerics=numerics,
                                                                      threads=threads))
    return {r["path"]: r["detections"] for r in out.iter_rows()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--numerics", nargs="+", default=["darknet", "fast"])
    p.add_argument("--thresh", type=float, default=0.25)
    p.add_argument("--no-process", action="store_true", help="skip the process-pool row")
    p.add_argument("--ray", action="store_true", help="also Ray Data with 1 and 2 actors")
    args = p.parse_args()

    import kit
    from darknetpy.network import Network

    if not kit.available():
        print(kit.MISSING, file=sys.stderr)
        return 2
    cfg, weights = kit.cfg_path("yolov2-tiny"), kit.weights("yolov2-tiny.weights")
    import numba

    print(f"yolov2-tiny, {args.count} images, {numba.config.NUMBA_NUM_THREADS} Numba threads, "
          f"{os.cpu_count()} CPUs", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="darknetpy-many-") as tmp:
        paths = make_images(Path(tmp), args.count)
        for numerics in args.numerics:
            net = Network(cfg, weights, numerics=numerics, warn=None)
            net.detect(str(paths[0]), thresh=args.thresh)  # compiled before timing
            net.detect(str(paths[1]), thresh=args.thresh)
            modes = [("plain loop", lambda: run_plain(net, paths, args.thresh)),
                     ("pipeline, 2 threads", lambda: run_pipeline(net, paths, args.thresh, "thread")),
                     ("pipeline, 2 threads, --batch 4",
                      lambda: run_pipeline(net, paths, args.thresh, "thread", batch_size=4))]
            if not args.no_process:
                modes.append(("pipeline, 2 processes", lambda: run_pipeline(net, paths, args.thresh, "process")))
            reference = None
            for name, fn in modes:
                start = time.perf_counter()
                result = fn()
                seconds = time.perf_counter() - start
                if reference is None:
                    reference, base = result, seconds
                assert result == reference, f"{name}: detections differ from the plain loop"
                rows.append((numerics, name, seconds, args.count / seconds, base / seconds))
                print(f"  {numerics:8s} {name:32s} {seconds:7.1f} s {args.count / seconds:7.2f} images/s", flush=True)
        if args.ray:
            import ray

            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            for numerics in args.numerics:
                base = next(r[2] for r in rows if r[0] == numerics and r[1] == "plain loop")
                for workers in (1, 2):
                    start = time.perf_counter()
                    got = run_ray(cfg, weights, paths, args.thresh, workers, numerics)
                    seconds = time.perf_counter() - start
                    assert len(got) == len(paths)
                    name = f"Ray Data, {workers} actor{'s' if workers > 1 else ''}"
                    rows.append((numerics, name, seconds, args.count / seconds, base / seconds))
                    print(f"  {numerics:8s} {name:32s} {seconds:7.1f} s {args.count / seconds:7.2f} images/s",
                          flush=True)
            ray.shutdown()

    print()
    print("| numerics | mode | seconds | images/s | vs plain |")
    print("|---|---|---|---|---|")
    for numerics, name, seconds, rate, speedup in rows:
        print(f"| {numerics} | {name} | {seconds:.1f} | {rate:.2f} | {speedup:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
