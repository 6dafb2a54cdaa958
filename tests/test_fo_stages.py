"""The pipeline's stages one at a time on a real dataset with the real models of ../shared."""

import numpy as np
import pytest


from fiftyone_posetrack.detection import make_detector
from fiftyone_posetrack.eval.mot import evaluate_mot_arrays
from fiftyone_posetrack.fo.dataset import load_synth
from fiftyone_posetrack.fo.labels import sample_to_mot
from fiftyone_posetrack.fo.stages import detect_persons, estimate_poses, smooth_poses, track_detections
from fiftyone_posetrack.models import resolve_model_spec
from fiftyone_posetrack.pose.base import make_pose_estimator
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    return render_crowd(tmp_path_factory.mktemp("stages"), people=6, frames=24, width=480, height=272, seed=5)


@pytest.fixture()
def dataset(crowd, request):
    ds = load_synth(crowd.out_dir, f"stages-{request.node.name}", overwrite=True)
    yield ds
    ds.delete()


def test_stages_chain_into_tracked_skeletons(dataset, shared_dir):
    models = str(shared_dir / "models")
    detector = make_detector(resolve_model_spec("rtmdet-nano-person", models))
    pose = make_pose_estimator(resolve_model_spec("movenet-lightning-int8", models))
    detect_persons(dataset, detector, "raw", progress=False)
    assert dataset.count("frames.raw.detections") > 24
    assert dataset.distinct("frames.raw.detections.index") == []
    track_detections(dataset, "raw", "tracked", tracker="bytetrack", progress=False)
    assert dataset.count("frames.tracked.detections") > 0
    estimate_poses(dataset, pose, "tracked", "kps", progress=False)
    smooth_poses(dataset, "kps", "kps_smooth", progress=False)
    frame = dataset.first().frames[12]
    ids = [d.index for d in frame.tracked.detections]
    assert ids and ids == [k.index for k in frame.kps.keypoints] == [k.index for k in frame.kps_smooth.keypoints]
    a = np.array([k.points for k in frame.kps.keypoints], dtype=float)
    b = np.array([k.points for k in frame.kps_smooth.keypoints], dtype=float)
    assert np.isfinite(a).sum() == np.isfinite(b).sum()
    assert 0 < np.nanmean(np.abs(a - b)) < 0.02, "smoothing moves joints a little"


def test_tracking_ground_truth_boxes_recovers_identities(dataset):
    dataset.clone_frame_field("gt_detections", "boxes")
    # strip the ids: the tracker must find them again
    dataset.set_values("frames.boxes.detections.index", [[[None] * len(d or []) for d in s] for s in dataset.values("frames.boxes.detections")])
    assert dataset.distinct("frames.boxes.detections.index") == []
    track_detections(dataset, "boxes", "tracked", tracker="deepsort", tracker_params={"n_init": 1}, progress=False)
    sample = dataset.first()
    m = evaluate_mot_arrays(sample_to_mot(sample, "gt_detections"), sample_to_mot(sample, "tracked"))["OVERALL"]
    assert m["idf1"] > 0.8 and m["mota"] > 0.8, m
    assert dataset.distinct("frames.boxes.detections.index") == [], "input untouched"

    # no tracker named: the pipeline's default tracker with its default parameters (recorded)
    from fiftyone_posetrack.fo.runs import get_run
    from fiftyone_posetrack.pipeline.options import OPTIONS

    summary = track_detections(dataset, "boxes", "tracked_default", progress=False)
    options = get_run(dataset, summary.run_key)["options"]
    assert options["tracker"] == OPTIONS["tracker"].default
    assert options["tracker_params"] == OPTIONS["tracker_params"].default
    assert dataset.count("frames.tracked_default.detections") > 0


def test_inputs_are_checked_and_never_overwritten_silently(dataset):
    with pytest.raises(BadInputError, match="does not exist"):
        track_detections(dataset, "nope", progress=False)
    with pytest.raises(BadInputError, match="holds Keypoints, expected Detections"):
        track_detections(dataset, "gt_keypoints", progress=False)
    with pytest.raises(BadInputError, match="overwrite_input"):
        track_detections(dataset, "gt_detections", "gt_detections", progress=False)
    with pytest.raises(BadInputError, match="unknown tracker"):
        track_detections(dataset, "gt_detections", tracker="nope", progress=False)
    assert dataset.count("frames.gt_detections.detections") > 0


def test_in_place_smoothing_when_asked(dataset):
    before = dataset.values("frames.gt_keypoints.keypoints.points")[0]
    smooth_poses(dataset, "gt_keypoints", "smoothed_copy", method="one-euro", progress=False)
    copy = dataset.values("frames.smoothed_copy.keypoints.points")[0]
    smooth_poses(dataset, "gt_keypoints", "gt_keypoints", method="one-euro", overwrite_input=True, progress=False)
    after = dataset.values("frames.gt_keypoints.keypoints.points")[0]
    assert [len(f) for f in before] == [len(f) for f in after]
    a = np.array([p for f in before for p in f], dtype=float)
    b = np.array([p for f in after for p in f], dtype=float)
    assert not np.allclose(a, b, equal_nan=True), "the field was replaced by its smoothed version"
    # the input is read unchanged while its replacement is computed (written aside, swapped in at the end)
    c = np.array([p for f in copy for p in f], dtype=float)
    assert np.array_equal(b, c, equal_nan=True), "in place == into a new field"
    assert not dataset.has_frame_field("posetrack_input_gt_keypoints")
