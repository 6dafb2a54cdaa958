"""Person detection metrics on per-frame arrays: COCO AP and log-average miss rate.

Boxes are ``[x1, y1, x2, y2]`` in pixels. Every frame of a video is one COCO
image; every video is evaluated alone and all frames of all videos together
(``OVERALL``, pooled, not an average of videos).

- **AP** (``ap``: mean over IoU 0.50:0.05:0.95; ``ap50``, ``ap75``) and
  **AR** (``ar``, at ``max_dets`` per frame) come from pycocotools' COCOeval
  (101-point interpolated precision) on in-memory COCO dicts. Ground truth
  flagged ``gt_ignore`` is a COCO *crowd* box: a prediction inside it
  (intersection over the prediction's area >= the IoU threshold) is neither a
  true nor a false positive, and it is never a miss.
- **Log-average miss rate** (``lamr``, Dollar et al., "Pedestrian Detection:
  An Evaluation of the State of the Art", PAMI 2012), from the same COCOeval
  matching at IoU 0.5: predictions are ranked by score; the miss rate
  ``1 - recall`` is sampled at the 9 FPPI (false positives per frame) values
  log-spaced in ``[1e-2, 1e0]`` (``10 ** [-2, -1.75, ..., 0]``), taking the
  operating point with the largest FPPI not above each one (miss rate 1 when
  there is none), and averaged geometrically with each value floored at
  ``1e-10`` as in Dollar's toolbox: perfect detections give ``1e-10``.

Degenerate cases never give NaN: when there is no (non-ignored) ground truth,
AP and AR are 1.0 and the miss rate 0.0 if no prediction counts either, and
AP = AR = 0.0, miss rate 1.0 if some prediction does (all are false).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fiftyone_posetrack.types import BadInputError, FrameDetections, xyxy_to_xywh

__all__ = ["FPPI_RANGE", "DetectionFrame", "evaluate_detection_frames", "log_average_miss_rate"]

#: FPPI range of the log-average miss rate
FPPI_RANGE = (1e-2, 1e0)
_FPPI_REFS = np.logspace(-2.0, 0.0, 9)


@dataclass
class DetectionFrame:
    """Ground truth and predictions of one frame.

    Attributes:
        gt_boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` pixels
        pred_boxes: ``(M, 4)`` ``[x1, y1, x2, y2]`` pixels
        pred_scores: ``(M,)`` confidences (ranking only)
        gt_ignore: optional ``(N,)`` bool, crowd / ignore-region boxes
    """

    gt_boxes: np.ndarray
    pred_boxes: np.ndarray
    pred_scores: np.ndarray | None = None
    gt_ignore: np.ndarray | None = None

    def __post_init__(self):
        gt = FrameDetections(self.gt_boxes)
        pred = FrameDetections(self.pred_boxes, self.pred_scores)
        self.gt_boxes, self.pred_boxes, self.pred_scores = gt.boxes, pred.boxes, pred.scores
        if self.gt_ignore is None:
            self.gt_ignore = np.zeros(len(gt), dtype=bool)
        self.gt_ignore = np.asarray(self.gt_ignore, dtype=bool).reshape(-1)
        if len(self.gt_ignore) != len(gt):
            raise BadInputError(f"gt_ignore: expected {len(gt)} flags, got {len(self.gt_ignore)}")


def _to_coco(frames: Sequence[DetectionFrame]):
    images, gts, dts = [], [], []
    for img_id, fr in enumerate(frames, 1):
        images.append({"id": img_id})
        for box, ign in zip(xyxy_to_xywh(fr.gt_boxes), fr.gt_ignore):
            gts.append({"id": len(gts) + 1, "image_id": img_id, "category_id": 1,
                        "bbox": box.tolist(), "area": float(box[2] * box[3]),
                        "iscrowd": int(ign)})  # fmt: skip
        for box, score in zip(xyxy_to_xywh(fr.pred_boxes), fr.pred_scores):
            dts.append({"id": len(dts) + 1, "image_id": img_id, "category_id": 1,
                        "bbox": box.tolist(), "area": float(box[2] * box[3]),
                        "score": float(score), "iscrowd": 0})  # fmt: skip
    return images, gts, dts


def _coco(images, anns):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = {"images": images, "annotations": anns,
                    "categories": [{"id": 1, "name": "person"}]}  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def log_average_miss_rate(recall: np.ndarray, fppi: np.ndarray) -> float:
    """Dollar's log-average miss rate of a ranked detection curve.

    Args:
        recall: recall after each ranked prediction (non-decreasing)
        fppi: false positives per frame after each ranked prediction

    Returns:
        the geometric mean of ``max(1e-10, 1 - recall)`` sampled at the 9 FPPI
        values log-spaced in :data:`FPPI_RANGE`
    """
    recall = np.concatenate([[0.0], np.asarray(recall, dtype=float)])
    fppi = np.concatenate([[-np.inf], np.asarray(fppi, dtype=float)])
    idx = np.searchsorted(fppi, _FPPI_REFS, side="right") - 1  # last point with fppi <= ref
    miss = np.maximum(1e-10, 1.0 - recall[idx])
    return float(np.exp(np.mean(np.log(miss))))


def _summary(ev) -> dict:
    """COCOeval's summary numbers (area "all", ``max_dets``); -1 where undefined."""
    prec = ev.eval["precision"][:, :, 0, 0, 0]  # (IoU thresholds, recall points)
    rec = ev.eval["recall"][:, 0, 0, 0]
    thr = ev.params.iouThrs

    def mean(a):
        a = a[a > -1]
        return float(a.mean()) if a.size else -1.0

    return {
        "ap": mean(prec),
        "ap50": mean(prec[np.isclose(thr, 0.5)]),
        "ap75": mean(prec[np.isclose(thr, 0.75)]),
        "ar": mean(rec),
    }


def _evaluate(frames: Sequence[DetectionFrame], max_dets: int) -> dict:
    from pycocotools.cocoeval import COCOeval

    images, gts, dts = _to_coco(frames)
    ev = COCOeval(_coco(images, gts), _coco(images, dts), "bbox")
    ev.params.maxDets = [max_dets]
    ev.params.areaRng, ev.params.areaRngLbl = [[0.0, 1e10]], ["all"]  # no size classes
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    # the miss-rate curve from COCOeval's own matching at IoU 0.5
    evals = [e for e in ev.evalImgs if e is not None]
    num_gt = int(sum(np.count_nonzero(~np.asarray(e["gtIgnore"], bool)) for e in evals))
    if evals:
        scores = np.concatenate([e["dtScores"][:max_dets] for e in evals])
        matched = np.concatenate([e["dtMatches"][0, :max_dets] for e in evals]) > 0
        ignored = np.concatenate([e["dtIgnore"][0, :max_dets] for e in evals]).astype(bool)
        order = np.argsort(-scores, kind="mergesort")
        matched, ignored = matched[order], ignored[order]
        tp = np.cumsum(matched & ~ignored)[~ignored]
        fp = np.cumsum(~matched & ~ignored)[~ignored]
    else:
        tp = fp = np.zeros(0)
    counted = len(tp)
    out = _summary(ev)
    if num_gt == 0:  # nothing to detect: perfect unless something was predicted
        out = {k: 0.0 if counted else 1.0 for k in out}
        out["lamr"] = 1.0 if counted else 0.0
    else:
        out["lamr"] = log_average_miss_rate(tp / num_gt, fp / max(len(frames), 1))
    out.update(
        fppi_range=list(FPPI_RANGE),
        num_frames=len(frames),
        num_gt=num_gt,
        num_ignored_gt=int(sum(int(fr.gt_ignore.sum()) for fr in frames)),
        num_pred=len(dts),
    )
    return out


def evaluate_detection_frames(
    videos: Mapping[str, Sequence[DetectionFrame]], max_dets: int = 100
) -> dict[str, dict]:
    """Evaluates person detections per video and overall.

    Args:
        videos: ``{name: [DetectionFrame per frame]}``; include the frames
            with nothing in them (they count in FPPI)
        max_dets: the most predictions per frame that are evaluated (the
            highest scored; COCO's default 100)

    Returns:
        ``{name: metrics, ..., "OVERALL": metrics}``, each with ``ap``,
        ``ap50``, ``ap75``, ``ar``, ``lamr``, ``fppi_range``, ``num_frames``,
        ``num_gt`` (not ignored), ``num_ignored_gt``, ``num_pred``
    """
    if not videos:
        raise BadInputError("videos: expected at least one video of frames")
    if "OVERALL" in videos:
        raise BadInputError("videos: 'OVERALL' is reserved for the combined result")
    for name, frames in videos.items():
        for i, fr in enumerate(frames):
            if not isinstance(fr, DetectionFrame):
                raise BadInputError(f"video {name!r}, frame {i}: expected a DetectionFrame")
    out = {name: _evaluate(list(frames), max_dets) for name, frames in videos.items()}
    out["OVERALL"] = _evaluate([fr for frames in videos.values() for fr in frames], max_dets)
    return out
