"""Bad input, case by case: a clear error naming the problem (or a documented handling), existing labels untouched.

Every case compares the dataset's sample and frame documents before and after
(:func:`snapshot`): a refused input changes nothing; a video that fails alone
gets status ``"failed"`` and empty output fields, and nothing else changes.
``docs/robustness.md`` tabulates these cases with the test that covers each.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re
import shutil
import time
import warnings

import numpy as np
import pytest

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone.operators.executor import ExecutionError

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.fo.dataset import add_videos, load_synth
from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin
from fiftyone_posetrack.fo.run import run
from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError, FrameDetections
from fiftyone_posetrack.video import VideoReader
from videos import make_video

REPO = pathlib.Path(__file__).resolve().parents[1]
FRAMES = 40
NEW = {"detections_field": "new_det", "keypoints_field": "new_kps"}  # outputs of the runs that fail


# --------------------------------------------------------------------------- helpers


def snapshot(dataset, ignore=()) -> tuple[list[bytes], list[bytes]]:
    """Every sample and frame document (BSON, so NaN compares equal), minus ``ignore`` fields.

    Frame documents left with only their structure (number, ids) are skipped:
    a failed job may leave empty frame documents, never labels.
    """
    import bson

    drop = {"last_modified_at", "created_at", *ignore}
    structural = {"_id", "_sample_id", "_dataset_id", "frame_number"}

    def clean(doc):
        return {k: v for k, v in doc.items() if k not in drop}

    samples = sorted(bson.encode(clean(d)) for d in dataset._sample_collection.find())
    frames = sorted(bson.encode(c) for d in dataset._frame_collection.find() if set(c := clean(d)) - structural)
    return samples, frames


def job_fields(config_fields: dict) -> tuple[str, ...]:
    det, kps = config_fields["detections_field"], config_fields["keypoints_field"]
    return det, kps, f"{det}_status", f"{det}_claimed_at", f"{det}_run", f"{det}_claim", f"{kps}_claim"


def assert_untouched(dataset, before, new=NEW) -> None:
    """Existing documents are unchanged and the job's own outputs hold no label."""
    assert snapshot(dataset, job_fields(new)) == before, "existing labels or fields changed"
    for field in (new["detections_field"], new["keypoints_field"]):
        if dataset.has_frame_field(field):
            assert dataset.count(f"frames.{field}") == 0, f"{field} holds labels of a failed run"


def status(dataset, sample_id: str, field: str = "new_det") -> str | None:
    from bson import ObjectId

    doc = dataset._sample_collection.find_one({"_id": ObjectId(sample_id)}) or {}
    return doc.get(f"{field}_status")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def models(shared_dir) -> str:
    return str(shared_dir / "models")


@pytest.fixture(scope="module")
def config(models) -> PipelineConfig:
    return PipelineConfig(models_dir=models, reid=None)


@pytest.fixture(scope="module")
def pipeline(config) -> PoseTrackingPipeline:
    return PoseTrackingPipeline(config)


def pipe(pipeline, detector=None, pose_estimator=None, **changes) -> PoseTrackingPipeline:
    """A pipeline sharing the loaded models, with another config (and possibly wrapped models)."""
    return PoseTrackingPipeline(
        pipeline.config.replace(**changes),
        detector=detector or pipeline.detector,
        pose_estimator=pose_estimator or pipeline.pose_estimator,
        embedder=None,
    )


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    return render_crowd(tmp_path_factory.mktemp("bad-crowd"), people=4, frames=FRAMES, width=320, height=192, seed=3)


@pytest.fixture(scope="module")
def base(crowd, pipeline):
    """A synthetic video with ground truth and a finished pose-tracking run: the labels to protect."""
    dataset = load_synth(crowd.out_dir, "bad-input-base", overwrite=True)
    run(dataset, pipeline=pipeline, progress=False)
    yield dataset
    dataset.delete()


@pytest.fixture()
def dataset(base, request):
    ds = base.clone(f"bad-{request.node.name}"[:60], persistent=True)
    yield ds
    ds.delete()


@pytest.fixture(scope="module")
def plugin(fo_home):
    return install_plugin(fo.config.plugins_dir)


def execute(name: str, dataset, params: dict):
    return foo.execute_operator(
        f"{PLUGIN_NAME}/{name}", ctx={"dataset": dataset.name, "params": params, "request_delegation": False}
    )


