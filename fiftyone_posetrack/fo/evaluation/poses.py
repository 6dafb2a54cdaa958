"""Pose evaluation of video datasets as a FiftyOne evaluation run, and COCO export.

Numbers come from :mod:`fiftyone_posetrack.eval.keypoints` (OKS AP/AR via
xtcocotools / pycocotools: :func:`~fiftyone_posetrack.eval.keypoints.frames_to_coco`
then :func:`~fiftyone_posetrack.eval.keypoints.keypoint_ap`) and
:func:`fiftyone_posetrack.eval.posetrack.evaluate_posetrack` (poseval's
per-joint AP and MOTA/MOTP). Every evaluated frame is one COCO image; videos are
evaluated alone and pooled (``OVERALL``).

Conventions (keypoints are relative ``(x, y)`` in FiftyOne, pixels of the
video's frame size in the metrics):

- **frames**: a frame is evaluated when its ground-truth keypoints field is
  set (an empty ``fo.Keypoints`` counts: an annotated frame without people);
  predictions on other frames are not evaluated (PoseTrack labels only some
  frames);
- **joints** are found by name (the field's skeleton, else the dataset's
  default skeleton, else COCO-17 order). OKS uses the benchmark's joints and
  sigmas (:data:`~fiftyone_posetrack.skeleton.COCO_SIGMAS` for ``coco``,
  CrowdPose's 14 for ``crowdpose``; a joint the data lacks is unlabelled in
  the ground truth and ``(0, 0)`` with score 0 in the predictions);
- **ground truth**: a joint is labelled when its point is not NaN and its
  ``visibility`` attribute entry (if any) is > 0; the OKS scale (``area``)
  and the ``bbox`` come from the ground-truth box of the same ``index`` in
  ``gt_box_field`` when there is one, else from the extent of the labelled
  joints; ``iscrowd`` / ``crowd`` on the pose, or ``ignore`` / ``iscrowd`` on
  its box, make it a COCO crowd region;
- **predictions**: the instance score is ``score_mode`` of
  :func:`~fiftyone_posetrack.eval.keypoints.instance_scores` (default
  ``bbox_keypoint``: the ``confidence`` of the predicted box of the same
  ``index`` in ``pred_box_field`` (1 without one) times the mean of the
  joint confidences above 0.2), then OKS-NMS at 0.9 as mmpose does (the box
  area of the same ``index``, else the joints' extent, as NMS area);
  missing joints (NaN) are ``(0, 0)`` with score 0;
- **PoseTrack** (``kind="posetrack"``, also computes the COCO OKS numbers):
  poseval's 15 joints by name (``neck`` stands for ``head_bottom``). COCO-17
  data have no ``head_bottom`` / ``head_top``: those joints have no ground
  truth and are reported as NaN (absent from the totals, which average the
  joints that have ground truth), never as 0; the eyes and ears of COCO are
  not PoseTrack joints and are not evaluated. PCKh needs a head box per
  ground-truth person: the pose's (else its box's) ``bbox_head`` attribute
  (relative ``[x, y, w, h]``) when present, else an estimate, a square of
  side ``box height / 8`` from the person's box (the classic eight-heads
  body canon; an approximation, so PoseTrack numbers without head boxes
  are indicative only). Ground truth and predictions need ``index`` (the
  track id). Ignore regions: ``ignore_field`` (frame-level ``fo.Polylines``).
  AP ranks every predicted joint; MOTA counts the joints scoring at least
  ``posetrack_joint_threshold`` (default
  :data:`~fiftyone_posetrack.eval.posetrack.MOTA_JOINT_THRESHOLD`).

Fields written for ``eval_key="pose_eval"``: ``pose_eval_ap`` (OKS AP per
video) and, for ``posetrack``, ``pose_eval_pt_ap`` and ``pose_eval_mota``
(poseval totals, percent) on each video sample; None where undefined.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

import fiftyone as fo

from fiftyone_posetrack.eval.keypoints import CROWDPOSE_KEYPOINTS, KeypointFrame, frames_to_coco, keypoint_ap
from fiftyone_posetrack.eval.posetrack import MOTA_JOINT_THRESHOLD
from fiftyone_posetrack.fo.evaluation.base import (
    check_eval_key_fields,
    PosetrackEvaluation,
    PosetrackEvaluationConfig,
    PosetrackEvaluationResults,
    VideoLabels,
    check_eval_key,
    check_ground_truth,
    check_label_field,
    check_video_collection,
    frame_path,
    read_videos,
)
from fiftyone_posetrack.fo.posetrack import HEAD_FRACTION, keypoint_names, people, posetrack_frame  # noqa: F401
from fiftyone_posetrack.skeleton import COCO_KEYPOINTS, COCO_SIGMAS
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "PoseEvaluation",
    "PoseEvaluationConfig",
    "PoseEvaluationResults",
    "evaluate_poses",
    "export_coco_keypoints",
]

KINDS = ("coco", "crowdpose", "posetrack")
#: names accepted for a benchmark joint that the data may spell differently
_ALIASES = {"head": ("head_top",), "neck": ("head_bottom",), "head_bottom": ("neck",)}


class PoseEvaluationConfig(PosetrackEvaluationConfig):
    """Config of :class:`PoseEvaluation`."""

    def __init__(
        self,
        pred_field,
        gt_field,
        kind="coco",
        gt_box_field=None,
        pred_box_field=None,
        ignore_field=None,
        score_mode="bbox_keypoint",
        keypoint_threshold=0.2,
        nms_threshold=0.9,
        pckh_threshold=0.5,
        skip_last_frame=False,
        posetrack_joint_threshold=MOTA_JOINT_THRESHOLD,
        **kwargs,
    ):
        super().__init__(pred_field, gt_field, ignore_field=ignore_field, **kwargs)
        self.kind = kind
        self.gt_box_field = gt_box_field
        self.pred_box_field = pred_box_field
        self.score_mode = score_mode
        self.keypoint_threshold = float(keypoint_threshold)
        self.nms_threshold = None if nms_threshold is None else float(nms_threshold)
        self.pckh_threshold = float(pckh_threshold)
        self.skip_last_frame = bool(skip_last_frame)
        self.posetrack_joint_threshold = None if posetrack_joint_threshold is None else float(posetrack_joint_threshold)

    @property
    def method(self) -> str:
        return "posetrack_poses"


class PoseEvaluation(PosetrackEvaluation):
    """OKS AP and PoseTrack metrics of keypoints (see the module docs)."""

    def field_names(self, eval_key):
        names = [f"{eval_key}_ap"]
        if self.config.kind == "posetrack":
            names += [f"{eval_key}_pt_ap", f"{eval_key}_mota"]
        return names, [], []


class PoseEvaluationResults(PosetrackEvaluationResults):
    """Results of :func:`evaluate_poses`.

    Attributes:
        metrics_by_video: ``{video: metrics, ..., "OVERALL": metrics}``: the
            OKS numbers of :func:`~fiftyone_posetrack.eval.keypoints.keypoint_ap`
            (``ap``, ``ap50``, ``ap75``, ``ar``, ...; -1 where COCO leaves a
            number undefined) and, for ``posetrack``, poseval's totals
            ``pt_ap`` (every predicted joint ranked), ``pt_mota``,
            ``pt_mota_pooled``, ``pt_motp``, ``pt_precision``, ``pt_recall``
            (percent; the joints scoring at least ``pt_mota_joint_threshold``,
            None: all)
        posetrack_by_video: ``{video: evaluate_posetrack() result}`` (per
            joint and per group), or None
        video_ids: ``{video: sample id}``
        kind: ``coco``, ``crowdpose`` or ``posetrack``
    """

    report_keys = ("ap", "ap50", "ap75", "ar", "num_gt", "num_pred")

    def report(self, keys=None):
        if keys is None and self.kind == "posetrack":
            keys = ("ap", "ap50", "ar", "pt_ap", "pt_mota", "pt_motp", "num_gt", "num_pred")
        return super().report(keys)

    def joint_ap(self, video: str | None = None) -> dict[str, float]:
        """PoseTrack per-joint AP (percent; NaN for joints without ground truth)."""
        if not self.posetrack_by_video:
            raise BadInputError("per-joint AP exists for kind='posetrack' evaluations only")
        key = "OVERALL" if video is None else video
        if key not in self.posetrack_by_video:
            raise BadInputError(f"video: expected one of {sorted(self.per_video)}, got {video!r}")
        pj = self.posetrack_by_video[key]["per_joint"]
        return {j: float("nan") if pj[j]["ap"] is None else float(pj[j]["ap"]) for j in pj}


# --------------------------------------------------------------------------- reading


def _num_keypoints(video_labels: Sequence[VideoLabels], field: str) -> int:
    k = 0
    for v in video_labels:
        for kps in v.labels[field]:
            for kp in kps.keypoints if kps is not None else []:
                k = max(k, len(kp.points))
    return k


def _remap(src: Sequence[str], dst: Sequence[str]) -> np.ndarray:
    """For each ``dst`` joint, its index in ``src`` (-1 when absent)."""
    idx = []
    for name in dst:
        cands = (name, *_ALIASES.get(name, ()))
        idx.append(next((list(src).index(c) for c in cands if c in src), -1))
    return np.asarray(idx, dtype=np.int64)


def _crowd_index(points: np.ndarray, valid: np.ndarray, boxes: np.ndarray) -> float:
    """CrowdPose's crowd index of a frame (Li et al., CVPR 2019).

    The mean over people with labelled joints of (labelled joints of *other*
    people inside the person's box) / (the person's labelled joints).
    """
    n = len(points)
    vals = []
    for i in range(n):
        na = int(valid[i].sum())
        if na == 0:
            continue
        x1, y1, x2, y2 = boxes[i]
        others = np.arange(n) != i
        p = points[others][valid[others]]
        inside = (p[:, 0] >= x1) & (p[:, 0] <= x2) & (p[:, 1] >= y1) & (p[:, 1] <= y2)
        vals.append(np.count_nonzero(inside) / na)
    return float(np.mean(vals)) if vals else 0.0


@dataclass
class _Fields:
    gt: str
    pred: str | None
    gt_box: str | None
    pred_box: str | None
    ignore: str | None


def _evaluated(video: VideoLabels, gt: str) -> list[int]:
    """Positions (in the video's frame documents) of the annotated frames."""
    return [k for k, lab in enumerate(video.labels[gt]) if lab is not None]


def _image_bases(videos: Sequence[VideoLabels]) -> list[int]:
    """Image id of frame ``n`` of video ``i`` is ``bases[i] + n``."""
    bases, base = [], 0
    for v in videos:
        bases.append(base)
        base += max([v.num_frames, 0] + v.frame_numbers)
    return bases


def _coco_video(video: VideoLabels, base: int, f: _Fields, k_gt, k_pred, names_gt, names_pred,
                joints, sigmas, kind, score_mode, kp_thr, nms):  # fmt: skip
    """COCO ``(images, annotations, results)`` of one video's annotated frames."""
    w, h = video.width, video.height
    gmap = _remap(names_gt, joints) if k_gt else None
    pmap = _remap(names_pred, joints) if k_pred else None
    frames, images, tracks = [], [], []
    K = len(joints)
    for pos in _evaluated(video, f.gt):
        n_frame = video.frame_numbers[pos]
        lab = video.labels
        if k_gt:
            g = people(lab[f.gt][pos], lab[f.gt_box][pos] if f.gt_box else None, w, h, k_gt, True)
        else:
            g = None
        if k_pred:
            p = people(lab[f.pred][pos], lab[f.pred_box][pos] if f.pred_box else None, w, h, k_pred, False)
        else:
            p = None
        gkp, gvis, gbox, garea, gcrowd = np.zeros((0, K, 2)), np.zeros((0, K)), np.zeros((0, 4)), None, None
        crowd_index = None
        if g is not None and len(g.index):
            sel = gmap >= 0
            gkp = np.zeros((len(g.index), K, 2))
            gvis = np.zeros((len(g.index), K))
            ok = g.valid[:, gmap[sel]]
            gkp[:, sel] = np.where(ok[..., None], g.points[:, gmap[sel]], 0.0)
            gvis[:, sel] = np.where(ok, g.vis[:, gmap[sel]], 0)
            gbox = g.boxes
            garea = (gbox[:, 2] - gbox[:, 0]) * (gbox[:, 3] - gbox[:, 1])
            gcrowd = g.crowd
            if kind == "crowdpose":
                crowd_index = _crowd_index(g.points, g.valid, g.boxes)
        elif kind == "crowdpose":
            crowd_index = 0.0
        pkp, psc, pbox_sc, parea = np.zeros((0, K, 2)), np.zeros((0, K)), np.zeros(0), None
        if p is not None and len(p.index):
            sel = pmap >= 0
            pkp = np.zeros((len(p.index), K, 2))
            psc = np.zeros((len(p.index), K))
            ok = p.valid[:, pmap[sel]]
            pkp[:, sel] = np.where(ok[..., None], p.points[:, pmap[sel]], 0.0)
            psc[:, sel] = np.where(ok, p.scores[:, pmap[sel]], 0.0)
            pbox_sc = p.box_scores
            parea = (p.boxes[:, 2] - p.boxes[:, 0]) * (p.boxes[:, 3] - p.boxes[:, 1])
        frames.append(KeypointFrame(gkp, gvis, gbox, pkp, psc, pbox_sc, gt_areas=garea, gt_crowd=gcrowd,
                                    pred_areas=parea, crowd_index=crowd_index))  # fmt: skip
        image = {"id": base + n_frame, "file_name": f"{video.name}/{n_frame:06d}.jpg", "width": w,
                 "height": h, "video": video.name, "sample_id": video.sample_id, "frame_number": n_frame}  # fmt: skip
        if crowd_index is not None:
            image["crowdIndex"] = crowd_index
        images.append(image)
        tracks.append(g.index.tolist() if g is not None else [])
    gt_dict, results = frames_to_coco(frames, K, score_mode, kp_thr, nms, sigmas)
    ids = {i + 1: img["id"] for i, img in enumerate(images)}
    anns = gt_dict["annotations"]
    track_ids = [t for ts in tracks for t in ts]
    for a, t in zip(anns, track_ids):
        a["image_id"] = ids[a["image_id"]]
        a["track_id"] = int(t)
    for r in results:
        r["image_id"] = ids[r["image_id"]]
    return images, anns, results


def _names(samples, videos, field):
    if field is None:
        return 0, None
    k = _num_keypoints(videos, field)
    return k, (keypoint_names(samples, field, k) if k else None)


def _coco(samples, videos, f: _Fields, kind, score_mode, kp_thr, nms):
    """Per video ``(images, annotations, results)`` and the joint names used."""
    joints = list(CROWDPOSE_KEYPOINTS) if kind == "crowdpose" else list(COCO_KEYPOINTS)
    from fiftyone_posetrack.eval.keypoints import CROWDPOSE_SIGMAS

    sigmas = CROWDPOSE_SIGMAS if kind == "crowdpose" else COCO_SIGMAS
    k_gt, names_gt = _names(samples, videos, f.gt)
    k_pred, names_pred = _names(samples, videos, f.pred)
    for what, names in (("gt", names_gt), ("pred", names_pred)):
        if names is not None and (_remap(names, joints) < 0).all():
            raise BadInputError(f"{what} keypoints: none of the joints {names} is a {kind} joint")
    out = {}
    for v, base in zip(videos, _image_bases(videos)):
        out[v.name] = _coco_video(v, base, f, k_gt, k_pred, names_gt, names_pred, joints, sigmas,
                                  kind, score_mode, kp_thr, nms)  # fmt: skip
    return out, joints


def _coco_dataset(images, anns, joints) -> dict:
    for i, a in enumerate(anns, 1):
        a["id"] = i
    return {
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": list(joints)}],
    }


# --------------------------------------------------------------------------- PoseTrack


def _posetrack_frames(video: VideoLabels, f: _Fields, k, names, gt: bool):
    """The annotated frames of one video as PoseTrack frames (the converter of :mod:`fiftyone_posetrack.fo.posetrack`)."""
    from fiftyone_posetrack.fo.posetrack import default_file_name

    field, box_field = (f.gt, f.gt_box) if gt else (f.pred, f.pred_box)
    lab = video.labels
    frames = []
    for pos in _evaluated(video, f.gt):
        n = video.frame_numbers[pos]
        frames.append(
            posetrack_frame(
                lab[field][pos], lab[box_field][pos] if box_field else None, lab[f.ignore][pos] if f.ignore else None,
                video.width, video.height, n, default_file_name(video.name, n), k, gt,
                require_index=gt, where=f"frames.{field}: video {video.filepath} ",
            )
        )  # fmt: skip
    return frames


def _posetrack(samples, videos, f: _Fields, threshold, skip_last_frame, joint_threshold=None):
    from fiftyone_posetrack.eval.posetrack import evaluate_posetrack

    k_gt, names_gt = _names(samples, videos, f.gt)
    k_pred, names_pred = _names(samples, videos, f.pred)
    names_gt = names_gt or list(COCO_KEYPOINTS)
    names_pred = names_pred or names_gt
    gt = {v.name: _posetrack_frames(v, f, k_gt or len(names_gt), names_gt, True) for v in videos}
    pred = {v.name: _posetrack_frames(v, f, k_pred or len(names_pred), names_pred, False) for v in videos}
    out = {}
    for v in videos:
        out[v.name] = evaluate_posetrack({v.name: gt[v.name]}, {v.name: pred[v.name]}, names_gt, names_pred,
                                         threshold, skip_last_frame, joint_threshold)  # fmt: skip
    if len(videos) == 1:  # the pooled numbers of one video are its own
        out["OVERALL"] = out[videos[0].name]
    else:
        out["OVERALL"] = evaluate_posetrack(gt, pred, names_gt, names_pred, threshold, skip_last_frame,
                                            joint_threshold)  # fmt: skip
    return out


# --------------------------------------------------------------------------- API


def _check_fields(samples, pred_field, gt_field, gt_box_field, pred_box_field, ignore_field) -> _Fields:
    gt = check_label_field(samples, gt_field, fo.Keypoints, "gt_field")
    pred = check_label_field(samples, pred_field, fo.Keypoints, "pred_field") if pred_field else None

    def optional(field, what, default):
        # the default box fields are used when present; named ones must exist
        if field is None:
            return None
        if field == default and not samples.has_frame_field(field):
            return None
        return check_label_field(samples, field, fo.Detections, what)

    gt_box = optional(gt_box_field, "gt_box_field", "gt_detections")
    pred_box = optional(pred_box_field, "pred_box_field", "pred_detections")
    ign = check_label_field(samples, ignore_field, fo.Polylines, "ignore_field") if ignore_field else None
    return _Fields(gt, pred, gt_box, pred_box, ign)


def evaluate_poses(
    samples,
    pred_field: str = "pred_keypoints",
    gt_field: str = "gt_keypoints",
    eval_key: str | None = "pose_eval",
    kind: str = "coco",
    gt_box_field: str | None = "gt_detections",
    pred_box_field: str | None = "pred_detections",
    ignore_field: str | None = None,
    score_mode: str = "bbox_keypoint",
    keypoint_threshold: float = 0.2,
    nms_threshold: float | None = 0.9,
    pckh_threshold: float = 0.5,
    skip_last_frame: bool = False,
    posetrack_joint_threshold: float | None = MOTA_JOINT_THRESHOLD,
) -> PoseEvaluationResults:
    """Evaluates predicted poses per video and overall (see the module docs).

    Args:
        samples: a video dataset or view
        pred_field, gt_field: frame-level ``fo.Keypoints`` fields
        eval_key: the run's key; None computes without storing a run
        kind: ``"coco"`` (OKS AP with COCO's sigmas and areas),
            ``"crowdpose"`` (CrowdPose's 14 joints, easy/medium/hard on the
            crowd index computed from the ground truth) or ``"posetrack"``
            (COCO OKS plus poseval's per-joint AP and MOTA/MOTP)
        gt_box_field: ground-truth boxes giving each pose's area (same
            ``index``); the default is skipped when the field does not exist;
            None: areas from the joints' extent
        pred_box_field: predicted boxes giving each pose's box score
        ignore_field: frame-level ``fo.Polylines`` ignore regions (PoseTrack)
        score_mode, keypoint_threshold: the instance score (mmpose's modes)
        nms_threshold: OKS-NMS threshold, None for no NMS
        pckh_threshold: PoseTrack's PCKh match distance (head-size units)
        skip_last_frame: PoseTrack MOTA without each video's last frame
        posetrack_joint_threshold: PoseTrack MOTA only: the predicted joints
            scoring below it are left out of MOTA / MOTP (poseval counts every
            joint it is given, so each low-confidence guess at an occluded
            joint is a false positive for MOTA; PoseTrack submissions drop
            them). PoseTrack AP always ranks every predicted joint (a
            threshold before AP only removes recall). Default
            :data:`~fiftyone_posetrack.eval.posetrack.MOTA_JOINT_THRESHOLD`,
            chosen on real annotated people (docs/pose.md); None: every joint

    Returns:
        a :class:`PoseEvaluationResults`
    """
    check_video_collection(samples)
    if kind not in KINDS:
        raise BadInputError(f"kind: expected one of {KINDS}, got {kind!r}")
    if posetrack_joint_threshold is not None and not 0.0 <= float(posetrack_joint_threshold) <= 1.0:
        raise BadInputError(f"posetrack_joint_threshold: expected a value in [0, 1] or None, got {posetrack_joint_threshold}")
    f = _check_fields(samples, pred_field, gt_field, gt_box_field, pred_box_field, ignore_field)
    if eval_key is not None:
        check_eval_key(eval_key)
    check_ground_truth(samples, f.pred, f.gt, fo.Keypoints)  # not the predictions themselves, not empty
    config = PoseEvaluationConfig(
        frame_path(f.pred), frame_path(f.gt), kind,
        frame_path(f.gt_box) if f.gt_box else None, frame_path(f.pred_box) if f.pred_box else None,
        frame_path(f.ignore) if f.ignore else None, score_mode, keypoint_threshold, nms_threshold,
        pckh_threshold, skip_last_frame, posetrack_joint_threshold,
    )  # fmt: skip
    method = config.build()
    check_eval_key_fields(samples, method, eval_key)
    videos = read_videos(samples, [f.gt, f.pred, f.gt_box, f.pred_box, f.ignore])
    oks_kind = "crowdpose" if kind == "crowdpose" else "coco"
    per_video, joints = _coco(samples, videos, f, oks_kind, score_mode, keypoint_threshold, nms_threshold)
    metrics = {}
    all_images, all_anns, all_res = [], [], []
    for name, (images, anns, res) in per_video.items():
        metrics[name] = _oks(images, anns, res, joints, oks_kind)
        all_images += images
        all_anns += anns
        all_res += res
    metrics["OVERALL"] = _oks(all_images, all_anns, all_res, joints, oks_kind)
    posetrack = None
    if kind == "posetrack":
        posetrack = _posetrack(samples, videos, f, pckh_threshold, skip_last_frame, posetrack_joint_threshold)
        for name, res in posetrack.items():
            metrics[name].update({f"pt_{k}": v for k, v in res["total"].items()})
            metrics[name]["pt_mota_joint_threshold"] = res["mota_joint_threshold"]
    results = PoseEvaluationResults(
        samples, config, eval_key, metrics, {v.name: v.sample_id for v in videos}, backend=method,
        posetrack_by_video=posetrack, kind=kind,
    )  # fmt: skip
    if eval_key is None:
        return results
    method.register_run(samples, eval_key)
    sources = {f"{eval_key}_ap": "ap", f"{eval_key}_pt_ap": "pt_ap", f"{eval_key}_mota": "pt_mota"}
    values = {}
    for field in method.field_names(eval_key)[0]:
        key = sources[field]
        values[field] = {v.sample_id: metrics[v.name].get(key) for v in videos}
        if key == "ap":  # -1: no ground truth to score
            values[field] = {sid: None if x is not None and x < 0 else x for sid, x in values[field].items()}
    method.set_sample_metrics(samples, eval_key, values)
    method.save_run_results(samples, eval_key, results)
    return results


def _oks(images, anns, results, joints, kind) -> dict:
    """:func:`keypoint_ap` on copies (it must not see our renumbering twice)."""
    gt = _coco_dataset([dict(i) for i in images], [dict(a) for a in anns], joints)
    return keypoint_ap(gt, [dict(r) for r in results], kind=kind)


def export_coco_keypoints(
    samples,
    field: str,
    path: str | os.PathLike,
    results: bool = False,
    gt_field: str = "gt_keypoints",
    box_field: str | None = None,
    kind: str = "coco",
    score_mode: str = "bbox_keypoint",
    keypoint_threshold: float = 0.2,
    nms_threshold: float | None = 0.9,
) -> int:
    """Writes a keypoints field as COCO JSON, as :func:`evaluate_poses` sees it.

    The files reproduce :func:`evaluate_poses` through ``posetrack eval-kpts
    GT DT``: the frames, joints, areas and instance scores are those of the
    evaluation (see the module docs). One image per annotated frame (where
    ``gt_field`` is set); image ids are ``offset(video) + frame_number``, with
    ``file_name = "<video>/<frame:06d>.jpg"`` and the ``video``,
    ``sample_id`` and ``frame_number`` they come from.

    Args:
        samples: a video dataset or view
        field: the frame-level ``fo.Keypoints`` field to write
        path: the ``.json`` file to write
        results: False writes a COCO keypoints dataset (ground truth: images,
            annotations with ``track_id``, categories), True a results list
            ``[{image_id, category_id, keypoints, score}]`` (predictions)
        gt_field: results only: the ground-truth field that defines the
            annotated frames (a ground-truth export uses ``field`` itself)
        box_field: boxes of the same ``index`` (ground truth: areas; results:
            box scores); default ``gt_detections`` / ``pred_detections`` when
            they exist
        kind: ``"coco"`` or ``"crowdpose"`` (the joints written)
        score_mode, keypoint_threshold, nms_threshold: results only, as in
            :func:`evaluate_poses`

    Returns:
        the number of annotations / results written
    """
    from fiftyone_posetrack.atomic import check_output_path

    check_output_path(path, "path")  # before reading anything
    check_video_collection(samples)
    if kind not in ("coco", "crowdpose"):
        raise BadInputError(f"kind: expected 'coco' or 'crowdpose', got {kind!r}")
    default_box = "pred_detections" if results else "gt_detections"
    box_field = box_field if box_field is not None else default_box
    if results:
        f = _check_fields(samples, field, gt_field, None, box_field, None)
    else:
        f = _check_fields(samples, None, field, box_field, None, None)
    videos = read_videos(samples, [f.gt, f.pred, f.gt_box, f.pred_box])
    per_video, joints = _coco(samples, videos, f if results else _Fields(f.gt, None, f.gt_box, None, None),
                              kind, score_mode, keypoint_threshold, nms_threshold)  # fmt: skip
    images = [i for imgs, _, _ in per_video.values() for i in imgs]
    anns = [a for _, a, _ in per_video.values() for a in a]
    res = [r for _, _, rs in per_video.values() for r in rs]
    if results:
        payload, count = res, len(res)
    else:
        payload, count = _coco_dataset(images, anns, joints), len(anns)
    from fiftyone_posetrack.atomic import atomic_write

    with atomic_write(path, what="COCO keypoints file") as fh:  # whole or not at all
        json.dump(payload, fh)
    return count
