"""Optical-flow point propagation recovers known synthetic motion."""

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.flow import _lk_roi, dense_flow, propagate_points, propagate_points_both_ways, to_gray
from fiftyone_posetrack.types import BadInputError

SHIFT = (3.5, -2.25)  # sub-pixel (dx, dy)


def textured(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.uint8), (0, 0), 1.5)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def shifted(img, dx, dy):
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)  # fmt: skip


@pytest.fixture(scope="module")
def pair():
    img = textured()
    return img, shifted(img, *SHIFT)


def interior_grid(step=20, margin=40, h=240, w=320):
    ys, xs = np.mgrid[margin : h - margin : step, margin : w - margin : step]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)


def test_integer_roll_is_recovered_by_lk():
    img = textured()
    nxt = np.roll(img, (4, 7), axis=(0, 1))  # dy = 4, dx = 7
    pts = interior_grid()
    moved, ok = propagate_points(img, nxt, pts)
    assert ok.all()
    np.testing.assert_allclose(moved - pts, np.tile([7, 4], (len(pts), 1)), atol=0.05)


def test_lk_recovers_subpixel_shift(pair):
    pts = interior_grid()
    moved, ok = propagate_points(*pair, pts, method="lk")
    assert ok.mean() > 0.95
    disp = moved[ok] - pts[ok]
    np.testing.assert_allclose(np.median(disp, axis=0), SHIFT, atol=0.05)
    assert moved.dtype == np.float64 and ok.dtype == bool


def test_dis_recovers_subpixel_shift(pair):
    flow = dense_flow(*pair, preset="medium")
    assert flow.shape == (240, 320, 2) and flow.dtype == np.float32
    np.testing.assert_allclose(np.median(flow[40:-40, 40:-40].reshape(-1, 2), axis=0), SHIFT, atol=0.15)
    pts = interior_grid()
    moved, ok = propagate_points(*pair, pts, method="dis", dense_flow=flow)
    assert ok.all()
    np.testing.assert_allclose(np.median(moved - pts, axis=0), SHIFT, atol=0.15)
    moved2, _ = propagate_points(*pair, pts, method="dis")  # computes its own flow
    assert np.median(np.abs(moved2 - pts - SHIFT)) < 0.3


def test_lost_and_invalid_points(pair):
    pts = np.array([[100.0, 100.0], [np.nan, 5.0], [-10.0, 50.0], [319.5, 10.0]])
    moved, ok = propagate_points(*pair, pts)
    assert ok[0] and not ok[1] and not ok[2]
    np.testing.assert_array_equal(moved[2], pts[2])  # lost points keep their position
    # a point that flows outside the frame is lost
    _, ok_edge = propagate_points(pair[0], pair[1], np.array([[318.0, 120.0]]))
    assert not ok_edge[0]
    empty, ok_empty = propagate_points(*pair, np.zeros((0, 2)))
    assert empty.shape == (0, 2) and ok_empty.shape == (0,)


def test_textureless_points_are_lost_by_lk():
    flat = np.full((120, 160), 128, np.uint8)
    _, ok = propagate_points(flat, flat.copy(), np.array([[80.0, 60.0]]))
    assert not ok[0]


def test_bad_inputs(pair):
    with pytest.raises(BadInputError, match="to_gray"):
        propagate_points(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.uint8), [[1, 1]])
    with pytest.raises(BadInputError, match="differ in size"):
        propagate_points(pair[0], pair[1][:100], [[1, 1]])
    with pytest.raises(BadInputError, match=r"\(N, 2\)"):
        propagate_points(*pair, np.zeros((3, 3)))
    with pytest.raises(BadInputError, match="method"):
        propagate_points(*pair, [[5.0, 5.0]], method="farneback")
    with pytest.raises(BadInputError, match="preset"):
        dense_flow(*pair, preset="slow")


def test_to_gray():
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 255  # red
    g = to_gray(bgr)
    assert g.shape == (4, 5) and g.dtype == np.uint8 and g[0, 0] == 76
    assert to_gray(np.ones((4, 5), np.float32))[0, 0] == 255
    assert to_gray(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5)
    with pytest.raises(BadInputError):
        to_gray(np.zeros((4, 5, 2)))


@pytest.mark.parametrize("method", ["lk", "dis"])
def test_both_ways_equals_two_one_way_calls(method):
    a = textured(480, 800, seed=3)
    b = shifted(a, *SHIFT)
    rng = np.random.default_rng(0)
    pa = rng.uniform([0, 0], [800, 480], (40, 2))
    pb = rng.uniform([0, 0], [800, 480], (25, 2))
    pa[3], pb[0] = np.nan, [-5, 3]  # NaN and outside: not ok, unchanged
    (ma, oka), (mb, okb) = propagate_points_both_ways(a, b, pa, pb, method, win_size=11)
    ra, roka = propagate_points(a, b, pa, method, win_size=11)
    rb, rokb = propagate_points(b, a, pb, method, win_size=11)
    np.testing.assert_array_equal(oka, roka)
    np.testing.assert_array_equal(okb, rokb)
    np.testing.assert_allclose(ma, ra, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(mb, rb, atol=1e-9, equal_nan=True)
    assert oka.sum() > 30 and okb.sum() > 20 and not oka[3] and not okb[0]
    np.testing.assert_allclose(np.median(ma[oka] - pa[oka], axis=0), SHIFT, atol=0.15)
    np.testing.assert_allclose(np.median(mb[okb] - pb[okb], axis=0), np.negative(SHIFT), atol=0.15)
    # one side empty
    (ma2, oka2), (mb2, okb2) = propagate_points_both_ways(a, b, pa, np.zeros((0, 2)), method, win_size=11)
    np.testing.assert_array_equal(oka2, roka)
    np.testing.assert_allclose(ma2, ra, atol=1e-9, equal_nan=True)
    assert mb2.shape == (0, 2) and okb2.shape == (0,)


def test_lk_on_a_region_of_interest_matches_the_full_frame():
    """A few clustered points: LK runs on a crop (cheaper pyramids) with the same result."""
    a = textured(720, 1280, seed=4)
    b = shifted(a, *SHIFT)
    pts = np.random.default_rng(1).normal([600, 300], 30, (17, 2))
    assert _lk_roi(a.shape, pts, 11, 3) is not None  # the crop is taken
    moved, ok = propagate_points(a, b, pts, win_size=11)
    assert ok.all()
    np.testing.assert_allclose(moved - pts, np.broadcast_to(SHIFT, pts.shape), atol=0.1)
    # spread over the frame: no crop
    assert _lk_roi(a.shape, np.array([[10.0, 10.0], [1200, 700]]), 11, 3) is None
