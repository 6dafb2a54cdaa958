"""Bulk frame-label writing vs. the per-frame ``save()`` loop, on a real database.

    python bench/bench_labels.py [--frames 300] [--people 20]

Writes the same tracked detections + keypoints of one video both ways and
prints the time of each and the ratio (baseline = per-frame loop).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("FIFTYONE_DATABASE_DIR", tempfile.mkdtemp(prefix="bench-labels-"))
os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")

import numpy as np  # noqa: E402


sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from videos import make_video  # noqa: E402

from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset  # noqa: E402
from fiftyone_posetrack.fo.labels import poses_to_keypoints, tracks_to_detections, write_frame_labels  # noqa: E402
from fiftyone_posetrack.types import FramePoses, FrameTracks  # noqa: E402


def labels(frames: int, people: int, w: int, h: int):
    rng = np.random.default_rng(0)
    out = {}
    for n in range(1, frames + 1):
        xy = rng.uniform(0, [w - 50, h - 100], size=(people, 2))
        boxes = np.hstack([xy, xy + [50, 100]])
        tracks = FrameTracks(boxes, np.arange(1, people + 1), rng.uniform(0.5, 1, people))
        kp = xy[:, None, :] + rng.uniform(0, [50, 100], size=(people, 17, 2))
        poses = FramePoses(kp, rng.uniform(0, 1, (people, 17)), tracks.track_ids)
        out[n] = (tracks_to_detections(tracks, w, h), poses_to_keypoints(poses, w, h))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--people", type=int, default=20)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    video = make_video(__import__("pathlib").Path(tmp) / "v.mp4", frames=args.frames, size=(320, 192))
    per_frame = labels(args.frames, args.people, 320, 192)

    ds = get_or_create_dataset("bench-labels-loop", persistent=False)
    (sid,) = add_videos(ds, [video])
    start = time.perf_counter()
    sample = ds[sid]
    for n, (d, k) in per_frame.items():  # the common per-frame pattern
        frame = sample.frames[n]
        frame["pred_detections"] = d
        frame["pred_keypoints"] = k
        sample.save()
    loop = time.perf_counter() - start

    ds1 = get_or_create_dataset("bench-labels-once", persistent=False)
    (sid1,) = add_videos(ds1, [video])
    start = time.perf_counter()
    sample = ds1[sid1]
    for n, (d, k) in per_frame.items():  # set every frame, then one sample.save()
        frame = sample.frames[n]
        frame["pred_detections"] = d
        frame["pred_keypoints"] = k
    sample.save()
    once = time.perf_counter() - start

    ds2 = get_or_create_dataset("bench-labels-bulk", persistent=False)
    (sid2,) = add_videos(ds2, [video])
    bulk = write_frame_labels(
        ds2,
        {
            "pred_detections": {sid2: {n: d for n, (d, _) in per_frame.items()}},
            "pred_keypoints": {sid2: {n: k for n, (_, k) in per_frame.items()}},
        },
    )
    assert ds2.count("frames.pred_detections.detections") == ds.count("frames.pred_detections.detections")
    print(f"{args.frames} frames x {args.people} people (detections + keypoints)")
    print(f"{'method':<26}{'seconds':>9}{'frames/s':>10}")
    print(f"{'sample.save() per frame':<26}{loop:9.2f}{args.frames / loop:10.0f}")
    print(f"{'sample.save() once':<26}{once:9.2f}{args.frames / once:10.0f}")
    print(f"{'write_frame_labels (bulk)':<26}{bulk:9.2f}{args.frames / bulk:10.0f}")
    print(f"speed-up: {loop / bulk:.1f}x vs per-frame saves, {once / bulk:.1f}x vs one sample.save()")


if __name__ == "__main__":
    main()
