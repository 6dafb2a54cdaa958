"""PoseTrack metrics: per-joint AP and per-joint MOTA/MOTP, as poseval defines them.

An independent implementation of the official PoseTrack evaluation (poseval,
github.com/leonid-pishchulin/poseval: ``eval_helpers.assignGTmulti``,
``evaluateAP``, ``evaluateTracking``) on in-memory frames. Values are in
percent, like poseval's tables.

Conventions:

- the 15 evaluated joints are :data:`POSEVAL_JOINTS` (PoseTrack18's ``left_ear``
  and ``right_ear`` are never annotated and not evaluated); joints are found
  by name, ``neck`` is accepted for ``head_bottom``;
- a joint is *annotated* / *predicted* unless it is ``(0, 0)`` with
  visibility 0 (PoseTrack18's encoding of a missing joint);
- frames are evaluated when they are labelled and list at least one ground
  truth person; joints strictly inside an ignore region (a polygon, boundary
  excluded) are removed from ground truth and predictions, and people left
  without joints are dropped;
- distance = ``|pred - gt| / head_size`` with ``head_size = 0.6 * diagonal``
  of the ground-truth head box (``bbox_head``); a joint matches when the
  distance is ``<= 0.5`` (PCKh@0.5); a head box of size 0 matches nothing;
- **AP**: each prediction is assigned to the ground-truth person with which it
  has the highest PCKh; every person keeps the best of the predictions
  assigned to it. A predicted joint is a true positive when its person was
  kept and the joint matches that person's joint, else a false positive.
  Joints are ranked by their score (predictions without scores get -9999,
  ties: the later joint first), and AP is the area under the VOC-style
  interpolated precision/recall curve. AP always ranks **every** predicted
  joint: a score threshold before AP only removes recall (COCO and poseval
  rank all joints too);
- **MOTA/MOTP** (py-motmetrics, per joint and per video, summed over videos):
  each joint class is tracked on its own with the track ids of its people,
  pairs within the PCKh threshold being matchable at their distance;
  ``MOTA = 1 - (FN + FP + IDSW) / GT``, ``MOTP = 1 - mean matched distance``.
  MOTA has no ranking: every joint it is given counts, so a low-confidence
  guess at an occluded joint is a false positive. ``mota_joint_threshold``
  gives MOTA (and its precision / recall) only the joints scoring at least
  that much, as PoseTrack submissions do by thresholding their files; AP is
  not affected. :data:`MOTA_JOINT_THRESHOLD` is the default of the FiftyOne
  evaluation and the demo, chosen on real annotated people
  (``bench/bench_pose_threshold.py``, docs/pose.md);
- totals: poseval's total is the mean of the per-joint values over the
  joints that have ground truth (``ap``, ``mota``, ``motp``, ``precision``,
  ``recall``); ``mota_pooled`` sums the counts of all joints instead.
  ``groups`` gives poseval's table columns (head = head_top, head_bottom,
  nose; shoulder; elbow; wrist; hip; knee; ankle).

Deviations from poseval, where it crashes or counts placeholders: a joint
without any ground truth gets NaN and is left out of the means; when no joint
has ground truth at all, the totals are 100 if nothing was predicted and 0
otherwise; a frame without predictions (or whose ground truth lies entirely in
ignore regions) counts its real misses (or false positives) instead of
poseval's one placeholder miss and false positive per joint. poseval's
tracking evaluation also leaves out the last frame of every video: pass
``skip_last_frame=True`` to do the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fiftyone_posetrack.types import BadInputError

__all__ = [
    "POSEVAL_JOINTS",
    "JOINT_GROUPS",
    "MOTA_JOINT_THRESHOLD",
    "evaluate_posetrack",
    "evaluate_posetrack_files",
]

#: poseval's 15 joints, in its order
POSEVAL_JOINTS = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist", "head_bottom", "nose", "head_top",
)  # fmt: skip
#: poseval's table columns: joint groups averaged together
JOINT_GROUPS = {
    "head": ("head_top", "head_bottom", "nose"),
    "shoulder": ("right_shoulder", "left_shoulder"),
    "elbow": ("right_elbow", "left_elbow"),
    "wrist": ("right_wrist", "left_wrist"),
    "hip": ("right_hip", "left_hip"),
    "knee": ("right_knee", "left_knee"),
    "ankle": ("right_ankle", "left_ankle"),
}
#: PoseTrack18's file order of its 17 joints
POSETRACK18_KEYPOINTS = (
    "nose", "head_bottom", "head_top", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
MIN_SCORE = -9999.0
_J = len(POSEVAL_JOINTS)
#: the default joint score threshold of MOTA (AP ranks all joints): of 0.0, 0.05, ..., 0.6 the one
#: with the smallest worst loss of MOTA against each set's best threshold, MoveNet lightning on the
#: real annotated people of ../shared/data/keypoints (PoseTrack18 val, COCO, CrowdPose):
#: ``python bench/bench_pose_threshold.py`` (detector boxes: worst loss 2.5 MOTA points at 0.4;
#: 0.5, the former threshold, loses 11.8 on CrowdPose; with annotated boxes, ``--boxes gt``, 0.4
#: ties the smallest worst loss, 6.9); tables in docs/pose.md
MOTA_JOINT_THRESHOLD = 0.4


def _joint_index(names: Sequence[str], what: str) -> np.ndarray:
    """For each poseval joint, its index in ``names`` (-1 when absent)."""
    names = ["head_bottom" if n == "neck" else n for n in names]
    idx = np.array([names.index(j) if j in names else -1 for j in POSEVAL_JOINTS])
    if (idx < 0).all():
        raise BadInputError(f"{what}: none of the joints {list(names)} is a PoseTrack joint")
    return idx


@dataclass
class _People:
    """People of one frame in poseval's joint order."""

    xy: np.ndarray  # (N, 15, 2)
    has: np.ndarray  # (N, 15) bool
    track_ids: np.ndarray  # (N,)
    scores: np.ndarray  # (N, 15)
    head_size: np.ndarray | None = None  # (N,)

    @classmethod
    def empty(cls) -> "_People":
        return cls(np.zeros((0, _J, 2)), np.zeros((0, _J), bool), np.zeros(0, np.int64), np.zeros((0, _J)))


