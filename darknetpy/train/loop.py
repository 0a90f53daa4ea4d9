"""Darknet's trainers, `train_detector` and `train_classifier`, on darknetpy's Trainer and Loader.

The loop is Darknet's: `imgs = batch * subdivisions` images per iteration until
`get_current_batch(net) == max_batches`; for `random=1` a new size every 10 iterations
(Loader.next_size); the lines Darknet prints (stdout); the weights saved where and when
Darknet saves them (checkpoint.py). What darknetpy adds: every checkpoint has a resume
state beside it and `--resume` continues from the newest one, exactly in deterministic
mode; files are written atomically; a progress bar (tqdm, on a terminal), a JSON Lines
log and a loss chart (PNG, matplotlib) in the backup folder; Ctrl-C finishes the
iteration, saves `<base>.backup` and stops; `--max-batches N` stops early (same rate
schedule) with a resumable `.backup`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, replace

import numpy as np

from ..cfg import read_cfg
from ..data import data_list, get_labels, get_paths, read_data_cfg, resolve
from ..errors import CfgError, DarknetError, DataError
from . import checkpoint
from .init import darknet_init, load_upto
from .trainer import Trainer, c_float

F32 = np.float32


@dataclass
class RunOptions:
    """What the command line adds to Darknet's arguments."""

    clear: bool = False
    deterministic: bool = False
    workers: int = 2
    seed: int = 0
    max_batches: int | None = None
    resume: bool = False
    backup_every: int | None = None
    jsonl: str | None = ""       # "": backup/<base>.jsonl; None: none
    chart: str | None = ""       # "": backup/<base>_loss.png (if matplotlib is installed); None: none
    chart_every: int = 10
    progress: bool | None = None  # None: on a terminal
    numerics: str = "darknet"
    device: str = "cpu"
    out: object = None            # where Darknet's printed lines go (default stdout)


# -- the network


def resized_cfg(cfg_path: str, w: int, h: int, folder: str) -> str:
    """A copy of the cfg with [net]'s width and height set to w x h (resize_network)."""
    with open(cfg_path, "rb") as f:
        lines = f.read().decode("utf-8", errors="replace").split("\n")
    net = read_cfg(cfg_path)[0]
    for key, value in (("width", w), ("height", h)):
        opt = next((o for o in net.options if o.key == key), None)
        if opt is not None:
            lines[opt.line - 1] = f"{key}={value}"
        else:
            lines.insert(net.line, f"{key}={value}")
    path = os.path.join(folder, f"{w}x{h}-" + os.path.basename(cfg_path))
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def build_network(cfg_path: str, numerics: str, device: str):
    from ..network import Network

    return Network(cfg_path, None, numerics=numerics, device=device)


def move_parameters(old, new) -> None:
    """Give `new` (the same cfg at another size) `old`'s parameters and momentum buffers."""
    for a, b in zip(old.layers, new.layers):
        for name, p in a.params.items():
            b.params[name].value = p.value
            b.params[name].updates = p.updates
        b.version += 1


class Session:
    """The network being trained, its Trainer, and its current input size."""

    def __init__(self, cfg_path: str, opts: RunOptions):
        self.cfg_path = cfg_path
        self.opts = opts
        self.print_line = lambda line: print(line, file=sys.stderr)   # the loop points it at its output
        self.quiet = False
        self.folder = None       # resized cfg copies (random=1), made on the first resize
        self.net = build_network(cfg_path, opts.numerics, opts.device)
        self.trainer = None

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log(self, line: str) -> None:
        if not self.quiet:
            self.print_line(line)

    def start(self) -> None:
        self.trainer = Trainer(self.net, numerics=self.opts.numerics, log=self.log)

    @property
    def size(self) -> tuple[int, int]:
        return self.net.width, self.net.height

    def resize(self, w: int, h: int) -> None:
        """resize_network: the same parameters, buffers, seen and t on a w x h network."""
        if (w, h) == self.size:
            return
        old, trainer = self.net, self.trainer
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="darknetpy-train-")
        net = build_network(resized_cfg(self.cfg_path, w, h, self.folder), self.opts.numerics, self.opts.device)
        move_parameters(old, net)
        net.model.header = old.model.header
        self.net = net
        self.quiet = True       # the cfg's warnings were printed once
        try:
            self.trainer = Trainer(net, numerics=self.opts.numerics, log=self.log)
        finally:
            self.quiet = False
        self.trainer.executor.t = trainer.executor.t
        self.trainer.avg_loss = trainer.avg_loss


