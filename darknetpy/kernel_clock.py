"""How long getting darknetpy's kernels ready took: compiling them, or loading them from
the cache, which each kernel's first call does (Numba's compiler lock is held for both).

`kernel_seconds` is this thread's share: Network leaves it out of the time of a forward
pass, so Darknet's "Predicted in" line times the forward pass alone on a first run too.
`process_kernel_seconds` is the process's: the run's summary line says how much of the
run it was. A module of its own, with no darknetpy imports: the network reads the clock,
and kernel_cache (which compiles networks ahead) must not be imported by it.
"""
from __future__ import annotations

import threading
import time


class _Clock(threading.local):
    depth = 0
    start = 0.0
    total = 0.0


class _ProcessClock:
    lock = threading.Lock()
    inside = 0          # threads in the compiler lock (or waiting for it)
    start = 0.0
    total = 0.0


_clock = _Clock()
_clock_listener = None


def kernel_seconds() -> float:
    """Seconds this thread has spent in Numba's compiler lock since the clock was
    installed (install_clock): loading kernels from the cache or compiling them, the
    lock's waits included."""
    return _clock.total


def process_kernel_seconds() -> float:
    """Seconds during which some thread of this process was getting kernels ready."""
    return _ProcessClock.total


def install_clock() -> None:
    """Start counting `kernel_seconds` (outermost holds of the lock, per thread) and
    `process_kernel_seconds`."""
    global _clock_listener
    if _clock_listener is not None:
        return
    from numba.core import event

    class Clock(event.Listener):
        def on_start(self, ev):
            if _clock.depth == 0:
                now = _clock.start = time.perf_counter()
                with _ProcessClock.lock:
                    if _ProcessClock.inside == 0:
                        _ProcessClock.start = now
                    _ProcessClock.inside += 1
            _clock.depth += 1

        def on_end(self, ev):
            _clock.depth -= 1
            if _clock.depth == 0:
                now = time.perf_counter()
                _clock.total += now - _clock.start
                with _ProcessClock.lock:
                    _ProcessClock.inside -= 1
                    if _ProcessClock.inside == 0:
                        _ProcessClock.total += now - _ProcessClock.start

    _clock_listener = Clock()
    event.register("numba:compiler_lock", _clock_listener)
