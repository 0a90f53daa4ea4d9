"""glibc's `rand()` (TYPE_3 additive feedback, degree 31) and Darknet's rand helpers
(src/utils.c), value for value.

Darknet's data augmentation draws every random number from the C library's `rand()`;
reproducing its batches needs that exact stream, so it is emulated here rather than
taken from numpy. The helpers compute in float32 exactly as the C code does (the
`-Ofast` build gives the same values for these)."""
from __future__ import annotations

import numpy as np

RAND_MAX = 2147483647
_DEG = 31
_SEP = 3
_F32 = np.float32
_TWO_POW_M31 = _F32(2.0 ** -31)


class GlibcRand:
    """One `srand(seed)` / `rand()` stream of glibc's `random()` (TYPE_3)."""

    __slots__ = ("table", "front", "rear", "calls")

    def __init__(self, seed: int = 1):
        self.srand(seed)

    def srand(self, seed: int) -> None:
        """glibc's `srandom`: the Park-Miller seeding by Schrage's method, then 310 draws."""
        seed &= 0xFFFFFFFF
        if seed == 0:
            seed = 1
        word = seed - (1 << 32) if seed >= 1 << 31 else seed
        r = [word]
        for _ in range(1, _DEG):
            hi = int(word / 127773)              # C division truncates toward zero
            lo = word - hi * 127773
            word = 16807 * lo - 2836 * hi
            if word < 0:
                word += 2147483647
            r.append(word)
        self.table = [v & 0xFFFFFFFF for v in r]
        self.front = _SEP
        self.rear = 0
        self.calls = 0
        for _ in range(10 * _DEG):
            self._next()
        self.calls = 0

    def _next(self) -> int:
        t = self.table
        f, b = self.front, self.rear
        v = (t[f] + t[b]) & 0xFFFFFFFF
        t[f] = v
        self.front = f + 1 if f + 1 < _DEG else 0
        self.rear = b + 1 if b + 1 < _DEG else 0
        self.calls += 1
        return v >> 1

    def rand(self) -> int:
        """The next `rand()` in [0, RAND_MAX]."""
        return self._next()

    def state(self) -> dict:
        """JSON-able generator state (table, positions, calls so far)."""
        return {"table": list(self.table), "front": self.front, "rear": self.rear, "calls": self.calls}

    def restore(self, state: dict) -> None:
        """Continue from a `state()`."""
        self.table = [int(v) & 0xFFFFFFFF for v in state["table"]]
        self.front = int(state["front"])
        self.rear = int(state["rear"])
        self.calls = int(state.get("calls", 0))


def rand_uniform(rng: GlibcRand, lo, hi) -> np.float32:
    """`rand_uniform(min, max)`: swapped when max < min; float32 throughout."""
    lo, hi = _F32(lo), _F32(hi)
    if hi < lo:
        lo, hi = hi, lo
    r = _F32(rng.rand())
    return _F32(_F32(r * _TWO_POW_M31) * _F32(hi - lo)) + lo


def rand_scale(rng: GlibcRand, s) -> np.float32:
    """`rand_scale(s)`: a uniform value between 1 and s, inverted when the next rand() is even."""
    scale = rand_uniform(rng, 1, s)
    if rng.rand() % 2:
        return scale
    return _F32(_F32(1) / scale)


def rand_int(rng: GlibcRand, lo: int, hi: int) -> int:
    """`rand_int(min, max)`: swapped when max < min."""
    if hi < lo:
        lo, hi = hi, lo
    return rng.rand() % (hi - lo + 1) + lo


class NormalSpare:
    """`rand_normal()` keeps a static spare value; one instance holds it."""

    __slots__ = ("spare", "have")

    def __init__(self):
        self.spare = 0.0
        self.have = False


_TWO_PI_F = float(np.float32(6.2831853071795864769252866))


def rand_normal(rng: GlibcRand, spare: NormalSpare) -> float:
    """Darknet's Box-Muller `rand_normal()` in double, returned as a C float (weights init, not the data path)."""
    import math

    if spare.have:
        spare.have = False
        return float(_F32(spare.spare))
    r1 = rng.rand() / RAND_MAX
    if r1 < 1e-100:
        r1 = 1e-100
    r1 = -2 * math.log(r1)
    r2 = rng.rand() / RAND_MAX * _TWO_PI_F
    spare.spare = math.sqrt(r1) * math.sin(r2)
    spare.have = True
    return float(_F32(math.sqrt(r1) * math.cos(r2)))


def random_paths(rng: GlibcRand, paths: list[str], n: int) -> list[str]:
    """`get_random_paths`: n paths drawn by `rand() % m`, all drawn before any image loads."""
    m = len(paths)
    return [paths[rng.rand() % m] for _ in range(n)]
