"""Multi-object tracking evaluation of video datasets as a FiftyOne evaluation run.

Numbers come from :func:`fiftyone_posetrack.eval.mot.evaluate_mot_sequences`
(py-motmetrics CLEAR-MOT and IDF1, TrackEval HOTA) on the MOT arrays of
:func:`fiftyone_posetrack.fo.labels.frames_to_mot`, so they equal
``posetrack eval-mot`` on the same boxes written as MOT files; the per-box
marks come from :func:`fiftyone_posetrack.eval.mot.match_mot_arrays` (the same
matching). Boxes are relative ``[x, y, w, h]`` in FiftyOne and pixels of the
video's frame size in the metrics; every detection needs its track id in
``index``.

What is ignored (neither counted nor a miss):

- ground-truth boxes with ``ignore=True`` (distractors, as imported by
  :func:`fiftyone_posetrack.fo.dataset.import_mot_ground_truth`) or a truthy
  ``iscrowd`` / ``crowd`` attribute: predictions matched to them are removed,
  as MOTChallenge does with distractors;
- with ``ignore_field`` (frame-level ``fo.Polylines``, e.g. PoseTrack's ignore
  regions): ground-truth boxes and predictions whose box centre lies strictly
  inside a region polygon.

Fields written for ``eval_key="track_eval"`` (FiftyOne's naming):

==========================================  ===============================
``frames.<pred>.detections.track_eval``     ``"tp"``, ``"fp"`` or ``"ignored"``
``frames.<gt>.detections.track_eval``       ``"tp"``, ``"fn"`` or ``"ignored"``
``...detections.track_eval_idsw``           True where the match is an ID switch
``...detections.track_eval_id``             id of the matched label (``""``: none)
``...detections.track_eval_iou``            IoU of the match (None: none)
``frames.track_eval_tp/_fp/_fn/_idsw``      per-frame counts (every frame document)
``track_eval_tp/_fp/_fn/_idsw``             per-video totals
``track_eval_mota/_motp/_idf1/_hota``       per-video metrics (None when undefined)
==========================================  ===============================

``tp`` counts matches including ID switches (py-motmetrics' ``num_matches`` +
``num_switches``); the sums of the frame counts equal the run's FP, FN and
IDSW.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fiftyone_posetrack.eval.mot import evaluate_mot_sequences, match_mot_arrays
from fiftyone_posetrack.fo.evaluation.base import (
    check_eval_key_fields,
    BOOL,
    FLOAT,
    INT,
    STRING,
    PosetrackEvaluation,
    PosetrackEvaluationConfig,
    PosetrackEvaluationResults,
    VideoLabels,
    check_box_fields,
    finite_or_none,
    frame_path,
    points_in_regions,
    read_videos,
    region_polygons,
)
from fiftyone_posetrack.fo.labels import frames_to_mot, write_frame_labels
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "TrackingEvaluation",
    "TrackingEvaluationConfig",
    "TrackingEvaluationResults",
    "evaluate_tracking",
]

COUNTS = ("tp", "fp", "fn", "idsw")
#: per-video metrics stored on each sample as ``<eval_key>_<name>``
SAMPLE_METRICS = ("mota", "motp", "idf1", "hota")


class TrackingEvaluationConfig(PosetrackEvaluationConfig):
    """Config of :class:`TrackingEvaluation`.

    Args:
        pred_field, gt_field: ``"frames.<name>"`` of ``fo.Detections`` fields
        iou_threshold: the IoU a match needs
        ignore_field: ``"frames.<name>"`` of ``fo.Polylines`` ignore regions, or None
    """

    def __init__(self, pred_field, gt_field, iou_threshold=0.5, ignore_field=None, **kwargs):
        super().__init__(pred_field, gt_field, ignore_field=ignore_field, **kwargs)
        self.iou_threshold = float(iou_threshold)

    @property
    def method(self) -> str:
        return "posetrack_mot"


class TrackingEvaluation(PosetrackEvaluation):
    """CLEAR-MOT / IDF1 / HOTA evaluation of tracked boxes (see the module docs)."""

    def field_names(self, eval_key):
        pred, gt = self.config.pred_field[7:], self.config.gt_field[7:]
        sample = [f"{eval_key}_{c}" for c in COUNTS + SAMPLE_METRICS]
        frames = [f"{eval_key}_{c}" for c in COUNTS]
        suffixes = ("", "_id", "_iou", "_idsw")
        attrs = [(f, eval_key + s) for f in (pred, gt) for s in suffixes]
        return sample, frames, attrs


class TrackingEvaluationResults(PosetrackEvaluationResults):
    """Results of :func:`evaluate_tracking`.

    Attributes:
        metrics_by_video: ``{video: metrics, ..., "OVERALL": metrics}`` with the
            keys of :data:`fiftyone_posetrack.eval.mot.METRIC_KEYS` (MOTA,
            MOTP = mean ``1 - IoU`` of the matches, IDF1, IDP, IDR, HOTA, DetA,
            AssA, FP, FN, IDSW, fragmentations, MT/PT/ML, ...)
        video_ids: ``{video: sample id}``
        per_frame: ``{video: {"frame_number": [...], "tp": [...], "fp": [...],
            "fn": [...], "idsw": [...]}}`` over the video's frame documents
        iou_threshold: the match threshold used
    """

    report_keys = ("mota", "motp", "idf1", "idp", "idr", "hota", "deta", "assa",
                   "fp", "fn", "idsw", "frag", "mt", "pt", "ml")  # fmt: skip


@dataclass
class _Video:
    labels: VideoLabels
    gt: np.ndarray  # (N, 9) MOT rows
    pred: np.ndarray  # (M, 9)
    gt_label_ids: list[str]
    pred_label_ids: list[str]
    gt_frame_pos: np.ndarray  # (N,) position of the row's frame in labels.frame_numbers
    pred_frame_pos: np.ndarray
    gt_ignore: np.ndarray  # (N,) bool
    pred_in_region: np.ndarray  # (M,) bool


def _rows(video: VideoLabels, field: str):
    """Label ids, frame positions and crowd flags in :func:`frames_to_mot` row order."""
    ids, pos, crowd = [], [], []
    for k, dets in enumerate(video.labels[field]):
        if dets is None or not dets.detections:
            continue
        for d in dets.detections:
            ids.append(d.id)
            pos.append(k)
            crowd.append(bool(getattr(d, "iscrowd", False) or getattr(d, "crowd", False)))
    return ids, np.asarray(pos, dtype=np.int64), np.asarray(crowd, dtype=bool)


def _check_ids(video: VideoLabels, mot: np.ndarray, field: str) -> None:
    unset = mot[:, 1] < 0
    if unset.any():
        frame = int(mot[np.argmax(unset), 0])
        raise BadInputError(
            f"{field}: video {video.filepath} frame {frame} has detections without `index` "
            "(the track id); tracking evaluation needs it on every box"
        )


def _prepare(video: VideoLabels, gt: str, pred: str, ignore: str | None) -> _Video:
    w, h = video.width, video.height
    gt_mot = frames_to_mot(video.frame_numbers, video.labels[gt], w, h, gt=True)  # conf = consider flag
    pred_mot = frames_to_mot(video.frame_numbers, video.labels[pred], w, h)
    _check_ids(video, gt_mot, f"frames.{gt}")
    _check_ids(video, pred_mot, f"frames.{pred}")
    gt_ids, gt_pos, gt_crowd = _rows(video, gt)
    pred_ids, pred_pos, _ = _rows(video, pred)
    gt_ignore = gt_crowd.copy()
    pred_in = np.zeros(len(pred_mot), dtype=bool)
    if ignore is not None:
        for k, lines in enumerate(video.labels[ignore]):
            polys = region_polygons(lines, w, h)
            if not polys:
                continue
            for mot, pos, out in ((gt_mot, gt_pos, gt_ignore), (pred_mot, pred_pos, pred_in)):
                rows = np.flatnonzero(pos == k)
                centres = mot[rows, 2:4] + mot[rows, 4:6] / 2
                out[rows] |= points_in_regions(centres, polys)
    return _Video(video, gt_mot, pred_mot, gt_ids, pred_ids, gt_pos, pred_pos, gt_ignore, pred_in)


def _marks(v: _Video, iou_threshold: float):
    """Per-row marks of one video and its per-frame counts."""
    keep = np.flatnonzero(~v.pred_in_region)
    m = match_mot_arrays(v.gt, v.pred[keep], iou_threshold, v.gt_ignore)
    status = {"match": "tp", "switch": "tp", "fp": "fp", "miss": "fn", "ignored": "ignored"}
    n_pred = len(v.pred)
    pred_status = np.full(n_pred, "ignored", dtype=object)
    pred_status[keep] = [status[s] for s in m.pred_status]
    pred_switch = np.zeros(n_pred, dtype=bool)
    pred_switch[keep] = m.pred_status == "switch"
    pred_match = np.full(n_pred, -1, dtype=np.int64)
    pred_match[keep] = m.pred_match
    gt_status = np.array([status[s] for s in m.gt_status], dtype=object)
    gt_switch = m.gt_status == "switch"
    gt_match = np.append(keep, -1)[m.gt_match]  # -1 (no match) picks the appended -1

    nf = len(v.labels.frame_numbers)

    def count(pos, mask):
        return np.bincount(pos[mask], minlength=nf).astype(int) if nf else np.zeros(0, int)

    per_frame = {
        "frame_number": list(v.labels.frame_numbers),
        "tp": count(v.gt_frame_pos, gt_status == "tp").tolist(),
        "fp": count(v.pred_frame_pos, pred_status == "fp").tolist(),
        "fn": count(v.gt_frame_pos, gt_status == "fn").tolist(),
        "idsw": count(v.gt_frame_pos, gt_switch).tolist(),
    }
    rows = {
        "gt": (gt_status, gt_switch, gt_match, m.iou),
        "pred": (pred_status, pred_switch, pred_match, None),
    }
    return rows, per_frame


def _label_values(v: _Video, rows, eval_key: str):
    """``{attribute: [{"frame_id", "label_id", "value"}]}`` for the gt and pred labels."""
    fids = v.labels.frame_ids
    gt_status, gt_switch, gt_match, gt_iou = rows["gt"]
    pred_status, pred_switch, pred_match, _ = rows["pred"]
    out = {"gt": {}, "pred": {}}
    for side, ids, pos, status, switch, match, other_ids in (
        ("gt", v.gt_label_ids, v.gt_frame_pos, gt_status, gt_switch, gt_match, v.pred_label_ids),
        ("pred", v.pred_label_ids, v.pred_frame_pos, pred_status, pred_switch, pred_match, v.gt_label_ids),
    ):
        if side == "gt":
            iou = [finite_or_none(x) for x in gt_iou]
        else:
            iou = [None if g < 0 else finite_or_none(gt_iou[g]) for g in pred_match]
        matched = ["" if j < 0 else other_ids[j] for j in match]
        cols = {
            eval_key: [str(s) for s in status],
            f"{eval_key}_idsw": [bool(s) for s in switch],
            f"{eval_key}_id": matched,
            f"{eval_key}_iou": iou,
        }
        frame_ids = [fids[p] for p in pos]
        for attr, values in cols.items():
            out[side][attr] = [
                {"frame_id": f, "label_id": lid, "value": val}
                for f, lid, val in zip(frame_ids, ids, values)
            ]
    return out


def evaluate_tracking(
    samples,
    pred_field: str = "pred_detections",
    gt_field: str = "gt_detections",
    eval_key: str | None = "track_eval",
    iou_threshold: float = 0.5,
    ignore_field: str | None = None,
) -> TrackingEvaluationResults:
    """Evaluates tracked person boxes against ground truth, per video and overall.

    Args:
        samples: a video dataset or view (its label filters apply)
        pred_field: frame-level ``fo.Detections`` with ``index`` = track id
        gt_field: frame-level ground-truth ``fo.Detections``, ``index`` = id
        eval_key: the run's key; None computes the metrics without storing a
            run or writing marks. An existing run with this key is replaced.
        iou_threshold: the IoU (of pixel boxes) a match needs, in ``(0, 1]``
        ignore_field: optional frame-level ``fo.Polylines`` of ignore regions

    Returns:
        a :class:`TrackingEvaluationResults` (``.metrics()``, ``.per_video``,
        ``.print_report()``)

    Raises:
        BadInputError: for a collection that is not a video collection, a
            missing or mistyped field, boxes without ``index`` or repeated
            track ids in a frame
    """
    pred, gt, ign = check_box_fields(samples, pred_field, gt_field, ignore_field, eval_key)
    if not 0.0 < float(iou_threshold) <= 1.0:
        raise BadInputError(f"iou_threshold: expected a value in (0, 1], got {iou_threshold}")

    config = TrackingEvaluationConfig(
        frame_path(pred), frame_path(gt), iou_threshold, frame_path(ign) if ign else None
    )
    method = config.build()
    check_eval_key_fields(samples, method, eval_key)
    videos = [_prepare(v, gt, pred, ign) for v in read_videos(samples, [gt, pred, ign])]
    sequences = {v.labels.name: (v.gt, v.pred[~v.pred_in_region]) for v in videos}
    gt_ignore = {v.labels.name: v.gt_ignore for v in videos}
    try:
        metrics = evaluate_mot_sequences(sequences, iou_threshold, gt_ignore)
    except BadInputError as e:
        raise BadInputError(f"{frame_path(pred)} / {frame_path(gt)}: {e}") from None
    marks = [_marks(v, iou_threshold) for v in videos]
    results = TrackingEvaluationResults(
        samples,
        config,
        eval_key,
        metrics,
        {v.labels.name: v.labels.sample_id for v in videos},
        backend=method,
        per_frame={v.labels.name: pf for v, (_, pf) in zip(videos, marks)},
        iou_threshold=float(iou_threshold),
    )
    if eval_key is None:
        return results

    method.register_run(samples, eval_key)
    _write(samples, method, eval_key, pred, gt, videos, marks, metrics)
    method.save_run_results(samples, eval_key, results)
    return results


def _write(samples, method, eval_key, pred, gt, videos, marks, metrics) -> None:
    dataset = samples._dataset
    types = {f"{eval_key}_{c}": INT for c in COUNTS}
    types.update({f"{eval_key}_{m}": FLOAT for m in SAMPLE_METRICS})
    types.update({f"frames.{eval_key}_{c}": INT for c in COUNTS})
    for field in (pred, gt):
        base = f"frames.{field}.detections.{eval_key}"
        types.update({base: STRING, base + "_id": STRING, base + "_iou": FLOAT, base + "_idsw": BOOL})
    method.declare_fields(samples, eval_key, types)

    label_values = {"gt": {}, "pred": {}}
    for v, (rows, _) in zip(videos, marks):
        for side, cols in _label_values(v, rows, eval_key).items():
            for attr, vals in cols.items():
                label_values[side].setdefault(attr, []).extend(vals)
    for side, field in (("pred", pred), ("gt", gt)):
        for attr, vals in label_values[side].items():
            if vals:
                dataset.set_label_values(f"frames.{field}.detections.{attr}", vals)

    for c in COUNTS:
        frame_vals = {
            v.labels.sample_id: dict(zip(pf["frame_number"], pf[c]))
            for v, (_, pf) in zip(videos, marks)
            if pf["frame_number"]
        }
        if frame_vals:  # by indexed frame documents, not FiftyOne's per-video frame aggregation
            write_frame_labels(dataset, {f"{eval_key}_{c}": frame_vals})
        totals = {v.labels.sample_id: int(sum(pf[c])) for v, (_, pf) in zip(videos, marks)}
        dataset.set_values(f"{eval_key}_{c}", totals, key_field="id")
    method.set_sample_metrics(
        samples,
        eval_key,
        {f"{eval_key}_{m}": {v.labels.sample_id: metrics[v.labels.name][m] for v in videos} for m in SAMPLE_METRICS},
    )
