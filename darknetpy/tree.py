"""WordNet tree files (`9k.tree`): Darknet's `read_tree` and the hierarchy it defines.

A tree file has one line per class, `name parent_index`. A group is a run of
consecutive lines sharing a parent; each group has an offset and a size, and
`child[p]` is the index of the group whose lines have parent `p` (-1 for a leaf).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

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
