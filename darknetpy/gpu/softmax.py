"""Darknet's softmax loops on the GPU, bit for bit as darknetpy/cpu/softmax.py, both builds
(`vector`: the -Ofast one) and FTZ/DAZ (`ftz`); see softmax.cu."""
import os

import numpy as np

from . import runtime

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "softmax.cu")
THREADS = 128
STOCK_TREE_THREADS = 1024
_int_arrays: dict[int, tuple] = {}


def _cdiv(a, b):
    return -(-a // b)


def _function(name):
    return runtime.load_module(SOURCE).function(name)


def device_ints(values):
    """An int32 device array of a host int array (a tree's offsets or sizes), uploaded once
    per array object; device arrays pass through."""
    if runtime.emulating():
        return np.ascontiguousarray(values, np.int32)
    if not isinstance(values, np.ndarray):
        return runtime.xp().ascontiguousarray(values, dtype=np.int32)
    cached = _int_arrays.get(id(values))
    if cached is None or cached[0] is not values:
        cached = _int_arrays[id(values)] = (values, runtime.upload(np.asarray(values, np.int32)))
    return cached[1]


def softmax_groups(x, n, batch, batch_offset, groups, group_offset, stride, temp, out, vector, ftz):
    """Darknet's `softmax_cpu`: a softmax of n entries (stride apart) per (batch, group)."""
    count = batch * groups
    if count <= 0 or n <= 0:
        return
    _function("softmax_groups")((_cdiv(count, THREADS),), (THREADS,), (
        x, n, batch, batch_offset, groups, group_offset, stride, np.float32(temp), out,
        int(bool(vector)), int(bool(ftz))))


def softmax_tree(x, base, spatial, batch, inputs, group_offset, group_size, temp, out, vector, ftz):
    """The tree softmax as Darknet's GPU `softmax_tree` lays it out: per block b of `inputs`
    floats, group g and location s, a softmax over group_size[g] entries from
    base + b*inputs + group_offset[g]*spatial + s, stride spatial."""
    groups = len(group_size)
    count = batch * groups * spatial
    if count <= 0:
        return
    _function("softmax_tree")((_cdiv(count, THREADS),), (THREADS,), (
        x, base, spatial, batch, inputs, device_ints(group_offset), device_ints(group_size), groups,
        np.float32(temp), out, int(bool(vector)), int(bool(ftz))))


def softmax_stock_tree(x, first, cells, group_size, out, vector, ftz):
    """Darknet's CPU tree branch: for each tree group in order, `cells` softmaxes of its size
    from count + c (stride cells, temperature 0), count starting at `first` and growing by
    each size. Later groups overwrite earlier ones, so it runs as one block of threads that
    finish each group before the next (the softmaxes of one group are disjoint)."""
    groups = len(group_size)
    if groups == 0 or cells <= 0:
        return
    _function("softmax_stock_tree")((1,), (min(STOCK_TREE_THREADS, cells),), (
        x, first, cells, device_ints(group_size), groups, out, int(bool(vector)), int(bool(ftz))))
