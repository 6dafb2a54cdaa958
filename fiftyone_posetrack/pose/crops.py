"""Affine crops of person boxes for top-down pose models, and the inverse transform.

The convention is mmpose's (``GetBBoxCenterScale`` + ``TopdownAffine``, no
rotation): a box ``[x1, y1, x2, y2]`` becomes a center and a *scale* (the
width and height of the crop window in frame pixels) enlarged by ``padding``
(1.25) and widened or heightened to the model's aspect ratio ``w / h``. The
crop maps the window onto the ``(W, H)`` model input so that the window
center lands on ``(W / 2, H / 2)``::

    x_in = (x - cx) * W / sw + W / 2        x = x_in * sw / W + cx - sw / 2

Coordinates are pixel-index coordinates (pixel ``i`` spans ``[i - 0.5,
i + 0.5]``), as ``cv2.warpAffine`` uses them. Pixels outside the frame are
filled with ``border_value`` (0, as mmpose).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "boxes_to_center_scale",
    "fix_aspect_ratio",
    "crop_matrices",
    "crop_boxes",
    "crop_to_frame",
    "frame_to_crop",
]


def boxes_to_center_scale(
    boxes: np.ndarray, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 4)`` ``[x1, y1, x2, y2]`` boxes -> ``(N, 2)`` centers and ``(N, 2)`` padded ``(w, h)``.

    Degenerate boxes get a window of at least 1 x 1 pixel.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    scales = np.maximum((boxes[:, 2:] - boxes[:, :2]) * padding, 1.0)
    return centers, scales


def fix_aspect_ratio(scales: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Enlarges ``(N, 2)`` ``(w, h)`` scales to the aspect ratio ``w / h`` (never shrinks)."""
    scales = np.asarray(scales, dtype=np.float64).reshape(-1, 2)
    w, h = scales[:, 0], scales[:, 1]
    wide = w > h * aspect_ratio
    return np.stack(
        [np.where(wide, w, h * aspect_ratio), np.where(wide, w / aspect_ratio, h)], axis=1
    )


def crop_matrices(
    centers: np.ndarray, scales: np.ndarray, output_size: tuple[int, int]
) -> np.ndarray:
    """``(N, 2, 3)`` affine matrices from frame pixels to crop pixels.

    Args:
        centers: ``(N, 2)`` window centers in frame pixels
        scales: ``(N, 2)`` window ``(w, h)`` in frame pixels
        output_size: ``(W, H)`` of the crop
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    size = np.asarray(output_size, dtype=np.float64)
    gain = size / np.asarray(scales, dtype=np.float64).reshape(-1, 2)
    mats = np.zeros((len(centers), 2, 3))
    mats[:, 0, 0] = gain[:, 0]
    mats[:, 1, 1] = gain[:, 1]
    mats[:, :, 2] = size / 2 - centers * gain
    return mats


def crop_boxes(
    frame: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    output_size: tuple[int, int],
    border_value: int = 0,
) -> np.ndarray:
    """Crops windows of ``frame`` to ``(N, H, W, C)`` images with bilinear sampling."""
    mats = crop_matrices(centers, scales, output_size)
    w, h = int(output_size[0]), int(output_size[1])
    out = np.empty((len(mats), h, w) + frame.shape[2:], dtype=frame.dtype)
    for i, mat in enumerate(mats):
        out[i] = cv2.warpAffine(
            frame, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
            borderValue=(border_value,) * 3,
        )  # fmt: skip
    return out


def crop_to_frame(
    points: np.ndarray, centers: np.ndarray, scales: np.ndarray, output_size
) -> np.ndarray:
    """Maps ``(N, K, 2)`` crop pixel coordinates back to frame pixels (the inverse crop)."""
    points = np.asarray(points, dtype=np.float64)
    size = np.asarray(output_size, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 1, 2)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1, 1, 2)
    return points / size * scales + centers - scales / 2


def frame_to_crop(
    points: np.ndarray, centers: np.ndarray, scales: np.ndarray, output_size
) -> np.ndarray:
    """Maps ``(N, K, 2)`` frame pixel coordinates into the crops (the forward crop)."""
    points = np.asarray(points, dtype=np.float64)
    size = np.asarray(output_size, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 1, 2)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1, 1, 2)
    return (points - centers + scales / 2) / scales * size
