"""Imports and input files (issue 21, cases 2, 6, 9, 10, 11; issue 19's non-integer frames).

Every refused import leaves the dataset exactly as it was: the sample and
frame documents compare equal byte for byte (:func:`test_bad_input.snapshot`),
and so do the run records and the field schemas (:func:`state`).
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
import shutil
import subprocess

import numpy as np
import pytest

import fiftyone as fo

from fiftyone_posetrack.fo import io
from fiftyone_posetrack.fo.dataset import (
    add_videos,
    import_mot_ground_truth,
    import_posetrack_keypoints,
    load_synth,
)
from fiftyone_posetrack.fo.stages import track_detections
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError
from test_bad_input import snapshot
from videos import make_video

FRAMES = 12
GOOD = "1,1,10,10,20,40,1,1,1"


def state(dataset):
    """The documents, the run records and the schemas: everything an import may change."""
    dataset.reload()
    return (
        snapshot(dataset),
        sorted(dataset.list_runs()),
        sorted(dataset.get_field_schema()),
        sorted(dataset.get_frame_field_schema() or {}),
        len(dataset),
    )


@pytest.fixture(scope="module")
def crowds(tmp_path_factory):
    root = tmp_path_factory.mktemp("import-crowds")
    return [render_crowd(root / f"c{s}", people=3, frames=FRAMES, width=320, height=192, seed=s) for s in (0, 1)]


def _tracked_dataset(crowds, name):
    """Two synthetic videos (``sequence`` c0, c1) with ground truth, ``pred_detections`` tracked from it (a run)."""
    ds = load_synth(crowds[0].out_dir, name, overwrite=True)
    load_synth(crowds[1].out_dir, name)
    for sample, crowd in zip(ds, crowds):
        sample["sequence"] = pathlib.Path(crowd.out_dir).name
        sample.save()
    track_detections(ds, "gt_detections", "pred_detections", tracker="sort", progress=False)
    return ds


@pytest.fixture(scope="module")
def dataset(crowds):
    """:func:`_tracked_dataset`, shared by the tests of refused imports (which change nothing)."""
    ds = _tracked_dataset(crowds, "imports-refused")
    yield ds
    ds.delete()


@pytest.fixture()
def own_dataset(crowds, request):
    """:func:`_tracked_dataset` for a test that changes it."""
    ds = _tracked_dataset(crowds, f"imports-{request.node.name}"[:60])
    yield ds
    ds.delete()


@pytest.fixture()
def empty(fo_home):
    ds = fo.Dataset()
    yield ds
    ds.delete()


# --------------------------------------------------------------------------- case 2: import over a run's field


def test_imports_refuse_a_field_a_run_wrote(dataset, crowds):
    """Case 2: ground truth imported into ``pred_detections`` replaced the predictions while they stayed done."""
    before = state(dataset)
    sample = dataset.first()
    refused = r"frame field 'pred_detections' holds labels that run 'posetrack_run_\d+' \(tracking\) wrote them.*overwrite_fields=\['pred_detections'\]"
    with pytest.raises(BadInputError, match=refused):
        io.import_mot_sequences(dataset, crowds[0].out_dir, gt_field="pred_detections")
    assert state(dataset) == before
    with pytest.raises(BadInputError, match=refused):
        import_mot_ground_truth(sample, crowds[0].gt_path, "pred_detections")
    assert state(dataset) == before
    with pytest.raises(BadInputError, match=refused):
        io.import_posetrack(dataset, crowds[0].posetrack_path, detections_field="pred_detections")
    assert state(dataset) == before
    with pytest.raises(BadInputError, match=r"frame field 'pred_detections' exists with type Detections, not Polylines"):
        import_posetrack_keypoints(sample, crowds[0].posetrack_path, field="gt_keypoints", regions_field="pred_detections")
    assert state(dataset) == before


def test_naming_the_field_replaces_it_and_the_run_is_no_longer_done(own_dataset, crowds):
    """With ``overwrite_fields`` the import replaces the field; its videos are no longer ``done`` by the run."""
    dataset = own_dataset
    io.import_mot_sequences(dataset, crowds[0].out_dir)  # an import's own field may be imported into again
    first, second = dataset.values("id")
    out = io.import_mot_sequences(dataset, crowds[0].out_dir, gt_field="pred_detections", overwrite_fields=["pred_detections"])
    assert out["sample_ids"] == [first]
    assert dataset.select(first).values("pred_detections_status") == [None]
    assert dataset.select(second).values("pred_detections_status") == ["done"]
    gt = dataset.select(first).values("frames.gt_detections.detections.bounding_box")
    assert dataset.select(first).values("frames.pred_detections.detections.bounding_box") == gt
    summary = track_detections(dataset, "gt_detections", "pred_detections", tracker="sort", progress=False)
    assert summary.processed == [first], "the replaced video is tracked again, not 'already done'"


# --------------------------------------------------------------------------- case 6: all or nothing


def _two_sequences(root, crowd, bad_line):
    """``A`` (good: the crowd's video and ground truth) and ``B`` (its copy, one bad line appended)."""
    for name in ("A", "B"):
        seq = root / name
        (seq / "gt").mkdir(parents=True)
        shutil.copy(crowd.video_path, seq / "video.mp4")
        shutil.copy(crowd.gt_path, seq / "gt" / "gt.txt")
    with open(root / "B" / "gt" / "gt.txt", "a") as f:
        f.write(bad_line + "\n")
    return root


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("3,100000000000000000000,10,10,20,40,1,1,1", r"gt.txt:\d+: id 1e\+20 is beyond the largest track id"),
        (f"3,{2**63},10,10,20,40,1,1,1", r"gt.txt:\d+: id 9.22337e\+18 is beyond the largest track id"),
        ("3,1e30,10,10,20,40,1,1,1", r"gt.txt:\d+: id 1e\+30 is beyond"),
        ("3,99,5000,10,20,40,1,1,1", r"box of id 99 at frame 3 .* lies entirely outside the 320x192 video"),
        ("3,99,10,-900,20,40,1,1,1", r"lies entirely outside the 320x192 video"),
        (f"{FRAMES + 1},99,10,10,20,40,1,1,1", rf"gt.txt:\d+: frame {FRAMES + 1} is beyond the last frame allowed, {FRAMES}"),
    ],
)
def test_a_failed_import_leaves_the_dataset_as_it_was(dataset, crowds, tmp_path, bad_line, message):
    """Case 6: the second sequence's bad ids / boxes left the first's samples and labels (raw OverflowError)."""
    root = _two_sequences(tmp_path / "root", crowds[0], bad_line)
    before = state(dataset)
    with pytest.raises(BadInputError, match=message):
        io.import_mot_sequences(dataset, root, gt_field="gt2")
    assert state(dataset) == before
    empty = fo.Dataset()
    try:
        with pytest.raises(BadInputError, match=message):
            io.import_mot_sequences(empty, root)
        assert len(empty) == 0 and not empty.has_sample_field("sequence") and empty.list_runs() == []
    finally:
        empty.delete()


