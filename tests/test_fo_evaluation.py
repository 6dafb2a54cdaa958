"""Evaluation inside FiftyOne: stored runs, marks, views and plots (real database).

The FiftyOne numbers are checked against the file-based tools (``posetrack
eval-mot`` / ``eval-kpts`` and the array functions) on the same labels:
TUD-Campus / TUD-Stadtmitte (../shared) and a small synthetic crowd with
deterministic perturbed predictions.
"""

from __future__ import annotations

import json
import math
import pathlib
import time
import uuid

import numpy as np
import pytest

import fiftyone as fo
from fiftyone import ViewField as F

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.eval.detection import DetectionFrame, evaluate_detection_frames
from fiftyone_posetrack.eval.keypoints import COCO_STATS, instance_scores
from fiftyone_posetrack.eval.mot import METRIC_KEYS, evaluate_mot_arrays
from fiftyone_posetrack.eval.posetrack import MOTA_JOINT_THRESHOLD, evaluate_posetrack_files
from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset, import_mot_ground_truth, load_synth
from fiftyone_posetrack.fo.evaluation import (
    DetectionEvaluation,
    DetectionEvaluationResults,
    PoseEvaluationResults,
    TrackingEvaluation,
    TrackingEvaluationResults,
    evaluate_person_detection,
    evaluate_poses,
    evaluate_tracking,
    export_coco_keypoints,
    fn_patches,
    fp_patches,
    id_switch_frames,
    plot_errors_over_time,
    plot_joint_ap,
    worst_tracks,
)
from fiftyone_posetrack.fo.evaluation.base import video_names
from fiftyone_posetrack.fo.labels import write_frame_labels
from fiftyone_posetrack.formats.mot import read_mot, write_mot
from fiftyone_posetrack.formats.posetrack import PoseTrackFrame, PoseTrackVideo, read_posetrack_json, write_posetrack_json
from fiftyone_posetrack.skeleton import COCO_KEYPOINTS
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError
from videos import make_video

TUD = {"TUD-Campus": 71, "TUD-Stadtmitte": 179}


def _unique(prefix: str) -> str:
    """A dataset name no concurrent test session uses (FiftyOne's database service is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _cli_json(capsys, argv) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _same(a, b, tol=1e-9) -> bool:
    """CLI JSON value (None for NaN/inf) vs a FiftyOne results value."""
    if a is None:
        return b is None or not math.isfinite(b)
    return b is not None and abs(a - b) <= tol


def _assert_png(path):
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


# --------------------------------------------------------------------------- TUD


@pytest.fixture(scope="module")
def tud(shared_dir, tmp_path_factory):
    """TUD gt and the CEM tracker's output on dummy videos of the right size."""
    root = tmp_path_factory.mktemp("tud")
    for name, frames in TUD.items():
        make_video(root / f"{name}.mp4", frames=frames, size=(640, 480))
    ds = get_or_create_dataset(_unique("eval-tud"), persistent=False)
    for sid in add_videos(ds, [root / f"{n}.mp4" for n in TUD]):
        name = pathlib.Path(ds[sid].filepath).stem
        import_mot_ground_truth(ds[sid], shared_dir / "data/mot" / name / "gt.txt")
        import_mot_ground_truth(ds[sid], shared_dir / "data/mot" / name / "test.txt", field="pred_detections")
    results = evaluate_tracking(ds)
    yield ds, results, shared_dir / "data/mot"
    ds.delete()


def test_tud_tracking_equals_eval_mot_cli(tud, capsys):
    ds, results, mot = tud
    argv = ["eval-mot"]
    for name in TUD:
        argv += ["--pair", str(mot / name / "gt.txt"), str(mot / name / "test.txt")]
    ref = _cli_json(capsys, argv)
    assert set(ref) == set(results.metrics_by_video) == {*TUD, "OVERALL"}
    for seq, values in ref.items():
        assert set(values) == set(METRIC_KEYS)
        for key, value in values.items():
            assert _same(value, results.metrics_by_video[seq][key]), (seq, key)
    assert results.metrics() == results.metrics_by_video["OVERALL"]
    assert set(results.per_video) == set(TUD)
    assert "MOTA" not in results.report() and "mota" in results.report()


