"""Synthetic crowd renderer: files, exact ground truth, occlusion, determinism, CLI."""

from __future__ import annotations

import hashlib
import sys

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.formats.mot import read_mot
from fiftyone_posetrack.formats.posetrack import read_posetrack_json
from fiftyone_posetrack.skeleton import COCO_KEYPOINTS
from fiftyone_posetrack.synth import (
    Camera,
    Scene,
    crossing_walker,
    iter_frames,
    random_appearances,
    random_scene,
    render_crowd,
)
from fiftyone_posetrack.synth.scene import render_background
from fiftyone_posetrack.types import BadInputError

W, H, F = 320, 192, 30


@pytest.fixture(scope="module")
def crowd(tmp_path_factory):
    out = tmp_path_factory.mktemp("crowd")
    return render_crowd(out, people=8, frames=F, width=W, height=H, seed=3, fps=25)


def test_outputs_exist_and_video_has_every_frame(crowd):
    for path in (crowd.video_path, crowd.gt_path, crowd.posetrack_path, crowd.seqinfo_path):
        assert path.startswith(crowd.out_dir)
        with open(path, "rb") as f:
            assert f.read(1), f"{path} is empty"
    cap = cv2.VideoCapture(crowd.video_path)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == F
    decoded = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(frame)
    cap.release()
    assert len(decoded) == F
    assert decoded[0].shape == (H, W, 3)
    # the video shows the rendered frames (up to H.264 / yuv420p loss)
    rendered = [fr.image for fr in iter_frames(random_scene(8, F, W, H, seed=3, fps=25))]
    for t in (0, F // 2, F - 1):
        err = np.abs(decoded[t].astype(np.int16) - rendered[t].astype(np.int16)).mean()
        assert err < 6.0, f"frame {t}: mean abs error {err:.1f} against the rendered frame"


def test_seqinfo(crowd):
    import configparser

    ini = configparser.ConfigParser()
    ini.read(crowd.seqinfo_path)
    seq = ini["Sequence"]
    assert int(seq["seqLength"]) == F
    assert (int(seq["imWidth"]), int(seq["imHeight"])) == (W, H)
    assert float(seq["frameRate"]) == 25
    assert seq["imDir"] and seq["imExt"] == ".jpg" and seq["name"]


def test_mot_ground_truth_is_consistent(crowd):
    gt = read_mot(crowd.gt_path)
    assert len(gt) == len(crowd.mot) > 0
    np.testing.assert_allclose(gt[:, :8], crowd.mot[:, :8])
    np.testing.assert_allclose(gt[:, 8], crowd.mot[:, 8], atol=1e-4)
    frame, tid, x, y, w, h, conf, cls, vis = gt.T
    assert frame.min() >= 1 and frame.max() <= F
    assert set(tid.astype(int)) <= set(range(1, 9))
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= W).all() and (y + h <= H).all()
    assert (w > 0).all() and (h > 0).all()
    assert ((vis >= 0) & (vis <= 1)).all()
    assert (conf == 1).all() and (cls == 1).all()
    assert (vis < 1).any(), "some people should be occluded or partly outside"
    # one row per person and frame
    pairs = set(zip(frame.astype(int), tid.astype(int)))
    assert len(pairs) == len(gt)
    # people enter and leave at different times
    first = {i: frame[tid == i].min() for i in np.unique(tid)}
    last = {i: frame[tid == i].max() for i in np.unique(tid)}
    assert len(set(first.values())) > 1 or len(set(last.values())) > 1


def test_perspective_scale(tmp_path):
    res = render_crowd(tmp_path / "p", people=14, frames=40, width=W, height=H, seed=5)
    full = (res.visibility == 1.0) & np.isfinite(res.visibility)
    boxes = res.boxes[full]
    heights = boxes[:, 3] - boxes[:, 1]
    bottoms = boxes[:, 3]
    assert len(heights) > 20
    assert heights.min() >= 0.12 * H and heights.max() <= 0.5 * H
    # nearer (lower feet) means larger
    assert np.corrcoef(bottoms, heights)[0, 1] > 0.8


