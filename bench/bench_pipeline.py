"""Pipeline throughput against a naive loop on the same models, measured in one run.

    python bench/bench_pipeline.py [--models-dir ../shared/models] [--frames 120] [--people 20] [--repeat 3]
    python bench/bench_pipeline.py --memory          # peak RSS against video length

The naive loop is what a straightforward script does with the same models:
the detector called once per frame, the pose model once per box, and dense
Farneback optical flow over whole frames for the box and pose smoothing
(three flow fields per frame: previous->current for the boxes, previous->current
and next->current for the joints). Tracking is the same DeepSORT (motion only)
in both, so the comparison isolates how the frames and models are driven.

Each side runs ``--repeat`` times and keeps, per stage, its fastest run (the
short runs are otherwise at the mercy of a shared machine's noise).

Videos: the real ../shared video (people walk through a room) and a synthetic
crowd of ``--people`` people rendered on the spot.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline
from fiftyone_posetrack.pipeline.core import sanitize_poses
from fiftyone_posetrack.tracking.base import make_tracker
from fiftyone_posetrack.types import FramePoses
from fiftyone_posetrack.video import VideoReader

REPO = pathlib.Path(__file__).resolve().parents[1]


def farneback(prev_gray, gray):
    return cv2.calcOpticalFlowFarneback(prev_gray, gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def sample_flow(flow, points):
    """Moves points by a dense flow sampled at the nearest pixel."""
    h, w = flow.shape[:2]
    xy = np.nan_to_num(points).round().astype(int)
    xy[..., 0] = xy[..., 0].clip(0, w - 1)
    xy[..., 1] = xy[..., 1].clip(0, h - 1)
    return points + flow[xy[..., 1], xy[..., 0]]


def naive_loop(path: str, stop: int, detector, pose, alpha_box=0.5, alpha_pose=0.25) -> dict:
    """Per-frame detector, per-box pose, dense Farneback flow: the baseline."""
    timings = dict.fromkeys(("detection", "tracking", "pose", "flow"), 0.0)
    tracker = make_tracker("deepsort")
    prev_gray, prev_boxes, history = None, {}, []
    frames = 0
    with VideoReader(path, stop=stop) as reader:
        for _, frame in reader:
            frames += 1
            h, w = frame.shape[:2]
            t = time.perf_counter()
            dets = detector.detect([frame])[0]
            timings["detection"] += time.perf_counter() - t
            t = time.perf_counter()
            tracks = tracker.update(dets, frame)
            timings["tracking"] += time.perf_counter() - t
            t = time.perf_counter()
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if prev_gray is not None:
                flow = farneback(prev_gray, gray)
                for i, tid in enumerate(tracks.track_ids):
                    if tid in prev_boxes:
                        moved = sample_flow(flow, prev_boxes[tid].reshape(2, 2)).reshape(4)
                        tracks.boxes[i] = alpha_box * tracks.boxes[i] + (1 - alpha_box) * moved
            prev_boxes = dict(zip(tracks.track_ids.tolist(), tracks.boxes.copy()))
            timings["flow"] += time.perf_counter() - t
            t = time.perf_counter()
            kps = np.zeros((len(tracks), 17, 2))
            scores = np.zeros((len(tracks), 17))
            for i, box in enumerate(tracks.boxes):
                kps[i], scores[i] = (a[0] for a in pose.estimate(frame, box[None]))
            kps, scores = sanitize_poses(kps, scores, w, h)
            timings["pose"] += time.perf_counter() - t
            history.append((gray, FramePoses(kps, scores, tracks.track_ids)))
            t = time.perf_counter()
            if len(history) == 3:  # smooth the middle frame with flows from both neighbours
                (g0, p0), (g1, p1), (g2, p2) = history
                for g, p in ((g0, p0), (g2, p2)):
                    flow = farneback(g, g1)
                    rows = {int(t_): j for j, t_ in enumerate(p.track_ids)}
                    for i, tid in enumerate(p1.track_ids):
                        if int(tid) in rows:
                            moved = sample_flow(flow, p.keypoints[rows[int(tid)]])
                            p1.keypoints[i] = (1 - alpha_pose) * p1.keypoints[i] + alpha_pose * moved
                history.pop(0)
            timings["flow"] += time.perf_counter() - t
            prev_gray = gray
    timings["frames"] = frames
    return timings


def ours(path: str, stop: int, pipeline: PoseTrackingPipeline) -> dict:
    pipeline.timings.clear()
    with VideoReader(path, stop=stop) as reader:
        frames = sum(1 for _ in pipeline.process(reader.batches(pipeline.config.batch_size), fps=reader.fps))
    timings = dict(pipeline.timings)
    timings["frames"] = frames
    return timings


def best_of(runs: list[dict]) -> dict:
    """Per stage, the fastest of several runs' seconds."""
    return {k: min(r.get(k, 0.0) for r in runs) for k in runs[0]}


