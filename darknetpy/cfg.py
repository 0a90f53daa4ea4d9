"""Darknet's .cfg syntax, read as Darknet's `read_cfg` reads it.

Every line has its spaces and tabs removed (Darknet's `strip`); blank lines and lines
starting with `#` or `;` are skipped; `[type]` opens a section; anything else is
`key=value`, added to the current section. The first occurrence of a key wins, as in
Darknet's `option_find`. Values are read like C's `atoi`/`atof` (a numeric prefix),
and keys no layer reads are reported the way Darknet's `option_unused` reports them.
"""
from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field

from .errors import CfgError, CfgNotFoundError

# Darknet's section headers (string_to_layer_type), mapped to the layer name.
SECTION_TYPES = {
    "[net]": "net", "[network]": "net",
    "[conv]": "convolutional", "[convolutional]": "convolutional",
    "[max]": "maxpool", "[maxpool]": "maxpool",
    "[avg]": "avgpool", "[avgpool]": "avgpool",
    "[soft]": "softmax", "[softmax]": "softmax",
    "[route]": "route", "[reorg]": "reorg", "[region]": "region",
    "[cost]": "cost", "[dropout]": "dropout",
    "[shortcut]": "shortcut", "[crop]": "crop", "[detection]": "detection",
    "[yolo]": "yolo", "[iseg]": "iseg", "[local]": "local",
    "[deconv]": "deconvolutional", "[deconvolutional]": "deconvolutional",
    "[activation]": "activation", "[logistic]": "logistic", "[l2norm]": "l2norm",
    "[crnn]": "crnn", "[gru]": "gru", "[lstm]": "lstm", "[rnn]": "rnn",
    "[conn]": "connected", "[connected]": "connected",
    "[lrn]": "normalization", "[normalization]": "normalization",
    "[batchnorm]": "batchnorm", "[upsample]": "upsample",
}

# Options every layer reads after its own parser (parse_network_cfg).
COMMON_OPTIONS = ("truth", "onlyforward", "stopbackward", "dontsave", "dontload",
                  "numload", "dontloadscales", "learning_rate", "smooth")

# Darknet's `strip` removes spaces, tabs and newlines; a carriage return is removed too,
# so that a cfg saved with Windows line endings reads the same.
_STRIP = str.maketrans("", "", " \t\r\n")
# ASCII digits only, as C's atoi/atof read them (Python's \d and int() accept any Unicode digit).
_INT = re.compile(r"[+-]?[0-9]+")
# glibc's atof (strtod) also reads C99 hexadecimal floats: 0x10 is 16, 0x1.8p1 is 3.
_FLOAT = re.compile(r"[+-]?(?:0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?"
                    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf(?:inity)?|nan)", re.I | re.A)


@dataclass
class Option:
    key: str
    value: str
    line: int
    used: bool = False


@dataclass
class Section:
    """One `[type]` block: its options, where it came from, and which keys were read."""

    header: str
    type: str
    file: str
    line: int
    options: list[Option] = field(default_factory=list)

    def where(self, key: str | None = None) -> str:
        opt = self._find(key, mark=False) if key else None
        return f"{self.file}:{opt.line if opt else self.line}"

    def _find(self, key: str, mark: bool = True) -> Option | None:
        for opt in self.options:
            if opt.key == key:
                if mark:
                    opt.used = True
                return opt
        return None

    def has(self, key: str) -> bool:
        return self._find(key, mark=False) is not None

    def get_str(self, key: str, default: str | None = None) -> str | None:
        opt = self._find(key)
        return opt.value if opt else default

    def get_int(self, key: str, default: int) -> int:
        opt = self._find(key)
        if opt is None:
            return default
        return _atoi(opt, self.file)

    def get_float(self, key: str, default: float) -> float:
        opt = self._find(key)
        if opt is None:
            return default
        return _atof(opt, self.file)

    def get_list(self, key: str, convert) -> list | None:
        """A comma-separated list, read item by item as Darknet's `atoi`/`atof` loop does."""
        opt = self._find(key)
        if opt is None:
            return None
        items = opt.value.split(",")
        if items and items[-1] == "" and len(items) > 1:
            items.pop()
        return [convert(Option(opt.key, item, opt.line), self.file) for item in items]

    def unused(self) -> list[Option]:
        return [opt for opt in self.options if not opt.used]