def test_tud_marks_agree_with_counts(tud):
    ds, results, _ = tud
    for name, sid in results.video_ids.items():
        m = results.metrics(name)
        video = ds.select(sid)
        for count in ("fp", "fn", "idsw"):
            per_frame = video.values(f"frames.track_eval_{count}", unwind=True)
            assert sum(per_frame) == m[count] == video.first()[f"track_eval_{count}"]
        assert video.count_values("frames.pred_detections.detections.track_eval").get("fp", 0) == m["fp"]
        gt_marks = video.count_values("frames.gt_detections.detections.track_eval")
        assert gt_marks.get("fn", 0) == m["fn"]
        assert gt_marks.get("tp", 0) == m["num_matches"] + m["idsw"]
        assert video.count_values("frames.gt_detections.detections.track_eval_idsw").get(True, 0) == m["idsw"]
        assert video.count_values("frames.pred_detections.detections.track_eval_idsw").get(True, 0) == m["idsw"]
        assert video.first()["track_eval_mota"] == pytest.approx(m["mota"])
        pf = results.per_frame[name]
        assert len(pf["frame_number"]) == TUD[name] and sum(pf["fp"]) == m["fp"]
    # matched pairs point at each other, and carry the same IoU
    pred_id, pred_ref, pred_iou = ds.values(
        ["frames.pred_detections.detections.id", "frames.pred_detections.detections.track_eval_id",
         "frames.pred_detections.detections.track_eval_iou"], unwind=True)  # fmt: skip
    gt_id, gt_ref, gt_iou = ds.values(
        ["frames.gt_detections.detections.id", "frames.gt_detections.detections.track_eval_id",
         "frames.gt_detections.detections.track_eval_iou"], unwind=True)  # fmt: skip
    gt_of = dict(zip(gt_id, zip(gt_ref, gt_iou)))
    pairs = [(p, g, iou) for p, g, iou in zip(pred_id, pred_ref, pred_iou) if g]
    assert len(pairs) == results.metrics()["num_matches"] + results.metrics()["idsw"]
    for p, g, iou in pairs:
        assert gt_of[g][0] == p and gt_of[g][1] == pytest.approx(iou) and iou >= 0.5


def test_tud_worst_tracks_and_error_plot(tud, tmp_path):
    ds, results, _ = tud
    tracks, view = worst_tracks(ds, "track_eval", k=3)
    assert len(tracks) == 3
    scores = [c["fn"] + c["idsw"] for _, _, c in tracks]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    video, index, counts = tracks[0]
    sid = results.video_ids[video]
    boxes = ds.select(sid).filter_labels("frames.gt_detections", F("index") == index)
    assert counts["frames"] == boxes.count("frames.gt_detections.detections")
    assert counts["fn"] == boxes.count_values("frames.gt_detections.detections.track_eval").get("fn", 0)
    # the view keeps exactly those tracks' gt boxes
    kept = zip(view.values("id"), view.values("frames.gt_detections.detections.index"))
    want = {(results.video_ids[v], i) for v, i, _ in tracks}
    got = {(sid, i) for sid, frames in kept for f in frames for i in (f or [])}
    assert got == want
    assert view.count("frames.gt_detections.detections") == sum(c["frames"] for _, _, c in tracks)
    _assert_png(plot_errors_over_time(results, tmp_path / "errors.png"))
    _assert_png(plot_errors_over_time(results, tmp_path / "one.png", video="TUD-Campus"))
    with pytest.raises(BadInputError, match="video"):
        plot_errors_over_time(results, tmp_path / "x.png", video="nope")


# --------------------------------------------------------------------------- synthetic crowd


