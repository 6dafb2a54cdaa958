"""Optical-flow pose smoothing and the One-Euro filter on synthetic data with known truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.pose.smoothing import (
    FlowPoseSmoother,
    OneEuroFilter,
    OneEuroPoseSmoother,
    smooth_pose_sequence,
)
from fiftyone_posetrack.types import BadInputError, FramePoses

H, W = 240, 320
VELOCITY = np.array([2.3, 1.1])  # px / frame, the whole scene translates


@pytest.fixture(scope="module")
def scene():
    """A textured scene translating by VELOCITY per frame, and ground-truth joints of 2 people."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (2 * H, 2 * W)).astype(np.float32), (0, 0), 2.0)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    base = rng.uniform([80, 60], [200, 150], (2, 17, 2))
    frames, truth = [], []
    for k in range(16):
        shift = VELOCITY * k
        warp = np.float32(
            [[1, 0, -40 + shift[0]], [0, 1, -40 + shift[1]]]
        )  # content moves by +shift
        frames.append(cv2.cvtColor(cv2.warpAffine(texture, warp, (W, H)), cv2.COLOR_GRAY2BGR))
        truth.append(base + shift)
    return frames, truth


def _noisy(truth, sigma, seed=1):
    rng = np.random.default_rng(seed)
    return [
        FramePoses(t + rng.normal(0, sigma, t.shape), np.full(t.shape[:2], 0.9), [1, 2])
        for t in truth
    ]


def _mean_error(poses, truth):
    return float(
        np.mean([np.nanmean(np.linalg.norm(p.keypoints - t, axis=2)) for p, t in zip(poses, truth)])
    )


@pytest.mark.parametrize("method", ["lk", "dis"])
def test_flow_smoothing_reduces_joint_error(scene, method):
    frames, truth = scene
    noisy = _noisy(truth, sigma=3.0)
    smoothed = smooth_pose_sequence(frames, noisy, alpha=0.25, method=method)
    before, after = _mean_error(noisy, truth), _mean_error(smoothed, truth)
    print(
        f"\nflow smoothing ({method}, a=0.25): mean joint error {before:.2f} -> {after:.2f} px "
        f"({after / before:.2f}x)"
    )
    # exact flow would give sqrt(2 a^2 + (1 - 2a)^2) = 0.61x
    assert after < 0.7 * before
    assert [p.track_ids.tolist() for p in smoothed] == [[1, 2]] * len(frames)
    np.testing.assert_array_equal(smoothed[3].scores, noisy[3].scores)


def test_alpha_zero_is_identity(scene):
    frames, truth = scene
    noisy = _noisy(truth[:3], 3.0)
    out = smooth_pose_sequence(frames[:3], noisy, alpha=0.0)
    for a, b in zip(out, noisy):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_track_start_end_and_missing_neighbours(scene):
    """Only the available neighbour is used, with renormalised weights."""
    frames, truth = scene
    clean = [FramePoses(t, np.full((2, 17), 0.9), [1, 2]) for t in truth[:3]]
    offset = 6.0
    cur = FramePoses(truth[1] + offset, np.full((2, 17), 0.9), [1, 2])
    smoother = FlowPoseSmoother(alpha=0.25)
    # track 2 ends at the current frame: absent from the next one
    nxt = FramePoses(truth[2][:1], np.full((1, 17), 0.9), [1])
    out = smoother.smooth(frames[1], cur, frames[0], clean[0], frames[2], nxt)
    # track 1: both neighbours (exact) -> offset * 0.5; track 2: prev only -> offset * 0.5 / 0.75
    np.testing.assert_allclose(out.keypoints[0] - truth[1][0], offset * 0.5, atol=0.3)
    np.testing.assert_allclose(out.keypoints[1] - truth[1][1], offset * 0.5 / 0.75, atol=0.3)
    # first frame of the stream: no previous frame at all
    first = smoother.smooth(frames[1], cur, next_frame=frames[2], next_poses=clean[2])
    np.testing.assert_allclose(first.keypoints - truth[1], offset * 0.5 / 0.75, atol=0.3)
    # a lone frame stays as it is
    alone = smoother.smooth(frames[1], cur)
    np.testing.assert_allclose(alone.keypoints, cur.keypoints)


def test_nan_and_low_score_joints(scene):
    frames, truth = scene
    scores = np.full((2, 17), 0.9)
    prev_kps = truth[0].copy()
    prev_kps[0, 3] = np.nan  # missing in the previous frame
    low = scores.copy()
    low[0, 4] = 0.05  # too unsure to be a source
    prev = FramePoses(prev_kps, low, [1, 2])
    cur_kps = truth[1] + 6.0
    cur_kps[1, 5] = np.nan  # missing in the current frame: stays missing
    cur = FramePoses(cur_kps, scores, [1, 2])
    nxt = FramePoses(truth[2], scores, [1, 2])
    out = FlowPoseSmoother(alpha=0.25, score_threshold=0.3).smooth(
        frames[1], cur, frames[0], prev, frames[2], nxt
    )
    assert np.isnan(out.keypoints[1, 5]).all()
    assert np.isfinite(np.delete(out.keypoints.reshape(-1, 2), 17 + 5, axis=0)).all()
    for joint in (3, 4):  # next neighbour only
        np.testing.assert_allclose(
            out.keypoints[0, joint] - truth[1][0, joint], 6.0 * 0.5 / 0.75, atol=0.3
        )
    np.testing.assert_allclose(out.keypoints[0, 0] - truth[1][0, 0], 6.0 * 0.5, atol=0.3)