def train_batch(trainer, X: np.ndarray, y: np.ndarray) -> np.float32:
    """train_network's body on one loaded batch, then the trainers' running average."""
    o = trainer.options
    n, b = o.subdivisions, o.batch
    if X.shape[0] != n * b:
        raise DarknetError(f"the loader gave {X.shape[0]} images, the network trains on {n * b}")
    total = F32(0)
    for i in range(n):
        total = F32(total + trainer.datum(X[i * b:(i + 1) * b], y[i * b:(i + 1) * b]))
    loss = F32(total / F32(n * b))
    if trainer.avg_loss < 0:
        trainer.avg_loss = loss
    trainer.avg_loss = F32(float(trainer.avg_loss) * .9 + float(loss) * .1)
    return loss


# -- the run's outputs besides the weights


class Outputs:
    """Darknet's printed lines, the JSON Lines log, the loss chart and the progress bar."""

    def __init__(self, opts: RunOptions, backup: str, base: str, total: int):
        self.out = opts.out or sys.stdout
        self.jsonl = os.path.join(backup, base + ".jsonl") if opts.jsonl == "" else opts.jsonl
        self.chart = os.path.join(backup, base + "_loss.png") if opts.chart == "" else opts.chart
        self.chart_every = max(opts.chart_every, 1)
        self.history: list[tuple[int, float, float]] = []
        self.bar = None
        enabled = opts.progress if opts.progress is not None else sys.stderr.isatty()
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, unit="batch", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        if self.chart and opts.chart == "":
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                self.chart = None

    def resume_at(self, batch: int) -> None:
        """Keep the log's records up to `batch` (a resumed run writes the later ones again)
        and take them into the chart."""
        if not self.jsonl or not os.path.isfile(self.jsonl):
            return
        from ..fileio import atomic_write

        kept = []
        with open(self.jsonl) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:      # a line cut short by a kill
                    continue
                if record.get("batch", 0) <= batch:
                    kept.append(line if line.endswith("\n") else line + "\n")
                    self.history.append((record["batch"], record["loss"], record["avg"]))
        text = "".join(kept)
        atomic_write(self.jsonl, lambda f: f.write(text.encode()))

    def line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def iteration(self, record: dict, imgs: int) -> None:
        self.history.append((record["batch"], record["loss"], record["avg"]))
        if self.jsonl:
            with open(self.jsonl, "a") as f:
                f.write(json.dumps(record) + "\n")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{record['avg']:.3f}", img_s=f"{imgs / max(record['seconds'], 1e-9):.1f}",
                                 refresh=False)
        if self.chart and len(self.history) % self.chart_every == 0:
            self.draw()

    def draw(self) -> None:
        if not self.chart or not self.history:
            return
        import io

        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..fileio import atomic_write

        b, loss, avg = zip(*self.history)
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        ax.plot(b, loss, lw=0.6, alpha=0.5, label="loss")
        ax.plot(b, avg, lw=1.5, label="avg loss")
        ax.set_xlabel("batch")
        ax.set_ylabel("loss")
        ax.set_yscale("log" if min(loss) > 0 else "linear")
        ax.grid(alpha=0.3)
        ax.legend()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        atomic_write(self.chart, lambda f: f.write(buf.getvalue()))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.draw()


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM sets the flag: the loop finishes the iteration, saves and
    stops; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.set = False
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self.handle)
            except ValueError:     # not the main thread
                pass
        return self

    def handle(self, signum, frame):
        if self.set and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.set = True
        print("\ndarknetpy: stopping after this iteration (Ctrl-C again to stop at once)", file=sys.stderr,
              flush=True)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# -- the trainers


@dataclass
class Job:
    """What differs between train_detector and train_classifier."""

    kind: str                  # "detector" | "classifier"
    paths: list
    loader_kind: str
    args: dict
    labels: list | None
    backup: str
    base: str
    random: bool = False
    images: int = 0            # the classifier's N (epochs)


