"""ByteTrack-style association with BoT-SORT / OC-SORT refinements, and SORT.

Written from the papers:

- ByteTrack (Zhang et al., ECCV 2022): detections are split by score; the
  high-score ones are matched first to all confirmed tracks (tracked and
  lost), then the **low-score** ones to the tracks still unmatched that were
  tracked in the previous frame, which recovers occluded people whose
  detector score dropped. Tentative tracks are matched last, to the remaining
  high-score detections.
- BoT-SORT (Aharon et al., 2022): where appearance features are given, the
  first-stage cost is ``min(IoU cost, appearance cost)``, the appearance cost
  counting only where both gates pass (cosine distance / 2 below
  ``appearance_thresh`` and ``1 - IoU`` below ``proximity_thresh``); track
  features are an exponential moving average. Optional camera-motion
  compensation (``cmc=True``) warps the Kalman states with the frame-to-frame
  similarity estimated from sparse optical flow.
- OC-SORT (Cao et al., CVPR 2023), optional (``oru=True``):
  observation-centric re-update. When a track lost for ``k`` frames is matched
  again, its filter is rolled back to its last observation and re-run over a
  virtual trajectory linearly interpolated to the new detection, which undoes
  the velocity drift accumulated while it was lost.

SORT (Bewley et al., 2016) is the same machinery with one IoU matching stage,
no score split and no appearance: ``make_tracker("sort")``.
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.tracking.base import MAX_AGE, Tracker, register_tracker
from fiftyone_posetrack.tracking.matching import (
    cosine_distance,
    iou_distance,
    linear_assignment,
    normalize_rows,
)
from fiftyone_posetrack.types import BadInputError, FrameDetections
from fiftyone_posetrack.values import ValueSpec

__all__ = ["ByteTrack", "Sort"]

_UNIT = ValueSpec("float", lo=0.0, hi=1.0)


@register_tracker("bytetrack")
class ByteTrack(Tracker):
    """ByteTrack association with optional appearance fusion, CMC and ORU.

    Args:
        track_thresh: detections scoring at least this are "high" (first stage)
        low_thresh: detections in ``[low_thresh, track_thresh)`` are used by
            the second stage; ``None`` disables it
        new_track_thresh: least score of a detection that starts a track
        match_thresh: largest cost of a first-stage match
        second_match_thresh: largest ``1 - IoU`` of a low-score match
        unconfirmed_match_thresh: largest cost of a tentative-track match
        max_age: frames a lost track is kept for re-identification
        n_init: hits that confirm a track (tracks born in the first frame are
            confirmed at once)
        fuse_score: multiply the IoU similarity by the detection score
        appearance_thresh: largest cosine distance / 2 that counts as an
            appearance match (only with embeddings)
        proximity_thresh: largest ``1 - IoU`` where appearance may be used
        feature_momentum: EMA weight of the old track feature
        oru: OC-SORT observation-centric re-update of re-found tracks
        min_score, output, cmc, output_missed, kalman, nsa, appearance_on_demand, clear_margin:
            see :class:`~fiftyone_posetrack.tracking.base.Tracker` (a detection without a
            feature is matched by IoU only; only high-score boxes ask for one)
    """

    label = "ByteTrack (high- then low-score matching; motion, optional appearance)"
    PARAMS = {
        **Tracker.PARAMS,
        "track_thresh": _UNIT,
        "low_thresh": ValueSpec("float", lo=0.0, hi=1.0, nullable=True),
        "new_track_thresh": _UNIT,
        "match_thresh": _UNIT,
        "second_match_thresh": _UNIT,
        "unconfirmed_match_thresh": _UNIT,
        "max_age": ValueSpec("int", lo=0, hi=MAX_AGE),
        "n_init": ValueSpec("int", lo=1, hi=1000),
        "fuse_score": ValueSpec("bool"),
        "appearance_thresh": _UNIT,
        "proximity_thresh": _UNIT,
        "feature_momentum": _UNIT,
        "oru": ValueSpec("bool"),
    }

    def __init__(
        self,
        track_thresh: float = 0.5,
        low_thresh: float | None = 0.1,
        new_track_thresh: float = 0.6,
        match_thresh: float = 0.8,
        second_match_thresh: float = 0.5,
        unconfirmed_match_thresh: float = 0.7,
        max_age: int = 30,
        n_init: int = 2,
        fuse_score: bool = True,
        appearance_thresh: float = 0.25,
        proximity_thresh: float = 0.5,
        feature_momentum: float = 0.9,
        oru: bool = False,
        min_score: float = 0.0,
        output: str = "filtered",
        cmc: bool = False,
        output_missed: int = 0,
        kalman: str = "xyah",
        nsa: bool = False,
        appearance_on_demand: bool = False,
        clear_margin: float = 0.3,
    ):
        if int(n_init) < 1 or int(max_age) < 0:
            raise BadInputError(f"n_init must be >= 1 and max_age >= 0, got {n_init}, {max_age}")
        if low_thresh is not None and low_thresh > track_thresh:
            raise BadInputError(f"low_thresh {low_thresh} is above track_thresh {track_thresh}")
        self.track_thresh = float(track_thresh)
        self.low_thresh = None if low_thresh is None else float(low_thresh)
        self.new_track_thresh = float(new_track_thresh)
        self.match_thresh = float(match_thresh)
        self.second_match_thresh = float(second_match_thresh)
        self.unconfirmed_match_thresh = float(unconfirmed_match_thresh)
        self.max_age = int(max_age)
        self.n_init = int(n_init)
        self.fuse_score = bool(fuse_score)
        self.appearance_thresh = float(appearance_thresh)
        self.proximity_thresh = float(proximity_thresh)
        self.feature_momentum = float(feature_momentum)
        self.oru = bool(oru)
        super().__init__(
            min_score, output, cmc, output_missed, kalman, nsa, appearance_on_demand, clear_margin
        )

    def _extra_fields(self) -> dict:
        return {"obs_mean": ((8,), np.float64), "obs_cov": ((8, 8), np.float64)}

    def _pre_predict(self, mean, cov):
        lost = self.tracks.tsu > 0
        if lost.any():  # a lost box keeps its size (ByteTrack)
            mean = mean.copy()
            mean[lost, 7] = 0.0
        return mean, cov

    def _appearance_candidates(self, dets: FrameDetections) -> np.ndarray:
        # only high-score detections are matched with appearance (first and tentative stages)
        keep = self._usable(dets)
        return keep[dets.scores[keep] >= self.track_thresh]

    def _cost(self, rows, cols, boxes, scores, feats) -> np.ndarray:
        t = self.tracks
        iou_cost = iou_distance(self.pred_boxes[rows], boxes[cols])
        cost = 1.0 - (1.0 - iou_cost) * scores[cols] if self.fuse_score else iou_cost
        if feats is not None and hasattr(t, "feat") and len(rows) and len(cols):
            emb = cosine_distance(t.feat[rows], feats[cols], normalized=True) / 2.0
            emb[(emb > self.appearance_thresh) | (iou_cost > self.proximity_thresh)] = 1.0
            cost = np.minimum(cost, emb)
        return cost

    def _associate(self, dets: FrameDetections, keep: np.ndarray) -> None:
        t = self.tracks
        boxes, scores = dets.boxes[keep], dets.scores[keep]
        feats = None if dets.embeddings is None else normalize_rows(dets.embeddings[keep])
        embedded = None if self._embedded is None else self._embedded[keep]
        if embedded is not None:
            feats[~embedded] = 0.0  # no feature: cosine distance 1, IoU cost only
        if feats is not None and not hasattr(t, "feat"):
            t.add_field("feat", (feats.shape[1],), np.float32)

        high = np.flatnonzero(scores >= self.track_thresh)
        low = np.zeros(0, dtype=np.int64)
        if self.low_thresh is not None:
            low = np.flatnonzero((scores >= self.low_thresh) & (scores < self.track_thresh))

        pool = np.flatnonzero(t.confirmed)
        m, um_pool, um_high = linear_assignment(
            self._cost(pool, high, boxes, scores, feats), self.match_thresh
        )
        rows, cols = [pool[m[:, 0]]], [high[m[:, 1]]]
        rest = pool[um_pool]
        tracked = rest[t.tsu[rest] == 1]  # tracked until the previous frame
        m, _, _ = linear_assignment(
            iou_distance(self.pred_boxes[tracked], boxes[low]), self.second_match_thresh
        )
        rows.append(tracked[m[:, 0]])
        cols.append(low[m[:, 1]])
        high = high[um_high]
        tentative = np.flatnonzero(~t.confirmed)
        m, _, um_high = linear_assignment(
            self._cost(tentative, high, boxes, scores, feats), self.unconfirmed_match_thresh
        )
        rows.append(tentative[m[:, 0]])
        cols.append(high[m[:, 1]])
        rows, cols = np.concatenate(rows), np.concatenate(cols)

        if self.oru:
            self._re_update(rows, boxes[cols])
            self.s_inv = None  # replayed states: recompute S^-1 in the update
        self._update_tracks(rows, keep[cols], dets)
        t.obs_mean[rows], t.obs_cov[rows] = t.mean[rows], t.cov[rows]
        t.confirmed[rows] |= t.hits[rows] >= self.n_init
        if feats is not None:
            has = slice(None) if embedded is None else embedded[cols]
            self._update_features(rows[has], feats[cols][has])

        missed = t.tsu > 0
        t.keep(~(missed & (~t.confirmed | (t.tsu > self.max_age))))

        new = high[um_high]
        new = new[scores[new] >= self.new_track_thresh]
        start = len(t)
        self._new_tracks(keep[new], dets, self.frame_count == 1 or self.n_init <= 1)
        born = np.arange(start, len(t))
        t.obs_mean[born], t.obs_cov[born] = t.mean[born], t.cov[born]
        if feats is not None:
            t.feat[born] = feats[new]

    def _update_features(self, rows: np.ndarray, feats: np.ndarray) -> None:
        t = self.tracks
        old = t.feat[rows]
        fresh = ~np.any(old, axis=1)  # no feature yet: take the new one
        mom = np.where(fresh, 0.0, self.feature_momentum)[:, None]
        t.feat[rows] = normalize_rows(mom * old + (1.0 - mom) * feats)

    def _re_update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """OC-SORT re-update: replays re-found tracks from their last observation."""
        t = self.tracks
        gaps = t.tsu[rows]
        for gap in np.unique(gaps[gaps > 1]):
            sel = gaps == gap
            r = rows[sel]
            mean, cov = t.obs_mean[r], t.obs_cov[r]
            start, end = t.obs_box[r], boxes[sel]
            for k in range(1, gap):
                mean, cov = self.kf.predict(mean, cov)
                virtual = start + (end - start) * (k / gap)
                mean, cov = self.kf.update(mean, cov, self.kf.from_boxes(virtual))
            t.mean[r], t.cov[r] = self.kf.predict(mean, cov)


@register_tracker("sort")
class Sort(ByteTrack):
    """SORT (Bewley et al., 2016): Kalman filter + one IoU matching stage.

    Args:
        iou_threshold: least IoU of a match
        max_age: frames a track survives without a detection
        n_init: hits before a track is output (SORT's ``min_hits``)
        min_score: detections below this confidence are ignored (0.3, the
            pipeline's detector threshold: SORT has no low-score stage, and
            near-zero boxes would each start a track; MOT17 half-val MOTA 76.8)
        output, cmc, output_missed, kalman, nsa: see :class:`~fiftyone_posetrack.tracking.base.Tracker`
    """

    label = "SORT (motion only, one IoU matching)"
    PARAMS = {
        **Tracker.PARAMS,
        "iou_threshold": _UNIT,
        "max_age": ValueSpec("int", lo=0, hi=MAX_AGE),
        "n_init": ValueSpec("int", lo=1, hi=1000),
    }

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_age: int = 1,
        n_init: int = 3,
        min_score: float = 0.3,
        output: str = "filtered",
        cmc: bool = False,
        output_missed: int = 0,
        kalman: str = "xyah",
        nsa: bool = False,
        appearance_on_demand: bool = False,
        clear_margin: float = 0.3,
    ):
        super().__init__(
            track_thresh=min_score, low_thresh=None, new_track_thresh=min_score,
            match_thresh=1.0 - iou_threshold, unconfirmed_match_thresh=1.0 - iou_threshold,
            max_age=max_age, n_init=n_init, fuse_score=False, min_score=min_score,
            output=output, cmc=cmc, output_missed=output_missed, kalman=kalman, nsa=nsa,
            appearance_on_demand=appearance_on_demand, clear_margin=clear_margin,
        )  # fmt: skip

    def _pre_predict(self, mean, cov):
        return mean, cov

    def _associate(self, dets, keep):
        if dets.embeddings is not None:  # SORT is motion-only
            dets = FrameDetections(dets.boxes, dets.scores)
        super()._associate(dets, keep)