def test_posetrack_json_matches_mot(crowd):
    video = read_posetrack_json(crowd.posetrack_path)
    assert video.keypoint_names == COCO_KEYPOINTS
    assert (video.width, video.height) == (W, H)
    assert [fr.frame_index for fr in video.frames] == list(range(F))
    assert all(fr.is_labeled for fr in video.frames)
    gt = crowd.mot
    for fr in video.frames:
        rows = gt[gt[:, 0] == fr.frame_index + 1]
        assert sorted(fr.track_ids.tolist()) == sorted(rows[:, 1].astype(int).tolist())
        order = np.argsort(fr.track_ids)
        rows = rows[np.argsort(rows[:, 1])]
        np.testing.assert_allclose(fr.boxes[order, :2], rows[:, 2:4])
        np.testing.assert_allclose(fr.boxes[order, 2:] - fr.boxes[order, :2], rows[:, 4:6])
        assert set(np.unique(fr.visibility)) <= {0, 2}
        kp = fr.keypoints
        inside = (kp[..., 0] >= 0) & (kp[..., 0] <= W - 1) & (kp[..., 1] >= 0) & (kp[..., 1] <= H - 1)
        zero = (kp == 0).all(axis=-1)
        # joints outside the frame are (0, 0, 0); visible joints lie inside it
        assert (inside | (zero & (fr.visibility == 0))).all()
        assert (inside[fr.visibility == 2]).all()
        np.testing.assert_allclose(fr.keypoints[fr.visibility == 2],
                                   crowd.keypoints[fr.frame_index, fr.track_ids - 1][fr.visibility == 2])  # fmt: skip


def test_same_seed_same_output(tmp_path):
    # same folder name (it names the sequence in the files), different parents
    a = render_crowd(tmp_path / "a" / "seq", people=5, frames=12, width=W, height=H, seed=11)
    b = render_crowd(tmp_path / "b" / "seq", people=5, frames=12, width=W, height=H, seed=11)
    c = render_crowd(tmp_path / "c" / "seq", people=5, frames=12, width=W, height=H, seed=12)
    read = lambda p: open(p, "rb").read()  # noqa: E731
    assert read(a.gt_path) == read(b.gt_path)
    assert read(a.posetrack_path) == read(b.posetrack_path)
    assert read(a.seqinfo_path) == read(b.seqinfo_path)
    assert read(a.gt_path) != read(c.gt_path)

    def digest(seed):
        h = hashlib.sha256()
        for fr in iter_frames(random_scene(5, 12, W, H, seed=seed)):
            h.update(fr.image.tobytes())
            h.update(fr.labels.tobytes())
        return h.hexdigest()

    assert digest(11) == digest(11) != digest(12)


def test_appearances_are_distinct():
    apps = random_appearances(12, np.random.default_rng(0))
    looks = {(a.shirt, a.trousers, a.shirt_pattern, a.trouser_pattern) for a in apps}
    assert len(looks) == 12
    assert len({a.shirt_pattern for a in apps}) >= 3


# ---------------------------------------------------------------- crossing: exact occlusion


def _crossing_scene(which: str) -> Scene:
    """A near person walking right and a far one walking left, both at the centre at frame 15."""
    cam = Camera.for_frame(W, H)
    fps = 25.0
    near_depth = float(cam.depth_of_row(0.87 * H))
    far_depth = float(cam.depth_of_row(0.6 * H))
    apps = random_appearances(2, np.random.default_rng(1))
    walkers = []
    for app, direction, depth, speed in ((apps[0], 1, near_depth, 1.5), (apps[1], -1, far_depth, 1.2)):
        w = crossing_walker(cam, app, direction, depth, depth, speed, 0.0, phase0=1.0)
        w.start_frame = 15 - abs(w.start[0]) / speed * fps  # at X = 0 at frame 15
        walkers.append(w)
    if which == "near":
        walkers = walkers[:1]
    elif which == "far":
        walkers = walkers[1:]
    bg = render_background(cam, np.random.default_rng(0))
    return Scene(cam, walkers, F, fps, bg)


