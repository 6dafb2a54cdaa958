"""DeepSORT behaviour: n_init / max_age, gating, cascade, gallery, crossings."""

import numpy as np
import pytest

from fiftyone_posetrack.tracking import make_tracker
from fiftyone_posetrack.tracking.kalman import CHI2_95_4DOF
from fiftyone_posetrack.types import FrameDetections


def box(cx, cy=300.0, w=80.0, h=200.0):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def dets(boxes, feats=None, scores=None):
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    emb = None if feats is None else np.asarray(feats, np.float32).reshape(len(boxes), -1)
    return FrameDetections(boxes, scores, emb)


def test_n_init_and_max_age():
    t = make_tracker("deepsort", n_init=3, max_age=4, output_missed=0)
    out = [t.update(dets([box(100)])) for _ in range(3)]
    assert [len(o) for o in out] == [0, 0, 1]
    assert out[2].track_ids.tolist() == [1]
    for _ in range(3):  # missed, kept but not output
        assert len(t.update(None)) == 0
    # found again max_age frames after its last update
    assert t.update(dets([box(100)])).track_ids.tolist() == [1]
    for _ in range(4):  # max_age misses: deleted (as in the paper's code)
        t.update(FrameDetections.empty())
    for _ in range(3):
        last = t.update(dets([box(100)]))
    assert last.track_ids.tolist() == [2]


def test_tentative_track_dies_on_first_miss():
    t = make_tracker("deepsort", n_init=3)
    t.update(dets([box(100)]))
    t.update(dets([box(100)]))
    t.update(None)
    outs = [t.update(dets([box(100)])) for _ in range(3)]
    assert outs[2].track_ids.tolist() == [2]


def test_output_missed_reports_predicted_box():
    t = make_tracker("deepsort", n_init=1, output_missed=1)
    for x in (100, 110, 120, 130):
        t.update(dets([box(x)]))
    out = t.update(None)
    assert out.track_ids.tolist() == [1]
    assert out.det_indices.tolist() == [-1] and out.scores.tolist() == [0.0]
    assert 130 < (out.boxes[0, 0] + out.boxes[0, 2]) / 2 < 145  # moved on with the velocity
    assert len(t.update(None)) == 0


def test_det_indices_point_at_inputs():
    t = make_tracker("deepsort", n_init=1, output="detection")
    for k in range(3):
        order = [1, 0, 2] if k % 2 else [0, 1, 2]
        b = np.array([box(100), box(400), box(700)])[order]
        out = t.update(dets(b))
        np.testing.assert_allclose(out.boxes, b[out.det_indices])
    assert sorted(out.track_ids.tolist()) == [1, 2, 3]


def test_mahalanobis_gate_blocks_a_far_match():
    f = unit([1, 0, 0, 0])
    t = make_tracker("deepsort", n_init=1, max_age=5, output_missed=0)
    for _ in range(3):
        t.update(dets([box(200)], [f]))
    mean, cov = t.tracks.mean.copy(), t.tracks.cov.copy()
    _, s = t.kf.project(*t.kf.predict(mean, cov))
    edge = np.sqrt(CHI2_95_4DOF * s[0, 0, 0])  # x offset at the gate
    near = t.update(dets([box(200 + 0.8 * edge)], [f]))
    assert near.track_ids.tolist() == [1]
    # same appearance but beyond the gate (and no IoU overlap): a new track
    far = t.update(dets([box(200 + 0.8 * edge + 300)], [f]))
    assert far.track_ids.tolist() == [2]


def test_cascade_prefers_recently_updated_track():
    fa, fb = unit([1, 0.33, 0, 0]), unit([1, 0, 0.33, 0])  # cosine distance ~0.1
    t = make_tracker("deepsort", n_init=1, max_age=10, output_missed=0)
    for _ in range(3):
        out = t.update(dets([box(300), box(312)], [fa, fb]))
    ida, idb = out.track_ids.tolist()
    for _ in range(2):  # B is missed twice, A keeps being seen
        t.update(dets([box(300)], [fa]))
    # one detection that looks exactly like B, where B was: cheaper for B, but A
    # (time since update 1) is matched first by the cascade
    out = t.update(dets([box(312)], [fb]))
    assert out.track_ids.tolist() == [ida] != [idb]
    assert float(np.dot(fa, fb)) < 0.95  # the tie-break is not an accident of equal features


def test_gallery_budget_keeps_latest_features():
    t = make_tracker("deepsort", n_init=1, nn_budget=5)
    feats = [unit(np.r_[1.0, 0.01 * k, 0, 0]) for k in range(12)]
    for f in feats:
        t.update(dets([box(100)], [f]))
    gallery = t._galleries(np.array([0]))[0]
    assert gallery.shape == (5, 4)
    kept = {tuple(np.round(g, 6)) for g in gallery}
    assert kept == {tuple(np.round(f, 6)) for f in feats[-5:]}


def crossing(frames=40, jitter=0.0, seed=0):
    """Two people walking towards each other on the same row, crossing mid-way."""
    rng = np.random.default_rng(seed)
    xa = np.linspace(100, 700, frames)
    xb = xa[::-1]
    return [[box(a + rng.normal(0, jitter)), box(b + rng.normal(0, jitter))] for a, b in zip(xa, xb)]


@pytest.mark.parametrize("name", ["deepsort", "bytetrack"])
def test_ids_stable_through_crossing_with_embeddings(name):
    fa, fb = unit([1, 0, 0, 0.2]), unit([0, 1, 0.2, 0])
    t = make_tracker(name, n_init=1)
    rng = np.random.default_rng(1)
    seen = {0: set(), 1: set()}
    for k, boxes in enumerate(crossing(jitter=6)):
        # the detector reports them in a random order
        order = rng.permutation(2)
        feats = np.array([fa, fb])[order] + rng.normal(0, 0.02, (2, 4))
        out = t.update(dets(np.array(boxes)[order], feats))
        for tid, di in zip(out.track_ids, out.det_indices):
            seen[int(order[di])].add(int(tid))
    assert len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1]


def test_motion_only_without_embeddings():
    t = make_tracker("deepsort", n_init=2)
    ids = []
    for k in range(20):
        out = t.update(dets([box(100 + 5 * k), box(600 - 5 * k, cy=700)]))
        ids.append(sorted(out.track_ids.tolist()))
    assert ids[0] == [] and all(i == [1, 2] for i in ids[1:])


def test_reset_restarts_ids():
    t = make_tracker("deepsort", n_init=1)
    t.update(dets([box(100), box(400)]))
    t.reset()
    assert t.update(dets([box(700)])).track_ids.tolist() == [1]
