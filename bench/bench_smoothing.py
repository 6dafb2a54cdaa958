"""Pose smoothing on real footage: a ground-truth-free jitter metric and AP, for every option.

    nice python bench/bench_smoothing.py [--start 100] [--frames 300] [--synthetic]

Two numbers per option, both on real frames (``../shared``):

- **jitter** (no ground truth needed): the mean keypoint acceleration
  ``|J(k+1) - 2 J(k) + J(k-1)|`` of each tracked person, over the joints
  present in three consecutive frames of the same track, divided by the
  person's tracked box height in frame ``k`` (units: box heights / frame^2,
  printed x 1000). Measured on ``--frames`` frames from ``--start`` of the real
  video ``data/video/one-by-one-person-detection.mp4`` (768x432, 10 fps, one or
  two people) and on the 5 consecutive frames of the PoseTrack18 test video in
  ``data/keypoints/posetrack18/videos`` (a crowd, no annotations), both run
  through the pipeline's defaults (``cpu`` preset: detection, ByteTrack + ReID,
  MoveNet lightning without its test-time flip) with pose smoothing off; each
  option then smooths the same tracked poses (the flip options: MoveNet with
  flip on the same tracked boxes). ``lag`` is the mean distance of the smoothed joints to the
  unsmoothed ones (box heights x 1000): jitter alone rewards over-smoothing,
  which trails the limbs (for the flip options it is their distance to the
  unflipped poses, not a lag).
- **AP** (PoseTrack AP, every joint ranked, PCKh 0.5; COCO / CrowdPose with the
  estimated head box of ``bench/bench_pose_threshold.py``) on the annotated
  people of ``data/keypoints`` (people boxes from the same detector). What it
  can and cannot show: the 3 annotated PoseTrack18 val frames, the COCO and the
  CrowdPose images are single frames, with no neighbour frames in the shared
  data (the only consecutive PoseTrack18 frames, ``videos/``, are test frames
  without annotations). A temporal smoother run on them has no neighbours, so
  it returns the unsmoothed joints: its AP equals "none" by construction (it is
  computed that way here, not assumed). Only per-frame options (MoveNet
  test-time flip) can change AP here. A temporal option therefore cannot be
  shown to improve AP on the shared data, and the pipeline's default is no pose
  smoothing (docs/pose.md).

Options: none; flow smoothing (``J = a*J(k-1->k) + a*J(k+1->k) + (1-2a)*J(k)``,
Lucas-Kanade) at ``a = 0.25`` (the former default) and ``1/3``; with
confidence weighting; smoothing only joints scoring below 0.5; the LK
forward-backward check at 0.5 px and off (1 px is the default); neighbours
limited to 0.05 person heights; One-Euro; MoveNet test-time flip, alone and
with flow smoothing.

``--synthetic`` prints the synthetic-crowd tables instead (mechanics: exact
joints plus Gaussian noise, error to the exact joints; and box propagation,
the box-smoothing stage's flow step, against the exact boxes).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import cv2
import numpy as np

from fiftyone_posetrack.flow import to_gray
from fiftyone_posetrack.pose.smoothing import FlowPoseSmoother, OneEuroPoseSmoother
from fiftyone_posetrack.types import FramePoses

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
VIDEO = SHARED / "data" / "video" / "one-by-one-person-detection.mp4"
PT_TEST = SHARED / "data" / "keypoints" / "posetrack18" / "videos" / "000001_mpiinew_test"

#: name -> (smoother factory or None, uses the flipped poses)
OPTIONS = {
    "none": (None, False),
    "flow a=0.25 (former default)": (lambda fps: FlowPoseSmoother(alpha=0.25), False),
    "flow a=1/3": (lambda fps: FlowPoseSmoother(alpha=1 / 3), False),
    "flow a=0.25, confidence-weighted": (lambda fps: FlowPoseSmoother(alpha=0.25, weighting="confidence"), False),
    "flow a=0.25, joints < 0.5 only": (lambda fps: FlowPoseSmoother(alpha=0.25, smooth_below=0.5), False),
    "flow a=0.25, FB check 0.5 px": (lambda fps: FlowPoseSmoother(alpha=0.25, fb_threshold=0.5), False),
    "flow a=0.25, FB check off": (lambda fps: FlowPoseSmoother(alpha=0.25, fb_threshold=1e6), False),
    "flow a=0.25, shift <= 0.05 h": (lambda fps: FlowPoseSmoother(alpha=0.25, max_shift=0.05), False),
    "flow a=1/3, conf + shift <= 0.05 h": (
        lambda fps: FlowPoseSmoother(alpha=1 / 3, weighting="confidence", max_shift=0.05), False),
    "One-Euro (defaults)": (lambda fps: OneEuroPoseSmoother(fps=fps), False),
    "MoveNet flip": (None, True),
    "MoveNet flip + flow a=0.25": (lambda fps: FlowPoseSmoother(alpha=0.25), True),
}  # fmt: skip


def smooth(make, grays: list[np.ndarray], poses: list[FramePoses], fps: float) -> list[FramePoses]:
    """Runs one option over a sequence (None: the poses as they are)."""
    if make is None:
        return list(poses)
    smoother = make(fps)
    if isinstance(smoother, FlowPoseSmoother):
        out = [smoother.push(g, p) for g, p in zip(grays, poses)]
        return [p for p in out if p is not None] + [smoother.flush()]
    return [smoother.update(p, k + 1) for k, p in enumerate(poses)]


def jitter_and_lag(poses: list[FramePoses], raw: list[FramePoses]) -> tuple[float, float, int]:
    """Mean acceleration and mean distance to ``raw``, in box heights (see the module docs)."""
    acc, lag = [], []
    for k in range(len(poses)):
        cur, ref = poses[k], raw[k]
        h = np.asarray(ref.boxes)[:, 3] - np.asarray(ref.boxes)[:, 1]
        d = np.linalg.norm(cur.keypoints - ref.keypoints, axis=-1) / h[:, None]
        lag.append(d[np.isfinite(d)])
        if 0 < k < len(poses) - 1:
            rows = {t: i for i, t in enumerate(cur.track_ids.tolist())}
            prev = {t: i for i, t in enumerate(poses[k - 1].track_ids.tolist())}
            nxt = {t: i for i, t in enumerate(poses[k + 1].track_ids.tolist())}
            for t, i in rows.items():
                if t in prev and t in nxt:
                    a = poses[k + 1].keypoints[nxt[t]] - 2 * cur.keypoints[i] + poses[k - 1].keypoints[prev[t]]
                    v = np.linalg.norm(a, axis=-1) / h[i]
                    acc.append(v[np.isfinite(v)])
    acc = np.concatenate(acc) if acc else np.zeros(0)
    lag = np.concatenate(lag) if lag else np.zeros(0)
    return float(acc.mean()) if len(acc) else float("nan"), float(lag.mean()) if len(lag) else 0.0, len(acc)


def track(frames_iter, fps: float, pipeline, flip_estimator):
    """The pipeline's tracked, unsmoothed poses, and MoveNet-flip poses of the same boxes."""
    frames, grays, raw, flipped = {}, [], [], []

    def batches():
        for n, f in frames_iter:
            frames[n] = f
            yield [n], [f]

    from fiftyone_posetrack.pipeline.core import sanitize_poses

    for res in pipeline.process(batches(), fps=fps):
        f = frames.pop(res.frame_number)
        grays.append(to_gray(f))
        raw.append(res.poses)
        kp, sc = flip_estimator.estimate(f, res.tracks.boxes)
        kp, sc = sanitize_poses(kp, sc, f.shape[1], f.shape[0])
        flipped.append(FramePoses(kp, sc, res.poses.track_ids, res.poses.boxes))
    return grays, raw, flipped


