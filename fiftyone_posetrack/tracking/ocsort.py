"""OC-SORT (Cao et al., "Observation-Centric SORT: Rethinking SORT for Robust
Multi-Object Tracking", CVPR 2023), written from the paper.

SORT's Kalman filter with three observation-centric additions:

- **OCM**, observation-centric momentum: each track keeps the direction of
  its motion estimated from its *observations* ``delta_t`` frames apart
  (not from the filter's velocity, which drifts while a track is lost). The
  association cost adds, to the IoU, the consistency between that direction
  and the direction from the track's observation ``delta_t`` frames ago to
  each candidate detection: ``cost = -(IoU + inertia * score * (pi/2 -
  |angle difference|) / pi)``; only pairs with ``IoU >= iou_threshold`` can
  match.
- **ORU**, observation-centric re-update: when a lost track is matched again
  its filter is rolled back to its last observation and re-run over a
  virtual trajectory linearly interpolated to the new detection
  (:meth:`~fiftyone_posetrack.tracking.bytetrack.ByteTrack._re_update`).
- **OCR**, observation-centric recovery: tracks and high-score detections
  left unmatched are associated a second time on the IoU between the track's
  *last observed box* (where it stopped, not where the filter thinks it went)
  and the detection.

Optionally (``use_byte``), ByteTrack's second stage matches the low-score
detections to the tracks still unmatched (OC-SORT's "OC-SORT + BYTE").
Boxes are ``[x1, y1, x2, y2]`` pixels; directions are unit vectors in the
image plane.
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.tracking.base import MAX_AGE, Tracker, register_tracker
from fiftyone_posetrack.tracking.bytetrack import ByteTrack
from fiftyone_posetrack.tracking.matching import (
    INF_COST,
    buffered_boxes,
    height_iou_matrix,
    iou_distance,
    iou_matrix,
    linear_assignment,
)
from fiftyone_posetrack.types import BadInputError, FrameDetections
from fiftyone_posetrack.values import ValueSpec

__all__ = ["OCSort"]


def _centers(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., :2] + boxes[..., 2:]) / 2


def ocm_points(boxes: np.ndarray, corners: bool = False) -> np.ndarray:
    """The points whose motion directions OCM compares: ``(..., P, 2)`` pixels.

    ``P = 1``: the box center (OC-SORT); with ``corners``, ``P = 4``: the four
    corners ``(x1, y1), (x2, y1), (x1, y2), (x2, y2)`` (Hybrid-SORT's robust
    OCM, which sees a box that grows or shrinks on one side)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if not corners:
        return _centers(boxes)[..., None, :]
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    return np.stack([np.stack(p, axis=-1) for p in ((x1, y1), (x2, y1), (x1, y2), (x2, y2))], axis=-2)


def direction_cost(track_dir: np.ndarray, origin: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """OCM's direction consistency of tracks and candidate detections.

    Args:
        track_dir: ``(T, P, 2)`` unit motion directions of the tracks' points
            (0 = unknown)
        origin: ``(T, P, 2)`` the tracks' points ``delta_t`` frames ago
        targets: ``(N, P, 2)`` the detections' points

    Returns:
        ``(T, N)`` in ``[-1/2, 1/2]``: ``(pi/2 - |angle|) / pi`` between the
        track's direction and the direction from its origin to the detection,
        averaged over the known points (0 where the direction is unknown);
        higher is more consistent
    """
    intent = _unit(targets[None, :, :, :] - origin[:, None, :, :])  # (T, N, P, 2)
    cos = np.clip(np.einsum("tnpk,tpk->tnp", intent, track_dir), -1.0, 1.0)
    angle = (np.pi / 2 - np.abs(np.arccos(cos))) / np.pi
    known = np.any(track_dir != 0, axis=-1)[:, None, :]  # (T, 1, P)
    n = known.sum(axis=-1)
    return np.divide((angle * known).sum(axis=-1), n, out=np.zeros(angle.shape[:2]), where=n > 0)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 1e-6)