def fast_params(models, **extra) -> dict:
    return {"detector": "rtmdet-nano-person", "pose": "movenet-lightning-int8", "reid": "none", "models_dir": models, **extra}


# --------------------------------------------------------------------------- video files


def _garbage(path):
    path.write_bytes(os.urandom(4096))


def _zero_bytes(path):
    path.write_bytes(b"")


def _cut_moov(path):  # an mp4 whose index (moov atom, at the end) is cut off
    make_video(path, frames=20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _no_video_stream(path):  # what ffmpeg writes for zero frames: a container without a video stream
    import subprocess

    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=gray:s=160x96:r=10",
         "-frames:v", "0", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    "make, message",
    [
        (_garbage, "cannot open video (unreadable or corrupt file)"),
        (_zero_bytes, "video file is empty (0 bytes)"),
        (_cut_moov, "cannot open video (unreadable or corrupt file)"),
        (_no_video_stream, "cannot open video (unreadable or corrupt file)"),
    ],
    ids=["garbage", "zero-bytes", "truncated-index", "zero-frames"],
)
def test_unreadable_file_is_refused_before_the_dataset_changes(dataset, make, message, tmp_path, capsys):
    path = tmp_path / "bad.mp4"
    make(path)
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=re.escape(message) + ".*bad.mp4"):
        add_videos(dataset, [path])
    assert main(["run", str(path), "--dataset", dataset.name]) == 2
    assert message in capsys.readouterr().err
    assert snapshot(dataset) == before and len(dataset) == 1
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        add_videos(dataset, [tmp_path / "missing.mp4"])


def _zero_mdat(path):  # header intact, frame data zeroed: nothing decodes
    data = bytearray(path.read_bytes())
    at = data.find(b"mdat") + 4
    data[at:] = bytes(len(data) - at)
    path.write_bytes(bytes(data))


