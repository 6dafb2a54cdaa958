"""Tracker cost per frame against the number of people in view (one core).

    python bench/bench_tracker_scaling.py [--people 10 20 50 100 200] [--frames 150]

Trajectories: ``N`` people wander over a 1920x1080 frame for ``--frames``
frames (smooth random velocities, bouncing off the edges; box heights
90-220 px, width 0.4 x height), all in view all the time. Detections are the
ground-truth boxes with corners jittered by 2 % of the box height, 5 % of them
missed at random, plus one false positive per frame on average. Appearance
features (DeepSORT with embeddings) are a fixed random unit vector per person
plus noise (128-d), like a ReID network's.

Trackers: ``deepsort`` motion-only (no features), ``deepsort`` with the
features, ``bytetrack`` -- ours, from :mod:`fiftyone_posetrack.tracking`. The
baseline measured in the same run is FiftyOne's built-in DeepSORT
(``fiftyone.utils.tracking.DeepSort`` = ``deep_sort_realtime``, motion only:
one constant feature per box, as FiftyOne's wrapper does without an
embedder). Only ``update`` calls are timed (ours: best of three runs after a
warm-up; the built-in: one run); IDF1 shows that each tracker still tracks at
that density.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from bench_tracking import busy_crowd  # noqa: E402  (bench/ is on sys.path when run as a script)

from fiftyone_posetrack.eval.mot import evaluate_mot_arrays  # noqa: E402
from fiftyone_posetrack.tracking import make_tracker  # noqa: E402
from fiftyone_posetrack.types import FrameDetections, xyxy_to_xywh  # noqa: E402

WIDTH, HEIGHT, DIM = 1920, 1080, 128


def trajectories(people: int, frames: int, seed: int = 0) -> np.ndarray:
    """Ground-truth boxes ``(frames, people, 4)`` ``[x1, y1, x2, y2]``, everyone in view:
    :func:`bench_tracking.busy_crowd`'s walkers, one frame per row block."""
    rows = busy_crowd(people, frames, WIDTH, HEIGHT, seed)  # frame-major, ids 1..people
    xywh = rows[:, 2:6].reshape(frames, people, 4)
    return np.concatenate([xywh[..., :2], xywh[..., :2] + xywh[..., 2:]], axis=2)


def detections(gt: np.ndarray, seed: int = 1) -> tuple[list[FrameDetections], list[FrameDetections]]:
    """Jittered, thinned ground truth plus false positives: without and with features."""
    rng = np.random.default_rng(seed)
    frames, people, _ = gt.shape
    identity = rng.normal(size=(people, DIM))
    identity /= np.linalg.norm(identity, axis=1, keepdims=True)
    plain, featured = [], []
    for f in range(frames):
        keep = np.flatnonzero(rng.random(people) >= 0.05)
        boxes = gt[f, keep] + rng.normal(0, 0.02, (len(keep), 4)) * (gt[f, keep, 3:] - gt[f, keep, 1:2])
        feats = identity[keep] + 0.5 * rng.normal(size=(len(keep), DIM)) / np.sqrt(DIM)
        n_fp = rng.poisson(1.0)
        fh = rng.uniform(90, 220, (n_fp, 1))
        fxy = rng.uniform([0, 0], [WIDTH, HEIGHT], (n_fp, 2))
        boxes = np.concatenate([boxes, np.concatenate([fxy, fxy + fh * [0.4, 1.0]], axis=1)])
        feats = np.concatenate([feats, rng.normal(size=(n_fp, DIM))])
        feats = (feats / np.linalg.norm(feats, axis=1, keepdims=True)).astype(np.float32)
        scores = np.concatenate([rng.uniform(0.5, 1.0, len(keep)), rng.uniform(0.1, 0.6, n_fp)])
        plain.append(FrameDetections(boxes, scores))
        featured.append(FrameDetections(boxes, scores, feats))
    return plain, featured


