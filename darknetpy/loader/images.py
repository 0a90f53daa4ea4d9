"""Training images decoded as Darknet's `load_image_color` does (stb_image), with the
issue's rule for an image that does not decode: a warning, and the next image of the
list is used instead (Darknet prints the error and exits)."""
from __future__ import annotations

from collections import OrderedDict

from ..errors import DarknetError
from ..image import load_image_color
from .labels import emit


class ImageSource:
    """Loads training images for one list; remembers which ones failed and keeps decoded
    images up to `cache_mb` (decoding is deterministic, so a cached image is the same
    image; a small dataset is then decoded once)."""

    def __init__(self, paths: list[str], warn=None, cache_mb: int = 256):
        self.paths = paths
        self.index = {p: i for i, p in enumerate(paths)}
        self.warn = warn
        self.bad: set[str] = set()
        self.cache: OrderedDict[str, object] = OrderedDict()
        self.budget = cache_mb << 20
        self.used = 0

    def _decode(self, path: str):
        im = self.cache.get(path)
        if im is not None:
            self.cache.move_to_end(path)
            return im
        im = load_image_color(path)
        im.flags.writeable = False
        if im.nbytes <= self.budget:
            self.cache[path] = im
            self.used += im.nbytes
            while self.used > self.budget:
                _, old = self.cache.popitem(last=False)
                self.used -= old.nbytes
        return im

    def load(self, path: str):
        """(path actually used, float32 (3, h, w) image)."""
        tried = 0
        while True:
            if path not in self.bad:
                try:
                    return path, self._decode(path)
                except (DarknetError, OSError) as e:
                    self.bad.add(path)
                    emit(self.warn, f"Cannot load image \"{path}\" ({e}); using the next image of the list")
            tried += 1
            if tried > len(self.paths):
                raise DarknetError(f"no image of the list decodes (last tried: {path})")
            path = self.paths[(self.index.get(path, -1) + 1) % len(self.paths)]