def _perturb(gt: np.ndarray, width: int, height: int) -> np.ndarray:
    """Deterministic tracker-like output: jitter, drops, an id swap, false positives."""
    rng = np.random.default_rng(0)
    pred = gt[rng.random(len(gt)) > 0.12].copy()
    pred[:, 2:4] += rng.normal(0, 3, (len(pred), 2))
    pred[:, 4:6] *= rng.uniform(0.9, 1.1, (len(pred), 2))
    late = pred[:, 0] >= 16
    two, three = late & (pred[:, 1] == 2), late & (pred[:, 1] == 3)
    pred[two, 1], pred[three, 1] = 3, 2
    fps = np.array([[f, 100 + i, rng.uniform(0, width - 60), rng.uniform(0, height - 120), 50, 110, 0, 0, 0]
                    for i, f in enumerate((2, 5, 9, 20, 21, 27))])  # fmt: skip
    pred = np.concatenate([pred, fps])
    pred[:, 6] = rng.uniform(0.3, 1.0, len(pred))
    return pred


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    root = tmp_path_factory.mktemp("crowd")
    synth = render_crowd(root / "seq", people=6, frames=30, seed=3)
    ds = load_synth(root / "seq", _unique("eval-crowd"))
    sid = ds.first().id
    W, H = synth.width, synth.height
    gt_mot = read_mot(synth.gt_path)
    write_mot(root / "pred.txt", _perturb(gt_mot, W, H))
    pred = read_mot(root / "pred.txt")  # what the CLI reads

    # original gt id of every prediction (undo the swap), for its pose
    orig = pred[:, 1].copy()
    late = pred[:, 0] >= 16
    orig[late & (pred[:, 1] == 2)], orig[late & (pred[:, 1] == 3)] = 3, 2
    video = read_posetrack_json(synth.posetrack_path)
    rng = np.random.default_rng(1)
    dets, kps, poses = {}, {}, {}
    for row, o in zip(pred, orig):
        f, tid = int(row[0]), int(row[1])
        fr = video.frames[f - 1]
        hit = np.flatnonzero(fr.track_ids == o)
        if len(hit):
            pts = fr.keypoints[hit[0]] + rng.normal(0, 2.5, (17, 2))
            vis = fr.visibility[hit[0]]
            pts[(fr.keypoints[hit[0]] == 0).all(axis=1)] = np.nan  # outside the frame: not predicted
            sc = np.where(vis > 0, rng.uniform(0.4, 1.0, 17), 0.1)
        else:  # a false positive box: a pose spread over it
            pts = row[2:4] + rng.uniform(0, 1, (17, 2)) * row[4:6]
            sc = rng.uniform(0.2, 0.7, 17)
        poses.setdefault(f, []).append((tid, pts, sc, row[6]))
        x, y, w, h = row[2:6]
        dets.setdefault(f, []).append(
            fo.Detection(label="person", bounding_box=[x / W, y / H, w / W, h / H], confidence=row[6], index=tid)
        )
        rel = pts / [W, H]
        kps.setdefault(f, []).append(
            fo.Keypoint(label="person", points=[(float(a), float(b)) for a, b in rel], confidence=sc.tolist(), index=tid)
        )
    write_frame_labels(ds, {
        "pred_detections": {sid: {f: fo.Detections(detections=d) for f, d in dets.items()}},
        "pred_keypoints": {sid: {f: fo.Keypoints(keypoints=k) for f, k in kps.items()}},
    })  # fmt: skip
    ns = dict(ds=ds, synth=synth, root=root, gt_mot=gt_mot, pred=pred, video=video, poses=poses)
    yield type("Crowd", (), ns)
    ds.delete()


def test_crowd_tracking_equals_eval_mot_cli(crowd, capsys):
    res = evaluate_tracking(crowd.ds, eval_key="crowd_track")
    ref = _cli_json(capsys, ["eval-mot", "--pair", crowd.synth.gt_path, str(crowd.root / "pred.txt")])
    (seq,) = [k for k in ref if k != "OVERALL"]
    assert list(res.per_video) == [seq], "one video-name rule: the synth folder's name, as in the files"
    for ours, theirs in ((seq, seq), ("OVERALL", "OVERALL")):
        for key, value in ref[theirs].items():
            assert _same(value, res.metrics_by_video[ours][key]), key
    m = res.metrics()
    assert m["idsw"] >= 1 and m["fp"] >= 6 and m["fn"] > 0, "the perturbation must show every error kind"


def test_crowd_detection_equals_array_evaluation(crowd):
    res = evaluate_person_detection(crowd.ds, eval_key="crowd_det")
    assert isinstance(res, DetectionEvaluationResults)

    def frames_of(mot):
        out = []
        for f in range(1, crowd.synth.frames + 1):
            rows = mot[mot[:, 0] == f]
            out.append(rows)
        return out

    frames = [
        DetectionFrame(g[:, 2:6] + np.c_[0 * g[:, 2:4], g[:, 2:4]], p[:, 2:6] + np.c_[0 * p[:, 2:4], p[:, 2:4]], p[:, 6])
        for g, p in zip(frames_of(crowd.gt_mot), frames_of(crowd.pred))
    ]
    ref = evaluate_detection_frames({"video": frames})
    for key in ("ap", "ap50", "ap75", "ar", "lamr", "num_frames", "num_gt", "num_pred"):
        assert res.metrics()[key] == pytest.approx(ref["OVERALL"][key], abs=1e-9), key
    assert res.metrics()["fppi_range"] == [0.01, 1.0]
    assert 0 < res.metrics()["ap50"] < 1 and crowd.ds.first()["crowd_det_ap50"] == pytest.approx(res.metrics()["ap50"])


