"""The joint score threshold of PoseTrack MOTA, chosen on real annotated people.

    nice python bench/bench_pose_threshold.py [--boxes detector|gt] [--no-flip]

PoseTrack AP ranks every predicted joint by its score (a threshold before AP
only removes recall); MOTA has no ranking, so each low-confidence guess at an
occluded joint is a false positive: MOTA counts the joints scoring at least a
threshold. This bench runs the real models on every annotated image set of
``../shared/data/keypoints`` and prints, per set and threshold, MOTA (and AP
of the joints kept, to show what thresholding before AP would cost), then the
threshold with the smallest worst loss of MOTA against each set's best one:
the default :data:`fiftyone_posetrack.eval.posetrack.MOTA_JOINT_THRESHOLD`.

Sets (each image is its own one-frame video: MOTA has no identity switches
here, only misses and false joints):

- ``posetrack18``: the 3 annotated PoseTrack18 val frames (1920x1080, head
  boxes, ignore regions) of ``annotations/test_posetrack18_val.json``;
- ``coco``: the 4 COCO val images of ``coco/test_coco.json``;
- ``crowdpose``: the 2 CrowdPose images of ``crowdpose/test_crowdpose.json``.

Conventions: poseval's distance (PCKh 0.5 of the head box, ``0.6 x`` its
diagonal); COCO and CrowdPose have no head boxes, so the head is the
square of side ``box height / 8`` that :mod:`fiftyone_posetrack.fo.posetrack`
estimates (absolute numbers there are indicative; the threshold's effect is
what is compared). Only the joints the pose model predicts are evaluated
(MoveNet's COCO-17: PoseTrack's ``head_top`` / ``head_bottom`` and
CrowdPose's ``head`` / ``neck`` are left out of both sides). People of the
ground truth without labelled joints, and COCO crowd regions, become ignore
regions (their boxes): a prediction on an unannotated person is not false.

People boxes: ``--boxes detector`` (default) runs the ``cpu`` preset's
detector (the pipeline's defaults: RTMDet-nano on 640 px tiles, boxes >= 0.3)
on each image, as the pipeline would; ``--boxes gt`` uses the annotated
boxes (pose model alone). Poses: MoveNet lightning (``--pose``, a model name
or spec; the only pose model in ``../shared/models``) with the pipeline's
default test-time flip (``--no-flip``: without), sanitised as the pipeline
does.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import cv2
import numpy as np

from fiftyone_posetrack.eval.posetrack import POSEVAL_JOINTS, evaluate_posetrack
from fiftyone_posetrack.formats.posetrack import PoseTrackFrame, read_posetrack_videos
from fiftyone_posetrack.skeleton import COCO_KEYPOINTS

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
KP = SHARED / "data" / "keypoints"
HEAD_FRACTION = 1 / 8  # fiftyone_posetrack.fo.posetrack.HEAD_FRACTION (not imported: no FiftyOne here)
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(13))
#: the joints both sides have: MoveNet's COCO-17 names that are PoseTrack joints
EVAL_JOINTS = tuple(j for j in COCO_KEYPOINTS if j in POSEVAL_JOINTS)


def _box_polygon(b) -> np.ndarray:
    x1, y1, x2, y2 = b
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64)


def _coco_set(path: pathlib.Path, names_map: dict | None = None):
    """``[(image path, gt PoseTrackFrame)]`` of a COCO-format keypoint file, joints in COCO-17 order."""
    data = json.loads(path.read_text())
    src = list(data["categories"][0]["keypoints"])
    src = [names_map.get(n, n) if names_map else n for n in src]
    out = []
    for img in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == img["id"]]
        keep, ignore = [], []
        for a in anns:
            x, y, w, h = a["bbox"]
            box = [x, y, x + w, y + h]
            if a.get("iscrowd") or a.get("num_keypoints", 0) == 0:
                ignore.append(_box_polygon(box))
            else:
                keep.append((a, box))
        n = len(keep)
        kps, vis = np.zeros((n, 17, 2)), np.zeros((n, 17), dtype=np.int64)
        heads = np.zeros((n, 4))
        for i, (a, box) in enumerate(keep):
            k = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            for j, name in enumerate(src):
                if name in EVAL_JOINTS and k[j, 2] > 0:
                    t = COCO_KEYPOINTS.index(name)
                    kps[i, t], vis[i, t] = k[j, :2], 1
            side = (box[3] - box[1]) * HEAD_FRACTION
            cx = (box[0] + box[2]) / 2
            heads[i] = [cx - side / 2, box[1], cx + side / 2, box[1] + side]
        frame = PoseTrackFrame(
            frame_index=0, file_name=img["file_name"], is_labeled=True, track_ids=np.arange(1, n + 1),
            boxes=np.array([b for _, b in keep]).reshape(-1, 4), keypoints=kps, visibility=vis,
            ignore_regions=ignore, head_boxes=heads,
        )  # fmt: skip
        out.append((path.parent / pathlib.Path(img["file_name"]).name, frame))
    return out


def _posetrack_set():
    """The annotated PoseTrack18 val frames, ground truth in COCO-17 order (the joints MoveNet has)."""
    root = KP / "posetrack18"
    out = []
    for v in read_posetrack_videos(root / "annotations" / "test_posetrack18_val.json"):
        names = list(v.keypoint_names)
        for fr in v.frames:
            if not fr.is_labeled or not len(fr.track_ids):
                continue
            n = len(fr.track_ids)
            kps, vis = np.zeros((n, 17, 2)), np.zeros((n, 17), dtype=np.int64)
            for t, name in enumerate(COCO_KEYPOINTS):
                if name in EVAL_JOINTS and name in names:
                    j = names.index(name)
                    kps[:, t], vis[:, t] = fr.keypoints[:, j], fr.visibility[:, j]
            gt = PoseTrackFrame(
                frame_index=0, file_name=fr.file_name, is_labeled=True, track_ids=fr.track_ids, boxes=fr.boxes,
                keypoints=kps, visibility=vis, ignore_regions=fr.ignore_regions, head_boxes=fr.head_boxes,
            )  # fmt: skip
            out.append((root / fr.file_name, gt))
    return out


def image_sets() -> dict:
    """``{set: [(image path, ground-truth PoseTrackFrame)]}`` of the shared annotated people."""
    return {
        "posetrack18": _posetrack_set(),
        "coco": _coco_set(KP / "coco" / "test_coco.json"),
        "crowdpose": _coco_set(KP / "crowdpose" / "test_crowdpose.json", {"head": "head_top", "neck": "head_bottom"}),
    }


def _gt_boxes(gt: PoseTrackFrame) -> np.ndarray:
    """Annotated boxes; where a file has none, the labelled joints' extent grown by 10 % per side."""
    out = []
    for b, k, v in zip(gt.boxes, gt.keypoints, gt.visibility):
        if np.isfinite(b).all() and b[2] > b[0]:
            out.append(b)
        else:
            p = k[v > 0]
            x1, y1, x2, y2 = *p.min(0), *p.max(0)
            dx, dy = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
            out.append([x1 - dx, y1 - dy, x2 + dx, y2 + dy])
    return np.asarray(out, dtype=np.float64).reshape(-1, 4)