def test_lost_flow_points_are_dropped(scene):
    frames, truth = scene
    scores = np.full((1, 17), 0.9)
    prev_kps = truth[0][:1].copy()
    prev_kps[0, 0] = (-50.0, -50.0)  # outside the frame: flow cannot track it
    cur = FramePoses(truth[1][:1] + 6.0, scores, [1])
    out = FlowPoseSmoother(alpha=0.25).smooth(
        frames[1], cur, frames[0], FramePoses(prev_kps, scores, [1])
    )
    np.testing.assert_allclose(
        out.keypoints[0, 0], cur.keypoints[0, 0]
    )  # no usable source: unchanged
    np.testing.assert_allclose(out.keypoints[0, 1] - truth[1][0, 1], 6.0 * 0.5 / 0.75, atol=0.3)


def test_streaming_equals_windowed(scene):
    frames, truth = scene
    noisy = _noisy(truth[:4], 3.0)
    smoother = FlowPoseSmoother()
    streamed = [smoother.push(f, p) for f, p in zip(frames[:4], noisy)]
    assert streamed[0] is None
    streamed = streamed[1:] + [smoother.flush()]
    direct = FlowPoseSmoother().smooth(
        frames[2], noisy[2], frames[1], noisy[1], frames[3], noisy[3]
    )
    np.testing.assert_allclose(streamed[2].keypoints, direct.keypoints)
    assert len(streamed) == 4


def test_confidence_weighting_low_confidence_only_and_max_shift(scene):
    """The variants measured in bench/bench_smoothing.py, on exact neighbours and a current frame 6 px off."""
    frames, truth = scene
    offset = 6.0
    cur_scores = np.full((2, 17), 0.9)
    cur_scores[0, :8] = 0.3  # person 1: the first 8 joints are unsure
    nb_scores = np.full((2, 17), 0.9)
    cur = FramePoses(truth[1] + offset, cur_scores, [1, 2])
    prev, nxt = (FramePoses(truth[k], nb_scores, [1, 2]) for k in (0, 2))
    args = (frames[1], cur, frames[0], prev, frames[2], nxt)

    def residual(**kw):
        return (FlowPoseSmoother(alpha=0.25, **kw).smooth(*args).keypoints - truth[1]).mean(axis=2)

    # fixed weights: half the offset left everywhere
    np.testing.assert_allclose(residual(), offset * 0.5, atol=0.3)
    # confidence: an unsure joint (0.3) weighs 0.5 * 0.3 against 2 * 0.25 * 0.9
    conf = residual(weighting="confidence")
    np.testing.assert_allclose(conf[0, :8], offset * 0.15 / (0.15 + 0.45), atol=0.3)
    np.testing.assert_allclose(conf[1], offset * 0.45 / (0.45 + 0.45), atol=0.3)
    # only joints scoring below 0.5 are smoothed; the others keep their detection
    below = residual(smooth_below=0.5)
    np.testing.assert_allclose(below[0, :8], offset * 0.5, atol=0.3)
    np.testing.assert_allclose(below[0, 8:], offset)
    np.testing.assert_allclose(below[1], offset)
    # the neighbours are 6 px (x, y: 8.5 px) from the current joints: a limit under that drops them
    heights = np.ptp(truth[1][..., 1], axis=1)
    np.testing.assert_allclose(residual(max_shift=4.0 / heights.min()), offset)
    np.testing.assert_allclose(residual(max_shift=20.0 / heights.min()), offset * 0.5, atol=0.3)
    # the forward-backward threshold is passed to the flow: streaming equals windowed with it too
    sm = FlowPoseSmoother(alpha=0.25, fb_threshold=0.5, weighting="confidence", max_shift=0.5)
    streamed = [sm.push(f, p) for f, p in zip(frames[:3], [prev, cur, nxt])][1:] + [sm.flush()]
    direct = FlowPoseSmoother(alpha=0.25, fb_threshold=0.5, weighting="confidence", max_shift=0.5).smooth(*args)
    np.testing.assert_allclose(streamed[1].keypoints, direct.keypoints)
    for bad in (dict(weighting="score"), dict(fb_threshold=0), dict(max_shift=-1.0)):
        with pytest.raises(BadInputError, match=next(iter(bad))):
            FlowPoseSmoother(**bad)


def test_bad_parameters():
    with pytest.raises(BadInputError, match="alpha"):
        FlowPoseSmoother(alpha=0.7)
    with pytest.raises(BadInputError, match="method"):
        FlowPoseSmoother(method="farneback")
    with pytest.raises(BadInputError, match="2 frames but 1"):
        smooth_pose_sequence(
            [np.zeros((4, 4, 3), np.uint8)] * 2,
            [FramePoses(np.zeros((0, 17, 2)), np.zeros((0, 17)), [])],
        )