def _coco_from_arrays(crowd, path_gt, path_dt):
    """COCO files built straight from the synth files and the perturbed arrays."""
    images, anns, results = [], [], []
    gt = crowd.gt_mot
    for fr in crowd.video.frames:
        f = fr.frame_index + 1
        images.append({"id": f})
        for tid, pts, vis in zip(fr.track_ids, fr.keypoints, fr.visibility):
            row = gt[(gt[:, 0] == f) & (gt[:, 1] == tid)][0]
            v = np.where(vis > 0, 2, 0)
            xy = np.where(v[:, None] > 0, pts, 0.0)
            anns.append({"id": len(anns) + 1, "image_id": f, "category_id": 1, "iscrowd": 0,
                         "keypoints": np.c_[xy, v].ravel().tolist(), "num_keypoints": int((v > 0).sum()),
                         "bbox": row[2:6].tolist(), "area": float(row[4] * row[5])})  # fmt: skip
        for tid, pts, sc, box_score in crowd.poses.get(f, []):
            ok = np.isfinite(pts).all(axis=1)
            s = np.where(ok, sc, 0.0)
            score = instance_scores([box_score], s[None])[0]
            results.append({"image_id": f, "category_id": 1, "score": float(score),
                            "keypoints": np.c_[np.where(ok[:, None], pts, 0.0), s].ravel().tolist()})  # fmt: skip
    path_gt.write_text(json.dumps({"images": images, "annotations": anns,
                                   "categories": [{"id": 1, "name": "person"}]}))  # fmt: skip
    path_dt.write_text(json.dumps(results))


def test_crowd_poses_equal_eval_kpts_cli(crowd, capsys, tmp_path):
    ds = crowd.ds
    res = evaluate_poses(ds, kind="coco", eval_key="crowd_pose")
    assert isinstance(res, PoseEvaluationResults)
    # 1. the exporter's files through the CLI give the same numbers
    n_gt = export_coco_keypoints(ds, "gt_keypoints", tmp_path / "gt.json")
    n_dt = export_coco_keypoints(ds, "pred_keypoints", tmp_path / "dt.json", results=True)
    assert n_gt == len(crowd.gt_mot) and 0 < n_dt <= len(crowd.pred)
    ref = _cli_json(capsys, ["eval-kpts", str(tmp_path / "gt.json"), str(tmp_path / "dt.json")])
    for key in COCO_STATS:
        assert _same(ref[key], res.metrics()[key]), key
    assert 0.2 < res.metrics()["ap"] < 1.0
    exported = json.loads((tmp_path / "gt.json").read_text())
    assert {a["track_id"] for a in exported["annotations"]} == set(range(1, 7))
    (name,) = res.per_video  # one video-name rule: the synth folder, as export_mot / export_posetrack name it
    assert exported["images"][0]["file_name"] == f"{name}/000001.jpg"
    # 2. files written straight from the arrays (no FiftyOne) agree too (no OKS-NMS there)
    _coco_from_arrays(crowd, tmp_path / "gt2.json", tmp_path / "dt2.json")
    ref2 = _cli_json(capsys, ["eval-kpts", str(tmp_path / "gt2.json"), str(tmp_path / "dt2.json")])
    plain = evaluate_poses(ds, kind="coco", eval_key=None, nms_threshold=None)
    for key in COCO_STATS:
        assert _same(ref2[key], plain.metrics()[key]), key
    assert ds.first()["crowd_pose_ap"] == pytest.approx(res.metrics()["ap"])


def test_crowd_posetrack_with_head_boxes_equals_poseval_files(crowd, tmp_path):
    ds, video = crowd.ds, crowd.video
    W, H = crowd.synth.width, crowd.synth.height
    # give FiftyOne's gt poses the synth's head boxes, then poseval on files == FiftyOne
    fids, lids, index = ds.values(["frames.id", "frames.gt_keypoints.keypoints.id",
                                   "frames.gt_keypoints.keypoints.index"])  # fmt: skip
    values = []
    for fid, f_lids, f_idx, fr in zip(fids[0], lids[0], index[0], video.frames):
        for lid, tid in zip(f_lids, f_idx):
            x1, y1, x2, y2 = fr.head_boxes[list(fr.track_ids).index(tid)]
            values.append({"frame_id": fid, "label_id": lid, "value": [x1 / W, y1 / H, (x2 - x1) / W, (y2 - y1) / H]})
    ds.set_label_values("frames.gt_keypoints.keypoints.bbox_head", values)
    try:
        res = evaluate_poses(ds, kind="posetrack", eval_key="crowd_pt")
        gt_frames = [
            PoseTrackFrame(fr.frame_index, fr.file_name, True, fr.track_ids, fr.boxes,
                           np.where(fr.visibility[..., None] > 0, fr.keypoints, 0.0), fr.visibility,
                           head_boxes=fr.head_boxes)  # fmt: skip
            for fr in video.frames
        ]
        pred_frames = []
        for fr in video.frames:
            people = crowd.poses.get(fr.frame_index + 1, [])
            pts = np.array([p for _, p, _, _ in people]).reshape(-1, 17, 2)
            ok = np.isfinite(pts).all(axis=2)
            pred_frames.append(PoseTrackFrame(
                fr.frame_index, fr.file_name, True, np.array([t for t, *_ in people], dtype=np.int64),
                np.zeros((len(people), 4)), np.where(ok[..., None], pts, 0.0), ok.astype(int),
                scores=np.where(ok, np.array([s for _, _, s, _ in people]).reshape(-1, 17), 0.0)))  # fmt: skip
        kw = dict(width=W, height=H, keypoint_names=COCO_KEYPOINTS, vid_id="000000", nframes=len(video.frames))
        write_posetrack_json(tmp_path / "gt" / "video.json", PoseTrackVideo("video", frames=gt_frames, **kw))
        write_posetrack_json(tmp_path / "pr" / "video.json", PoseTrackVideo("video", frames=pred_frames, **kw))
        ref = evaluate_posetrack_files(tmp_path / "gt", tmp_path / "pr", mota_joint_threshold=MOTA_JOINT_THRESHOLD)
    finally:
        ds.delete_frame_field("gt_keypoints.keypoints.bbox_head")
    ours = res.posetrack_by_video["OVERALL"]
    for joint, row in ref["per_joint"].items():
        for key, value in row.items():
            a, b = value, ours["per_joint"][joint][key]
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-9), (joint, key)
    for key, value in ref["total"].items():
        assert res.metrics()[f"pt_{key}"] == pytest.approx(value, abs=1e-9), key
    # COCO-17 has no head_bottom / head_top: absent (NaN), not 0, and out of the mean
    ap = res.joint_ap()
    assert math.isnan(ap["head_bottom"]) and math.isnan(ap["head_top"])
    finite = [v for v in ap.values() if math.isfinite(v)]
    assert len(finite) == 13 and res.metrics()["pt_ap"] == pytest.approx(np.mean(finite))
    assert res.metrics()["pt_mota"] < 100 and np.isfinite(res.metrics()["pt_mota"])
    _assert_png(plot_joint_ap(res, tmp_path / "joints.png"))