def _cut_data(path):  # index (at the front: faststart) intact, frame data cut: fewer frames decode
    data = path.read_bytes()
    at = data.find(b"mdat")
    path.write_bytes(data[: at + (len(data) - at) // 2])


def test_videos_broken_after_import_fail_alone(crowd, pipeline, tmp_path):
    """Files deleted, corrupted, cut or out of step with their metadata after being added."""
    kinds = ["missing", "garbage", "undecodable", "cut", "meta30", "meta50", "nometa"]
    copies = []
    for kind in kinds:
        shutil.copy(crowd.video_path, tmp_path / f"{kind}.mp4")
        copies.append(tmp_path / f"{kind}.mp4")
    dataset = load_synth(crowd.out_dir, "bad-broken-files", overwrite=True)
    try:
        good = dataset.first().id
        add_videos(dataset, copies)
        ids = {os.path.basename(f)[:-4]: i for f, i in zip(*dataset.values(["filepath", "id"]))}
        os.remove(tmp_path / "missing.mp4")
        _garbage(tmp_path / "garbage.mp4")
        _zero_mdat(tmp_path / "undecodable.mp4")
        _cut_data(tmp_path / "cut.mp4")
        for kind, count in (("meta30", 30), ("meta50", 50)):
            sample = dataset[ids[kind]]
            sample.metadata.total_frame_count = count
            sample.save()
        sample = dataset[ids["nometa"]]
        sample.metadata = None
        sample.save()
        before = snapshot(dataset, job_fields(NEW))

        with pytest.raises(BadInputError, match=r"pose tracking: 7 video\(s\) failed") as info:
            run(dataset, pipeline=pipe(pipeline, **NEW), flush_frames=4, progress=False)
        message = str(info.value)
        expected = {
            "missing": "video not found: [^;]*missing.mp4",
            "garbage": r"cannot open video \(unreadable or corrupt file\): [^;]*garbage.mp4",
            "undecodable": "video has no decodable frame: [^;]*undecodable.mp4",
            "cut": rf"cut.mp4: decoded \d+ frames but the metadata says {FRAMES}",
            "meta30": f"meta30.mp4: the file has {FRAMES} frames but the metadata says 30",
            "meta50": f"meta50.mp4: the file has {FRAMES} frames but the metadata says 50",
            "nometa": r"nometa.mp4: no video metadata; run dataset.compute_metadata\(\)",
        }
        for kind, pattern in expected.items():
            assert re.search(rf"{ids[kind]}: [^;]*{pattern}", message), (kind, message)
            assert status(dataset, ids[kind]) == "failed", kind
        assert status(dataset, good) == "done"
        assert dataset.select(good).count("frames.new_det") == FRAMES, "the good video was processed"
        assert snapshot(dataset, job_fields(NEW)) == before
        assert dataset.exclude(good).count("frames.new_det") == 0, "no half-written labels (the cut video wrote some)"
    finally:
        dataset.delete()


# --------------------------------------------------------------------------- frame contents


def test_frames_without_people_get_empty_labels(pipeline, tmp_path):
    ds = fo.Dataset("bad-empty-frames")
    try:
        add_videos(ds, [make_video(tmp_path / "nobody.mp4", frames=20)])
        summary = run(ds, pipeline=pipeline, progress=False)
        assert summary.frames == 20 and ds.first()["pred_detections_status"] == "done"
        dets, kps = ds.values("frames.pred_detections")[0], ds.values("frames.pred_keypoints")[0]
        assert all(d is not None and len(d.detections) == 0 for d in dets), "an empty frame is labelled empty, not left unset"
        assert all(k is not None and len(k.keypoints) == 0 for k in kps)
    finally:
        ds.delete()


class TruthDetector:
    """Detections = the synthetic ground-truth boxes (the nano detector sees few of 200 small people)."""

    def __init__(self, boxes: np.ndarray):
        self.boxes, self.next = boxes, 0

    def detect(self, frames):
        out = []
        for _ in frames:
            b = self.boxes[self.next]
            ok = np.isfinite(b[:, 0])
            out.append(FrameDetections(b[ok], np.full(int(ok.sum()), 0.9)))
            self.next += 1
        return out


@pytest.mark.slow
def test_two_hundred_people_in_a_frame(pipeline, tmp_path):
    frames = 5  # DeepSORT confirms tracks on their third frame
    crowd = render_crowd(tmp_path / "crowd", people=270, frames=frames, width=1280, height=720, seed=5)
    visible = np.isfinite(crowd.boxes[..., 0]).sum(axis=1)
    assert visible.max() >= 200, visible
    ds = fo.Dataset("bad-200-people")
    try:
        add_videos(ds, [crowd.video_path])
        crowded = pipe(pipeline, detector=TruthDetector(crowd.boxes))
        start = time.perf_counter()
        run(ds, pipeline=crowded, progress=False)
        seconds = time.perf_counter() - start
        boxes = ds.values("frames.pred_detections.detections.index")[0]
        poses = ds.values("frames.pred_keypoints.keypoints.index")[0]
        counts = [len(b) for b in boxes]
        print(f"\n{visible.max()} people in view: {seconds / frames * 1000:.0f} ms/frame for tracking, "
              f"pose, smoothing and writing ({counts} tracked boxes per frame); stages (s): "
              f"{ {k: round(v, 2) for k, v in crowded.timings.items()} }")  # fmt: skip
        assert ds.first()["pred_detections_status"] == "done"
        assert max(counts) >= 0.9 * visible[-1], "confirmed tracks for nearly everyone in view"
        assert all(len(set(b)) == len(b) for b in boxes), "one box per track id"
        assert boxes == poses, "a skeleton for every box, same index"

        real = pipe(pipeline)
        start = time.perf_counter()
        with VideoReader(crowd.video_path) as reader:
            n = sum(len(r.detections) for r in real.process(reader.batches(8)))
        print(f"the real detector finds {n / frames:.0f} of them per frame; whole pipeline "
              f"{(time.perf_counter() - start) / frames * 1000:.0f} ms/frame")  # fmt: skip
    finally:
        ds.delete()


# --------------------------------------------------------------------------- model outputs


class CorruptDetector:
    """The real detector, with its output corrupted as a broken model's would be.

    Per frame: a box wholly outside the frame, one partly outside, an absurdly
    large one, a zero-width one, a NaN box and a NaN score (put into the arrays
    after construction, as a backend filling its own arrays could), and the best
    score pushed above 1.
    """

    def __init__(self, detector):
        self.detector = detector

    def detect(self, frames):
        out = []
        for frame, dets in zip(frames, self.detector.detect(frames)):
            h, w = frame.shape[:2]
            extra = [[w + 10, 10, w + 60, 90], [-40, -30, 60, 100], [-1e6, -1e6, 1e6, 1e6], [5, 5, 5, 80]]
            bad = FrameDetections(np.vstack([dets.boxes, extra]), np.append(dets.scores, [0.9] * 4))
            bad.boxes = np.vstack([bad.boxes, [[np.nan, 10, 50, np.nan], [10, 10, 60, 90]]])
            bad.scores = np.append(bad.scores, [0.9, np.nan])
            if len(dets):
                bad.scores[0] = 1.7
            out.append(bad)
        return out


def test_out_of_frame_and_nan_detections_are_clipped_or_dropped(dataset, pipeline):
    before = snapshot(dataset, job_fields(NEW))
    broken = pipe(pipeline, detector=CorruptDetector(pipeline.detector), **NEW)
    run(dataset, pipeline=broken, progress=False)
    assert status(dataset, dataset.first().id) == "done"
    boxes = np.array([b for f in dataset.values("frames.new_det.detections.bounding_box")[0] for b in f])
    conf = np.array([c for f in dataset.values("frames.new_det.detections.confidence")[0] for c in f])
    assert len(boxes) > FRAMES
    assert np.isfinite(boxes).all() and (boxes >= 0).all()
    assert (boxes[:, 0] + boxes[:, 2] <= 1 + 1e-9).all() and (boxes[:, 1] + boxes[:, 3] <= 1 + 1e-9).all()
    assert np.isfinite(conf).all() and conf.min() >= 0 and conf.max() <= 1
    assert broken.dropped_boxes >= 4 * FRAMES, "outside, zero-width, NaN box and NaN score: dropped"
    assert snapshot(dataset, job_fields(NEW)) == before


class NaNDetector:
    """A custom detector that starts building NaN boxes at frame 13."""

    def __init__(self, detector):
        self.detector, self.seen = detector, 0

    def detect(self, frames):
        out = []
        for dets in self.detector.detect(frames):
            self.seen += 1
            boxes = dets.boxes.copy()
            if self.seen > 12 and len(boxes):
                boxes[0, 2] = np.nan
            out.append(FrameDetections(boxes, dets.scores))
        return out


def test_detector_building_nan_boxes_fails_its_video_cleanly(dataset, pipeline):
    before = snapshot(dataset, job_fields(NEW))
    broken = pipe(pipeline, detector=NaNDetector(pipeline.detector), **NEW)
    with pytest.raises(BadInputError, match=r"detections: boxes \[0\] contain NaN or inf"):
        run(dataset, pipeline=broken, progress=False, flush_frames=4)
    assert status(dataset, dataset.first().id) == "failed"
    assert_untouched(dataset, before)


class CorruptPose:
    """The real pose model; the first person of every frame gets broken joints and scores."""

    def __init__(self, pose):
        self.pose = pose

    def estimate_batch(self, frames, boxes):
        out = []
        for kp, sc in self.pose.estimate_batch(frames, boxes):
            kp, sc = kp.copy(), sc.copy()
            if len(kp):
                kp[0, :5] = [[np.nan, 5], [np.inf, 3], [1e9, -1e9], [-5, -5], [330, 200]]
                sc[0, 5:8] = [np.nan, -2, 9]
            out.append((kp, sc))
        return out


def test_nan_and_out_of_frame_joints_become_missing_or_clipped(dataset, pipeline, crowd):
    before = snapshot(dataset, job_fields(NEW))
    broken = pipe(pipeline, pose_estimator=CorruptPose(pipeline.pose_estimator), pose_smoothing="none", **NEW)
    run(dataset, pipeline=broken, progress=False)
    people = [k.keypoints for k in dataset.values("frames.new_kps")[0] if k is not None and k.keypoints]
    assert len(people) > FRAMES // 2
    for first in (p[0] for p in people):
        pts = np.array(first.points, dtype=float)
        assert np.isnan(pts[:3]).all(), "NaN, inf and far-away joints are stored as missing"
        np.testing.assert_allclose(pts[3], [0, 0])  # 5 px outside: clipped to the frame
        np.testing.assert_allclose(pts[4], [319 / 320, 191 / 192])
        assert first.confidence[5:8] == [0.0, 0.0, 1.0]
    assert snapshot(dataset, job_fields(NEW)) == before
    # with the optical-flow smoothing every joint still lies in the frame
    smoothed = pipe(pipeline, pose_estimator=CorruptPose(pipeline.pose_estimator))
    with VideoReader(crowd.video_path, stop=12) as reader:
        kps = np.concatenate([r.poses.keypoints for r in smoothed.process(reader.batches(4))])
    ok = np.isfinite(kps).all(axis=-1)
    assert ok.any() and (kps[ok] >= 0).all() and (kps[ok] <= [319, 191]).all()


# --------------------------------------------------------------------------- field types


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"keypoints_field": "gt_detections"}, "frame field 'gt_detections' exists with type Detections, not Keypoints"),
        ({"detections_field": "gt_keypoints"}, "frame field 'gt_keypoints' exists with type Keypoints, not Detections"),
    ],
    ids=["keypoints-into-Detections-field", "boxes-into-Keypoints-field"],
)
def test_output_field_of_another_type_is_refused(dataset, pipeline, changes, message):
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=re.escape(message)):
        run(dataset, pipeline=pipe(pipeline, **changes), progress=False)
    assert snapshot(dataset) == before


