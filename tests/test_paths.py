"""Names from input files never become paths outside their folder; folder scans take names literally."""

import os
import pathlib

import cv2
import numpy as np
import pytest

import fiftyone as fo

from fiftyone_posetrack.fo import io
from fiftyone_posetrack.fo.dataset import add_videos, find_videos
from fiftyone_posetrack.formats.mot import write_mot
from fiftyone_posetrack.formats.paths import inside, safe_name, video_name
from fiftyone_posetrack.formats.posetrack import PoseTrackFrame, PoseTrackVideo, write_posetrack_json
from fiftyone_posetrack.types import BadInputError
from test_bad_input import snapshot
from videos import make_video

FRAMES = 4
EVIL = "../../../somewhere/evil"


@pytest.fixture()
def dataset(fo_home):
    ds = fo.Dataset()
    yield ds
    ds.delete()


def files_under(root: pathlib.Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def mot_sequence(folder: pathlib.Path, name: str, im_dir: str = "img1") -> pathlib.Path:
    """A MOTChallenge sequence of FRAMES 64x48 images, one ground-truth box per frame."""
    (folder / "img1").mkdir(parents=True)
    for n in range(1, FRAMES + 1):
        cv2.imwrite(str(folder / "img1" / f"{n:06d}.jpg"), np.full((48, 64, 3), 20 * n, np.uint8))
    write_mot(folder / "gt" / "gt.txt", np.array([[n, 1, 5, 6, 20, 30, 1, 1, 1.0] for n in range(1, FRAMES + 1)]), gt=True)
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={name}\nimDir={im_dir}\nframeRate=10\nseqLength={FRAMES}\nimWidth=64\nimHeight=48\nimExt=.jpg\n"
    )
    return folder


def test_safe_name_and_inside(tmp_path):
    assert safe_name(EVIL) == "_._.._.._somewhere_evil"  # no hidden dot-file
    assert safe_name("../..") == "_._.." and not safe_name(".x").startswith(".")
    assert safe_name("a\\b\x00c") == "a_b_c"
    for bad in ("", " ", ".", "..", "x" * 300):
        with pytest.raises(BadInputError, match="seqinfo name: "):
            safe_name(bad, "seqinfo name")
    assert inside(tmp_path, "a/b.jpg") == os.path.join(tmp_path, "a/b.jpg")
    for bad in ("../x.jpg", "a/../../x.jpg", "/etc/passwd"):
        with pytest.raises(BadInputError, match="leads outside"):
            inside(tmp_path, bad, "file_name")
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(BadInputError, match="leads outside"):
        inside(tmp_path, "link/x.jpg")
    assert video_name("/data/x/video.mp4") == "x" and video_name("/d/a.mp4", EVIL) == "_._.._.._somewhere_evil"


def test_mot_name_traversal_stays_in_videos_dir_and_out_dir(dataset, tmp_path):
    """Reproduction 5: seqinfo.ini ``name=../../../somewhere/evil`` through import_mot and export_mot."""
    work = tmp_path / "a" / "b" / "c"
    mot_sequence(work / "in" / "SEQ", EVIL)
    videos_dir, out_dir = work / "videos", work / "out"
    out = io.import_mot_sequences(dataset, work / "in", videos_dir=videos_dir)
    assert out["sequences"] == ["_._.._.._somewhere_evil"]
    assert files_under(videos_dir) == {"_._.._.._somewhere_evil.mp4"}
    paths = io.export_mot(dataset, "gt_detections", out_dir, gt=True)
    paths += io.export_mot(dataset, "gt_detections", out_dir / "res")
    assert all(pathlib.Path(p).resolve().is_relative_to(out_dir.resolve()) for p in paths)
    assert files_under(out_dir) == {
        "_._.._.._somewhere_evil/gt/gt.txt", "_._.._.._somewhere_evil/seqinfo.ini", "res/_._.._.._somewhere_evil.txt",
    }  # fmt: skip
    outside_work = {p for p in files_under(tmp_path) if not p.startswith("a/b/c/")}
    assert outside_work == set() and set(os.listdir(work)) == {"in", "videos", "out"}, "nothing written outside"
    assert not (videos_dir / EVIL).parent.exists() and not (out_dir / EVIL).parent.exists()


def test_mot_im_dir_outside_the_sequence_is_refused(dataset, tmp_path):
    io.import_mot_sequences(dataset, mot_sequence(tmp_path / "ok" / "OK", "OK"), videos_dir=tmp_path / "v")
    before = snapshot(dataset)
    mot_sequence(tmp_path / "in" / "SEQ", "SEQ", im_dir="../../ok/OK/img1")
    with pytest.raises(BadInputError, match=r"seqinfo.ini: imDir: '../../ok/OK/img1' leads outside"):
        io.import_mot_sequences(dataset, tmp_path / "in", videos_dir=tmp_path / "v")
    assert snapshot(dataset) == before


def posetrack_file(path, name, file_names, vid_id="000001"):
    frames = [
        PoseTrackFrame(
            frame_index=i, file_name=f, is_labeled=True, track_ids=np.array([1]),
            boxes=np.array([[5.0, 6.0, 25.0, 36.0]]), keypoints=np.full((1, 17, 2), 10.0),
            visibility=np.ones((1, 17), dtype=np.int64),
        )  # fmt: skip
        for i, f in enumerate(file_names)
    ]
    write_posetrack_json(path, PoseTrackVideo(name=name, width=64, height=48, frames=frames, vid_id=vid_id, nframes=len(frames)))
    return path


