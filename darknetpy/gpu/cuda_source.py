"""A CUDA kernel file as text: its `#include "..."` files inlined and its kernels'
signatures parsed, for both ways of running it (CuPy's NVRTC in `runtime`, g++ in
`emulator`).

    kernels = parse_kernels(expand_source(path))   # {name: (Param, ...)}
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import DarknetError

# --- source --------------------------------------------------------------------------

_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"\s*$')
_PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\s*$")


def expand_source(path: str) -> str:
    """The kernel file with its `#include "..."` files inlined, `#line` keeping positions.

    Inlining makes the source self-contained: NVRTC needs no include path, and the
    text that CuPy and the emulator hash for their caches covers the headers too.
    """
    out: list[str] = []
    _expand(os.path.abspath(path), out, set())
    return "".join(out)


def _expand(path: str, out: list[str], seen: set[str]) -> None:
    if path in seen:
        return
    seen.add(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise DarknetError(f"cannot read CUDA source {path}: {e.strerror}") from e
    out.append(f'#line 1 "{path}"\n')
    for number, line in enumerate(lines, 1):
        m = _LOCAL_INCLUDE.match(line)
        if m:
            _expand(os.path.join(os.path.dirname(path), m.group(1)), out, seen)
            out.append(f'#line {number + 1} "{path}"\n')
        elif _PRAGMA_ONCE.match(line):
            out.append("\n")
        else:
            out.append(line if line.endswith("\n") else line + "\n")


# --- kernel signatures ---------------------------------------------------------------

# C parameter type (qualifiers and pointer removed) -> numpy dtype.
C_TYPES = {
    "float": np.float32, "double": np.float64,
    "int": np.int32, "signed": np.int32, "signed int": np.int32, "int32_t": np.int32,
    "unsigned": np.uint32, "unsigned int": np.uint32, "uint32_t": np.uint32,
    "long long": np.int64, "long long int": np.int64, "int64_t": np.int64, "long": np.int64,
    "unsigned long long": np.uint64, "unsigned long long int": np.uint64, "uint64_t": np.uint64,
    "size_t": np.uint64, "unsigned long": np.uint64,
    "short": np.int16, "int16_t": np.int16, "unsigned short": np.uint16, "uint16_t": np.uint16,
    "char": np.int8, "signed char": np.int8, "int8_t": np.int8,
    "unsigned char": np.uint8, "uint8_t": np.uint8,
}
_QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict"}
_COMMENT_OR_LITERAL = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_KERNEL = re.compile(
    r'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+'
    r'(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)')
_GLOBAL = re.compile(r"\b__global__\b")


@dataclass(frozen=True)
class Param:
    name: str
    ctype: str      # the declared type, as written, without the name
    dtype: type     # numpy type of the value or of the pointed-to elements
    pointer: bool


def strip_comments(source: str) -> str:
    """Comments blanked (newlines kept), string and char literals emptied but for "C"."""
    def blank(m):
        text = m.group(0)
        if text.startswith("//"):
            return " "
        if text.startswith("/*"):
            return "\n" * text.count("\n") or " "
        if text == '"C"':
            return text
        return '""' if text.startswith('"') else "' '"
    return _COMMENT_OR_LITERAL.sub(blank, source)


def parse_kernels(source: str) -> dict[str, tuple[Param, ...]]:
    """Each `extern "C" __global__ void name(...)` kernel's parameters, in order."""
    code = strip_comments(source)
    kernels = {}
    for m in _KERNEL.finditer(code):
        kernels[m.group(1)] = tuple(_parse_param(m.group(1), p) for p in _split_params(m.group(2)))
    if len(_GLOBAL.findall(code)) != len(kernels):
        raise DarknetError('every __global__ kernel must be declared extern "C" __global__ void name(...)')
    return kernels


def _split_params(text: str) -> list[str]:
    text = " ".join(text.split())
    return [] if text in ("", "void") else [p.strip() for p in text.split(",")]


def _parse_param(kernel: str, text: str) -> Param:
    m = re.match(r"^(.*?)\b(\w+)$", text)
    if not m or not m.group(1).strip():
        raise DarknetError(f"kernel {kernel}: cannot read parameter {text!r} (type and name needed)")
    ctype, name = m.group(1).strip(), m.group(2)
    stars = ctype.count("*")
    words = [w for w in ctype.replace("*", " ").split() if w not in _QUALIFIERS]
    base = " ".join(words)
    if stars > 1 or base not in C_TYPES:
        raise DarknetError(f"kernel {kernel}: parameter type {ctype!r} is not supported")
    return Param(name, ctype, C_TYPES[base], stars == 1)
