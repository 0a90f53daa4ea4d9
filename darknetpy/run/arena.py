"""The arena: one buffer for a whole forward pass, each output at a planned offset."""
from __future__ import annotations


def plan_arena(sizes: dict[int, int], live: dict[int, tuple[int, int]], align: int = 16) -> dict[int, tuple[int, int]]:
    """First-fit offsets (in floats) for buffers live over [first, last] layer indices.

    Buffers whose lives overlap never share bytes; the largest are placed first (the
    greedy-by-size order of TFLite's arena planner), which keeps the total near the
    largest set of buffers alive at once.
    """
    placed: list[tuple[int, int, int, int]] = []
    plan = {}
    for index in sorted(sizes, key=lambda i: (-sizes[i], i)):
        size = -(-sizes[index] // align) * align
        first, last = live[index]
        taken = sorted((o, o + s) for o, s, f, l in placed if f <= last and first <= l)
        offset = 0
        for start, end in taken:
            if offset + size <= start:
                break
            offset = max(offset, end)
        placed.append((offset, size, first, last))
        plan[index] = (offset, sizes[index])
    return plan


def arena_views(backend, plan: dict[int, tuple[int, int]], arena=None):
    """(arena, {layer index: flat view}) for `plan`, in `arena` if it is large enough."""
    total = max(offset + size for offset, size in plan.values())
    if arena is None or arena.size < total:
        arena = backend.empty(total)
    return arena, {index: arena[offset:offset + size] for index, (offset, size) in plan.items()}