def _people(frame, jidx: np.ndarray, gt: bool, what: str) -> _People:
    n = len(frame.track_ids)
    xy = np.zeros((n, _J, 2))
    has = np.zeros((n, _J), dtype=bool)
    scores = np.full((n, _J), MIN_SCORE)
    ok = jidx >= 0
    if n:
        kp = np.asarray(frame.keypoints, dtype=np.float64).reshape(n, -1, 2)
        vis = np.asarray(frame.visibility, dtype=np.float64).reshape(n, -1)
        xy[:, ok] = kp[:, jidx[ok]]
        missing = (kp[..., 0] == 0) & (kp[..., 1] == 0) & (vis == 0)
        has[:, ok] = ~missing[:, jidx[ok]]
        if frame.scores is not None:
            sc = np.asarray(frame.scores, dtype=np.float64).reshape(n, -1)[:, jidx[ok]]
            scores[:, ok] = np.where(np.isfinite(sc), sc, MIN_SCORE)
    head = None
    if gt:
        heads = getattr(frame, "head_boxes", None)
        heads = None if heads is None else np.asarray(heads, dtype=np.float64).reshape(n, 4)
        if n and (heads is None or not np.isfinite(heads).all()):
            raise BadInputError(f"{what}: every ground-truth person needs a head box (bbox_head)")
        head = 0.6 * np.hypot(*(heads[:, 2:] - heads[:, :2]).T) if n else np.zeros(0)
    ids = np.asarray(frame.track_ids, dtype=np.int64).reshape(-1)
    return _People(xy, has, ids, scores, head)


