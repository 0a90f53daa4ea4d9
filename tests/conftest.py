"""Fixtures shared by the GEMM test modules; SIGINT as an interactive run has it."""
import signal

import numba
import pytest

from darknetpy.cpu import gemm

# A run started as a background job inherits SIGINT ignored; Python then installs no
# KeyboardInterrupt handler, neither here nor in the commands the tests start, and the
# Ctrl-C tests would test nothing. Give this process (and so its children) the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
