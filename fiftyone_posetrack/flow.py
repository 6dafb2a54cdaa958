"""Optical flow: moving points from one frame to the next.

This is the point-propagation API shared by the box-smoothing
(:mod:`fiftyone_posetrack.tracking.box_smoothing`), camera-motion
(:mod:`fiftyone_posetrack.tracking.cmc`) and pose-smoothing stages. All
coordinates are ``(x, y)`` in pixels of the full frame; images are
single-channel ``uint8`` (see :func:`to_gray`).

Two methods:

- ``"lk"``: sparse pyramidal Lucas-Kanade (``cv2.calcOpticalFlowPyrLK``) with a
  forward-backward check: a point is kept only if tracking it back lands
  within ``fb_threshold`` pixels of where it started;
- ``"dis"``: dense DIS flow (``cv2.DISOpticalFlow``), sampled bilinearly at the
  points; compute it once per frame pair with :func:`dense_flow` and pass it
  in when several callers need it.

Example::

    prev, nxt = to_gray(frame0), to_gray(frame1)
    pts, ok = propagate_points(prev, nxt, keypoints_xy)           # LK
    flow = dense_flow(prev, nxt)                                  # (H, W, 2)
    pts, ok = propagate_points(prev, nxt, keypoints_xy, "dis", flow)
    # points of both frames across the pair, with 3 LK calls instead of 4
    (fwd, fwd_ok), (back, back_ok) = propagate_points_both_ways(prev, nxt, pts0, pts1)
"""

from __future__ import annotations

import cv2
import numpy as np

from fiftyone_posetrack.types import BadInputError

#: the optical-flow methods: name -> label
FLOW_METHODS = {"lk": "Lucas-Kanade (sparse, at the points; fast)", "dis": "DIS (dense; slower)"}


def check_flow_method(method) -> str:
    """Returns ``method`` if it is one of :data:`FLOW_METHODS`, else raises naming them."""
    if method not in FLOW_METHODS:
        raise BadInputError(f"method: expected one of {list(FLOW_METHODS)}, got {method!r}")
    return method

__all__ = ["to_gray", "dense_flow", "propagate_points", "propagate_points_both_ways", "DIS_PRESETS", "FLOW_METHODS", "check_flow_method"]

