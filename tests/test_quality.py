"""Track quality without ground truth: each flag fires where a planted error is, and nowhere else."""

from __future__ import annotations

import numpy as np
import pytest

from fiftyone_posetrack.skeleton import COCO_FLIP_PAIRS
from fiftyone_posetrack.tracking.quality import QualityConfig, score_mot_tracks, score_tracks, top_frames
from fiftyone_posetrack.types import BadInputError

FPS = 25.0


def walkers(frames=100, people=3, seed=0):
    """Clean tracks: people walking at constant speed, 100 px tall, well apart. Returns arrays."""
    rng = np.random.default_rng(seed)
    fr, ids, boxes, scores = [], [], [], []
    for p in range(people):
        x0, v = 100 + 300 * p, rng.uniform(1, 3)
        for f in range(1, frames + 1):
            x = x0 + v * f
            fr.append(f), ids.append(p + 1), boxes.append([x, 200, x + 40, 300]), scores.append(0.9)
    return np.array(fr), np.array(ids), np.array(boxes, float), np.array(scores)


def skeletons(boxes):
    """A plausible COCO-17 skeleton in each box (left joints at larger x: the person faces the camera)."""
    x1, y1 = boxes[:, 0:1], boxes[:, 1:2]
    rel = np.array([[20, 5], [22, 4], [18, 4], [24, 5], [16, 5], [30, 20], [10, 20], [32, 35], [8, 35], [33, 48],
                    [7, 48], [27, 50], [13, 50], [27, 72], [13, 72], [27, 95], [13, 95]], float)  # fmt: skip
    pts = np.stack([x1 + rel[:, 0], y1 + rel[:, 1]], axis=-1)
    return np.concatenate([pts, np.full(pts.shape[:2] + (1,), 0.9)], axis=-1)


def test_clean_tracks_are_not_flagged():
    fr, ids, boxes, scores = walkers()
    q = score_tracks(fr, ids, boxes, FPS, scores, keypoints=skeletons(boxes))
    assert q.flags_computed == ("fragment", "jump", "low_confidence", "skeleton")
    assert not any(v.any() for v in q.flags.values())
    assert (q.frame_score == 0).all() and len(top_frames(q)) == 0
    assert q.frame_counts["births"][0] == 3 and q.frame_counts["births"][1:].sum() == 0
    assert any("drift: not computed" in n for n in q.notes)


def test_fragment_jump_and_low_confidence_where_planted():
    fr, ids, boxes, scores = walkers()
    ids = ids.copy()
    ids[(ids == 1) & (fr > 60)] = 7  # track 1 ends at 60, track 7 starts right there at 61 (8 frames later: gap)
    keep = ~((ids == 7) & (fr < 68))
    boxes = boxes.copy()
    boxes[(ids == 2) & (fr == 40)] += [120, 0, 120, 0]  # track 2 jumps 3 box heights... for one frame
    scores = scores.copy()
    scores[(ids == 3) & (fr >= 20) & (fr < 35)] = 0.2  # 15 frames (0.6 s) scored far below the median
    fr, ids, boxes, scores = fr[keep], ids[keep], boxes[keep], scores[keep]
    q = score_tracks(fr, ids, boxes, FPS, scores)
    frag = set(zip(fr[q.flags["fragment"]].tolist(), ids[q.flags["fragment"]].tolist()))
    assert frag == {(60, 1), (68, 7)}
    jumps = set(zip(fr[q.flags["jump"]].tolist(), ids[q.flags["jump"]].tolist()))
    assert jumps == {(40, 2), (41, 2)}  # away and back
    low = fr[q.flags["low_confidence"]]
    assert sorted(low.tolist()) == list(range(20, 35))
    top = top_frames(q, 0.05)  # up to 5 of 100 frames
    assert 3 <= len(top) <= 5 and np.diff(np.sort(top)).min() > 2 * q.window  # one per incident
    for f in (40, 41, 60, 68, 20, 34):  # each planted error's frame is within the window of one of them
        assert np.abs(top - f).min() <= q.window, (f, top)
    assert q.frame_score[list(q.frames).index(top[0])] == q.frame_score.max()
    assert q.frame_counts["births"][list(q.frames).index(68)] == 1
    assert q.frame_counts["deaths"][list(q.frames).index(60)] == 1
    worst = q.tracks[0]
    assert worst["index"] in (1, 2, 3, 7)