def test_posetrack_without_head_boxes_estimates_them(crowd):
    res = evaluate_poses(crowd.ds, kind="posetrack", eval_key=None)
    m = res.metrics()
    assert all(np.isfinite(m[k]) for k in ("pt_ap", "pt_mota", "pt_motp", "ap"))
    assert 0 < m["pt_ap"] <= 100
    c = evaluate_poses(crowd.ds, kind="crowdpose", eval_key=None).metrics()
    assert 0 < c["ap"] < 1 and {"ap_easy", "ap_medium", "ap_hard"} <= set(c)


def test_posetrack_joint_threshold_is_mota_only(crowd):
    """posetrack_joint_threshold=0.3: MOTA exactly as a prediction field whose
    joints below 0.3 were never written (built here independently); AP ranks
    every joint, as with no threshold."""
    ds, sid = crowd.ds, crowd.ds.first().id
    W, H = crowd.synth.width, crowd.synth.height
    kps = {}
    for f, people in crowd.poses.items():
        kps[f] = fo.Keypoints(keypoints=[
            fo.Keypoint(label="person", index=tid, confidence=sc.tolist(),
                        points=[(float("nan"),) * 2 if s < 0.3 else (float(x / W), float(y / H))
                                for (x, y), s in zip(pts, sc)])
            for tid, pts, sc, _ in people
        ])  # fmt: skip
    write_frame_labels(ds, {"pred_dropped": {sid: kps}})
    try:
        kw = dict(kind="posetrack", eval_key=None)
        full = evaluate_poses(ds, posetrack_joint_threshold=None, **kw).metrics()
        thr = evaluate_poses(ds, posetrack_joint_threshold=0.3, **kw).metrics()
        dropped = evaluate_poses(ds, pred_field="pred_dropped", posetrack_joint_threshold=None, **kw).metrics()
        for key in ("pt_mota", "pt_motp", "pt_precision", "pt_recall"):
            assert thr[key] == pytest.approx(dropped[key], abs=1e-9), key
        # AP ranks every joint: the threshold changes nothing (dropping the joints could only lose recall;
        # here the dropped joints are occluded guesses ranked last, so nothing is lost)
        assert thr["pt_ap"] == full["pt_ap"] >= dropped["pt_ap"]
        assert (thr["pt_mota_joint_threshold"], full["pt_mota_joint_threshold"]) == (0.3, None)
        default = evaluate_poses(ds, **kw).metrics()  # the default threshold is MOTA_JOINT_THRESHOLD
        assert default["pt_mota_joint_threshold"] == MOTA_JOINT_THRESHOLD and default["pt_ap"] == full["pt_ap"]
        # the occluded joints (score 0.1) were false positives: MOTA and precision rise
        assert thr["pt_mota"] > full["pt_mota"] + 1 and thr["pt_precision"] > full["pt_precision"]
        assert thr["ap"] == full["ap"]  # COCO OKS AP is not affected
        with pytest.raises(BadInputError, match="posetrack_joint_threshold"):
            evaluate_poses(ds, posetrack_joint_threshold=1.5, **kw)
    finally:
        ds.delete_frame_field("pred_dropped")


