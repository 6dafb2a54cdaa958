"""The whole pipeline on a real synthetic video with the real pretrained models of ../shared."""

import numpy as np
import pytest

import fiftyone as fo

from fiftyone_posetrack.eval.mot import evaluate_mot_arrays
from fiftyone_posetrack.fo.dataset import load_synth
from fiftyone_posetrack.fo.run import run, status_field
from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import VideoReader


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    return render_crowd(tmp_path_factory.mktemp("crowd"), people=5, frames=30, width=480, height=272, seed=3)


@pytest.fixture(scope="module")
def config(shared_dir):
    return PipelineConfig(models_dir=str(shared_dir / "models"), reid=None, batch_size=4)


@pytest.fixture(scope="module")
def pipeline(config):
    return PoseTrackingPipeline(config)


@pytest.fixture()
def dataset(crowd, request):
    ds = load_synth(crowd.out_dir, f"pipe-{request.node.name}", overwrite=True)
    yield ds
    ds.delete()


def test_streaming_pipeline_tracks_and_poses_people(crowd, pipeline):
    with VideoReader(crowd.video_path) as reader:
        results = list(pipeline.process(reader.batches(4)))
    assert [r.frame_number for r in results] == list(range(1, 31))
    for r in results:
        assert len(r.poses) == len(r.tracks)
        np.testing.assert_array_equal(r.poses.track_ids, r.tracks.track_ids)
    pred = np.concatenate(
        [
            np.column_stack([np.full(len(r.tracks), r.frame_number), r.tracks.track_ids,
                             r.tracks.boxes[:, :2], r.tracks.boxes[:, 2:] - r.tracks.boxes[:, :2]])
            for r in results if len(r.tracks)
        ]
    )  # fmt: skip
    metrics = evaluate_mot_arrays(crowd.mot, pred)["OVERALL"]
    assert metrics["recall"] > 0.5, metrics
    assert metrics["precision"] > 0.7, metrics
    assert metrics["idsw"] <= 3, metrics
    assert {"detection", "tracking", "pose", "box_smoothing"} <= set(pipeline.timings)
    # the defaults: no pose smoothing (it did not earn its place on real footage), MoveNet's test-time flip
    assert "pose_smoothing" not in pipeline.timings and pipeline.pose_estimator.flip_test is True


def test_run_writes_labels_sharing_index_and_resumes(dataset, pipeline, config):
    summary = run(dataset, pipeline=pipeline, progress=False)
    assert len(summary.processed) == 1 and summary.frames == 30
    sample = dataset.first()
    assert sample[status_field(config)] == "done"
    for frame in sample.frames.values():
        dets, kps = frame.pred_detections, frame.pred_keypoints
        assert dets is not None and kps is not None
        assert [d.index for d in dets.detections] == [k.index for k in kps.keypoints]
        for kp in kps.keypoints:
            assert len(kp.points) == 17 and len(kp.confidence) == 17
    assert dataset.count("frames.gt_detections.detections") > 0, "ground truth untouched"
    before = dataset.count("frames.pred_detections.detections")
    again = run(dataset, pipeline=pipeline, progress=False)
    assert again.skipped == [sample.id] and again.processed == []
    assert dataset.count("frames.pred_detections.detections") == before


class _FailingDetector:
    """A real detector that raises at a given frame, as a crashing model would."""

    def __init__(self, detector, fail_after: int):
        self.detector, self.fail_after, self.seen = detector, fail_after, 0

    def detect(self, frames):
        self.seen += len(frames)
        if self.seen > self.fail_after:
            raise BadInputError("detector crashed (injected fault)")
        return self.detector.detect(frames)


def test_failure_mid_video_leaves_no_half_labels(dataset, pipeline, config):
    crashing = PoseTrackingPipeline(
        config, detector=_FailingDetector(pipeline.detector, 12), pose_estimator=pipeline.pose_estimator, embedder=None
    )
    with pytest.raises(BadInputError, match="injected fault"):
        run(dataset, pipeline=crashing, progress=False, flush_frames=4)
    sample = dataset.first()
    assert sample[status_field(config)] == "failed"
    assert dataset.count("frames.pred_detections") == 0, "partial labels were cleared"
    assert dataset.count("frames.gt_detections.detections") > 0
    summary = run(dataset, pipeline=pipeline, progress=False)
    assert summary.processed == [sample.id]
    assert dataset.count("frames.pred_detections") == 30


def test_frame_count_mismatch_is_refused_before_work(dataset, pipeline):
    sample = dataset.first()
    sample.metadata.total_frame_count = 31
    sample.save()
    with pytest.raises(BadInputError, match="has 30 frames but the metadata says 31"):
        run(dataset, pipeline=pipeline, progress=False)
    assert not dataset.has_frame_field("pred_detections") or dataset.count("frames.pred_detections") == 0


