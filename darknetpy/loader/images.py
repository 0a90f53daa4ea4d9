"""Training images decoded as Darknet's `load_image_color` does (stb_image), with the
issue's rule for an image that does not decode: a warning, and the next image of the
list is used instead (Darknet prints the error and exits)."""
from __future__ import annotations

from ..errors import DarknetError
from ..image import load_image_color
from .labels import emit


class ImageSource:
    """Loads training images for one list; remembers which ones failed."""

    def __init__(self, paths: list[str], warn=None):
        self.paths = paths
        self.index = {p: i for i, p in enumerate(paths)}
        self.warn = warn
        self.bad: set[str] = set()

    def load(self, path: str):
        """(path actually used, float32 (3, h, w) image)."""
        tried = 0
        while True:
            if path not in self.bad:
                try:
                    return path, load_image_color(path)
                except (DarknetError, OSError) as e:
                    self.bad.add(path)
                    emit(self.warn, f"Cannot load image \"{path}\" ({e}); using the next image of the list")
            tried += 1
            if tried > len(self.paths):
                raise DarknetError(f"no image of the list decodes (last tried: {path})")
            path = self.paths[(self.index.get(path, -1) + 1) % len(self.paths)]
