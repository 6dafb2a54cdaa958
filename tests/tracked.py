"""A small tracked and evaluated crowd video for the App tests (panel, views, browser).

Predictions are the synthetic ground truth, deterministically perturbed like a
tracker's output: jittered boxes, dropped boxes (misses), tracks 2 and 3
swapping identities from frame ``SWAP_FRAME`` on (ID switches) and a few
false-positive boxes; skeletons are the ground-truth skeletons (jittered) under
the predicted boxes' track ids. Stored: a tracking evaluation ``track_eval``
and a PoseTrack pose evaluation ``pose_eval``.
"""

from __future__ import annotations

import pathlib
import uuid

import numpy as np

import fiftyone as fo

from fiftyone_posetrack.fo.dataset import load_synth
from fiftyone_posetrack.fo.evaluation import evaluate_poses, evaluate_tracking
from fiftyone_posetrack.fo.labels import write_frame_labels
from fiftyone_posetrack.synth import render_crowd

SWAP_FRAME = 12
FP_FRAMES = (3, 7, 15)


def make_tracked(root: pathlib.Path, name: str | None = None, people: int = 5, frames: int = 24,
                 width: int = 480, height: int = 272, persistent: bool = False) -> fo.Dataset:  # fmt: skip
    """Renders, loads, predicts (see the module docs) and evaluates; returns the dataset."""
    render_crowd(root / "crowd", people=people, frames=frames, width=width, height=height, seed=3)
    ds = load_synth(root / "crowd", name or f"tracked-{uuid.uuid4().hex[:10]}")
    ds.persistent = persistent
    sample = ds.first()
    rng = np.random.default_rng(0)
    dets, kps = {}, {}
    for frame in sample.frames.values():
        n = frame.frame_number
        gt_kps = {k.index: k for k in (frame.gt_keypoints.keypoints if frame.gt_keypoints else [])}
        d_out, k_out = [], []
        for d in frame.gt_detections.detections if frame.gt_detections else []:
            if rng.random() < 0.1:
                continue  # a miss
            idx = d.index
            if n >= SWAP_FRAME and idx in (2, 3):
                idx = 5 - idx  # 2 <-> 3
            x, y, w, h = d.bounding_box
            box = [x + rng.normal(0, 0.003), y + rng.normal(0, 0.003), w, h]
            conf = float(rng.uniform(0.4, 1.0))
            d_out.append(fo.Detection(label="person", bounding_box=box, confidence=conf, index=idx))
            k = gt_kps.get(d.index)
            if k is not None:
                pts = [(px + rng.normal(0, 0.002), py + rng.normal(0, 0.002)) if px == px else (px, py)
                       for px, py in k.points]  # fmt: skip
                k_out.append(fo.Keypoint(label="person", points=pts, confidence=[0.9] * len(pts), index=idx))
        if n in FP_FRAMES:
            d_out.append(fo.Detection(label="person", bounding_box=[0.02, 0.05, 0.08, 0.3], confidence=0.35, index=90 + n))
        dets[n] = fo.Detections(detections=d_out)
        kps[n] = fo.Keypoints(keypoints=k_out)
    write_frame_labels(ds, {"pred_detections": {sample.id: dets}, "pred_keypoints": {sample.id: kps}})
    evaluate_tracking(ds, eval_key="track_eval")
    evaluate_poses(ds, eval_key="pose_eval", kind="posetrack")
    return ds