def test_one_euro_reduces_jitter_on_constant_velocity():
    rng = np.random.default_rng(0)
    fps, n = 30.0, 300
    t = np.arange(n) / fps
    truth = np.stack([100 + 60 * t, 50 + 20 * t], axis=1)  # px, constant velocity
    noisy = truth + rng.normal(0, 2.0, truth.shape)
    jitter = lambda x: np.linalg.norm(np.diff(x, 2, axis=0), axis=1).mean()  # noqa: E731
    err = lambda x: np.linalg.norm(x[30:] - truth[30:], axis=1).mean()  # noqa: E731
    filt = OneEuroFilter()  # min_cutoff 1 Hz, beta 0.1
    out = np.array([filt(x, ti) for x, ti in zip(noisy, t)])
    print(
        f"\nOne-Euro: jitter {jitter(noisy):.2f} -> {jitter(out):.2f} px/frame^2, "
        f"error {err(noisy):.2f} -> {err(out):.2f} px"
    )
    assert jitter(out) < 0.6 * jitter(noisy)
    assert err(out) < err(noisy)
    # a smaller beta smooths more at the price of lag
    slow = OneEuroFilter(beta=0.01)
    out = np.array([slow(x, ti) for x, ti in zip(noisy, t)])
    assert jitter(out) < 0.3 * jitter(noisy)


def test_one_euro_pose_smoother_tracks_and_nans():
    rng = np.random.default_rng(0)
    smoother = OneEuroPoseSmoother(fps=10, max_gap=2)
    base = rng.uniform(0, 100, (17, 2))
    out = smoother.update(FramePoses(base[None], np.ones((1, 17)), [7]))
    np.testing.assert_allclose(out.keypoints[0], base)  # the first sample passes through
    kps = base + 10.0
    kps[2] = np.nan
    out = smoother.update(FramePoses(kps[None], np.ones((1, 17)), [7]))
    assert np.isnan(out.keypoints[0, 2]).all()
    moved = out.keypoints[0, 0] - base[0]
    assert (moved > 0).all() and (moved < 10).all()  # filtered towards the new sample
    # a new track starts fresh, an old track unseen for > max_gap frames too
    other = smoother.update(FramePoses(base[None] + 50, np.ones((1, 17)), [8]), frame_number=10)
    np.testing.assert_allclose(other.keypoints[0], base + 50)
    back = smoother.update(FramePoses(base[None] + 30, np.ones((1, 17)), [7]))
    np.testing.assert_allclose(back.keypoints[0], base + 30)


def test_flow_smoothing_lowers_error_and_jitter_on_the_synthetic_crowd(tmp_path):
    """The Done-when measurement of issue 4 at test size (bench/bench_smoothing.py
    runs it at 20 people, 960 x 540): exact joints of a rendered crowd plus 3 px
    noise, smoothed with the rendered frames' optical flow."""
    from fiftyone_posetrack.synth import render_crowd
    from fiftyone_posetrack.video import VideoReader

    crowd = render_crowd(tmp_path, people=6, frames=30, width=480, height=272, seed=0)
    with VideoReader(crowd.video_path) as reader:
        frames = [f for _, f in reader]
    truth = crowd.keypoints.astype(np.float64)
    valid = (crowd.keypoint_flags > 0) & np.isfinite(truth).all(axis=-1)
    noisy = np.where(valid[..., None], truth + np.random.default_rng(1).normal(0, 3.0, truth.shape), np.nan)
    smoother = FlowPoseSmoother(alpha=0.25)
    out = []
    for f, frame in enumerate(frames):
        present = np.isfinite(noisy[f]).any(axis=(1, 2))
        poses = FramePoses(noisy[f][present], np.where(valid[f][present], 0.9, 0.0), np.flatnonzero(present) + 1)
        out.append(smoother.push(frame, poses))
    out = out[1:] + [smoother.flush()]
    smoothed = np.full_like(noisy, np.nan)
    for f, p in enumerate(out):
        smoothed[f, p.track_ids - 1] = p.keypoints

    def error_and_jitter(kps):
        second = np.linalg.norm(kps[2:] - 2 * kps[1:-1] + kps[:-2], axis=-1)
        keep = valid[2:] & valid[1:-1] & valid[:-2]
        return np.nanmean(np.linalg.norm(kps - truth, axis=-1)[valid]), np.nanmean(second[keep])

    (e0, j0), (e1, j1) = error_and_jitter(noisy), error_and_jitter(smoothed)
    print(f"\nsynthetic crowd, 3 px noise: error {e0:.2f} -> {e1:.2f} px, jitter {j0:.2f} -> {j1:.2f} px/frame^2")
    assert np.isfinite(smoothed[valid]).all()  # no visible joint lost
    assert e1 < 0.8 * e0
    assert j1 < 0.5 * j0