@pytest.mark.parametrize(
    "changes, foreign",
    [({"detections_field": "gt_detections"}, "gt_detections"), ({**NEW, "keypoints_field": "gt_keypoints"}, "gt_keypoints")],
    ids=["gt_detections", "gt_keypoints"],
)
def test_existing_field_another_job_wrote_is_not_overwritten(dataset, pipeline, changes, foreign):
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match=rf"frame field '{foreign}' holds labels that pose tracking into '\w+' did not write .*overwrite_fields=\['{foreign}'\]"):
        run(dataset, pipeline=pipe(pipeline, **changes), progress=False)
    assert snapshot(dataset) == before


def test_status_field_of_another_type_is_refused(dataset, pipeline):
    dataset.add_sample_field("new_det_status", fo.IntField)
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match="sample field 'new_det_status' exists and is not a StringField"):
        run(dataset, pipeline=pipe(pipeline, **NEW), progress=False)
    assert snapshot(dataset) == before


def test_input_field_of_wrong_type_is_refused(dataset, pipeline):
    from fiftyone_posetrack.fo.stages import estimate_poses, smooth_poses, track_detections

    before = snapshot(dataset)
    with pytest.raises(BadInputError, match="frame field 'gt_keypoints' holds Keypoints, expected Detections"):
        track_detections(dataset, "gt_keypoints", "out")
    with pytest.raises(BadInputError, match="frame field 'nope' does not exist; frame fields: .*gt_detections"):
        track_detections(dataset, "nope", "out")
    with pytest.raises(BadInputError, match="holds Keypoints, expected Detections"):
        estimate_poses(dataset, pipeline.pose_estimator, "gt_keypoints", "out")
    with pytest.raises(BadInputError, match="frame field 'gt_detections' holds Detections, expected Keypoints"):
        smooth_poses(dataset, "gt_detections", "out")
    with pytest.raises(BadInputError, match="the output field 'pred_keypoints' is the input field"):
        smooth_poses(dataset, "pred_keypoints", "pred_keypoints")
    assert snapshot(dataset) == before


