"""Detection AP (pycocotools) and log-average miss rate on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fiftyone_posetrack.eval.detection import (
    FPPI_RANGE,
    DetectionFrame,
    evaluate_detection_frames,
    log_average_miss_rate,
)
from fiftyone_posetrack.types import BadInputError

A = [10.0, 10.0, 50.0, 110.0]
B = [200.0, 10.0, 260.0, 130.0]
FAR = [400.0, 300.0, 440.0, 400.0]


def boxes(*rows):
    return np.array(rows, dtype=float).reshape(-1, 4)


def frames(gt, pred, scores, n=10, ignore=None):
    return [DetectionFrame(boxes(*gt), boxes(*pred), scores, ignore) for _ in range(n)]


def test_perfect_detections():
    r = evaluate_detection_frames({"v": frames([A, B], [A, B], [0.9, 0.8])})
    v = r["v"]
    assert (v["ap"], v["ap50"], v["ap75"], v["ar"]) == (1.0, 1.0, 1.0, 1.0)
    assert v["lamr"] == pytest.approx(0.0, abs=1e-9)  # Dollar's floor: 1e-10
    assert v["fppi_range"] == list(FPPI_RANGE) == [0.01, 1.0]
    assert (v["num_frames"], v["num_gt"], v["num_pred"]) == (10, 20, 20)


def test_half_missed():
    v = evaluate_detection_frames({"v": frames([A, B], [A], [0.9])})["v"]
    # precision 1 up to recall 0.5: 51 of COCO's 101 recall points
    assert v["ap50"] == pytest.approx(51 / 101) and v["ap"] == pytest.approx(51 / 101)
    assert v["ar"] == pytest.approx(0.5)
    assert v["lamr"] == pytest.approx(0.5)


def test_false_positives_ranked_first():
    # each frame: one hit (score 0.9) and one false positive scored higher (0.95)
    v = evaluate_detection_frames({"v": frames([A], [A, FAR], [0.9, 0.95])})["v"]
    assert v["ap50"] == pytest.approx(0.5)  # best precision at any recall is 10/20
    assert v["ar"] == 1.0
    # FPPI reaches 1.0 before any hit: miss rate 1 at the 8 references below 1,
    # 1e-10 (floored 0) at FPPI 1
    assert v["lamr"] == pytest.approx(1e-10 ** (1 / 9))


def test_only_false_positives_and_nothing_at_all():
    fp_only = evaluate_detection_frames({"v": frames([], [A], [0.5])})["v"]
    assert (fp_only["ap"], fp_only["ar"], fp_only["lamr"]) == (0.0, 0.0, 1.0)
    missed = evaluate_detection_frames({"v": frames([A], [FAR], [0.5])})["v"]
    assert (missed["ap"], missed["ap50"], missed["lamr"]) == (0.0, 0.0, 1.0)
    no_pred = evaluate_detection_frames({"v": frames([A], [], [])})["v"]
    assert (no_pred["ap"], no_pred["lamr"], no_pred["num_pred"]) == (0.0, 1.0, 0)
    empty = evaluate_detection_frames({"v": frames([], [], []), "none": []})
    for v in empty.values():
        assert (v["ap"], v["ap50"], v["ar"], v["lamr"]) == (1.0, 1.0, 1.0, 0.0)
    assert empty["OVERALL"]["num_frames"] == 10


def test_overall_pools_frames_and_empty_frames_count_in_fppi():
    perfect = frames([A, B], [A, B], [0.9, 0.8])
    blank = [DetectionFrame(boxes(), boxes(FAR), [0.99]) for _ in range(10)]
    r = evaluate_detection_frames({"good": perfect, "noisy": blank})
    assert r["good"]["ap"] == 1.0 and r["noisy"]["ap"] == 0.0
    o = r["OVERALL"]
    assert (o["num_frames"], o["num_gt"], o["num_pred"]) == (20, 20, 30)
    # ranked: 10 false positives, then 20 hits: the best precision at any recall is 20/30
    assert o["ap50"] == pytest.approx(2 / 3) and o["ap"] == pytest.approx(2 / 3)
    # 10 false positives over 20 frames come first: FPPI 0.5 before any hit
    refs = np.logspace(-2, 0, 9)
    expected = np.exp(np.mean(np.log(np.where(refs < 0.5, 1.0, 1e-10))))
    assert o["lamr"] == pytest.approx(expected)


def test_ignore_regions_are_neither_hits_nor_misses():
    v = evaluate_detection_frames(
        {"v": frames([A, B], [A, [205, 15, 255, 125]], [0.9, 0.95], ignore=[False, True])}
    )["v"]
    assert (v["ap"], v["ar"]) == (1.0, 1.0)
    assert (v["num_gt"], v["num_ignored_gt"]) == (10, 10)
    assert v["lamr"] == pytest.approx(0.0, abs=1e-9)


def test_max_dets_keeps_the_best_scored():
    many = [DetectionFrame(boxes(A), boxes(*([FAR] * 5), A), [0.9] * 5 + [0.1])]
    assert evaluate_detection_frames({"v": many}, max_dets=5)["v"]["ar"] == 0.0
    assert evaluate_detection_frames({"v": many}, max_dets=6)["v"]["ar"] == 1.0


def test_log_average_miss_rate_sampling():
    # recall 0.2 after 0.005 FP/frame, 0.6 at 0.1, 0.9 at 2 (beyond the range)
    lamr = log_average_miss_rate([0.2, 0.6, 0.9], [0.005, 0.1, 2.0])
    refs = np.logspace(-2, 0, 9)
    miss = np.where(refs < 0.1, 0.8, 0.4)
    assert lamr == pytest.approx(np.exp(np.mean(np.log(miss))))
    assert log_average_miss_rate([], []) == 1.0


def test_bad_input():
    with pytest.raises(BadInputError, match="negative width"):
        DetectionFrame(boxes([10, 10, 5, 20]), boxes())
    with pytest.raises(BadInputError, match="gt_ignore"):
        DetectionFrame(boxes(A), boxes(), None, [True, False])
    with pytest.raises(BadInputError, match="DetectionFrame"):
        evaluate_detection_frames({"v": [object()]})
    with pytest.raises(BadInputError, match="at least one"):
        evaluate_detection_frames({})


def test_matches_pycocotools_standard_summary():
    """Random frames: our numbers equal COCOeval.summarize() of a plain COCO run."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(3)
    frs, images, anns, dets = [], [], [], []
    for i in range(12):
        xy = rng.uniform(0, 500, (4, 2))
        gt = np.c_[xy, xy + rng.uniform(20, 120, (4, 2))]
        pred = np.vstack([gt + rng.normal(0, 8, gt.shape), gt[:2] + 300])
        pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 1)
        score = rng.uniform(0, 1, len(pred))
        frs.append(DetectionFrame(gt, pred, score))
        images.append({"id": i + 1})
        for b in gt:
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                         "bbox": [b[0], b[1], w, h], "area": w * h})  # fmt: skip
        for b, s in zip(pred, score):
            dets.append({"image_id": i + 1, "category_id": 1, "score": float(s),
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt_coco = COCO()
        gt_coco.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1}]}
        gt_coco.createIndex()
        ev = COCOeval(gt_coco, gt_coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = evaluate_detection_frames({"v": frs})["v"]
    assert ours["ap"] == pytest.approx(ev.stats[0], abs=1e-12)
    assert ours["ap50"] == pytest.approx(ev.stats[1], abs=1e-12)
    assert ours["ap75"] == pytest.approx(ev.stats[2], abs=1e-12)
    assert ours["ar"] == pytest.approx(ev.stats[8], abs=1e-12)
    assert 0 < ours["ap"] < 1 and 0 < ours["lamr"] < 1