def gt_rows(gt: np.ndarray) -> np.ndarray:
    frames, people, _ = gt.shape
    f, p = np.meshgrid(np.arange(1, frames + 1), np.arange(1, people + 1), indexing="ij")
    return np.column_stack([f.ravel(), p.ravel(), xyxy_to_xywh(gt.reshape(-1, 4)), np.ones((f.size, 3))])


def run_ours(name: str, inputs: list[FrameDetections], **params) -> tuple[float, np.ndarray]:
    tracker = make_tracker(name, **params)
    outputs = []
    start = time.perf_counter()
    for dets in inputs:
        outputs.append(tracker.update(dets))
    seconds = time.perf_counter() - start
    rows = [np.column_stack([np.full(len(o), f), o.track_ids, xyxy_to_xywh(o.boxes)])
            for f, o in enumerate(outputs, 1) if len(o)]  # fmt: skip
    return seconds, np.concatenate(rows) if rows else np.zeros((0, 6))


def run_builtin(inputs: list[FrameDetections]) -> tuple[float, np.ndarray]:
    """FiftyOne's built-in DeepSort: deep_sort_realtime fed as FiftyOne's wrapper feeds it."""
    logging.getLogger("deep_sort_realtime").setLevel(logging.WARNING)
    from deep_sort_realtime.deepsort_tracker import DeepSort

    tracker = DeepSort(max_age=5, embedder=None)
    const = np.ones(8, dtype=np.float32) / np.sqrt(8)
    rows, seconds = [], 0.0
    for f, dets in enumerate(inputs, 1):
        bbs = [(list(b), float(s), "person") for b, s in zip(xyxy_to_xywh(dets.boxes), dets.scores)]
        start = time.perf_counter()
        tracks = tracker.update_tracks(bbs, embeds=[const] * len(bbs))
        seconds += time.perf_counter() - start
        for t in tracks:
            if t.is_confirmed():
                x1, y1, x2, y2 = t.to_ltrb()
                rows.append([f, int(t.track_id), x1, y1, x2 - x1, y2 - y1])
    return seconds, np.asarray(rows, dtype=float).reshape(-1, 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[10, 20, 50, 100, 200])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--no-baseline", action="store_true", help="skip deep_sort_realtime")
    args = parser.parse_args()

    configs = [
        ("deepsort, motion only", "deepsort", False),
        ("deepsort + embeddings", "deepsort", True),
        ("bytetrack", "bytetrack", False),
    ]
    head = ["people"] + [label for label, _, _ in configs]
    if not args.no_baseline:
        head += ["FiftyOne DeepSort (built-in)", "built-in / ours (motion only)"]
    print(f"{args.frames} frames per density, 1920x1080, one core; ms/frame (IDF1)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    cost = {label: {} for label, _, _ in configs}
    for people in args.people:
        gt = trajectories(people, args.frames, seed=people)
        plain, featured = detections(gt, seed=people + 1)
        truth = gt_rows(gt)
        row = [str(people)]
        for label, name, use_features in configs:
            inputs = featured if use_features else plain
            run_ours(name, inputs[:10])  # warm-up (imports, first allocations)
            seconds, pred = min((run_ours(name, inputs) for _ in range(3)), key=lambda r: r[0])
            cost[label][people] = ms = 1000 * seconds / args.frames
            row.append(f"{ms:.2f} ({evaluate_mot_arrays(truth, pred)['OVERALL']['idf1']:.2f})")
        if not args.no_baseline:
            seconds, pred = run_builtin(plain)
            ms = 1000 * seconds / args.frames
            row += [f"{ms:.2f} ({evaluate_mot_arrays(truth, pred)['OVERALL']['idf1']:.2f})",
                    f"{ms / cost['deepsort, motion only'][people]:.1f}x"]  # fmt: skip
        print("| " + " | ".join(row) + " |", flush=True)

    lo, hi = args.people[0], args.people[-1]
    print(f"\ncost growth from {lo} to {hi} people ({hi / lo:.0f}x the people):")
    for label, by_people in cost.items():
        print(f"  {label}: {by_people[hi] / by_people[lo]:.1f}x the ms/frame")

if __name__ == "__main__":
    main()