def test_ground_truth_as_prediction_is_perfect(crowd):
    ds = crowd.ds
    ds.clone_frame_field("gt_keypoints", "gt_copy")
    ds.clone_frame_field("gt_detections", "gt_det_copy")  # a field against itself is refused (issue 21, case 8)
    try:
        kw = dict(pred_field="gt_copy", pred_box_field="gt_detections", eval_key=None)
        assert evaluate_poses(ds, kind="coco", **kw).metrics()["ap"] == 1.0
        assert evaluate_poses(ds, kind="crowdpose", **kw).metrics()["ap"] == 1.0
        pt = evaluate_poses(ds, kind="posetrack", **kw)
        assert pt.metrics()["pt_ap"] == 100.0 and pt.metrics()["pt_mota"] == 100.0
        assert {j for j, v in pt.joint_ap().items() if not math.isfinite(v)} == {"head_bottom", "head_top"}
        t = evaluate_tracking(ds, pred_field="gt_det_copy", eval_key=None).metrics()
        assert (t["mota"], t["idf1"], t["fp"], t["fn"], t["idsw"]) == (1.0, 1.0, 0, 0, 0)
        assert evaluate_person_detection(ds, pred_field="gt_det_copy", eval_key=None).metrics()["ap"] == 1.0
    finally:
        ds.delete_frame_field("gt_copy")
        ds.delete_frame_field("gt_det_copy")


def test_a_view_is_evaluated_as_filtered(crowd):
    ds, pred = crowd.ds, crowd.pred
    view = ds.filter_labels("frames.pred_detections", F("confidence") > 0.6, only_matches=False)
    res = evaluate_tracking(view, eval_key="confident")
    ref = evaluate_mot_arrays(crowd.gt_mot, pred[pred[:, 6] > 0.6])["OVERALL"]
    for key in ("mota", "idf1", "hota", "fp", "fn", "idsw"):
        assert res.metrics()[key] == pytest.approx(ref[key], abs=1e-9), key
    assert len(ds.load_evaluation_view("confident").values("frames.pred_detections.detections", unwind=True)) == (
        int((pred[:, 6] > 0.6).sum())
    )
    marked = ds.count_values("frames.pred_detections.detections.confident")
    assert sum(marked.get(k, 0) for k in ("tp", "fp", "ignored")) == int((pred[:, 6] > 0.6).sum())
    ds.delete_evaluation("confident")


def test_video_names_are_unique():
    assert video_names(["/a/x.mp4", "/b/x.mp4", "/c/OVERALL.avi", "/d/y"]) == ["x", "x#2", "OVERALL#2", "y"]


def test_views_to_the_failures(crowd):
    ds = crowd.ds
    res = evaluate_tracking(ds, eval_key="views")
    m = res.metrics()
    tick = time.perf_counter()
    frames = id_switch_frames(ds, "views")
    elapsed = time.perf_counter() - tick
    (per_frame,) = res.per_frame.values()
    switch_frames = [n for n, s in zip(per_frame["frame_number"], per_frame["idsw"]) if s]
    assert sorted(frames.values("frame_number")) == switch_frames
    assert all(pathlib.Path(p).is_file() for p in frames.values("filepath"))
    assert sum(frames.values("views_idsw")) == m["idsw"]
    print(f"to_frames of {len(frames)} ID-switch frames: {elapsed:.2f} s")
    fp = fp_patches(ds, "views")
    assert len(fp) == m["fp"] and set(fp.distinct("pred_detections.views")) == {"fp"}
    fn = fn_patches(ds, "views")
    assert len(fn) == m["fn"] and set(fn.distinct("gt_detections.views")) == {"fn"}
    # FiftyOne's own evaluation patches work on a frames view of our run
    patches = ds.to_frames(sample_frames=True, sparse=True).to_evaluation_patches("views")
    assert patches.count_values("type").get("fp") == m["fp"]
    with pytest.raises(BadInputError, match="no evaluation"):
        id_switch_frames(ds, "nope")


