"""Darknet detection on Ray Data, across many machines (optional: pip install 'darknet-exact[ray]').

The module is `darknetpy.ray_actor`, not `darknetpy.ray`: a module named `ray` inside the
package would be the one `import ray` finds whenever the package's own folder is on
sys.path (a script run from inside darknetpy/, some tools' path handling), hiding Ray.

    import ray, ray.data
    from darknetpy.ray_actor import Detector

    ds = ray.data.from_items([{"path": p} for p in paths])        # or a `bytes` column:
    # ds = ray.data.read_binary_files(folder, include_paths=True)  # columns path, bytes
    out = ds.map_batches(Detector, fn_constructor_kwargs={"cfg": "cfg/yolov2.cfg",
                         "weights": "weights/yolov2.weights", "thresh": 0.25},
                         concurrency=4, batch_size=8, num_cpus=4, batch_format="numpy")
    for row in out.iter_rows():
        row["path"], row["width"], row["height"], row["detections"], row["error"]

`Detector` loads the network once per actor (in `__init__`) and runs each row of a batch
as `Network.detect` does: the detections are bit for bit those of the one-image path
(`darknetpy detect`'s JSON). A row is read from its `bytes` column (encoded image bytes,
decoded with darknetpy.image.decode_rgb, so JPEGs decode as Darknet's stb_image decodes
them) or else from its `path` (which the actor's machine must be able to read: a shared
filesystem; otherwise send bytes). Other columns (an index, a video frame number) pass
through; `bytes` is dropped.

CPU actors run the CPU (Numba) path with `threads` Numba threads each; give the actor as
many CPUs (`num_cpus=`) so Ray does not put more actors on a machine than it has cores.
The actor runs the CPU backend: darknetpy's GPU backend (CuPy, `device="cuda:N"`) is not
offered to actors yet, so `num_gpus` would only reserve a GPU that the actor leaves idle.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


class Detector:
    """A callable class for `ray.data.Dataset.map_batches` (one network per actor).

    cfg, weights: the network. names: a list of labels, a .names file, or None (chosen by
    class count as `darknetpy detect` chooses them; class numbers where none is known).
    thresh, hier_thresh, nms: as `darknetpy detect`'s -thresh, -hier, -nms. numerics,
    compat, decoder: as the command's flags. threads: Numba threads in this actor.

    Returns columns path, width, height, detections (list of dicts as in `--json`) and
    error ("" when the row ran, else why it failed: then detections is [] and width and
    height are -1 where the image could not be decoded), plus the input's other columns
    except `bytes`. (No None in the columns: Arrow gives back a column of only None as
    null or NaN.)
    """

    def __init__(self, cfg: str, weights: str | None, names: Sequence[str] | str | None = None,
                 thresh: float = 0.5, hier_thresh: float = 0.5, nms: float = 0.45, numerics: str = "darknet",
                 compat: str | None = None, decoder: str = "stb", threads: int | None = None):
        from .network import Network

        if threads is not None:
            import numba

            numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
        self.net = Network(cfg, weights, numerics=numerics, compat=compat, warn=None)
        self.net.require_detector()
        self.names = _names(self.net, names, cfg)
        self.thresh, self.hier_thresh, self.nms, self.decoder = thresh, hier_thresh, nms, decoder

    def detect_one(self, path: str | None, data: bytes | None) -> dict:
        """One row: width, height, detections, error (see the class)."""
        from .many import error_text, detection_dicts
        from .errors import DarknetError
        from .image import decode_rgb, read_bytes, to_float_chw

        where = path if path is not None else "<bytes>"
        try:
            if data is None:
                if path is None:
                    raise DarknetError("the row has neither a path nor bytes")
                data = read_bytes(path)
            im = to_float_chw(decode_rgb(bytes(data), where, self.decoder))
        except Exception as e:  # one bad row never stops the batch
            return {"width": -1, "height": -1, "detections": [], "error": error_text(e)}
        h, w = im.shape[1], im.shape[2]
        try:
            dets = self.net.detect(im, self.thresh, self.hier_thresh, self.nms)
        except (DarknetError, MemoryError) as e:
            return {"width": w, "height": h, "detections": [], "error": error_text(e)}
        return {"width": w, "height": h, "detections": detection_dicts(dets, self.names, self.thresh, w, h),
                "error": ""}

    def __call__(self, batch: dict) -> dict:
        columns = {k: list(v) for k, v in batch.items()}
        n = len(next(iter(columns.values()))) if columns else 0
        paths = columns.get("path", [None] * n)
        datas = columns.get("bytes", [None] * n)
        out: dict[str, list] = {k: v for k, v in columns.items() if k != "bytes"}
        out["path"] = [None if p is None else str(p) for p in paths]
        rows = [self.detect_one(out["path"][i], datas[i] if _value(datas[i]) is not None and len(datas[i]) else None)
                for i in range(n)]
        for key in ("width", "height", "detections", "error"):
            out[key] = [row[key] for row in rows]
        # Object arrays: Ray stores the lists of dicts as they are (no Arrow schema to infer
        # from a batch whose rows have no detections)
        return {k: _object_array(v) for k, v in out.items()}


def _object_array(values: list) -> np.ndarray:
    a = np.empty(len(values), dtype=object)
    a[:] = values
    return a


def _names(net, names, cfg) -> list[str]:
    from .data import NAMES_BY_CLASSES, find_file, get_labels

    if isinstance(names, (str, os.PathLike)):
        return get_labels(os.fspath(names))
    if names is not None:
        return list(names)
    guess = NAMES_BY_CLASSES.get(net.classes)
    found = find_file(guess[0], [os.fspath(cfg)]) if guess else None
    if found is None:
        return [str(i) for i in range(net.classes)]
    labels = get_labels(found)
    return labels if len(labels) >= net.classes else [str(i) for i in range(net.classes)]


# ---------------------------------------------------------------------------
# `darknetpy detect ... --ray local|ADDRESS --workers N`
# ---------------------------------------------------------------------------

def _rows(sources, every: int, stdin=None):
    """The dataset's rows, in input order: image files by path; video frames decoded here
    and sent as lossless PNG bytes (the actors need not see the video); failures known
    here (a video that cannot be opened) as rows with an error."""
    import cv2

    from .many import iter_items

    for item in iter_items(sources, every, stdin):
        # no None in the columns (Arrow would carry a column of only None as NaN or null):
        # frame -1 and an empty error mean none
        row = {"index": item.index, "path": item.path, "frame": -1 if item.frame is None else item.frame,
               "time": -1.0 if item.time is None else item.time, "bytes": b"", "known_error": item.error or ""}
        if item.pixels is not None:
            ok, data = cv2.imencode(".png", np.ascontiguousarray(item.pixels[:, :, ::-1]))
            row["bytes"] = data.tobytes() if ok else b""
            if not ok:
                row["known_error"] = f"{item.path}: frame {item.frame} could not be encoded for Ray"
        yield row


class _RowDetector(Detector):
    """Detector for the command's rows: a row with `known_error` is not run."""

    def __call__(self, batch: dict) -> dict:
        errors = list(batch.get("known_error", []))
        out = super().__call__({k: v for k, v in batch.items() if k != "known_error"})
        for i, e in enumerate(errors):
            if isinstance(e, str) and e:
                out["width"][i] = out["height"][i] = -1
                out["detections"][i] = []
                out["error"][i] = e
        return out


