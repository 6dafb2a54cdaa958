"""ByteTrack / SORT association, ORU and camera-motion compensation."""

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.tracking import available_trackers, make_tracker
from fiftyone_posetrack.tracking.cmc import CameraMotion
from fiftyone_posetrack.tracking.kalman import KalmanBoxFilter, xyxy_to_xyah
from fiftyone_posetrack.types import FrameDetections


def box(cx, cy=300.0, w=80.0, h=200.0):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def frame_dets(boxes, scores):
    return FrameDetections(np.asarray(boxes, float).reshape(-1, 4), scores)


def test_registry_names():
    assert {"deepsort", "bytetrack", "sort"} <= set(available_trackers())


@pytest.mark.parametrize("low_thresh, expect_kept", [(0.1, True), (None, False)])
def test_low_score_detections_keep_the_track(low_thresh, expect_kept):
    t = make_tracker("bytetrack", low_thresh=low_thresh)
    ids = []
    for k in range(12):
        score = 0.3 if 5 <= k < 9 else 0.9  # occluded: the detector is unsure
        out = t.update(frame_dets([box(100 + 8 * k)], [score]))
        ids.append(out.track_ids.tolist())
    assert ids[:5] == [[1]] * 5
    if expect_kept:
        assert ids[5:9] == [[1]] * 4
        assert out.track_ids.tolist() == [1]
    else:
        assert ids[5:9] == [[]] * 4
    assert ids[-1] == [1]  # lost tracks are re-found by the first stage either way


def test_low_score_alone_never_starts_a_track():
    t = make_tracker("bytetrack")
    for _ in range(5):
        assert len(t.update(frame_dets([box(100)], [0.4]))) == 0


def test_first_frame_tracks_are_output_at_once():
    t = make_tracker("bytetrack")
    out = t.update(frame_dets([box(100), box(400)], [0.9, 0.8]))
    assert out.track_ids.tolist() == [1, 2]
    out = t.update(frame_dets([box(700)], [0.9]))  # later tracks need n_init hits
    assert 3 not in out.track_ids.tolist()
    out = t.update(frame_dets([box(700)], [0.9]))
    assert 3 in out.track_ids.tolist()


def test_sort_matches_on_iou_only():
    t = make_tracker("sort", max_age=1, n_init=1)
    for k in range(5):
        out = t.update(frame_dets([box(100 + 10 * k), box(500 - 10 * k)], [1, 1]))
    assert sorted(out.track_ids.tolist()) == [1, 2]
    t.update(None)
    t.update(None)  # two misses > max_age 1
    out = t.update(frame_dets([box(150)], [1]))
    assert out.track_ids.tolist() == [3]


def test_observation_centric_re_update_replays_the_gap():
    """ORU = restart from the last observation and filter along the straight
    line to the new detection (one virtual box per missed frame)."""
    t = make_tracker("bytetrack", oru=True, max_age=30)
    for k in range(8):
        t.update(frame_dets([box(100 + 10 * k)], [0.9]))
    mean, cov = t.tracks.mean.copy(), t.tracks.cov.copy()  # at the last observation
    for _ in range(4):  # lost for 4 frames
        t.update(None)
    out = t.update(frame_dets([box(180)], [0.9]))
    assert out.track_ids.tolist() == [1]

    kf = KalmanBoxFilter()
    start, end = np.array([box(170)]), np.array([box(180)])
    for k in range(1, 6):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, xyxy_to_xyah(start + (end - start) * k / 5))
    np.testing.assert_allclose(t.tracks.mean, mean)
    np.testing.assert_allclose(t.tracks.cov, cov)

    plain = make_tracker("bytetrack", oru=False, max_age=30)
    for k in range(8):
        plain.update(frame_dets([box(100 + 10 * k)], [0.9]))
    for _ in range(4):
        plain.update(None)
    plain.update(frame_dets([box(180)], [0.9]))
    assert not np.allclose(plain.tracks.mean, mean)


def textured(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((h, w, 3)) * 255).astype(np.uint8), (0, 0), 2)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def test_camera_motion_recovers_a_pan_and_warps_tracks():
    img = textured()
    shift = np.float32([[1, 0, 6.0], [0, 1, -3.0]])
    moved = cv2.warpAffine(img, shift, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
    cam = CameraMotion(downscale=1)
    np.testing.assert_allclose(cam.update(img), np.eye(2, 3))
    a = cam.update(moved)
    np.testing.assert_allclose(a[:, 2], [6, -3], atol=0.3)
    np.testing.assert_allclose(a[:, :2], np.eye(2), atol=0.02)

    # a tracker with CMC follows a static person through the pan
    t = make_tracker("bytetrack", cmc=True, n_init=1)
    b0 = np.array([100, 60, 140, 160.0])
    t.update(frame_dets([b0], [0.9]), img)
    t.update(frame_dets([b0 + [6, -3, 6, -3]], [0.9]), moved)
    cx = t.tracks.mean[0, 0]
    assert cx == pytest.approx(126, abs=1.0)
