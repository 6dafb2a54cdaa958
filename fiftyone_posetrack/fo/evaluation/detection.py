"""Person detection evaluation of video datasets as a FiftyOne evaluation run.

Numbers come from :func:`fiftyone_posetrack.eval.detection.evaluate_detection_frames`:
COCO AP (IoU 0.50:0.05:0.95), AP50, AP75, AR (pycocotools, at most
``max_dets`` boxes per frame) and Dollar's log-average miss rate over FPPI
(false positives per frame) in ``[1e-2, 1e0]`` (9 log-spaced points), per
video and pooled over all frames of all videos (``OVERALL``). Boxes are
converted from FiftyOne's relative ``[x, y, w, h]`` to pixels of the video's
frame size; track ids are not used, ``confidence`` ranks the predictions
(missing: 1).

Which frames count: by default every frame of every video (1 to the
metadata's frame count; frames without labels are empty frames, whose
predictions are false positives and which count in FPPI), as MOTChallenge
ground truth is dense. With ``annotated_only=True`` only frames whose
ground-truth field is set (an empty ``fo.Detections`` included) count, for
sparsely labelled videos (PoseTrack labels every few frames).

Ignored ground truth (COCO crowd boxes: a prediction inside one is neither a
true nor a false positive): boxes with ``ignore=True`` or a truthy
``iscrowd`` / ``crowd`` attribute, and with ``ignore_field`` the bounding box of
every ignore-region polygon.

Fields written for ``eval_key="det_eval"``: ``det_eval_ap``,
``det_eval_ap50`` and ``det_eval_lamr`` on each video sample (None where
undefined). No per-box marks: COCOeval's matching runs per IoU threshold.
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.eval.detection import DetectionFrame, evaluate_detection_frames
from fiftyone_posetrack.fo.evaluation.base import (
    check_eval_key_fields,
    PosetrackEvaluation,
    PosetrackEvaluationConfig,
    PosetrackEvaluationResults,
    VideoLabels,
    check_box_fields,
    frame_path,
    read_videos,
    region_polygons,
)
from fiftyone_posetrack.fo.labels import detections_to_arrays
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "DetectionEvaluation",
    "DetectionEvaluationConfig",
    "DetectionEvaluationResults",
    "evaluate_person_detection",
]

#: per-video metrics stored on each sample as ``<eval_key>_<name>``
SAMPLE_METRICS = ("ap", "ap50", "lamr")


class DetectionEvaluationConfig(PosetrackEvaluationConfig):
    """Config of :class:`DetectionEvaluation`."""

    def __init__(self, pred_field, gt_field, max_dets=100, annotated_only=False, ignore_field=None, **kwargs):
        super().__init__(pred_field, gt_field, ignore_field=ignore_field, **kwargs)
        self.max_dets = int(max_dets)
        self.annotated_only = bool(annotated_only)

    @property
    def method(self) -> str:
        return "posetrack_detection"


class DetectionEvaluation(PosetrackEvaluation):
    """COCO AP and log-average miss rate of person boxes (see the module docs)."""

    def field_names(self, eval_key):
        return [f"{eval_key}_{m}" for m in SAMPLE_METRICS], [], []


class DetectionEvaluationResults(PosetrackEvaluationResults):
    """Results of :func:`evaluate_person_detection`.

    Attributes:
        metrics_by_video: ``{video: metrics, ..., "OVERALL": metrics}`` with
            ``ap``, ``ap50``, ``ap75``, ``ar``, ``lamr``, ``fppi_range``,
            ``num_frames``, ``num_gt``, ``num_ignored_gt``, ``num_pred``
        video_ids: ``{video: sample id}``
    """

    report_keys = ("ap", "ap50", "ap75", "ar", "lamr", "num_frames", "num_gt", "num_pred")


def _is_crowd(label) -> bool:
    return bool(getattr(label, "ignore", False) or getattr(label, "iscrowd", False)
                or getattr(label, "crowd", False))  # fmt: skip


def _frames(video: VideoLabels, gt: str, pred: str, ignore: str | None, annotated_only: bool):
    """One :class:`DetectionFrame` per evaluated frame of a video."""
    w, h = video.width, video.height
    by_number = {n: k for k, n in enumerate(video.frame_numbers)}
    if annotated_only:
        numbers = [n for n, lab in zip(video.frame_numbers, video.labels[gt]) if lab is not None]
    else:
        last = max([video.num_frames] + video.frame_numbers)
        numbers = list(range(1, last + 1))
    frames = []
    for n in numbers:
        k = by_number.get(n)
        gdet = video.labels[gt][k] if k is not None else None
        pdet = video.labels[pred][k] if k is not None else None
        gboxes, _, _ = detections_to_arrays(gdet, w, h)
        crowd = np.array([_is_crowd(d) for d in (gdet.detections if gdet else [])], dtype=bool)
        if ignore is not None and k is not None:
            polys = region_polygons(video.labels[ignore][k], w, h)
            if polys:
                extra = np.array([[*p.min(axis=0), *p.max(axis=0)] for p in polys])
                gboxes = np.concatenate([gboxes, extra])
                crowd = np.concatenate([crowd, np.ones(len(extra), dtype=bool)])
        pboxes, pscores, _ = detections_to_arrays(pdet, w, h)
        frames.append(DetectionFrame(gboxes, pboxes, pscores, crowd))
    return frames


def evaluate_person_detection(
    samples,
    pred_field: str = "pred_detections",
    gt_field: str = "gt_detections",
    eval_key: str | None = "det_eval",
    max_dets: int = 100,
    annotated_only: bool = False,
    ignore_field: str | None = None,
) -> DetectionEvaluationResults:
    """Evaluates person boxes per video and overall: COCO AP, AP50 and LAMR.

    Args:
        samples: a video dataset or view (its label filters apply, e.g. keep
            only ``label == "person"`` with ``filter_labels``)
        pred_field: frame-level predicted ``fo.Detections`` (``confidence``)
        gt_field: frame-level ground-truth ``fo.Detections``
        eval_key: the run's key; None computes without storing a run
        max_dets: the most predictions per frame that are evaluated
        annotated_only: evaluate only frames whose ground truth is set (see
            the module docs); default: every frame of the video
        ignore_field: optional frame-level ``fo.Polylines`` of ignore regions

    Returns:
        a :class:`DetectionEvaluationResults`
    """
    pred, gt, ign = check_box_fields(samples, pred_field, gt_field, ignore_field, eval_key)
    if int(max_dets) < 1:
        raise BadInputError(f"max_dets: expected a positive number, got {max_dets}")

    config = DetectionEvaluationConfig(
        frame_path(pred), frame_path(gt), max_dets, annotated_only, frame_path(ign) if ign else None
    )
    method = config.build()
    check_eval_key_fields(samples, method, eval_key)
    videos = read_videos(samples, [gt, pred, ign])
    frames = {v.name: _frames(v, gt, pred, ign, annotated_only) for v in videos}
    metrics = evaluate_detection_frames(frames, max_dets=int(max_dets))
    results = DetectionEvaluationResults(
        samples, config, eval_key, metrics, {v.name: v.sample_id for v in videos}, backend=method
    )
    if eval_key is None:
        return results
    method.register_run(samples, eval_key)
    method.set_sample_metrics(
        samples, eval_key, {f"{eval_key}_{m}": {v.sample_id: metrics[v.name][m] for v in videos} for m in SAMPLE_METRICS}
    )
    method.save_run_results(samples, eval_key, results)
    return results