def real_sequences(args, pipeline, flip_estimator) -> dict:
    """``{name: (grays, raw poses, flipped poses, fps)}`` of the shared real footage."""
    from fiftyone_posetrack.video import VideoReader

    out = {}
    start = time.perf_counter()
    with VideoReader(VIDEO, start=args.start, stop=args.start + args.frames - 1) as reader:
        fps = reader.fps or 10.0
        out["real video"] = (*track(iter(reader), fps, pipeline, flip_estimator), fps)
    print(f"tracked {args.frames} frames of {VIDEO.name} in {time.perf_counter() - start:.0f} s")
    if PT_TEST.is_dir():
        imgs = sorted(PT_TEST.glob("*.jpg"))
        frames = ((k + 1, cv2.imread(str(p))) for k, p in enumerate(imgs))
        out["PoseTrack18 test"] = (*track(frames, 25.0, pipeline, flip_estimator), 25.0)
    return out


def ap_table(args, sets, preds_raw, preds_flip) -> dict:
    """``{option: {set: AP}}``: each option run on the annotated frames with the context they have (none)."""
    from bench_pose_threshold import evaluate_set

    out = {}
    for name, (make, use_flip) in OPTIONS.items():
        out[name] = {}
        for s, items in sets.items():
            preds = preds_flip[s] if use_flip else preds_raw[s]
            smoothed = []
            for (path, _), p in zip(items, preds):
                fp = FramePoses(p.keypoints, p.scores, p.track_ids, p.boxes)
                gray = to_gray(cv2.imread(str(path)))
                (q,) = smooth(make, [gray], [fp], 25.0)  # one frame: no temporal context exists
                smoothed.append(type(p)(p.frame_index, p.file_name, True, p.track_ids, p.boxes,
                                        np.where(np.isfinite(q.keypoints), q.keypoints, 0.0), p.visibility,
                                        scores=p.scores))  # fmt: skip
            out[name][s] = evaluate_set(items, smoothed)["total"]["ap"]
    return out