def report(name: str, naive: dict, fast: dict) -> None:
    n = naive.pop("frames")
    m = fast.pop("frames")
    tn, tf = sum(naive.values()), sum(fast.values())
    print(f"\n== {name}: {n} frames")
    print(f"{'stage':<16}{'naive s':>9}{'ours s':>9}")
    for stage in sorted(set(naive) | set(fast)):
        print(f"{stage:<16}{naive.get(stage, 0):9.2f}{fast.get(stage, 0):9.2f}")
    print(f"{'total':<16}{tn:9.2f}{tf:9.2f}")
    print(f"frames/s: naive {n / tn:.1f}, ours {m / tf:.1f}  ->  speed-up {tn / tf * n / m:.2f}x")
    flow = fast.get("pose_smoothing", 0.0)
    print(f"pose smoothing share of our pipeline time: {100 * flow / tf:.1f}%")


def memory(models_dir: str) -> None:
    """Peak RSS of a whole `posetrack run` against the video's length (fresh process each)."""
    print(f"{'frames':>8}{'peak RSS MiB':>14}")
    for frames in (50, 200, 800):
        out = tempfile.mkdtemp()
        code = (
            "import resource, sys;"
            "from fiftyone_posetrack.synth import render_crowd;"
            "from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline;"
            "from fiftyone_posetrack.video import VideoReader;"
            f"r = render_crowd({out!r}, people=6, frames={frames}, width=480, height=272, seed=1, overwrite=True);"
            f"p = PoseTrackingPipeline(PipelineConfig(models_dir={models_dir!r}, reid=None));"
            "reader = VideoReader(r.video_path);"
            "n = sum(1 for _ in p.process(reader.batches(8)));"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
        )
        rss = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        print(f"{frames:8d}{float(rss.stdout.split()[-1]):14.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", default=str(REPO.parent / "shared" / "models"))
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the fastest of each stage is kept")
    parser.add_argument("--memory", action="store_true", help="measure peak RSS against length instead")
    args = parser.parse_args()
    if args.memory:
        memory(args.models_dir)
        return
    from fiftyone_posetrack.synth import render_crowd

    config = PipelineConfig(models_dir=args.models_dir, reid=None, tracker="deepsort")
    pipeline = PoseTrackingPipeline(config)
    videos = []
    real = REPO.parent / "shared" / "data" / "video" / "one-by-one-person-detection.mp4"
    if real.is_file():
        videos.append(("shared video (real)", str(real)))
    crowd = render_crowd(
        tempfile.mkdtemp(), people=args.people, frames=args.frames, width=960, height=540, seed=2, overwrite=True
    )
    videos.append((f"synthetic crowd, {args.people} people", crowd.video_path))
    print(f"models: {config.detector} + {config.pose}; CPU threads: {cv2.getNumThreads()}")
    for name, path in videos:
        naive = best_of([naive_loop(path, args.frames, pipeline.detector, pipeline.pose_estimator)
                         for _ in range(args.repeat)])  # fmt: skip
        fast = best_of([ours(path, args.frames, pipeline) for _ in range(args.repeat)])
        report(name, naive, fast)


if __name__ == "__main__":
    main()