def predict(sets: dict, boxes: str, pose_estimator, detector=None) -> dict:
    """``{set: [pred PoseTrackFrame]}``: the pose model on each image's people boxes."""
    from fiftyone_posetrack.pipeline.core import sanitize_detections, sanitize_poses

    out = {}
    for name, items in sets.items():
        frames = []
        for path, gt in items:
            img = cv2.imread(str(path))
            h, w = img.shape[:2]
            if boxes == "gt":
                b = _gt_boxes(gt)
            else:
                dets, _ = sanitize_detections(detector.detect([img])[0], w, h)
                b = dets.boxes
            kp, sc = pose_estimator.estimate(img, b)
            kp, sc = sanitize_poses(kp, sc, w, h)
            ok = np.isfinite(kp).all(axis=2)
            frames.append(PoseTrackFrame(
                frame_index=0, file_name=gt.file_name, is_labeled=True, track_ids=np.arange(1, len(b) + 1),
                boxes=b, keypoints=np.where(ok[..., None], kp, 0.0), visibility=ok.astype(np.int64),
                scores=np.where(ok, sc, 0.0),
            ))  # fmt: skip
        out[name] = frames
    return out


def evaluate_set(items, preds, mota_joint_threshold=None, drop_below=None) -> dict:
    """poseval totals over one set (each image its own video); ``drop_below`` removes joints before AP too."""
    gt = {f"{i}": [g] for i, (_, g) in enumerate(items)}
    pr = {}
    for i, p in enumerate(preds):
        if drop_below is not None:
            keep = p.scores >= drop_below
            p = PoseTrackFrame(p.frame_index, p.file_name, True, p.track_ids, p.boxes,
                               np.where(keep[..., None], p.keypoints, 0.0), np.where(keep, p.visibility, 0),
                               scores=np.where(keep, p.scores, 0.0))  # fmt: skip
        pr[f"{i}"] = [p]
    return evaluate_posetrack(gt, pr, COCO_KEYPOINTS, COCO_KEYPOINTS, mota_joint_threshold=mota_joint_threshold)


