"""The training loader: Darknet's order in the deterministic mode, worker processes in
the fast mode (see the package docstring)."""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal

import numpy as np

from ..errors import DataError
from .batch import load_threads
from .images import ImageSource
from .labels import emit
from .rand import GlibcRand

KINDS = ("detection", "classification", "classification_old")
_MASK64 = (1 << 64) - 1


def batch_seed(seed: int, batch: int) -> int:
    """The fast mode's srand() value of a batch: splitmix64 of (seed, batch), 32 bits."""
    z = ((seed & 0xFFFFFFFF) << 32 | (batch & 0xFFFFFFFF)) + 0x9E3779B97F4A7C15 & _MASK64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK64
    return (z ^ (z >> 31)) & 0xFFFFFFFF


def multiscale_dim(rng: GlibcRand, kind: str, iteration: int, max_batches: int) -> int:
    """train_detector: (rand() % 10 + 10) * 32, 608 in the last 200 batches (the rand()
    consumed anyway); train_classifier: (rand() % 11 + 4) * 32."""
    if kind == "detection":
        dim = (rng.rand() % 10 + 10) * 32
        return 608 if iteration + 200 > max_batches else dim
    return (rng.rand() % 11 + 4) * 32


def to_shared(X: np.ndarray, y: np.ndarray) -> tuple:
    """X and y in one new shared-memory block (the training process unlinks it): a batch
    crosses processes with one copy instead of a pickle through a pipe."""
    from multiprocessing import resource_tracker, shared_memory

    size = max(1, X.nbytes + y.nbytes)
    try:
        shm = shared_memory.SharedMemory(create=True, size=size, track=False)   # Python 3.13+
    except TypeError:
        # older Pythons track every block they create: untrack it (POSIX names start
        # with "/"), or this worker's exit would unlink a block the reader still needs
        shm = shared_memory.SharedMemory(create=True, size=size)
        if os.name == "posix":
            resource_tracker.unregister("/" + shm.name, "shared_memory")
    buf = np.ndarray(X.nbytes + y.nbytes, np.uint8, shm.buf)
    buf[:X.nbytes] = X.reshape(-1).view(np.uint8)
    buf[X.nbytes:] = y.reshape(-1).view(np.uint8)
    del buf
    shm.close()
    return shm.name, X.shape, y.shape


