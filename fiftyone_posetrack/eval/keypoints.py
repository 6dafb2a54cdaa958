"""COCO and CrowdPose keypoint AP/AR (OKS), OKS-NMS and mmpose's score modes.

OKS between a prediction and a ground-truth person with ``v > 0`` joints::

    OKS = mean_j exp(-d_j^2 / (2 * s^2 * (2 * sigma_j)^2)),   s^2 = gt area

with the benchmark's per-joint ``sigma`` (:data:`COCO_SIGMAS`,
:data:`CROWDPOSE_SIGMAS`; not FiftyOne's default of 1) and the ground-truth
*area* (COCO: the segment area of the annotation; CrowdPose, which has none:
``0.53 * box area``). AP is COCO's 101-point interpolated precision averaged
over OKS thresholds 0.50:0.05:0.95, with at most 20 predictions per image.

The evaluation runs xtcocotools' COCOeval (which knows custom sigmas, the
``use_area`` switch and CrowdPose's ``keypoints_crowd`` type with its
easy / medium / hard split on the image ``crowdIndex``: < 0.2 / < 0.8 / else);
without xtcocotools, COCO falls back to pycocotools (CrowdPose then raises).
Results are the tools' own numbers: ``-1`` marks a subset without ground truth
(COCO's convention); CrowdPose's easy/medium/hard APs are rounded to 4 decimals
by the tool. xtcocotools skips predictions whose keypoint scores are all 0,
pycocotools counts them (as false positives, usually).

Before evaluation, :func:`evaluate_keypoint_frames` scores and filters the
predictions as mmpose's ``CocoMetric`` does (``score_mode='bbox_keypoint'``:
box score times the mean of the keypoint scores above 0.2; OKS-NMS at 0.9).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fiftyone_posetrack.skeleton import COCO_SIGMAS
from fiftyone_posetrack.types import BadInputError, xyxy_to_xywh

__all__ = [
    "COCO_STATS",
    "CROWDPOSE_KEYPOINTS",
    "CROWDPOSE_SIGMAS",
    "CROWDPOSE_STATS",
    "KeypointFrame",
    "evaluate_keypoint_frames",
    "frames_to_coco",
    "instance_scores",
    "keypoint_ap",
    "oks_nms",
]

#: CrowdPose's 14 joints, in its order
CROWDPOSE_KEYPOINTS = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle", "head", "neck",
)  # fmt: skip
#: CrowdPose's per-joint OKS sigmas
CROWDPOSE_SIGMAS = np.array(
    [0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
     0.087, 0.087, 0.089, 0.089, 0.079, 0.079]
)  # fmt: skip

#: result keys, in the order of COCOeval's ``stats``
COCO_STATS = ("ap", "ap50", "ap75", "ap_medium", "ap_large",
              "ar", "ar50", "ar75", "ar_medium", "ar_large")  # fmt: skip
CROWDPOSE_STATS = ("ap", "ap50", "ap75", "ar", "ar50", "ar75",
                   "ap_easy", "ap_medium", "ap_hard")  # fmt: skip
_KINDS = {"coco": COCO_SIGMAS, "crowdpose": CROWDPOSE_SIGMAS}


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _backend(kind: str, backend: str | None):
    """``(COCO, COCOeval, name)`` of xtcocotools, or pycocotools for COCO."""
    if backend not in (None, "xtcocotools", "pycocotools"):
        raise BadInputError(f"backend: expected xtcocotools or pycocotools, got {backend!r}")
    if backend == "pycocotools" and kind != "coco":
        raise BadInputError(f"{kind} keypoint AP needs xtcocotools, not pycocotools")
    try:
        if backend == "pycocotools":
            raise ImportError
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval

        return COCO, COCOeval, "xtcocotools"
    except ImportError:
        if kind != "coco":
            raise BadInputError(
                f"{kind} keypoint AP needs xtcocotools (pip install xtcocotools)"
            ) from None
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval, "pycocotools"


def keypoint_ap(
    gt: dict,
    results: list[dict],
    kind: str = "coco",
    sigmas: np.ndarray | None = None,
    use_area: bool | None = None,
    backend: str | None = None,
) -> dict:
    """Keypoint AP/AR of COCO-style results against a COCO-style dataset.

    Args:
        gt: a COCO keypoints dataset dict (``images``, ``annotations`` with
            ``keypoints``, ``num_keypoints``, ``bbox``, ``area``, ``iscrowd``;
            CrowdPose images carry ``crowdIndex``)
        results: ``[{image_id, category_id, keypoints: [x, y, score] * K, score}]``
        kind: ``"coco"`` or ``"crowdpose"``
        sigmas: per-joint sigmas (default: the kind's)
        use_area: use the gt ``area`` for OKS (default: True for COCO, False for
            CrowdPose, which then uses ``0.53 * box area``)
        backend: ``"xtcocotools"`` or ``"pycocotools"`` (COCO only, always
            uses the area); default: xtcocotools when installed

    Returns:
        ``{key: value}`` for :data:`COCO_STATS` or :data:`CROWDPOSE_STATS`,
        plus ``backend`` (the library used) and ``num_gt`` / ``num_pred``
    """
    if kind not in _KINDS:
        raise BadInputError(f"kind: expected one of {sorted(_KINDS)}, got {kind!r}")
    if backend == "pycocotools" and use_area is False:
        raise BadInputError("use_area=False needs xtcocotools")
    if not isinstance(gt, dict) or "images" not in gt or "annotations" not in gt:
        raise BadInputError("ground truth: expected a COCO dict with 'images' and 'annotations'")
    if not isinstance(results, list):
        raise BadInputError("results: expected a list of {image_id, category_id, keypoints, score}")
    image_ids = {img["id"] for img in gt["images"]}
    for i, r in enumerate(results):
        if not {"image_id", "keypoints", "score"} <= set(r):
            raise BadInputError(f"results[{i}]: needs image_id, keypoints and score")
        if r["image_id"] not in image_ids:
            raise BadInputError(f"results[{i}]: image_id {r['image_id']} is not in the ground truth")
    sigmas = np.asarray(_KINDS[kind] if sigmas is None else sigmas, dtype=np.float64)
    use_area = (kind == "coco") if use_area is None else use_area
    COCO, COCOeval, backend = _backend(kind, backend)
    gt = dict(
        gt,
        annotations=[_complete(a, i) for i, a in enumerate(gt["annotations"])],
        categories=gt.get("categories") or [{"id": 1, "name": "person"}],
    )
    results = [dict(r, category_id=r.get("category_id", 1)) for r in results]

    with _quiet(), tempfile.TemporaryDirectory() as tmp:
        if kind == "crowdpose":  # its easy/medium/hard split re-reads the gt file
            path = os.path.join(tmp, "gt.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(gt, f)
            coco_gt = COCO(path)
        else:
            coco_gt = COCO()
            coco_gt.dataset = json.loads(json.dumps(gt))
            coco_gt.createIndex()
        coco_dt = _load_results(COCO, coco_gt, results, backend)
        if backend == "xtcocotools":
            iou_type = "keypoints_crowd" if kind == "crowdpose" else "keypoints"
            ev = COCOeval(coco_gt, coco_dt, iou_type, sigmas, use_area)
        else:
            ev = COCOeval(coco_gt, coco_dt, "keypoints")
            ev.params.kpt_oks_sigmas = sigmas
        ev.params.useSegm = None
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    names = CROWDPOSE_STATS if kind == "crowdpose" else COCO_STATS
    out = {k: float(v) for k, v in zip(names, ev.stats)}
    out.update(backend=backend, num_gt=len(gt["annotations"]), num_pred=len(results))
    return out


def _complete(ann: dict, i: int) -> dict:
    """A gt annotation with COCOeval's fields (``iscrowd`` 0, ``num_keypoints``
    counted from ``v > 0``, ``area`` from the box when absent)."""
    if not {"id", "image_id", "keypoints", "bbox"} <= set(ann):
        raise BadInputError(f"ground truth annotations[{i}]: needs id, image_id, keypoints and bbox")
    ann = dict(ann)
    ann.setdefault("category_id", 1)
    ann.setdefault("iscrowd", 0)
    ann.setdefault("num_keypoints", int(np.count_nonzero(np.asarray(ann["keypoints"])[2::3] > 0)))
    ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
    return ann


def _load_results(COCO, coco_gt, results, backend):
    if results or backend == "xtcocotools":
        return coco_gt.loadRes(json.loads(json.dumps(results)))
    coco_dt = COCO()  # loadRes of pycocotools fails on an empty list
    coco_dt.dataset = {"images": list(coco_gt.dataset["images"]), "annotations": [],
                       "categories": list(coco_gt.dataset["categories"])}  # fmt: skip
    coco_dt.createIndex()
    return coco_dt


def instance_scores(
    box_scores: np.ndarray,
    keypoint_scores: np.ndarray,
    mode: str = "bbox_keypoint",
    keypoint_threshold: float = 0.2,
) -> np.ndarray:
    """Person scores as mmpose's ``CocoMetric`` computes them.

    Args:
        box_scores: ``(M,)`` detection scores
        keypoint_scores: ``(M, K)`` per-joint confidences
        mode: ``"bbox"`` (the box score), ``"bbox_keypoint"`` (box score times
            the mean of the joint scores ``> keypoint_threshold``, 0 when none
            is) or ``"bbox_rle"`` (box score + mean + max of the joint scores)

    Returns:
        ``(M,)`` scores
    """
    box = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    kp = np.asarray(keypoint_scores, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[0] != len(box):
        raise BadInputError(
            f"instance_scores: expected box scores (M,) and keypoint scores (M, K), "
            f"got {box.shape} and {kp.shape}"
        )
    if mode == "bbox":
        return box.copy()
    if mode == "bbox_rle":
        return box + kp.mean(axis=1) + kp.max(axis=1, initial=0.0)
    if mode != "bbox_keypoint":
        raise BadInputError(f"score mode: expected bbox, bbox_keypoint or bbox_rle, got {mode!r}")
    valid = kp > keypoint_threshold
    n = valid.sum(axis=1)
    mean = np.where(n > 0, (kp * valid).sum(axis=1) / np.maximum(n, 1), 0.0)
    return box * mean


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray = COCO_SIGMAS,
    threshold: float = 0.9,
) -> np.ndarray:
    """Greedy OKS non-maximum suppression (mmpose's ``oks_nms``).

    The best scored pose is kept and every remaining pose whose OKS with it is
    above ``threshold`` is dropped; the OKS uses all joints and the mean of the
    two areas as scale. Ties in score: the later pose first.

    Args:
        keypoints: ``(M, K, 2)`` pixels
        scores: ``(M,)``
        areas: ``(M,)`` pose areas in pixels^2 (mmpose: the padded box area)

    Returns:
        kept indices, best score first
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    if kp.ndim != 3 or kp.shape[0] != len(scores) or len(areas) != len(scores):
        raise BadInputError(
            f"oks_nms: expected keypoints (M, K, 2), scores (M,), areas (M,); got "
            f"{kp.shape}, {scores.shape}, {areas.shape}"
        )
    var = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    d2 = ((kp[:, None] - kp[None, :]) ** 2).sum(-1)  # (M, M, K)
    scale = (areas[:, None] + areas[None, :]) / 2.0 + np.spacing(1)
    oks = np.exp(-d2 / var / scale[..., None] / 2.0).mean(-1)
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while len(order):
        i = order[0]
        keep.append(int(i))
        order = order[1:][oks[i, order[1:]] <= threshold]
    return np.asarray(keep, dtype=np.int64)


@dataclass
class KeypointFrame:
    """Ground-truth and predicted poses of one image or frame (pixels).

    Attributes:
        gt_keypoints: ``(N, K, 2)`` joint ``(x, y)``
        gt_visibility: ``(N, K)`` COCO visibility (0 unlabeled, 1 occluded, 2 visible)
        gt_boxes: ``(N, 4)`` ``[x1, y1, x2, y2]``
        pred_keypoints: ``(M, K, 2)``
        pred_keypoint_scores: ``(M, K)``
        pred_scores: ``(M,)`` box (detection) scores
        gt_areas: ``(N,)`` OKS areas (default: box areas)
        gt_crowd: ``(N,)`` bool crowd flags (default: none)
        gt_num_keypoints: ``(N,)`` labelled joint counts (default: ``v > 0``);
            people with 0 are ignored
        pred_areas: ``(M,)`` areas for OKS-NMS (default: keypoint extent, as mmpose)
        crowd_index: CrowdPose's crowd index of the image
    """

    gt_keypoints: np.ndarray
    gt_visibility: np.ndarray
    gt_boxes: np.ndarray
    pred_keypoints: np.ndarray
    pred_keypoint_scores: np.ndarray
    pred_scores: np.ndarray
    gt_areas: np.ndarray | None = None
    gt_crowd: np.ndarray | None = None
    gt_num_keypoints: np.ndarray | None = None
    pred_areas: np.ndarray | None = None
    crowd_index: float | None = None


def _arr(x, shape, what):
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0 and shape[0] == 0:
        return a.reshape(shape)
    if a.shape != shape:
        raise BadInputError(f"{what}: expected shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise BadInputError(f"{what}: contains NaN or inf")
    return a


def frames_to_coco(
    frames: Sequence[KeypointFrame],
    num_keypoints: int,
    score_mode: str = "bbox_keypoint",
    keypoint_threshold: float = 0.2,
    nms_threshold: float | None = 0.9,
    sigmas: np.ndarray = COCO_SIGMAS,
) -> tuple[dict, list[dict]]:
    """Builds COCO dicts from per-frame arrays; frame ``i`` is image ``i + 1``.

    Predictions are scored with :func:`instance_scores` and, unless
    ``nms_threshold`` is None, filtered with :func:`oks_nms`.

    Returns:
        ``(gt_dataset, results)`` for :func:`keypoint_ap`
    """
    k = num_keypoints
    images, anns, results = [], [], []
    for img_id, fr in enumerate(frames, 1):
        what = f"frame {img_id - 1}"
        n = len(np.asarray(fr.gt_boxes).reshape(-1, 4))
        m = len(np.asarray(fr.pred_scores).reshape(-1))
        gkp = _arr(fr.gt_keypoints, (n, k, 2), f"{what} gt keypoints")
        vis = _arr(fr.gt_visibility, (n, k), f"{what} gt visibility")
        box = xyxy_to_xywh(_arr(fr.gt_boxes, (n, 4), f"{what} gt boxes"))
        area = box[:, 2] * box[:, 3] if fr.gt_areas is None else _arr(fr.gt_areas, (n,), what)
        crowd = np.zeros(n, bool) if fr.gt_crowd is None else np.asarray(fr.gt_crowd, bool)
        nkp = (vis > 0).sum(1) if fr.gt_num_keypoints is None else fr.gt_num_keypoints
        image = {"id": img_id}
        if fr.crowd_index is not None:
            image["crowdIndex"] = float(fr.crowd_index)
        images.append(image)
        flat = np.concatenate([gkp, vis[..., None]], axis=-1).reshape(n, 3 * k)
        for j in range(n):
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 1,
                         "keypoints": flat[j].tolist(), "num_keypoints": int(nkp[j]),
                         "bbox": box[j].tolist(), "area": float(area[j]),
                         "iscrowd": int(crowd[j])})  # fmt: skip
        pkp = _arr(fr.pred_keypoints, (m, k, 2), f"{what} predicted keypoints")
        psc = _arr(fr.pred_keypoint_scores, (m, k), f"{what} keypoint scores")
        score = instance_scores(fr.pred_scores, psc, score_mode, keypoint_threshold)
        if nms_threshold is not None and m:
            if fr.pred_areas is None:
                ext = pkp.max(axis=1) - pkp.min(axis=1)
                parea = ext[:, 0] * ext[:, 1]
            else:
                parea = _arr(fr.pred_areas, (m,), f"{what} predicted areas")
            keep = oks_nms(pkp, score, parea, sigmas, nms_threshold)
        else:
            keep = np.arange(m)
        flat = np.concatenate([pkp, psc[..., None]], axis=-1).reshape(m, 3 * k)
        for j in keep:
            results.append({"image_id": img_id, "category_id": 1,
                            "keypoints": flat[j].tolist(), "score": float(score[j])})  # fmt: skip
    return {"images": images, "annotations": anns}, results


def evaluate_keypoint_frames(
    frames: Sequence[KeypointFrame],
    kind: str = "coco",
    sigmas: np.ndarray | None = None,
    score_mode: str = "bbox_keypoint",
    keypoint_threshold: float = 0.2,
    nms_threshold: float | None = 0.9,
    use_area: bool | None = None,
) -> dict:
    """OKS AP/AR of per-frame poses: :func:`frames_to_coco` then :func:`keypoint_ap`."""
    if kind not in _KINDS:
        raise BadInputError(f"kind: expected one of {sorted(_KINDS)}, got {kind!r}")
    sigmas = np.asarray(_KINDS[kind] if sigmas is None else sigmas, dtype=np.float64)
    gt, results = frames_to_coco(
        frames, len(sigmas), score_mode, keypoint_threshold, nms_threshold, sigmas
    )
    return keypoint_ap(gt, results, kind, sigmas, use_area)