def _shown(opt: Option) -> str:
    """`key=value` for a message, the value cut short: a fuzzed value can be megabytes."""
    value = opt.value if len(opt.value) <= 40 else opt.value[:40] + "..."
    return f"{opt.key}={value}"


def _atoi(opt: Option, file: str) -> int:
    m = _INT.match(opt.value)
    if not m:
        raise CfgError(f"{file}:{opt.line}: {_shown(opt)} is not an integer")
    # past 12 significant digits it cannot fit an int32 (and int() refuses over 4300 digits)
    text = m.group()
    digits = text.lstrip("+-").lstrip("0") or "0"
    value = (-1 if text[0] == "-" else 1) * (int(digits) if len(digits) <= 12 else 2**63)
    if not -2**31 <= value < 2**31:
        raise CfgError(f"{file}:{opt.line}: {_shown(opt)} is out of range")
    return value


def _atof(opt: Option, file: str) -> float:
    m = _FLOAT.match(opt.value)
    if not m:
        raise CfgError(f"{file}:{opt.line}: {_shown(opt)} is not a number")
    try:
        value = float.fromhex(m.group()) if "x" in m.group().lower() else float(m.group())
    except OverflowError:  # a hexadecimal exponent past float's range (strtod: inf)
        value = math.inf
    if math.isinf(value) and not opt.value.lower().lstrip("+-").startswith("inf"):
        raise CfgError(f"{file}:{opt.line}: {_shown(opt)} is out of range")
    return value


atoi = _atoi
atof = _atof


def parse_cfg_text(text: str, file: str = "<cfg>") -> list[Section]:
    """Split cfg text into sections; raise CfgError naming the line for what Darknet refuses."""
    sections: list[Section] = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.translate(_STRIP)
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise CfgError(f"{file}:{lineno}: malformed section header {raw.strip()!r}")
            kind = SECTION_TYPES.get(line)
            if kind is None:
                raise CfgError(f"{file}:{lineno}: unknown section type {line}")
            sections.append(Section(line, kind, file, lineno))
            continue
        key, eq, value = line.partition("=")
        if not eq or not key or not value:
            raise CfgError(f"{file}:{lineno}: expected key=value, found {raw.strip()!r}")
        if not sections:
            raise CfgError(f"{file}:{lineno}: option {key!r} before the first [section]")
        sections[-1].options.append(Option(key, value, lineno))
    if not sections:
        raise CfgError(f"{file}: no sections (Darknet: 'Config file has no sections')")
    if sections[0].type != "net":
        raise CfgError(f"{file}:{sections[0].line}: first section must be [net] or [network]")
    return sections


def read_cfg(path: str | os.PathLike) -> list[Section]:
    """Read a .cfg file; a missing or unreadable file is a CfgError naming it."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise CfgError(f"{path}: is a directory, not a .cfg file") from None
    except FileNotFoundError as e:
        raise CfgNotFoundError(f"{path}: cannot read cfg: {e.strerror}", path) from None
    except OSError as e:
        raise CfgError(f"{path}: cannot read cfg: {e.strerror}") from None
    if b"\0" in data:
        raise CfgError(f"{path}: not a text file (contains NUL bytes)")
    return parse_cfg_text(data.decode("utf-8", errors="replace"), path)


def warn_unused(section: Section, stream=None) -> None:
    """Darknet's `option_unused`: one line per key that the layer never read."""
    stream = stream or sys.stderr
    for opt in section.unused():
        print(f"Unused field: '{opt.key} = {opt.value}' ({section.file}:{opt.line})", file=stream)