def test_image_collection_is_refused(pipeline, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((32, 32, 3), np.uint8))
    ds = fo.Dataset("bad-images")
    try:
        ds.add_sample(fo.Sample(filepath=str(tmp_path / "a.png")))
        with pytest.raises(BadInputError, match="pose tracking needs a video collection, got media type 'image'"):
            run(ds, pipeline=pipeline, progress=False)
    finally:
        ds.delete()


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"detector": "rtmdet-nano"}, BadInputError, r"unknown model 'rtmdet-nano'; known models: \[.*'rtmdet-nano-person'"),
        ({"pose": "movenet"}, BadInputError, r"unknown model 'movenet'; known models: \[.*'movenet-lightning-int8'"),
        ({"detector": "rtmdet-onnx:/no/such/det.onnx"}, FileNotFoundError, "/no/such/det.onnx"),
        ({"pose": "nosuchbackend:/m.onnx"}, BadInputError, "nosuchbackend"),
        ({"reid": "osnet"}, BadInputError, "unknown embedder 'osnet'"),
        ({"reid": "osnet_x1_0"}, BadInputError, "needs a checkpoint file"),
    ],
    ids=["detector-name", "pose-name", "missing-onnx", "unknown-backend", "unknown-reid", "reid-without-weights"],
)
def test_unknown_or_missing_models_are_named(models, changes, error, message):
    with pytest.raises(error, match=message):
        PoseTrackingPipeline(PipelineConfig(models_dir=models, reid=None).replace(**changes))


