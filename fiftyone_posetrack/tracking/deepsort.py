"""DeepSORT (Wojke, Bewley and Paulus, "Simple Online and Realtime Tracking
with a Deep Association Metric", ICIP 2017), written from the paper.

Per frame:

1. every track is predicted with the constant-velocity Kalman filter;
2. **matching cascade**: confirmed tracks are matched to detections in order
   of their time since the last update (1 frame, then 2, ...), so that recently
   seen tracks get first pick. The cost is the smallest cosine distance between
   the detection's appearance feature and the track's gallery of past
   features (at most ``nn_budget`` of them); pairs farther than
   ``max_cosine_distance`` or outside the Kalman filter's Mahalanobis gate
   (chi-square 0.95, 4 dof) are forbidden;
3. **IoU matching** of the still unmatched detections with the tentative tracks
   and the confirmed tracks missed for exactly one frame (``1 - IoU`` up to
   ``max_iou_distance``);
4. matched tracks are corrected; a tentative track is confirmed after
   ``n_init`` hits and deleted on its first miss; a confirmed track is
   deleted after ``max_age`` missed frames; every unmatched detection starts a
   tentative track.

With appearance on demand (``appearance_on_demand=True`` and ``update(...,
embedded=mask)``, see :mod:`fiftyone_posetrack.tracking.base`), the clear
motion matches of the detections without a feature are matched first (stage 0);
the cascade then runs on the other tracks and detections, and a detection
still without a feature can only match in the IoU stage.

Without appearance features (``FrameDetections.embeddings is None``) the
cascade uses the IoU cost (gated by the Mahalanobis distance) instead, so the
tracker runs on motion alone.

The thresholds depend on the embedder. The defaults suit ReID networks
trained with a cosine metric; the offline ImageNet MobileNetV2 default
compresses distances (same person ~0.15, different people ~0.3 on our
synthetic crowd), where ``max_cosine_distance=0.2, max_age=5`` does better.
Tune them on annotated video with :mod:`fiftyone_posetrack.tracking.tune`,
as the HIE 2020 solution did.
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.tracking.base import MAX_AGE, Tracker, register_tracker
from fiftyone_posetrack.tracking.kalman import CHI2_95_4DOF
from fiftyone_posetrack.tracking.matching import (
    INF_COST,
    gallery_distance,
    iou_distance,
    linear_assignment,
    normalize_rows,
)
from fiftyone_posetrack.types import BadInputError, FrameDetections
from fiftyone_posetrack.values import ValueSpec

__all__ = ["DeepSort"]

_NO_MATCH = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


@register_tracker("deepsort")
class DeepSort(Tracker):
    """DeepSORT tracker.

    Args:
        max_cosine_distance: largest appearance (cosine) distance of a match
        nn_budget: features kept per track gallery (the most recent ones)
        max_age: frames a confirmed track survives without a detection
        n_init: consecutive hits that confirm a tentative track
        max_iou_distance: largest ``1 - IoU`` of an IoU-stage match
        gating_threshold: squared-Mahalanobis gate (chi-square 0.95, 4 dof)
        only_position: gate on the box center only
        output_missed: output confirmed tracks missed for up to this many
            frames with their predicted box (1, as the paper's reference
            application, which reports tracks with ``time_since_update <= 1``)
        ema_momentum: StrongSORT's EMA appearance (Du et al., 2023): instead of a
            gallery of ``nn_budget`` features, each track keeps one feature
            ``e = m * e + (1 - m) * f`` updated with every matched detection's
            feature ``f`` (StrongSORT: ``m = 0.9``); ``None`` keeps the gallery
        min_score: detections below this confidence are ignored (0.3, the
            pipeline's detector threshold: a raw detector file with scores down
            to 0.01 would otherwise start a track on every false positive;
            MOT17 half-val, YOLOX-X boxes: min_score 0 MOTA 22.6, 0.3 76.2,
            0.5 78.8, 0.6 78.7)
        output, cmc, kalman, nsa, appearance_on_demand, clear_margin: see
            :class:`~fiftyone_posetrack.tracking.base.Tracker`
    """

    label = "DeepSORT (motion + appearance, matching cascade)"
    PARAMS = {
        **Tracker.PARAMS,
        "max_cosine_distance": ValueSpec("float", lo=0.0, hi=2.0),
        "nn_budget": ValueSpec("int", lo=1, hi=100_000),
        "max_age": ValueSpec("int", lo=0, hi=MAX_AGE),
        "n_init": ValueSpec("int", lo=1, hi=1000),
        "max_iou_distance": ValueSpec("float", lo=0.0, hi=1.0),
        "gating_threshold": ValueSpec("float", lo=0.0, lo_open=True, hi=10_000.0),
        "only_position": ValueSpec("bool"),
        "ema_momentum": ValueSpec("float", lo=0.0, hi=1.0, hi_open=True, nullable=True),
    }

    def __init__(
        self,
        max_cosine_distance: float = 0.3,
        nn_budget: int = 256,
        max_age: int = 30,
        n_init: int = 3,
        max_iou_distance: float = 0.7,
        gating_threshold: float = CHI2_95_4DOF,
        only_position: bool = False,
        ema_momentum: float | None = None,
        min_score: float = 0.3,
        output: str = "filtered",
        cmc: bool = False,
        output_missed: int = 1,
        kalman: str = "xyah",
        nsa: bool = False,
        appearance_on_demand: bool = False,
        clear_margin: float = 0.3,
    ):
        if int(nn_budget) < 1:
            raise BadInputError(f"nn_budget must be >= 1, got {nn_budget}")
        if int(n_init) < 1 or int(max_age) < 0:
            raise BadInputError(f"n_init must be >= 1 and max_age >= 0, got {n_init}, {max_age}")
        self.max_cosine_distance = float(max_cosine_distance)
        self.nn_budget = int(nn_budget)
        self.max_age = int(max_age)
        self.n_init = int(n_init)
        self.max_iou_distance = float(max_iou_distance)
        self.gating_threshold = float(gating_threshold)
        self.only_position = bool(only_position)
        if ema_momentum is not None and not 0.0 <= float(ema_momentum) < 1.0:
            raise BadInputError(f"ema_momentum must be in [0, 1) or None, got {ema_momentum}")
        self.ema_momentum = None if ema_momentum is None else float(ema_momentum)
        super().__init__(
            min_score, output, cmc, output_missed, kalman, nsa, appearance_on_demand, clear_margin
        )

    def _extra_fields(self) -> dict:
        return {"gal_n": ((), np.int64)}  # features ever added to the gallery

    def _galleries(self, rows: np.ndarray) -> list[np.ndarray]:
        t = self.tracks
        empty = np.zeros((0, self.feature_dim or 1), np.float32)  # a track born without a feature
        return [
            empty if t.galleries[r] is None else t.galleries[r][: min(t.gal_n[r], self.nn_budget)]
            for r in rows
        ]

    def _add_features(self, rows: np.ndarray, feats: np.ndarray) -> None:
        """Appends one feature per track to its ring-buffer gallery (or, with
        ``ema_momentum``, blends it into the track's single EMA feature)."""
        t = self.tracks
        if self.ema_momentum is not None:
            m = self.ema_momentum
            for r, f in zip(rows, feats):
                g = t.galleries[r]
                e = f if g is None else m * g[0] + (1.0 - m) * f
                t.galleries[r] = normalize_rows(e[None])
                t.gal_n[r] = 1
            return
        for r, f in zip(rows, feats):
            buf, n = t.galleries[r], t.gal_n[r]
            if buf is None:
                buf = np.empty((min(8, self.nn_budget), len(f)), dtype=np.float32)
            elif n < self.nn_budget and n == len(buf):  # grow by doubling
                buf = np.concatenate([buf, np.empty((min(n, self.nn_budget - n), len(f)), np.float32)])
            buf[n % self.nn_budget] = f
            t.galleries[r] = buf
            t.gal_n[r] = n + 1

    def _cascade(self, boxes, xyah, feats, skip_rows=None) -> tuple[np.ndarray, np.ndarray]:
        """Matching cascade of the confirmed tracks (but ``skip_rows``); returns ``(rows, local cols)``."""
        t = self.tracks
        conf = np.flatnonzero(t.confirmed & (t.tsu <= self.max_age))
        if skip_rows is not None and len(skip_rows):
            conf = conf[~np.isin(conf, skip_rows)]
        if len(conf) == 0 or len(boxes) == 0:
            return _NO_MATCH
        inside = self.kf.gating_distance(
            t.mean[conf], t.cov[conf], xyah, self.only_position, self.s_inv[conf]
        )
        inside = inside <= self.gating_threshold
        some = inside.any(axis=1)  # tracks with no detection in their gate cannot match
        conf, inside = conf[some], inside[some]
        if feats is not None:
            cost, limit = gallery_distance(self._galleries(conf), feats), self.max_cosine_distance
        else:
            cost, limit = iou_distance(self.pred_boxes[conf], boxes), self.max_iou_distance
        cost[~inside] = INF_COST
        some = (cost <= limit).any(axis=1)
        conf, cost = conf[some], cost[some]
        tsu = t.tsu[conf]
        unmatched = np.arange(len(boxes))
        rows, cols = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for level in np.unique(tsu):  # most recently updated tracks first
            level_rows = np.flatnonzero(tsu == level)
            m, _, um = linear_assignment(cost[np.ix_(level_rows, unmatched)], limit)
            rows.append(conf[level_rows[m[:, 0]]])
            cols.append(unmatched[m[:, 1]])
            unmatched = unmatched[um]
            if len(unmatched) == 0:
                break
        return np.concatenate(rows), np.concatenate(cols)

    def _associate(self, dets: FrameDetections, keep: np.ndarray) -> None:
        t = self.tracks
        boxes = dets.boxes[keep]
        feats = None if dets.embeddings is None else normalize_rows(dets.embeddings[keep])
        embedded = None if self._embedded is None else self._embedded[keep]
        if embedded is not None:
            feats[~embedded] = 0.0  # no feature: cosine distance 1, never an appearance match
        rows_0, cols_0 = self._clear_pairs(boxes, embedded)  # stage 0: clear motion matches
        rest = np.setdiff1d(np.arange(len(boxes)), cols_0)
        rows_a, cols_a = self._cascade(
            boxes[rest], self.kf.from_boxes(boxes[rest]), None if feats is None else feats[rest], rows_0
        )
        rows_a, cols_a = np.concatenate([rows_0, rows_a]), np.concatenate([cols_0, rest[cols_a]])

        matched = np.zeros(len(t), dtype=bool)
        matched[rows_a] = True
        free = np.ones(len(boxes), dtype=bool)
        free[cols_a] = False
        free = np.flatnonzero(free)
        cand = np.flatnonzero(~matched & (~t.confirmed | (t.tsu == 1)))
        m, _, _ = linear_assignment(
            iou_distance(self.pred_boxes[cand], boxes[free]), self.max_iou_distance
        )
        rows = np.concatenate([rows_a, cand[m[:, 0]]])
        cols = np.concatenate([cols_a, free[m[:, 1]]])

        self._update_tracks(rows, keep[cols], dets)
        t.confirmed[rows] |= t.hits[rows] >= self.n_init
        if feats is not None:
            has = slice(None) if embedded is None else embedded[cols]
            self._add_features(rows[has], feats[cols][has])

        missed = t.tsu > 0
        t.keep(~(missed & (~t.confirmed | (t.tsu > self.max_age))))

        new = np.ones(len(boxes), dtype=bool)
        new[cols] = False
        new = np.flatnonzero(new)
        start = len(t)
        self._new_tracks(keep[new], dets, self.n_init <= 1, gal_n=np.zeros(len(new)))
        if feats is not None:
            has = slice(None) if embedded is None else embedded[new]
            self._add_features(np.arange(start, len(t))[has], feats[new][has])
