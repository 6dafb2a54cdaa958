"""Track post-processing numerics (fiftyone_posetrack.tracking.postprocess): exact small cases."""

import numpy as np
import pytest

from fiftyone_posetrack.tracking.postprocess import (
    PostprocessConfig,
    filter_tracks,
    gsi_smooth_tracks,
    interpolate_tracks,
    link_tracklets,
    postprocess_tracks,
)
from fiftyone_posetrack.types import BadInputError


def _track(tid, frames, x0=100.0, vx=2.0, y0=50.0, vy=1.0, w=40.0, h=100.0, score=0.9):
    frames = np.asarray(frames, dtype=float)
    n = len(frames)
    return np.column_stack([frames, np.full(n, tid), x0 + vx * frames, y0 + vy * frames,
                            np.full(n, w), np.full(n, h), np.full(n, score), -np.ones((n, 3))])


def test_gap_of_k_frames_gives_k_boxes_on_the_line():
    k = 5
    a = np.array([[10, 7, 100, 200, 40, 80, 0.9, -1, -1, -1]], float)
    b = np.array([[10 + k + 1, 7, 160, 140, 52, 104, 0.8, -1, -1, -1]], float)
    out, mask = interpolate_tracks(np.concatenate([b, a]), max_gap=k, return_mask=True)
    assert len(out) == k + 2 and mask.sum() == k
    filled = out[mask]
    np.testing.assert_array_equal(filled[:, 0], np.arange(11, 11 + k))
    np.testing.assert_array_equal(filled[:, 1], 7)
    j = (np.arange(1, k + 1) / (k + 1))[:, None]
    np.testing.assert_allclose(filled[:, 2:6], a[0, 2:6] + (b[0, 2:6] - a[0, 2:6]) * j)
    assert (filled[:, 6] == 0).all()
    # the observed rows are unchanged
    np.testing.assert_array_equal(out[~mask], np.concatenate([a, b]))


def test_gap_above_max_gap_and_track_ends_are_not_filled():
    t = np.concatenate([_track(1, [1, 2, 9, 10]), _track(2, [4, 5])])
    out = interpolate_tracks(t, max_gap=5)
    np.testing.assert_array_equal(out, t[np.lexsort((t[:, 1], t[:, 0]))])
    out = interpolate_tracks(t, max_gap=6)
    assert len(out) == len(t) + 6
    assert out[:, 0].min() == 1 and out[:, 0].max() == 10  # never extended


def test_gap_larger_than_the_video_is_an_error():
    t = _track(1, [1, 50])
    with pytest.raises(BadInputError, match="video has 20 frames"):
        interpolate_tracks(t, max_gap=100, num_frames=20)
    with pytest.raises(BadInputError, match="video has 20 frames"):
        postprocess_tracks(t, {"interpolate": 100}, num_frames=20)


def test_gsi_leaves_a_straight_constant_speed_track_unchanged():
    t = _track(3, np.arange(1, 80), vx=3.5, vy=-1.25)
    t[:, 4] = 30 + 0.1 * t[:, 0]  # the width grows linearly too
    out = gsi_smooth_tracks(t, tau=10)
    np.testing.assert_allclose(out, t, atol=1e-6)


def test_gsi_reduces_jitter_of_a_straight_track():
    rng = np.random.default_rng(0)
    clean = _track(1, np.arange(1, 101))
    noisy = clean.copy()
    noisy[:, 2:4] += rng.normal(0, 3.0, (100, 2))
    out = gsi_smooth_tracks(noisy, tau=10)
    err_before = np.abs(noisy[:, 2:4] - clean[:, 2:4]).mean()
    err_after = np.abs(out[:, 2:4] - clean[:, 2:4]).mean()
    assert err_after < 0.5 * err_before


def test_gsi_long_track_in_windows_is_unchanged_when_straight():
    t = _track(1, np.arange(1, 1501), vx=0.5)
    np.testing.assert_allclose(gsi_smooth_tracks(t, tau=10), t, atol=1e-6)


def test_tracks_with_one_or_two_boxes_pass_through():
    t = np.concatenate([_track(1, [5]), _track(2, [3, 4])])
    out = postprocess_tracks(t, {"interpolate": 10, "gsi": True})
    np.testing.assert_array_equal(out, t[np.lexsort((t[:, 1], t[:, 0]))])