def _inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon for ``(Q, 2)`` points; the boundary is outside."""
    x, y = points[:, :1], points[:, 1:]
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    on_edge = (
        (cross == 0)
        & (np.minimum(x1, x2) <= x) & (x <= np.maximum(x1, x2))
        & (np.minimum(y1, y2) <= y) & (y <= np.maximum(y1, y2))
    )  # fmt: skip
    straddle = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    crossings = (straddle & (x < x_cross)).sum(axis=1)
    return (crossings % 2 == 1) & ~on_edge.any(axis=1)


def _apply_ignore(p: _People, regions) -> _People:
    """Removes joints inside ignore regions, then people without joints."""
    for poly in regions or []:
        poly = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(poly) >= 3 and p.has.any():
            pts = p.xy[p.has]
            p.has[p.has] = ~_inside(pts, poly)
    keep = p.has.any(axis=1)
    head = None if p.head_size is None else p.head_size[keep]
    return _People(p.xy[keep], p.has[keep], p.track_ids[keep], p.scores[keep], head)


def _match_frame(g: _People, p: _People, threshold: float):
    """Distances, PCKh matches and the AP labels of one frame.

    Returns ``(dist (P, G, 15), match (P, G, 15), labels (P, 15))``.
    """
    both = p.has[:, None, :] & g.has[None, :, :]
    norm = np.linalg.norm(p.xy[:, None] - g.xy[None, :], axis=-1)
    head = g.head_size[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.where(both & (head > 0), norm / np.where(head > 0, head, 1.0), np.inf)
    match = dist <= threshold
    n_gt = g.has.sum(axis=1)
    pck = match.sum(axis=2) / np.maximum(n_gt, 1)[None, :]
    labels = np.zeros(p.has.shape, dtype=bool)
    if pck.size:
        best = np.argmax(pck, axis=1)  # each prediction's best person
        only = np.zeros_like(pck)
        rows = np.arange(len(pck))
        only[rows, best] = pck[rows, best]
        chosen = np.argmax(only, axis=0)  # each person's best prediction
        for gi, pi in enumerate(chosen):
            if only[pi, gi] > 0:
                labels[pi] = match[pi, gi]
    return dist, match, labels & p.has


def _voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def _pair_frames(gt_frames, pred_frames):
    """``(gt, pred or None)`` of the evaluated frames: labelled, with people."""
    preds = {int(fr.frame_index): fr for fr in (pred_frames or [])}
    pairs = []
    for fr in sorted(gt_frames, key=lambda f: f.frame_index):
        if fr.is_labeled and len(fr.track_ids):
            pairs.append((fr, preds.get(int(fr.frame_index))))
    return pairs


def evaluate_posetrack(
    gt: Mapping[str, Sequence],
    pred: Mapping[str, Sequence],
    gt_keypoint_names: Sequence[str] = POSETRACK18_KEYPOINTS,
    pred_keypoint_names: Sequence[str] | None = None,
    threshold: float = 0.5,
    skip_last_frame: bool = False,
    mota_joint_threshold: float | None = None,
) -> dict:
    """Evaluates pose estimation (AP) and pose tracking (MOTA) over videos.

    Args:
        gt: ``{video: [frame, ...]}``, frames like
            :class:`fiftyone_posetrack.formats.posetrack.PoseTrackFrame`
            (``frame_index``, ``is_labeled``, ``track_ids``, ``keypoints``
            ``(N, K, 2)`` pixels, ``visibility``, ``ignore_regions``,
            ``head_boxes`` ``(N, 4)`` ``[x1, y1, x2, y2]``)
        pred: ``{video: [frame, ...]}`` predicted frames (``scores`` ``(N, K)``
            per joint; matched to ground truth by ``frame_index``); a video
            or frame missing here has no predictions
        gt_keypoint_names, pred_keypoint_names: the joint names of the
            ``K`` keypoints (predictions default to the ground truth's)
        threshold: the PCKh distance threshold (head-size units)
        skip_last_frame: leave each video's last evaluated frame out of the
            tracking metrics, as poseval does
        mota_joint_threshold: MOTA, MOTP and the tracking precision /
            recall count only the predicted joints scoring at least this
            (joints without a score count as scoring :data:`MIN_SCORE`);
            None: every joint, as poseval does with the joints of its files.
            AP always ranks every predicted joint

    Returns:
        ``{"joints": [...], "per_joint": {joint: {ap, ap_precision,
        ap_recall, mota, motp, precision, recall, num_gt, fp, fn, idsw}},
        "total": {ap, mota, mota_pooled, motp, precision, recall},
        "groups": {group: {ap, mota}}, "num_videos", "num_frames",
        "mota_joint_threshold"}`` (percentages)
    """
    import motmetrics as mm

    if mota_joint_threshold is not None:
        mota_joint_threshold = float(mota_joint_threshold)
        if not np.isfinite(mota_joint_threshold):
            raise BadInputError(f"mota_joint_threshold: expected a number or None, got {mota_joint_threshold}")

    unknown = set(pred) - set(gt)
    if unknown:
        raise BadInputError(f"predictions: videos {sorted(unknown)[:5]} are not in the ground truth")
    gidx = _joint_index(list(gt_keypoint_names), "ground-truth keypoint names")
    pidx = _joint_index(list(pred_keypoint_names or gt_keypoint_names), "predicted keypoint names")
    scores = [[] for _ in range(_J)]
    labels = [[] for _ in range(_J)]
    num_gt = np.zeros(_J, dtype=np.int64)
    mot = np.zeros((_J, 5))  # misses, switches, false positives, objects, detections
    sum_d = np.zeros(_J)
    num_frames = 0
    for video, gt_frames in gt.items():
        pairs = _pair_frames(gt_frames, pred.get(video))
        num_frames += len(pairs)
        accs = [mm.MOTAccumulator(auto_id=True) for _ in range(_J)]
        for k, (gfr, pfr) in enumerate(pairs):
            what = f"video {video!r} frame {gfr.frame_index}"
            g = _apply_ignore(_people(gfr, gidx, True, what), gfr.ignore_regions)
            p = _people(pfr, pidx, False, what) if pfr is not None else _People.empty()
            if len(set(p.track_ids.tolist())) != len(p.track_ids):
                raise BadInputError(f"{what}: predictions repeat a track id")
            p = _apply_ignore(p, gfr.ignore_regions)
            dist, match, lab = _match_frame(g, p, threshold)
            num_gt += g.has.sum(axis=0)
            for j in range(_J):
                scores[j].append(p.scores[p.has[:, j], j])
                labels[j].append(lab[p.has[:, j], j])
            if skip_last_frame and k == len(pairs) - 1:
                continue
            tracked = p.has if mota_joint_threshold is None else p.has & (p.scores >= mota_joint_threshold)
            for j in range(_J):
                gj, pj = np.flatnonzero(g.has[:, j]), np.flatnonzero(tracked[:, j])
                d = dist[np.ix_(pj, gj, [j])][..., 0].T  # (G_j, P_j)
                d = np.where(match[np.ix_(pj, gj, [j])][..., 0].T, d, np.nan)
                accs[j].update(g.track_ids[gj], p.track_ids[pj], d)
        names = ["num_misses", "num_switches", "num_false_positives", "num_objects", "num_detections"]
        mh = mm.metrics.create()
        for j, acc in enumerate(accs):
            res = mh.compute(acc, metrics=names, return_dataframe=False, name="acc")
            mot[j] += [res[n] for n in names]
            ev = acc.mot_events
            sum_d[j] += float(np.nansum(ev.loc[ev["Type"].isin(("MATCH", "SWITCH")), "D"]))
    out = _summarize(scores, labels, num_gt, mot, sum_d, len(gt), num_frames)
    out["mota_joint_threshold"] = mota_joint_threshold
    return out


def _summarize(scores, labels, num_gt, mot, sum_d, num_videos, num_frames) -> dict:
    per_joint = {}
    for j, name in enumerate(POSEVAL_JOINTS):
        s = np.concatenate(scores[j]) if scores[j] else np.zeros(0)
        lab = np.concatenate(labels[j]) if labels[j] else np.zeros(0, bool)
        order = np.argsort(s, kind="stable")[::-1]
        tp = np.cumsum(lab[order])
        fn, idsw, fp, objects, det = mot[j]
        row = {"num_gt": int(num_gt[j]), "fp": int(fp), "fn": int(fn), "idsw": int(idsw)}
        if num_gt[j] == 0:
            row.update(ap=np.nan, ap_precision=np.nan, ap_recall=np.nan)
        elif len(s) == 0:
            row.update(ap=0.0, ap_precision=0.0, ap_recall=0.0)
        else:
            rec, prec = tp / num_gt[j], tp / np.arange(1, len(tp) + 1)
            row.update(ap=100 * _voc_ap(rec, prec), ap_precision=100 * prec[-1],
                       ap_recall=100 * rec[-1])  # fmt: skip
        if objects > 0:
            row["mota"] = 100 * (1 - (fn + idsw + fp) / objects)
            row["recall"] = 100 * det / objects
        else:
            row["mota"] = row["recall"] = np.nan
        row["motp"] = 100 * (1 - sum_d[j] / det) if det > 0 else 0.0
        row["precision"] = 100 * det / (fp + det) if fp + det > 0 else np.nan
        per_joint[name] = {k: v if isinstance(v, int) else float(v) for k, v in row.items()}

    nothing_predicted = all(len(np.concatenate(s)) == 0 if s else True for s in scores)
    degenerate = 100.0 if nothing_predicted else 0.0

    def mean(key, joints=POSEVAL_JOINTS):
        vals = np.array([per_joint[j][key] for j in joints], dtype=float)
        vals = vals[np.isfinite(vals)]
        return float(vals.mean()) if len(vals) else degenerate

    total = {k: mean(k) for k in ("ap", "mota", "motp", "precision", "recall")}
    fn, idsw, fp, objects, _ = mot.sum(axis=0)
    total["mota_pooled"] = float(100 * (1 - (fn + idsw + fp) / objects)) if objects else degenerate
    groups = {g: {"ap": mean("ap", js), "mota": mean("mota", js)} for g, js in JOINT_GROUPS.items()}
    return {
        "joints": list(POSEVAL_JOINTS),
        "per_joint": per_joint,
        "total": total,
        "groups": groups,
        "num_videos": num_videos,
        "num_frames": num_frames,
    }


def _collect(path: str) -> list[str]:
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(".json"))
        if not files:
            raise BadInputError(f"{path}: no .json files in this folder")
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"PoseTrack file or folder not found: {path}")
    return [path]


def evaluate_posetrack_files(
    gt_path: str | os.PathLike,
    pred_path: str | os.PathLike,
    threshold: float = 0.5,
    skip_last_frame: bool = False,
    mota_joint_threshold: float | None = None,
) -> dict:
    """Evaluates PoseTrack18 JSON files, or folders of them (one file per video).

    Videos are matched by name (their image folder); every ground-truth video
    needs predictions, as in poseval. ``mota_joint_threshold``: as in
    :func:`evaluate_posetrack` (None: every joint of the files, as poseval).
    """
    from fiftyone_posetrack.formats.posetrack import read_posetrack_videos

    def load(path):
        videos = {}
        for f in _collect(os.fspath(path)):
            for v in read_posetrack_videos(f):
                if v.name in videos:
                    raise BadInputError(f"{f}: video {v.name!r} appears twice")
                videos[v.name] = v
        return videos

    gt, pred = load(gt_path), load(pred_path)
    missing = sorted(set(gt) - set(pred))
    if missing:
        raise BadInputError(f"{os.fspath(pred_path)}: no predictions for videos {missing[:5]}")
    names = {tuple(v.keypoint_names) for v in gt.values()}
    pnames = {tuple(v.keypoint_names) for v in pred.values()}
    if len(names) != 1 or len(pnames) != 1:
        raise BadInputError("all videos of a side must use the same joint names")
    return evaluate_posetrack(
        {n: v.frames for n, v in gt.items()},
        {n: pred[n].frames for n in gt},
        names.pop(),
        pnames.pop(),
        threshold,
        skip_last_frame,
        mota_joint_threshold,
    )