#: DIS presets by name
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
_DIS_CACHE: dict[str, "cv2.DISOpticalFlow"] = {}
# stop after 10 iterations or a 0.03 px step (OpenCV's lk_track sample): on the
# 20-person crowd the smoothed joints are as accurate as with 30 / 0.01 (mean
# error 2.676 vs 2.680 px, bench/bench_smoothing.py) at 13% less time
_LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """Converts a frame to the ``(H, W)`` ``uint8`` image the flow functions take.

    Args:
        frame: ``(H, W)`` gray, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA image,
            ``uint8`` or float in ``[0, 1]``

    Raises:
        BadInputError: for any other shape
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        if not np.issubdtype(frame.dtype, np.floating):
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        else:
            frame = (np.clip(np.nan_to_num(frame), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise BadInputError(f"frame: expected (H, W), (H, W, 3) or (H, W, 4) image, got {frame.shape}")


def _check_pair(prev_gray: np.ndarray, next_gray: np.ndarray) -> None:
    for name, img in (("prev_gray", prev_gray), ("next_gray", next_gray)):
        if not isinstance(img, np.ndarray) or img.ndim != 2 or img.dtype != np.uint8:
            shape = getattr(img, "shape", None)
            raise BadInputError(f"{name}: expected (H, W) uint8 (use to_gray), got {shape}")
    if prev_gray.shape != next_gray.shape:
        raise BadInputError(f"frames differ in size: {prev_gray.shape} vs {next_gray.shape}")


def dense_flow(prev_gray: np.ndarray, next_gray: np.ndarray, preset: str = "fast") -> np.ndarray:
    """Dense DIS optical flow from ``prev_gray`` to ``next_gray``.

    Args:
        prev_gray, next_gray: ``(H, W)`` ``uint8`` images
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"``

    Returns:
        ``(H, W, 2)`` float32 displacement ``(dx, dy)`` in pixels of each pixel
    """
    _check_pair(prev_gray, next_gray)
    if preset not in DIS_PRESETS:
        raise BadInputError(f"preset: expected one of {sorted(DIS_PRESETS)}, got {preset!r}")
    if preset not in _DIS_CACHE:
        _DIS_CACHE[preset] = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return _DIS_CACHE[preset].calc(prev_gray, next_gray, None)


_dense = dense_flow  # the name is shadowed by propagate_points' argument


def _inside(points: np.ndarray, shape: tuple) -> np.ndarray:
    h, w = shape
    return (
        np.isfinite(points).all(axis=1)
        & (points[:, 0] >= 0) & (points[:, 0] <= w - 1)
        & (points[:, 1] >= 0) & (points[:, 1] <= h - 1)
    )  # fmt: skip


def propagate_points(
    prev_gray: np.ndarray,
    next_gray: np.ndarray,
    points_xy: np.ndarray,
    method: str = "lk",
    dense_flow: np.ndarray | None = None,
    win_size: int = 21,
    max_level: int = 3,
    fb_threshold: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Moves points from ``prev_gray`` to ``next_gray`` with optical flow.

    Args:
        prev_gray, next_gray: ``(H, W)`` ``uint8`` images of consecutive frames
        points_xy: ``(N, 2)`` ``(x, y)`` pixel positions in ``prev_gray``
            (NaN rows are allowed and come back not ok)
        method: ``"lk"`` (sparse Lucas-Kanade) or ``"dis"`` (dense DIS)
        dense_flow: precomputed :func:`dense_flow` of this pair (``"dis"``)
        win_size, max_level: LK window side (pixels) and pyramid levels
        fb_threshold: LK forward-backward error (pixels) above which a point
            is lost

    Returns:
        ``(points (N, 2) float64, ok (N,) bool)``: the moved points, and
        whether each was tracked (lost points keep their input position)
    """
    _check_pair(prev_gray, next_gray)
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.size == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=bool)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise BadInputError(f"points_xy: expected shape (N, 2), got {pts.shape}")
    out, ok = pts.copy(), _inside(pts, prev_gray.shape)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return out, ok
    if method == "lk":
        (moved, good), _ = _lk(prev_gray, next_gray, pts[idx], np.zeros((0, 2)), win_size, max_level, fb_threshold)
    elif method == "dis":
        flow = dense_flow if dense_flow is not None else _dense(prev_gray, next_gray)
        if flow.shape != (*prev_gray.shape, 2):
            raise BadInputError(f"dense_flow: expected shape {(*prev_gray.shape, 2)}, got {flow.shape}")
        moved = pts[idx] + _sample(flow, pts[idx])
        good = np.isfinite(moved).all(axis=1)
    else:
        check_flow_method(method)
    good &= _inside(moved, next_gray.shape)
    out[idx[good]] = moved[good]
    ok[idx] = good
    return out, ok