def test_unknown_model_via_cli_and_operator(dataset, models, plugin, capsys):
    before = snapshot(dataset)
    assert main(["run", "--dataset", dataset.name, "--models-dir", models, "--detector", "rtmdet-nano", "--overwrite"]) == 2
    assert "unknown model 'rtmdet-nano'; known models" in capsys.readouterr().err
    with pytest.raises(ExecutionError, match="parameter 'pose': unknown model 'movenet'; known models"):
        execute("run_pose_tracking", dataset, fast_params(models, pose="movenet", overwrite=True))
    assert snapshot(dataset) == before


def test_reid_checkpoint_of_another_architecture_is_refused(tmp_path):
    import torch

    from fiftyone_posetrack.reid import make_embedder
    from fiftyone_posetrack.reid.torch_reid import build_reid_model

    path = tmp_path / "osnet_x0_25.pth"
    torch.save(build_reid_model("osnet_x0_25").state_dict(), path)
    with pytest.raises(BadInputError, match=r"osnet_x0_25.pth' \(osnet_x0_5\) does not match the architecture.*shape mismatches"):
        make_embedder("osnet_x0_5", weights=path, device="cpu")
    with pytest.raises(BadInputError, match=r"\(resnet50\) does not match the architecture.*missing keys"):
        make_embedder("resnet50", weights=path, device="cpu")


@pytest.mark.parametrize(
    "spec",
    ["mmdet:rtmdet_tiny_8xb32-300e_coco.py", "mmpose:td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"],
    ids=["mmdet", "mmpose"],
)
def test_openmmlab_checkpoint_of_another_model_is_refused(spec, tmp_path):
    backend, config = spec.split(":")
    pytest.importorskip(backend, reason=f"{backend} is not installed here (OpenMMLab extra: bash scripts/setup_mm.sh .venv)")
    import torch

    from fiftyone_posetrack.detection import make_detector
    from fiftyone_posetrack.pose.base import make_pose_estimator

    ckpt = tmp_path / "other.pth"
    torch.save({"state_dict": {"head.other.weight": torch.zeros(3, 3)}}, ckpt)
    make = make_detector if backend == "mmdet" else make_pose_estimator
    with pytest.raises(BadInputError, match=r"checkpoint .*other.pth does not match the config's model .*unexpected: head.other.weight"):
        make(f"{spec}:{ckpt}", device="cpu")


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"det_score_threshold": -0.1}, "config.det_score_threshold: expected a finite number >= 0 and <= 1, got -0.1"),
        ({"keypoint_threshold": -1.0}, "config.keypoint_threshold: expected a finite number >= 0 and <= 1, got -1.0"),
        ({"det_score_threshold": float("nan")}, "config.det_score_threshold"),
        ({"batch_size": 0}, "config.batch_size: expected an integer >= 1 and <= 1024, got 0"),
        ({"batch_size": 2.5}, "config.batch_size: expected an integer >= 1 and <= 1024, got 2.5"),
        ({"device": "gpu"}, "config.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        ({"device": "cuda:x"}, "config.device"),
        ({"tracker_params": {"max_age": -1}}, "config.tracker_params.max_age: expected an integer >= 0 and <= 100000, got -1"),
    ],
    ids=["negative-det-threshold", "negative-keypoint-threshold", "nan-threshold", "batch-size-0", "batch-size-2.5", "device-gpu", "device-cuda-x", "negative-max-age"],
)
def test_bad_parameters_in_python(changes, message):
    with pytest.raises(BadInputError, match=re.escape(message)):
        PipelineConfig(**changes)


