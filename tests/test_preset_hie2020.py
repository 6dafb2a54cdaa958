"""The ``hie2020`` preset end to end on CPU (issue 11).

The preset's named models need checkpoint downloads, so the pipeline is built
with the SAME structure from the configs of the preset's own models inside the
installed mmdet / mmpose wheels, with random weights: Cascade R-CNN X101 fused
1:1 with Cascade R-CNN R101, DeepSORT with the real OSNet x0.25 checkpoint of
``../shared/models`` (flip + two scales), HRNet-W48 + SimpleBaseline-R152
heatmaps averaged with flip test, flow box and pose smoothing. Every other
option keeps the preset's value.

Random-weight Cascade R-CNN scores every class ~1/81, below its config's
``score_thr`` (0.05), and its few top boxes are rarely persons: the test's
detector configs are the wheel's configs with a person-only class head and
small test-time budgets (score_thr 0, at most 3 boxes per model and frame, 100
proposals), which keeps pose estimation to a few boxes per frame.
"""

import pathlib

import numpy as np
import pytest

mmdet = pytest.importorskip("mmdet", reason="OpenMMLab extra not installed (bash scripts/setup_mm.sh .venv)")
mmpose = pytest.importorskip("mmpose", reason="OpenMMLab extra not installed (bash scripts/setup_mm.sh .venv)")

import fiftyone as fo  # noqa: E402

from fiftyone_posetrack.fo import runs as fruns  # noqa: E402
from fiftyone_posetrack.fo.run import run  # noqa: E402
from fiftyone_posetrack.models import MODELS, mm_config_path  # noqa: E402
from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline  # noqa: E402
from fiftyone_posetrack.presets import preset_options  # noqa: E402
from fiftyone_posetrack.synth import render_crowd  # noqa: E402

pytestmark = [pytest.mark.mm, pytest.mark.slow]

FRAMES = 5  # DeepSORT's n_init = 3: tracks are output from the 3rd frame on


def _random_detector_config(name: str, folder: pathlib.Path) -> str:
    """The wheel's config of zoo model ``name`` with a person-only class head and small test-time budgets.

    With 80 random classes the 3 boxes a frame kept would rarely be persons; with one
    class every box is a person (score ~0.5), so the pipeline gets a few boxes a frame.
    """
    from mmengine.config import Config

    cfg = Config.fromfile(str(mm_config_path(MODELS[name])))
    for head in cfg.model.roi_head.bbox_head:
        head.num_classes = 1
    cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
    cfg.model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=3)
    path = folder / f"{pathlib.Path(cfg.filename).stem}-person-test-budget.py"
    cfg.dump(str(path))
    return f"mmdet:{path}"


