"""Files named inside a cfg (`tree=`, `map=`), found as Darknet finds them."""
import os

from ..errors import CfgError


def resolve(section, key: str) -> str | None:
    """Darknet opens the path from the working directory; failing that, try the cfg's
    folder and its parent (Darknet's own layout: cfg/ beside data/)."""
    value = section.get_str(key)
    if value is None:
        return None
    tried = [value]
    if os.path.isfile(value):
        return value
    if not os.path.isabs(value):
        folder = os.path.dirname(os.path.abspath(section.file))
        for base in (folder, os.path.dirname(folder)):
            candidate = os.path.join(base, value)
            tried.append(candidate)
            if os.path.isfile(candidate):
                return candidate
    raise CfgError(f"{section.where(key)}: {key}={value}: no such file (tried {', '.join(tried)})")


def read_map(path: str) -> list[int]:
    """Darknet's `read_map`: one integer per line."""
    try:
        with open(path) as f:
            return [int(line.split()[0]) for line in f if line.strip()]
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CfgError(f"{path}: cannot read map file: {e}") from None
