"""OKS keypoint AP: mmpose's CocoMetric reference, ground truth as prediction, NMS and scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.eval.keypoints import (
    CROWDPOSE_SIGMAS,
    KeypointFrame,
    evaluate_keypoint_frames,
    frames_to_coco,
    instance_scores,
    keypoint_ap,
    oks_nms,
)
from fiftyone_posetrack.skeleton import COCO_SIGMAS
from fiftyone_posetrack.types import BadInputError

# mmpose tests/test_evaluation/test_metrics/test_coco_metric.py, test_topdown_alignment case 1
MMPOSE_TARGET = {
    "ap": 0.5287458745874587, "ap50": 0.9042904290429042, "ap75": 0.5009900990099009,
    "ap_medium": 0.42475247524752474, "ap_large": 0.6219554455445544,
    "ar": 0.5833333333333333, "ar50": 0.9166666666666666, "ar75": 0.5833333333333334,
    "ar_medium": 0.44000000000000006, "ar_large": 0.6857142857142857,
}  # fmt: skip


@pytest.fixture(scope="module")
def coco(shared_dir):
    return json.loads((shared_dir / "data/keypoints/coco/test_coco.json").read_text())


@pytest.fixture(scope="module")
def crowdpose(shared_dir):
    return json.loads((shared_dir / "data/keypoints/crowdpose/test_crowdpose.json").read_text())


def _gt_results(data):
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in data["annotations"]]  # fmt: skip


def _mmpose_frames(data):
    """Top-down predictions exactly as mmpose's test makes them: ground-truth
    keypoints in float32 with x * 0.98, y * 1.02, visibility * 0.8 as the score,
    box score 0.98 and area = padded box area (bbox_scale = 1.25 * w, 1.25 * h)."""
    frames = []
    for img in sorted(data["images"], key=lambda i: i["id"]):
        anns = sorted((a for a in data["annotations"] if a["image_id"] == img["id"]), key=lambda a: a["id"])
        n = len(anns)
        gt = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(n, 17, 3)
        kp = np.array([a["keypoints"] for a in anns], dtype=np.float32).reshape(n, 17, 3)
        kp[..., 0] *= 0.98
        kp[..., 1] *= 1.02
        kp[..., 2] *= 0.8
        box = np.array([a["bbox"] for a in anns], dtype=np.float64)
        frames.append(KeypointFrame(
            gt_keypoints=gt[..., :2], gt_visibility=gt[..., 2],
            gt_boxes=np.c_[box[:, :2], box[:, :2] + box[:, 2:]],
            pred_keypoints=kp[..., :2], pred_keypoint_scores=kp[..., 2],
            pred_scores=np.full(n, 0.98, dtype=np.float32),
            gt_areas=[a["area"] for a in anns], gt_num_keypoints=[a["num_keypoints"] for a in anns],
            pred_areas=[np.prod(np.array([a["bbox"][2] * 1.25, a["bbox"][3] * 1.25])) for a in anns],
        ))  # fmt: skip
    return frames


def test_reproduces_mmpose_coco_metric(coco):
    pytest.importorskip("xtcocotools")
    frames = _mmpose_frames(coco)
    result = evaluate_keypoint_frames(frames, "coco", score_mode="bbox_keypoint", nms_threshold=0.9)
    assert result["backend"] == "xtcocotools"
    for key, value in MMPOSE_TARGET.items():
        assert abs(result[key] - value) <= 1e-9, (key, result[key])


def test_pycocotools_fallback_reproduces_it_too(coco):
    gt, results = frames_to_coco(_mmpose_frames(coco), 17)
    result = keypoint_ap(gt, results, "coco", backend="pycocotools")
    assert result["backend"] == "pycocotools"
    for key in ("ap", "ap50", "ap75", "ar"):
        assert abs(result[key] - MMPOSE_TARGET[key]) <= 1e-9, key


def test_ground_truth_as_prediction_is_perfect(coco, crowdpose):
    pytest.importorskip("xtcocotools")
    r = keypoint_ap(coco, _gt_results(coco), "coco")
    assert all(r[k] == 1.0 for k in ("ap", "ap50", "ap75", "ap_medium", "ap_large", "ar"))
    c = keypoint_ap(crowdpose, _gt_results(crowdpose), "crowdpose")
    assert (c["ap"], c["ap50"], c["ap75"], c["ar"]) == (1.0, 1.0, 1.0, 1.0)
    # both images have crowd index 0.2 <= ci < 0.8: "medium"; no easy or hard image
    assert (c["ap_easy"], c["ap_medium"], c["ap_hard"]) == (-1.0, 1.0, -1.0)


def test_frames_ground_truth_as_prediction(coco):
    frames = []
    for f in _mmpose_frames(coco):
        vis = f.gt_visibility
        frames.append(KeypointFrame(
            f.gt_keypoints, vis, f.gt_boxes, f.gt_keypoints, (vis > 0).astype(float),
            np.ones(len(vis)), gt_areas=f.gt_areas,
        ))  # fmt: skip
    r = evaluate_keypoint_frames(frames)
    assert (r["ap"], r["ar"]) == (1.0, 1.0)
    assert r["num_gt"] == 14


def test_empty_predictions_and_images():
    empty = KeypointFrame(np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 4)),
                          np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0))  # fmt: skip
    kp = np.random.default_rng(0).uniform(100, 200, (1, 17, 2))
    person = KeypointFrame(kp, np.full((1, 17), 2), [[90, 90, 210, 210]],
                           np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0))  # fmt: skip
    r = evaluate_keypoint_frames([empty, person])
    assert (r["ap"], r["ar"], r["num_pred"]) == (0.0, 0.0, 0)
    hit = KeypointFrame(kp, np.full((1, 17), 2), [[90, 90, 210, 210]], kp, np.ones((1, 17)), [0.9])
    r = evaluate_keypoint_frames([empty, hit, empty])
    assert r["ap"] == pytest.approx(1.0, abs=1e-12)  # COCO's tp / (tp + fp + eps)


def test_instance_scores_modes():
    kps = np.array([[0.9, 0.1, 0.5, 0.3], [0.1, 0.1, 0.0, 0.2]])
    box = np.array([0.5, 0.8])
    assert instance_scores(box, kps, "bbox").tolist() == [0.5, 0.8]
    # mean of the scores above 0.2 (strictly), times the box score; none above: 0
    assert instance_scores(box, kps, "bbox_keypoint") == pytest.approx([0.5 * (0.9 + 0.5 + 0.3) / 3, 0.0])
    assert instance_scores(box, kps, "bbox_rle") == pytest.approx([0.5 + 0.45 + 0.9, 0.8 + 0.1 + 0.2])
    with pytest.raises(BadInputError, match="score mode"):
        instance_scores(box, kps, "mean")


def test_oks_nms_drops_duplicates_only():
    rng = np.random.default_rng(1)
    a = rng.uniform(100, 200, (17, 2))
    b = a + 300  # another person
    dup = a + 0.5  # nearly the same pose as a
    kp = np.stack([dup, a, b])
    keep = oks_nms(kp, scores=[0.7, 0.9, 0.8], areas=[1e4, 1e4, 1e4], sigmas=COCO_SIGMAS, threshold=0.9)
    assert keep.tolist() == [1, 2]
    # a loose threshold keeps everything that overlaps less
    keep = oks_nms(kp, scores=[0.7, 0.9, 0.8], areas=[1e4, 1e4, 1e4], threshold=1.0)
    assert keep.tolist() == [1, 2, 0]
    with pytest.raises(BadInputError, match="oks_nms"):
        oks_nms(kp, [1.0], [1.0])


def test_bad_input(coco):
    with pytest.raises(BadInputError, match="kind"):
        keypoint_ap(coco, [], "mpii")
    with pytest.raises(BadInputError, match="needs xtcocotools"):
        keypoint_ap(coco, [], "crowdpose", sigmas=CROWDPOSE_SIGMAS, backend="pycocotools")
    with pytest.raises(BadInputError, match="not in the ground truth"):
        keypoint_ap(coco, [{"image_id": 1, "keypoints": [0] * 51, "score": 1.0}])
    with pytest.raises(BadInputError, match="needs image_id"):
        keypoint_ap(coco, [{"image_id": 785}])
    with pytest.raises(BadInputError, match="shape"):
        evaluate_keypoint_frames([KeypointFrame(np.zeros((1, 5, 2)), np.ones((1, 5)), [[0, 0, 1, 1]],
                                                np.zeros((0, 17, 2)), np.zeros((0, 17)), [])])  # fmt: skip



def test_cli_eval_kpts(coco, shared_dir, tmp_path, capsys):
    pytest.importorskip("xtcocotools")
    dt = tmp_path / "dt.json"
    dt.write_text(json.dumps(_gt_results(coco)))
    gt = shared_dir / "data/keypoints/coco/test_coco.json"
    assert main(["eval-kpts", str(gt), str(dt)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ap"] == 1.0 and out["backend"] == "xtcocotools"
    assert main(["eval-kpts", str(gt), str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err


def test_minimal_ground_truth_fields_are_completed(coco):
    pytest.importorskip("xtcocotools")
    bare = {"images": coco["images"], "annotations": [
        {k: a[k] for k in ("id", "image_id", "keypoints", "bbox")} for a in coco["annotations"]]}  # fmt: skip
    r = keypoint_ap(bare, _gt_results(coco))
    assert r["ap"] == 1.0
    with pytest.raises(BadInputError, match="needs id, image_id, keypoints and bbox"):
        keypoint_ap({"images": coco["images"], "annotations": [{"id": 1}]}, [])
