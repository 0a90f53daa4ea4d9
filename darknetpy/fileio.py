"""Writing files so that an interrupted run never leaves a truncated file under its name."""
from __future__ import annotations

import os
import tempfile

from .errors import DarknetError


def atomic_write(path: str, write, mode: str = "wb") -> None:
    """Call `write(f)` on a temporary file in the same folder, then rename it to `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=folder)
    except OSError as e:
        raise DarknetError(f"{path}: cannot write: {e.strerror}") from None
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise DarknetError(f"{path}: cannot write: {e.strerror}") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
