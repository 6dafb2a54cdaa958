"""Track post-processing numerics (fiftyone_posetrack.tracking.postprocess): exact small cases."""

import numpy as np
import pytest

from fiftyone_posetrack.tracking.postprocess import (
    PostprocessConfig,
    filter_tracks,
    gsi_smooth_tracks,
    interpolate_tracks,
    link_tracklets,
    postprocess_tracks,
)
from fiftyone_posetrack.types import BadInputError


def _track(tid, frames, x0=100.0, vx=2.0, y0=50.0, vy=1.0, w=40.0, h=100.0, score=0.9):
    frames = np.asarray(frames, dtype=float)
    n = len(frames)
    return np.column_stack([frames, np.full(n, tid), x0 + vx * frames, y0 + vy * frames,
                            np.full(n, w), np.full(n, h), np.full(n, score), -np.ones((n, 3))])


def test_gap_of_k_frames_gives_k_boxes_on_the_line():
    k = 5
    a = np.array([[10, 7, 100, 200, 40, 80, 0.9, -1, -1, -1]], float)
    b = np.array([[10 + k + 1, 7, 160, 140, 52, 104, 0.8, -1, -1, -1]], float)
    out, mask = interpolate_tracks(np.concatenate([b, a]), max_gap=k, return_mask=True)
    assert len(out) == k + 2 and mask.sum() == k
    filled = out[mask]
    np.testing.assert_array_equal(filled[:, 0], np.arange(11, 11 + k))
    np.testing.assert_array_equal(filled[:, 1], 7)
    j = (np.arange(1, k + 1) / (k + 1))[:, None]
    np.testing.assert_allclose(filled[:, 2:6], a[0, 2:6] + (b[0, 2:6] - a[0, 2:6]) * j)
    assert (filled[:, 6] == 0).all()
    # the observed rows are unchanged
    np.testing.assert_array_equal(out[~mask], np.concatenate([a, b]))


def test_gap_above_max_gap_and_track_ends_are_not_filled():
    t = np.concatenate([_track(1, [1, 2, 9, 10]), _track(2, [4, 5])])
    out = interpolate_tracks(t, max_gap=5)
    np.testing.assert_array_equal(out, t[np.lexsort((t[:, 1], t[:, 0]))])
    out = interpolate_tracks(t, max_gap=6)
    assert len(out) == len(t) + 6
    assert out[:, 0].min() == 1 and out[:, 0].max() == 10  # never extended


def test_gap_larger_than_the_video_is_an_error():
    t = _track(1, [1, 50])
    with pytest.raises(BadInputError, match="video has 20 frames"):
        interpolate_tracks(t, max_gap=100, num_frames=20)
    with pytest.raises(BadInputError, match="video has 20 frames"):
        postprocess_tracks(t, {"interpolate": 100}, num_frames=20)


def test_gsi_leaves_a_straight_constant_speed_track_unchanged():
    t = _track(3, np.arange(1, 80), vx=3.5, vy=-1.25)
    t[:, 4] = 30 + 0.1 * t[:, 0]  # the width grows linearly too
    out = gsi_smooth_tracks(t, tau=10)
    np.testing.assert_allclose(out, t, atol=1e-6)


def test_gsi_reduces_jitter_of_a_straight_track():
    rng = np.random.default_rng(0)
    clean = _track(1, np.arange(1, 101))
    noisy = clean.copy()
    noisy[:, 2:4] += rng.normal(0, 3.0, (100, 2))
    out = gsi_smooth_tracks(noisy, tau=10)
    err_before = np.abs(noisy[:, 2:4] - clean[:, 2:4]).mean()
    err_after = np.abs(out[:, 2:4] - clean[:, 2:4]).mean()
    assert err_after < 0.5 * err_before


def test_gsi_long_track_in_windows_is_unchanged_when_straight():
    t = _track(1, np.arange(1, 1501), vx=0.5)
    np.testing.assert_allclose(gsi_smooth_tracks(t, tau=10), t, atol=1e-6)


def test_tracks_with_one_or_two_boxes_pass_through():
    t = np.concatenate([_track(1, [5]), _track(2, [3, 4])])
    out = postprocess_tracks(t, {"interpolate": 10, "gsi": True})
    np.testing.assert_array_equal(out, t[np.lexsort((t[:, 1], t[:, 0]))])