def _value(v):
    """None for a missing value however the columns carried it (None, NaN)."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    return v


def _plain(v):
    """Lists and dicts of Python numbers, from whatever Arrow or numpy gave back."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _record(row: dict) -> dict:
    """A result row as the local pipeline's JSON Lines object (-1 and "" mean none)."""
    from .many import make_record

    frame, decoded = int(row["frame"]) >= 0, int(row["width"]) >= 0
    return make_record(row["path"], int(row["frame"]) if frame else None, float(row["time"]) if frame else None,
                       int(row["width"]) if decoded else None, int(row["height"]) if decoded else None,
                       row["error"] or None, _plain(row["detections"]))


def _threads_per_actor(workers: int) -> int:
    """CPUs (and Numba threads) per actor: the cluster's CPUs shared among the actors, but
    no more than the largest machine has (an actor asking for more is never scheduled)."""
    import ray

    nodes = [n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    total = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(total // workers, int(max(nodes, default=total))))


def run_ray(args, sources, names: Sequence[str], data_path: str | None = None, stdin=None,
            progress: bool | None = None) -> int:
    """The many-input `detect` on Ray Data: the same JSON Lines as the local pipeline (to
    --json, else stdout), in input order, and the summary. Exit status as run_many's."""
    import ray
    import ray.data

    from .many import InterruptGuard, JsonLines, Progress, emit

    import logging

    for name in ("ray", "ray.data"):  # the summary line is ours; Ray's own INFO lines are noise here
        logging.getLogger(name).setLevel(logging.WARNING)
    every = args.every or 1
    workers = args.workers or 1
    if args.ray == "local":
        cpus = os.cpu_count() or 1
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=args.ray, log_to_driver=False, configure_logging=False)
    threads = args.threads or _threads_per_actor(workers)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False

    rows = list(_rows(sources, every, stdin))
    guard = InterruptGuard()
    writer = JsonLines(args.json if args.json is not None else "-", guard)
    bar = Progress(len(rows), enabled=progress)
    interrupted = False
    try:
        with guard:
            if rows:
                ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 4 * workers)))
                batch_size = args.batch or max(1, min(16, len(rows) // (4 * workers) or 1))
                result = ds.map_batches(
                    _RowDetector, batch_size=batch_size, batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads,
                    fn_constructor_kwargs=dict(cfg=args.cfg, weights=args.weights, names=list(names),
                                               thresh=args.thresh, hier_thresh=args.hier, nms=args.nms,
                                               numerics=args.numerics, compat=args.compat, decoder=args.decoder,
                                               threads=threads))
                pending: dict[int, dict] = {}
                expected = 0
                for row in result.iter_rows():
                    pending[int(row["index"])] = row
                    while expected in pending:
                        r = pending.pop(expected)
                        expected += 1
                        emit(_record(r), writer, bar)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()
        bar.summary(interrupted)
        try:
            ray.shutdown()
        except Exception:  # noqa: BLE001 (shutting down after an interrupt)
            pass
    if interrupted:
        return 130
    return 1 if bar.failed else 0
