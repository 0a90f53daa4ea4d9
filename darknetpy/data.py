"""Darknet's small text files: `.data` (key=value) and label lists (`.names`)."""
from __future__ import annotations

import os
import sys

from .errors import DataError

# Names files that plain `darknetpy detect` picks by the network's class count.
NAMES_BY_CLASSES = {80: ("data/coco.names", "COCO"), 20: ("data/voc.names", "VOC"),
                    9418: ("data/9k.names", "YOLO9000 (9k)"), 1000: ("data/imagenet.shortnames.list", "ImageNet")}


def _read_text(path: str, what: str) -> str:
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a {what}")
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"{path}: cannot read {what}: {e.strerror}") from None


def read_data_cfg(path: str, warn=sys.stderr) -> dict[str, str]:
    """Darknet's `read_data_cfg`: spaces and tabs removed, `#`/`;` comments, first key wins."""
    options: dict[str, str] = {}
    for lineno, raw in enumerate(_read_text(path, ".data file").split("\n"), 1):
        line = raw.translate(str.maketrans("", "", " \t\r"))
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        if not eq or not key or not value:
            if warn is not None:
                print(f"{path}:{lineno}: Config file error, could not parse: {raw.strip()}", file=warn)
            continue
        options.setdefault(key, value)
    return options


def get_labels(path: str) -> list[str]:
    """One label per line (Darknet's `get_labels`); a trailing carriage return is dropped."""
    text = _read_text(path, "names file")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def find_file(path: str, base_files: list[str]) -> str | None:
    """`path` from the working directory, else beside or one folder above each base file."""
    if os.path.isfile(path):
        return path
    if os.path.isabs(path):
        return None
    for base in base_files:
        folder = os.path.dirname(os.path.abspath(base))
        for root in (folder, os.path.dirname(folder)):
            candidate = os.path.join(root, path)
            if os.path.isfile(candidate):
                return candidate
    return None


def resolve(path: str, base_files: list[str], what: str) -> str:
    found = find_file(path, base_files)
    if found is None:
        raise DataError(f"{path}: {what} not found (looked in the working directory and beside "
                        f"{', '.join(base_files)})")
    return found