def test_filter_short_and_low_score_tracks():
    t = np.concatenate([_track(1, range(1, 11)), _track(2, range(1, 4)), _track(3, range(1, 11), score=0.2)])
    out = filter_tracks(t, min_length=5)
    assert set(out[:, 1].astype(int)) == {1, 3}
    out = filter_tracks(t, min_score=0.5)
    assert set(out[:, 1].astype(int)) == {1, 2}
    out = postprocess_tracks(t, {"min_length": 5, "min_score": 0.5})
    assert set(out[:, 1].astype(int)) == {1}


def test_link_joins_a_person_who_reenters_and_not_a_stranger():
    # id 1 walks right, disappears for 20 frames, comes back on its line as id 2;
    # id 3 starts at the same time far away
    a = _track(1, range(1, 31), x0=100, vx=4)
    b = _track(2, range(51, 81), x0=100, vx=4)
    c = _track(3, range(51, 81), x0=1500, vx=-4, y0=400)
    out = link_tracklets(np.concatenate([a, b, c]), max_gap=30, max_distance=0.5)
    assert set(out[out[:, 0] >= 51][:, 1].astype(int)) == {1, 3}
    linked = out[out[:, 1] == 1]
    assert len(linked) == 60 and linked[:, 0].max() == 80
    # too long a gap: no link
    out = link_tracklets(np.concatenate([a, b, c]), max_gap=10)
    assert set(out[:, 1].astype(int)) == {1, 2, 3}


def test_link_with_features_forbids_different_appearance():
    a = _track(1, range(1, 31), x0=100, vx=4)
    b = _track(2, range(41, 71), x0=100, vx=4)
    feats = {1: np.array([1.0, 0.0]), 2: np.array([0.0, 1.0])}
    out = link_tracklets(np.concatenate([a, b]), max_gap=30, features=feats)
    assert set(out[:, 1].astype(int)) == {1, 2}
    feats[2] = np.array([0.99, 0.05])
    out = link_tracklets(np.concatenate([a, b]), max_gap=30, features=feats)
    assert set(out[:, 1].astype(int)) == {1}


def test_link_candidates_are_every_pair_within_the_gap():
    from fiftyone_posetrack.tracking.postprocess import _link_candidates

    rng = np.random.default_rng(0)
    first = rng.integers(1, 500, 300).astype(float)
    last = first + rng.integers(0, 80, 300)
    a, b = _link_candidates(first, last, 40)
    gap = first[None, :] - last[:, None]
    want = set(zip(*np.nonzero((gap >= 1) & (gap <= 40))))
    assert len(a) == len(want) and set(zip(a.tolist(), b.tolist())) == want


def test_link_assignment_by_groups_is_the_one_dense_assignment():
    from fiftyone_posetrack.tracking.matching import linear_assignment
    from fiftyone_posetrack.tracking.postprocess import _assign_sparse

    rng = np.random.default_rng(1)
    n = 200
    pairs = {(int(i), int(j)) for i, j in rng.integers(0, n, (600, 2))}
    a, b = np.array(sorted(pairs)).T
    cost = rng.uniform(0, 1.5, len(a))  # above 1: never linked
    m = _assign_sparse(n, a, b, cost)
    dense = np.full((n, n), 2.0)
    dense[a, b] = cost
    ref, _, _ = linear_assignment(dense, 1.0)
    assert len(m) == len(ref) > 0
    assert dense[m[:, 0], m[:, 1]].sum() == pytest.approx(dense[ref[:, 0], ref[:, 1]].sum(), abs=1e-9)
    assert (dense[m[:, 0], m[:, 1]] <= 1.0).all()
    assert len(set(m[:, 0])) == len(m) == len(set(m[:, 1]))  # one-to-one


def test_link_joins_two_thousand_tracklets_of_twenty_people():
    # 20 people over 3000 frames in 1 s tracklets: 2000 tracklets, each re-found on its line;
    # (the candidates are found by a sorted search, not an n x n matrix: bench/bench_link.py measures it)
    rows = []
    for k in range(2000):
        person, seg = k % 20, k // 20
        start = 1 + 30 * seg
        frames = np.arange(start, start + 25)  # 5-frame gaps between a person's tracklets
        rows.append(_track(k + 1, frames, x0=100 + 80 * person, vx=0.5, y0=50 + 20 * person, vy=0.0))
    out = link_tracklets(np.concatenate(rows), max_gap=10, max_distance=0.5)
    assert len(np.unique(out[:, 1])) == 20  # every person one id
    for person in range(20):
        assert len(np.unique(out[out[:, 1] == person + 1, 0])) == 100 * 25