@register_tracker("ocsort")
class OCSort(ByteTrack):
    """OC-SORT: SORT with observation-centric momentum, re-update and recovery.

    Args:
        det_thresh: detections scoring at least this are matched in the first
            stage and may start tracks (OC-SORT's ``det_thresh``)
        low_thresh: with ``use_byte``, detections in ``[low_thresh,
            det_thresh)`` are matched to the tracks left over
        iou_threshold: least IoU of a match (every stage)
        delta_t: frames between the two observations that give a track's
            direction (OCM)
        inertia: weight of the direction consistency in the cost (OCM)
        use_byte: add ByteTrack's low-score stage
        max_age: frames a lost track is kept
        n_init: hits that confirm (and output) a track (OC-SORT's ``min_hits``;
            tracks born in the first frame are confirmed at once)
        oru: observation-centric re-update of re-found tracks
        ocr: observation-centric recovery stage
        ocr_max_age: recover only tracks lost for at most this many frames
            (``None``: any live track, as the paper)
        hmiou: Hybrid-SORT's height-modulated IoU (IoU times the height IoU,
            :func:`~fiftyone_posetrack.tracking.matching.height_iou_matrix`) in
            the first stage
        buffer: C-BIoU's buffer scale in box units
            (:func:`~fiftyone_posetrack.tracking.matching.buffered_boxes`) of
            the first stage and the recovery stage (0 = plain IoU)
        ocm_corners: OCM on the four box corners instead of the center
            (Hybrid-SORT's robust OCM, :func:`ocm_points`; ``False`` is the
            OC-SORT paper's center OCM)
        tcm: weight of Hybrid-SORT's tracklet confidence modulation in the
            first stage: the cost grows by ``tcm * |predicted track score -
            detection score|``; a track's score is predicted linearly from its
            last two observed scores (0 = off)
        min_score, output, cmc, output_missed, kalman, nsa, appearance_on_demand, clear_margin: see
            :class:`~fiftyone_posetrack.tracking.base.Tracker`; OC-SORT's defaults differ from the
            other trackers': ``kalman="xywh"`` (BoT-SORT's box state: +6 HOTA on DanceTrack)
            and ``output="detection"`` (the matched detection box, the last observation, as
            OC-SORT outputs), measured in ``docs/tracking.md``
    """

    label = "OC-SORT (observation-centric motion; motion only)"
    PARAMS = {
        **Tracker.PARAMS,
        "det_thresh": ValueSpec("float", lo=0.0, hi=1.0),
        "low_thresh": ValueSpec("float", lo=0.0, hi=1.0, nullable=True),
        "iou_threshold": ValueSpec("float", lo=0.0, hi=1.0),
        "delta_t": ValueSpec("int", lo=1, hi=1000),
        "inertia": ValueSpec("float", lo=0.0, hi=10.0),
        "use_byte": ValueSpec("bool"),
        "max_age": ValueSpec("int", lo=0, hi=MAX_AGE),
        "n_init": ValueSpec("int", lo=1, hi=1000),
        "oru": ValueSpec("bool"),
        "ocr": ValueSpec("bool"),
        "ocr_max_age": ValueSpec("int", lo=0, hi=MAX_AGE, nullable=True),
        "hmiou": ValueSpec("bool"),
        "buffer": ValueSpec("float", lo=0.0, hi=2.0),
        "ocm_corners": ValueSpec("bool"),
        "tcm": ValueSpec("float", lo=0.0, hi=10.0),
    }

    def __init__(
        self,
        det_thresh: float = 0.6,
        low_thresh: float | None = 0.1,
        iou_threshold: float = 0.3,
        delta_t: int = 3,
        inertia: float = 0.2,
        use_byte: bool = False,
        max_age: int = 30,
        n_init: int = 3,
        oru: bool = True,
        ocr: bool = True,
        ocr_max_age: int | None = None,
        hmiou: bool = False,
        buffer: float = 0.0,
        ocm_corners: bool = True,
        tcm: float = 0.0,
        min_score: float = 0.1,
        output: str = "detection",
        cmc: bool = False,
        output_missed: int = 0,
        kalman: str = "xywh",
        nsa: bool = False,
        appearance_on_demand: bool = False,
        clear_margin: float = 0.3,
    ):
        if int(delta_t) < 1:
            raise BadInputError(f"delta_t must be >= 1, got {delta_t}")
        if not 0.0 <= float(iou_threshold) <= 1.0:
            raise BadInputError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        self.delta_t = int(delta_t)
        self.inertia = float(inertia)
        self.iou_threshold = float(iou_threshold)
        self.use_byte = bool(use_byte)
        self.ocr = bool(ocr)
        self.ocr_max_age = None if ocr_max_age is None else int(ocr_max_age)
        self.hmiou = bool(hmiou)
        self.buffer = float(buffer)
        self.ocm_corners = bool(ocm_corners)
        self.tcm = float(tcm)
        super().__init__(
            track_thresh=det_thresh, low_thresh=low_thresh if use_byte else None,
            new_track_thresh=det_thresh, match_thresh=1.0 - iou_threshold,
            second_match_thresh=1.0 - iou_threshold, unconfirmed_match_thresh=1.0 - iou_threshold,
            max_age=max_age, n_init=n_init, fuse_score=False, oru=oru, min_score=min_score,
            output=output, cmc=cmc, output_missed=output_missed, kalman=kalman, nsa=nsa,
            appearance_on_demand=appearance_on_demand, clear_margin=clear_margin,
        )  # fmt: skip

    def _extra_fields(self) -> dict:
        k = self.delta_t
        return dict(
            super()._extra_fields(),
            hist_box=((k, 4), np.float64),  # the last k observations, oldest first
            hist_frame=((k,), np.int64),  # their frame numbers (0 = none)
            direction=((4 if self.ocm_corners else 1, 2), np.float64),  # unit directions (OCM), 0 = unknown
            prev_score=((), np.float64),  # the observed score before the last one (TCM)
        )

    def _pre_predict(self, mean, cov):
        return mean, cov  # OC-SORT predicts lost tracks like SORT

    def _reference_boxes(self, rows: np.ndarray) -> np.ndarray:
        """Each track's observation ``delta_t`` frames before now (or its oldest
        one within that window, else its last one): the origin of OCM."""
        t = self.tracks
        frames = t.hist_frame[rows]
        ok = (frames > 0) & (self.frame_count - frames <= self.delta_t)
        first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
        ref = t.obs_box[rows].copy()
        has = first >= 0
        ref[has] = t.hist_box[rows[has], first[has]]
        return ref

    def _iou(self, a: np.ndarray, b: np.ndarray, hmiou: bool = False) -> np.ndarray:
        """The association IoU: buffered by ``buffer``, height-modulated with ``hmiou``."""
        iou = iou_matrix(buffered_boxes(a, self.buffer), buffered_boxes(b, self.buffer))
        return iou * height_iou_matrix(a, b) if hmiou else iou

    def _ocm_cost(self, rows, cols, boxes, scores) -> np.ndarray:
        iou = self._iou(self.pred_boxes[rows], boxes[cols], self.hmiou)
        cost = 1.0 - iou
        if self.inertia and len(rows) and len(cols):
            origin = ocm_points(self._reference_boxes(rows), self.ocm_corners)
            angle = direction_cost(self.tracks.direction[rows], origin, ocm_points(boxes[cols], self.ocm_corners))
            cost = cost - self.inertia * angle * scores[cols][None, :]
        if self.tcm and len(rows) and len(cols):
            cost = cost + self.tcm * np.abs(self._predicted_scores(rows)[:, None] - scores[cols][None, :])
        cost[iou < self.iou_threshold] = INF_COST
        return cost

    def _predicted_scores(self, rows: np.ndarray) -> np.ndarray:
        """TCM: each track's score extrapolated from its last two observations."""
        t = self.tracks
        return np.clip(2.0 * t.score[rows] - t.prev_score[rows], 0.0, 1.0)

    def _associate(self, dets: FrameDetections, keep: np.ndarray) -> None:
        t = self.tracks
        boxes, scores = dets.boxes[keep], dets.scores[keep]
        high = np.flatnonzero(scores >= self.track_thresh)
        low = np.zeros(0, dtype=np.int64)
        if self.low_thresh is not None:
            low = np.flatnonzero((scores >= self.low_thresh) & (scores < self.track_thresh))
        limit = 1.0 - self.iou_threshold + self.inertia / 2 + self.tcm  # largest admissible OCM cost

        pool = np.arange(len(t))
        m, um_pool, um_high = linear_assignment(self._ocm_cost(pool, high, boxes, scores), limit)
        rows, cols = [pool[m[:, 0]]], [high[m[:, 1]]]
        rest, high = pool[um_pool], high[um_high]
        if len(low):  # BYTE: low-score detections to the remaining tracks
            m, um, _ = linear_assignment(iou_distance(self.pred_boxes[rest], boxes[low]), self.second_match_thresh)
            rows.append(rest[m[:, 0]])
            cols.append(low[m[:, 1]])
            rest = rest[um]
        if self.ocr and self.ocr_max_age is not None:
            rest = rest[t.tsu[rest] <= self.ocr_max_age]
        if self.ocr and len(rest) and len(high):  # OCR: last observations vs leftover detections
            cost = 1.0 - self._iou(t.obs_box[rest], boxes[high])
            m, um_r, um_h = linear_assignment(cost, 1.0 - self.iou_threshold)
            rows.append(rest[m[:, 0]])
            cols.append(high[m[:, 1]])
            high = high[um_h]
        rows, cols = np.concatenate(rows), np.concatenate(cols)

        if self.oru:
            self._re_update(rows, boxes[cols])
            self.s_inv = None
        self._observe(rows, boxes[cols])
        t.prev_score[rows] = t.score[rows]
        self._update_tracks(rows, keep[cols], dets)
        t.obs_mean[rows], t.obs_cov[rows] = t.mean[rows], t.cov[rows]
        t.confirmed[rows] |= t.hits[rows] >= self.n_init

        missed = t.tsu > 0
        t.keep(~(missed & (~t.confirmed | (t.tsu > self.max_age))))

        new = high[scores[high] >= self.new_track_thresh]
        start = len(t)
        self._new_tracks(keep[new], dets, self.frame_count == 1 or self.n_init <= 1)
        born = np.arange(start, len(t))
        t.obs_mean[born], t.obs_cov[born] = t.mean[born], t.cov[born]
        self._observe(born, boxes[new], update_direction=False)
        t.prev_score[born] = t.score[born]

    def _observe(self, rows: np.ndarray, boxes: np.ndarray, update_direction: bool = True) -> None:
        """Records this frame's observation of ``rows`` (before ``obs_box`` changes)
        and updates their OCM direction."""
        if len(rows) == 0:
            return
        t = self.tracks
        if update_direction:
            ref = ocm_points(self._reference_boxes(rows), self.ocm_corners)
            d = _unit(ocm_points(boxes, self.ocm_corners) - ref)  # (k, P, 2)
            moved = np.any(d != 0, axis=2)
            dirs = t.direction[rows]
            dirs[moved] = d[moved]
            t.direction[rows] = dirs
        t.hist_box[rows] = np.concatenate([t.hist_box[rows, 1:], boxes[:, None, :]], axis=1)
        t.hist_frame[rows] = np.concatenate(
            [t.hist_frame[rows, 1:], np.full((len(rows), 1), self.frame_count)], axis=1
        )
