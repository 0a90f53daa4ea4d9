"""Every case and flavor of the YOLOv3 kit (../shared/reference-v3): each layer's SHA-256,
the detection arrays (every [yolo] layer in order, -Ofast box factors), the printed lines
and the classifiers' top 5 equal C Darknet's.
"""
from __future__ import annotations

import pytest

import kit
from darknetpy.data import get_labels
from darknetpy.detect import classifier_lines, detection_lines, top_k

V3 = kit.V3
pytestmark = pytest.mark.skipif(not V3.available(), reason=V3.MISSING)

# The first case of each model and flavor runs by default; the other cases of the
# full-size models are marked slow.
FULL_SIZE = {"yolov3-416", "yolov3-voc", "yolov3-spp-320", "darknet53", "resnet50"}


def _params(kind=None):
    params, seen = [], set()
    for c in V3.cases():
        if kind is not None and V3.model(c["model"])["kind"] != kind:
            continue
        for flavor in c["flavors"]:
            first = (c["model"], flavor) not in seen
            seen.add((c["model"], flavor))
            marks = [pytest.mark.slow] if c["model"] in FULL_SIZE and not first else []
            params.append(pytest.param(c["id"], flavor, id=f"{c['id']}-{flavor}", marks=marks))
    return params


@pytest.mark.parametrize("case_id,flavor", _params())
def test_case_bit_identical(case_id, flavor):
    c = V3.case(case_id)
    run = V3.run_case(c, flavor)
    want = c["results"]["stock"]["input"]
    assert list(run.input.shape) == want["shape"]
    assert kit.sha256_f32(run.input) == want["sha256"], "network input differs from the kit's"
    assert run.mismatch is None, run.mismatch


@pytest.mark.parametrize("case_id,flavor", _params("detector"))
def test_detections_and_lines(case_id, flavor):
    c = V3.case(case_id)
    run = V3.run_case(c, flavor)
    net = V3.network(c["model"], flavor)
    names = get_labels(str(V3.root / V3.model(c["model"])["names"]))
    w, h = run.image_size
    for i, rec in enumerate(c["results"]["stock"]["detections"]):
        thresh = float(rec["thresh"])
        lines = detection_lines(net.detections([o.copy() for o in run.detection_outputs], w, h, thresh), names,
                                thresh)
        assert lines == rec["lines"], f"thresh {thresh}: printed lines differ"
        if flavor == "O2":
            assert V3.manifest()["flavors"]["O2"]["results"][case_id]["lines_equal"][i]
            continue  # the kit keeps only the O2 lines, not its detection bits
        dets = net.detections([o.copy() for o in run.detection_outputs], w, h, thresh,
                              factors=c["ofast_correct_yolo_boxes"], printed_only=False)
        assert len(dets) == rec["nboxes"]
        assert kit.view(dets) == kit.manifest_view(rec), f"thresh {thresh}: detections differ"


@pytest.mark.parametrize("case_id,flavor", _params("classifier"))
def test_classifier_top5_and_lines(case_id, flavor):
    c = V3.case(case_id)
    run = V3.run_case(c, flavor)
    names = get_labels(str(V3.root / V3.model(c["model"])["names"]))
    probs = run.output.reshape(-1)
    rec = c["results"]["stock"]
    if flavor == "stock":
        assert [(i, kit.bits(probs[i])) for i in top_k(probs, 5)] == [(t["index"], t["prob_bits"]) for t in rec["top5"]]
    assert classifier_lines(probs, names, 5) == rec["lines"]


@pytest.mark.parametrize("model_name", ["yolov3-tiny", "yolov3-128"])
def test_forward_in_the_arena_equals_the_kept_pass(model_name):
    """`forward` (the arena, dead outputs dropped, shortcuts' and routes' sources kept
    alive to their last reader) gives the kept pass's bits for every detection layer."""
    c = next(c for c in V3.cases() if c["model"] == model_name)
    run = V3.run_case(c, "stock")
    net = V3.network(model_name, "stock")
    outs = net.forward_detection(run.input)
    assert [o.tobytes() for o in outs] == [o.tobytes() for o in run.detection_outputs]