def test_run_lifecycle(crowd):
    ds = crowd.ds
    runs = {
        "life_track": (lambda k: evaluate_tracking(ds, eval_key=k), TrackingEvaluationResults),
        "life_det": (lambda k: evaluate_person_detection(ds, eval_key=k), DetectionEvaluationResults),
        "life_pose": (lambda k: evaluate_poses(ds, eval_key=k, kind="posetrack"), PoseEvaluationResults),
    }
    for key, (run, cls) in runs.items():
        res = run(key)
        assert key in ds.list_evaluations()
        info = ds.get_evaluation_info(key)
        assert info.config.gt_field.startswith("frames.") and info.config.method.startswith("posetrack_")
        fields = info.config.build().get_fields(ds, key)
        ds.reload()
        loaded = ds.load_evaluation_results(key, cache=False)
        assert type(loaded) is cls and loaded.key == key
        assert loaded.metrics()["ap" if key != "life_track" else "mota"] == pytest.approx(
            res.metrics()["ap" if key != "life_track" else "mota"], nan_ok=True
        )
        ds.rename_evaluation(key, key + "2")
        assert key + "2" in ds.list_evaluations() and key not in ds.list_evaluations()
        renamed = [f.replace(key, key + "2") for f in fields]
        assert all(ds.get_field(f) is None for f in fields)
        assert all(ds.get_field(f) is not None for f in renamed), renamed
        ds.delete_evaluation(key + "2")
        assert key + "2" not in ds.list_evaluations()
        assert all(ds.get_field(f) is None for f in renamed)
        raw = ds.values(["frames.pred_detections", "frames.gt_detections"], _raw=True)
        leftover = {k for field in raw for frames in field for fr in frames if fr for d in fr["detections"]
                    for k in d if k.startswith("life_")}  # fmt: skip
        assert not leftover, "deleting a run removes its marks from the labels"
    evaluate_tracking(ds, eval_key="by_type")
    tracking = set(ds.list_evaluations(type=TrackingEvaluation))
    assert "by_type" in tracking and tracking == set(ds.list_evaluations(method="posetrack_mot"))
    assert not tracking & set(ds.list_evaluations(type=DetectionEvaluation))
    ds.delete_evaluation("by_type")
    # overwriting a run replaces it; a run of another kind under the key is refused
    evaluate_tracking(ds, eval_key="again", iou_threshold=0.6)
    evaluate_tracking(ds, eval_key="again")
    assert ds.get_evaluation_info("again").config.iou_threshold == 0.5
    with pytest.raises(BadInputError, match="eval_key 'again' names an existing TrackingEvaluationConfig run"):
        evaluate_person_detection(ds, eval_key="again")
    ds.delete_evaluation("again")


def test_ignore_regions_and_crowd_flags(crowd):
    ds = crowd.ds
    W, H = crowd.synth.width, crowd.synth.height
    # a region around person 1's box centre in frames 1-10
    rows = crowd.gt_mot[(crowd.gt_mot[:, 1] == 1) & (crowd.gt_mot[:, 0] <= 10)]
    sid = ds.first().id
    regions = {}
    for r in rows:
        cx, cy = (r[2] + r[4] / 2) / W, (r[3] + r[5] / 2) / H
        square = [(cx - 0.02, cy - 0.02), (cx + 0.02, cy - 0.02), (cx + 0.02, cy + 0.02), (cx - 0.02, cy + 0.02)]
        regions[int(r[0])] = fo.Polylines(polylines=[fo.Polyline(points=[square], closed=True, filled=True)])
    write_frame_labels(ds, {"ignore_regions": {sid: regions}})
    try:
        plain = evaluate_tracking(ds, eval_key=None)
        res = evaluate_tracking(ds, eval_key="ign", ignore_field="ignore_regions")
        marks = ds.filter_labels("frames.gt_detections", F("index") == 1).match_frames(F("frame_number") <= 10)
        assert set(marks.distinct("frames.gt_detections.detections.ign")) == {"ignored"}
        assert res.metrics()["num_objects"] == plain.metrics()["num_objects"] - len(rows)
        ignored_pred = ds.count_values("frames.pred_detections.detections.ign").get("ignored", 0)
        assert ignored_pred >= 1
        assert res.metrics()["fp"] == ds.count_values("frames.pred_detections.detections.ign").get("fp", 0)
        det = evaluate_person_detection(ds, eval_key=None, ignore_field="ignore_regions")
        assert det.metrics()["num_ignored_gt"] == len(rows)
    finally:
        ds.delete_frame_field("ignore_regions")
        if "ign" in ds.list_evaluations():
            ds.delete_evaluation("ign")


# --------------------------------------------------------------------------- edge cases


@pytest.fixture()
def tiny(tmp_path):
    ds = get_or_create_dataset(_unique("eval-tiny"), persistent=False)
    (sid,) = add_videos(ds, [make_video(tmp_path / "tiny.mp4", frames=6, size=(160, 96))])
    yield ds, sid
    ds.delete()


