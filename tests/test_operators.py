"""Every operator of the plugin, executed on a real dataset with the real models of ../shared.

Operators run through ``fiftyone.operators.execute_operator`` exactly as the
App would run them (programmatic calls get no form defaults, so every
required parameter is passed), immediately unless a test is about the
delegated queue.
"""

import json
import os

import numpy as np
import pytest
from bson import ObjectId

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionError

from fiftyone_posetrack.fo.dataset import load_synth
from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin
from fiftyone_posetrack.formats.mot import read_mot
from fiftyone_posetrack.formats.posetrack import read_posetrack_json
from fiftyone_posetrack.synth import render_crowd

FRAMES = 16


def uri(name):
    return f"{PLUGIN_NAME}/{name}"


def execute(name, dataset, params, **ctx):
    result = foo.execute_operator(
        uri(name), ctx={"dataset": dataset.name, "params": params, "request_delegation": False, **ctx}
    )
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def plugin(fo_home):
    return install_plugin(fo.config.plugins_dir)


@pytest.fixture(scope="module")
def models(shared_dir):
    return str(shared_dir / "models")


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    root = tmp_path_factory.mktemp("ops") / "seqs"
    return render_crowd(root / "CROWD-01", people=5, frames=FRAMES, width=480, height=272, seed=3, save_images=True)


@pytest.fixture()
def dataset(plugin, crowd, request):
    ds = load_synth(crowd.out_dir, f"ops-{request.node.name}", overwrite=True)
    yield ds
    ds.delete()


def fast(models, **extra):
    """Parameters of a quick whole-pipeline run (no ReID, ONNX/TFLite models)."""
    params = dict(
        detector="rtmdet-nano-person", pose="movenet-lightning-int8", reid="none", tracker="bytetrack",
        models_dir=models,
    )  # fmt: skip
    return {**params, **extra}


def test_stage_operators_chain_into_tracked_skeletons(dataset, models):
    r = execute("detect_persons", dataset, {"detector": "rtmdet-nano-person", "models_dir": models, "field": "raw"})
    assert r.result["processed"] == 1 and r.result["frames"] == FRAMES
    assert dataset.count("frames.raw.detections") > FRAMES
    assert dataset.distinct("frames.raw.detections.index") == []

    r = execute(
        "track_persons", dataset,
        {"in_field": "raw", "out_field": "tracked", "tracker": "bytetrack", "reid": "none",
         "tracker_params": json.dumps({"n_init": 1})},
    )  # fmt: skip
    assert r.result["frames"] == FRAMES
    assert len(dataset.distinct("frames.tracked.detections.index")) >= 3

    r = execute("estimate_poses", dataset, {"tracks_field": "tracked", "pose": "movenet-lightning-int8", "models_dir": models, "out_field": "kps"})
    assert r.result["frames"] == FRAMES
    r = execute("smooth_poses", dataset, {"in_field": "kps", "out_field": "kps_smooth", "method": "flow"})
    assert r.result["frames"] == FRAMES

    dataset.reload()
    frame = dataset.first().frames[8]
    ids = [d.index for d in frame.tracked.detections]
    assert ids and ids == [k.index for k in frame.kps.keypoints] == [k.index for k in frame.kps_smooth.keypoints]
    a = np.array([k.points for k in frame.kps.keypoints], dtype=float)
    b = np.array([k.points for k in frame.kps_smooth.keypoints], dtype=float)
    assert 0 < np.nanmean(np.abs(a - b)) < 0.02, "smoothing moves joints a little"
    # without a method the stage smooths by flow (the pipeline's own default is no smoothing)
    execute("smooth_poses", dataset, {"in_field": "kps", "out_field": "kps_smooth2"})
    dataset.reload()
    assert [k.points for k in dataset.first().frames[8].kps_smooth2.keypoints] == [k.points for k in frame.kps_smooth.keypoints]
    assert dataset.values("kps_worker")[0] == r.result["worker"]

    # a second run finds the videos done and skips them
    r = execute("smooth_poses", dataset, {"in_field": "kps", "out_field": "kps_smooth"})
    assert r.result["processed"] == 0 and r.result["skipped"] == 1