def propagate_points_both_ways(
    gray_a: np.ndarray,
    gray_b: np.ndarray,
    points_a: np.ndarray,
    points_b: np.ndarray,
    method: str = "lk",
    win_size: int = 21,
    max_level: int = 3,
    fb_threshold: float = 1.0,
    dis_preset: str = "fast",
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Moves ``points_a`` from frame a to b and ``points_b`` from b to a.

    The same as two :func:`propagate_points` calls, but with LK the backward
    pass of ``points_a``' forward-backward check and the forward pass of
    ``points_b`` share one call (three ``calcOpticalFlowPyrLK`` calls instead
    of four, on one region of interest): the pyramids, not the points, are
    most of LK's cost with few people. Streaming pose smoothing needs exactly
    this for every pair of consecutive frames.

    Returns:
        ``((moved_a (Na, 2), ok_a (Na,)), (moved_b (Nb, 2), ok_b (Nb,)))``,
        as :func:`propagate_points`
    """
    _check_pair(gray_a, gray_b)
    pa = np.asarray(points_a, dtype=np.float64).reshape(-1, 2)
    pb = np.asarray(points_b, dtype=np.float64).reshape(-1, 2)
    if method == "dis":
        return (
            propagate_points(gray_a, gray_b, pa, "dis", _dense(gray_a, gray_b, dis_preset) if len(pa) else None),
            propagate_points(gray_b, gray_a, pb, "dis", _dense(gray_b, gray_a, dis_preset) if len(pb) else None),
        )
    if method != "lk":
        check_flow_method(method)
    out_a, ok_a = pa.copy(), _inside(pa, gray_a.shape)
    out_b, ok_b = pb.copy(), _inside(pb, gray_b.shape)
    ia, ib = np.flatnonzero(ok_a), np.flatnonzero(ok_b)
    moved = _lk(gray_a, gray_b, pa[ia], pb[ib], win_size, max_level, fb_threshold)
    for idx, out, ok, (m, good) in ((ia, out_a, ok_a, moved[0]), (ib, out_b, ok_b, moved[1])):
        good &= _inside(m, gray_a.shape)
        out[idx[good]] = m[good]
        ok[idx] = good
    return (out_a, ok_a), (out_b, ok_b)


def _lk_roi(shape, pts, win_size, max_level) -> tuple[int, int, int, int] | None:
    """The part of the frame LK needs for ``pts``: their bounding box grown by
    ``(win_size + 1) * 2**max_level`` pixels (the largest motion the pyramid
    recovers, plus its window), its origin on the coarsest level's pixel grid
    so that the pyramid's pixels are the full frame's. None when it is most
    of the frame anyway."""
    h, w = shape
    step = 2**max_level
    margin = (win_size + 1) * step
    x0 = max(int(np.floor((pts[:, 0].min() - margin) / step)) * step, 0)
    y0 = max(int(np.floor((pts[:, 1].min() - margin) / step)) * step, 0)
    x1 = min(int(np.ceil(pts[:, 0].max() + margin)), w)
    y1 = min(int(np.ceil(pts[:, 1].max() + margin)), h)
    if (x1 - x0) * (y1 - y0) > 0.6 * h * w:
        return None
    return x0, y0, x1, y1


def _lk(gray_a, gray_b, pa, pb, win_size, max_level, fb_threshold):
    """Forward-backward LK of ``pa`` (a -> b) and ``pb`` (b -> a), finite points
    inside the frame, in at most three calls: the backward check of ``pa`` and
    the forward pass of ``pb`` share the b -> a call. Runs on the region of the
    frames around the points (:func:`_lk_roi`): the pyramids, which dominate the
    cost for a few people, are built only there.

    Returns:
        ``((moved_a, good_a), (moved_b, good_b))`` in full-frame pixels
    """
    none = (np.zeros((0, 2)), np.zeros(0, dtype=bool))
    if len(pa) + len(pb) == 0:
        return none, none
    roi = _lk_roi(gray_a.shape, np.concatenate([pa, pb]), win_size, max_level)
    offset = np.zeros(2)
    if roi is not None:
        x0, y0, x1, y1 = roi
        gray_a, gray_b = gray_a[y0:y1, x0:x1], gray_b[y0:y1, x0:x1]
        offset = np.array([x0, y0], dtype=np.float64)
    kw = dict(winSize=(win_size, win_size), maxLevel=max_level, criteria=_LK_CRITERIA)
    a0 = (pa - offset).astype(np.float32).reshape(-1, 1, 2)
    b0 = (pb - offset).astype(np.float32).reshape(-1, 1, 2)
    a1, st_a1 = a0, np.zeros((0, 1), np.uint8)
    if len(a0):
        a1, st_a1, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, a0, None, **kw)
    both, st_both, _ = cv2.calcOpticalFlowPyrLK(gray_b, gray_a, np.concatenate([b0, a1]), None, **kw)
    b1, a0r = both[: len(b0)], both[len(b0) :]
    st_b1, st_a2 = st_both[: len(b0)], st_both[len(b0) :]
    b0r, st_b2 = b1, np.zeros((0, 1), np.uint8)
    if len(b0):
        b0r, st_b2, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, b1, None, **kw)
    out = []
    for p0, p1, p0r, st1, st2 in ((a0, a1, a0r, st_a1, st_a2), (b0, b1, b0r, st_b1, st_b2)):
        if len(p0) == 0:
            out.append(none)
            continue
        fb = np.linalg.norm((p0r - p0).reshape(-1, 2), axis=1)
        good = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= fb_threshold)
        out.append((p1.reshape(-1, 2).astype(np.float64) + offset, good))
    return out[0], out[1]


def _sample(flow: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear sample of an ``(H, W, 2)`` field at ``(N, 2)`` points inside it."""
    h, w = flow.shape[:2]
    x0 = np.clip(np.floor(pts[:, 0]).astype(np.int64), 0, max(w - 2, 0))
    y0 = np.clip(np.floor(pts[:, 1]).astype(np.int64), 0, max(h - 2, 0))
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx = (pts[:, 0] - x0)[:, None]
    fy = (pts[:, 1] - y0)[:, None]
    top = flow[y0, x0] * (1 - fx) + flow[y0, x1] * fx
    bottom = flow[y1, x0] * (1 - fx) + flow[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float64)
