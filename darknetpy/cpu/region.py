"""The region layer's forward pass on the CPU (logistic, softmax, tree softmax)."""
import numpy as np

from . import activations
from .softmax import softmax_groups, softmax_groups_serial, softmax_tree


def region(x, anchors, spatial, classes, coords, background, use_softmax, tree, tree_compat,
           vector, ftz, out):
    """x: the flat input -> out (the same size), Darknet's `forward_region_layer`.

    `tree` is (group_offset, group_size) or None. `tree_compat` selects the stock CPU
    code path for the tree (see layers/region.py for what it gets wrong).
    """
    out[:] = x
    entries = classes + coords + 1
    for a in range(anchors):
        base = a * entries * spatial
        activations.activate_array(out[base:base + 2 * spatial], activations.LOGISTIC, ftz)
        if not background:
            o = base + coords * spatial
            activations.activate_array(out[o:o + spatial], activations.LOGISTIC, ftz)
        if not use_softmax and tree is None:
            o = base + (coords + 1) * spatial
            activations.activate_array(out[o:o + classes * spatial], activations.LOGISTIC, ftz)
    if tree is not None:
        offsets, sizes = tree
        if tree_compat:
            _stock_cpu_tree(x, out, anchors * spatial, coords, sizes, vector, ftz)
        else:
            softmax_tree(x, (coords + 1) * spatial, spatial, anchors, entries * spatial,
                         offsets, sizes, np.float32(1.0), out, vector, ftz)
    elif use_softmax:
        start = (coords + (0 if background else 1)) * spatial
        softmax_groups(x[start:], classes + background, anchors, entries * spatial, spatial, 1,
                    spatial, np.float32(1.0), out[start:], vector, ftz)
    return out


def _stock_cpu_tree(x, out, cells, coords, sizes, vector, ftz):
    """Darknet's CPU branch: entry offsets not scaled by the cell count, temperature 0."""
    count = coords + 1
    for size in sizes:
        size = int(size)
        reach = count + (cells - 1) + (size - 1) * cells
        if reach >= x.size:
            raise ValueError(f"stock CPU tree softmax would read past the region input ({reach} >= {x.size})")
        softmax_groups_serial(x, count, size, 1, x.size, cells, 1, cells, np.float32(0.0), out, vector, ftz)
        count += size