def test_a_failed_posetrack_import_leaves_the_dataset_as_it_was(dataset, crowds, tmp_path):
    """Two files, the second with a track id beyond 2**53: nothing of the first is written."""
    data = json.loads(pathlib.Path(crowds[1].posetrack_path).read_text())
    data["annotations"][-1]["track_id"] = 1e30
    folder = tmp_path / "pt"
    folder.mkdir()
    shutil.copy(crowds[0].posetrack_path, folder / "a.json")
    (folder / "b.json").write_text(json.dumps(data))
    before = state(dataset)
    with pytest.raises(BadInputError, match=r"b.json: annotation id .*'track_id' 1e\+30 is beyond the largest track id"):
        io.import_posetrack(dataset, folder, keypoints_field="kp2", detections_field=None)
    assert state(dataset) == before


# --------------------------------------------------------------------------- cases 10, 11: odd MOT files


BAD_MOT = [
    ("2,1,10,10,20,40,1,1,1\n1.5,2,10,10,20,40,1,1,1", r":2: frame 1.5 is not an integer"),
    ("1,1.2,10,10,20,40,1,1,1\n1,1.7,10,10,20,40,1,1,1", r":1: id 1.2 is not an integer"),
    (f"{GOOD}\n1,1_0,10,10,20,40,1,1,1", r":2: not a MOT line: '1_0' is not a plain decimal number"),
    (f"{GOOD}\n1,1e30,10,10,20,40,1,1,1", r":2: id 1e\+30 is beyond the largest track id"),
    (f"{GOOD}\n2,3,10,10,20,40,1,1,1\n1,1,30,30,20,40,1,1,1", r":3: id 1 appears twice in frame 1"),
    (f"{GOOD}\n1,2,10,10,20,40,nan,1,1", r":2: conf is NaN or inf"),
    (f"{GOOD}\n1,2,10,10,20,40,inf,1,1", r":2: conf is NaN or inf"),
    (f"{GOOD}\n1,2,10,10,20,40,1,1,-0.5", r":2: visibility -0.5 is outside \[0, 1\]"),
    (f"{GOOD}\n1,2,10,10,20,40,high,1,1", r":2: not a MOT line: 'high' is not a plain decimal number"),
    (f"{GOOD}\n1,2,10,10,20,40,\"0.9\",1,1", r":2: not a MOT line: '\"0.9\"'"),
    (f"{GOOD}\n1,2,10,10,20,40,1,1.5,1", r":2: class 1.5 is not an integer"),
]


