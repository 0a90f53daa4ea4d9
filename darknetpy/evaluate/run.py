"""A network over a dataset's images, with the many-image pipeline (darknetpy/many.py):
decoding and letterboxing ahead on a pool, `--batch` inputs per forward call, a bad image
reported and skipped."""
from __future__ import annotations

import os
import sys
from typing import Iterator, Sequence

from .dataset import ImageDetections, scored_boxes

# validate_detector's thresholds (examples/detector.c); AlexeyAB's `detector map` uses the same.
VALID_THRESH = 0.005
VALID_HIER_THRESH = 0.5
VALID_NMS = 0.45


def detect_dataset(net, images: Sequence[str], *, thresh: float = VALID_THRESH,
                   hier_thresh: float = VALID_HIER_THRESH, nms: float = VALID_NMS, map=None, batch: int = 1,
                   loaders: int = 2, loader: str = "thread", decoder: str = "stb", progress=None,
                   warn=sys.stderr) -> Iterator[ImageDetections]:
    """`validate_detector`'s detections of every image, in list order: Darknet's
    detection array after NMS (the entries with a nonzero class probability), boxes
    relative to the image. `progress`: a many.Progress to update (its bar carries the
    error lines), else errors go to `warn`."""
    from ..many import Item, detect_many

    items = (Item(i, path, os.path.basename(path)) for i, path in enumerate(images))
    results = detect_many(net, items, thresh=thresh, hier_thresh=hier_thresh, nms=nms, decoder=decoder,
                          workers=loaders, batch=batch, kind=loader, map=map)
    try:
        for r in results:
            if r.error is not None:
                line = f"darknetpy: error: {r.error}"
                if progress is not None:
                    progress.write(line)
                elif warn is not None:
                    print(line, file=warn)
                yield ImageDetections(r.item.path, r.width, r.height, [], r.error)
            else:
                yield ImageDetections(r.item.path, r.width, r.height, scored_boxes(r.dets), dets=r.dets)
            if progress is not None:
                progress.update(failed=r.error is not None)
    finally:
        results.close()


def eval_classes(net, class_map) -> int:
    """How many classes the detections have: the map's length for a mapped tree
    network (as `get_network_boxes` fills them), else the output layer's."""
    return len(class_map) if class_map is not None else net.classes