def from_shared(ref: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The batch of a `to_shared` block, copied out; the block is unlinked."""
    from multiprocessing import shared_memory

    name, xs, ys = ref
    shm = shared_memory.SharedMemory(name=name)
    try:
        nx = int(np.prod(xs)) * 4
        ny = int(np.prod(ys)) * 4
        flat = np.ndarray(nx + ny, np.uint8, shm.buf)
        X = flat[:nx].view(np.float32).reshape(xs).copy()
        y = flat[nx:nx + ny].view(np.float32).reshape(ys).copy()
        del flat
    finally:
        shm.close()
        shm.unlink()
    return X, y


def _worker(kind, paths, args, stock, labels, tasks, results):
    """A fast-mode worker: (batch, w, h, seed) -> (batch, w, h, shared block, warnings, error).
    Ctrl-C is the training process's to handle (it saves and stops the workers): a worker
    ignores SIGINT instead of printing its own traceback."""
    from .detection import set_augment_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_augment_threads(1)
    images = ImageSource(paths)
    warned: set = set()
    while True:
        task = tasks.get()
        if task is None:
            return
        b, w, h, seed = task
        notes: list[str] = []
        images.warn = notes.append
        try:
            X, y, _ = load_threads(GlibcRand(seed), kind, paths, args, w, h, stock, labels, images,
                                   notes.append, warned)
            results.put((b, w, h, to_shared(X, y), notes, None))
        except Exception as e:  # sent to the training process, which raises it there
            results.put((b, w, h, None, notes, f"{type(e).__name__}: {e}"))


class Loader:
    """Batches for `Trainer.train`; `workers=0`: deterministic, `workers>0`: fast."""

    def __init__(self, paths: list[str], kind: str, args: dict, seed: int, workers: int = 0,
                 labels: list[str] | None = None, warn=None, numerics: str = "darknet", prefetch: int | None = None,
                 trace=None):
        if kind not in KINDS:
            raise ValueError(f"unknown loader kind {kind!r} (choose from {', '.join(KINDS)})")
        if not paths:
            raise DataError("the training list names no image")
        self.paths, self.kind, self.args = list(paths), kind, dict(args)
        self.seed, self.workers, self.labels, self.warn = int(seed), int(workers), labels, warn
        self.stock = numerics != "ieee"
        self.trace = trace
        self.rng = GlibcRand(self.seed)
        self.count = 0
        self.batch = 0
        self.size = (int(args.get("size") or args["w"]), int(args.get("size") or args["h"]))
        self.pending = self.size if self.workers == 0 else None
        self.images = ImageSource(self.paths, warn)
        self.warned: set = set()
        self.prefetch = max(1, prefetch or 2 * max(1, self.workers))
        self.pool: list = []
        self.inflight: dict[int, tuple[int, int]] = {}
        self.done: dict[int, tuple] = {}

    # -- multi-scale -------------------------------------------------------------------
    def next_size(self, iteration: int, max_batches: int, width: int, height: int) -> tuple[int, int]:
        """Darknet's `if (l.random && count++ % period == 0)` resize (period 10 for the
        detector, 40 for the classifier); the load already started is discarded."""
        period = 10 if self.kind == "detection" else 40
        if self.count % period == 0:
            self._drain_pending()
            dim = multiscale_dim(self.rng, self.kind, iteration, max_batches)
            self.size = (dim, dim)
            if self.trace is not None:
                self.trace(("resize", dim, dim, self.rng.calls))
            if self.workers == 0:
                self.pending = self.size
        self.count += 1
        return self.size

    # -- batches -----------------------------------------------------------------------
    def load(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """The next batch at w x h (X (n, 3, h, w), y (n, truths), float32)."""
        w, h = int(w), int(h)
        if self.workers == 0:
            if self.pending != (w, h):
                self._drain_pending()
            X, y = self._load_now(*(self.pending or (w, h)))
            self.pending = (w, h)
        else:
            X, y = self._fast(self.batch, w, h)
        self.batch += 1
        return X, y

    def _load_now(self, w: int, h: int):
        X, y, _ = load_threads(self.rng, self.kind, self.paths, self.args, w, h, self.stock, self.labels,
                               self.images, self.warn, self.warned)
        if self.trace is not None:
            self.trace(("load", w, h, self.rng.calls))
        return X, y

    def _drain_pending(self) -> None:
        """Darknet joins the load in flight before a resize and throws its data away; its
        rand() calls still happened."""
        if self.workers == 0 and self.pending is not None:
            self._load_now(*self.pending)
            self.pending = None

    # -- fast mode ---------------------------------------------------------------------
    def _start(self) -> None:
        if self.pool:
            return
        ctx = mp.get_context("spawn")
        self.tasks = ctx.Queue()
        self.results = ctx.Queue()
        for _ in range(self.workers):
            p = ctx.Process(target=_worker, args=(self.kind, self.paths, self.args, self.stock, self.labels,
                                                  self.tasks, self.results), daemon=True)
            p.start()
            self.pool.append(p)

    def _submit(self, b: int, w: int, h: int) -> None:
        self.inflight[b] = (w, h)
        self.tasks.put((b, w, h, batch_seed(self.seed, b)))

    def _fast(self, b: int, w: int, h: int):
        self._start()
        for k in range(b, b + self.prefetch):
            if k not in self.inflight and k not in self.done:
                self._submit(k, w, h)
        while True:
            got = self.done.pop(b, None)
            if got is not None and got[:2] == (w, h):
                break
            if got is not None or self.inflight.get(b, (w, h)) != (w, h):
                self._submit(b, w, h)
            try:
                r = self.results.get(timeout=5)
            except queue.Empty:
                if not all(p.is_alive() for p in self.pool):
                    raise DataError("a data loader worker process died")
                continue
            k, rw, rh, ref, notes, error = r
            for note in notes:
                emit(self.warn, note)
            if error:
                raise DataError(f"data loader worker: {error}")
            X, y = from_shared(ref)
            if self.inflight.get(k) == (rw, rh):
                del self.inflight[k]
                if k >= b:
                    self.done[k] = (rw, rh, X, y)
        return got[2], got[3]

    # -- resume ------------------------------------------------------------------------
    def state(self) -> dict:
        """JSON-able: rand state, the load in flight (deterministic), multi-scale counter
        and size, batch number."""
        return {"kind": self.kind, "seed": self.seed, "workers": self.workers, "rand": self.rng.state(),
                "pending": list(self.pending) if self.pending else None, "count": self.count,
                "size": list(self.size), "batch": self.batch}

    def restore(self, state: dict) -> None:
        """Continue exactly where `state()` was taken (same kind, seed and worker count)."""
        self.rng.restore(state["rand"])
        self.pending = tuple(state["pending"]) if state.get("pending") else None
        self.count = int(state["count"])
        self.size = tuple(state["size"])
        self.batch = int(state["batch"])
        self.done.clear()
        self.inflight.clear()
        if self.pool:
            self.close()

    def close(self) -> None:
        """Stop the worker processes and free the batches they had sent."""
        if not self.pool:
            return
        for _ in self.pool:
            self.tasks.put(None)
        for p in self.pool:
            p.join(timeout=1)
            if p.is_alive():
                p.terminate()
                p.join(timeout=1)
        while True:
            try:
                r = self.results.get(timeout=0.05)
            except (queue.Empty, OSError, EOFError):
                break
            if r[3] is not None:
                try:
                    from_shared(r[3])
                except OSError:
                    pass
        self.pool = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
