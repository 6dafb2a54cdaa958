"""Appearance on demand: features only where the motion match is not clear."""

from __future__ import annotations

import numpy as np
import pytest

from fiftyone_posetrack.tracking.base import clear_motion_pairs, make_tracker
from fiftyone_posetrack.types import BadInputError, FrameDetections


def test_clear_motion_pairs_exact_cases():
    eligible = np.ones(3, dtype=bool)
    # three tracks, three detections, each alone with its own
    iou = np.array([[0.9, 0.0, 0.0], [0.0, 0.8, 0.1], [0.0, 0.05, 0.7]])
    rows, cols = clear_motion_pairs(iou, eligible, margin=0.3)
    np.testing.assert_array_equal(rows, [0, 1, 2])
    np.testing.assert_array_equal(cols, [0, 1, 2])
    # track 1 overlaps detection 2 nearly as much as detection 1: both ambiguous
    iou[1, 2] = 0.6
    rows, cols = clear_motion_pairs(iou, eligible, margin=0.3)
    np.testing.assert_array_equal(rows, [0])  # track 2's best (det 2) has a rival track too
    # a track that may not be matched this way, and an IoU below 0.5
    rows, _ = clear_motion_pairs(np.array([[0.9, 0.0], [0.0, 0.45]]), np.array([False, True]), 0.3)
    assert len(rows) == 0
    # no tracks or no detections
    assert len(clear_motion_pairs(np.zeros((0, 2)), np.zeros(0, bool), 0.3)[0]) == 0
    assert len(clear_motion_pairs(np.zeros((2, 0)), np.ones(2, bool), 0.3)[0]) == 0


def _walkers(frames=40):
    """Six people, boxes 40x100 px: 0 and 1 walk towards each other in one lane and pass
    (same box at frame 20); 2-5 walk in two other lanes, far apart."""
    out = []
    for f in range(frames):
        xy = [(200 + 8 * f, 100), (520 - 8 * f, 100)]
        xy += [(50 + 300 * (k % 2) + 3 * f, 250 + 150 * (k // 2)) for k in range(4)]
        out.append(np.array([[x, y, x + 40, y + 100] for x, y in xy], dtype=np.float64))
    return out


def _features(n_people=6, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n_people, dim))
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def _run(tracker, boxes, feats, on_demand):
    ids, embedded_count, total = [], 0, 0
    for frame_boxes in boxes:
        dets = FrameDetections(frame_boxes, np.full(len(frame_boxes), 0.9))
        need = tracker.appearance_needed(dets)
        if not on_demand:
            assert need.all()
        emb = np.where(need[:, None], feats, 0.0).astype(np.float32)
        dets.embeddings = emb
        embedded_count += int(need.sum())
        total += len(need)
        tracks = tracker.update(dets, embedded=need)
        person_of = dict(zip(tracks.det_indices.tolist(), tracks.track_ids.tolist()))
        ids.append([person_of.get(p, -1) for p in range(len(frame_boxes))])
    return np.array(ids), embedded_count / total


@pytest.mark.parametrize("name", ["deepsort", "bytetrack"])
def test_on_demand_embeds_few_boxes_and_keeps_identities(name):
    boxes, feats = _walkers(), _features()
    kwargs = dict(n_init=2) if name == "deepsort" else {}
    ids_all, share_all = _run(make_tracker(name, **kwargs), boxes, feats, on_demand=False)
    ids_lazy, share = _run(make_tracker(name, appearance_on_demand=True, **kwargs), boxes, feats, on_demand=True)
    assert share_all == 1.0
    assert share < 0.35, f"{name}: embedded {share:.0%} of the boxes"
    for ids in (ids_all, ids_lazy):
        late = ids[5:]  # once confirmed, one id per person, all different
        assert (late >= 1).all()
        assert all(len(set(late[:, p])) == 1 for p in range(6)), late
        assert len(set(late[0])) == 6
    # same tracks either way (up to the id numbering)
    assert len({tuple(r) for r in np.stack([ids_all[5:].ravel(), ids_lazy[5:].ravel()], 1)}) == 6


def test_appearance_needed_does_not_change_the_tracker():
    tracker = make_tracker("deepsort", appearance_on_demand=True)
    boxes, feats = _walkers(10), _features()
    _run(tracker, boxes[:8], feats, on_demand=True)
    before = {k: getattr(tracker.tracks, k).copy() for k in tracker.tracks.fields}
    count = tracker.frame_count
    dets = FrameDetections(boxes[8], np.full(6, 0.9))
    first = tracker.appearance_needed(dets)
    np.testing.assert_array_equal(tracker.appearance_needed(dets), first)
    assert tracker.frame_count == count
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(tracker.tracks, k), v)
    # confirmed walkers far apart: nobody needs a feature; a newcomer does
    assert not first.any()
    newcomer = FrameDetections(np.vstack([boxes[8], [[400, 900, 440, 1000]]]), np.full(7, 0.9))
    np.testing.assert_array_equal(tracker.appearance_needed(newcomer), [False] * 6 + [True])


def test_without_on_demand_every_box_needs_a_feature_and_bad_masks_are_named():
    tracker = make_tracker("bytetrack")
    dets = FrameDetections(np.array([[0, 0, 10, 20], [30, 0, 40, 20]], float), np.array([0.9, 0.2]))
    assert tracker.appearance_needed(dets).all()
    dets.embeddings = np.ones((2, 4), np.float32)
    with pytest.raises(BadInputError, match=r"embedded: expected a bool mask of the 2 detections"):
        tracker.update(dets, embedded=np.array([1, 0]))
    lazy = make_tracker("bytetrack", appearance_on_demand=True)
    # low-score boxes are never matched by appearance in ByteTrack: no feature asked
    np.testing.assert_array_equal(lazy.appearance_needed(dets), [True, False])
    with pytest.raises(BadInputError, match="clear_margin"):
        make_tracker("deepsort", clear_margin=1.5)


def test_embed_needed_runs_the_embedder_on_the_needed_boxes_only(shared_dir):
    import cv2

    from fiftyone_posetrack.pipeline.core import embed_needed
    from fiftyone_posetrack.reid import make_embedder

    frame = cv2.imread(str(shared_dir / "data" / "mot17-frames" / "MOT17-05" / "img1" / "000001.jpg"))
    embedder = make_embedder("mobilenet", device="cpu", flip=False, runtime="eager")
    boxes = np.array([[10, 100, 60, 220], [300, 120, 350, 250], [500, 90, 560, 260]], float)
    tracker = make_tracker("deepsort", appearance_on_demand=True, n_init=1)
    dets = FrameDetections(boxes, np.full(3, 0.9))
    feats, mask = embed_needed(embedder, tracker, frame, dets)
    assert mask is None  # no tracks yet: every box
    np.testing.assert_allclose(feats, embedder.embed(frame, boxes), atol=1e-5)
    tracker.update(FrameDetections(boxes, np.full(3, 0.9), feats))
    moved = FrameDetections(np.vstack([boxes + 2, [[200, 300, 250, 420]]]), np.full(4, 0.9))
    feats, mask = embed_needed(embedder, tracker, frame, moved)
    np.testing.assert_array_equal(mask, [False, False, False, True])
    assert not feats[:3].any()
    np.testing.assert_allclose(feats[3], embedder.embed(frame, moved.boxes[3:])[0], atol=1e-5)
