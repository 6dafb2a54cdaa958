"""Box IoU, NMS and weighted boxes fusion (WBF) against reference implementations."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.detection import (
    Detector,
    FusedDetector,
    box_iou,
    nms,
    weighted_boxes_fusion,
)
from fiftyone_posetrack.types import BadInputError, FrameDetections


def _random_boxes(rng, n, scale=100.0):
    xy = rng.uniform(0, scale, (n, 2))
    wh = rng.uniform(1, scale / 3, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_nms_matches_opencv():
    rng = np.random.default_rng(1)
    for _ in range(20):
        boxes = _random_boxes(rng, 60)
        scores = rng.uniform(0, 1, 60)
        ours = nms(boxes, scores, 0.45)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        ref = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, 0.45)).reshape(-1)
        assert sorted(ours.tolist()) == sorted(ref.tolist())
        assert (np.diff(scores[ours]) <= 0).all()


@pytest.mark.parametrize("conf_type", ["avg", "max"])
def test_wbf_matches_ensemble_boxes(conf_type):
    """Our pixel WBF equals the reference package on normalised boxes."""
    ensemble_boxes = pytest.importorskip("ensemble_boxes")
    rng = np.random.default_rng(0)
    size = np.array([640.0, 480.0, 640.0, 480.0])
    compared = 0
    for _ in range(100):
        n_models = int(rng.integers(1, 4))
        centers = rng.uniform(0.1, 0.7, (int(rng.integers(1, 6)), 2))
        boxes_px, scores = [], []
        for _ in range(n_models):
            k = int(rng.integers(0, 8))
            xy = centers[rng.integers(0, len(centers), k)] + rng.normal(0, 0.02, (k, 2))
            b = np.clip(np.concatenate([xy, xy + rng.uniform(0.05, 0.25, (k, 2))], axis=1), 0, 1)
            boxes_px.append(b * size)
            scores.append(rng.uniform(0, 1, k))
        weights = rng.uniform(0.5, 2.0, n_models)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_boxes, ref_scores, _ = ensemble_boxes.weighted_boxes_fusion(
                [b / size for b in boxes_px], scores, [np.zeros(len(s)) for s in scores],
                weights=weights.tolist(), iou_thr=0.55, skip_box_thr=0.1, conf_type=conf_type,
            )  # fmt: skip
        boxes, fused_scores = weighted_boxes_fusion(boxes_px, scores, weights, 0.55, 0.1, conf_type)
        assert len(boxes) == len(ref_boxes)
        np.testing.assert_allclose(boxes / size, ref_boxes, atol=1e-6)
        np.testing.assert_allclose(fused_scores, ref_scores, atol=1e-6)
        compared += len(boxes)
    assert compared > 100


def test_wbf_two_models_semantics():
    a = np.array([[0, 0, 100, 200]], float)
    b = np.array([[10, 0, 110, 200], [300, 300, 350, 400]], float)
    boxes, scores = weighted_boxes_fusion([a, b], [np.array([0.9]), np.array([0.3, 0.8])])
    # cluster 1: both models (0.9 and 0.3, weighted mean of corners); cluster 2: one model of two
    np.testing.assert_allclose(scores, [0.6, 0.4])
    np.testing.assert_allclose(
        boxes[0], [(0 * 0.9 + 10 * 0.3) / 1.2, 0, (100 * 0.9 + 110 * 0.3) / 1.2, 200]
    )
    np.testing.assert_allclose(boxes[1], b[1])
    with pytest.raises(BadInputError, match="weights"):
        weighted_boxes_fusion([a, b], [np.array([0.9]), np.array([0.3, 0.8])], weights=[1.0])
    with pytest.raises(BadInputError, match="weights"):
        weighted_boxes_fusion([a, b], [np.array([0.9]), np.array([0.3, 0.8])], weights=[0, 0])
    # weight 0 leaves a model out: the other one's boxes and scores come back as they are
    only_b = weighted_boxes_fusion([a, b], [np.array([0.9]), np.array([0.3, 0.8])], weights=[0, 1])
    np.testing.assert_allclose(only_b[0], b[[1, 0]])
    np.testing.assert_allclose(only_b[1], [0.8, 0.3])
    empty = weighted_boxes_fusion([np.zeros((0, 4))], [np.zeros(0)])
    assert empty[0].shape == (0, 4) and empty[1].shape == (0,)


class _FixedBoxes(Detector):
    def __init__(self, boxes, scores):
        super().__init__(score_threshold=0.0)
        self.boxes, self.scores = np.asarray(boxes, float), np.asarray(scores, float)

    def _detect_batch(self, frames):
        return [FrameDetections(self.boxes, self.scores) for _ in frames]


def test_fused_detector_is_a_detector():
    d1 = _FixedBoxes([[0, 0, 100, 200]], [0.9])
    d2 = _FixedBoxes([[10, 0, 110, 200], [300, 300, 350, 400]], [0.3, 0.8])
    fused = FusedDetector([d1, d2], weights=[1, 1], score_threshold=0.5)
    out = fused.detect([np.zeros((480, 640, 3), np.uint8)] * 3)
    assert len(out) == 3
    assert all(isinstance(d, FrameDetections) for d in out)
    np.testing.assert_allclose(out[2].scores, [0.6])  # the single-model box (0.4) is cut
    with pytest.raises(BadInputError, match="weights"):
        FusedDetector([d1, d2], weights=[1, 1, 1])
