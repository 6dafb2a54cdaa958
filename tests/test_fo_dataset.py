"""FiftyOne glue against a real database (private temp FiftyOne home, see conftest)."""

import numpy as np
import pytest

import fiftyone as fo

from fiftyone_posetrack.fo.dataset import (
    add_videos,
    get_or_create_dataset,
    import_mot_ground_truth,
)
from fiftyone_posetrack.fo.labels import (
    detections_to_arrays,
    keypoints_to_arrays,
    poses_to_keypoints,
    tracks_to_detections,
    write_frame_labels,
)
from fiftyone_posetrack.formats.mot import write_mot
from fiftyone_posetrack.types import BadInputError, FramePoses, FrameTracks
from videos import make_video


@pytest.fixture()
def dataset(request):
    ds = get_or_create_dataset(f"t-{request.node.name}", persistent=False)
    yield ds
    ds.delete()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("fo") / "clip.mp4", frames=30, size=(200, 100))


def test_dataset_has_skeleton_and_metadata(dataset, clip):
    ids = add_videos(dataset, [clip])
    assert dataset.default_skeleton.labels[5] == "left_shoulder"
    assert len(dataset.default_skeleton.edges) == 19
    md = dataset[ids[0]].metadata
    assert (md.frame_width, md.frame_height, md.total_frame_count) == (200, 100, 30)
    assert add_videos(dataset, clip.parent) == ids, "a video is added once"
    assert len(dataset) == 1