def test_run_pose_tracking_on_a_view_moves_the_app_to_it(dataset, models, crowd, tmp_path):
    os.link(crowd.video_path, tmp_path / "copy.mp4")  # a second video sample
    dataset.add_samples([fo.Sample(filepath=str(tmp_path / "copy.mp4"))])
    dataset.compute_metadata()
    first = dataset.first()
    view = dataset.select(first.id)
    result = foo.execute_operator(
        uri("run_pose_tracking"),
        ctx={"view": view, "params": {**fast(models), "view_target": "CURRENT_VIEW"}, "request_delegation": False},
    )
    assert result.error is None, result.error
    assert result.result["processed"] == 1 and result.result["frames"] == FRAMES
    assert result.result["processed_ids"] == [first.id]
    dataset.reload()
    counts = dict(zip(dataset.values("id"), dataset.values("frames.pred_keypoints")))
    assert sum(k is not None for k in counts[first.id]) == FRAMES
    assert all(k is None for sid, labels in counts.items() if sid != first.id for k in labels), "other video untouched"
    assert dataset.values("pred_detections_status") == ["done", None]
    requests = [r["operator_uri"] for r in result.executor.to_json()["requests"]]
    assert "reload_dataset" in requests and "set_view" in requests
    sample = dataset[first.id]
    ids = {d.index for f in sample.frames.values() for d in (f.pred_detections.detections if f.pred_detections else [])}
    assert len(ids) >= 3
    assert dataset.default_skeleton is not None


def test_delegated_run_records_progress(dataset, models):
    assert dataset.persistent
    params = fast(models, detections_field="boxes2", keypoints_field="poses2", flush_frames=4, stale_after=60.0)
    queued = foo.execute_operator(uri("run_pose_tracking"), ctx={"dataset": dataset.name, "params": params, "request_delegation": True})
    assert queued.delegated
    service = DelegatedOperationService()
    op_id = queued.result["id"]
    assert str(service.get(op_id).run_state) in ("queued", "ExecutionRunState.QUEUED")
    assert not dataset.has_frame_field("poses2"), "nothing ran yet"
    (done,) = service.execute_queued_operations(operator=uri("run_pose_tracking"), limit=1)
    assert done.error is None, done.error
    doc = service.get(op_id)
    assert "completed" in str(doc.run_state).lower()
    assert doc.status is not None and doc.status.progress == pytest.approx(1.0)
    assert f"{FRAMES}/{FRAMES} frames" in doc.status.label
    assert doc.result.result["frames"] == FRAMES
    dataset.reload()
    assert dataset.count("frames.poses2") == FRAMES


def test_queued_runs_split_the_videos_and_no_run_queues_copies(dataset, models, crowd, tmp_path):
    """The retired ``parallel_runs`` knob queues nothing (a request with parallel_runs=10**6 once queued
    13,160 operations); two queued runs on one dataset split its videos through the per-video claims."""
    for name in ("b.mp4", "c.mp4"):  # two more videos: three in all
        os.link(crowd.video_path, tmp_path / name)
    dataset.add_samples([fo.Sample(filepath=str(tmp_path / n)) for n in ("b.mp4", "c.mp4")])
    dataset.compute_metadata()
    params = fast(models, parallel_runs=10**6, pose_smoothing="none", box_smoothing=False)
    ctx = {"dataset": dataset.name, "params": params, "request_delegation": True}
    first, second = (foo.execute_operator(uri("run_pose_tracking"), ctx=ctx) for _ in range(2))
    service = DelegatedOperationService()
    assert len(service.list_operations(operator=uri("run_pose_tracking"))) == 2, "no copies queued"
    (a,) = service.execute_queued_operations(operator=uri("run_pose_tracking"), limit=1)
    (b,) = service.execute_queued_operations(operator=uri("run_pose_tracking"), limit=1)
    assert a.error is None and b.error is None, (a.error, b.error)
    assert a.result["processed"] == 3 and b.result["processed"] == 0 and b.result["skipped"] == 3
    assert b.result["claimed"] == {}, "videos done already are not reported as held by another run"
    assert a.result["engine"] == "inprocess"
    assert len(service.list_operations(operator=uri("run_pose_tracking"))) == 2


def test_tune_tracker_operator(dataset):
    r = execute(
        "tune_tracker", dataset,
        {"dets_field": "gt_detections", "gt_field": "gt_detections", "tracker": "sort",
         "grid": "max_age=1,20; n_init=1,3", "reid": "none", "iou_threshold": 0.5},
    )  # fmt: skip
    assert r.result["combinations"] == 4
    assert r.result["best_idf1"] > 0.8
    assert r.result["best_params"]["n_init"] == 1, "n_init=3 drops the first frames of every track"
    assert "| max_age | n_init |" in r.result["table"]
    dataset.reload()
    stored = dataset.info["posetrack_tracker_tuning"]["sort"]
    assert stored["best_params"] == r.result["best_params"] and len(stored["rows"]) == 4


