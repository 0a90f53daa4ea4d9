"""cpu/work_split.py: the units each layer hands out at any thread count, and the idle
share of a thread when units are taken by whichever thread is free."""
import numba
import pytest

import kit
from darknetpy.cpu import gemm, gemm_blocking, work_split


@pytest.mark.parametrize("costs, threads, idle", [
    ([1.0] * 4, 2, 0.0), ([1.0] * 3, 2, 0.5), ([2.0, 1.0, 1.0], 2, 0.0), ([1.0], 4, 1.0),
    ([1.0] * 9, 8, 0.5), ([3.0, 1.0, 1.0, 1.0], 2, 0.0)])
def test_idle_fraction(costs, threads, idle):
    assert work_split.idle_fraction(costs, threads) == pytest.approx(idle)


@pytest.mark.parametrize("threads", [8, 16, 64])
def test_narrow_products_get_units_for_every_thread(threads):
    """yolov2 608's 19x19 layers: at least two units a thread at any thread count (tiles
    of C where columns and rows alone are too few)."""
    for M, K in ((1024, 9216), (1024, 512), (512, 4608), (425, 1024)):
        _, cols, rows, _ = gemm_blocking.work_units(M, 361, threads, K)
        assert cols * rows >= 2 * threads


def test_two_threads_keep_their_split():
    """The tiles only replace a split that leaves a thread fewer than two units: yolov2
    608's 19x19 layers at 2 threads keep a split by columns or by rows alone. Which one
    depends on the micro-tile: 16 columns (AVX2) give 23 column panels, cut into 8 column
    units of 2-3 panels; 48 columns (AVX-512) give only 8, fewer than the 128 row panels
    of 8 rows, and A (36 MiB) is too large for every thread to read it whole, so 8 row
    units of 16 panels."""
    split = gemm_blocking.work_units(1024, 361, 2, 9216)
    if gemm.NR == 48:
        assert split == (False, 1, 8, 361)
    else:
        assert split == (True, 8, 1, 3 * gemm.NR)


@pytest.mark.skipif(not kit.available(), reason=kit.V2.MISSING)
def test_network_split_follows_the_executor():
    """At this machine's thread count the fused convolution + maxpool pairs are the
    network's own, and every convolution and pool has a region."""
    from darknetpy.network import Network
    net = Network(str(kit.cfg_path("yolov2-tiny")), None, warn=None)
    rows = work_split.network_split(net, numba.config.NUMBA_NUM_THREADS)
    pooled = {i for i, _, s in rows if s.region == "pooled bands"}
    assert pooled == set(net.fused_pools)
    listed = {i for i, _, _ in rows}
    for layer in net.layers:
        if layer.type == "convolutional" or (layer.type == "maxpool" and layer.index - 1 not in pooled):
            assert layer.index in listed
