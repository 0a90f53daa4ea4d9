"""No import cycles in darknetpy: every import statement of its modules (those inside
functions too), read with `ast`, makes a graph; no cycle of it may go through a module
of SCOPE."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCOPE = ("darknetpy",)


def modules(root=ROOT):
    """{dotted name: path} of darknetpy's modules (a package as its __init__.py)."""
    found = {}
    for folder, _, files in os.walk(os.path.join(root, "darknetpy")):
        for name in files:
            if name.endswith(".py"):
                parts = os.path.relpath(os.path.join(folder, name), root)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = os.path.join(folder, name)
    return found


def imports(name, path, known):
    """The darknetpy modules that module `name` imports."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            targets = [(a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [(base, [a.name for a in node.names])]
        else:
            continue
        for base, names in targets:
            for sub in names:              # `from . import x`: x may be a module
                if f"{base}.{sub}" in known:
                    out.add(f"{base}.{sub}")
            if base in known:
                out.add(base)
    out.discard(name)
    return out


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def graph_of(root=ROOT):
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_graph_sees_relative_and_lazy_imports():
    graph = graph_of()
    assert "darknetpy.cpu.gemm_blocking" in graph["darknetpy.cpu.gemm"]       # from .gemm_blocking import
    assert "darknetpy.cpu.gemm" in graph["darknetpy.cpu.winograd"]           # from . import gemm
    assert "darknetpy.errors" in graph["darknetpy.gpu.runtime"]              # from ..errors import
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("scope", SCOPE)
def test_no_import_cycles(scope):
    inside = [c for c in cycles(graph_of()) if any(m == scope or m.startswith(scope + ".") for m in c)]
    assert not inside, f"import cycles through {scope}: {inside}"


def backend_imports(graph):
    """{module: the backend modules it imports} for the layers and the training executor,
    which reach a device only through `step.kernels` (darknetpy/kernels.py's protocol)."""
    users = [m for m in graph if m.startswith("darknetpy.layers") or m == "darknetpy.run.training"]
    backends = ("darknetpy.cpu", "darknetpy.gpu")
    found = {m: sorted(i for i in graph[m] if i in backends or i.startswith(tuple(b + "." for b in backends)))
             for m in users}
    return {m: i for m, i in found.items() if i}


def test_layers_and_training_name_no_backend():
    assert backend_imports(graph_of()) == {}


def test_the_backend_check_sees_an_import():
    graph = {"darknetpy.layers.maxpool": {"darknetpy.cpu.backward", "darknetpy.errors"}}
    assert backend_imports(graph) == {"darknetpy.layers.maxpool": ["darknetpy.cpu.backward"]}
