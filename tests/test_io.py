"""MOTChallenge / PoseTrack import and export (fiftyone_posetrack.fo.io) on real files."""

import os
import shutil

import cv2
import numpy as np
import pytest

import fiftyone as fo

from fiftyone_posetrack.fo import io
from fiftyone_posetrack.formats.mot import read_mot, write_mot
from fiftyone_posetrack.formats.posetrack import read_posetrack_json, write_posetrack_json
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import VideoReader, probe_video

FRAMES = 12


@pytest.fixture(scope="module")
def seqs(tmp_path_factory):
    """SYN-01: video.mp4 + img1 + gt (synth layout); SYN-02: img1 + gt + det + seqinfo only (MOTChallenge)."""
    root = tmp_path_factory.mktemp("io") / "MOT-synth" / "train"
    a = render_crowd(root / "SYN-01", people=4, frames=FRAMES, width=320, height=192, seed=1, save_images=True)
    b = root / "SYN-02"
    (b / "gt").mkdir(parents=True)
    shutil.copytree(a.image_dir, b / "img1")
    shutil.copy(a.gt_path, b / "gt" / "gt.txt")
    det = a.mot.copy()
    det[:, 1] = -1
    det[:, 6] = np.linspace(0.3, 0.99, len(det))
    write_mot(b / "det" / "det.txt", det)
    (b / "seqinfo.ini").write_text(open(a.seqinfo_path).read().replace("SYN-01", "SYN-02").replace("frameRate=25", "frameRate=10"))
    return root, a


@pytest.fixture()
def dataset(fo_home):
    ds = fo.Dataset()
    yield ds
    ds.delete()


def test_import_mot_sequences_encodes_images_and_reads_gt(dataset, seqs, tmp_path):
    root, synth = seqs
    out = io.import_mot_sequences(dataset, root.parent, det_field="public", videos_dir=tmp_path / "enc")
    assert out["sequences"] == ["SYN-01", "SYN-02"]
    assert out["gt_boxes"] == 2 * len(synth.mot) and out["det_boxes"] == len(synth.mot)
    by_name = {s.sequence: s for s in dataset}
    assert by_name["SYN-01"].filepath == synth.video_path, "video.mp4 is used as is"
    encoded = by_name["SYN-02"].filepath
    assert encoded == str(tmp_path / "enc" / "SYN-02.mp4")
    info = probe_video(encoded)
    assert info.frame_count == FRAMES and info.codec == "h264" and info.fps == pytest.approx(10.0)
    with VideoReader(encoded) as reader:
        for n, frame in reader:
            img = cv2.imread(os.path.join(synth.image_dir, f"{n:06d}.jpg"))
            assert np.abs(frame.astype(int) - img).mean() < 6, f"frame {n} is image {n}"
    for name in ("SYN-01", "SYN-02"):
        s = by_name[name]
        assert len(s.frames) == FRAMES
        np.testing.assert_allclose(
            io.sample_to_mot(s, "gt_detections")[:, 2:6], synth.mot[np.argsort(synth.mot[:, 0], kind="stable")][:, 2:6], atol=1e-6
        )
    public = io.sample_to_mot(by_name["SYN-02"], "public")
    assert (public[:, 1] == -1).all() and public[:, 6].max() == pytest.approx(0.99)

    mtime = os.path.getmtime(encoded)
    again = io.import_mot_sequences(dataset, root.parent, videos_dir=tmp_path / "enc")
    assert len(dataset) == 2 and again["sample_ids"] == out["sample_ids"], "no duplicates"
    assert os.path.getmtime(encoded) == mtime, "the encoded video is reused"


def test_odd_sized_images_are_padded(tmp_path):
    seq = tmp_path / "ODD" / "img1"
    seq.mkdir(parents=True)
    for i in range(1, 4):
        cv2.imwrite(str(seq / f"{i:06d}.jpg"), np.full((51, 77, 3), 40 * i, np.uint8))
    path = io.encode_images(sorted(str(p) for p in seq.iterdir()), tmp_path / "odd.mp4", fps=5)
    info = probe_video(path)
    assert (info.width, info.height, info.frame_count) == (78, 52, 3)
    assert not list(tmp_path.glob("*.part.mp4"))


