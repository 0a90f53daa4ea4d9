"""Both backends provide exactly the kernels of darknetpy/kernels.py, with its signatures;
a backend whose kernels module says TRAINING = True provides every training kernel too,
one that says False none of them."""
import inspect
import types

import pytest

from darknetpy import kernels
from darknetpy.cpu import kernels as cpu_kernels
from darknetpy.gpu import kernels as gpu_kernels


def mismatches(module, names=kernels.NAMES, protocol=kernels.Kernels) -> list[str]:
    """What `module` gets wrong against the protocol: missing kernels, other parameters."""
    problems = []
    for name in names:
        want = list(inspect.signature(getattr(protocol, name)).parameters)[1:]
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
    assert public == set(kernels.NAMES) | (set(kernels.TRAINING_NAMES) if module.TRAINING else set())


def training_mismatches(module) -> list[str]:
    """What `module` gets wrong against TrainingKernels: with TRAINING every kernel as the
    protocol says, without it none (no half set)."""
    if module.TRAINING:
        return mismatches(module, kernels.TRAINING_NAMES, kernels.TrainingKernels)
    return [f"{name}: provided by a backend that does not train" for name in kernels.TRAINING_NAMES
            if hasattr(module, name)]


@pytest.mark.parametrize("module", [cpu_kernels, gpu_kernels], ids=["cpu", "gpu"])
def test_backend_provides_the_training_protocol_or_none_of_it(module):
    assert isinstance(module.TRAINING, bool)
    assert training_mismatches(module) == []


def test_the_cpu_trains_and_the_gpu_does_not_yet():
    assert cpu_kernels.TRAINING and not gpu_kernels.TRAINING


def test_protocol_lists_are_disjoint():
    assert not set(kernels.NAMES) & set(kernels.TRAINING_NAMES)


def test_activation_codes_are_the_cpus():
    from darknetpy.cpu import activations
    assert kernels.ACTIVATIONS == activations.CODES


def test_region_loss_statuses_and_slots_are_the_protocols():
    from darknetpy.cpu import region_loss
    assert (region_loss.OK, region_loss.BAD_CELL, region_loss.BAD_CLASS) == (
        kernels.REGION_OK, kernels.REGION_BAD_CELL, kernels.REGION_BAD_CLASS)
    assert (region_loss.AVG_IOU, region_loss.CLASS, region_loss.OBJ, region_loss.NO_OBJ, region_loss.RECALL,
            region_loss.COST) == (kernels.REGION_AVG_IOU, kernels.REGION_CLASS, kernels.REGION_OBJ,
                                  kernels.REGION_NO_OBJ, kernels.REGION_RECALL, kernels.REGION_COST)


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


def test_the_training_check_sees_a_missing_kernel():
    assert training_mismatches(fake(cpu_kernels, drop="gemm_nt_add")) == ["gemm_nt_add: missing"]


def test_the_training_check_sees_a_half_set():
    half = fake(gpu_kernels)
    half.axpy = cpu_kernels.axpy
    assert training_mismatches(half) == ["axpy: provided by a backend that does not train"]


def test_the_check_sees_other_parameters():
    assert mismatches(fake(cpu_kernels, change="maxpool")) == [
        "maxpool: (x, out) instead of (x, size, stride, pad, out, ftz)"]


def test_protocol_lists_every_kernel_with_its_shapes():
    for protocol, names in ((kernels.Kernels, kernels.NAMES), (kernels.TrainingKernels, kernels.TRAINING_NAMES)):
        check_shape_comments(protocol, names)


def check_shape_comments(protocol, names):
    source = inspect.getsource(protocol)
    for name in names:
        before = source.split(f"    def {name}(")[0].rstrip().splitlines()[-1].strip()
        assert before.startswith("#"), f"{name} has no shape comment above it"


def test_training_refuses_a_backend_that_does_not_train():
    import numpy as np

    from darknetpy.backend import Backend
    from darknetpy.errors import DarknetError
    from darknetpy.run.training import TrainingExecutor
    assert Backend("cpu", cpu_kernels, np).trains
    assert not Backend("cuda:0", gpu_kernels, np).trains
    with pytest.raises(DarknetError, match=r"^training runs on the CPU only \(device='cpu'\): cuda:0's kernels "
                                           r"do not train$"):
        TrainingExecutor(None, Backend("cuda:0", gpu_kernels, np), None, None)