def test_link_then_interpolate_fills_the_bridged_gap():
    a = _track(1, range(1, 31), x0=100, vx=4)
    b = _track(2, range(41, 71), x0=100, vx=4)
    out, mask = postprocess_tracks(np.concatenate([a, b]), {"link": True, "interpolate": 10}, return_mask=True)
    assert mask.sum() == 10 and set(out[:, 1].astype(int)) == {1}
    np.testing.assert_allclose(out[:, 2], 100 + 4 * out[:, 0])  # on the line


@pytest.mark.parametrize(
    "options, match",
    [
        ({"interpolate": -1}, "interpolate"),
        ({"interpolate": 2.5}, "interpolate"),
        ({"gsi_tau": float("nan")}, "gsi_tau"),
        ({"gsi_tau": -3}, "gsi_tau"),
        ({"min_length": -2}, "min_length"),
        ({"min_score": float("nan")}, "min_score"),
        ({"min_score": 1.5}, "min_score"),
        ({"link_max_gap": 0}, "link_max_gap"),
        ({"gsi": "yes"}, "gsi"),
        ({"smooth": True}, "unknown option"),
    ],
)
def test_bad_parameters_are_named_and_input_untouched(options, match):
    t = _track(1, [1, 2, 5])
    before = t.copy()
    with pytest.raises(BadInputError, match=match):
        postprocess_tracks(t, options)
    np.testing.assert_array_equal(t, before)


@pytest.mark.parametrize(
    "tracks, match",
    [
        (np.array([[1, 1, 0, 0, 10, np.nan, 1]]), "NaN"),
        (np.array([[0, 1, 0, 0, 10, 10, 1]]), "frames"),
        (np.array([[1, 1, 0, 0, -10, 10, 1]]), "negative"),
        (np.array([[1, 1, 0, 0, 10, 10, 1], [1, 1, 5, 5, 10, 10, 1]]), "twice"),
        (np.zeros((3, 4)), "MOT array"),
    ],
)
def test_bad_tracks_are_refused(tracks, match):
    with pytest.raises(BadInputError, match=match):
        postprocess_tracks(tracks, {"interpolate": 5})


def test_inputs_are_never_modified():
    t = np.concatenate([_track(1, [1, 2, 6, 7, 8]), _track(2, range(10, 20))])
    before = t.copy()
    postprocess_tracks(t, PostprocessConfig(interpolate=5, gsi=True, link=True, min_length=2))
    np.testing.assert_array_equal(t, before)


def test_empty_tracks():
    out = postprocess_tracks(np.zeros((0, 10)), {"interpolate": 5, "gsi": True, "link": True})
    assert out.shape == (0, 10)


# -- the FiftyOne stage, the operator ----------------------------------------------


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    from fiftyone_posetrack.synth import render_crowd

    return render_crowd(tmp_path_factory.mktemp("post"), people=4, frames=20, width=320, height=192, seed=3)


@pytest.fixture()
def dataset(crowd, request):
    from fiftyone_posetrack.fo.dataset import load_synth

    ds = load_synth(crowd.out_dir, f"post-{request.node.name}"[:60], overwrite=True)
    yield ds
    ds.delete()


def _with_gap(dataset, field="tracks", frames=(8, 9, 10)):
    """A copy of the ground-truth tracks with the first track removed from ``frames``;
    returns that track's id and its true boxes in those frames."""
    dataset.clone_frame_field("gt_detections", field)
    sample = dataset.first()
    tid = sample.frames[1][field].detections[0].index
    removed = {}
    for n in frames:
        frame = sample.frames[n]
        keep = [d for d in frame[field].detections if d.index != tid]
        removed[n] = [d.bounding_box for d in frame[field].detections if d.index == tid][0]
        frame[field].detections = keep
    sample.save()
    return tid, removed


def test_fo_stage_fills_a_gap_into_a_new_field(dataset):
    from fiftyone_posetrack.fo.postprocess import postprocess_tracks_field

    tid, removed = _with_gap(dataset)
    before = dataset.values("frames.tracks")
    postprocess_tracks_field(dataset, "tracks", "post", {"interpolate": 5}, progress=False)
    assert dataset.values("frames.tracks") == before, "input untouched"
    sample = dataset.first()
    a = [d.bounding_box for d in sample.frames[7].post.detections if d.index == tid][0]
    b = [d.bounding_box for d in sample.frames[11].post.detections if d.index == tid][0]
    for j, n in enumerate((8, 9, 10), 1):
        got = [d for d in sample.frames[n].post.detections if d.index == tid]
        assert len(got) == 1 and got[0]["interpolated"] is True and got[0].confidence == 0.0
        expected = np.array(a) + (np.array(b) - np.array(a)) * j / 4
        np.testing.assert_allclose(got[0].bounding_box, expected, atol=1e-9)
    n_in = dataset.count("frames.tracks.detections")
    assert dataset.count("frames.post.detections") == n_in + 3
    from fiftyone_posetrack.fo.appconfig import tracked_fields

    assert "post" in tracked_fields(dataset), "the new field is coloured by track in the App"