def real_main(args) -> None:
    from bench_pose_threshold import build_models, image_sets, predict

    from fiftyone_posetrack.pipeline import PipelineConfig
    from fiftyone_posetrack.pipeline.core import PoseTrackingPipeline, build_pose_estimator

    if not VIDEO.is_file():
        sys.exit(f"skipped: {VIDEO} is absent (the shared real video)")
    config = PipelineConfig(models_dir=args.models_dir, pose_smoothing="none", pose_flip=False, device="cpu")
    pipeline = PoseTrackingPipeline(config)
    flip = build_pose_estimator(config.replace(pose_flip=True))
    seqs = real_sequences(args, pipeline, flip)

    ns = argparse.Namespace(models_dir=args.models_dir, pose=config.pose, flip=False, boxes="detector")
    detector, pose = build_models(ns)
    sets = image_sets()
    preds_raw = predict(sets, "detector", pose, detector)
    pose.flip_test = True
    preds_flip = predict(sets, "detector", pose, detector)
    aps = ap_table(args, sets, preds_raw, preds_flip)

    print(f"\njitter = mean |J(k+1) - 2J(k) + J(k-1)| / box height, lag = mean |J - J unsmoothed| / box height "
          f"(both x 1000); AP = PoseTrack AP (all joints, PCKh 0.5) on single annotated frames")
    head = f"{'option':<36}"
    for s in seqs:
        head += f"{s[:16] + ' jitter':>24}{'lag':>6}"
    head += "".join(f"{'AP ' + s:>16}" for s in sets) + f"{'ms/frame':>10}"
    print(head)
    base = {}
    for name, (make, use_flip) in OPTIONS.items():
        line = f"{name:<36}"
        ms = 0.0
        for s, (grays, raw, flipped, fps) in seqs.items():
            t0 = time.perf_counter()
            out = smooth(make, grays, flipped if use_flip else raw, fps)
            if s == "real video":
                ms = 1000 * (time.perf_counter() - t0) / len(grays)
            j, lag, n = jitter_and_lag(out, raw)
            base.setdefault(s, j)
            line += f"{1000 * j:>17.2f} ({j / base[s]:4.2f}){1000 * lag:>6.1f}"
        line += "".join(f"{aps[name][s]:>16.1f}" for s in sets) + f"{ms:>10.2f}"
        print(line)
    print("\n(ratios are against 'none' in the same run; an option earns the default only by lowering jitter "
          "and raising AP on every set: temporal options cannot change AP on these single frames)")


