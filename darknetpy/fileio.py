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
            os.fchmod(f.fileno(), _final_mode(path))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise DarknetError(f"{path}: cannot write: {e.strerror or e}") from None
    except BaseException:
        _remove(tmp)
        raise


def _final_mode(path: str) -> int:
    """The mode the file would have had if written in place: an existing file keeps its own;
    a new one gets 0o666 less the umask (mkstemp's temporary file is 0o600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