def test_wrong_output_field_type_is_refused(dataset, pipeline):
    dataset.add_frame_field("pred_keypoints", fo.StringField)
    with pytest.raises(BadInputError, match="'pred_keypoints' exists with type"):
        run(dataset, pipeline=pipeline, progress=False)


def test_config_validation_names_the_bad_value():
    with pytest.raises(BadInputError, match="config.box_alpha"):
        PipelineConfig(box_alpha=1.5)
    with pytest.raises(BadInputError, match="config.pose_smoothing"):
        PipelineConfig(pose_smoothing="kalman")
    with pytest.raises(BadInputError, match="config.tracker: expected one of .bytetrack., .deepsort., .ocsort., .sort."):
        PipelineConfig(tracker="sortish")
    with pytest.raises(BadInputError, match="unknown parameter"):
        PipelineConfig(tracker_params={"max_agee": 3})
    with pytest.raises(BadInputError, match="unknown config key"):
        PipelineConfig.from_dict({"detectr": "x"})
    c = PipelineConfig(tracker_params={"max_age": 5})
    assert PipelineConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "changes",
    [
        {"detector2": "yolox-nano", "tracker": "bytetrack", "pose_smoothing": "one-euro"},
        {"flow_method": "dis", "box_max_gap": 3, "tracker": "sort", "pose_smoothing": "flow", "pose_flip": False},
    ],
)
def test_pipeline_variants(crowd, config, changes):
    pipeline = PoseTrackingPipeline(config.replace(**changes))
    with VideoReader(crowd.video_path, stop=10) as reader:
        results = list(pipeline.process(reader.batches(4), fps=reader.fps))
    assert [r.frame_number for r in results] == list(range(1, 11))
    assert sum(len(r.tracks) for r in results) > 10
    for r in results:
        np.testing.assert_array_equal(r.poses.track_ids, r.tracks.track_ids)
        assert (r.tracks.boxes[:, 2:] <= [480, 272]).all() and (r.tracks.boxes >= 0).all()


def test_pose2_needs_two_mmpose_models():
    with pytest.raises(BadInputError, match="config.pose2"):
        PipelineConfig(pose2="movenet-lightning-int8")


def test_claims_are_exclusive_and_stale_claims_expire(dataset, config):
    import time

    from fiftyone_posetrack.fo.jobs import claim_video, status_fields

    sid = dataset.first().id
    status, claimed = status_fields(config.detections_field)
    dataset.add_sample_field(status, fo.StringField)
    dataset.add_sample_field(claimed, fo.FloatField)
    field = config.detections_field
    start = time.time()
    assert claim_video(dataset, sid, field, start)
    assert not claim_video(dataset, sid, field, start), "a running video is not claimed twice"
    time.sleep(0.05)
    assert claim_video(dataset, sid, field, start, stale_after=0.01), "an abandoned claim expires"
    dataset._sample_collection.update_one({"_id": dataset.first()._id}, {"$set": {status: "done"}})
    assert not claim_video(dataset, sid, field, time.time(), stale_after=0.01)
    assert claim_video(dataset, sid, field, time.time() + 1, overwrite=True)


def test_the_tracker_keeps_every_box_the_detector_threshold_keeps(pipeline, config):
    """DeepSORT's own min_score (0.3) never drops boxes above a lowered det_score_threshold;
    a min_score given in tracker_params wins."""
    from fiftyone_posetrack.pipeline import PoseTrackingPipeline

    models = dict(detector=pipeline.detector, pose_estimator=pipeline.pose_estimator, embedder=None)
    low = PoseTrackingPipeline(config.replace(tracker="deepsort", det_score_threshold=0.1), **models)
    assert low.tracker.min_score == pytest.approx(0.1)
    given = PoseTrackingPipeline(
        config.replace(tracker="deepsort", det_score_threshold=0.1, tracker_params={"min_score": 0.5}), **models
    )
    assert given.tracker.min_score == pytest.approx(0.5)


def test_pose_flip_default_is_ignored_by_models_without_it_and_refused_when_asked_for():
    """pose_flip (on by default, MoveNet's) leaves a pose model without a flip alone, unless the user asks."""
    from fiftyone_posetrack.pipeline.core import build_pose_estimator
    from fiftyone_posetrack.pose.base import PoseEstimator, register_pose_estimator

    class NoFlip(PoseEstimator):
        def __init__(self, path, **kwargs):
            super().__init__("cpu")

        def _estimate_many(self, frames, frame_index, boxes):
            return np.zeros((len(boxes), 17, 2)), np.zeros((len(boxes), 17))

    register_pose_estimator("noflip-test", NoFlip)
    assert isinstance(build_pose_estimator(PipelineConfig(pose="noflip-test:/m/x")), NoFlip)
    with pytest.raises(BadInputError, match="pose_flip: the pose model 'noflip-test:/m/x' has no test-time flip"):
        build_pose_estimator(PipelineConfig(pose="noflip-test:/m/x", pose_flip=True))
    assert PipelineConfig().pose_flip is True