def backup_folder(options: dict, data_path: str) -> str:
    """The .data file's backup= folder (created if missing; Darknet's default is /backup/)."""
    folder = options.get("backup", "/backup/")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise DataError(f"{data_path}: backup={folder}: cannot create the folder: {e.strerror}") from None
    return folder


def require_training_keys(cfg_path: str, opts: RunOptions) -> None:
    """A cfg whose [net] has no max_batches= trains for no batch in Darknet: an error here."""
    net = read_cfg(cfg_path)[0]
    if not net.has("max_batches") and opts.max_batches is None:
        raise CfgError(f"{cfg_path}:{net.line}: [net] has no max_batches= (the number of batches to train) and "
                       f"no --max-batches was given")


def detector_job(data_path: str, session: Session) -> Job:
    from ..loader import detection_args

    options = read_data_cfg(data_path)
    paths = get_paths(data_list(data_path, "train", options))
    if not paths:
        raise DataError(f"{data_path}: the train= list has no images")
    last = session.net.layers[-1]
    args = detection_args(read_cfg(session.cfg_path)[0], last)
    args["n"] = session.trainer.rows
    random = bool(last.section.get_int("random", 0)) if last.type in ("region", "yolo") else False
    return Job("detector", paths, "detection", args, None, backup_folder(options, data_path),
               checkpoint.basecfg(session.cfg_path), random=random)


def classifier_job(data_path: str, session: Session) -> Job:
    from ..loader import classification_args

    options = read_data_cfg(data_path)
    paths = get_paths(data_list(data_path, "train", options))
    if not paths:
        raise DataError(f"{data_path}: the train= list has no images")
    classes = int(options.get("classes", "2") or 2)
    labels = get_labels(resolve(options.get("labels", "data/labels.list"), [data_path], "labels= file"))
    args = classification_args(read_cfg(session.cfg_path)[0], classes)
    args["n"] = session.trainer.rows
    random = bool(read_cfg(session.cfg_path)[0].get_int("random", 0))     # train_classifier: net->random
    return Job("classifier", paths, "classification", args, labels, backup_folder(options, data_path),
               checkpoint.basecfg(session.cfg_path), random=random, images=len(paths))


def start_parameters(session: Session, weights: str | None, opts: RunOptions) -> None:
    """Darknet's random initial weights after srand(seed), then the weights file's layers."""
    darknet_init(session.net.model, opts.seed)
    if weights is not None:
        done, header = load_upto(session.net.model, weights)
        if done < len(session.net.layers):
            print(f"darknetpy: {weights}: the first {done} of {len(session.net.layers)} layers loaded, the rest "
                  f"start from Darknet's random initial weights", file=sys.stderr)
        seen = 0 if opts.clear else header.seen
        session.net.model.header = replace(header, seen=seen)


def train(kind: str, data_path: str, cfg_path: str, weights: str | None, opts: RunOptions) -> str:
    """`detector train` / `classifier train`; returns the path of the last weights written."""
    from ..loader import Loader

    require_training_keys(cfg_path, opts)
    out = opts.out or sys.stdout
    base = checkpoint.basecfg(cfg_path)
    print(base, file=out)
    session = Session(cfg_path, opts)
    resumed = None
    start_parameters(session, weights, opts)
    session.start()
    job = (detector_job if kind == "detector" else classifier_job)(data_path, session)
    if opts.resume:
        resumed = checkpoint.latest(job.backup, base)
        if resumed is None:
            print(f"darknetpy: no checkpoint of {base} with a resume state in {job.backup}: starting from "
                  f"{weights or 'random weights'}", file=sys.stderr)
    workers = 0 if opts.deterministic else opts.workers
    loader = Loader(job.paths, job.loader_kind, job.args, opts.seed, workers=workers, labels=job.labels,
                    warn=sys.stderr, numerics="ieee" if opts.numerics == "ieee" else "darknet")
    try:
        return run(session, job, loader, opts, resumed)
    finally:
        loader.close()
        session.close()