def test_add_videos_refuses_bad_files_before_changing_dataset(dataset, clip, tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(BadInputError, match="corrupt.mp4"):
        add_videos(dataset, [clip, bad])
    assert len(dataset) == 0
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        add_videos(dataset, [tmp_path / "nope.mp4"])


def test_non_video_dataset_is_refused():
    ds = fo.Dataset()
    ds.add_sample(fo.Sample(filepath="/tmp/x.jpg"))
    with pytest.raises(BadInputError, match="not videos"):
        get_or_create_dataset(ds.name)
    ds.delete()


def test_labels_round_trip_through_the_database(dataset, clip):
    (sid,) = add_videos(dataset, [clip])
    W, H = 200, 100
    tracks = FrameTracks(np.array([[10, 20, 60, 90], [100, 5, 150, 95.0]]), [3, 7], [0.9, 0.4])
    kp = np.random.default_rng(0).uniform([0, 0], [W, H], size=(2, 17, 2))
    kp[1, 4] = np.nan
    poses = FramePoses(kp, np.full((2, 17), 0.7), [3, 7])
    written = write_frame_labels(
        dataset,
        {
            "pred_detections": {sid: {n: tracks_to_detections(tracks, W, H) for n in (1, 2, 30)}},
            "pred_keypoints": {sid: {2: poses_to_keypoints(poses, W, H)}},
        },
    )
    assert written >= 0
    sample = dataset[sid]
    assert sample.frames[1].pred_detections is not None
    assert sample.frames[3].pred_detections is None
    boxes, scores, index = detections_to_arrays(sample.frames[30].pred_detections, W, H)
    np.testing.assert_allclose(boxes, tracks.boxes, atol=1e-9)
    np.testing.assert_allclose(scores, [0.9, 0.4])
    assert index.tolist() == [3, 7]
    pts, conf, index = keypoints_to_arrays(sample.frames[2].pred_keypoints, W, H)
    np.testing.assert_allclose(pts, kp, atol=1e-9)
    assert np.isnan(pts[1, 4]).all() and index.tolist() == [3, 7]
    # detections and keypoints of a person share `index`
    assert [d.index for d in sample.frames[2].pred_detections.detections] == [
        k.index for k in sample.frames[2].pred_keypoints.keypoints
    ]


def test_write_frame_labels_rejects_bad_frame_numbers(dataset, clip):
    (sid,) = add_videos(dataset, [clip])
    with pytest.raises(BadInputError, match="frame numbers"):
        write_frame_labels(dataset, {"x": {sid: {0: fo.Detections()}}})


def test_import_mot_ground_truth(dataset, clip, tmp_path):
    (sid,) = add_videos(dataset, [clip])
    rows = np.array(
        [[1, 1, 10, 10, 50, 80, 1, 1, 0.8], [1, 2, 100, 0, 40, 60, 1, 7, 1.0], [5, 1, 12, 11, 50, 80, 1, 1, 0.5]]
    )
    write_mot(tmp_path / "gt.txt", rows, gt=True)
    assert import_mot_ground_truth(dataset[sid], tmp_path / "gt.txt") == 3
    sample = dataset[sid]
    dets = sample.frames[1].gt_detections.detections
    assert [d.index for d in dets] == [1, 2]
    assert dets[0].bounding_box == pytest.approx([0.05, 0.1, 0.25, 0.8])
    assert dets[0].visibility == pytest.approx(0.8)
    assert [d.ignore for d in dets] == [False, True]
    rows[2, 0] = 31
    write_mot(tmp_path / "late.txt", rows, gt=True)
    with pytest.raises(BadInputError, match="has frame 31 but the video"):
        import_mot_ground_truth(dataset[sid], tmp_path / "late.txt", field="other")
    assert not dataset.has_frame_field("other")


def test_mot_import_keeps_every_column(dataset, clip, tmp_path):
    from fiftyone_posetrack.formats.mot import read_mot
    from fiftyone_posetrack.fo.labels import sample_to_mot

    (sid,) = add_videos(dataset, [clip])
    rows = np.array(
        [
            [1, 1, 10, 10, 50, 80, 1, 1, 0.8],
            [1, 2, 100, 0, 40, 60, 0, 1, 1.0],  # conf 0: not evaluated
            [2, 3, 20, 20, 30, 30, 1, 3, 0.5],  # a car
            [2, 4, 60, 20, 30, 30, 1, 7, 1.0],  # a distractor (static person)
        ]
    )
    write_mot(tmp_path / "gt.txt", rows, gt=True)
    import_mot_ground_truth(dataset[sid], tmp_path / "gt.txt")
    back = sample_to_mot(dataset[sid], "gt_detections")
    np.testing.assert_allclose(back, read_mot(tmp_path / "gt.txt"), atol=1e-6)
    assert dataset.count_values("frames.gt_detections.detections.ignore") == {False: 1, True: 3}


def test_posetrack_import_keeps_head_boxes_regions_and_names(tmp_path, shared_dir):
    from fiftyone_posetrack.formats.posetrack import read_posetrack_json
    from fiftyone_posetrack.fo.dataset import import_posetrack_keypoints

    src = sorted((shared_dir / "data/keypoints/posetrack18/annotations/val").glob("*.json"))[0]
    video = read_posetrack_json(src)
    ds = get_or_create_dataset("pt-import", persistent=False)
    try:
        clip = make_video(tmp_path / "pt.mp4", frames=len(video.frames), size=(1920, 1080), fps=5)
        (sid,) = add_videos(ds, [clip])
        n = import_posetrack_keypoints(ds[sid], src)
        labelled = [f for f in video.frames if f.is_labeled]
        assert n == sum(len(f.track_ids) for f in labelled) > 0
        frame = labelled[0]
        kp = ds[sid].frames[frame.frame_index + 1].gt_keypoints.keypoints[0]
        x1, y1, x2, y2 = frame.head_boxes[0]
        assert kp.bbox_head == pytest.approx([x1 / 1920, y1 / 1080, (x2 - x1) / 1920, (y2 - y1) / 1080])
        assert ds.skeletons["gt_keypoints"].labels == list(video.keypoint_names)
        if any(f.ignore_regions for f in video.frames):
            assert ds.count("frames.gt_ignore.polylines") > 0
    finally:
        ds.delete()


def test_read_videos_by_cursor_equals_the_view_read(dataset, clip):
    """The indexed-cursor read gives what FiftyOne's view read gives; views filtering frames keep their filters."""
    from fiftyone import ViewField as F

    from fiftyone_posetrack.fo.labels import _direct, read_videos

    (sid,) = add_videos(dataset, [clip])
    per_frame = {
        n: fo.Detections(detections=[
            fo.Detection(label="person", bounding_box=[0.1, 0.1, 0.2, 0.3], confidence=0.3, index=1),
            fo.Detection(label="person", bounding_box=[0.5, 0.2, 0.2, 0.3], confidence=0.9, index=2),
        ])
        for n in range(1, 31, 3)
    }  # fmt: skip
    write_frame_labels(dataset, {"boxes": {sid: per_frame}})
    everything = dataset.filter_labels("frames.boxes", F("confidence") > 0, only_matches=False)
    assert _direct(dataset) and _direct(dataset.select(sid)) and not _direct(everything)
    (direct,) = read_videos(dataset, ["boxes"])
    (viewed,) = read_videos(everything, ["boxes"])
    assert direct.frame_numbers == viewed.frame_numbers and direct.frame_ids == viewed.frame_ids
    assert [n for n, lab in zip(direct.frame_numbers, direct.labels["boxes"]) if lab is not None] == list(per_frame)
    for a, b in zip(direct.labels["boxes"], viewed.labels["boxes"]):
        assert (a is None) == (b is None)
        if a is not None:
            assert [(d.index, d.bounding_box, d.id) for d in a.detections] == [
                (d.index, d.bounding_box, d.id) for d in b.detections
            ]
    (high,) = read_videos(dataset.filter_labels("frames.boxes", F("confidence") > 0.5, only_matches=False), ["boxes"])
    kept = {d.index for lab in high.labels["boxes"] if lab is not None for d in lab.detections}
    assert kept == {2}, "the view's label filter applies"
    assert direct.name == "clip" and (direct.width, direct.height) == (200, 100)


def test_frame_ids_created_by_two_writers_at_once_are_one_set(dataset, clip):
    """Runs that create a video's frame documents at the same moment (two runs on one video, or one
    stopped between its read and its insert) get the same ids, and each frame exists once.

    (Before, the second insert died with E11000 on ``_sample_id_1_frame_number``: CI, 2026-12-07.)
    """
    import threading

    from fiftyone_posetrack.fo.labels import frame_ids

    (sid,) = add_videos(dataset, [clip])
    numbers = list(range(1, 3001))
    for attempt in range(3):  # fresh frame numbers each time, so every writer finds them missing
        wanted = [n + attempt * 10_000 for n in numbers]
        start, results, errors = threading.Barrier(6), [], []

        def create():
            start.wait()
            try:
                results.append(frame_ids(dataset, sid, wanted))
            except Exception as e:  # noqa: BLE001 (the assertion below names it)
                errors.append(e)

        threads = [threading.Thread(target=create) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        assert len(results) == 6 and all(r == results[0] for r in results), "every writer got the same ids"
        assert sorted(results[0]) == wanted
    docs = list(dataset._frame_collection.find({}, {"_sample_id": 1, "frame_number": 1}))
    keys = [(d["_sample_id"], d["frame_number"]) for d in docs]
    assert len(keys) == len(set(keys)) == 3 * len(numbers), "each frame exists once"
