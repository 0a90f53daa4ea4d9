"""How the CPU kernels divide a forward pass's work among threads, for thread counts
this machine does not have: the units each layer's main parallel region hands out,
found with the same functions the kernels use, and, with units taken one at a time
by whichever thread is free (the kernels' shared counters; TBB's stealing for plain
parallel loops), the largest share of the region's time a thread sits idle.

A unit's cost is taken as proportional to its size (columns, row panels, pooled rows,
channels): units of one region do the same work per column or row.
"""
import heapq
from dataclasses import dataclass

from . import convolution as conv
from . import pool as pool_kernels
from .gemm import PAR_MIN_FLOPS
from .gemm_blocking import MR, NR, unit_start, work_units


@dataclass
class Split:
    """One layer's main parallel region at one thread count."""
    region: str         # which kernel: "column blocks", "pooled bands", "gemm columns", ...
    units: int
    idle: float         # largest fraction of the region's time one thread is idle
    serial: bool = False    # too small to split: it runs on the calling thread by design


ONE_THREAD = Split("one thread", 1, 0.0, True)


def idle_fraction(costs, threads):
    """Units of the given costs, each taken by the thread that is free first: the idle
    share of the least busy thread in the region's time (1.0 when a thread gets none)."""
    busy = [0.0] * threads
    heapq.heapify(busy)
    for c in costs:
        heapq.heappush(busy, heapq.heappop(busy) + c)
    end = max(busy)
    return 0.0 if end == 0 else 1.0 - min(busy) / end


def _sizes(total, per):
    """Unit sizes of `total` split into units of `per` (the last one shorter)."""
    return [min(per, total - s) for s in range(0, total, per)]


def convolution_split(in_shape, filters, size, stride, pad, groups, out_hw, threads, pool=None):
    """The split of a convolution's product at `threads` threads (exact numerics: the
    direct product), fused with the maxpool after it (pool: its size, stride and
    padding) when the kernels would fuse them."""
    c = in_shape[0]
    k, n = c // groups * size * size, out_hw[0] * out_hw[1]
    if pool and conv.maxpool_fusable(in_shape, filters, size, stride, pad, groups, out_hw, *pool, True, threads):
        pool_size = pool[0]
        bands = conv.pool_bands(k, out_hw[1], pool_size)
        pooled_h = -(-out_hw[0] // pool_size)
        sizes = _sizes(pooled_h, bands)
        return Split("pooled bands", len(sizes), idle_fraction(sizes, threads))
    if groups == 1 and conv.blocked(k, n, threads):
        sizes = _sizes(n, conv.block_columns(k))
        return Split("column blocks", len(sizes), idle_fraction(sizes, threads))
    m = filters // groups
    if threads == 1 or 2.0 * m * k * n < PAR_MIN_FLOPS:
        return ONE_THREAD
    by_cols, cols, rows, _ = work_units(m, n, threads, k)
    npan, nj = -(-m // MR), -(-n // NR)
    row_sizes = [unit_start(r + 1, rows, npan) - unit_start(r, rows, npan) for r in range(rows)]
    col_sizes = [unit_start(c + 1, cols, nj) - unit_start(c, cols, nj) for c in range(cols)]
    sizes = [float(r * c) for r in row_sizes for c in col_sizes]
    region = "gemm row panels" if not by_cols else "gemm columns" if rows == 1 else "gemm tiles"
    return Split(region, len(sizes), idle_fraction(sizes, threads))


def channel_split(channels, threads):
    """A parallel loop over channels (reorg, shortcut, upsample)."""
    return Split("channels", channels, idle_fraction([1.0] * channels, threads))


def maxpool_split(size, out_shape, threads):
    """A maxpool's units: channels, or bands of rows of each channel (pool.row_bands)."""
    c, out_h, out_w = out_shape
    if c * out_h * out_w * size * size < pool_kernels.SERIAL_MAX:
        return ONE_THREAD
    bands = pool_kernels.row_bands(c, out_h, threads)
    sizes = [float((b + 1) * out_h // bands - b * out_h // bands) for _ in range(c) for b in range(bands)]
    return Split("channels" if bands == 1 else "row bands", len(sizes), idle_fraction(sizes, threads))


def network_split(net, threads):
    """(layer index, layer type, Split) for each layer of net with a parallel region of
    its own in a forward pass (a maxpool fused into its convolution has none). A pair
    fuses only where it does at this machine's thread count (net.fused_pools: the pool
    is the convolution's only reader) and the kernels would fuse it at `threads`."""
    out = []
    fused = set()
    layers = net.layers
    for i, layer in enumerate(layers):
        if i in fused:
            continue
        if layer.type == "convolutional":
            nxt = layers[i + 1] if i in net.fused_pools else None
            pool = (nxt.size, nxt.stride, nxt.padding) if nxt is not None else None
            split = convolution_split(layer.in_shape, layer.filters, layer.size, layer.stride, layer.padding,
                                      layer.groups, layer.out_shape[1:], threads, pool)
            if split.region == "pooled bands":
                fused.add(i + 1)
            out.append((i, layer.type, split))
        elif layer.type == "maxpool":
            out.append((i, layer.type, maxpool_split(layer.size, layer.out_shape, threads)))
        elif layer.type in ("reorg", "shortcut", "upsample"):
            out.append((i, layer.type, channel_split(layer.out_shape[0], threads)))
    return out
