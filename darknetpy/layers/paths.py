"""Files named inside a cfg (`tree=`, `map=`), found as Darknet finds them."""
from ..data import find_file
from ..errors import CfgError


def resolve(section, key: str) -> str | None:
    """Darknet opens the path from the working directory; failing that, try the cfg's
    folder and its parent (Darknet's own layout: cfg/ beside data/)."""
    value = section.get_str(key)
    if value is None:
        return None
    found = find_file(value, [section.file])
    if found is None:
        raise CfgError(f"{section.where(key)}: {key}={value}: no such file (looked in the working directory, "
                       f"the cfg's folder and its parent)")
    return found


def read_map(path: str) -> list[int]:
    """Darknet's `read_map`: one integer per line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CfgError(f"{path}: cannot read map file: {getattr(e, 'strerror', None) or 'not text'}") from None
    values = []
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            try:
                values.append(int(line.split()[0]))
            except ValueError:
                raise CfgError(f"{path}:{lineno}: a map file holds one class index per line, "
                               f"found {line.strip()[:40]!r}") from None
    return values