def test_filter_short_and_low_score_tracks():
    t = np.concatenate([_track(1, range(1, 11)), _track(2, range(1, 4)), _track(3, range(1, 11), score=0.2)])
    out = filter_tracks(t, min_length=5)
    assert set(out[:, 1].astype(int)) == {1, 3}
    out = filter_tracks(t, min_score=0.5)
    assert set(out[:, 1].astype(int)) == {1, 2}
    out = postprocess_tracks(t, {"min_length": 5, "min_score": 0.5})
    assert set(out[:, 1].astype(int)) == {1}


def test_link_joins_a_person_who_reenters_and_not_a_stranger():
    # id 1 walks right, disappears for 20 frames, comes back on its line as id 2;
    # id 3 starts at the same time far away
    a = _track(1, range(1, 31), x0=100, vx=4)
    b = _track(2, range(51, 81), x0=100, vx=4)
    c = _track(3, range(51, 81), x0=1500, vx=-4, y0=400)
    out = link_tracklets(np.concatenate([a, b, c]), max_gap=30, max_distance=0.5)
    assert set(out[out[:, 0] >= 51][:, 1].astype(int)) == {1, 3}
    linked = out[out[:, 1] == 1]
    assert len(linked) == 60 and linked[:, 0].max() == 80
    # too long a gap: no link
    out = link_tracklets(np.concatenate([a, b, c]), max_gap=10)
    assert set(out[:, 1].astype(int)) == {1, 2, 3}


def test_link_with_features_forbids_different_appearance():
    a = _track(1, range(1, 31), x0=100, vx=4)
    b = _track(2, range(41, 71), x0=100, vx=4)
    feats = {1: np.array([1.0, 0.0]), 2: np.array([0.0, 1.0])}
    out = link_tracklets(np.concatenate([a, b]), max_gap=30, features=feats)
    assert set(out[:, 1].astype(int)) == {1, 2}
    feats[2] = np.array([0.99, 0.05])
    out = link_tracklets(np.concatenate([a, b]), max_gap=30, features=feats)
    assert set(out[:, 1].astype(int)) == {1}


def test_link_then_interpolate_fills_the_bridged_gap():
    a = _track(1, range(1, 31), x0=100, vx=4)
    b = _track(2, range(41, 71), x0=100, vx=4)
    out, mask = postprocess_tracks(np.concatenate([a, b]), {"link": True, "interpolate": 10}, return_mask=True)
    assert mask.sum() == 10 and set(out[:, 1].astype(int)) == {1}
    np.testing.assert_allclose(out[:, 2], 100 + 4 * out[:, 0])  # on the line


@pytest.mark.parametrize(
    "options, match",
    [
        ({"interpolate": -1}, "interpolate"),
        ({"interpolate": 2.5}, "interpolate"),
        ({"gsi_tau": float("nan")}, "gsi_tau"),
        ({"gsi_tau": -3}, "gsi_tau"),
        ({"min_length": -2}, "min_length"),
        ({"min_score": float("nan")}, "min_score"),
        ({"min_score": 1.5}, "min_score"),
        ({"link_max_gap": 0}, "link_max_gap"),
        ({"gsi": "yes"}, "gsi"),
        ({"smooth": True}, "unknown option"),
    ],
)
def test_bad_parameters_are_named_and_input_untouched(options, match):
    t = _track(1, [1, 2, 5])
    before = t.copy()
    with pytest.raises(BadInputError, match=match):
        postprocess_tracks(t, options)
    np.testing.assert_array_equal(t, before)


@pytest.mark.parametrize(
    "tracks, match",
    [
        (np.array([[1, 1, 0, 0, 10, np.nan, 1]]), "NaN"),
        (np.array([[0, 1, 0, 0, 10, 10, 1]]), "frames"),
        (np.array([[1, 1, 0, 0, -10, 10, 1]]), "negative"),
        (np.array([[1, 1, 0, 0, 10, 10, 1], [1, 1, 5, 5, 10, 10, 1]]), "twice"),
        (np.zeros((3, 4)), "MOT array"),
    ],
)
def test_bad_tracks_are_refused(tracks, match):
    with pytest.raises(BadInputError, match=match):
        postprocess_tracks(tracks, {"interpolate": 5})


def test_inputs_are_never_modified():
    t = np.concatenate([_track(1, [1, 2, 6, 7, 8]), _track(2, range(10, 20))])
    before = t.copy()
    postprocess_tracks(t, PostprocessConfig(interpolate=5, gsi=True, link=True, min_length=2))
    np.testing.assert_array_equal(t, before)


def test_empty_tracks():
    out = postprocess_tracks(np.zeros((0, 10)), {"interpolate": 5, "gsi": True, "link": True})
    assert out.shape == (0, 10)
