"""Temporal smoothing of tracked boxes with optical flow.

For every track, its box of the previous frame is moved to the current frame
with optical flow (:func:`propagate_boxes`: points inside the box are
propagated, the box moves by their median displacement and scales by the
change of their spread), and the output box is::

    alpha * detected + (1 - alpha) * propagated

Optionally, a confirmed track missed by the detector for at most ``max_gap``
frames is bridged with its propagated box (``det_index = -1``, ``score = 0``).

Example::

    smoother = FlowBoxSmoother(alpha=0.5, max_gap=3)
    for frame, dets in video:
        tracks = smoother.update(tracker.update(dets, frame), frame)
"""

from __future__ import annotations

import cv2
import numpy as np

from fiftyone_posetrack.flow import check_flow_method, dense_flow, propagate_points, to_gray
from fiftyone_posetrack.types import BadInputError, FrameTracks

__all__ = ["propagate_boxes", "FlowBoxSmoother"]


def _grid_points(boxes: np.ndarray, grid: int) -> np.ndarray:
    """``(N, grid * grid, 2)`` points on a regular grid inside each box."""
    f = (np.arange(grid) + 0.5) / grid
    fx, fy = np.meshgrid(f, f)
    fx, fy = fx.ravel(), fy.ravel()
    x = boxes[:, None, 0] + fx[None] * (boxes[:, None, 2] - boxes[:, None, 0])
    y = boxes[:, None, 1] + fy[None] * (boxes[:, None, 3] - boxes[:, None, 1])
    return np.stack([x, y], axis=2)