def test_posetrack_names_and_file_names_stay_inside(dataset, tmp_path):
    root = tmp_path / "root"
    mot_sequence(root / "images" / "v1", "v1")
    names = [f"images/v1/img1/{n:06d}.jpg" for n in range(1, FRAMES + 1)]
    io.import_posetrack(dataset, posetrack_file(tmp_path / "a.json", EVIL, names), image_root=root,
                        videos_dir=tmp_path / "videos")  # fmt: skip
    assert files_under(tmp_path / "videos") == {"_._.._.._somewhere_evil.mp4"}
    (path,) = io.export_posetrack(dataset, "gt_keypoints", tmp_path / "out")
    assert pathlib.Path(path).parent == tmp_path / "out"
    assert not (tmp_path / "videos" / EVIL).parent.exists() and not (tmp_path / "out" / EVIL).parent.exists()

    before = snapshot(dataset)  # images outside image_root are not read (they exist: only the check refuses)
    (tmp_path / "elsewhere").mkdir()
    bad = posetrack_file(tmp_path / "b.json", "other", [f"../root/{n}" for n in names])
    with pytest.raises(BadInputError, match=r"video 'other': file_name: '../root/images/v1/img1/000001.jpg' leads outside"):
        io.import_posetrack(dataset, bad, image_root=tmp_path / "elsewhere", videos_dir=tmp_path / "videos")
    assert snapshot(dataset) == before
    assert files_under(tmp_path / "videos") == {"_._.._.._somewhere_evil.mp4"}


def test_export_of_a_sequence_field_with_separators_stays_in_out_dir(dataset, tmp_path):
    (sid,) = add_videos(dataset, [make_video(tmp_path / "clip.mp4", frames=FRAMES, size=(64, 48))])
    dataset.add_sample_field("sequence", fo.StringField)
    sample = dataset[sid]
    sample["sequence"] = "/abs/../../x"
    sample.save()
    write_mot(tmp_path / "gt.txt", np.array([[n, 1, 5, 6, 20, 30, 1, 1, 1.0] for n in range(1, FRAMES + 1)]), gt=True)
    from fiftyone_posetrack.fo.dataset import import_mot_ground_truth

    import_mot_ground_truth(dataset[sid], tmp_path / "gt.txt")
    (path,) = io.export_mot(dataset, "gt_detections", tmp_path / "out")
    assert pathlib.Path(path) == tmp_path / "out" / "_abs_.._.._x.txt"


def test_folder_scan_literal_names_any_case_symlink_twins(dataset, tmp_path):
    folder = tmp_path / "shots [2024] *x?"
    folder.mkdir()
    upper = make_video(folder / "CLIP.MP4", frames=FRAMES, size=(64, 48))
    lower = make_video(folder / "b.mov", frames=FRAMES, size=(64, 48))
    (folder / "twin.mp4").symlink_to(upper)  # a symlink beside its target
    (folder / "sub").mkdir()
    (folder / "sub" / "loop").symlink_to(folder)  # a folder link back up: walked once
    (folder / "notes.TXT").write_text("not a video")
    assert find_videos(folder) == sorted([str(upper), str(lower)])
    ids = add_videos(dataset, [folder])
    assert len(dataset) == 2 and len(set(ids)) == 2
    assert sorted(dataset.values("filepath")) == sorted([str(upper), str(lower)])
    # the symlink alone, later: it is the sample of its target, not a new one
    (twin_id,) = add_videos(dataset, [folder / "twin.mp4"])
    assert twin_id == dataset.match({"filepath": str(upper)}).first().id and len(dataset) == 2


def test_operators_refuse_relative_paths(dataset, tmp_path, monkeypatch):
    """The App server's working folder is not the user's: relative paths are refused, never resolved there."""
    import fiftyone.operators as foo
    from fiftyone.operators.executor import ExecutionError

    from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin

    install_plugin(fo.config.plugins_dir)
    io.import_mot_sequences(dataset, mot_sequence(tmp_path / "in" / "SEQ", "SEQ"), videos_dir=tmp_path / "v")
    monkeypatch.chdir(tmp_path)
    before, files = snapshot(dataset), files_under(tmp_path)
    cases = [
        ("export_mot", {"field": "gt_detections", "out_dir": "out"}, "out_dir"),
        ("import_mot", {"path": "in", "videos_dir": "/abs/ok"}, "path"),
        ("import_mot", {"path": str(tmp_path / "in"), "videos_dir": "v2"}, "videos_dir"),
        ("import_videos", {"path": "in"}, "path"),
    ]
    for name, params, param in cases:
        ctx = {"dataset": dataset.name, "params": params, "request_delegation": False}
        with pytest.raises(ExecutionError, match=rf"parameter '{param}': .* is a relative path; give an absolute path"):
            foo.execute_operator(f"{PLUGIN_NAME}/{name}", ctx=ctx)
    assert snapshot(dataset) == before and files_under(tmp_path) == files