def test_videos_without_predictions_do_not_crash(tiny):
    ds, sid = tiny
    box = fo.Detection(label="person", bounding_box=[0.1, 0.1, 0.3, 0.6], index=1)
    pose = fo.Keypoint(label="person", points=[(0.2, 0.3)] * 17, index=1)
    write_frame_labels(ds, {
        "gt_detections": {sid: {n: fo.Detections(detections=[box.copy()]) for n in (1, 2, 3)}},
        "gt_keypoints": {sid: {n: fo.Keypoints(keypoints=[pose.copy()]) for n in (1, 2, 3)} | {4: fo.Keypoints()}},
        "pred_detections": {sid: {5: fo.Detections()}},
        "pred_keypoints": {sid: {5: fo.Keypoints()}},
    })  # fmt: skip
    t = evaluate_tracking(ds).metrics()
    assert (t["fn"], t["fp"], t["mota"]) == (3, 0, 0.0)
    d = evaluate_person_detection(ds).metrics()
    assert (d["ap"], d["lamr"]) == (0.0, 1.0)
    p = evaluate_poses(ds, kind="posetrack").metrics()
    assert p["ap"] == 0.0 and p["pt_ap"] == 0.0 and p["pt_mota"] == 0.0
    assert ds.first()["pose_eval_mota"] == 0.0
    c = evaluate_poses(ds, kind="crowdpose", eval_key=None).metrics()
    assert c["ap"] == 0.0


def test_bad_input_is_named(tiny):
    ds, sid = tiny
    with pytest.raises(BadInputError, match="no frame field 'pred_detections'"):
        evaluate_tracking(ds)
    write_frame_labels(ds, {
        "gt_detections": {sid: {1: fo.Detections(detections=[fo.Detection(bounding_box=[0, 0, 0.5, 0.5])])}},
        "pred_detections": {sid: {1: fo.Detections()}},
        "gt_keypoints": {sid: {1: fo.Keypoints()}},
    })  # fmt: skip
    with pytest.raises(BadInputError, match="without `index`"):
        evaluate_tracking(ds)
    with pytest.raises(BadInputError, match="holds Keypoints, expected Detections"):
        evaluate_tracking(ds, gt_field="gt_keypoints")
    with pytest.raises(BadInputError, match="eval_key"):
        evaluate_person_detection(ds, eval_key="not a key")
    with pytest.raises(BadInputError, match="kind"):
        evaluate_poses(ds, kind="mpii")
    images = fo.Dataset()
    images.add_sample(fo.Sample(filepath="/tmp/x.jpg"))
    with pytest.raises(BadInputError, match="video dataset"):
        evaluate_tracking(images)
    images.delete()


# --------------------------------------------------------------------------- export -> file evaluation round trips


def _assert_same_tree(ref, ours, where=""):
    """Every number of the CLI's JSON equals the in-place result (NaN/None alike)."""
    if isinstance(ref, dict):
        for key, value in ref.items():
            _assert_same_tree(value, ours[key], f"{where}/{key}")
    else:
        assert _same(ref, ours), where


def test_posetrack_export_then_eval_kpts_equals_evaluate_poses(crowd, capsys, tmp_path):
    """One converter: PoseTrack files exported from the dataset score as the dataset does in place."""
    from fiftyone_posetrack.fo.io import export_posetrack

    ds = crowd.ds
    res = evaluate_poses(ds, kind="posetrack", eval_key=None)
    export_posetrack(ds, "gt_keypoints", tmp_path / "gt", detections_field="gt_detections", gt=True)
    export_posetrack(ds, "pred_keypoints", tmp_path / "dt", detections_field="pred_detections")
    ref = _cli_json(capsys, ["eval-kpts", str(tmp_path / "gt"), str(tmp_path / "dt"), "--kind", "posetrack",
                             "--mota-joint-threshold", str(MOTA_JOINT_THRESHOLD)])  # the evaluation's default  # fmt: skip
    ours = res.posetrack_by_video["OVERALL"]
    _assert_same_tree(ref["per_joint"], ours["per_joint"])
    _assert_same_tree(ref["total"], ours["total"])
    assert 0 < ours["total"]["ap"] < 100 and ours["total"]["mota"] < 100, "the predictions have errors to measure"


def test_mot_export_then_eval_mot_equals_evaluate_tracking(crowd, capsys, tmp_path):
    """One video-name rule and one MOT conversion: exported files score as the dataset does in place."""
    from fiftyone_posetrack.fo.io import export_mot

    ds = crowd.ds
    res = evaluate_tracking(ds, eval_key=None)
    (gt,) = export_mot(ds, "gt_detections", tmp_path / "gt", gt=True)
    (pred,) = export_mot(ds, "pred_detections", tmp_path / "res")
    ref = _cli_json(capsys, ["eval-mot", "--pair", gt, pred])
    assert set(ref) == set(res.metrics_by_video), "the files' sequence names are the evaluation's video names"
    for video in ref:
        for key, value in ref[video].items():
            assert _same(value, res.metrics_by_video[video][key]), (video, key)
    assert res.metrics()["idsw"] >= 1 and res.metrics()["fp"] > 0
