"""Evaluation: Darknet's `detector valid` and `detector recall`, AlexeyAB's `detector map`
and `detector calc_anchors`, as functions.

    import darknetpy
    from darknetpy import evaluate

    net = darknetpy.load("cfg/yolov2-voc.cfg", "yolov2-voc.weights")
    result = evaluate.map("cfg/voc.data", net, points=11)     # VOC2007 mAP@0.5
    print(result.mAP, [(c.name, c.ap) for c in result.classes])
    evaluate.valid("cfg/voc.data", net)                         # results/comp4_det_test_<class>.txt
    print(evaluate.recall("cfg/voc.data", net).recall)
    print(evaluate.anchors("cfg/voc.data", 5, 416, 416, seed=0).region_line())

Modules: dataset.py (the `.data` file's list and the label files), run.py (the network
over the images), results.py (valid's files), voc.py (VOC AP), coco.py (pycocotools),
mean_ap.py (map), recall.py, anchors.py, boxes.py (Darknet's IoU, vectorised).
"""
from .anchors import AnchorsResult, anchors
from .dataset import Dataset, ImageDetections, ImageTruth, ScoredBox, ground_truth, open_dataset, scored_boxes
from .mean_ap import MapResult, mean_average_precision, summarize
from .recall import RecallResult, recall
from .results import ValidResult, read_coco_results, read_voc_results, valid
from .voc import ClassStats, average_precision

map = mean_average_precision  # noqa: A001 - the name the command has: `detector map`

__all__ = ["AnchorsResult", "ClassStats", "Dataset", "ImageDetections", "ImageTruth", "MapResult", "RecallResult",
           "ScoredBox", "ValidResult", "anchors", "average_precision", "ground_truth", "map",
           "mean_average_precision", "open_dataset", "read_coco_results", "read_voc_results", "recall",
           "scored_boxes", "summarize", "valid"]
