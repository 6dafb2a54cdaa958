"""PoseTrack per-joint AP and MOTA (poseval's definitions) on the fixture and hand-made cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.eval.posetrack import (
    POSEVAL_JOINTS,
    _inside,
    evaluate_posetrack,
    evaluate_posetrack_files,
)
from fiftyone_posetrack.formats.posetrack import PoseTrackFrame
from fiftyone_posetrack.types import BadInputError

EARS = (3, 4)  # PoseTrack18 never annotates them
HEAD = np.array([0.0, 0.0, 60.0, 80.0])  # diagonal 100: head size 60, PCKh@0.5 = 30 px


def pose(x0: float, y0: float = 100.0) -> np.ndarray:
    """A 17-joint PoseTrack18 pose: joints 40 px apart, ears unannotated."""
    rng = np.random.default_rng(int(x0))
    kp = np.stack([x0 + rng.uniform(0, 200, 17), y0 + rng.uniform(0, 300, 17)], axis=1)
    kp[list(EARS)] = 0.0
    return kp


def frame(index, kps, ids, scores=None, labeled=True, ignore=(), heads=True):
    kps = np.asarray(kps, dtype=float).reshape(-1, 17, 2)
    n = len(kps)
    vis = np.ones((n, 17), dtype=np.int64)
    vis[:, list(EARS)] = 0
    return PoseTrackFrame(
        frame_index=index, file_name=f"{index:06d}.jpg", is_labeled=labeled,
        track_ids=np.asarray(ids, dtype=np.int64), boxes=np.zeros((n, 4)), keypoints=kps,
        visibility=vis, scores=None if scores is None else np.asarray(scores, float).reshape(n, 17),
        ignore_regions=[np.asarray(r, float) for r in ignore],
        head_boxes=np.tile(HEAD, (n, 1)) if heads else None,
    )  # fmt: skip


def per_joint(result, key):
    return np.array([result["per_joint"][j][key] for j in POSEVAL_JOINTS])


def test_ground_truth_as_prediction_on_posetrack18(shared_dir):
    ann = shared_dir / "data/keypoints/posetrack18/annotations"
    for gt in (ann / "val", ann / "test_posetrack18_val.json"):
        r = evaluate_posetrack_files(gt, gt)
        assert (r["num_videos"], r["num_frames"]) == (3, 3)
        assert (per_joint(r, "ap") == 100).all() and (per_joint(r, "mota") == 100).all()
        assert (per_joint(r, "num_gt") > 0).all()
        assert r["total"] == {"ap": 100.0, "mota": 100.0, "motp": 100.0, "precision": 100.0,
                              "recall": 100.0, "mota_pooled": 100.0}  # fmt: skip
        assert all(g == {"ap": 100.0, "mota": 100.0} for g in r["groups"].values())


def test_ap_with_a_higher_scored_false_positive_and_a_far_joint():
    gt_kp = pose(100)
    pred = gt_kp.copy()
    pred[16] += [40.0, 0.0]  # right ankle 40 px off: beyond 30 px
    gt = {"v": [frame(0, [gt_kp], [1])]}
    pr = {"v": [frame(0, [pred, pose(900)], [5, 6], scores=np.r_[np.full(17, 0.9), np.full(17, 0.95)])]}
    r = evaluate_posetrack(gt, pr)
    ap = dict(zip(POSEVAL_JOINTS, per_joint(r, "ap")))
    # ranked: the false positive (0.95), then the hit (0.9): precision 1/2 at recall 1
    assert ap["right_ankle"] == 0.0
    assert all(ap[j] == pytest.approx(50.0) for j in POSEVAL_JOINTS if j != "right_ankle")
    assert r["total"]["ap"] == pytest.approx(14 * 50 / 15)
    assert r["groups"]["ankle"]["ap"] == pytest.approx(25.0)
    assert r["per_joint"]["nose"]["ap_precision"] == pytest.approx(50.0)
    assert r["per_joint"]["nose"]["ap_recall"] == pytest.approx(100.0)


def _swap_video():
    a, b = pose(100), pose(600)
    gt = [frame(k, [a + 5 * k, b + 5 * k], [1, 2]) for k in range(3)]
    ids = [[10, 11], [10, 11], [11, 10]]  # identities swapped in the last frame
    pr = [frame(k, [a + 5 * k, b + 5 * k], ids[k], scores=np.ones((2, 17))) for k in range(3)]
    return {"v": gt}, {"v": pr}


def test_mota_counts_identity_switches():
    gt, pr = _swap_video()
    r = evaluate_posetrack(gt, pr)
    # per joint: 6 objects, 2 switches, no misses or false positives
    assert (per_joint(r, "idsw") == 2).all() and (per_joint(r, "fp") == 0).all()
    assert per_joint(r, "mota") == pytest.approx(np.full(15, 100 * (1 - 2 / 6)))
    assert r["total"]["mota"] == pytest.approx(100 * (1 - 2 / 6))
    assert r["total"]["mota_pooled"] == pytest.approx(100 * (1 - 30 / 90))
    assert r["total"]["motp"] == 100.0 and r["total"]["ap"] == 100.0
    # poseval leaves every video's last frame out of tracking
    skipped = evaluate_posetrack(gt, pr, skip_last_frame=True)
    assert skipped["total"]["mota"] == 100.0 and skipped["total"]["ap"] == 100.0


def test_mota_joint_threshold_leaves_ap_to_all_joints():
    """A low-scored false person: AP ranks it below the hit (no loss), MOTA counts
    it as false positives unless it scores under mota_joint_threshold."""
    gt_kp = pose(100)
    gt = {"v": [frame(0, [gt_kp], [1])]}
    pr = {"v": [frame(0, [gt_kp, pose(900)], [5, 6], scores=np.r_[np.full(17, 0.9), np.full(17, 0.2)])]}
    all_joints = evaluate_posetrack(gt, pr)
    thr = evaluate_posetrack(gt, pr, mota_joint_threshold=0.3)
    assert all_joints["mota_joint_threshold"] is None and thr["mota_joint_threshold"] == 0.3
    # AP: the false joints rank last, after every hit: 100 either way
    assert all_joints["total"]["ap"] == thr["total"]["ap"] == 100.0
    # MOTA: 1 false positive per joint and object without the threshold, none with it
    assert all_joints["total"]["mota"] == pytest.approx(0.0) and (per_joint(all_joints, "fp") == 1).all()
    assert thr["total"]["mota"] == 100.0 and (per_joint(thr, "fp") == 0).all()
    # the same as a prediction file without those joints
    dropped = {"v": [frame(0, [gt_kp], [5], scores=np.full((1, 17), 0.9))]}
    assert evaluate_posetrack(gt, dropped)["total"] == thr["total"]
    # a joint at the threshold counts
    assert evaluate_posetrack(gt, pr, mota_joint_threshold=0.2)["total"]["mota"] == pytest.approx(0.0)
    # a right but unsure person (0.2): AP keeps it (a threshold before AP would halve recall), MOTA misses it
    gt2 = {"v": [frame(0, [gt_kp, pose(900)], [1, 2])]}
    pr2 = {"v": [frame(0, [gt_kp, pose(900)], [5, 6], scores=np.r_[np.full(17, 0.9), np.full(17, 0.2)])]}
    unsure = evaluate_posetrack(gt2, pr2, mota_joint_threshold=0.3)
    assert unsure["total"]["ap"] == 100.0 and unsure["total"]["mota"] == pytest.approx(50.0)
    with pytest.raises(BadInputError, match="mota_joint_threshold"):
        evaluate_posetrack(gt, pr, mota_joint_threshold=float("nan"))


def test_motp_is_one_minus_mean_normalized_distance():
    a = pose(100)
    gt = {"v": [frame(0, [a], [1])]}
    pr = {"v": [frame(0, [a + [12.0, 0.0]], [3], scores=np.ones((1, 17)))]}
    r = evaluate_posetrack(gt, pr)
    assert r["total"]["motp"] == pytest.approx(100 * (1 - 12 / 60))
    assert r["total"]["mota"] == 100.0


def test_ignore_regions_remove_joints_and_people():
    a, ghost = pose(100), pose(1200, 600)
    region = [[1150, 550], [1500, 550], [1500, 1000], [1150, 1000]]
    gt = {"v": [frame(0, [a, ghost], [1, 2], ignore=[region])]}
    pr = {"v": [frame(0, [a, ghost + 3], [7, 8], scores=np.ones((2, 17)))]}
    r = evaluate_posetrack(gt, pr)
    assert r["total"]["ap"] == 100.0 and r["total"]["mota"] == 100.0
    assert (per_joint(r, "num_gt") == 1).all()
    no_region = {"v": [frame(0, [a], [1])]}  # the same prediction outside any region
    assert evaluate_posetrack(no_region, pr)["total"]["ap"] < 100.0


def test_frames_without_predictions_or_ground_truth():
    a = pose(100)
    gt = {"v": [
        frame(0, [a], [1]),
        frame(1, [a], [1]),  # no prediction: misses
        frame(2, np.zeros((0, 17, 2)), [], labeled=False),
        frame(3, np.zeros((0, 17, 2)), []),  # labelled, nobody: not evaluated (poseval)
    ]}  # fmt: skip
    pr = {"v": [frame(0, [a], [4], scores=np.ones((1, 17))),
                frame(2, [pose(500)], [9], scores=np.ones((1, 17))),
                frame(3, [pose(500)], [9], scores=np.ones((1, 17)))]}  # fmt: skip
    r = evaluate_posetrack(gt, pr)
    assert r["num_frames"] == 2
    assert per_joint(r, "fn") == pytest.approx(np.ones(15))
    assert r["total"]["mota"] == pytest.approx(50.0) and r["total"]["ap"] == pytest.approx(50.0)
    # a video without predictions at all
    r = evaluate_posetrack(gt, {})
    assert r["total"]["ap"] == 0.0 and r["total"]["mota"] == 0.0
    # nothing annotated anywhere: no NaN in the totals
    unlabeled = {"v": [frame(0, [a], [1], labeled=False)]}
    assert evaluate_posetrack(unlabeled, {})["total"]["ap"] == 100.0
    region = [[0, 0], [2000, 0], [2000, 2000], [0, 2000]]
    hidden = {"v": [frame(0, [a], [1], ignore=[region])]}  # all ground truth ignored
    r = evaluate_posetrack(hidden, {"v": [frame(0, [pose(3000)], [2], scores=np.ones((1, 17)))]})
    assert np.isnan(per_joint(r, "ap")).all() and r["total"]["ap"] == 0.0
    assert all(np.isfinite(v) for v in r["total"].values())


def test_bad_input():
    a = pose(100)
    with pytest.raises(BadInputError, match="head box"):
        evaluate_posetrack({"v": [frame(0, [a], [1], heads=False)]}, {})
    with pytest.raises(BadInputError, match="not in the ground truth"):
        evaluate_posetrack({"v": [frame(0, [a], [1])]}, {"w": []})
    with pytest.raises(BadInputError, match="repeat a track id"):
        evaluate_posetrack({"v": [frame(0, [a], [1])]}, {"v": [frame(0, [a, a], [3, 3])]})
    with pytest.raises(BadInputError, match="none of the joints"):
        evaluate_posetrack({"v": []}, {}, gt_keypoint_names=[f"j{i}" for i in range(17)])


def test_point_in_polygon_excludes_the_boundary():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    pts = np.array([[5, 5], [0, 5], [10, 10], [11, 5], [5, -1], [9.99, 0.01]])
    assert _inside(pts, square).tolist() == [True, False, False, False, False, True]



def test_cli_posetrack(shared_dir, capsys, tmp_path):
    val = shared_dir / "data/keypoints/posetrack18/annotations/val"
    assert main(["eval-kpts", str(val), str(val), "--kind", "posetrack"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"]["mota"] == 100.0 and out["per_joint"]["head_top"]["ap"] == 100.0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval-kpts", str(val), str(empty), "--kind", "posetrack"]) == 2
    assert "no .json files" in capsys.readouterr().err
