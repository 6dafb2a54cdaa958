"""Camera-motion compensation from sparse optical flow.

Corners are found in the previous frame (away from the people, whose own
motion is not the camera's), moved to the current frame with Lucas-Kanade
(:func:`fiftyone_posetrack.flow.propagate_points`), and a similarity
(rotation, uniform scale, translation) is fitted to them with RANSAC
(``cv2.estimateAffinePartial2D``). Trackers warp their Kalman states with it
(:meth:`~fiftyone_posetrack.tracking.kalman.KalmanBoxFilter.warp`) before
matching, as BoT-SORT does.
"""

from __future__ import annotations

import cv2
import numpy as np

from fiftyone_posetrack.flow import propagate_points, to_gray

__all__ = ["IDENTITY", "estimate_camera_motion", "CameraMotion"]

#: the 2x3 identity transform
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def estimate_camera_motion(
    prev_gray: np.ndarray,
    next_gray: np.ndarray,
    exclude_boxes: np.ndarray | None = None,
    max_corners: int = 400,
    ransac_threshold: float = 2.0,
    min_inliers: int = 8,
) -> np.ndarray:
    """Estimates the image motion between two frames as a 2x3 similarity.

    Args:
        prev_gray, next_gray: ``(H, W)`` ``uint8`` frames
        exclude_boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` pixel boxes of moving
            objects in ``prev_gray`` where no corner is taken
        max_corners: corners to track
        ransac_threshold: RANSAC inlier distance, pixels
        min_inliers: fewer inliers than this returns the identity

    Returns:
        ``(2, 3)`` float64 ``A`` with ``p_next = A[:, :2] @ p_prev + A[:, 2]``
    """
    mask = np.full(prev_gray.shape, 255, dtype=np.uint8)
    if exclude_boxes is not None and len(exclude_boxes):
        b = np.round(np.asarray(exclude_boxes, dtype=np.float64)).astype(np.int64)
        h, w = prev_gray.shape
        for x1, y1, x2, y2 in np.clip(b, 0, [w, h, w, h]):
            mask[y1:y2, x1:x2] = 0
    corners = cv2.goodFeaturesToTrack(
        prev_gray, maxCorners=max_corners, qualityLevel=0.01, minDistance=8, mask=mask
    )
    if corners is None or len(corners) < min_inliers:
        return IDENTITY.copy()
    p0 = corners.reshape(-1, 2).astype(np.float64)
    p1, ok = propagate_points(prev_gray, next_gray, p0, method="lk")
    if ok.sum() < min_inliers:
        return IDENTITY.copy()
    affine, inliers = cv2.estimateAffinePartial2D(
        p0[ok], p1[ok], method=cv2.RANSAC, ransacReprojThreshold=ransac_threshold
    )
    if affine is None or inliers is None or inliers.sum() < min_inliers:
        return IDENTITY.copy()
    return affine.astype(np.float64)


class CameraMotion:
    """Frame-to-frame camera motion of a video, one frame at a time.

    Args:
        downscale: frames are shrunk by this factor before the estimate
            (the returned transform is in full-resolution pixels)
        **kwargs: passed to :func:`estimate_camera_motion`
    """

    def __init__(self, downscale: float = 2.0, **kwargs):
        self.downscale = max(float(downscale), 1.0)
        self.kwargs = kwargs
        self.reset()

    def reset(self) -> None:
        self._prev = None
        self._prev_boxes = None

    def update(self, frame: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
        """Returns the ``(2, 3)`` motion from the previous frame to ``frame``.

        Args:
            frame: BGR or gray image
            boxes: ``(N, 4)`` pixel boxes of the people in ``frame`` (excluded
                from the estimate of the next call)
        """
        gray = to_gray(frame)
        s = self.downscale
        if s > 1:
            gray = cv2.resize(gray, None, fx=1 / s, fy=1 / s, interpolation=cv2.INTER_AREA)
        affine = IDENTITY.copy()
        if self._prev is not None and self._prev.shape == gray.shape:
            excl = None if self._prev_boxes is None else self._prev_boxes / s
            affine = estimate_camera_motion(self._prev, gray, excl, **self.kwargs)
            affine[:, 2] *= s
        self._prev = gray
        self._prev_boxes = None if boxes is None else np.asarray(boxes, dtype=np.float64)
        return affine
