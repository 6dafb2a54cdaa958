"""The one converter between ``fo.Keypoints`` and PoseTrack frames, both ways.

Both :func:`fiftyone_posetrack.fo.io.export_posetrack` (files) and
:func:`fiftyone_posetrack.fo.evaluation.evaluate_poses` (``kind="posetrack"``,
in place) turn frame labels into
:class:`~fiftyone_posetrack.formats.posetrack.PoseTrackFrame` objects with
:func:`posetrack_frame`, so evaluating exported files (``posetrack eval-kpts
--kind posetrack``) gives the numbers of the evaluation in place;
:func:`posetrack_frame_labels` is the way back (import).

Conventions (FiftyOne: relative ``(x, y)`` points, NaN for a missing joint,
relative ``[x, y, w, h]`` boxes; PoseTrack: pixels, ``(0, 0)`` with flag 0
for a missing joint, ``[x1, y1, x2, y2]`` boxes in
:class:`~fiftyone_posetrack.formats.posetrack.PoseTrackFrame`):

- a joint is present when its point is finite and, for ground truth, its
  ``visibility`` attribute entry (if any) is > 0; present joints keep their
  flag (at least 1: predictions get 2, COCO's "visible"), missing ones are
  ``(0, 0)`` with flag 0 and score 0;
- ``track_ids`` are the ``index`` of the poses;
- a person's box is the box of the same ``index`` in the detections field,
  else the extent of its present joints (zeros when none);
- ground truth (``gt=True``) has no scores and has head boxes: the pose's
  (else its box's) ``bbox_head`` attribute, else an estimate, a square of
  side ``box height / 8`` (:data:`HEAD_FRACTION`) at the top of the box;
  predictions have the joint confidences as scores (1 for present joints
  without one) and no head boxes;
- ``crowd``: ``iscrowd`` / ``crowd`` on the pose, ``ignore`` / ``iscrowd`` /
  ``crowd`` on its box (COCO crowd regions).

Labels may be FiftyOne labels or :class:`fiftyone_posetrack.fo.labels.RawLabel`
objects (only attributes are read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import fiftyone as fo
import numpy as np

from fiftyone_posetrack.fo.labels import detections_to_arrays, keypoints_to_arrays
from fiftyone_posetrack.formats.posetrack import PoseTrackFrame, PoseTrackVideo
from fiftyone_posetrack.skeleton import COCO_KEYPOINTS
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "HEAD_FRACTION",
    "People",
    "people",
    "keypoint_names",
    "default_file_name",
    "posetrack_frame",
    "posetrack_frame_labels",
]

#: head box side as a fraction of the person's box height (estimate, see the module docs)
HEAD_FRACTION = 1.0 / 8.0


def _attr(label, name):
    return getattr(label, name, None) if label is not None else None


def keypoint_names(samples, field: str, num_keypoints: int | None = None) -> list[str]:
    """The joint names of a keypoints field: its skeleton's, else the default skeleton's, else COCO-17's.

    Args:
        samples: the collection
        field: the frame field (with or without ``frames.``)
        num_keypoints: the number of joints its labels have, when known: a
            skeleton naming fewer is not used

    Raises:
        BadInputError: for more joints than COCO-17 and no skeleton naming them
    """
    bare = field[len("frames.") :] if field.startswith("frames.") else field
    skeletons = samples.skeletons
    skel = skeletons.get(f"frames.{bare}") or skeletons.get(bare) or samples.default_skeleton
    labels = list(skel.labels) if skel is not None and skel.labels else None
    if labels and (num_keypoints is None or len(labels) >= num_keypoints):
        return labels
    if num_keypoints is None or num_keypoints <= len(COCO_KEYPOINTS):
        return list(COCO_KEYPOINTS)
    raise BadInputError(
        f"frames.{bare}: {num_keypoints} joints and no skeleton naming them; "
        "set dataset.skeletons or dataset.default_skeleton"
    )


def _box_by_index(dets, w, h):
    """``{index: (box px [x1, y1, x2, y2], confidence, label)}`` of a frame's boxes."""
    if dets is None or not dets.detections:
        return {}
    boxes, scores, index = detections_to_arrays(dets, w, h)
    return {int(i): (b, s, d) for b, s, i, d in zip(boxes, scores, index, dets.detections) if i >= 0}


