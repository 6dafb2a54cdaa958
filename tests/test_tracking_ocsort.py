"""OC-SORT (OCM, ORU, OCR), BoT-SORT's box-state Kalman filter, NSA Kalman, StrongSORT's EMA gallery."""

import numpy as np
import pytest

from fiftyone_posetrack.tracking import make_tracker
from fiftyone_posetrack.tracking.kalman import KalmanBoxFilter, KalmanXYWHFilter
from fiftyone_posetrack.types import BadInputError, FrameDetections


def _box(x, y=100.0, w=40.0, h=100.0):
    return [x, y, x + w, y + h]


def _frame(*boxes, score=0.9):
    return FrameDetections(np.array(boxes, dtype=float).reshape(-1, 4), np.full(len(boxes), score))


def test_ocsort_follows_walkers_with_missed_detections():
    rng = np.random.default_rng(0)
    t = make_tracker("ocsort", n_init=1)
    ids = {1: set(), 2: set(), 3: set()}
    for f in range(1, 60):
        people = {1: _box(10 + 5 * f), 2: _box(900 - 5 * f, 300), 3: _box(400, 500 + f)}
        shown = [p for p in people if rng.random() > 0.15 or f == 1]
        out = t.update(_frame(*[people[p] for p in shown]))
        for p, tid in zip(shown, out.track_ids[np.argsort(out.det_indices)]):
            ids[p].add(int(tid))
    assert all(len(v) == 1 for v in ids.values()), ids


def test_ocm_direction_prefers_the_detection_on_the_track_s_course():
    t = make_tracker("ocsort", n_init=1, inertia=0.2, ocm_corners=False)  # the paper's center OCM
    for f in range(1, 8):
        t.update(_frame(_box(100 + 6 * f, w=60, h=60)))
    np.testing.assert_allclose(t.tracks.direction[0], [[1.0, 0.0]], atol=1e-9)  # (points, xy): the center
    pred = t.kf.predict(t.tracks.mean, t.tracks.cov)[0]
    t.pred_boxes = t.kf.to_boxes(pred)
    x, y = t.pred_boxes[0, :2]
    ahead, aside = _box(x + 10, y, 60, 60), _box(x, y + 10, 60, 60)  # same IoU with the prediction
    boxes = np.array([ahead, aside])
    cost = t._ocm_cost(np.array([0]), np.array([0, 1]), boxes, np.array([0.9, 0.9]))
    assert cost[0, 0] < cost[0, 1]
    t0 = make_tracker("ocsort", n_init=1, inertia=0.0)
    t0.tracks, t0.pred_boxes, t0.frame_count = t.tracks, t.pred_boxes, t.frame_count
    cost0 = t0._ocm_cost(np.array([0]), np.array([0, 1]), boxes, np.array([0.9, 0.9]))
    assert cost0[0, 0] == pytest.approx(cost0[0, 1], abs=1e-9)


@pytest.mark.parametrize("ocr, same_id", [(True, True), (False, False)])
def test_ocr_recovers_a_track_from_its_last_observation(ocr, same_id):
    # fast to the right, then stops behind an occluder for 3 frames and reappears where it stopped:
    # the Kalman prediction ran on (no IoU), the last observation did not
    t = make_tracker("ocsort", n_init=1, ocr=ocr, oru=False)
    for f in range(1, 12):
        first = t.update(_frame(_box(100 + 25 * f, w=100)))
    assert int(first.track_ids[0]) == 1  # one track so far
    for _ in range(3):
        t.update(_frame())
    again = t.update(_frame(_box(100 + 25 * 11 + 2, w=100)))
    assert len(again) == 1
    assert (int(again.track_ids[0]) == int(first.track_ids[0])) is same_id


def test_ocsort_bad_parameters():
    with pytest.raises(BadInputError, match="delta_t"):
        make_tracker("ocsort", delta_t=0)
    with pytest.raises(BadInputError, match="iou_threshold"):
        make_tracker("ocsort", iou_threshold=1.5)


def test_xywh_filter_roundtrip_and_constant_velocity():
    kf = KalmanXYWHFilter()
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [0.0, 0.0, 30.0, 60.0]])
    np.testing.assert_allclose(kf.to_boxes(kf.from_boxes(boxes)), boxes)
    mean, cov = kf.initiate(kf.from_boxes(boxes[:1]))
    for k in range(1, 30):  # x moves 3 px / frame, the width grows 0.5 px / frame
        mean, cov = kf.predict(mean, cov)
        z = np.array([[10 + 3 * k, 20, 50 + 3 * k + 0.5 * k, 120]], float)
        mean, cov = kf.update(mean, cov, kf.from_boxes(z))
    np.testing.assert_allclose(mean[0, 4], 3.25, atol=0.05)  # center x velocity: 3 + 0.5 / 2
    np.testing.assert_allclose(mean[0, 6], 0.5, atol=0.05)  # width velocity, tracked directly
    t = make_tracker("bytetrack", kalman="xywh")
    assert isinstance(t.kf, KalmanXYWHFilter)
    with pytest.raises(BadInputError, match="kalman"):
        make_tracker("bytetrack", kalman="xyz")


def test_nsa_trusts_confident_detections_more():
    kf = KalmanBoxFilter(nsa=True)
    mean, cov = kf.predict(*kf.initiate(kf.from_boxes(np.array([_box(100)]))))
    z = kf.from_boxes(np.array([_box(110)]))
    hi = kf.update(mean, cov, z, scores=np.array([0.95]))[0][0, 0]
    lo = kf.update(mean, cov, z, scores=np.array([0.2]))[0][0, 0]
    plain = KalmanBoxFilter().update(mean, cov, z)[0][0, 0]
    target = z[0, 0]
    assert abs(target - hi) < abs(target - lo) < abs(target - plain) + 1e-9
    # without scores NSA is the plain filter
    np.testing.assert_allclose(kf.update(mean, cov, z)[0], KalmanBoxFilter().update(mean, cov, z)[0])


def test_ema_gallery_keeps_one_blended_feature():
    t = make_tracker("deepsort", n_init=1, ema_momentum=0.9)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    t.update(FrameDetections(np.array([_box(100)]), np.array([0.9]), a[None]))
    t.update(FrameDetections(np.array([_box(102)]), np.array([0.9]), b[None]))
    g = t.tracks.galleries[0]
    assert g.shape == (1, 2)
    expected = (0.9 * a + 0.1 * b) / np.linalg.norm(0.9 * a + 0.1 * b)
    np.testing.assert_allclose(g[0], expected, atol=1e-6)
    with pytest.raises(BadInputError, match="ema_momentum"):
        make_tracker("deepsort", ema_momentum=1.0)