def test_fo_stage_refuses_bad_input_and_keeps_labels(dataset):
    from fiftyone_posetrack.fo.postprocess import postprocess_tracks_field

    _with_gap(dataset)
    postprocess_tracks_field(dataset, "tracks", "post", {"interpolate": 5}, progress=False)
    before = (dataset.values("frames.tracks"), dataset.values("frames.post"))
    with pytest.raises(BadInputError, match="gsi_tau"):
        postprocess_tracks_field(dataset, "tracks", "post", {"gsi": True, "gsi_tau": float("nan")},
                                 overwrite=True, progress=False)  # fmt: skip
    with pytest.raises(BadInputError, match="interpolate"):
        postprocess_tracks_field(dataset, "tracks", "post", {"interpolate": -3}, overwrite=True, progress=False)
    with pytest.raises(BadInputError, match="overwrite_input"):
        postprocess_tracks_field(dataset, "tracks", "tracks", {"interpolate": 5}, progress=False)
    with pytest.raises(BadInputError, match="does not exist"):
        postprocess_tracks_field(dataset, "nope", "post2", {"interpolate": 5}, progress=False)
    assert (dataset.values("frames.tracks"), dataset.values("frames.post")) == before
    # untracked boxes (no index) are refused; the existing output stays as it was
    dataset.clone_frame_field("tracks", "raw")
    dataset.set_values("frames.raw.detections.index",
                       [[[None] * len(d or []) for d in s] for s in dataset.values("frames.raw.detections")])  # fmt: skip
    with pytest.raises(BadInputError):
        postprocess_tracks_field(dataset, "raw", "post", {"interpolate": 5}, overwrite=True, progress=False,
                                 raise_on_error=True)  # fmt: skip
    assert dataset.values("frames.tracks") == before[0]


def test_operator_writes_a_new_field(dataset, fo_home):
    import fiftyone as fo
    import fiftyone.operators as foo

    from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin

    install_plugin(fo.config.plugins_dir)
    tid, _ = _with_gap(dataset)
    before = dataset.values("frames.tracks")
    params = {"in_field": "tracks", "out_field": "post_op", "interpolate": 5, "gsi": False}
    result = foo.execute_operator(f"{PLUGIN_NAME}/postprocess_tracks",
                                  ctx={"dataset": dataset.name, "params": params, "request_delegation": False})  # fmt: skip
    assert result.error is None, result.error
    assert dataset.values("frames.tracks") == before
    frame = dataset.first().frames[9]
    assert [d.index for d in frame.post_op.detections if getattr(d, "interpolated", None)] == [tid]
    from fiftyone.operators.executor import ExecutionError

    with pytest.raises(ExecutionError, match="gsi_tau"):  # the form's own validation
        foo.execute_operator(f"{PLUGIN_NAME}/postprocess_tracks",
                             ctx={"dataset": dataset.name, "request_delegation": False,
                                  "params": dict(params, out_field="post_bad", gsi_tau=-1, gsi=True)})  # fmt: skip
    assert not dataset.has_frame_field("post_bad") or dataset.count("frames.post_bad.detections") == 0


# -- streaming (the pipeline's look-ahead buffer) ---------------------------------------


def _stream(tracks_by_frame, config, n_frames):
    from fiftyone_posetrack.tracking.postprocess import StreamPostprocessor
    from fiftyone_posetrack.types import FrameTracks

    sp = StreamPostprocessor(config)
    out, held = {}, 0
    for f in range(1, n_frames + 1):
        rows = tracks_by_frame.get(f, [])
        boxes = np.array([r[1] for r in rows], float).reshape(-1, 4)
        sp.push(f, f"payload{f}", FrameTracks(boxes, [r[0] for r in rows], [r[2] for r in rows]))
        for n, payload, t in sp.pop_ready():
            assert payload == f"payload{n}"
            out[n] = t
        held = max(held, f - (max(out) if out else 0))
    for n, payload, t in sp.flush():
        out[n] = t
    assert sorted(out) == list(range(1, n_frames + 1))  # every frame once, in order
    return out, held, sp.lookahead