def test_import_and_export_operators(plugin, crowd, tmp_path):
    ds = fo.Dataset("ops-io", persistent=True)
    try:
        seqs = os.path.dirname(crowd.out_dir)
        r = execute("import_mot", ds, {"path": seqs, "gt_field": "gt_detections", "det_field": ""})
        assert r.result["sequences"] == ["CROWD-01"] and r.result["gt_boxes"] == len(crowd.mot)
        r = execute("import_posetrack", ds, {"path": crowd.posetrack_path, "keypoints_field": "gt_keypoints", "detections_field": ""})
        assert r.result["videos"] == ["CROWD-01"] and r.result["poses"] > 0
        ds.reload()
        assert len(ds) == 1 and ds.count("frames.gt_keypoints.keypoints") == r.result["poses"]

        r = execute("export_mot", ds, {"field": "gt_detections", "out_dir": str(tmp_path / "mot"), "gt": False})
        (path,) = r.result["files"]
        assert path.endswith("CROWD-01.txt")
        back = read_mot(path)
        assert len(back) == len(crowd.mot)
        np.testing.assert_allclose(back[:, 2:6], crowd.mot[np.lexsort((crowd.mot[:, 1], crowd.mot[:, 0]))][:, 2:6], atol=1e-3)

        r = execute("export_posetrack", ds, {"keypoints_field": "gt_keypoints", "out_dir": str(tmp_path / "pt")})
        (path,) = r.result["files"]
        video = read_posetrack_json(path)
        assert len(video.frames) == FRAMES and video.name == "CROWD-01"
        with pytest.raises(ExecutionError, match="exists"):
            execute("export_posetrack", ds, {"keypoints_field": "gt_keypoints", "out_dir": str(tmp_path / "pt")})
    finally:
        ds.delete()


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("run_pose_tracking", {"det_score_threshold": 1.5}, "det_score_threshold"),
        ("run_pose_tracking", {"tracker": "nope"}, "tracker"),
        ("run_pose_tracking", {"tracker_params": "{max_age: 3"}, "tracker_params"),
        ("run_pose_tracking", {"detections_field": "a", "keypoints_field": "a"}, "keypoints_field"),
        ("run_pose_tracking", {"detector": "no-such-model"}, "no-such-model"),
        ("track_persons", {"in_field": "gt_keypoints"}, "in_field"),
        ("track_persons", {}, "in_field"),
        ("smooth_poses", {"in_field": "gt_keypoints", "alpha": 0.9}, "alpha"),
        ("tune_tracker", {"dets_field": "gt_detections", "gt_field": "gt_detections", "grid": "nope"}, "grid"),
        ("tune_tracker", {"dets_field": "gt_detections", "gt_field": "gt_detections", "grid": "bogus=1,2"}, "bogus"),
        ("import_mot", {}, "path"),
        ("import_mot", {"path": "/no/such/folder"}, "/no/such/folder"),
        ("export_mot", {"field": "pred_detections", "out_dir": "/tmp/x"}, "field"),
    ],
)
def test_bad_parameters_are_named(dataset, models, name, params, message):
    if name == "run_pose_tracking":
        params = fast(models, **params)
    with pytest.raises(ExecutionError, match=message):
        execute(name, dataset, params)
    assert not dataset.has_frame_field("pred_keypoints"), "nothing was written"


def _swap_ids_after(dataset, field, frame, a=1, b=2):
    """Swaps the track ids a and b in ``field`` from ``frame`` on: two identity switches."""
    values = dataset.values(f"frames.{field}.detections.index")
    swap = {a: b, b: a}
    for s, sample in enumerate(values):
        for f, frame_ids in enumerate(sample):
            if f + 1 >= frame and frame_ids:
                values[s][f] = [swap.get(i, i) for i in frame_ids]
    dataset.set_values(f"frames.{field}.detections.index", values)


