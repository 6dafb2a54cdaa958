"""Mechanics of the association components of OC-SORT and its successors on small synthetic cases:
ORU's virtual trajectory, OCM's direction cost (center and corners), OCR's age limit, buffered IoU
(C-BIoU), height-modulated IoU and tracklet confidence modulation (Hybrid-SORT)."""

import numpy as np
import pytest

from fiftyone_posetrack.tracking import make_tracker
from fiftyone_posetrack.tracking.matching import buffered_boxes, height_iou_matrix, iou_matrix
from fiftyone_posetrack.tracking.ocsort import direction_cost, ocm_points
from fiftyone_posetrack.types import FrameDetections


def _box(x, y=100.0, w=40.0, h=100.0):
    return [x, y, x + w, y + h]


def _frame(*boxes, scores=None):
    boxes = np.array(boxes, dtype=float).reshape(-1, 4)
    return FrameDetections(boxes, np.full(len(boxes), 0.9) if scores is None else np.asarray(scores, float))


def test_buffered_iou_sees_boxes_that_moved_apart():
    a, b = np.array([[0, 0, 10, 20.0]]), np.array([[12, 0, 22, 20.0]])
    np.testing.assert_allclose(buffered_boxes(a, 0.5), [[-5, -10, 15, 30]])
    assert iou_matrix(a, b)[0, 0] == 0.0
    assert iou_matrix(buffered_boxes(a, 0.3), buffered_boxes(b, 0.3))[0, 0] > 0.1
    np.testing.assert_array_equal(buffered_boxes(a, 0.0), a)


def test_height_iou():
    a = np.array([[0, 0, 10, 100.0]])
    b = np.array([[50, 0, 60, 100.0], [0, 50, 10, 150.0], [0, 200, 10, 300.0]])
    np.testing.assert_allclose(height_iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])


def test_hmiou_prefers_the_detection_of_the_same_height():
    t = make_tracker("ocsort", n_init=1, inertia=0.0, hmiou=True, kalman="xywh")
    for _ in range(3):
        t.update(_frame(_box(100, 100, 100, 100)))
    t.pred_boxes = t.tracks.boxes()
    # same IoU with the track (both overlap 50 x 100 = half the area... of different shapes)
    wide = _box(150, 100, 100, 100)  # same height, shifted right: IoU 1/3, height IoU 1
    tall = _box(100, 100, 50, 200)  # same top, twice as tall and half as wide: IoU 1/3, height IoU 1/2
    boxes = np.array([wide, tall])
    iou = iou_matrix(t.pred_boxes, boxes)[0]
    assert iou[0] == pytest.approx(iou[1], abs=1e-6)
    cost = t._ocm_cost(np.array([0]), np.array([0, 1]), boxes, np.array([0.9, 0.9]))
    assert cost[0, 0] < cost[0, 1]


def test_direction_cost_center_and_corners():
    # a track moving right: the detection ahead is consistent, the one behind is not
    origin = ocm_points(np.array([_box(100)]))  # (1, 1, 2)
    track_dir = np.array([[[1.0, 0.0]]])
    targets = ocm_points(np.array([_box(130), _box(70), _box(100, 130)]))
    c = direction_cost(track_dir, origin, targets)
    np.testing.assert_allclose(c, [[0.5, -0.5, 0.0]], atol=1e-9)
    assert direction_cost(np.zeros((1, 1, 2)), origin, targets).tolist() == [[0.0, 0.0, 0.0]]  # unknown
    # corners: a box growing to the right (its left edge still): only the right corners move,
    # the left ones have no direction and do not count
    grow = ocm_points(np.array([[100, 100, 140, 200], [100, 100, 160, 200]]), corners=True)
    assert grow.shape == (2, 4, 2)
    d = grow[1] - grow[0]
    unit = np.divide(d, np.linalg.norm(d, axis=1, keepdims=True), out=np.zeros_like(d),
                     where=np.linalg.norm(d, axis=1, keepdims=True) > 0)  # fmt: skip
    ahead = ocm_points(np.array([[100, 100, 180, 200], [60, 100, 140, 200]]), corners=True)
    c = direction_cost(unit[None], grow[1][None], ahead)
    assert c[0, 0] == pytest.approx(0.5) and c[0, 1] < 0.5


def test_corner_ocm_tracker_keeps_per_corner_directions():
    t = make_tracker("ocsort", n_init=1, ocm_corners=True)
    for f in range(1, 6):
        t.update(_frame([100, 100, 140 + 10 * f, 200]))  # the right edge moves right
    d = t.tracks.direction[0]
    assert d.shape == (4, 2)
    np.testing.assert_allclose(d[[1, 3]], [[1, 0], [1, 0]], atol=1e-9)
    np.testing.assert_allclose(d[[0, 2]], 0.0)  # still corners: unknown


def test_oru_virtual_boxes_are_on_the_line():
    t = make_tracker("ocsort", n_init=1, kalman="xywh")
    seen = []
    orig = t.kf.update

    def spy(mean, cov, z, *a, **k):
        seen.append(np.array(z, dtype=float))
        return orig(mean, cov, z, *a, **k)

    for f in range(1, 6):
        t.update(_frame(_box(10 * f)))
    for _ in range(3):
        t.update(_frame())
    t.kf.update = spy
    t.update(_frame(_box(90)))  # last observed at 50, gap of 4 frames: virtual 60, 70, 80
    cx = [z[0, 0] for z in seen[:3]]
    np.testing.assert_allclose(cx, [80, 90, 100])  # centers (x + w/2) of boxes at 60, 70, 80


@pytest.mark.parametrize("ocr_max_age, recovered", [(None, True), (3, False), (5, True)])
def test_ocr_max_age_limits_recovery_to_recently_lost_tracks(ocr_max_age, recovered):
    t = make_tracker("ocsort", n_init=1, oru=False, ocr_max_age=ocr_max_age)
    for f in range(1, 12):
        first = t.update(_frame(_box(100 + 25 * f, w=100)))
    for _ in range(4):
        t.update(_frame())
    again = t.update(_frame(_box(100 + 25 * 11 + 2, w=100)))  # lost 5 frames, reappears where it stopped
    assert (int(again.track_ids[0]) == int(first.track_ids[0])) is recovered


def test_tcm_prefers_the_detection_whose_score_follows_the_track_s_trend():
    t = make_tracker("ocsort", n_init=1, inertia=0.0, tcm=1.0)
    for s in (0.9, 0.8, 0.7):  # falling: predicted 0.6
        t.update(_frame(_box(100), scores=[s]))
    np.testing.assert_allclose(t._predicted_scores(np.array([0])), [0.6])
    t.pred_boxes = t.tracks.boxes()
    boxes = np.array([_box(105), _box(95)])  # same IoU with the prediction
    cost = t._ocm_cost(np.array([0]), np.array([0, 1]), boxes, np.array([0.6, 0.95]))
    assert cost[0, 0] < cost[0, 1]
    t0 = make_tracker("ocsort", n_init=1, inertia=0.0)
    t0.tracks, t0.pred_boxes = t.tracks, t.pred_boxes
    c0 = t0._ocm_cost(np.array([0]), np.array([0, 1]), boxes, np.array([0.6, 0.95]))
    assert c0[0, 0] == pytest.approx(c0[0, 1], abs=1e-6)