def test_mot_import_errors_name_the_problem(dataset, seqs, tmp_path):
    root, synth = seqs
    with pytest.raises(FileNotFoundError, match="no such directory"):
        io.import_mot_sequences(dataset, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no MOTChallenge sequence"):
        io.import_mot_sequences(dataset, tmp_path / "empty")
    bad = tmp_path / "BAD"
    shutil.copytree(root / "SYN-02", bad)
    (bad / "seqinfo.ini").write_text((bad / "seqinfo.ini").read_text().replace(f"seqLength={FRAMES}", "seqLength=99"))
    with pytest.raises(BadInputError, match="seqLength=99 but the image folder has 12"):
        io.import_mot_sequences(dataset, bad)
    (bad / "seqinfo.ini").write_text((bad / "seqinfo.ini").read_text().replace("seqLength=99", f"seqLength={FRAMES}"))
    (bad / "gt" / "gt.txt").write_text("1,2,3\n")
    with pytest.raises(BadInputError, match="gt.txt"):
        io.import_mot_sequences(dataset, bad)
    assert len(dataset) == 0, "bad input changes nothing"


def test_posetrack_import_onto_existing_videos_and_export_round_trip(dataset, seqs, tmp_path):
    root, synth = seqs
    io.import_mot_sequences(dataset, root / "SYN-01")
    out = io.import_posetrack(dataset, synth.posetrack_path)
    assert out["videos"] == ["SYN-01"] and len(dataset) == 1
    original = read_posetrack_json(synth.posetrack_path)
    assert out["poses"] == sum(len(f) for f in original.frames)
    sample = dataset.first()
    assert sample.posetrack_info["labeled"] == list(range(1, FRAMES + 1))
    kp = sample.frames[3].gt_keypoints.keypoints[0]
    assert kp.bbox_head is not None and len(kp.visibility) == 17
    assert dataset.count("frames.gt_detections.detections") == len(synth.mot)

    (path,) = io.export_posetrack(dataset, "gt_keypoints", tmp_path / "pt", detections_field="gt_detections")
    assert os.path.basename(path) == "SYN-01.json"
    back = read_posetrack_json(path)
    assert back.name == "SYN-01" and len(back.frames) == FRAMES
    for a, b in zip(original.frames, back.frames):
        assert a.file_name == b.file_name and list(a.track_ids) == list(b.track_ids)
        seen = a.visibility > 0
        np.testing.assert_allclose(b.keypoints[seen], a.keypoints[seen], atol=1e-6)
        assert (b.visibility[~seen] == 0).all() and (b.keypoints[~seen] == 0).all()
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-6)

    (p2,) = io.export_posetrack(dataset, "gt_keypoints", tmp_path / "pt18", posetrack_joints=True)
    video = read_posetrack_json(p2)
    assert video.keypoint_names[:3] == ("nose", "head_bottom", "head_top")
    nose = original.frames[0].keypoints[:, 0]
    np.testing.assert_allclose(video.frames[0].keypoints[:, 0][original.frames[0].visibility[:, 0] > 0],
                               nose[original.frames[0].visibility[:, 0] > 0], atol=1e-6)  # fmt: skip
    assert (video.frames[0].visibility[:, 1:3] == 0).all(), "COCO-17 has no head_bottom / head_top"


def test_posetrack_import_from_images_with_ignore_regions(dataset, seqs, tmp_path):
    root, synth = seqs
    video = read_posetrack_json(synth.posetrack_path)
    video.name = "PT-VIDEO"
    region = np.array([[0, 0], [40, 0], [40, 30], [0, 30]], dtype=float)
    video.frames[2].ignore_regions = [region]
    write_posetrack_json(tmp_path / "ann" / "pt.json", video)
    with pytest.raises(BadInputError, match="no sample of the dataset is the video 'PT-VIDEO'"):
        io.import_posetrack(dataset, tmp_path / "ann")
    out = io.import_posetrack(dataset, tmp_path / "ann", image_root=synth.out_dir, videos_dir=tmp_path / "enc")
    assert out["videos"] == ["PT-VIDEO"]
    sample = dataset.first()
    assert sample.filepath == str(tmp_path / "enc" / "PT-VIDEO.mp4") and sample.sequence == "PT-VIDEO"
    assert sample.metadata.total_frame_count == FRAMES
    poly = sample.frames[3].gt_ignore.polylines[0]
    np.testing.assert_allclose(np.array(poly.points[0]) * [320, 192], region)
    assert sample.frames[2].gt_ignore is None


