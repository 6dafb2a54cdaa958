"""Pose smoothing on the synthetic crowd: joint error and jitter with added keypoint noise.

    python bench/bench_smoothing.py [--people 20] [--frames 120] [--noise 3]

The crowd's exact joints (``render_crowd``'s ground truth) get Gaussian noise
of ``--noise`` pixels per coordinate, like a pose model's frame-to-frame
jitter; each smoother then runs over the rendered video. Printed per method,
over the joints visible in the frame and its neighbours:

- error: mean distance to the exact joint (pixels);
- jitter: mean norm of the second difference along each track
  (pixels / frame^2; the exact motion has jitter ``truth``);
- ms/frame: the smoother's own time.

Baselines measured in the same run: the noisy joints themselves, and the
exact joints (the floor for jitter).

A second table measures box propagation (the box-smoothing stage's flow step):
each visible person's exact box of frame k-1 moved into frame k by
``propagate_boxes`` with several grids and LK windows, against the exact box
of frame k (mean absolute corner error, pixels), and its time per frame; the
baseline is the unmoved box.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from fiftyone_posetrack.flow import to_gray
from fiftyone_posetrack.pose.smoothing import FlowPoseSmoother, OneEuroPoseSmoother
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.tracking.box_smoothing import propagate_boxes
from fiftyone_posetrack.types import FramePoses
from fiftyone_posetrack.video import VideoReader


def frame_poses(kps: np.ndarray, scores: np.ndarray) -> FramePoses:
    """One frame of ``(P, 17, 2)`` joints of people ``1..P`` (NaN: not in view)."""
    present = np.isfinite(kps).any(axis=(1, 2))
    ids = np.flatnonzero(present) + 1
    return FramePoses(kps[present], scores[present], ids)


def to_array(poses: list[FramePoses], people: int) -> np.ndarray:
    out = np.full((len(poses), people, 17, 2), np.nan)
    for f, p in enumerate(poses):
        out[f, p.track_ids - 1] = p.keypoints
    return out


def metrics(kps: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    err = np.linalg.norm(kps - truth, axis=-1)[valid]
    second = np.linalg.norm(kps[2:] - 2 * kps[1:-1] + kps[:-2], axis=-1)
    keep = valid[2:] & valid[1:-1] & valid[:-2]
    return float(np.nanmean(err)), float(np.nanmean(second[keep]))


def box_table(crowd, frames: list[np.ndarray]) -> None:
    grays = [to_gray(f) for f in frames]
    boxes = crowd.boxes.astype(np.float64)  # (F, P, 4)
    seen = (crowd.visibility > 0.5) & np.isfinite(boxes).all(axis=-1)
    print(f"\n{'box propagation':<28}{'corner err px':>14}{'ms/frame':>10}")
    still = [np.abs(boxes[k - 1, s] - boxes[k, s]).mean(axis=1) for k in range(1, len(frames))
             for s in [seen[k - 1] & seen[k]]]  # fmt: skip
    print(f"{'unmoved box (baseline)':<28}{np.concatenate(still).mean():14.2f}{'':>10}")
    for grid, win in ((5, 21), (5, 11), (4, 21), (4, 11), (3, 11)):
        errs, seconds = [], 0.0
        for k in range(1, len(frames)):
            both = seen[k - 1] & seen[k]
            start = time.perf_counter()
            moved, ok = propagate_boxes(grays[k - 1], grays[k], boxes[k - 1, both], grid=grid, win_size=win)
            seconds += time.perf_counter() - start
            moved = np.where(ok[:, None], moved, boxes[k - 1, both])
            errs.append(np.abs(moved - boxes[k, both]).mean(axis=1))
        name = f"grid {grid}x{grid}, window {win} px"
        print(f"{name:<28}{np.concatenate(errs).mean():14.2f}{1000 * seconds / (len(frames) - 1):10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--noise", type=float, default=3.0, help="keypoint noise std, pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    crowd = render_crowd(tempfile.mkdtemp(), people=args.people, frames=args.frames, width=960, height=540,
                         seed=args.seed, overwrite=True)  # fmt: skip
    with VideoReader(crowd.video_path) as reader:
        frames = [f for _, f in reader]
    truth = crowd.keypoints.astype(np.float64)  # (F, P, 17, 2)
    visible = crowd.keypoint_flags > 0
    valid = visible & np.isfinite(truth).all(axis=-1)
    rng = np.random.default_rng(args.seed + 1)
    noisy = np.where(valid[..., None], truth + rng.normal(0, args.noise, truth.shape), np.nan)
    scores = np.where(valid, 0.9, 0.0)
    inputs = [frame_poses(noisy[f], scores[f]) for f in range(len(frames))]

    print(f"synthetic crowd: {crowd.people} people, {len(frames)} frames, 960x540, noise {args.noise} px")
    print(f"{'method':<28}{'error px':>10}{'jitter px/f^2':>15}{'ms/frame':>10}")
    e, j = metrics(truth, truth, valid)
    print(f"{'exact joints':<28}{e:10.2f}{j:15.2f}{'':>10}")
    e, j = metrics(noisy, truth, valid)
    print(f"{'noisy (no smoothing)':<28}{e:10.2f}{j:15.2f}{'':>10}")
    for name, make in (
        ("flow LK, a=0.25", lambda: FlowPoseSmoother(alpha=0.25, method="lk")),
        ("flow LK, a=1/3", lambda: FlowPoseSmoother(alpha=1 / 3, method="lk")),
        ("flow DIS, a=0.25", lambda: FlowPoseSmoother(alpha=0.25, method="dis")),
        ("One-Euro (defaults)", lambda: OneEuroPoseSmoother()),
    ):
        smoother = make()
        start = time.perf_counter()
        if isinstance(smoother, FlowPoseSmoother):
            out = [smoother.push(f, p) for f, p in zip(frames, inputs)][1:] + [smoother.flush()]
        else:
            out = [smoother.update(p, k + 1) for k, p in enumerate(inputs)]
        ms = 1000 * (time.perf_counter() - start) / len(frames)
        e, j = metrics(to_array(out, crowd.people), truth, valid)
        print(f"{name:<28}{e:10.2f}{j:15.2f}{ms:10.2f}")
    box_table(crowd, frames)


if __name__ == "__main__":
    main()
