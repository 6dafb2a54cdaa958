"""RTMDet-nano and YOLOX-nano ONNX detectors on real images (needs ../shared)."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.detection import FusedDetector, box_iou, make_detector
from fiftyone_posetrack.detection.onnx_rtmdet import RTMDetONNX
from fiftyone_posetrack.detection.onnx_yolox import YOLOXONNX
from fiftyone_posetrack.types import xywh_to_xyxy

VIDEO_FRAMES = (100, 300, 550, 800, 1000)  # a person walks through the room in these


@pytest.fixture(scope="module")
def coco(shared_dir):
    root = shared_dir / "data" / "keypoints" / "coco"
    data = json.loads((root / "test_coco.json").read_text())
    images = [cv2.imread(str(root / im["file_name"])) for im in data["images"]]
    gt = [
        xywh_to_xyxy(
            np.array([a["bbox"] for a in data["annotations"] if a["image_id"] == im["id"]])
        )
        for im in data["images"]
    ]
    return images, gt


@pytest.fixture(scope="module")
def video_frames(shared_dir):
    cap = cv2.VideoCapture(str(shared_dir / "data" / "video" / "one-by-one-person-detection.mp4"))
    frames = []
    for index in VIDEO_FRAMES:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        assert ok, f"cannot read frame {index}"
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def rtmdet(shared_dir):
    return make_detector(
        f"rtmdet-onnx:{shared_dir}/models/rtmdet-nano-person/end2end.onnx",
        score_threshold=0.3,
        device="cpu",
    )


@pytest.fixture(scope="module")
def yolox(shared_dir):
    return make_detector(
        f"yolox-onnx:{shared_dir}/models/yolox-nano/yolox_nano.onnx",
        score_threshold=0.3,
        device="cpu",
    )


def _recall_of_large(gt_boxes, dets, min_area=5000.0):
    """Fraction of gt boxes larger than ``min_area`` px^2 matched with IoU >= 0.5."""
    hits = total = 0
    for gt, det in zip(gt_boxes, dets):
        large = gt[np.prod(gt[:, 2:] - gt[:, :2], axis=1) >= min_area]
        total += len(large)
        if len(large) and len(det):
            hits += int((box_iou(large, det.boxes).max(axis=1) >= 0.5).sum())
    return hits / total, total


@pytest.mark.parametrize("name", ["rtmdet", "yolox"])
def test_detects_coco_people(name, coco, request):
    detector = request.getfixturevalue(name)
    images, gt = coco
    start = time.perf_counter()
    dets = detector.detect(images)
    ms = (time.perf_counter() - start) * 1000 / len(images)
    recall, total = _recall_of_large(gt, dets)
    print(
        f"\n{name}: recall of {total} large COCO people at IoU 0.5 = {recall:.2f}, "
        f"{ms:.1f} ms/frame"
    )
    assert total >= 8
    assert recall >= 0.8
    for det, img in zip(dets, images):
        assert (det.scores >= 0.3).all() and (np.diff(det.scores) <= 0).all()
        assert (det.boxes[:, 2] <= img.shape[1]).all() and (det.boxes[:, 3] <= img.shape[0]).all()


def test_onnx_spec_sniffs_the_backend(shared_dir):
    assert isinstance(
        make_detector(f"onnx:{shared_dir}/models/rtmdet-nano-person/end2end.onnx"), RTMDetONNX
    )
    assert isinstance(make_detector(f"{shared_dir}/models/yolox-nano/yolox_nano.onnx"), YOLOXONNX)


def test_both_detectors_find_the_person_in_the_video(rtmdet, yolox, video_frames):
    for index, a, b in zip(VIDEO_FRAMES, rtmdet.detect(video_frames), yolox.detect(video_frames)):
        assert len(a) >= 1 and len(b) >= 1, f"frame {index}: no person"
        tall = a.boxes[0, 3] - a.boxes[0, 1]
        assert tall > 200, f"frame {index}: the walking person is ~350 px tall, got {tall:.0f}"
        assert box_iou(a.boxes[:1], b.boxes).max() >= 0.5, (
            f"frame {index}: RTMDet and YOLOX disagree"
        )


def test_rtmdet_batched_equals_unbatched(shared_dir, video_frames, coco):
    path = f"{shared_dir}/models/rtmdet-nano-person/end2end.onnx"
    frames = video_frames[:3] + coco[0][:2]  # frames of different sizes
    batched = RTMDetONNX(path, score_threshold=0.1, batch_size=8, device="cpu").detect(frames)
    single = RTMDetONNX(path, score_threshold=0.1, batch_size=1, device="cpu")
    for frame, dets in zip(frames, batched):
        ref = single.detect([frame])[0]
        np.testing.assert_allclose(dets.boxes, ref.boxes, atol=1e-3)
        np.testing.assert_allclose(dets.scores, ref.scores, atol=1e-5)


def test_yolox_preprocessing_variant(shared_dir, coco):
    """Raw BGR 0-255 input (YOLOX >= 0.2) is the right one for this export; legacy is not."""
    path = f"{shared_dir}/models/yolox-nano/yolox_nano.onnx"
    images, _ = coco
    new = YOLOXONNX(path, score_threshold=0.0, device="cpu").detect(images[:2])
    old = YOLOXONNX(path, score_threshold=0.0, legacy=True, device="cpu").detect(images[:2])
    for a, b in zip(new, old):
        assert a.scores.max() > 0.7
        assert b.scores.max() < 0.2


def test_fused_detector_on_coco(rtmdet, yolox, coco, shared_dir):
    low = dict(score_threshold=0.05, device="cpu")
    members = [
        make_detector(f"rtmdet-onnx:{shared_dir}/models/rtmdet-nano-person/end2end.onnx", **low),
        make_detector(f"yolox-onnx:{shared_dir}/models/yolox-nano/yolox_nano.onnx", **low),
    ]
    fused = FusedDetector(members, weights=[1, 1], score_threshold=0.3)
    images, gt = coco
    recall, _ = _recall_of_large(gt, fused.detect(images))
    print(f"\nfused RTMDet+YOLOX: recall of large COCO people = {recall:.2f}")
    assert recall >= 0.8