def test_mot_export_round_trip_and_errors(dataset, seqs, tmp_path):
    root, synth = seqs
    io.import_mot_sequences(dataset, root, videos_dir=tmp_path / "enc")
    paths = io.export_mot(dataset, "gt_detections", tmp_path / "gt", gt=True)
    assert [os.path.relpath(p, tmp_path / "gt") for p in paths] == ["SYN-01/gt/gt.txt", "SYN-02/gt/gt.txt"]
    assert (tmp_path / "gt" / "SYN-02" / "seqinfo.ini").read_text().count("seqLength=12") == 1
    back = read_mot(paths[0])
    ref = synth.mot[np.lexsort((synth.mot[:, 1], synth.mot[:, 0]))]
    np.testing.assert_allclose(back[:, :6], ref[:, :6], atol=1e-4)
    np.testing.assert_allclose(back[:, 8], ref[:, 8], atol=1e-4)
    results = io.export_mot(dataset, "gt_detections", tmp_path / "res")
    assert sorted(os.listdir(tmp_path / "res")) == ["SYN-01.txt", "SYN-02.txt"]
    assert read_mot(results[1]).shape == (len(synth.mot), 9)

    with pytest.raises(BadInputError, match="exists"):
        io.export_mot(dataset, "gt_detections", tmp_path / "res")
    with pytest.raises(BadInputError, match="frame field 'nope' does not exist"):
        io.export_mot(dataset, "gt_detections".replace("gt_detections", "nope"), tmp_path / "x")
    dataset.set_values("sequence", ["same", "same"])
    with pytest.raises(BadInputError, match=r"several videos are named \['same'\]"):
        io.export_mot(dataset, "gt_detections", tmp_path / "y")
    with pytest.raises(BadInputError, match="keypoints_field: frame field 'gt_detections' holds Detections"):
        io.export_posetrack(dataset, "gt_detections", tmp_path / "z")


def test_posetrack_export_needs_track_ids(dataset, seqs, tmp_path):
    root, synth = seqs
    io.import_mot_sequences(dataset, root / "SYN-01")
    io.import_posetrack(dataset, synth.posetrack_path)
    dataset.set_values(
        "frames.gt_keypoints.keypoints.index",
        [[[None] * len(f or []) for f in s] for s in dataset.values("frames.gt_keypoints.keypoints")],
    )
    with pytest.raises(BadInputError, match="without `index`"):
        io.export_posetrack(dataset, "gt_keypoints", tmp_path / "pt")
    assert io.video_name(dataset.first()) == "SYN-01"


def test_export_posetrack_ground_truth_through_the_operator(dataset, seqs, tmp_path):
    """gt=True (form option): visibility flags, the imported head boxes, no scores; the default writes scores."""
    import fiftyone.operators as foo

    from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin

    install_plugin(fo.config.plugins_dir)
    root, synth = seqs
    io.import_mot_sequences(dataset, root / "SYN-01")
    io.import_posetrack(dataset, synth.posetrack_path)
    original = read_posetrack_json(synth.posetrack_path)
    for gt in (True, False):
        params = {"keypoints_field": "gt_keypoints", "detections_field": "gt_detections",
                  "out_dir": str(tmp_path / str(gt)), "gt": gt}  # fmt: skip
        ctx = {"dataset": dataset.name, "params": params, "request_delegation": False}
        result = foo.execute_operator(f"{PLUGIN_NAME}/export_posetrack", ctx=ctx)
        assert result.error is None, result.error
        (path,) = result.result["files"]
        back = read_posetrack_json(path)
        for a, b in zip(original.frames, back.frames):
            if gt:
                assert b.scores is None and np.array_equal(b.visibility, a.visibility)
                np.testing.assert_allclose(b.head_boxes, a.head_boxes, atol=1e-6)
            else:
                assert b.scores is not None and b.head_boxes is None


def test_imports_are_recorded_as_runs_that_jobs_do_not_overwrite(dataset, seqs, tmp_path, capsys):
    """An import's record names its source, fields and videos; a job refuses its fields by naming it."""
    from fiftyone_posetrack.cli import main
    from fiftyone_posetrack.fo.runs import get_run, list_runs
    from fiftyone_posetrack.fo.stages import track_detections

    root, synth = seqs
    out = io.import_mot_sequences(dataset, root, det_field="public", videos_dir=tmp_path / "enc")
    record = get_run(dataset, out["run_key"])
    assert record["job"] == "MOT import" and record["fields"] == ["gt_detections", "public"]
    assert record["options"]["root"] == str(root) and record["status_field"] is None
    assert record["videos"] == {i: {"status": "done", "frames": FRAMES, "seconds": 0.0} for i in out["sample_ids"]}
    pt = io.import_posetrack(dataset, synth.posetrack_path, ignore_field=None)  # onto SYN-01
    record = get_run(dataset, pt["run_key"])
    assert record["job"] == "PoseTrack import" and record["fields"] == ["gt_keypoints", "gt_detections"]
    assert record["options"]["path"] == str(synth.posetrack_path) and list(record["videos"]) == pt["sample_ids"]

    dataset.persistent = True  # the CLI reads it by name
    assert main(["runs", dataset.name]) == 0
    assert out["run_key"] in capsys.readouterr().out and list_runs(dataset.name)[0] == out["run_key"]

    before = dataset.values("frames.gt_detections")
    with pytest.raises(BadInputError, match=rf"run '{pt['run_key']}' \(PoseTrack import\) wrote them"):  # the latest
        track_detections(dataset, "public", "gt_detections", tracker="sort", progress=False)
    assert dataset.values("frames.gt_detections") == before