def _extent(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(N, 4)`` ``[x1, y1, x2, y2]`` of the valid joints (zeros when none)."""
    out = np.zeros((len(points), 4))
    for i in range(len(points)):
        p = points[i][valid[i]]
        if len(p):
            out[i] = [*p.min(axis=0), *p.max(axis=0)]
    return out


@dataclass
class People:
    """One frame's people in the field's joint order (pixels)."""

    points: np.ndarray  # (N, K, 2), NaN where missing
    valid: np.ndarray  # (N, K) bool
    vis: np.ndarray  # (N, K) visibility flags (0 where missing)
    scores: np.ndarray  # (N, K) joint confidences
    index: np.ndarray  # (N,)
    boxes: np.ndarray  # (N, 4) px
    has_box: np.ndarray  # (N,) bool
    box_scores: np.ndarray  # (N,)
    crowd: np.ndarray  # (N,) bool
    heads: np.ndarray  # (N, 4) px head boxes (estimated where the labels have none)


def people(kps, dets, w: int, h: int, k: int, gt: bool) -> People:
    """One frame's ``fo.Keypoints`` (and boxes of the same ``index``) as pixel arrays (see the module docs)."""
    points, scores, index = keypoints_to_arrays(kps, w, h, k)
    n = len(index)
    labels = kps.keypoints if kps is not None else []
    valid = np.isfinite(points).all(axis=2)
    vis = np.where(valid, 2, 0).astype(np.int64)
    crowd = np.zeros(n, dtype=bool)
    by_index = _box_by_index(dets, w, h)
    boxes, has_box = np.zeros((n, 4)), np.zeros(n, dtype=bool)
    box_scores, heads = np.ones(n), np.full((n, 4), np.nan)
    for i, kp in enumerate(labels):
        flags = _attr(kp, "visibility")
        if gt and flags is not None:
            f = np.zeros(k, dtype=np.int64)
            f[: min(k, len(flags))] = np.asarray(flags, dtype=np.int64)[:k]
            vis[i] = np.where(valid[i], f, 0)
            valid[i] &= f > 0
        match = by_index.get(int(index[i])) if index[i] >= 0 else None
        det = match[2] if match else None
        crowd[i] = bool(_attr(kp, "iscrowd") or _attr(kp, "crowd") or _attr(det, "ignore")
                        or _attr(det, "iscrowd") or _attr(det, "crowd"))  # fmt: skip
        if match:
            boxes[i], box_scores[i], has_box[i] = match[0], match[1], True
        head = _attr(kp, "bbox_head") or _attr(det, "bbox_head")
        if head is not None:
            x, y, hw, hh = np.asarray(head, dtype=np.float64) * [w, h, w, h]
            heads[i] = [x, y, x + hw, y + hh]
    ext = _extent(points, valid)
    boxes[~has_box] = ext[~has_box]
    est = ~np.isfinite(heads).all(axis=1)
    if est.any():
        side = (boxes[est, 3] - boxes[est, 1]) * HEAD_FRACTION
        cx = (boxes[est, 0] + boxes[est, 2]) / 2
        heads[est] = np.stack([cx - side / 2, boxes[est, 1], cx + side / 2, boxes[est, 1] + side], axis=1)
    return People(points, valid, vis, scores, index, boxes, has_box, box_scores, crowd, heads)


def default_file_name(video: str, frame_number: int) -> str:
    """The image name of a frame of a video not imported from PoseTrack: ``images/<video>/<frame - 1:06d>.jpg``."""
    return f"images/{video}/{frame_number - 1:06d}.jpg"


def posetrack_frame(
    kps,
    dets,
    regions,
    width: int,
    height: int,
    frame_number: int,
    file_name: str,
    num_keypoints: int,
    gt: bool,
    order: Sequence[int] | None = None,
    is_labeled: bool = True,
    joint_threshold: float | None = None,
    require_index: bool = True,
    where: str = "",
) -> PoseTrackFrame:
    """One frame's labels as a :class:`PoseTrackFrame` (see the module docs).

    Args:
        kps: the frame's ``fo.Keypoints`` (or None)
        dets: the frame's ``fo.Detections`` whose boxes (matched by
            ``index``) become the people's boxes, or None
        regions: the frame's ``fo.Polylines`` ignore regions, or None
        width, height: the frame size in pixels
        frame_number: the 1-based frame number (``frame_index`` = it - 1)
        file_name: the frame's image name in the file
        num_keypoints: the field's number of joints
        gt: ground truth (visibility flags, head boxes, no scores) or
            predictions (scores)
        order: for each output joint, its index in the field (-1: a joint the
            field lacks, written missing); default: the field's own order
        is_labeled: the frame's ``is_labeled`` flag
        joint_threshold: predictions only: joints scoring below it are
            written missing
        require_index: refuse poses without ``index`` (files and ground
            truth need track ids; an evaluation of untracked predictions
            scores their AP)
        where: names the field and video in error messages

    Raises:
        BadInputError: for poses without ``index`` (track id) when ``require_index``
    """
    from fiftyone_posetrack.fo.evaluation.base import region_polygons

    p = people(kps, dets, width, height, num_keypoints, gt)
    if require_index and (p.index < 0).any():
        raise BadInputError(
            f"{where}frame {frame_number} has poses without `index` (the track id); "
            "PoseTrack needs it on every pose (track the people first)"
        )
    valid = p.valid
    if joint_threshold is not None and not gt:
        valid = valid & (np.nan_to_num(p.scores, nan=-np.inf) >= joint_threshold)
    src = np.arange(num_keypoints) if order is None else np.asarray(order, dtype=np.int64)
    have = src >= 0
    m, k_out = len(p.index), len(src)
    ok = np.zeros((m, k_out), dtype=bool)
    ok[:, have] = valid[:, src[have]]
    xy = np.zeros((m, k_out, 2))
    xy[:, have] = p.points[:, src[have]]
    xy[~ok] = 0.0
    vis = np.zeros((m, k_out), dtype=np.int64)
    vis[:, have] = np.maximum(p.vis[:, src[have]], 1)
    vis[~ok] = 0
    scores = None
    if not gt:
        scores = np.zeros((m, k_out))
        scores[:, have] = p.scores[:, src[have]]
        scores[~ok] = 0.0
    return PoseTrackFrame(
        frame_index=frame_number - 1,
        file_name=file_name,
        is_labeled=is_labeled,
        track_ids=p.index,
        boxes=p.boxes,
        keypoints=xy,
        visibility=vis,
        scores=scores,
        ignore_regions=region_polygons(regions, width, height),
        head_boxes=p.heads if gt else None,
    )


def posetrack_frame_labels(
    video: PoseTrackVideo, width: int, height: int, label: str = "person"
) -> tuple[dict[int, fo.Keypoints], dict[int, fo.Detections], dict[int, fo.Polylines]]:
    """Converts a PoseTrack18 video's annotations to FiftyOne frame labels (the import direction).

    Keys are frame numbers (``frame_index + 1``). Poses and boxes are given for
    the labelled frames, ignore regions for every frame that lists some.

    - ``fo.Keypoints``: one ``fo.Keypoint`` per person, ``index`` = track id,
      relative ``(x, y)`` points with joints of visibility flag 0 as NaN
      (FiftyOne's missing point, as its COCO importer does), the flags as the
      ``visibility`` attribute, the head box (PCKh's scale) as relative
      ``[x, y, w, h]`` ``bbox_head`` when the file has a finite one, and
      per-joint ``confidence`` when the file has ``scores`` (predictions);
    - ``fo.Detections``: the people's finite, non-empty boxes as relative
      ``[x, y, w, h]``, same ``index`` and ``bbox_head``;
    - ``fo.Polylines``: one closed, filled ``fo.Polyline`` (label ``"ignore"``)
      per ignore region, relative points.

    Args:
        video: a video read by :mod:`fiftyone_posetrack.formats.posetrack`
        width: the frame width in pixels
        height: the frame height in pixels
        label: the label of the people

    Returns:
        ``(keypoints, detections, regions)``, each ``{frame number: label}``
    """
    kp_frames, det_frames, region_frames = {}, {}, {}
    scale = np.array([width, height], dtype=np.float64)

    def rel(box):  # [x1, y1, x2, y2] px -> relative [x, y, w, h]
        return [box[0] / width, box[1] / height, (box[2] - box[0]) / width, (box[3] - box[1]) / height]

    for fr in video.frames:
        n = fr.frame_index + 1
        if fr.ignore_regions:
            region_frames[n] = fo.Polylines(
                polylines=[
                    fo.Polyline(
                        label="ignore",
                        points=[(np.asarray(r, dtype=np.float64) / scale).tolist()],
                        closed=True,
                        filled=True,
                    )
                    for r in fr.ignore_regions
                ]
            )
        if not fr.is_labeled:
            continue
        pts = np.asarray(fr.keypoints, dtype=np.float64).reshape(len(fr), -1, 2) / scale
        vis = np.asarray(fr.visibility).reshape(len(fr), -1)
        pts[vis == 0] = np.nan
        kps, dets = [], []
        for j, tid in enumerate(fr.track_ids):
            attrs = {}
            if fr.head_boxes is not None and np.isfinite(fr.head_boxes[j]).all():
                attrs["bbox_head"] = rel(fr.head_boxes[j])
            kp = fo.Keypoint(
                label=label,
                points=[(float(x), float(y)) for x, y in pts[j]],
                index=int(tid),
                visibility=[int(v) for v in vis[j]],
                **attrs,
            )
            if fr.scores is not None and np.isfinite(fr.scores[j]).all():
                kp.confidence = [float(s) for s in fr.scores[j]]
            kps.append(kp)
            box = np.asarray(fr.boxes[j], dtype=np.float64)
            if np.isfinite(box).all() and box[2] > box[0] and box[3] > box[1]:
                dets.append(fo.Detection(label=label, bounding_box=rel(box), index=int(tid), **attrs))
        kp_frames[n] = fo.Keypoints(keypoints=kps)
        det_frames[n] = fo.Detections(detections=dets)
    return kp_frames, det_frames, region_frames