def test_stream_interpolates_within_the_lookahead_and_holds_bounded_frames():
    box = lambda f: [10.0 * f, 20.0, 10.0 * f + 30, 100.0]  # noqa: E731
    frames = {f: [(1, box(f), 0.9)] for f in range(1, 31) if f not in (10, 11, 12)}
    out, held, look = _stream(frames, {"interpolate": 3}, 30)
    assert look == 4 and held <= look
    for f in (10, 11, 12):
        assert out[f].track_ids.tolist() == [1] and out[f].det_indices.tolist() == [-1]
        np.testing.assert_allclose(out[f].boxes[0], box(f))
        assert out[f].scores[0] == 0.0
    out, _, _ = _stream(frames, {"interpolate": 2}, 30)  # the gap is 3 > 2: left empty
    assert all(len(out[f]) == 0 for f in (10, 11, 12))


def test_stream_drops_short_tracks_and_keeps_long_ones_whole():
    frames = {f: [(1, [0, 0, 10, 20], 0.9)] for f in range(1, 21)}
    for f in (5, 6):
        frames[f].append((2, [50, 50, 60, 70], 0.9))  # a 2-frame flicker
    out, held, look = _stream(frames, {"min_length": 4}, 20)
    assert look == 4 and held <= look
    assert all(out[f].track_ids.tolist() == [1] for f in range(1, 21))


def test_stream_gsi_keeps_a_straight_track():
    box = lambda f: [3.0 * f, 2.0 * f, 3.0 * f + 40, 2.0 * f + 90]  # noqa: E731
    frames = {f: [(7, box(f), 0.8)] for f in range(1, 41)}
    out, _, look = _stream(frames, {"gsi": True, "gsi_tau": 5}, 40)
    assert look == 10
    for f in range(1, 41):
        np.testing.assert_allclose(out[f].boxes[0], box(f), atol=1e-6)


def test_stream_link_gives_a_reentering_person_the_old_id_and_fills_the_gap():
    box = lambda f: [4.0 * f, 50.0, 4.0 * f + 40, 150.0]  # noqa: E731
    frames = {f: [(1, box(f), 0.9)] for f in range(1, 21)}
    frames.update({f: [(2, box(f), 0.9)] for f in range(26, 41)})  # back after 5 frames, new tracker id
    for f in range(26, 41):
        frames[f].append((3, [900.0, 400.0, 940.0, 500.0], 0.9))  # a stranger appearing then
    out, _, _ = _stream(frames, {"link": True, "interpolate": 5}, 40)
    assert all(out[f].track_ids.tolist() == [1] for f in range(1, 26))
    assert all(out[f].track_ids.tolist() == [1, 3] for f in range(26, 41))
    for f in range(21, 26):
        np.testing.assert_allclose(out[f].boxes[0], box(f))
    out, _, _ = _stream(frames, {"interpolate": 5}, 40)  # without linking: two ids, no fill
    assert set(out[30].track_ids.tolist()) == {2, 3} and all(len(out[f]) == 0 for f in range(21, 26))


def test_pipeline_post_processing_poses_interpolated_boxes(crowd, shared_dir):
    """The streaming pipeline with post-processing: every frame comes out once and in
    order, interpolated boxes are real labels with poses, short tracks are gone."""
    from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline
    from fiftyone_posetrack.video import VideoReader

    base = PipelineConfig(models_dir=str(shared_dir / "models"), reid=None, batch_size=4)
    config = base.replace(post_interpolate=5, post_min_length=3, post_gsi=True, post_gsi_tau=2.0)
    pipeline = PoseTrackingPipeline(config)
    assert pipeline.post.lookahead == 6
    with VideoReader(crowd.video_path) as reader:
        results = list(pipeline.process(reader.batches(4)))
    assert [r.frame_number for r in results] == list(range(1, 21))
    ids = {}
    for r in results:
        assert len(r.poses) == len(r.tracks)
        np.testing.assert_array_equal(r.poses.track_ids, r.tracks.track_ids)
        for t in r.tracks.track_ids.tolist():
            ids[t] = ids.get(t, 0) + 1
    assert ids and min(ids.values()) >= 3
    assert "track_postprocess" in pipeline.timings
    with pytest.raises(BadInputError, match="post_interpolate"):
        base.replace(post_interpolate=-1)
    with pytest.raises(BadInputError, match="post_gsi_tau"):
        base.replace(post_gsi_tau=float("nan"))
