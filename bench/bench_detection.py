"""Detection benchmark on every real annotated image set: the ``cpu`` preset's detector settings.

Run: ``nice python bench/bench_detection.py [--configs cpu,s0.25,yolox,flip,t512,o0.3,...]``
(the old size / tiling names still work: ``320``, ``960``, ``tiles640@320[-wbf]``).

Image sets (all real, ``../shared/data``), recall / precision at IoU 0.5 (greedy by score):

- ``MOT17``: the first 4-8 frames of MOT17-02/04/05/09 (1920x1080, MOT17-05 640x480) with
  their official ground truth, evaluated as MOTChallenge does
  (:func:`fiftyone_posetrack.eval.mot.evaluate_mot_sequences`: pedestrians (class 1) with flag
  1 only; detections matching a distractor (classes 2, 7, 8, 12) are removed; Hungarian
  matching). Each detection gets its own id, so recall and precision are the detection ones;
- ``PoseTrack18``: the 3 annotated val frames of ``keypoints/posetrack18`` (gt boxes = the box
  of each person's visible keypoints grown by 10 % per side; boxes with fewer than 3 visible
  keypoints ignored, and unmatched detections centred in an ignore region are not false);
- ``COCO``: the 4 COCO val images of ``keypoints/coco/test_coco.json`` (every person box;
  ``iscrowd`` boxes ignored);
- ``CrowdPose``: the 2 images of ``keypoints/crowdpose/test_crowdpose.json`` (idem);
- ``video``: ``video/one-by-one-person-detection.mp4`` (no ground truth): detections on 15
  sampled frames against the people counted by eye (``VIDEO_COUNTS``); "recall" is
  ``sum(min(detections, people)) / sum(people)``, "precision" ``... / sum(detections)``.

Configurations: ``cpu`` is today's preset (its detection options: RTMDet-nano on 640 px tiles,
overlap 0.2, NMS merge, plus the whole frame, each at the model's 320 input, boxes >= 0.3);
other names change it with ``_``-joined tokens: ``s0.25`` score threshold, ``yolox`` fuse
YOLOX-nano 1:1 by WBF (the pipeline's ``detector2``), ``flip`` test-time horizontal flip (the
model and its mirrored run fused 1:1 by WBF, inside each tile), ``t512`` tile size (``t0``: no
tiles), ``o0.3`` tile overlap, ``wbf`` tile merge, ``i640`` input size. Every detector except
``flip`` is built by the pipeline's own ``build_detector``.

Printed: per set recall / precision / median ms per frame, the recall loss of each
configuration against ``cpu`` on every set (the worst one decides: a default must not lose more
than 0.03 anywhere), and whether MOT17 reaches recall >= 0.70 at precision >= 0.70.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import cv2
import numpy as np

from fiftyone_posetrack.detection import box_iou
from fiftyone_posetrack.detection.base import Detector
from fiftyone_posetrack.detection.fusion import FusedDetector
from fiftyone_posetrack.detection.tiling import TiledDetector
from fiftyone_posetrack.eval.mot import evaluate_mot_sequences
from fiftyone_posetrack.presets import CPU_TUNED
from fiftyone_posetrack.types import FrameDetections

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
SEQUENCES = ("MOT17-02", "MOT17-04", "MOT17-05", "MOT17-09")
DEFAULT_CONFIGS = "cpu,s0.25,s0.2,yolox,yolox_s0.25,flip,flip_s0.25,t512,t512_s0.25,o0.3,o0.3_s0.25,wbf"

#: people visible (any part) in sampled frames of the real video, counted by eye
#: with the image viewer; frame index -> count
VIDEO_COUNTS = {
    50: 0, 140: 1, 230: 1, 320: 1, 410: 1, 500: 0, 590: 1, 680: 1,
    770: 1, 860: 1, 950: 1, 1040: 1, 1130: 1, 1220: 0, 1310: 1,
}  # fmt: skip


def parse_config(name: str) -> dict:
    """A configuration name -> pipeline detection options (over the ``cpu`` preset's) and ``flip``."""
    opts = {k: CPU_TUNED[k] for k in ("detector", "det_input_size", "det_tile_size", "det_tile_overlap",
                                      "det_tile_merge", "det_score_threshold")}  # fmt: skip
    opts["detector2"], flip = None, False
    opts["merge_iou"], opts["model_nms_iou"] = 0.5, None
    if name == "cpu":
        return dict(opts, flip=flip)
    if name[0].isdigit() or name.startswith("tiles"):  # the former names: 960, tiles640@320[-wbf]
        core = name.removesuffix("-wbf")
        opts["det_tile_merge"] = "wbf" if name.endswith("-wbf") else "nms"
        if core.startswith("tiles"):
            tile, _, size = core[5:].partition("@")
            opts.update(det_tile_size=int(tile), det_input_size=int(size or 0))
        else:
            opts.update(det_tile_size=0, det_input_size=int(core))
        return dict(opts, flip=flip)
    for tok in name.split("_"):
        if tok == "yolox":
            opts["detector2"] = "yolox-nano"
        elif tok == "flip":
            flip = True
        elif tok == "wbf":
            opts["det_tile_merge"] = "wbf"
        elif tok[0] == "s":
            opts["det_score_threshold"] = float(tok[1:])
        elif tok[0] == "t":
            opts["det_tile_size"] = int(tok[1:])
        elif tok[0] == "o":
            opts["det_tile_overlap"] = float(tok[1:])
        elif tok[0] == "i":
            opts["det_input_size"] = int(tok[1:])
        elif tok[0] == "m":
            opts["merge_iou"] = float(tok[1:])
        elif tok[0] == "n":
            opts["model_nms_iou"] = float(tok[1:])
        else:
            raise SystemExit(f"unknown configuration token {tok!r} in {name!r}")
    return dict(opts, flip=flip)


class MirroredDetector(Detector):
    """Runs ``inner`` on the mirrored frames and mirrors its boxes back (``x -> W - x``)."""

    def __init__(self, inner: Detector):
        super().__init__(inner.score_threshold, inner.device, inner.batch_size)
        self.inner = inner

    def _detect_batch(self, frames):
        out = []
        for f, d in zip(frames, self.inner.detect([np.ascontiguousarray(f[:, ::-1]) for f in frames])):
            w = f.shape[1]
            b = d.boxes.copy()
            b[:, [0, 2]] = w - d.boxes[:, [2, 0]]
            out.append(FrameDetections(b, d.scores))
        return out


def build(name: str, models_dir: str, score: float | None = None):
    """The detector of a configuration (the pipeline's ``build_detector``; ``flip``: WBF of the
    model and its mirrored run, inside the tiles)."""
    from fiftyone_posetrack.pipeline import PipelineConfig
    from fiftyone_posetrack.pipeline.core import FUSION_MEMBER_THRESHOLD, build_detector

    opts = parse_config(name)
    flip, merge_iou, model_nms_iou = opts.pop("flip"), opts.pop("merge_iou"), opts.pop("model_nms_iou")
    if model_nms_iou is not None:
        models_dir = with_model_nms(models_dir, opts["detector"], model_nms_iou)
    if score is not None and not any(t.startswith("s") for t in name.split("_")):
        opts["det_score_threshold"] = score
    config = PipelineConfig(models_dir=models_dir, device="cpu", batch_size=8, **opts)
    # tiles as the pipeline applies a preset's tile size: frames no larger than a tile are not tiled
    if not flip:
        detector = build_detector(config.replace(det_tile_size=0))
    else:
        member = build_detector(config.replace(det_tile_size=0, det_score_threshold=FUSION_MEMBER_THRESHOLD))
        detector = FusedDetector([member, MirroredDetector(member)], weights=[1.0, 1.0],
                                 score_threshold=opts["det_score_threshold"], batch_size=8)  # fmt: skip
    if opts["det_tile_size"]:
        detector = TiledDetector(detector, opts["det_tile_size"], opts["det_tile_overlap"], opts["det_tile_merge"],
                                 iou_threshold=merge_iou, strict=False)  # fmt: skip
    return detector


def with_model_nms(models_dir: str, detector: str, iou: float) -> str:
    """A temporary models folder whose ``detector`` ONNX has its NonMaxSuppression IoU set to ``iou``."""
    import atexit
    import os
    import shutil
    import tempfile

    import onnx
    from onnx import numpy_helper

    src = pathlib.Path(models_dir)
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-det-nms-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for d in src.iterdir():
        if d.name != detector:
            os.symlink(d, root / d.name)
    shutil.copytree(src / detector, root / detector, ignore=shutil.ignore_patterns("*.onnx"))
    for path in (src / detector).glob("*.onnx"):
        model = onnx.load(path)
        consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
        nodes = [n for n in model.graph.node if n.op_type == "NonMaxSuppression"]
        if not nodes:
            raise SystemExit(f"{path} has no NonMaxSuppression node: the n token applies to RTMDet's export only")
        for node in nodes:  # inputs: boxes, scores, max_output_boxes_per_class, iou_threshold, score_threshold
            tensor = consts[node.input[3]].attribute[0].t
            tensor.CopyFrom(numpy_helper.from_array(np.array([iou], dtype=np.float32), tensor.name))
        onnx.save(model, root / detector / path.name)
    return str(root)


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


def false_positives(detector, data) -> None:
    """Prints what the MOT17 false positives of ``detector`` are (see the module docstring)."""
    from fiftyone_posetrack.eval.mot import DISTRACTOR_CLASSES

    kinds = {"inside a pedestrian's box (a visible part)": 0, "on a distractor's box": 0,
             "overlapping a pedestrian (IoU 0.1-0.5)": 0, "on nobody": 0}
    total = 0
    for frames, gt in data.values():
        for f, d in enumerate(run_detector(detector, frames)[0], start=1):
            g = gt[gt[:, 0] == f]
            boxes = np.c_[g[:, 2:4], g[:, 2:4] + g[:, 4:6]]
            ped = (g[:, 7] == 1) & (g[:, 6] == 1)
            iou = box_iou(d.boxes, boxes)
            distractor = np.isin(g[:, 7], DISTRACTOR_CLASSES)
            for i in np.flatnonzero(greedy_match(iou, d.scores, eligible=ped) < 0):
                b = d.boxes[i]
                wh = np.clip(np.minimum(b[2:], boxes[:, 2:]) - np.maximum(b[:2], boxes[:, :2]), 0, None)
                inside = wh.prod(axis=1) / max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
                if len(g) and (iou[i][distractor] >= 0.5).any():
                    continue  # a distractor's match: removed by the evaluation (approximately as it does)
                total += 1
                if len(g) and (inside[ped] >= 0.8).any():
                    kinds["inside a pedestrian's box (a visible part)"] += 1
                elif len(g) and (inside[distractor] >= 0.8).any():
                    kinds["on a distractor's box"] += 1
                elif len(g) and (iou[i][ped] >= 0.1).any():
                    kinds["overlapping a pedestrian (IoU 0.1-0.5)"] += 1
                else:
                    kinds["on nobody"] += 1
    print(f"\nMOT17 false positives of the first configuration: {total}")
    for kind, n in kinds.items():
        print(f"  {kind}: {n} ({n / max(total, 1):.0%})")


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


def load_coco_boxes(path: pathlib.Path):
    """Person boxes of a COCO-format file: (frames, gt boxes, ignored flags (iscrowd), no regions)."""
    data = json.loads(path.read_text())
    frames, boxes, ignore, regions = [], [], [], []
    for image in data["images"]:
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        b = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
        frames.append(cv2.imread(str(path.parent / pathlib.Path(image["file_name"]).name)))
        boxes.append(np.asarray(b, dtype=np.float64).reshape(-1, 4))
        ignore.append(np.array([bool(a.get("iscrowd")) for a in anns], dtype=bool))
        regions.append([])
    return frames, boxes, ignore, regions


def greedy_match(iou: np.ndarray, scores: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """For each detection (rows of ``iou``), by descending score, the free ground-truth box of highest
    IoU >= 0.5 among ``eligible`` columns (all by default), or -1."""
    match = np.full(len(iou), -1, dtype=np.int64)
    if iou.shape[1] == 0:
        return match
    taken = np.zeros(iou.shape[1], dtype=bool) if eligible is None else ~np.asarray(eligible, dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        cand = np.where(~taken & (iou[i] >= 0.5), iou[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= 0.5:
            taken[j] = True
            match[i] = j
    return match


def evaluate_boxes(dets, boxes, ignore, regions) -> tuple[float, float]:
    """Recall / precision at IoU 0.5, greedy by score.

    A detection matching an ignored gt box, or unmatched with its centre in an
    ignore region (the unannotated crowd of PoseTrack), is neither true nor false.
    """
    tp = fp = n_gt = 0
    for d, g, ig, polys in zip(dets, boxes, ignore, regions):
        n_gt += int((~ig).sum())
        match = greedy_match(box_iou(d.boxes, g), d.scores)
        tp += int(((match >= 0) & ~ig[np.maximum(match, 0)]).sum()) if len(g) else 0
        for i in np.flatnonzero(match < 0):
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
    parser.add_argument("--models-dir", default=str(SHARED / "models"))
    parser.add_argument("--score", type=float, default=None, help="score threshold of configurations without s...")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated configurations")
    parser.add_argument("--false-positives", action="store_true", help="what the first configuration's MOT17 FPs are")
    args = parser.parse_args(argv)
    if not (SHARED / "data" / "mot17-frames").exists():
        print(f"skipped: {SHARED / 'data' / 'mot17-frames'} is absent (the shared data folder)")
        return 0
    names = args.configs.split(",")
    mot = load_mot17(SHARED / "data" / "mot17-frames")
    kp = SHARED / "data" / "keypoints"
    box_sets = {
        "PoseTrack18": load_posetrack18(kp / "posetrack18"),
        "COCO": load_coco_boxes(kp / "coco" / "test_coco.json"),
        "CrowdPose": load_coco_boxes(kp / "crowdpose" / "test_crowdpose.json"),
    }
    indices = sorted(VIDEO_COUNTS)
    video_frames = read_video_frames(SHARED / "data" / "video" / "one-by-one-person-detection.mp4", indices)
    counts = np.array([VIDEO_COUNTS[i] for i in indices])
    print("MOT17 frames: " + ", ".join(f"{s} {len(v[0])}" for s, v in mot.items()) + "; "
          + ", ".join(f"{k} {len(v[0])} images, {int(sum((~ig).sum() for ig in v[2]))} people"
                      for k, v in box_sets.items()) + f"; video {len(indices)} frames")  # fmt: skip
    results, seq = {}, {}
    for name in names:
        detector = build(name, args.models_dir, args.score)
        m = evaluate_mot17(detector, mot)
        seq[name] = m
        res = {"MOT17": m["COMBINED"]}
        for set_name, (frames, boxes, ignore, regions) in box_sets.items():
            dets, ms = run_detector(detector, frames)
            rec, prec = evaluate_boxes(dets, boxes, ignore, regions)
            res[set_name] = dict(recall=rec, precision=prec, ms=ms)
        vd, vms = run_detector(detector, video_frames)
        n = np.array([len(d) for d in vd])
        hit = np.minimum(n, counts).sum()
        res["video"] = dict(recall=float(hit / counts.sum()), precision=float(hit / max(n.sum(), 1)), ms=vms)
        results[name] = res
        print(f"  {name}: MOT17 recall {res['MOT17']['recall']:.3f} precision {res['MOT17']['precision']:.3f}",
              file=sys.stderr, flush=True)  # fmt: skip
    print_table("MOT17 frames per sequence (MOTChallenge detection recall / precision, IoU 0.5)", names, seq,
                [*SEQUENCES, "COMBINED"])  # fmt: skip
    sets = list(next(iter(results.values())))
    print_table("every image set", names, results, sets)
    base = results[names[0]]
    print(f"\nrecall loss against {names[0]} per set (positive = lost), worst, and the MOT17 target "
          "(recall >= 0.70 at precision >= 0.70)")
    print(f"{'config':<18}" + "".join(f"{k:>13}" for k in sets) + f"{'worst':>8}  MOT17 target")
    for name in names:
        loss = {k: base[k]["recall"] - results[name][k]["recall"] for k in sets}
        m = results[name]["MOT17"]
        ok = m["recall"] >= 0.70 and m["precision"] >= 0.70
        print(f"{name:<18}" + "".join(f"{loss[k]:13.3f}" for k in sets) + f"{max(loss.values()):8.3f}  "
              + ("yes" if ok else "no"))  # fmt: skip
    if args.false_positives:
        false_positives(build(names[0], args.models_dir, args.score), mot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