def restore(session: Session, loader, resumed) -> dict:
    """The network, buffers, counters and loader position of a checkpoint."""
    record = resumed.record
    w, h = record["size"]
    session.resize(w, h)
    done, header = load_upto(session.net.model, resumed.weights)
    session.net.model.header = replace(header, seen=record["seen"])
    tr = session.trainer
    checkpoint.restore_updates(session.net.layers, resumed.updates, resumed.weights + checkpoint.STATE_SUFFIX)
    tr.executor.seen = record["seen"]
    tr.executor.t = record["t"]
    tr.avg_loss = F32(float.fromhex(record["avg_loss"]))
    loader.restore(record["loader"])
    print(f"darknetpy: resumed from {resumed.weights} at batch {tr.executor.batch_num}", file=sys.stderr)
    return record


def run(session: Session, job: Job, loader, opts: RunOptions, resumed) -> str:
    tr = session.trainer
    o = tr.options
    imgs = tr.rows
    max_batches = o.max_batches
    stop = max_batches if opts.max_batches is None else (min(opts.max_batches, max_batches) if max_batches
                                                         else opts.max_batches)
    count = 0
    if resumed is not None:
        count = restore(session, loader, resumed)["count"]
        tr = session.trainer
    epoch = tr.seen // job.images if job.images else 0
    out = Outputs(opts, job.backup, job.base, max(stop - tr.executor.batch_num, 0))
    if resumed is not None:
        out.resume_at(tr.executor.batch_num)
    session.print_line = out.line
    out.line(f"Learning Rate: {float(o.learning_rate):g}, Momentum: {float(o.momentum):g}, "
             f"Decay: {float(o.decay):g}")
    last = None

    def state(iteration):
        t = session.trainer
        return {"count": count, "size": list(session.size), "t": t.executor.t, "avg_loss": float(t.avg_loss).hex(),
                "loader": loader.state(), "batch": iteration, "seed": opts.seed,
                "workers": 0 if opts.deterministic else opts.workers}

    def save(suffix, iteration):
        path = os.path.join(job.backup, job.base + suffix)
        checkpoint.save(path, session.net.layers, session.trainer.seen, state(iteration), log=out.line)
        return path

    with StopFlag() as flag:
        while session.trainer.executor.batch_num < stop or (job.kind == "classifier" and stop == 0):
            if job.random:
                # the loader keeps Darknet's `count++ % period == 0` and draws on its rand stream
                w, h = loader.next_size(session.trainer.executor.batch_num, max_batches, *session.size)
                if count % (10 if job.kind == "detector" else 40) == 0:
                    out.line("Resizing")
                    out.line(f"{w}")
                session.resize(w, h)
                tr = session.trainer
            count += 1
            started = time.time()
            X, y = loader.load(*session.size)
            loaded = time.time() - started
            out.line(f"Loaded: {loaded:f} seconds")
            started = time.time()
            loss = train_batch(tr, X, y)
            tr.lines.clear()
            seconds = time.time() - started
            i = tr.executor.batch_num
            rate = tr.rate()
            if job.kind == "detector":
                out.line(f"{i}: {c_float(loss)}, {c_float(tr.avg_loss)} avg, {c_float(rate)} rate, "
                         f"{seconds:f} seconds, {i * imgs} images")
            else:
                out.line(f"{i}, {float(F32(F32(tr.seen) / F32(job.images))):.3f}: {c_float(loss)}, "
                         f"{c_float(tr.avg_loss)} avg, {c_float(rate)} rate, {seconds:f} seconds, {tr.seen} images")
            out.iteration({"batch": i, "loss": float(loss), "avg": float(tr.avg_loss), "rate": float(rate),
                           "seconds": seconds, "load_seconds": loaded, "images": tr.seen,
                           "width": session.size[0], "height": session.size[1], "time": time.time()}, imgs)
            if job.kind == "detector":
                names = checkpoint.detector_backups(i, opts.backup_every or 100)
            else:
                now = tr.seen // job.images
                names = checkpoint.classifier_backups(i, epoch, now, opts.backup_every or 1000)
                epoch = now
            for suffix in names:
                last = save(suffix, i)
            if flag.set:
                last = save(".backup", i)
                out.close()
                print(f"darknetpy: stopped at batch {i}; continue with --resume", file=sys.stderr)
                return last
        i = session.trainer.executor.batch_num
        if i < max_batches or (job.kind == "classifier" and max_batches == 0):
            last = save(".backup", i)
            print(f"darknetpy: stopped at batch {i} of {max_batches} (--max-batches); continue with --resume",
                  file=sys.stderr)
        else:
            last = save(checkpoint.detector_final() if job.kind == "detector" else checkpoint.classifier_final(), i)
    out.close()
    return last


