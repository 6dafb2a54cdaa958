"""Weighted boxes fusion (WBF) of several detectors, in pixels.

Implements Solovyev, Wang & Gabruseva, "Weighted boxes fusion: Ensembling boxes
from different object detection models" (2019, arXiv:1910.13302), for a single
class (persons), as the HIE 2020 winners fused their two Cascade R-CNNs:

1. Drop boxes scoring below ``skip_box_thr``; multiply each model's scores by
   its weight. Sort all boxes of all models by decreasing (weighted) score.
2. For each box, find the fused box it overlaps most; if that IoU is above
   ``iou_thr`` add the box to that cluster, else start a new cluster. A fused
   box is the score-weighted mean of its cluster's corners, its score the mean
   (``conf_type="avg"``) or max (``"max"``) of the cluster's scores.
3. Rescale each fused score by ``min(W_count, cluster size) / sum(weights)``
   (avg) or ``1 / max(weights)`` (max), so a box found by one model of two
   keeps half its score.

IoU and weighted means are invariant to scaling each axis, so fusing pixel
boxes gives exactly the pixel version of WBF on normalised boxes. The matching
loop is inherently sequential (a cluster's box moves as boxes join it); each
step is one vectorized IoU against all fused boxes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fiftyone_posetrack.detection.base import Detector, check_frames
from fiftyone_posetrack.detection.nms import box_iou
from fiftyone_posetrack.types import BadInputError, FrameDetections

__all__ = ["weighted_boxes_fusion", "FusedDetector"]


def _check_weights(weights, n_models: int) -> np.ndarray:
    weights = np.ones(n_models) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_models,) or (weights < 0).any() or not weights.sum() > 0:
        raise BadInputError(
            f"WBF: expected {n_models} non-negative weights, not all 0, "
            f"got {np.ravel(weights).tolist()}"
        )
    return weights


def weighted_boxes_fusion(
    boxes_list: Sequence[np.ndarray],
    scores_list: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    iou_thr: float = 0.55,
    skip_box_thr: float = 0.0,
    conf_type: str = "avg",
) -> tuple[np.ndarray, np.ndarray]:
    """Fuses the boxes of several models of one image.

    Args:
        boxes_list: one ``(N_i, 4)`` ``[x1, y1, x2, y2]`` array per model (any
            unit; pixels in this library)
        scores_list: one ``(N_i,)`` score array per model
        weights: one non-negative weight per model (default: all 1); a model
            of weight 0 is ignored
        iou_thr: a box joins the best-overlapping cluster when IoU > ``iou_thr``
        skip_box_thr: boxes scoring below it are ignored
        conf_type: ``"avg"`` (the paper) or ``"max"``

    Returns:
        ``(boxes, scores)``: ``(M, 4)`` fused boxes and ``(M,)`` scores, by
        decreasing score
    """
    n_models = len(boxes_list)
    if len(scores_list) != n_models:
        raise BadInputError(f"WBF: {n_models} box arrays but {len(scores_list)} score arrays")
    weights = _check_weights(weights, n_models)
    used = np.flatnonzero(weights > 0)  # a model of weight 0 is left out entirely
    boxes_list = [boxes_list[m] for m in used]
    scores_list = [scores_list[m] for m in used]
    weights, n_models = weights[used], len(used)
    if conf_type not in ("avg", "max"):
        raise BadInputError(f"WBF: conf_type must be 'avg' or 'max', got {conf_type!r}")

    all_boxes, all_scores = [], []
    for m, (boxes, scores) in enumerate(zip(boxes_list, scores_list)):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(boxes) != len(scores):
            raise BadInputError(f"WBF: model {m} has {len(boxes)} boxes but {len(scores)} scores")
        keep = (scores >= skip_box_thr) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        all_boxes.append(boxes[keep])
        all_scores.append(scores[keep] * weights[m])
    boxes = np.concatenate(all_boxes)
    scores = np.concatenate(all_scores)
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]

    n = len(boxes)
    fused = np.zeros((n, 4))  # current fused box of each cluster
    coord_sum = np.zeros((n, 4))  # sum of score * corners
    score_sum = np.zeros(n)
    score_max = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    n_clusters = 0
    for box, score in zip(boxes, scores):
        c = -1
        if n_clusters:
            ious = box_iou(box, fused[:n_clusters])[0]
            best = int(np.argmax(ious))
            if ious[best] > iou_thr:
                c = best
        if c < 0:
            c = n_clusters
            n_clusters += 1
        coord_sum[c] += score * box
        score_sum[c] += score
        score_max[c] = max(score_max[c], score)
        count[c] += 1
        fused[c] = coord_sum[c] / score_sum[c]

    fused, count = fused[:n_clusters], count[:n_clusters]
    if conf_type == "avg":
        out_scores = score_sum[:n_clusters] / count * np.minimum(count, n_models) / weights.sum()
    else:
        out_scores = score_max[:n_clusters] / weights.max()
    order = np.argsort(-out_scores, kind="stable")
    return fused[order], out_scores[order]


class FusedDetector(Detector):
    """A detector that fuses the boxes of several detectors with WBF.

    Build the member detectors with a low ``score_threshold`` (e.g. 0.05):
    WBF halves the score of a box only one of two models finds, so boxes
    should not be cut before fusion; this detector's own ``score_threshold``
    applies to the fused scores.

    Args:
        detectors: the member :class:`Detector` instances
        weights: one weight per detector (default 1:1)
        iou_thr: WBF cluster IoU threshold (paper: 0.55)
        skip_box_thr: member boxes below it are ignored
        conf_type: ``"avg"`` or ``"max"``
        score_threshold: fused boxes below it are dropped
        batch_size: frames handed to the members at a time
    """

    def __init__(
        self,
        detectors: Sequence[Detector],
        weights: Sequence[float] | None = None,
        iou_thr: float = 0.55,
        skip_box_thr: float = 0.0,
        conf_type: str = "avg",
        score_threshold: float = 0.3,
        batch_size: int = 8,
    ):
        detectors = list(detectors)
        if not detectors or not all(isinstance(d, Detector) for d in detectors):
            raise BadInputError("FusedDetector: expected a non-empty list of Detector instances")
        super().__init__(score_threshold, detectors[0].device, batch_size)
        self.detectors = detectors
        self.weights = _check_weights(weights, len(detectors))
        self.iou_thr = float(iou_thr)
        self.skip_box_thr = float(skip_box_thr)
        self.conf_type = conf_type

    def _detect_batch(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        frames = check_frames(frames)
        per_model = [d.detect(frames) for d in self.detectors]
        out = []
        for i in range(len(frames)):
            boxes, scores = weighted_boxes_fusion(
                [dets[i].boxes for dets in per_model],
                [dets[i].scores for dets in per_model],
                self.weights,
                self.iou_thr,
                self.skip_box_thr,
                self.conf_type,
            )
            out.append(FrameDetections(boxes, scores))
        return out