# --------------------------------------------------------------------------- synthetic (mechanics)


def _frame_poses(kps: np.ndarray, scores: np.ndarray) -> FramePoses:
    present = np.isfinite(kps).any(axis=(1, 2))
    return FramePoses(kps[present], scores[present], np.flatnonzero(present) + 1)


def box_table(crowd, grays: list[np.ndarray]) -> None:
    """Box propagation (the box-smoothing stage's flow step) against the exact boxes."""
    from fiftyone_posetrack.tracking.box_smoothing import propagate_boxes

    boxes = crowd.boxes.astype(np.float64)  # (F, P, 4)
    seen = (crowd.visibility > 0.5) & np.isfinite(boxes).all(axis=-1)
    print(f"\n{'box propagation':<28}{'corner err px':>14}{'ms/frame':>10}")
    still = [np.abs(boxes[k - 1, s] - boxes[k, s]).mean(axis=1) for k in range(1, len(grays))
             for s in [seen[k - 1] & seen[k]]]  # fmt: skip
    print(f"{'unmoved box (baseline)':<28}{np.concatenate(still).mean():14.2f}{'':>10}")
    for grid, win in ((5, 21), (5, 11), (4, 21), (4, 11), (3, 11)):
        errs, seconds = [], 0.0
        for k in range(1, len(grays)):
            both = seen[k - 1] & seen[k]
            start = time.perf_counter()
            moved, ok = propagate_boxes(grays[k - 1], grays[k], boxes[k - 1, both], grid=grid, win_size=win)
            seconds += time.perf_counter() - start
            moved = np.where(ok[:, None], moved, boxes[k - 1, both])
            errs.append(np.abs(moved - boxes[k, both]).mean(axis=1))
        name = f"grid {grid}x{grid}, window {win} px"
        print(f"{name:<28}{np.concatenate(errs).mean():14.2f}{1000 * seconds / (len(grays) - 1):10.2f}")


def synthetic_main(args) -> None:
    from fiftyone_posetrack.synth import render_crowd
    from fiftyone_posetrack.video import VideoReader

    crowd = render_crowd(tempfile.mkdtemp(), people=args.people, frames=args.syn_frames, width=960, height=540,
                         seed=args.seed, overwrite=True)  # fmt: skip
    with VideoReader(crowd.video_path) as reader:
        grays = [to_gray(f) for _, f in reader]
    truth = crowd.keypoints.astype(np.float64)
    valid = (crowd.keypoint_flags > 0) & np.isfinite(truth).all(axis=-1)
    rng = np.random.default_rng(args.seed + 1)
    noisy = np.where(valid[..., None], truth + rng.normal(0, args.noise, truth.shape), np.nan)
    inputs = [_frame_poses(noisy[f], np.where(valid[f], 0.9, 0.0)) for f in range(len(grays))]
    print(f"synthetic crowd: {crowd.people} people, {len(grays)} frames, noise {args.noise} px (mechanics only)")
    print(f"{'method':<36}{'error px':>10}")
    for name, (make, use_flip) in OPTIONS.items():
        if use_flip:
            continue
        out = smooth(make, grays, inputs, 30.0)
        arr = np.full(truth.shape, np.nan)
        for f, p in enumerate(out):
            arr[f, p.track_ids - 1] = p.keypoints
        err = np.linalg.norm(arr - truth, axis=-1)[valid]
        print(f"{name:<36}{np.nanmean(err):10.2f}")
    box_table(crowd, grays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=int, default=100, help="first frame of the real video (1-based)")
    parser.add_argument("--frames", type=int, default=300, help="frames of the real video")
    parser.add_argument("--models-dir", default=str(SHARED / "models"))
    parser.add_argument("--synthetic", action="store_true", help="the synthetic-crowd mechanics table instead")
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--syn-frames", type=int, default=60)
    parser.add_argument("--noise", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    synthetic_main(args) if args.synthetic else real_main(args)


if __name__ == "__main__":
    main()