def test_evaluate_tracking_shows_the_id_switches(dataset, tmp_path):
    dataset.clone_frame_field("gt_detections", "swapped")
    _swap_ids_after(dataset, "swapped", frame=9)
    r = execute(
        "evaluate_tracking", dataset,
        {"pred_field": "swapped", "gt_field": "gt_detections", "eval_key": "trk", "detection_eval_key": "det",
         "show": "id_switch_frames"},
    )  # fmt: skip
    m = r.result["metrics"]
    assert m["idsw"] == 2 and m["fp"] == 0 and m["fn"] == 0 and m["mota"] < 1.0 and m["idf1"] < 1.0
    assert r.result["detection_metrics"]["ap50"] == pytest.approx(1.0)
    overall = r.result["per_video"][-1]  # a 3-decimal table, overall last
    assert overall["video"] == "OVERALL" and overall["idf1"] == f"{m['idf1']:.3f}" and overall["idsw"] == "2"
    assert set(dataset.list_evaluations()) >= {"trk", "det"}
    assert r.result["shown"] == "id_switch_frames"
    (set_view,) = [q for q in r.executor.to_json()["requests"] if q["operator_uri"] == "set_view"]
    frames = dataset.match_frames(fo.ViewField("trk_idsw") > 0)
    assert frames.count("frames") == 1, "both switches happen in frame 9"
    assert any(stage["_cls"].endswith("ToFrames") for stage in set_view["params"]["view"])

    dataset.clone_frame_field("gt_detections", "gt_copy")  # a field against itself is refused (issue 21, case 8)
    r = execute("evaluate_tracking", dataset, {"pred_field": "gt_copy", "gt_field": "gt_detections", "eval_key": "perfect"})
    assert r.result["metrics"]["idsw"] == 0 and r.result["metrics"]["mota"] == pytest.approx(1.0)
    assert r.result["shown"] == "none", "no ID switch to show"


def test_evaluate_poses_and_export_coco_keypoints(dataset, tmp_path):
    rng = np.random.default_rng(0)
    pts = dataset.values("frames.gt_keypoints.keypoints.points")
    jittered = [[[[[x + rng.normal(0, 0.002), y + rng.normal(0, 0.002)] for x, y in kp] for kp in f] if f else f for f in s] for s in pts]
    dataset.clone_frame_field("gt_keypoints", "noisy")
    dataset.set_values("frames.noisy.keypoints.points", jittered)
    for kind in ("coco", "posetrack"):
        r = execute("evaluate_poses", dataset, {"pred_field": "noisy", "gt_field": "gt_keypoints", "eval_key": f"pose_{kind}", "kind": kind})
        assert 0.3 < r.result["metrics"]["ap"] < 1.0, r.result["metrics"]
    assert r.result["metrics"]["pt_mota"] > 50
    # joint confidences alternate 0.2 / 0.9: the threshold drops the 0.2 half
    conf = [[[[0.2 if j % 2 else 0.9 for j in range(len(kp))] for kp in f] if f else f for f in s] for s in pts]
    dataset.set_values("frames.noisy.keypoints.confidence", conf)
    thr = execute("evaluate_poses", dataset, {"pred_field": "noisy", "gt_field": "gt_keypoints", "eval_key": "pose_thr",
                                              "kind": "posetrack", "posetrack_joint_threshold": 0.5})  # fmt: skip
    assert dataset.get_evaluation_info("pose_thr").config.posetrack_joint_threshold == 0.5
    assert 35 < thr.result["metrics"]["pt_recall"] < 0.65 * r.result["metrics"]["pt_recall"]
    dataset.clone_frame_field("gt_keypoints", "gt_kp_copy")  # a field against itself is refused (issue 21, case 8)
    perfect = execute("evaluate_poses", dataset, {"pred_field": "gt_kp_copy", "gt_field": "gt_keypoints", "eval_key": "pose_gt"})
    assert perfect.result["metrics"]["ap"] == pytest.approx(1.0)
    assert any(q["operator_uri"] == "set_view" for q in perfect.executor.to_json()["requests"])

    path = tmp_path / "coco.json"
    r = execute("export_coco_keypoints", dataset, {"field": "gt_keypoints", "path": str(path)})
    coco = json.loads(path.read_text())
    assert r.result["count"] == len(coco["annotations"]) > 0
    assert len(coco["images"]) == FRAMES and coco["categories"][0]["keypoints"][0] == "nose"
    with pytest.raises(ExecutionError, match="exists"):
        execute("export_coco_keypoints", dataset, {"field": "gt_keypoints", "path": str(path)})
    r = execute("export_coco_keypoints", dataset, {"field": "noisy", "path": str(tmp_path / "res.json"), "results": True, "gt_field": "gt_keypoints"})
    assert r.result["count"] == len(json.loads((tmp_path / "res.json").read_text()))