def test_bad_job_parameters_in_python(dataset, pipeline):
    before = snapshot(dataset)
    with pytest.raises(BadInputError, match="flush_frames: expected >= 1, got 0"):
        run(dataset, pipeline=pipe(pipeline, **NEW), flush_frames=0, progress=False)
    with pytest.raises(BadInputError, match="stale_after: expected a number of seconds > 0, got -1"):
        run(dataset, pipeline=pipe(pipeline, **NEW), stale_after=-1, progress=False)
    assert snapshot(dataset) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-size", "0"], "--batch-size: expected an integer >= 1 and <= 1024, got 0"),
        (["--det-score-threshold", "-0.5"], "--det-score-threshold: expected a finite number >= 0 and <= 1, got -0.5"),
        (["--device", "gpu"], "--device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        (["--flush-frames", "0"], "--flush-frames: expected an integer >= 1 and <= 100000, got 0"),
        (["--stale-after", "0"], "--stale-after: expected a finite number > 0 and <= 604800, got 0.0"),
        (["--param", "max_age=-1"], "config.tracker_params.max_age: expected an integer >= 0 and <= 100000, got -1"),
        (["--pose-alpha", "0.9"], "--pose-alpha: expected a finite number >= 0 and <= 0.5, got 0.9"),
        (["--det-tile-size", "1000"], "det_tile_size: 1000 px tiles are larger than the 320x192 frame"),
        (["--det-tile-overlap", "-0.1"], "--det-tile-overlap: expected a finite number >= 0 and <= 0.9, got -0.1"),
        (["--det-tile-overlap", "1"], "--det-tile-overlap: expected a finite number >= 0 and <= 0.9, got 1.0"),
        (["--det-input-size", "-64"], "--det-input-size: expected an integer >= 0 and <= 8192, got -64"),
    ],
    ids=["batch-size-0", "negative-det-threshold", "device-gpu", "flush-frames-0", "stale-after-0", "negative-max-age", "pose-alpha-0.9",
         "tile-larger-than-frame", "negative-tile-overlap", "tile-overlap-1", "negative-input-size"],
)
def test_bad_parameters_on_the_command_line(dataset, models, args, message, capsys):
    before = snapshot(dataset)
    assert main(["run", "--dataset", dataset.name, "--models-dir", models, "--overwrite", *args]) == 2
    err = capsys.readouterr().err
    assert "posetrack: error: " in err and message in err and "Traceback" not in err
    assert snapshot(dataset) == before