def test_a_far_birth_is_not_a_fragment_and_seconds_follow_the_frame_rate():
    fr, ids, boxes, scores = walkers()
    ids = ids.copy()
    ids[(ids == 1) & (fr > 60)] = 7
    keep = ~((ids == 7) & (fr < 68))
    fr, ids, boxes = fr[keep], ids[keep], boxes[keep].copy()
    # 8 frames: within a second at 25 fps, not at 5 fps (1.6 s)
    assert score_tracks(fr, ids, boxes, 25.0).flags["fragment"].sum() == 2
    assert score_tracks(fr, ids, boxes, 5.0).flags["fragment"].sum() == 0
    boxes[ids == 7] += [500, 0, 500, 0]  # born 5 box heights away
    assert score_tracks(fr, ids, boxes, 25.0).flags["fragment"].sum() == 0


def test_skeleton_swaps_and_limb_breaks():
    fr, ids, boxes, scores = walkers(frames=30, people=1)
    kps = skeletons(boxes)
    left, right = np.array(COCO_FLIP_PAIRS).T
    swap = fr == 10
    kps[np.ix_(swap, left)], kps[np.ix_(swap, right)] = kps[np.ix_(swap, right)], kps[np.ix_(swap, left)]
    kps[fr == 20, 9, :2] = kps[fr == 20, 7, :2] + [0, 60]  # a forearm 60 % of the height (normally 13 %)
    q = score_tracks(fr, ids, boxes, FPS, scores, keypoints=kps)
    assert set(fr[q.flags["skeleton"]].tolist()) == {10, 11, 20}  # swapped in, swapped back, the broken limb


def test_drift_with_features():
    fr, ids, boxes, scores = walkers(frames=60, people=2)
    rng = np.random.default_rng(1)
    ident = rng.normal(size=(3, 64))
    feats = ident[ids] + 0.1 * rng.normal(size=(len(ids), 64))
    took = (ids == 1) & (fr >= 40)
    feats[took] = ident[2][None] + 0.1 * rng.normal(size=(took.sum(), 64))  # track 1 now looks like person 2
    q = score_tracks(fr, ids, boxes, FPS, scores, features=feats)
    assert "drift" in q.flags_computed and not any(n.startswith("drift") for n in q.notes)
    drift = fr[q.flags["drift"]]
    assert drift.min() == 40 and set(ids[q.flags["drift"]].tolist()) == {1}


def test_mot_arrays_and_bad_input():
    fr, ids, boxes, scores = walkers(frames=10, people=2)
    mot = np.column_stack([fr, ids, boxes[:, :2], boxes[:, 2:] - boxes[:, :2], scores])
    q = score_mot_tracks(mot, FPS)
    assert len(q.frames) == 10 and len(q.tracks) == 2
    with pytest.raises(BadInputError, match="fps"):
        score_tracks(fr, ids, boxes, 0)
    with pytest.raises(BadInputError, match="one row per box"):
        score_tracks(fr[:-1], ids, boxes, FPS)
    with pytest.raises(BadInputError, match="keypoints"):
        score_tracks(fr, ids, boxes, FPS, keypoints=np.zeros((3, 17, 3)))
    with pytest.raises(BadInputError, match="unknown option"):
        score_tracks(fr, ids, boxes, FPS, config={"jump": 1})
    with pytest.raises(BadInputError, match="jump_gate"):
        score_tracks(fr, ids, boxes, FPS, config=QualityConfig(jump_gate=-1))
    with pytest.raises(BadInputError, match="share"):
        top_frames(q, 0)
    empty = score_tracks([], [], np.zeros((0, 4)), FPS)
    assert len(empty.frames) == 0 and len(top_frames(empty)) == 0
