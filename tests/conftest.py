"""Fixtures shared by the GEMM test modules."""
import numba
import pytest

from darknetpy.cpu import gemm


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request, monkeypatch):
    """Run at 1 and at 2 threads, small products split among threads too."""
    n = request.param
    if n > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("numba has fewer threads")
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    monkeypatch.setattr(gemm, "PAR_MIN_FLOPS", 0)
    yield n
    numba.set_num_threads(old)
