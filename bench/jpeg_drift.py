"""How far libjpeg (OpenCV) decoding moves Darknet's results, on the kit's JPEG cases.

Darknet decodes JPEGs with stb_image; darknetpy does too by default (--decoder stb) and is
bit-exact. With --decoder opencv the pixels differ by a few levels; this script measures
how much that moves the network input, the output layer and the printed lines.

usage: python bench/jpeg_drift.py [--kit ../shared/reference]
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args()
    import kit
    from darknetpy.data import get_labels
    from darknetpy.detect import classifier_lines, detection_lines
    from darknetpy.image import letterbox_image, load_image_color

    if not kit.available():
        print(kit.MISSING)
        return 2
    os.chdir(kit.KIT / "darknet")
    print("| case | input samples differing | max diff (levels) | output elements moved | "
          "output max diff / max abs | lines equal (thresh .5 / .25, or top-5) |")
    print("|---|---|---|---|---|---|")
    for c in kit.cases():
        if not c["image"].endswith(".jpg"):
            continue
        flavor = "fixed-tree" if "yolo9000" in c["model"] else "stock"
        net = kit.network(c["model"], flavor)
        stb = load_image_color(kit.image_path(c), "stb")
        cv = load_image_color(kit.image_path(c), "opencv")
        levels = np.abs(np.rint(stb * 255) - np.rint(cv * 255))
        out_stb = net.forward(letterbox_image(stb, net.width, net.height))
        out_cv = net.forward(letterbox_image(cv, net.width, net.height))
        finite = np.isfinite(out_stb) & np.isfinite(out_cv)
        diff = np.abs(out_cv[finite] - out_stb[finite])
        rel = diff.max() / np.abs(out_stb[finite]).max()
        moved = np.mean(diff > 0)
        names = get_labels(str(kit.KIT / kit.model(c["model"])["names"]))
        if kit.model(c["model"])["kind"] == "detector":
            equal = []
            for t in (0.5, 0.25):
                a = detection_lines(net.detections(out_stb.copy(), stb.shape[2], stb.shape[1], t), names, t)
                b = detection_lines(net.detections(out_cv.copy(), cv.shape[2], cv.shape[1], t), names, t)
                equal.append("yes" if a == b else f"no ({len(a)} vs {len(b)} lines, {len(set(a) & set(b))} shared)")
        else:
            equal = ["yes" if classifier_lines(out_stb, names) == classifier_lines(out_cv, names) else "no"]
        print(f"| {c['id']} | {np.mean(levels > 0):.2%} | {int(levels.max())} | {moved:.1%} | {rel:.2e} | "
              f"{' / '.join(equal)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
