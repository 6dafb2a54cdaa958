"""Affine box crops and their inverse."""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.pose.crops import (
    boxes_to_center_scale,
    crop_boxes,
    crop_to_frame,
    fix_aspect_ratio,
    frame_to_crop,
)


def test_center_scale_and_aspect_ratio():
    centers, scales = boxes_to_center_scale(
        np.array([[10, 20, 110, 220], [0, 0, 300, 100]]), padding=1.25
    )
    np.testing.assert_allclose(centers, [[60, 120], [150, 50]])
    np.testing.assert_allclose(scales, [[125, 250], [375, 125]])
    fixed = fix_aspect_ratio(scales, 192 / 256)
    np.testing.assert_allclose(fixed, [[187.5, 250], [375, 500]])  # only ever enlarged
    np.testing.assert_allclose(fixed[:, 0] / fixed[:, 1], 0.75)


def test_inverse_crop_roundtrip():
    rng = np.random.default_rng(0)
    centers = rng.uniform(50, 400, (5, 2))
    scales = rng.uniform(20, 300, (5, 2))
    points = rng.uniform(0, 500, (5, 17, 2))
    crop = frame_to_crop(points, centers, scales, (192, 256))
    np.testing.assert_allclose(crop_to_frame(crop, centers, scales, (192, 256)), points)
    # the window center lands on the crop center, the window corner on (0, 0)
    np.testing.assert_allclose(
        frame_to_crop(centers[:, None], centers, scales, (192, 256))[:, 0], [[96, 128]] * 5
    )
    np.testing.assert_allclose(
        frame_to_crop((centers - scales / 2)[:, None], centers, scales, (192, 256))[:, 0],
        0,
        atol=1e-9,
    )


def test_crop_content_lands_where_frame_to_crop_says():
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[148:153, 248:253] = (0, 0, 255)  # a 5x5 red dot centred on (250, 150)
    boxes = np.array(
        [[200.0, 60.0, 290.0, 260.0], [-50.0, -20.0, 380.0, 290.0]]
    )  # second one leaves the frame
    centers, scales = boxes_to_center_scale(boxes)
    scales = fix_aspect_ratio(scales, 0.75)
    crops = crop_boxes(frame, centers, scales, (192, 256))
    assert crops.shape == (2, 256, 192, 3)
    expected = frame_to_crop(np.array([[[250.0, 150.0]]] * 2), centers, scales, (192, 256))[:, 0]
    for crop, (ex, ey) in zip(crops, expected):
        red = crop[..., 2].astype(float)
        ys, xs = np.nonzero(red > 0)
        cx, cy = (
            (xs * red[ys, xs]).sum() / red[ys, xs].sum(),
            (ys * red[ys, xs]).sum() / red[ys, xs].sum(),
        )
        assert abs(cx - ex) < 0.3 and abs(cy - ey) < 0.3
        assert crop[..., :2].max() == 0  # nothing but the dot, borders are black
