"""WordNet tree files (`9k.tree`): Darknet's `read_tree` and the hierarchy it defines.

A tree file has one line per class, `name parent_index`. A group is a run of
consecutive lines sharing a parent; each group has an offset and a size, and
`child[p]` is the index of the group whose lines have parent `p` (-1 for a leaf).

`hierarchy_predictions` and `hierarchy_top_prediction` turn the per-group softmax
outputs of a tree region/softmax layer into path probabilities and pick a class.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numba
import numpy as np

from .errors import DataError


@dataclass(frozen=True)
class Tree:
    """Darknet's `tree` struct; every array is int32 so kernels can take it as is."""

    path: str
    name: tuple[str, ...]
    parent: np.ndarray
    child: np.ndarray
    group: np.ndarray
    leaf: np.ndarray
    group_offset: np.ndarray
    group_size: np.ndarray

    @property
    def n(self) -> int:
        return len(self.name)

    @property
    def groups(self) -> int:
        return len(self.group_size)


def _parse_line(path: str, lineno: int, line: str) -> tuple[str, int]:
    """Read a line the way `sscanf(line, "%s %d")` does (a missing parent stays -1)."""
    fields = line.split()
    if not fields:
        return "", -1
    parent = -1
    if len(fields) > 1:
        digits = fields[1]
        try:
            parent = int(digits)
        except ValueError:
            raise DataError(f"{path}:{lineno}: parent index {digits!r} is not an integer") from None
    return fields[0], parent


def read_tree(path: str) -> Tree:
    """Parse a tree file with Darknet's grouping rule (the first group may be empty)."""
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise DataError(f"{path}: cannot read tree file: {e.strerror}") from None
    if lines and lines[-1] == "":
        lines.pop()
    names, parents, groups_of, child = [], [], [], []
    offsets, sizes = [], []
    last_parent, run, groups = -1, 0, 0
    for n, line in enumerate(lines):
        name, parent = _parse_line(path, n + 1, line.rstrip("\r"))
        if parent >= n or parent < -1:
            raise DataError(f"{path}:{n + 1}: parent {parent} of {name!r} must be an earlier line")
        if parent != last_parent:
            groups += 1
            offsets.append(n - run)
            sizes.append(run)
            run, last_parent = 0, parent
        names.append(name)
        parents.append(parent)
        child.append(-1)
        groups_of.append(groups)
        if parent >= 0:
            child[parent] = groups
        run += 1
    if not names:
        raise DataError(f"{path}: tree file is empty")
    offsets.append(len(names) - run)
    sizes.append(run)
    parent_arr = np.asarray(parents, np.int32)
    leaf = np.ones(len(names), np.int32)
    leaf[parent_arr[parent_arr >= 0]] = 0
    return Tree(
        path=os.fspath(path),
        name=tuple(names),
        parent=parent_arr,
        child=np.asarray(child, np.int32),
        group=np.asarray(groups_of, np.int32),
        leaf=leaf,
        group_offset=np.asarray(offsets, np.int32),
        group_size=np.asarray(sizes, np.int32),
    )


# ---------------------------------------------------------------------------
# Hierarchical (WordNet tree) class probabilities
# ---------------------------------------------------------------------------

# Smallest positive normal float32; anything smaller in magnitude is subnormal.
_FLT_MIN = np.float32(2.0 ** -126)


@numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def flush32(x, ftz):
    """Flush-to-zero / denormals-are-zero for one float32: a subnormal becomes a zero
    of the same sign when `ftz` is true (what MXCSR FTZ/DAZ do in the -Ofast build)."""
    if ftz and abs(x) < _FLT_MIN:
        return x * np.float32(0.0)
    return x


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def hierarchy_predictions_kernel(pred, base, n, parent, leaf, only_leaves, stride, ftz):
    """`hierarchy_predictions` on a flat array, callable from other Numba kernels."""
    # Parents precede their children in the file, so walking the classes in index
    # order multiplies each class by a parent that already holds its full path product.
    for j in range(n):
        p = parent[j]
        if p >= 0:
            a = flush32(pred[base + j * stride], ftz)
            b = flush32(pred[base + p * stride], ftz)
            pred[base + j * stride] = flush32(a * b, ftz)
    if only_leaves:
        for j in range(n):
            if leaf[j] == 0:
                pred[base + j * stride] = np.float32(0.0)


@numba.njit(cache=True, fastmath=False, error_model="numpy")
def hierarchy_top_prediction_kernel(pred, base, group_offset, group_size, child, parent,
                                    thresh, stride, ftz):
    """`hierarchy_top_prediction` on a flat array, callable from other Numba kernels."""
    # Descend from the root group while the running path probability stays above
    # thresh; in each group the largest entry wins (strict '>', starting from 0 at
    # index 0, so the first of equal maxima is kept and NaN never wins).
    p = np.float32(1.0)
    thresh = flush32(thresh, ftz)
    group = 0
    while True:
        best = np.float32(0.0)
        best_i = 0
        off = group_offset[group]
        for i in range(group_size[group]):
            val = flush32(pred[base + (off + i) * stride], ftz)
            if val > best:
                best = val
                best_i = off + i
        q = flush32(p * best, ftz)
        if q > thresh:
            p = q
            group = child[best_i]
            if group < 0:
                return best_i
        elif group == 0:
            return best_i
        else:
            return parent[group_offset[group]]


def _as_flat_f32(pred) -> np.ndarray:
    arr = np.asarray(pred)
    if arr.dtype != np.float32:
        raise TypeError(f"predictions must be float32, got {arr.dtype}")
    flat = arr.reshape(-1)
    if not np.shares_memory(flat, arr):
        raise ValueError("predictions must be a contiguous array (it is updated in place)")
    return flat


def hierarchy_predictions(pred, n: int, tree: Tree, only_leaves: bool, stride: int = 1,
                          *, offset: int = 0, ftz: bool = True) -> None:
    """Darknet's `hierarchy_predictions`, in place.

    Class j lives at `pred.flat[offset + j*stride]`; every class with a parent is
    multiplied by its parent's (already multiplied) value, so it ends up holding the
    product of the conditional probabilities along its path. With `only_leaves`, inner
    nodes are then set to 0 (the classifier's use). `ftz=True` flushes subnormal
    operands and products to signed zero, as the stock -Ofast build does; `ftz=False`
    keeps them (the O2 build).
    """
    flat = _as_flat_f32(pred)
    if n > tree.n:
        raise ValueError(f"{n} classes but the tree has only {tree.n} entries")
    if n > 0 and offset + (n - 1) * stride >= flat.size:
        raise ValueError("predictions array too short for n classes at this stride")
    hierarchy_predictions_kernel(flat, int(offset), int(n), tree.parent, tree.leaf,
                                 bool(only_leaves), int(stride), bool(ftz))


def hierarchy_top_prediction(pred, tree: Tree, thresh: float, stride: int = 1,
                             *, offset: int = 0, ftz: bool = True) -> int:
    """Darknet's `hierarchy_top_prediction`: the class index reached by walking down
    the tree from the root group while `path_prob * max > thresh` (float32)."""
    flat = _as_flat_f32(pred)
    last = offset + (tree.n - 1) * stride
    if last >= flat.size:
        raise ValueError("predictions array too short for the tree at this stride")
    return int(hierarchy_top_prediction_kernel(flat, int(offset), tree.group_offset, tree.group_size,
                                               tree.child, tree.parent, np.float32(thresh),
                                               int(stride), bool(ftz)))