@pytest.mark.parametrize("text, message", BAD_MOT)
def test_odd_mot_files_are_refused_and_change_nothing(dataset, tmp_path, text, message):
    """Case 11 (silent coercion) and case 10 (tracebacks): refused naming file:line and the value."""
    path = tmp_path / "gt.txt"
    path.write_text(text + "\n")
    before = state(dataset)
    with pytest.raises(BadInputError, match=message):
        import_mot_ground_truth(dataset.first(), path, "gt2")
    assert state(dataset) == before


def test_non_utf8_mot_file_names_file_and_line(dataset, tmp_path):
    path = tmp_path / "gt.txt"
    path.write_bytes(f"{GOOD}\n1,2,10,10,20,40,1,1,\xff\n".encode("latin-1"))
    before = state(dataset)
    with pytest.raises(BadInputError, match=r"gt.txt:2: not UTF-8 text \(byte 0xff"):
        import_mot_ground_truth(dataset.first(), path, "gt2")
    assert state(dataset) == before


def test_frames_far_apart_are_refused_in_seconds(tmp_path):
    """Issue 19 / case 5: rows at frame 1 and 100000000 are refused by the parser, not looped over."""
    from fiftyone_posetrack.formats.mot import read_mot

    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,10,20,40,0.9\n100000000,-1,10,10,20,40,0.9\n")
    with pytest.raises(BadInputError, match=r"det.txt:2: frame 100000000 is beyond the last frame allowed, 1000000"):
        read_mot(path)
    assert len(read_mot(path, max_frame=None)) == 2, "callers that bound frames themselves may lift the limit"


# --------------------------------------------------------------------------- case 10: odd PoseTrack files


def _posetrack_with(crowd, tmp_path, change):
    data = json.loads(pathlib.Path(crowd.posetrack_path).read_text())
    change(data)
    path = tmp_path / "pt.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["annotations"][0].__setitem__("track_id", 1e30), r"'track_id' 1e\+30 is beyond the largest track id"),
        (lambda d: d["annotations"][0].__setitem__("scores", ["0.9"] * 17), r"'scores' must be a list of numbers, got '0.9'"),
        (lambda d: d["annotations"][0].__setitem__("keypoints", ["1"] * 51), r"'keypoints' must be a list of numbers, got '1'"),
        (lambda d: d["annotations"][0].__setitem__("bbox", ["1", 2, 3, 4]), r"'bbox' must be a list of numbers"),
        (lambda d: d["images"][0].__setitem__("nframes", 1e12), r"has nframes 1000000000000.0, expected an integer 0 to"),
    ],
)
def test_odd_posetrack_files_are_refused_and_change_nothing(dataset, crowds, tmp_path, change, message):
    path = _posetrack_with(crowds[0], tmp_path, change)
    before = state(dataset)
    with pytest.raises(BadInputError, match=message):
        io.import_posetrack(dataset, path, keypoints_field="kp2", detections_field=None)
    assert state(dataset) == before


# --------------------------------------------------------------------------- case 10: NUL bytes, folders


def test_nul_bytes_and_folders_in_paths(dataset, crowds, tmp_path):
    before = state(dataset)
    sample = dataset.first()
    nul = str(tmp_path / "a\x00b")
    for call in (
        lambda: add_videos(dataset, [nul + ".mp4"]),
        lambda: io.import_mot_sequences(dataset, nul),
        lambda: io.import_posetrack(dataset, nul + ".json"),
        lambda: import_mot_ground_truth(sample, nul + ".txt", "gt2"),
        lambda: import_posetrack_keypoints(sample, nul + ".json", "kp2"),
    ):
        with pytest.raises(BadInputError, match=r"contains a NUL byte"):
            call()
    with pytest.raises(BadInputError, match=r"MOT file: .* is a folder, expected a file"):
        import_mot_ground_truth(sample, tmp_path, "gt2")
    with pytest.raises(BadInputError, match=r"PoseTrack file: .* is a folder, expected a file"):
        import_posetrack_keypoints(sample, tmp_path, "kp2")
    with pytest.raises(BadInputError, match=r"MOT sequences folder: .* is a file, expected a folder"):
        io.import_mot_sequences(dataset, crowds[0].gt_path)
    assert state(dataset) == before


# --------------------------------------------------------------------------- case 9: odd video files


def test_a_jpeg_named_mp4_adds_nothing(empty, tmp_path):
    """Case 9: the JPEG left a sample behind after its error, and a second add_videos said OK."""
    import cv2

    good = make_video(tmp_path / "good.mp4", frames=10)
    fake = tmp_path / "photo.mp4"
    cv2.imwrite(str(tmp_path / "photo.jpg"), np.full((96, 160, 3), 120, np.uint8))
    shutil.copy(tmp_path / "photo.jpg", fake)
    for _ in range(2):
        with pytest.raises(BadInputError, match=r"none was added: .*photo.mp4 is a JPEG image, not a video"):
            add_videos(empty, [good, fake])
        assert len(empty) == 0
    (sid,) = add_videos(empty, [good])
    assert empty[sid].metadata.total_frame_count == 10 and getattr(empty[sid].metadata, "fingerprint", None)


@pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="needs ffmpeg/ffprobe")
def test_variable_frame_rate_is_refused_with_advice_that_helps(empty, tmp_path):
    """Case 9: a VFR mkv failed later with advice (ensure_metadata(overwrite=True)) that does not help."""
    vfr = tmp_path / "vfr.mkv"  # 20 frames at 10 fps, then 20 at 30 fps; the header says 80 frames
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x96:rate=30", "-frames:v", "40",
         "-vf", "setpts='if(lt(N,20),N/10,2+(N-20)/30)/TB'", "-fps_mode", "passthrough", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", str(vfr)],
        check=True,
    )  # fmt: skip
    with pytest.raises(BadInputError, match=r"variable frame rate .*the file holds 40.*ffmpeg -i") as info:
        add_videos(empty, [vfr])
    assert len(empty) == 0
    command = str(info.value).split("add that file instead: ", 1)[1]
    args = shlex.split(command)
    subprocess.run(args[:1] + ["-y", "-loglevel", "error"] + args[1:], check=True)
    fixed = tmp_path / "vfr-cfr.mp4"
    (sid,) = add_videos(empty, [fixed])
    md = empty[sid].metadata
    assert md.frame_rate == pytest.approx(30) and md.total_frame_count == 80, "the advised command makes it addable"


# --------------------------------------------------------------------------- the operators


def test_import_operator_refuses_a_run_field_unless_named(own_dataset, crowds, fo_home):
    """The import operators take ``overwrite_fields`` (the option's one declaration) and refuse without it."""
    import fiftyone.operators as foo
    from fiftyone.operators.executor import ExecutionError

    from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin

    install_plugin(fo.config.plugins_dir)
    dataset = own_dataset
    dataset.persistent = True
    before = state(dataset)
    params = {"path": str(crowds[0].out_dir), "gt_field": "pred_detections", "det_field": ""}

    def execute(params):
        ctx = {"dataset": dataset.name, "params": params, "request_delegation": False}
        return foo.execute_operator(f"{PLUGIN_NAME}/import_mot", ctx=ctx)

    with pytest.raises(ExecutionError, match=r"frame field 'pred_detections' holds labels that run"):
        execute(params)
    assert state(dataset) == before
    done = execute(dict(params, overwrite_fields="pred_detections"))
    assert done.error is None, done.error
    assert done.result["sequences"] == ["c0"] and done.result["gt_boxes"] == len(crowds[0].mot)
    first = dataset.select(dataset.first().id)
    boxes = first.values("frames.gt_detections.detections.bounding_box")
    assert first.values("frames.pred_detections.detections.bounding_box") == boxes
    assert first.values("pred_detections_status") == [None]


@pytest.mark.parametrize(
    "rows, message",
    [
        ("1,-1,10,10,20,40,0.9\n1.5,-1,10,10,20,40,0.9", r"det.txt:2: frame 1.5 is not an integer"),
        ("1,-1,10,10,20,40,0.9\n100000000,-1,10,10,20,40,0.9", r"det.txt:2: frame 100000000 is beyond the last frame allowed"),
    ],
)
def test_track_mot_refuses_odd_frames_with_exit_2(tmp_path, capsys, rows, message):
    """Issue 19: non-integer frames were truncated, frames millions apart made ``track-mot`` loop for hours."""
    from fiftyone_posetrack.cli import main

    det = tmp_path / "det.txt"
    det.write_text(rows + "\n")
    assert main(["track-mot", str(det), str(tmp_path / "out.txt"), "--tracker", "sort"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("posetrack: error: ") and re.search(message, err), err
    assert not (tmp_path / "out.txt").exists()


def test_a_sample_field_of_another_type_is_refused_before_anything_is_added(empty, crowds, tmp_path):
    """``sequence`` exists as an int field: refused up front (it failed after the samples were added)."""
    small = render_crowd(tmp_path / "small", people=2, frames=4, width=160, height=96, seed=3, save_images=True)
    empty.media_type = "video"
    empty.add_sample_field("sequence", fo.IntField)
    before = state(empty)
    with pytest.raises(BadInputError, match=r"sample field 'sequence' exists as IntField"):
        io.import_mot_sequences(empty, crowds[0].out_dir)
    with pytest.raises(BadInputError, match=r"sample field 'sequence' exists as IntField"):
        io.import_posetrack(empty, small.posetrack_path, image_root=small.out_dir, videos_dir=tmp_path / "enc")
    assert state(empty) == before
