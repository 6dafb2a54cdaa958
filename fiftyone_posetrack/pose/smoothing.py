"""Temporal smoothing of tracked poses: optical-flow averaging and the One-Euro filter.

**Flow smoothing** (the HIE 2020 pose-tracking recipe). For a person tracked
in frames ``k - 1``, ``k`` and ``k + 1``, each joint of frame ``k`` becomes::

    J_k' = a * J(k-1 -> k) + a * J(k+1 -> k) + (1 - 2a) * J(k)

where ``J(k-1 -> k)`` is the joint of frame ``k - 1`` moved into frame ``k``
by the optical flow from ``k - 1`` to ``k`` (sampled at the joint), and
``J(k+1 -> k)`` the joint of frame ``k + 1`` moved back by the flow from
``k + 1`` to ``k``. With exact flow and independent joint noise of variance
``s^2`` the result has variance ``(2a^2 + (1 - 2a)^2) s^2``: minimal (``s^2 / 3``)
at ``a = 1/3``; the default ``a = 0.25`` (``0.375 s^2``, std x 0.61) weighs the
detected joint most, which keeps flow errors (occlusions, fast limbs) from
dominating. A neighbour term is dropped, and the remaining weights are
renormalised, when the track is absent in that frame (track start / end), the
neighbour's joint is NaN or scores below ``score_threshold``, or the flow loses
the point. A NaN joint of frame ``k`` stays NaN (smoothing never invents
joints). Neighbours are always the *unsmoothed* poses.

Variants (parameters of :class:`FlowPoseSmoother`, all off by default; each is
measured on real video in ``bench/bench_smoothing.py``, docs/pose.md):

- ``weighting="confidence"``: each term's weight is also multiplied by its
  joint score (``a * s(k-1)``, ``a * s(k+1)``, ``(1 - 2a) * s(k)``), so a
  confident detection is moved less by uncertain neighbours;
- ``smooth_below``: only joints of frame ``k`` scoring below it are smoothed
  (confident joints are kept as detected);
- ``fb_threshold``: the Lucas-Kanade forward-backward check (pixels; a joint
  whose flow round trip misses by more is not propagated; 1 px as
  :func:`~fiftyone_posetrack.flow.propagate_points`);
- ``max_shift``: a moved neighbour farther than ``max_shift`` person heights
  (the pose's box height, else its joints' extent) from the joint it smooths
  is dropped (occlusions, limb swaps).

The pipeline's ``pose_smoothing`` default is ``"none"``: on the real video and
the annotated frames no variant improved both the jitter and AP measurements
(docs/pose.md).

:class:`FlowPoseSmoother` works on a window of three frames (:meth:`~FlowPoseSmoother.smooth`)
or as a stream with one frame of delay (:meth:`~FlowPoseSmoother.push` /
:meth:`~FlowPoseSmoother.flush`); :func:`smooth_pose_sequence` smooths a whole list.

**One-Euro** (Casiez, Roussel & Vogel, CHI 2012): a per-joint low-pass filter
whose cutoff rises with speed, ``f_c = min_cutoff + beta * |dx/dt|``; no flow
needed, causal, one state per track (:class:`OneEuroPoseSmoother`).

Keypoints are ``(x, y)`` pixels of the frame, as everywhere in the library.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from fiftyone_posetrack.flow import (
    check_flow_method,
    dense_flow,
    propagate_points,
    propagate_points_both_ways,
    to_gray,
)
from fiftyone_posetrack.types import BadInputError, FramePoses

#: the pose smoothing methods of the pipeline: name -> label
POSE_SMOOTHING = {
    "flow": "Optical flow (joints moved in from the neighbour frames)",
    "one-euro": "One-Euro filter (per joint, no images)",
    "none": "None",
}
#: the methods that compute something (a smoothing stage on its own needs one of these)
SMOOTHERS = tuple(k for k in POSE_SMOOTHING if k != "none")

__all__ = ["POSE_SMOOTHING", "SMOOTHERS", "FlowPoseSmoother", "smooth_pose_sequence", "OneEuroFilter", "OneEuroPoseSmoother"]


class FlowPoseSmoother:
    """Optical-flow pose smoothing over ``(previous, current, next)`` frames.

    Args:
        alpha: weight ``a`` of each neighbour, in ``[0, 0.5]`` (0: no smoothing)
        score_threshold: neighbour joints scoring below it are not used
        method: ``"lk"`` (sparse Lucas-Kanade at the joints) or ``"dis"``
            (dense DIS flow, sampled at the joints)
        dis_preset: DIS preset for ``method="dis"``
        win_size: Lucas-Kanade window side in pixels (11 costs about half of
            LK's usual 21 and moves joints as well in ``tests/test_smoothing.py``:
            mean error 3.74 -> 2.29 px with both)
        weighting: ``"fixed"`` (the formula's weights) or ``"confidence"``
            (each weight times the term's joint score)
        smooth_below: only joints of the current frame scoring below it are
            smoothed; None: all
        fb_threshold: Lucas-Kanade forward-backward error (pixels) above
            which a neighbour joint is not propagated
        max_shift: neighbour joints moved farther than this many person
            heights from the current joint are dropped; None: no limit
    """

    def __init__(
        self,
        alpha: float = 0.25,
        score_threshold: float = 0.3,
        method: str = "lk",
        dis_preset: str = "fast",
        win_size: int = 11,
        weighting: str = "fixed",
        smooth_below: float | None = None,
        fb_threshold: float = 1.0,
        max_shift: float | None = None,
    ):
        if not 0.0 <= float(alpha) <= 0.5:
            raise BadInputError(f"alpha: expected a value in [0, 0.5], got {alpha}")
        if weighting not in ("fixed", "confidence"):
            raise BadInputError(f"weighting: expected 'fixed' or 'confidence', got {weighting!r}")
        if not float(fb_threshold) > 0:
            raise BadInputError(f"fb_threshold: expected > 0 pixels, got {fb_threshold}")
        if max_shift is not None and not float(max_shift) > 0:
            raise BadInputError(f"max_shift: expected > 0 person heights or None, got {max_shift}")
        self.weighting = weighting
        self.smooth_below = None if smooth_below is None else float(smooth_below)
        self.fb_threshold = float(fb_threshold)
        self.max_shift = None if max_shift is None else float(max_shift)
        check_flow_method(method)
        self.alpha = float(alpha)
        self.score_threshold = float(score_threshold)
        self.method = method
        self.dis_preset = dis_preset
        self.win_size = int(win_size)
        # the last pushed frame: (gray, poses, its joints moved in from the frame before)
        self._last: tuple[np.ndarray, FramePoses, np.ndarray | None] | None = None

    def _neighbour_points(self, src: FramePoses, cur: FramePoses):
        """Which joints of ``src`` can be moved into the frame of ``cur``.

        Returns:
            ``(cur_rows (P,), src_rows (P,), usable (P, K) bool, points (U, 2))``:
            the rows of ``cur`` whose track is in ``src`` and their rows in
            ``src``, which of their joints have a usable neighbour (finite in
            both, scoring at least ``score_threshold`` in ``src``), and those
            neighbour joints
        """
        k = cur.keypoints.shape[1] if cur.keypoints.ndim == 3 else 0
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, k), bool), np.zeros((0, 2)))
        if len(src) == 0 or len(cur) == 0:
            return none
        if np.array_equal(cur.track_ids, src.track_ids):  # the usual case: the same people
            cur_rows = src_rows = np.arange(len(cur))
        else:
            src_row = {t: i for i, t in enumerate(src.track_ids.tolist())}
            pairs = [(i, src_row[t]) for i, t in enumerate(cur.track_ids.tolist()) if t in src_row]
            if not pairs:
                return none
            cur_rows, src_rows = np.array(pairs).T
        pts = src.keypoints[src_rows]  # (P, K, 2)
        usable = np.isfinite(pts).all(axis=2) & (src.scores[src_rows] >= self.score_threshold)
        usable &= np.isfinite(cur.keypoints[cur_rows]).all(axis=2)
        return cur_rows, src_rows, usable, pts[usable]

    @staticmethod
    def _place(cur: FramePoses, src: FramePoses, cur_rows, src_rows, usable, moved, ok):
        """Moved neighbour joints as ``(M, K, 2)`` for ``cur`` (NaN where unusable or
        lost) and their scores in ``src`` ``(M, K)`` (0 where none)."""
        out = np.full(cur.keypoints.shape, np.nan)
        scores = np.zeros(cur.keypoints.shape[:2])
        if len(cur_rows):
            block = np.full((len(cur_rows), *cur.keypoints.shape[1:]), np.nan)
            block[usable] = np.where(ok[:, None], moved, np.nan)
            out[cur_rows] = block
            scores[cur_rows] = src.scores[src_rows]
        return out, scores

    def _moved_neighbour(self, src_gray, cur_gray, src: FramePoses, cur: FramePoses):
        """Neighbour joints moved into the current frame: ``(M, K, 2)`` with NaN where unusable."""
        rows, src_rows, usable, pts = self._neighbour_points(src, cur)
        if len(pts) == 0:
            return self._place(cur, src, rows, src_rows, usable, pts, np.zeros(0, bool))
        flow = dense_flow(src_gray, cur_gray, self.dis_preset) if self.method == "dis" else None
        out, ok = propagate_points(src_gray, cur_gray, pts, self.method, flow, win_size=self.win_size,
                                   fb_threshold=self.fb_threshold)  # fmt: skip
        return self._place(cur, src, rows, src_rows, usable, out, ok)

    @staticmethod
    def _heights(poses: FramePoses) -> np.ndarray:
        """``(M,)`` person heights in pixels: the box heights, else the joints' vertical extent."""
        y = poses.keypoints[..., 1] if len(poses) else np.zeros((0, 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN poses
            ext = np.nanmax(y, axis=1) - np.nanmin(y, axis=1) if y.size else np.zeros(len(poses))
        if poses.boxes is not None and len(poses.boxes) == len(poses):
            box = np.asarray(poses.boxes, dtype=np.float64)
            ext = np.where(np.isfinite(box[:, 3] - box[:, 1]), box[:, 3] - box[:, 1], ext)
        return np.nan_to_num(ext, nan=0.0)

    def _combine(self, cur_poses: FramePoses, neighbours: Sequence) -> FramePoses:
        """The weighted average of the current joints and the moved neighbours.

        ``neighbours``: ``(moved (M, K, 2) NaN where unusable, scores (M, K))`` pairs.
        """
        kps = cur_poses.keypoints
        conf = self.weighting == "confidence"
        weight_cur = np.full(kps.shape[:2], 1.0 - 2.0 * self.alpha)
        if conf:
            weight_cur = weight_cur * np.clip(np.nan_to_num(cur_poses.scores), 1e-3, 1.0)
        total = np.where(np.isfinite(kps), kps * weight_cur[..., None], 0.0)
        weight = weight_cur.copy()
        limit = None
        if self.max_shift is not None:
            limit = self.max_shift * self._heights(cur_poses)[:, None]
        for moved, nb_scores in neighbours:
            have = np.isfinite(moved).all(axis=2)
            if limit is not None:
                with np.errstate(invalid="ignore"):
                    have &= np.linalg.norm(moved - kps, axis=2) <= limit
            if self.smooth_below is not None:
                have &= np.nan_to_num(cur_poses.scores, nan=0.0) < self.smooth_below
            w = np.full(have.shape, self.alpha)
            if conf:
                w = w * np.clip(np.nan_to_num(nb_scores), 0.0, 1.0)
            total[have] += w[have][:, None] * moved[have]
            weight[have] += w[have]
        smoothed = np.where(
            weight[..., None] > 0, total / np.maximum(weight, 1e-12)[..., None], kps
        )
        smoothed[~np.isfinite(kps).all(axis=2)] = np.nan
        return FramePoses(
            smoothed, cur_poses.scores.copy(), cur_poses.track_ids.copy(), cur_poses.boxes
        )

    def smooth(
        self,
        cur_frame: np.ndarray,
        cur_poses: FramePoses,
        prev_frame: np.ndarray | None = None,
        prev_poses: FramePoses | None = None,
        next_frame: np.ndarray | None = None,
        next_poses: FramePoses | None = None,
    ) -> FramePoses:
        """Smooths the poses of the current frame with its neighbours.

        Args:
            cur_frame: the current frame, BGR ``(H, W, 3)`` or gray ``(H, W)``
            cur_poses: the current poses (``track_ids`` link them to the neighbours)
            prev_frame, prev_poses: the previous frame and its poses, or None
                (track start / first frame)
            next_frame, next_poses: the next frame and its poses, or None

        Returns:
            a new :class:`FramePoses` with smoothed keypoints, the same scores,
            track ids and boxes
        """
        cur_gray = to_gray(cur_frame)
        neighbours = []
        if self.alpha > 0:
            for frame, poses in ((prev_frame, prev_poses), (next_frame, next_poses)):
                if frame is not None and poses is not None:
                    neighbours.append(self._moved_neighbour(to_gray(frame), cur_gray, poses, cur_poses))
        return self._combine(cur_poses, neighbours)

    def push(self, frame: np.ndarray, poses: FramePoses) -> FramePoses | None:
        """Streams one frame in; returns the smoothed poses of the *previous* frame.

        Returns None for the first frame (its next neighbour is not known yet);
        call :meth:`flush` after the last frame to get the last one. Each pair
        of consecutive frames is flowed once, both ways
        (:func:`~fiftyone_posetrack.flow.propagate_points_both_ways`): the
        result equals :meth:`smooth` over each window.
        """
        gray = to_gray(frame)
        if self._last is None:
            self._last = (gray, poses, None)
            return None
        prev_gray, prev_poses, prev_from_before = self._last
        from_prev = from_next = None
        if self.alpha > 0:
            f_rows, f_src, f_usable, f_pts = self._neighbour_points(prev_poses, poses)  # prev -> this frame
            b_rows, b_src, b_usable, b_pts = self._neighbour_points(poses, prev_poses)  # this -> prev frame
            (f_out, f_ok), (b_out, b_ok) = propagate_points_both_ways(
                prev_gray, gray, f_pts, b_pts, self.method, self.win_size, fb_threshold=self.fb_threshold,
                dis_preset=self.dis_preset,
            )  # fmt: skip
            from_prev = self._place(poses, prev_poses, f_rows, f_src, f_usable, f_out, f_ok)
            from_next = self._place(prev_poses, poses, b_rows, b_src, b_usable, b_out, b_ok)
        self._last = (gray, poses, from_prev)
        return self._combine(prev_poses, [m for m in (prev_from_before, from_next) if m is not None])

    def flush(self) -> FramePoses | None:
        """Returns the smoothed poses of the last pushed frame and resets the stream."""
        if self._last is None:
            return None
        _, poses, from_prev = self._last
        self._last = None
        return self._combine(poses, [] if from_prev is None else [from_prev])


def smooth_pose_sequence(
    frames: Sequence[np.ndarray], poses_per_frame: Sequence[FramePoses], **kwargs
) -> list[FramePoses]:
    """Flow-smooths the tracked poses of a list of consecutive frames.

    Args:
        frames: BGR or gray frames
        poses_per_frame: one :class:`FramePoses` per frame
        **kwargs: :class:`FlowPoseSmoother` parameters (``alpha``, ``method``, ...)

    Returns:
        one smoothed :class:`FramePoses` per frame
    """
    if len(frames) != len(poses_per_frame):
        raise BadInputError(
            f"smooth_pose_sequence: {len(frames)} frames but {len(poses_per_frame)} pose sets"
        )
    smoother = FlowPoseSmoother(**kwargs)
    out = [smoother.push(f, p) for f, p in zip(frames, poses_per_frame)]
    out = [p for p in out if p is not None]
    if len(frames):
        out.append(smoother.flush())
    return out


class OneEuroFilter:
    """The One-Euro filter, element-wise over arrays of a fixed shape.

    Each element keeps its own state; NaN inputs give NaN outputs and leave
    that element's state (and time) untouched.

    Args:
        min_cutoff: cutoff frequency at rest, in Hz (lower: smoother, more lag)
        beta: cutoff increase per unit of speed (Hz per pixel / s for pixels);
            the default 0.1 halves the jitter of a 60 px/s joint at 30 fps
            without adding lag beyond the noise, 0.01 smooths 4x more but
            lags ~5 px behind such a joint
        d_cutoff: cutoff of the speed estimate, in Hz
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.1, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise BadInputError(
                "OneEuroFilter: expected min_cutoff > 0, d_cutoff > 0 and beta >= 0"
            )
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.x = self.dx = self.t = None

    @staticmethod
    def _alpha(cutoff, dt):
        tau = 1.0 / (2.0 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filters the sample ``x`` taken at time ``t`` (seconds); returns the estimate."""
        x = np.asarray(x, dtype=np.float64)
        if self.x is None:
            self.x = np.full(x.shape, np.nan)
            self.dx = np.zeros(x.shape)
            self.t = np.full(x.shape, np.nan)
        if x.shape != self.x.shape:
            raise BadInputError(f"OneEuroFilter: expected shape {self.x.shape}, got {x.shape}")
        seen, new = np.isfinite(x), ~np.isfinite(self.x)
        first = seen & new
        self.x[first], self.dx[first], self.t[first] = x[first], 0.0, t
        upd = seen & ~new & (t > self.t)
        if upd.any():
            dt = t - self.t[upd]
            dx = (x[upd] - self.x[upd]) / dt
            self.dx[upd] += self._alpha(self.d_cutoff, dt) * (dx - self.dx[upd])
            cutoff = self.min_cutoff + self.beta * np.abs(self.dx[upd])
            self.x[upd] += self._alpha(cutoff, dt) * (x[upd] - self.x[upd])
            self.t[upd] = t
        return np.where(seen, self.x, np.nan)


class OneEuroPoseSmoother:
    """One-Euro smoothing of the joints of each track (causal, no flow).

    Args:
        fps: frame rate used to turn frame numbers into seconds
        min_cutoff, beta, d_cutoff: :class:`OneEuroFilter` parameters (beta
            per pixel / s)
        max_gap: a track unseen for more frames than this starts afresh
    """

    def __init__(
        self,
        fps: float = 30.0,
        min_cutoff: float = 1.0,
        beta: float = 0.1,
        d_cutoff: float = 1.0,
        max_gap: int = 30,
    ):
        if fps <= 0:
            raise BadInputError(f"fps: expected > 0, got {fps}")
        self.fps, self.max_gap = float(fps), int(max_gap)
        self.params = dict(min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff)
        self._filters: dict[int, tuple[OneEuroFilter, int]] = {}
        self._frame = -1

    def update(self, poses: FramePoses, frame_number: int | None = None) -> FramePoses:
        """Filters the poses of the next frame (``frame_number``: default previous + 1)."""
        self._frame = self._frame + 1 if frame_number is None else int(frame_number)
        out = np.full(poses.keypoints.shape, np.nan)
        for i, tid in enumerate(poses.track_ids.tolist()):
            filt, last = self._filters.get(tid, (None, None))
            if filt is None or self._frame - last > self.max_gap:
                filt = OneEuroFilter(**self.params)
            out[i] = filt(poses.keypoints[i], self._frame / self.fps)
            self._filters[tid] = (filt, self._frame)
        stale = [t for t, (_, last) in self._filters.items() if self._frame - last > self.max_gap]
        for t in stale:
            del self._filters[t]
        return FramePoses(out, poses.scores.copy(), poses.track_ids.copy(), poses.boxes)