def _nanmedian(a: np.ndarray) -> np.ndarray:
    """Median over axis 1 ignoring NaN, for ``(N, K)`` rows with at least one
    finite value (``np.nanmedian`` takes a slow masked-array path here)."""
    s = np.sort(a, axis=1)  # NaN sort last
    n = np.isfinite(a).sum(axis=1)
    lo = np.take_along_axis(s, ((n - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(s, (n // 2)[:, None], axis=1)[:, 0]
    return (lo + hi) / 2


def _feature_points(gray: np.ndarray, boxes: np.ndarray, k: int, min_points: int) -> np.ndarray:
    """Up to ``k`` strongest corners inside each box (grid where too few)."""
    pts = _grid_points(boxes, int(round(np.sqrt(k))))
    corners = cv2.goodFeaturesToTrack(gray, maxCorners=50 * k, qualityLevel=0.01, minDistance=3)
    if corners is None:
        return pts
    c = corners.reshape(-1, 2).astype(np.float64)  # strongest first
    inside = (
        (c[:, None, 0] >= boxes[None, :, 0]) & (c[:, None, 0] <= boxes[None, :, 2])
        & (c[:, None, 1] >= boxes[None, :, 1]) & (c[:, None, 1] <= boxes[None, :, 3])
    )  # (P, N)  # fmt: skip
    rank = np.cumsum(inside, axis=0) - 1
    take = inside & (rank < pts.shape[1])
    enough = inside.sum(axis=0) >= min_points
    p_idx, b_idx = np.nonzero(take & enough[None])
    pts[enough] = np.nan
    pts[b_idx, rank[p_idx, b_idx]] = c[p_idx]
    return pts


def propagate_boxes(
    prev_gray: np.ndarray,
    next_gray: np.ndarray,
    boxes: np.ndarray,
    method: str = "lk",
    flow: np.ndarray | None = None,
    points: str = "grid",
    grid: int = 4,
    min_points: int = 4,
    win_size: int = 11,
) -> tuple[np.ndarray, np.ndarray]:
    """Moves ``[x1, y1, x2, y2]`` pixel boxes from one frame to the next.

    Args:
        prev_gray, next_gray: ``(H, W)`` ``uint8`` frames
        boxes: ``(N, 4)`` boxes in ``prev_gray``
        method: ``"lk"`` or ``"dis"`` (see :func:`fiftyone_posetrack.flow.propagate_points`)
        flow: precomputed dense flow for ``"dis"``
        points: ``"grid"`` (``grid x grid`` points per box) or ``"features"``
            (the strongest corners inside each box, grid where too few)
        grid: grid side
        min_points: fewer tracked points than this and the box is not ok
        win_size: LK window side in pixels. The defaults (a 4 x 4 grid, 11 px
            windows) were picked on the 20-person synthetic crowd at
            960 x 540 (``bench/bench_smoothing.py``): mean box-corner error
            3.56 px at 2.1 ms per frame, against 3.65 px at 5.4 ms for a
            5 x 5 grid with 21 px windows

    Returns:
        ``(boxes (N, 4), ok (N,) bool)``; boxes that are not ok are unchanged
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    if n == 0:
        return boxes.copy(), np.zeros(0, dtype=bool)
    if points == "grid":
        p0 = _grid_points(boxes, grid)
    elif points == "features":
        p0 = _feature_points(prev_gray, boxes, grid * grid, min_points)
    else:
        raise BadInputError(f"points: expected 'grid' or 'features', got {points!r}")
    k = p0.shape[1]
    if method == "dis" and flow is None:
        flow = dense_flow(prev_gray, next_gray)
    p1, ok = propagate_points(prev_gray, next_gray, p0.reshape(-1, 2), method, flow, win_size=win_size)
    p1, ok = p1.reshape(n, k, 2), ok.reshape(n, k)
    good = ok.sum(axis=1) >= min_points
    out = boxes.copy()
    if not good.any():
        return out, good
    a = np.where(ok[good, :, None], p0[good], np.nan)
    b = np.where(ok[good, :, None], p1[good], np.nan)
    ca = np.stack([_nanmedian(a[..., 0]), _nanmedian(a[..., 1])], axis=1)  # (G, 2)
    cb = np.stack([_nanmedian(b[..., 0]), _nanmedian(b[..., 1])], axis=1)
    spread_a = _nanmedian(np.linalg.norm(a - ca[:, None], axis=2))
    spread_b = _nanmedian(np.linalg.norm(b - cb[:, None], axis=2))
    scale = np.clip(np.divide(spread_b, spread_a, out=np.ones_like(spread_a), where=spread_a > 0), 0.5, 2.0)
    g = boxes[good]
    center = (g[:, :2] + g[:, 2:]) / 2 + (cb - ca)
    half = (g[:, 2:] - g[:, :2]) / 2 * scale[:, None]
    out[good] = np.concatenate([center - half, center + half], axis=1)
    return out, good


class FlowBoxSmoother:
    """Blends each track's detected box with its flow-propagated previous box.

    Args:
        alpha: weight of the detected box (1 = no smoothing)
        max_gap: bridge detection gaps of up to this many frames with the
            propagated box (0 = never)
        method: ``"lk"`` or ``"dis"``
        points, grid, min_points, win_size: see :func:`propagate_boxes`
    """

    def __init__(
        self,
        alpha: float = 0.5,
        max_gap: int = 0,
        method: str = "lk",
        points: str = "grid",
        grid: int = 4,
        min_points: int = 4,
        win_size: int = 11,
    ):
        if not 0.0 <= alpha <= 1.0:
            raise BadInputError(f"alpha must be in [0, 1], got {alpha}")
        check_flow_method(method)
        self.alpha = float(alpha)
        self.max_gap = int(max_gap)
        self.method = method
        self.kwargs = dict(points=points, grid=int(grid), min_points=int(min_points), win_size=int(win_size))
        self.reset()

    def reset(self) -> None:
        self._prev = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._boxes = np.zeros((0, 4))
        self._missing = np.zeros(0, dtype=np.int64)

    def update(self, tracks: FrameTracks, frame: np.ndarray) -> FrameTracks:
        """Smooths one frame's tracks; ``frame`` is the BGR image they belong to."""
        gray = to_gray(frame)
        if self._prev is not None and self._prev.shape != gray.shape:
            raise BadInputError(f"frame size changed from {self._prev.shape} to {gray.shape}")
        boxes = tracks.boxes.copy()
        prop, ok = self._boxes, np.zeros(len(self._ids), dtype=bool)
        if self._prev is not None and len(self._ids):
            prop, ok = propagate_boxes(self._prev, gray, self._boxes, self.method, **self.kwargs)

        # matched: blend the detection with the propagated previous box
        _, cur_i, prev_i = np.intersect1d(tracks.track_ids, self._ids, return_indices=True)
        blend = ok[prev_i]
        cur_i, prev_i = cur_i[blend], prev_i[blend]
        boxes[cur_i] = self.alpha * boxes[cur_i] + (1 - self.alpha) * prop[prev_i]

        # unmatched previous tracks: bridge short gaps with the propagated box
        gone = np.ones(len(self._ids), dtype=bool)
        gone[np.isin(self._ids, tracks.track_ids)] = False
        bridge = np.flatnonzero(gone & ok & (self._missing < self.max_gap))
        out = FrameTracks(
            np.concatenate([boxes, prop[bridge]]),
            np.concatenate([tracks.track_ids, self._ids[bridge]]),
            np.concatenate([tracks.scores, np.zeros(len(bridge))]),
            np.concatenate([tracks.det_indices, np.full(len(bridge), -1)]),
        )
        self._prev = gray
        self._ids = out.track_ids
        self._boxes = out.boxes
        self._missing = np.concatenate(
            [np.zeros(len(tracks), dtype=np.int64), self._missing[bridge] + 1]
        )
        return out
