"""Both backends provide exactly the kernels of darknetpy/kernels.py, with its signatures."""
import inspect
import types

import pytest

from darknetpy import kernels
from darknetpy.cpu import kernels as cpu_kernels
from darknetpy.gpu import kernels as gpu_kernels


def mismatches(module) -> list[str]:
    """What `module` gets wrong against the protocol: missing kernels, other parameters."""
    problems = []
    for name in kernels.NAMES:
        want = list(inspect.signature(getattr(kernels.Kernels, name)).parameters)[1:]
        fn = getattr(module, name, None)
        if fn is None:
            problems.append(f"{name}: missing")
            continue
        params = inspect.signature(fn).parameters
        got = list(params)
        if got != want:
            problems.append(f"{name}: ({', '.join(got)}) instead of ({', '.join(want)})")
        defaults = [p for p in params.values() if p.default is not inspect.Parameter.empty]
        if defaults:
            problems.append(f"{name}: defaults ({', '.join(p.name for p in defaults)}) the protocol does not have")
    return problems


@pytest.mark.parametrize("module", [cpu_kernels, gpu_kernels], ids=["cpu", "gpu"])
def test_backend_provides_the_protocol(module):
    assert mismatches(module) == []


@pytest.mark.parametrize("module", [cpu_kernels, gpu_kernels], ids=["cpu", "gpu"])
def test_backend_provides_nothing_else(module):
    """A kernel one backend adds outside the protocol is one the other may lack."""
    public = {name for name, value in vars(module).items()
              if inspect.isfunction(value) and value.__module__ == module.__name__ and not name.startswith("_")}
    assert public == set(kernels.NAMES)


def fake(module, drop=None, change=None):
    """A copy of `module` with one kernel removed, or one whose parameters differ."""
    copy = types.ModuleType("fake")
    copy.__dict__.update(vars(module))
    if drop:
        delattr(copy, drop)
    if change:
        setattr(copy, change, lambda x, out: out)
    return copy


def test_the_check_sees_a_missing_kernel():
    assert mismatches(fake(gpu_kernels, drop="avgpool")) == ["avgpool: missing"]


def test_the_check_sees_other_parameters():
    assert mismatches(fake(cpu_kernels, change="maxpool")) == [
        "maxpool: (x, out) instead of (x, size, stride, pad, out, ftz)"]


def test_protocol_lists_every_kernel_with_its_shapes():
    source = inspect.getsource(kernels.Kernels)
    for name in kernels.NAMES:
        before = source.split(f"    def {name}(")[0].rstrip().splitlines()[-1].strip()
        assert before.startswith("#"), f"{name} has no shape comment above it"