# -- the command line


def add_train_arguments(p) -> None:
    p.add_argument("--deterministic", action="store_true",
                   help="load as if single-threaded, in the reference kit's order (bit-exact runs and resume)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="fast mode: loader processes (2)")
    p.add_argument("--seed", type=int, default=0, help="the master seed: initial weights and data (0)")
    p.add_argument("--max-batches", type=int, default=None, metavar="N",
                   help="stop after batch N (the cfg's max_batches still sets the rate schedule)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint with a resume state in the backup folder")
    p.add_argument("--backup-every", type=int, default=None, metavar="N",
                   help="write <cfg>.backup every N batches (Darknet: 100 for detector, 1000 for classifier)")
    p.add_argument("--log", default="", metavar="FILE.jsonl",
                   help="JSON Lines log, one record per batch (default: backup/<cfg>.jsonl; 'none': no log)")
    p.add_argument("--chart", default="", metavar="FILE.png",
                   help="loss chart, redrawn every 10 batches (default: backup/<cfg>_loss.png when matplotlib "
                        "is installed; 'none': no chart)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar with images/s and time left (default: when stderr is a terminal)")
    p.add_argument("--numerics", choices=("darknet", "ieee", "fast"), default="darknet",
                   help="darknet: the stock -Ofast build's arithmetic (default); ieee: built without fast-math; "
                        "fast: not bit-exact")


def run_options(args) -> RunOptions:
    for name in ("max_batches", "backup_every", "workers"):
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "workers" else 1):
            raise DarknetError(f"--{name.replace('_', '-')}={value} must be {'0' if name == 'workers' else '1'} "
                               f"or more")
    device = "cpu" if getattr(args, "gpu", None) is None else f"cuda:{args.gpu}"
    return RunOptions(clear=getattr(args, "clear", False), deterministic=args.deterministic, workers=args.workers,
                      seed=args.seed, max_batches=args.max_batches, resume=args.resume,
                      backup_every=args.backup_every, jsonl=None if args.log == "none" else args.log,
                      chart=None if args.chart == "none" else args.chart, progress=args.progress,
                      numerics=args.numerics, device=device)


def cmd_detector_train(args) -> int:
    train("detector", args.data, args.cfg, args.weights, run_options(args))
    return 0


def cmd_classifier_train(args) -> int:
    train("classifier", args.data, args.cfg, args.weights, run_options(args))
    return 0


def add_detector_train(actions) -> None:
    p = actions.add_parser("train", help="'./darknet detector train DATA CFG [WEIGHTS] [-clear]'",
                           description="Train a detector as './darknet detector train' does: DATA's train= list, "
                                       "CFG's [net] schedule, checkpoints in DATA's backup= folder (with a state "
                                       "file for --resume).")
    p.add_argument("data", metavar="DATA", help="the .data file (train=, backup=, names=, ...)")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", nargs="?", default=None,
                   help="initial weights (a partial file such as darknet19_448.conv.23 is fine)")
    p.add_argument("-clear", "--clear", action="store_true", help="start seen (the batch count) at 0")
    p.add_argument("--gpu", "-i", type=int, default=None, metavar="N", help="CUDA device (training runs on the CPU)")
    add_train_arguments(p)
    p.set_defaults(func=cmd_detector_train)


def add_classifier_train(actions) -> None:
    p = actions.add_parser("train", help="'./darknet classifier train DATA CFG [WEIGHTS]'",
                           description="Train a classifier as './darknet classifier train' does: DATA's train= "
                                       "list and labels=, CFG's [net] schedule, checkpoints in DATA's backup= "
                                       "folder (with a state file for --resume).")
    p.add_argument("data", metavar="DATA", help="the .data file (train=, labels=, backup=, ...)")
    p.add_argument("cfg", metavar="CFG", help="the network's .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", nargs="?", default=None, help="initial weights (default: random)")
    p.add_argument("-clear", "--clear", action="store_true", help="start seen (the batch count) at 0")
    add_train_arguments(p)
    p.set_defaults(func=cmd_classifier_train)

