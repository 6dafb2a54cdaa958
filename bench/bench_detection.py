"""Detection benchmark for crowds of small people: input size and sliced inference.

Run: ``python bench/bench_detection.py [--detector rtmdet-nano-person] [--score 0.3]
[--configs 320,640,960,1280,tiles640@320,...] [--heldout]``

(a) ``../shared/data/mot17-frames``: the first 4-8 frames of MOT17-02/04/05/09
    (1920x1080, MOT17-05 640x480) with their official ground truth, evaluated
    as MOTChallenge does (:func:`fiftyone_posetrack.eval.mot.evaluate_mot_sequences`:
    pedestrians (class 1) with flag 1 only; detections matching a distractor
    (classes 2, 7, 8, 12) are removed; Hungarian matching at IoU >= 0.5).
    Each detection gets its own id, so recall and precision are the detection
    ones. Printed per sequence and combined (pooled over all frames), with
    ms/frame (median wall time of ``detect`` on one frame at a time, this machine; the
    2 cores are shared, so the median, not the mean), for
    every configuration side by side; ratios are against the first one (320,
    the model's own size).
(b) ``--heldout``: the same configurations on frames never used to choose
    them: the 3 annotated PoseTrack18 val frames in
    ``../shared/data/keypoints/posetrack18`` (1920x1080; gt boxes = the box of
    each person's visible keypoints grown by 10 % per side, boxes with fewer
    than 3 visible keypoints ignored (a detection matching one is neither
    true nor false), as the pose track challenge ignores them); and the real
    video ``../shared/data/video/one-by-one-person-detection.mp4`` (no ground
    truth): detections per frame on 15 sampled frames against the number of
    people counted by eye in those frames (``VIDEO_COUNTS``; frame 230 shows
    only a head and shoulders entering at the bottom edge). Its "recall" is
    ``sum(min(detections, people)) / sum(people)`` and its "precision"
    ``sum(min(detections, people)) / sum(detections)`` (counts, not boxes).

Configuration names: ``N`` = input longer side N px; ``tilesT@N`` = tiles of T
px (overlap 0.2, NMS) plus the whole frame, each at input N; ``tilesT@N-wbf``
merges with WBF.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import cv2
import numpy as np

from fiftyone_posetrack.detection import box_iou, make_detector
from fiftyone_posetrack.detection.tiling import TiledDetector
from fiftyone_posetrack.eval.mot import evaluate_mot_sequences
from fiftyone_posetrack.models import resolve_model_spec

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
SEQUENCES = ("MOT17-02", "MOT17-04", "MOT17-05", "MOT17-09")
DEFAULT_CONFIGS = "320,640,960,1280,tiles640@320,tiles640@320-wbf,tiles640@640"

#: people visible (any part) in sampled frames of the real video, counted by eye
#: with the image viewer; frame index -> count
VIDEO_COUNTS = {
    50: 0, 140: 1, 230: 1, 320: 1, 410: 1, 500: 0, 590: 1, 680: 1,
    770: 1, 860: 1, 950: 1, 1040: 1, 1130: 1, 1220: 0, 1310: 1,
}  # fmt: skip


def parse_config(name: str) -> dict:
    """``"960"`` -> input 960; ``"tiles640@320[-wbf]"`` -> tiles 640 px at input 320."""
    merge = "wbf" if name.endswith("-wbf") else "nms"
    core = name.removesuffix("-wbf")
    if core.startswith("tiles"):
        tile, _, size = core[5:].partition("@")
        return dict(input_size=int(size or 0), tile_size=int(tile), merge=merge)
    return dict(input_size=int(core), tile_size=0, merge=merge)


def build(spec: str, score: float, input_size: int, tile_size: int, merge: str):
    kwargs = dict(score_threshold=score, device="cpu", batch_size=8)
    if input_size:
        kwargs["input_size"] = input_size
    detector = make_detector(spec, **kwargs)
    if tile_size:
        detector = TiledDetector(detector, tile_size, 0.2, merge)
    return detector


def load_mot17(root: pathlib.Path) -> dict:
    data = {}
    for seq in SEQUENCES:
        d = root / seq
        frames = sorted((d / "img1").glob("*.jpg"))
        gt = np.loadtxt(d / "gt" / "gt.txt", delimiter=",", ndmin=2)
        data[seq] = ([cv2.imread(str(f)) for f in frames], gt[gt[:, 0] <= len(frames)])
    return data


def run_detector(detector, frames) -> tuple[list, float]:
    """Detections of each frame and the median ms per frame (robust to other jobs on the cores)."""
    detector.detect(frames[:1])  # warm-up (session, first-run allocations)
    out, times = [], []
    for frame in frames:
        start = time.perf_counter()
        out.append(detector.detect([frame])[0])
        times.append(time.perf_counter() - start)
    return out, float(np.median(times)) * 1000


def to_mot(dets: list) -> np.ndarray:
    rows, next_id = [], 1
    for f, d in enumerate(dets, start=1):
        for box, score in zip(d.boxes, d.scores):
            rows.append([f, next_id, box[0], box[1], box[2] - box[0], box[3] - box[1], score, -1, -1])
            next_id += 1
    return np.asarray(rows, dtype=np.float64).reshape(-1, 9)


def evaluate_mot17(detector, data) -> dict:
    sequences, ms, results = {}, {}, {}
    for seq, (frames, gt) in data.items():
        dets, ms[seq] = run_detector(detector, frames)
        sequences[seq] = (gt, to_mot(dets))
    metrics = evaluate_mot_sequences(sequences)  # OVERALL: all frames pooled
    n_all = sum(len(v[0]) for v in data.values())
    ms["OVERALL"] = sum(ms[s] * len(data[s][0]) for s in data) / n_all
    for name, m in metrics.items():
        results["COMBINED" if name == "OVERALL" else name] = dict(
            recall=m["recall"], precision=m["precision"], ms=ms[name]
        )
    return results


# -- held-out frames -------------------------------------------------------------------------


def load_posetrack18(root: pathlib.Path):
    """The annotated PoseTrack18 val frames: (frames, gt boxes, gt ignore flags, ignore polygons)."""
    frames, boxes, ignore, regions = [], [], [], []
    data = json.loads((root / "annotations" / "test_posetrack18_val.json").read_text())
    for image in data["images"]:
        path = root / image["file_name"]
        if not image.get("is_labeled", True) or not path.exists():
            continue
        b, ig = [], []
        for a in (a for a in data["annotations"] if a["image_id"] == image["id"]):
            kp = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            vis = kp[kp[:, 2] > 0, :2]
            if len(vis) == 0:
                continue
            (x1, y1), (x2, y2) = vis.min(axis=0), vis.max(axis=0)
            pad_w, pad_h = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
            b.append([x1 - pad_w, y1 - pad_h, x2 + pad_w, y2 + pad_h])
            ig.append(len(vis) < 3)
        polys = [
            np.stack([xs, ys], axis=1).astype(np.float32)
            for xs, ys in zip(image.get("ignore_regions_x", []), image.get("ignore_regions_y", []))
            if len(xs) >= 3
        ]
        frames.append(cv2.imread(str(path)))
        boxes.append(np.asarray(b).reshape(-1, 4))
        ignore.append(np.asarray(ig, dtype=bool))
        regions.append(polys)
    return frames, boxes, ignore, regions


def evaluate_boxes(dets, boxes, ignore, regions) -> tuple[float, float]:
    """Recall / precision at IoU 0.5, greedy by score.

    A detection matching an ignored gt box, or unmatched with its centre in an
    ignore region (the unannotated crowd of PoseTrack), is neither true nor false.
    """
    tp = fp = n_gt = 0
    for d, g, ig, polys in zip(dets, boxes, ignore, regions):
        n_gt += int((~ig).sum())
        taken = np.zeros(len(g), dtype=bool)
        iou = box_iou(d.boxes, g)
        for i in np.argsort(-d.scores, kind="stable"):
            cand = np.where(~taken & (iou[i] >= 0.5), iou[i], -1.0)
            j = int(np.argmax(cand)) if len(g) else -1
            if j >= 0 and cand[j] >= 0.5:
                taken[j] = True
                tp += int(not ig[j])
                continue
            cx, cy = (d.boxes[i, :2] + d.boxes[i, 2:]) / 2
            if not any(cv2.pointPolygonTest(p, (float(cx), float(cy)), False) >= 0 for p in polys):
                fp += 1
    return tp / max(n_gt, 1), tp / max(tp + fp, 1)


def read_video_frames(path: pathlib.Path, indices) -> list:
    cap = cv2.VideoCapture(str(path))
    frames = []
    for i in indices:
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = cap.read()
        if not ok:
            raise RuntimeError(f"cannot read frame {i} of {path}")
        frames.append(frame)
    cap.release()
    return frames


# -- printing --------------------------------------------------------------------------------


def print_table(title: str, names: list, results: dict, keys: list) -> None:
    print(f"\n{title}")
    base = results[names[0]]
    header = f"{'config':<18}" + "".join(f"{k:>26}" for k in keys)
    print(header)
    print(f"{'':<18}" + "".join(f"{'recall  prec   ms/frame':>26}" for _ in keys))
    for name in names:
        cells = []
        for k in keys:
            r = results[name][k]
            cells.append(f"{r['recall']:6.3f} {r['precision']:6.3f} {r['ms']:8.1f}".rjust(26))
        print(f"{name:<18}" + "".join(cells))
    print("ratios vs " + names[0] + " (recall, precision, time) on " + keys[-1] + ":")
    for name in names:
        r, b = results[name][keys[-1]], base[keys[-1]]
        print(
            f"  {name:<18} recall x{r['recall'] / max(b['recall'], 1e-9):5.2f}  "
            f"precision x{r['precision'] / max(b['precision'], 1e-9):5.2f}  time x{r['ms'] / b['ms']:5.2f}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detector", default="rtmdet-nano-person", help="model name or spec")
    parser.add_argument("--models-dir", default=str(SHARED / "models"))
    parser.add_argument("--score", type=float, default=0.3, help="detection score threshold")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated configurations")
    parser.add_argument("--heldout", action="store_true", help="also PoseTrack18 frames and the real video")
    args = parser.parse_args(argv)
    if not (SHARED / "data" / "mot17-frames").exists():
        print(f"skipped: {SHARED / 'data' / 'mot17-frames'} is absent (the shared data folder)")
        return 0
    spec = resolve_model_spec(args.detector, args.models_dir)
    names = args.configs.split(",")
    data = load_mot17(SHARED / "data" / "mot17-frames")
    print(f"detector {spec}, score >= {args.score}, frames: " + ", ".join(f"{s} {len(v[0])}" for s, v in data.items()))
    results = {}
    for name in names:
        detector = build(spec, args.score, **parse_config(name))
        results[name] = evaluate_mot17(detector, data)
        print(f"  {name}: combined recall {results[name]['COMBINED']['recall']:.3f}", file=sys.stderr)
    print_table("MOT17 frames (MOTChallenge detection recall / precision, IoU 0.5)", names, results, [*SEQUENCES, "COMBINED"])

    if args.heldout:
        pt_frames, pt_boxes, pt_ignore, pt_regions = load_posetrack18(SHARED / "data" / "keypoints" / "posetrack18")
        video = SHARED / "data" / "video" / "one-by-one-person-detection.mp4"
        indices = sorted(VIDEO_COUNTS)
        video_frames = read_video_frames(video, indices) if indices else []
        counts = np.array([VIDEO_COUNTS[i] for i in indices])
        held = {}
        for name in names:
            detector = build(spec, args.score, **parse_config(name))
            dets, ms = run_detector(detector, pt_frames)
            rec, prec = evaluate_boxes(dets, pt_boxes, pt_ignore, pt_regions)
            held[name] = {"PoseTrack18": dict(recall=rec, precision=prec, ms=ms)}
            if indices:
                vd, vms = run_detector(detector, video_frames)
                n = np.array([len(d) for d in vd])
                held[name]["video"] = dict(
                    recall=float(np.minimum(n, counts).sum() / counts.sum()),
                    precision=float(np.minimum(n, counts).sum() / max(n.sum(), 1)),
                    ms=vms,
                )
        n_gt = int(sum((~ig).sum() for ig in pt_ignore))
        print_table(
            f"held out: PoseTrack18 val ({len(pt_frames)} frames, {n_gt} people, gt boxes from keypoints)"
            + (f"; video: {len(indices)} frames, count-based (min(dets, people) / people, / dets)" if indices else ""),
            names, held, list(next(iter(held.values()))),
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