def test_crossing_occlusion_is_exact():
    both = list(iter_frames(_crossing_scene("both")))
    near = list(iter_frames(_crossing_scene("near")))
    far = list(iter_frames(_crossing_scene("far")))
    occluded_joints = checked = 0
    for t in range(F):
        tb, tn, tf = both[t].truth, near[t].truth, far[t].truth
        assert tb.track_ids.tolist() == [1, 2] and len(tn) == 1 and len(tf) == 1
        near_mask = near[t].labels > 0
        far_mask = far[t].labels > 0
        # boxes and keypoints do not depend on who else is there
        np.testing.assert_array_equal(tb.boxes, np.concatenate([tn.boxes, tf.boxes]))
        np.testing.assert_allclose(tb.keypoints, np.concatenate([tn.keypoints, tf.keypoints]))
        # the near person is drawn on top: its pixels are exactly its solo pixels
        assert tb.depth_order[0] > tb.depth_order[1]
        np.testing.assert_array_equal(both[t].image[near_mask], near[t].image[near_mask])
        np.testing.assert_array_equal(both[t].labels[near_mask], 1)
        np.testing.assert_array_equal(both[t].labels[far_mask & ~near_mask], 2)
        # the near person is never occluded
        np.testing.assert_array_equal(tb.flags[0], tn.flags[0])
        assert tb.visibility[0] == tn.visibility[0]
        # a far joint is flagged 0 exactly where the near person covers its pixel
        kp = tf.keypoints[0]
        px = np.clip(np.round(kp).astype(int), 0, [W - 1, H - 1])
        covered = near_mask[px[:, 1], px[:, 0]]
        expected = np.where(covered, 0, tf.flags[0])
        np.testing.assert_array_equal(tb.flags[1], expected)
        occluded_joints += int((covered & (tf.flags[0] == 2)).sum())
        # visibility of the far person: its solo pixels not covered by the near one
        if tf.visibility[0] == 1.0:
            exact = (far_mask & ~near_mask).sum() / far_mask.sum()
            assert tb.visibility[1] == pytest.approx(exact, abs=1e-12)
            checked += 1
    assert occluded_joints > 0, "the crossing should hide some joints of the far person"
    assert checked > 5
    assert min(f.truth.visibility[1] for f in both) < 0.8


# ---------------------------------------------------------------- errors and the CLI


@pytest.fixture()
def cli():
    """``fiftyone_posetrack.cli.main``, callable from Python."""
    return main


def test_missing_ffmpeg_gives_clear_error(monkeypatch, tmp_path):
    import shutil

    from fiftyone_posetrack.video import find_ffmpeg

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(FileNotFoundError, match="install"):
        find_ffmpeg()


@pytest.mark.parametrize(
    "args, word",
    [
        (["--people", "0"], "people"),
        (["--frames", "0"], "frames"),
        (["--width", "62"], "width"),
        (["--width", "321"], "even"),
        (["--height", "101"], "height"),
        (["--fps", "0"], "fps"),
        (["--fps", "nan"], "fps"),
    ],
)
def test_cli_rejects_bad_numbers(cli, tmp_path, capsys, args, word):
    out = tmp_path / "out"
    assert cli(["synth", str(out), *args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "error" in err and word in err
    assert not out.exists()


def test_api_rejects_bad_numbers(tmp_path):
    with pytest.raises(BadInputError, match="people"):
        render_crowd(tmp_path / "x", people=-1)
    with pytest.raises(BadInputError, match="height"):
        render_crowd(tmp_path / "x", height=63)


def test_cli_refuses_non_empty_dir_and_overwrites_on_request(cli, tmp_path, capsys):
    out = tmp_path / "seq"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    base = ["synth", str(out), "--people", "3", "--frames", "8", "--width", "128", "--height", "96", "--no-progress"]
    assert cli(base) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and str(out) in err
    assert cli(base + ["--overwrite"]) == 0
    printed = capsys.readouterr().out
    assert "8 frames" in printed and "frames/s" in printed
    assert (out / "video.mp4").is_file() and (out / "gt" / "gt.txt").is_file()
    assert (out / "keep.txt").read_text() == "mine"  # only our own outputs are replaced
    cap = cv2.VideoCapture(str(out / "video.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    cap.release()


def test_cli_images_option(cli, tmp_path, capsys):
    out = tmp_path / "img"
    assert cli(["synth", str(out), "--people", "2", "--frames", "4", "--width", "128",
                 "--height", "96", "--images", "--no-progress"]) == 0  # fmt: skip
    jpgs = sorted(p.name for p in (out / "img1").iterdir())
    assert jpgs == [f"{i:06d}.jpg" for i in range(1, 5)]
    assert cv2.imread(str(out / "img1" / jpgs[0])).shape == (96, 128, 3)


def test_posetrack_json_names_the_sequence(crowd):
    import os

    assert read_posetrack_json(crowd.posetrack_path).name == os.path.basename(crowd.out_dir)


def test_ffmpeg_failure_is_reported_with_its_message(tmp_path):
    from fiftyone_posetrack.synth.writer import H264Writer

    path = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError, match="ffmpeg .*preset"):
        with H264Writer(path, 64, 64, 25, preset="no-such-preset") as writer:
            for _ in range(500):
                writer.write(np.zeros((64, 64, 3), dtype=np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["x.mp4"])  # no log left behind
    with pytest.raises(BadInputError, match="even"):
        H264Writer(tmp_path / "y.mp4", 65, 64, 25)
