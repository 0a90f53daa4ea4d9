"""The region layer's forward pass on the GPU, bit for bit as darknetpy/cpu/region.py."""
import os

import numpy as np

from . import runtime
from .softmax import softmax_groups, softmax_stock_tree, softmax_tree

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "region.cu")
THREADS = 256


def region(x, anchors, spatial, classes, coords, background, use_softmax, tree, tree_compat,
           vector, ftz, out):
    """x: the flat input (a device array) -> out (the same size), Darknet's
    `forward_region_layer`. `tree` is (group_offset, group_size) or None; `tree_compat`
    selects the stock CPU build's tree code (see layers/region.py)."""
    entries = classes + coords + 1
    if x.size:
        class_logistic = not use_softmax and tree is None
        runtime.load_module(SOURCE).function("region_logistic")(
            (-(-x.size // THREADS),), (THREADS,),
            (x, out, x.size, spatial, entries, coords, int(bool(background)), int(class_logistic),
             int(bool(ftz))))
    if tree is not None:
        offsets, sizes = tree
        if tree_compat:
            _stock_cpu_tree(x, out, anchors * spatial, coords, sizes, vector, ftz)
        else:
            softmax_tree(x, (coords + 1) * spatial, spatial, anchors, entries * spatial, offsets, sizes,
                         np.float32(1.0), out, vector, ftz)
    elif use_softmax:
        start = (coords + (0 if background else 1)) * spatial
        softmax_groups(x[start:], classes + background, anchors, entries * spatial, spatial, 1, spatial,
                       np.float32(1.0), out[start:], vector, ftz)
    return out


def _stock_cpu_tree(x, out, cells, coords, sizes, vector, ftz):
    """Darknet's CPU branch: entry offsets not scaled by the cell count, temperature 0."""
    count = coords + 1
    for size in np.asarray(sizes).tolist():
        reach = count + (cells - 1) + (size - 1) * cells
        if reach >= x.size:
            raise ValueError(f"stock CPU tree softmax would read past the region input ({reach} >= {x.size})")
        count += size
    softmax_stock_tree(x, coords + 1, cells, sizes, out, vector, ftz)
