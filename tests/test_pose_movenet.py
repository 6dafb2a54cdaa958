"""MoveNet Lightning int8 (TFLite) on COCO people with ground-truth boxes (needs ../shared)."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.pose import make_pose_estimator
from fiftyone_posetrack.pose.tflite_movenet import MoveNetTFLite
from fiftyone_posetrack.types import BadInputError, xywh_to_xyxy


@pytest.fixture(scope="module")
def movenet(shared_dir):
    (path,) = (shared_dir / "models" / "movenet-lightning-int8").glob("*.tflite")
    return make_pose_estimator(f"movenet-tflite:{path}", threads=2)


@pytest.fixture(scope="module")
def coco(shared_dir):
    root = shared_dir / "data" / "keypoints" / "coco"
    data = json.loads((root / "test_coco.json").read_text())
    images = {im["id"]: cv2.imread(str(root / im["file_name"])) for im in data["images"]}
    return images, data["annotations"]


def test_movenet_pck_on_large_coco_people(movenet, coco):
    images, anns = coco
    large = [a for a in anns if a["area"] >= 5000 and a["num_keypoints"] >= 10]
    assert len(large) >= 8
    image_ids = sorted({a["image_id"] for a in large})
    frames = [images[i] for i in image_ids]
    boxes = [
        xywh_to_xyxy(np.array([a["bbox"] for a in large if a["image_id"] == i])) for i in image_ids
    ]
    start = time.perf_counter()
    results = movenet.estimate_batch(frames, boxes)
    ms = (time.perf_counter() - start) * 1000 / len(large)
    hits = {0.05: 0, 0.1: 0, 0.2: 0}
    total = inside = 0
    for image_id, (kps, scores), b in zip(image_ids, results, boxes):
        people = [a for a in large if a["image_id"] == image_id]
        for ann, kp, box in zip(people, kps, b):
            gt = np.array(ann["keypoints"], float).reshape(17, 3)
            vis = gt[:, 2] > 0
            dist = np.linalg.norm(kp[vis] - gt[vis, :2], axis=1)
            size = max(ann["bbox"][2], ann["bbox"][3])
            for thr in hits:
                hits[thr] += int((dist <= thr * size).sum())
            total += int(vis.sum())
            margin = 0.1 * size
            inside += int(
                ((kp[vis] >= box[:2] - margin) & (kp[vis] <= box[2:] + margin)).all(axis=1).sum()
            )
    pck = {thr: h / total for thr, h in hits.items()}
    print(
        f"\nMoveNet on {len(large)} large COCO people ({total} visible joints): "
        + ", ".join(f"PCK@{t} = {v:.2f}" for t, v in pck.items())
        + f"; {inside / total:.2f} inside the gt box (+10%); {ms:.1f} ms/person"
    )
    assert pck[0.2] >= 0.85
    assert pck[0.1] >= 0.7
    assert inside / total >= 0.95


def test_movenet_output_shapes_and_empty(movenet):
    frame = np.zeros((120, 160, 3), np.uint8)
    kps, scores = movenet.estimate(frame, np.zeros((0, 4)))
    assert kps.shape == (0, 17, 2) and scores.shape == (0, 17)
    kps, scores = movenet.estimate(frame, np.array([[10.0, 10.0, 60.0, 110.0]]))
    assert kps.shape == (1, 17, 2) and np.isfinite(kps).all()
    assert ((scores >= 0) & (scores <= 1)).all()


def test_movenet_cuda_warns_and_wrong_models_fail(shared_dir, caplog):
    (path,) = (shared_dir / "models" / "movenet-lightning-int8").glob("*.tflite")
    with caplog.at_level("WARNING"):
        MoveNetTFLite(path, device="cuda")
    assert "CPU only" in caplog.text
    with pytest.raises(BadInputError, match="not a TFLite flatbuffer"):
        MoveNetTFLite(shared_dir / "models" / "yolox-nano" / "yolox_nano.onnx")


def test_flip_test_averages_the_mirrored_crop(shared_dir, coco):
    """flip_test ~ the mean of the plain pose and the pose of the mirrored frame mapped back
    (x -> W - 1 - x, left/right swapped), computed here with two plain runs. Not exact: the
    mirrored frame's crop is resampled at other sub-pixel positions, and the int8 model moves
    by a few pixels with that (2-3 px mean on these people)."""
    from fiftyone_posetrack.skeleton import flip_permutation

    (path,) = (shared_dir / "models" / "movenet-lightning-int8").glob("*.tflite")
    plain = make_pose_estimator(f"movenet-tflite:{path}", threads=2)
    flipped = MoveNetTFLite(path, threads=2, flip_test=True)
    images, anns = coco
    for ann in sorted(anns, key=lambda a: -a["area"])[:4]:
        frame = images[ann["image_id"]]
        w = frame.shape[1]
        box = xywh_to_xyxy(np.array([ann["bbox"]], dtype=float))
        mbox = np.stack([w - 1 - box[:, 2], box[:, 1], w - 1 - box[:, 0], box[:, 3]], axis=1)
        kp, sc = plain.estimate(frame, box)
        mkp, msc = plain.estimate(np.ascontiguousarray(frame[:, ::-1]), mbox)
        mkp[..., 0] = w - 1 - mkp[..., 0]
        unswapped = (kp + mkp) / 2  # what a flip without the left/right swap would give
        mkp, msc = mkp[:, flip_permutation()], msc[:, flip_permutation()]
        fkp, fsc = flipped.estimate(frame, box)
        size = max(ann["bbox"][2:])
        err = np.linalg.norm(fkp - (kp + mkp) / 2, axis=-1).mean()
        assert err < 0.02 * size, (err, size)
        assert np.linalg.norm(fkp - unswapped, axis=-1).mean() > 0.05 * size
        assert np.abs(fsc - (sc + msc) / 2).mean() < 0.1  # scores move with the resampling too (0.06)