@pytest.mark.parametrize(
    "params, message",
    [
        ({"batch_size": 0}, "parameter 'batch_size': expected an integer >= 1 and <= 1024, got 0"),
        ({"det_score_threshold": -0.5}, "Validation error. Path: det_score_threshold."),
        ({"keypoint_threshold": 2}, "Validation error. Path: keypoint_threshold."),
        ({"device": "gpu"}, "parameter 'device': expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
        ({"stale_after": 0}, "parameter 'stale_after': expected a finite number > 0 and <= 604800, got 0"),
        ({"flush_frames": 0}, "parameter 'flush_frames': expected an integer >= 1 and <= 100000, got 0"),
        ({"batch_size": "8"}, "parameter 'batch_size': expected an integer >= 1 and <= 1024, got '8'"),
        ({"tracker_params": '{"max_age": -1}'}, "parameter 'tracker_params'.max_age: expected an integer >= 0 and <= 100000, got -1"),
        ({"detector": "rtmdet-onnx:/no/such/det.onnx"}, "/no/such/det.onnx"),
    ],
    ids=["batch-size-0", "negative-det-threshold", "keypoint-threshold-2", "device-gpu", "stale-after-0", "flush-frames-0", "batch-size-string", "negative-max-age", "missing-onnx"],
)
def test_bad_parameters_in_operators(dataset, models, plugin, params, message):
    before = snapshot(dataset)
    with pytest.raises(ExecutionError, match=re.escape(message)):
        execute("run_pose_tracking", dataset, fast_params(models, overwrite=True, **params))
    assert snapshot(dataset) == before


def test_wrong_field_types_in_operators(dataset, models, plugin):
    before = snapshot(dataset)
    with pytest.raises(ExecutionError, match="Validation error. Path: in_field. Reason: Invalid enum value"):
        execute("track_persons", dataset, {"in_field": "gt_keypoints"})
    with pytest.raises(ExecutionError, match="Validation error. Path: in_field. Reason: Invalid enum value"):
        execute("smooth_poses", dataset, {"in_field": "gt_detections"})
    with pytest.raises(ExecutionError, match=r"frame field 'gt_keypoints' holds labels that pose estimation into 'gt_keypoints_status' did not write"):
        execute("estimate_poses", dataset, {"tracks_field": "gt_detections", "out_field": "gt_keypoints", "models_dir": models})
    with pytest.raises(ExecutionError, match="parameter 'keypoints_field': expected a field name"):
        execute("run_pose_tracking", dataset, {"keypoints_field": "frames.x"})
    assert snapshot(dataset) == before


# --------------------------------------------------------------------------- security


def test_user_text_is_parsed_never_evaluated(dataset, models, plugin, tmp_path, capsys):
    """Parameters that reach the code as text are JSON or literals, never Python."""
    marker = tmp_path / "pwned"
    code = f"__import__('os').makedirs({str(marker)!r})"
    with pytest.raises(ExecutionError, match="parameter 'tracker_params': not valid JSON"):
        execute("run_pose_tracking", dataset, fast_params(models, tracker_params=code))
    assert main(["run", "--dataset", dataset.name, "--param", f"max_age={code}"]) == 2
    assert "config.tracker_params.max_age: expected an integer >= 0 and <= 100000, got \"__import__" in capsys.readouterr().err
    from fiftyone_posetrack.tracking.tune import parse_grid

    assert parse_grid([f"max_age={code}"]) == {"max_age": [code]}, "a grid value that is not a literal stays a string"
    assert not marker.exists()


class _RunsCode:
    """Pickles to a call of ``os.makedirs(path)``: loading the pickle runs it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.makedirs, (self.path,)


def test_checkpoint_warns_before_any_code_from_it_runs(tmp_path):
    import torch

    from fiftyone_posetrack.reid import make_embedder
    from fiftyone_posetrack.reid.torch_reid import build_reid_model

    safe = tmp_path / "weights.pth"
    torch.save(build_reid_model("osnet_x0_25").state_dict(), safe)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a weights-only checkpoint loads without any warning
        assert make_embedder("osnet_x0_25", weights=safe, device="cpu").dim == 512

    marker = tmp_path / "code-ran"
    unsafe = tmp_path / "pickle.pth"
    torch.save({"state_dict": _RunsCode(marker)}, unsafe)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *args, **kwargs: seen.append((str(message), marker.exists()))
        with pytest.raises(BadInputError, match="expected a state dict of tensors"):
            make_embedder("osnet_x0_25", weights=unsafe, device="cpu")
    pickle_warnings = [ran for message, ran in seen if "can execute code from the file" in message]
    assert pickle_warnings == [False], f"one warning, given before the file's code could run: {seen}"


def _calls(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == name:
                yield node


def test_code_has_no_eval_shell_or_open_listeners():
    """eval/exec, shell=True, yaml.load, pickle.load and non-loopback servers: none in the product."""
    files = [p for d in ("fiftyone_posetrack", "operators") for p in (REPO / d).rglob("*.py")]
    assert len(files) > 30
    for path in files:
        source = path.read_text()
        tree = ast.parse(source)
        where = path.relative_to(REPO)
        for name in ("eval", "exec"):
            assert not [n for n in _calls(tree, name) if isinstance(n.func, ast.Name)], f"{name}() in {where}"
        for call in _calls(tree, "load"):
            owner = getattr(call.func, "value", None)
            owner = getattr(owner, "id", None)
            assert owner not in ("pickle", "yaml"), f"{owner}.load in {where}"
            if owner == "torch":
                assert any(k.arg == "weights_only" for k in call.keywords), f"torch.load without weights_only in {where}"
        for call in ast.walk(tree):
            if isinstance(call, ast.Call):
                for kw in call.keywords:
                    assert not (kw.arg == "shell" and getattr(kw.value, "value", False) is True), f"shell=True in {where}"
        for call in _calls(tree, "launch_app"):
            address = {k.arg: getattr(k.value, "value", None) for k in call.keywords}.get("address")
            assert address in ("127.0.0.1", "localhost"), f"launch_app without a loopback address in {where}"
        assert "0.0.0.0" not in source, f"0.0.0.0 in {where}"