def test_hie2020_preset_runs_end_to_end_on_cpu(shared_dir, tmp_path):
    preset = preset_options("hie2020")
    detector = _random_detector_config(preset["detector"], tmp_path)
    detector2 = _random_detector_config(preset["detector2"], tmp_path)
    pose = f"mmpose:{mm_config_path(MODELS[preset['pose']])}"
    pose2 = f"mmpose:{mm_config_path(MODELS[preset['pose2']])}"
    config = PipelineConfig.from_preset(
        "hie2020", detector=detector, detector2=detector2, pose=pose, pose2=pose2,
        reid="osnet-x0_25-msmt17", models_dir=str(shared_dir / "models"),
        det_score_threshold=0.0, det_input_size=128, device="cpu", batch_size=FRAMES,
        # DeepSORT ignores boxes under its min_score (0.3); fused random boxes score ~0.25
        tracker_params={**preset["tracker_params"], "min_score": 0.0},
    )  # fmt: skip

    # every option not given keeps the preset's value
    assert config.explicit_options == {
        "preset", "detector", "detector2", "pose", "pose2", "reid", "models_dir",
        "det_score_threshold", "det_input_size", "device", "batch_size", "tracker_params",
    }  # fmt: skip
    assert config.fusion_weights == (1.0, 1.0)
    assert (config.box_smoothing, config.box_alpha) == (True, 0.5)
    assert config.tracker == "deepsort" and config.tracker_params == {
        "max_cosine_distance": 0.3, "nn_budget": 256, "max_age": 30, "n_init": 3, "max_iou_distance": 0.7,
        "min_score": 0.0,
    }  # fmt: skip
    assert (config.reid_flip, tuple(config.reid_scales)) == (True, (1.0, 0.875))
    assert config.pose_smoothing == "flow"
    for option, value in preset.items():
        if option not in config.explicit_options:
            assert getattr(config, option) == value, option

    # the built stages have the preset's structure
    pipeline = PoseTrackingPipeline(config)
    fused = pipeline.detector
    assert type(fused).__name__ == "FusedDetector" and list(fused.weights) == [1.0, 1.0]
    backbones = [type(d.model.backbone).__name__ for d in fused.detectors]
    assert [type(d.model).__name__ for d in fused.detectors] == ["CascadeRCNN", "CascadeRCNN"]
    assert backbones == ["ResNeXt", "ResNet"] and fused.detectors[1].model.backbone.depth == 101
    estimator = pipeline.pose_estimator
    assert type(estimator).__name__ == "MMPoseEstimator" and estimator.second is not None
    assert type(estimator.model.backbone).__name__ == "HRNet"
    assert type(estimator.second.backbone).__name__ == "ResNet" and estimator.second.backbone.depth == 152
    assert estimator.model.test_cfg["flip_test"] and estimator.second.test_cfg["flip_test"]  # pose flip
    assert (pipeline.embedder.flip, tuple(pipeline.embedder.scales)) == (True, (1.0, 0.875))
    assert type(pipeline.tracker).__name__ == "DeepSort"
    assert pipeline.box_smoother is not None and pipeline.flow_smoother is not None

    crowd = render_crowd(tmp_path / "crowd", people=3, frames=FRAMES, width=160, height=96, seed=0)
    dataset = fo.Dataset()
    dataset.add_sample(fo.Sample(filepath=str(crowd.video_path)))
    dataset.compute_metadata()

    summary = run(dataset, pipeline=pipeline, progress=False)

    sample = dataset.first()
    assert sorted(sample.frames.keys()) == list(range(1, FRAMES + 1))
    tracked = 0
    for number in range(1, FRAMES + 1):
        frame = sample.frames[number]
        dets, kps = frame[config.detections_field], frame[config.keypoints_field]
        assert isinstance(dets, fo.Detections) and isinstance(kps, fo.Keypoints), number
        assert sorted(d.index for d in dets.detections) == sorted(k.index for k in kps.keypoints), number
        for d in dets.detections:
            x, y, w, h = d.bounding_box
            assert 0 <= x and 0 <= y and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6 and w > 0 and h > 0
        for k in kps.keypoints:
            assert len(k.points) == 17
            assert all(0 <= v <= 1 for p in k.points for v in p if np.isfinite(v))  # relative (x, y)
            assert any(np.isfinite(p).all() for p in k.points)
        tracked += len(dets.detections)
    assert tracked > 0  # DeepSORT confirmed tracks and they got poses
    assert len(sample.frames[FRAMES][config.detections_field].detections) > 0

    # the run record names both detectors, both pose models and the ReID model
    record = fruns.get_run(dataset, summary.run_key)
    models = record["models"]
    assert (models["detector"]["spec"], models["detector2"]["spec"]) == (detector, detector2)
    assert (models["pose"]["spec"], models["pose2"]["spec"]) == (pose, pose2)
    assert models["reid"]["spec"] == "osnet-x0_25-msmt17" and models["reid"]["files"]
    assert record["options"]["preset"] == "hie2020"
    assert record["status_counts"] == {"done": 1}
    # every stage of the preset ran: fused detection, ReID, flow box smoothing, pose, flow pose smoothing
    for stage in ("detection", "reid", "tracking", "box_smoothing", "pose", "pose_smoothing"):
        assert record["timings"].get(stage, 0) > 0, stage

    # fused: the boxes of each member detector reach the fused output (WBF, weights 1:1)
    from fiftyone_posetrack.video import VideoReader

    with VideoReader(crowd.video_path) as reader:
        _, frames = next(iter(reader.batches(1)))
    (out,) = fused.detect(frames)
    for member in fused.detectors:
        (own,) = member.detect(frames)
        assert len(own) > 0
        assert all(_iou(box, out.boxes).max() > 0.5 for box in own.boxes), type(member.model.backbone).__name__


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one pixel box [x1, y1, x2, y2] with each of ``boxes`` (N, 4)."""
    lt, rb = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
    return inter / (area(box) + area(boxes) - inter + 1e-9)