def build_models(args):
    from fiftyone_posetrack.pipeline import PipelineConfig
    from fiftyone_posetrack.pipeline.core import build_detector, build_pose_estimator

    config = PipelineConfig(models_dir=args.models_dir, pose=args.pose, device="cpu", pose_flip=args.flip)
    pose = build_pose_estimator(config)
    return (build_detector(config) if args.boxes == "detector" else None), pose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boxes", choices=("detector", "gt"), default="detector")
    parser.add_argument("--pose", default="movenet-lightning-int8", help="pose model name or spec")
    parser.add_argument("--no-flip", dest="flip", action="store_false", help="without MoveNet's test-time flip")
    parser.add_argument("--models-dir", default=str(SHARED / "models"))
    args = parser.parse_args()
    if not KP.is_dir():
        sys.exit(f"skipped: {KP} is absent (the shared annotated people)")
    sets = image_sets()
    detector, pose = build_models(args)
    preds = predict(sets, args.boxes, pose, detector)
    print(f"pose {args.pose}{' + flip' if args.flip else ''}, boxes: {args.boxes}; "
          f"joints evaluated: {len(EVAL_JOINTS)} ({', '.join(EVAL_JOINTS)})")  # fmt: skip
    mota = {}
    for name, items in sets.items():
        people = sum(len(g.track_ids) for _, g in items)
        base = evaluate_set(items, preds[name])
        print(f"\n{name}: {len(items)} images, {people} annotated people, "
              f"{sum(len(p.track_ids) for p in preds[name])} predicted; AP (all joints ranked) {base['total']['ap']:.1f}")
        print(f"{'joint threshold':>16}{'MOTA':>8}{'MOTA prec':>10}{'MOTA rec':>9}{'AP if dropped first':>21}")
        row = []
        for t in THRESHOLDS:
            r = evaluate_set(items, preds[name], mota_joint_threshold=t)
            d = evaluate_set(items, preds[name], drop_below=t)
            assert abs(d["total"]["mota"] - r["total"]["mota"]) < 1e-9  # the threshold = dropping, for MOTA
            tot = r["total"]
            print(f"{t:16.2f}{tot['mota']:8.1f}{tot['precision']:10.1f}{tot['recall']:9.1f}{d['total']['ap']:21.1f}")
            row.append(tot["mota"])
        mota[name] = np.array(row)
    print("\nMOTA loss against each set's best threshold (points)")
    print(f"{'joint threshold':>16}" + "".join(f"{n:>13}" for n in mota) + f"{'worst':>8}")
    worst = np.max([m.max() - m for m in mota.values()], axis=0)
    for i, t in enumerate(THRESHOLDS):
        print(f"{t:16.2f}" + "".join(f"{m.max() - m[i]:13.1f}" for m in mota.values()) + f"{worst[i]:8.1f}")
    best = int(np.argmin(worst))
    print(f"\nchosen MOTA joint threshold {THRESHOLDS[best]:.2f} (worst loss {worst[best]:.1f} MOTA points; "
          + ", ".join(f"{n} best {THRESHOLDS[int(np.argmax(m))]:.2f}" for n, m in mota.items()) + ")")


if __name__ == "__main__":
    main()
