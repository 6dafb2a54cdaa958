"""The mmdet / mmpose backends with random-weight models built from the configs in the wheels.

Skipped (with the reason) where the OpenMMLab extra is not installed.
"""

import numpy as np
import pytest

mmdet = pytest.importorskip("mmdet", reason="OpenMMLab extra not installed (bash scripts/setup_mm.sh .venv)")
mmpose = pytest.importorskip("mmpose", reason="OpenMMLab extra not installed (bash scripts/setup_mm.sh .venv)")

import torch  # noqa: E402

from fiftyone_posetrack.detection import make_detector  # noqa: E402
from fiftyone_posetrack.openmmlab import PickleCheckpointWarning  # noqa: E402
from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline  # noqa: E402
from fiftyone_posetrack.pose.base import make_pose_estimator  # noqa: E402
from fiftyone_posetrack.types import BadInputError  # noqa: E402

pytestmark = pytest.mark.mm

HRNET = "td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"
SIMPLEBASELINE = "td-hm_res50_8xb64-210e_coco-256x192.py"
RTMDET = "rtmdet_tiny_8xb32-300e_coco.py"


@pytest.fixture(scope="module")
def frames(shared_dir):
    import cv2

    cap = cv2.VideoCapture(str(shared_dir / "data/video/one-by-one-person-detection.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 300)
    out = [cap.read()[1] for _ in range(2)]
    cap.release()
    return out


@pytest.fixture(scope="module")
def hrnet():
    torch.manual_seed(0)
    return make_pose_estimator(f"mmpose:{HRNET}", device="cpu")


@pytest.fixture(scope="module")
def hrnet_checkpoint(hrnet, tmp_path_factory):
    """The random HRNet saved as a real OpenMMLab-style checkpoint (numpy objects in meta)."""
    path = tmp_path_factory.mktemp("ckpt") / "hrnet.pth"
    meta = {"dataset_meta": hrnet.model.dataset_meta, "seed": np.int64(0), "mean": np.zeros(3), "dt": np.dtype("float32")}
    torch.save({"state_dict": hrnet.model.state_dict(), "meta": meta}, path)
    return path


def test_numpy_meta_loads_weights_only_and_other_pickles_warn(hrnet, hrnet_checkpoint, tmp_path):
    import argparse
    import warnings

    from fiftyone_posetrack.openmmlab import load_weights

    with warnings.catch_warnings():
        warnings.simplefilter("error", PickleCheckpointWarning)
        assert load_weights(hrnet.model, str(hrnet_checkpoint))["seed"] == 0
    risky = tmp_path / "training.pth"
    torch.save({"state_dict": hrnet.model.state_dict(), "meta": {"args": argparse.Namespace(lr=0.1)}}, risky)
    with pytest.warns(PickleCheckpointWarning, match="training.pth.*can run arbitrary code"):
        load_weights(hrnet.model, str(risky))


BOXES = [np.array([[300, 100, 420, 400], [100, 120, 200, 380.0]]), np.array([[310, 100, 430, 400.0]])]


def test_detectors_from_shipped_configs_batch_like_single_frames(frames):
    # random weights: one class (label 0 = "person"), every box kept
    options = {"model.bbox_head.num_classes": 1, "model.test_cfg.score_thr": 0.0, "model.test_cfg.max_per_img": 5}
    det = make_detector(f"mmdet:{RTMDET}", score_threshold=0.0, device="cpu", cfg_options=options)
    batched = det.detect(frames)
    single = [det.detect([f])[0] for f in frames]
    assert [len(d) for d in batched] == [len(d) for d in single] and len(batched[0]) > 0
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
        assert (a.boxes[:, 2:] <= [frames[0].shape[1] + 1, frames[0].shape[0] + 1]).all()


def test_cascade_rcnn_builds_and_runs(frames):
    det = make_detector("mmdet:cascade-rcnn_r50_fpn_1x_coco.py", device="cpu", score_threshold=0.0)
    (out,) = det.detect(frames[:1])
    assert out.boxes.shape[1] == 4 and np.isfinite(out.boxes).all()


def test_pose_estimate_batch_groups_boxes_per_frame(hrnet, frames):
    results = hrnet.estimate_batch(frames, BOXES)
    assert [r[0].shape for r in results] == [(2, 17, 2), (1, 17, 2)]
    assert all(((s >= 0) & (s <= 1)).all() for _, s in results)
    alone = hrnet.estimate(frames[1], BOXES[1])
    np.testing.assert_allclose(alone[0], results[1][0], atol=1e-3)


def test_heatmap_average_of_a_model_with_itself_is_the_model(hrnet, hrnet_checkpoint, frames):
    twin = make_pose_estimator(
        f"mmpose:{HRNET}:{hrnet_checkpoint}", device="cpu", second_model=f"mmpose:{HRNET}:{hrnet_checkpoint}"
    )
    a = hrnet.estimate_batch(frames, BOXES)
    b = twin.estimate_batch(frames, BOXES)
    for (ka, sa), (kb, sb) in zip(a, b):
        np.testing.assert_allclose(ka, kb, atol=1e-3)
        np.testing.assert_allclose(sa, sb, atol=1e-5)


def test_heatmap_average_of_hrnet_and_simplebaseline_differs_from_each(hrnet, frames):
    pair = make_pose_estimator(f"mmpose:{HRNET}", device="cpu", second_model=f"mmpose:{SIMPLEBASELINE}")
    kps, scores = pair.estimate(frames[0], BOXES[0])
    assert kps.shape == (2, 17, 2) and np.isfinite(kps).all()


def test_mismatched_checkpoint_and_sizes_are_refused(hrnet_checkpoint):
    with pytest.raises(BadInputError, match="does not match the config's model .*(missing|unexpected)"):
        make_pose_estimator(f"mmpose:{SIMPLEBASELINE}:{hrnet_checkpoint}", device="cpu")
    with pytest.raises(BadInputError, match="same input and heatmap sizes"):
        make_pose_estimator(
            f"mmpose:{HRNET}", device="cpu", second_model="mmpose:td-hm_hrnet-w32_8xb64-210e_coco-384x288.py"
        )
    with pytest.raises(FileNotFoundError, match="did you mean"):
        make_detector("mmdet:rtmdet_tiny_8xb32-300e_cocoo.py")


def test_whole_pipeline_with_openmmlab_models_on_cpu(shared_dir, tmp_path):
    """mmdet fused with the real RTMDet-nano, and HRNet + SimpleBaseline heatmaps averaged."""
    from fiftyone_posetrack.synth import render_crowd
    from fiftyone_posetrack.video import VideoReader

    crowd = render_crowd(tmp_path / "c", people=2, frames=4, width=320, height=192, seed=0)
    config = PipelineConfig(
        detector=f"mmdet:{RTMDET}", detector2="rtmdet-nano-person", models_dir=str(shared_dir / "models"),
        pose=f"mmpose:{HRNET}", pose2=f"mmpose:{SIMPLEBASELINE}", reid=None, device="cpu", det_tile_size=0,
        tracker="deepsort", tracker_params={"n_init": 1},
    )  # fmt: skip
    pipeline = PoseTrackingPipeline(config)
    assert type(pipeline.detector.detectors[0]).__name__ == "MMDetDetector"
    assert pipeline.pose_estimator.second is not None
    with VideoReader(crowd.video_path) as reader:
        results = list(pipeline.process(reader.batches(4)))
    assert [r.frame_number for r in results] == [1, 2, 3, 4]
    assert sum(len(r.poses) for r in results) > 0
    for r in results:
        assert r.poses.keypoints.shape == (len(r.tracks), 17, 2)
