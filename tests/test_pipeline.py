"""Detections and printed lines of every kit case, from the network's own output.

Uses the forward passes of test_kit (kit.run_case caches them), so the whole pipeline
image -> network -> boxes -> NMS -> lines is checked against C Darknet case by case.
"""
import pytest

import kit
from darknetpy.data import get_labels

pytestmark = pytest.mark.skipif(not kit.available(), reason=kit.MISSING)

FULL_SIZE = {"yolov2", "yolov2-voc", "yolo9000"}


def _params(kind):
    params, seen = [], set()
    for c in kit.cases():
        if kit.model(c["model"])["kind"] != kind:
            continue
        for flavor in c["flavors"]:
            first = (c["model"], flavor) not in seen
            seen.add((c["model"], flavor))
            marks = [pytest.mark.slow] if c["model"] in FULL_SIZE and not first else []
            params.append(pytest.param(c["id"], flavor, id=f"{c['id']}-{flavor}", marks=marks))
    return params


@pytest.mark.parametrize("case_id,flavor", _params("detector"))
def test_detections_and_lines(case_id, flavor):
    c = kit.case(case_id)
    run = kit.run_case(c, flavor)
    net = kit.network(c["model"], flavor)
    names = get_labels(str(kit.KIT / kit.model(c["model"])["names"]))
    w, h = run.image_size
    result = c["results"]["fixed-tree" if flavor == "fixed-tree" else "stock"]
    from darknetpy.detect import detection_lines
    for i, rec in enumerate(result["detections"]):
        thresh = float(rec["thresh"])
        exact = net.detections(run.output.copy(), w, h, thresh)
        lines = detection_lines(exact, names, thresh)
        if flavor == "O2":
            assert kit.manifest()["flavors"]["O2"]["results"][case_id]["lines_equal"][i]
        assert lines == rec["lines"], f"thresh {thresh}: printed lines differ"
        if flavor == "O2":
            continue  # the kit keeps only the O2 lines, not its detection bits
        out = run.output.copy()
        ofast = net.detections(out, w, h, thresh, factors=c["ofast_correct_region_boxes"], printed_only=False)
        assert kit.view(ofast) == kit.manifest_view(rec), f"thresh {thresh}: detections differ"
        if "region_after_get_network_boxes" in result:
            assert kit.layer_matches(result["region_after_get_network_boxes"], out.reshape(-1))


@pytest.mark.parametrize("case_id,flavor", _params("classifier"))
def test_classifier_top5_and_lines(case_id, flavor):
    c = kit.case(case_id)
    run = kit.run_case(c, flavor)
    names = get_labels(str(kit.KIT / "darknet" / "data" / "imagenet.shortnames.list"))
    from darknetpy.detect import classifier_lines, top_k
    probs = run.output.reshape(-1)
    rec = c["results"]["stock"]
    if flavor == "stock":
        assert [(i, kit.bits(probs[i])) for i in top_k(probs, 5)] == [(t["index"], t["prob_bits"]) for t in rec["top5"]]
    assert classifier_lines(probs, names, 5) == rec["lines"]
