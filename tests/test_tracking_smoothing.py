"""Optical-flow box propagation and smoothing."""

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.flow import to_gray
from fiftyone_posetrack.tracking.box_smoothing import FlowBoxSmoother, propagate_boxes
from fiftyone_posetrack.types import BadInputError, FrameTracks

H, W = 240, 320


def textured(seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((H, W, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def warp(img, m):
    return cv2.warpAffine(img, np.float32(m), (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def shift(img, dx, dy):
    return warp(img, [[1, 0, dx], [0, 1, dy]])


@pytest.mark.parametrize("method", ["lk", "dis"])
@pytest.mark.parametrize("points", ["grid", "features"])
def test_propagate_boxes_follows_a_shift(method, points):
    img = textured()
    nxt = shift(img, 5.0, -3.0)
    boxes = np.array([[60, 60, 140, 180], [180, 50, 260, 150.0]])
    out, ok = propagate_boxes(to_gray(img), to_gray(nxt), boxes, method=method, points=points)
    assert ok.all()
    np.testing.assert_allclose(out, boxes + [5, -3, 5, -3], atol=0.3)


def test_propagate_boxes_follows_a_zoom():
    img = textured()
    cx, cy, s = 160.0, 120.0, 1.1
    nxt = warp(img, [[s, 0, cx - s * cx], [0, s, cy - s * cy]])
    box = np.array([[120, 80, 200, 160.0]])
    out, ok = propagate_boxes(to_gray(img), to_gray(nxt), box)
    assert ok.all()
    np.testing.assert_allclose(out[0], [cx - 44, cy - 44, cx + 44, cy + 44], atol=0.8)


def tracks(boxes, ids, det=None):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    return FrameTracks(boxes, ids, np.ones(len(ids)), det if det is not None else np.arange(len(ids)))


def test_smoothing_formula_and_gap_bridging():
    f0 = textured()
    f1, f2, f3 = shift(f0, 4, 2), shift(f0, 8, 4), shift(f0, 12, 6)
    b0 = np.array([80, 60, 160, 180.0])
    alpha = 0.3
    sm = FlowBoxSmoother(alpha=alpha, max_gap=1)
    out0 = sm.update(tracks([b0], [7]), f0)
    np.testing.assert_allclose(out0.boxes[0], b0)  # nothing to blend with yet
    det1 = b0 + [10, 0, 10, 0]  # a noisy detection
    out1 = sm.update(tracks([det1], [7]), f1)
    expected = alpha * det1 + (1 - alpha) * (b0 + [4, 2, 4, 2])
    np.testing.assert_allclose(out1.boxes[0], expected, atol=0.3)
    # frame 2: the detector misses it; the gap is bridged with the flow
    out2 = sm.update(FrameTracks.empty(), f2)
    assert out2.track_ids.tolist() == [7] and out2.det_indices.tolist() == [-1]
    assert out2.scores.tolist() == [0.0]
    np.testing.assert_allclose(out2.boxes[0], out1.boxes[0] + [4, 2, 4, 2], atol=0.3)
    # frame 3: second missed frame > max_gap: not bridged any more
    assert len(sm.update(FrameTracks.empty(), f3)) == 0


def test_alpha_one_is_identity_and_new_tracks_pass_through():
    f0 = textured()
    sm = FlowBoxSmoother(alpha=1.0)
    sm.update(tracks([[10, 10, 60, 90]], [1]), f0)
    out = sm.update(tracks([[14, 12, 64, 92], [100, 100, 150, 200]], [1, 2]), shift(f0, 4, 2))
    np.testing.assert_allclose(out.boxes, [[14, 12, 64, 92], [100, 100, 150, 200]])
    assert len(FlowBoxSmoother(max_gap=0).update(FrameTracks.empty(), f0)) == 0


def test_smoother_rejects_bad_input():
    with pytest.raises(BadInputError, match="alpha"):
        FlowBoxSmoother(alpha=1.5)
    with pytest.raises(BadInputError, match="method"):
        FlowBoxSmoother(method="farneback")
    sm = FlowBoxSmoother()
    sm.update(FrameTracks.empty(), textured())
    with pytest.raises(BadInputError, match="frame size changed"):
        sm.update(FrameTracks.empty(), np.zeros((10, 10, 3), np.uint8))
