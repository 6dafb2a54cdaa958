"""PoseTrack18 JSON reader / writer: official fixtures, round trips, malformed files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fiftyone_posetrack.formats.posetrack import (
    POSETRACK_KEYPOINTS,
    PoseTrackFrame,
    PoseTrackVideo,
    posetrack_frame_id,
    read_posetrack_json,
    read_posetrack_videos,
    write_posetrack_json,
)
from fiftyone_posetrack.skeleton import COCO_EDGES, COCO_KEYPOINTS
from fiftyone_posetrack.types import BadInputError


@pytest.fixture(scope="module")
def fixtures(shared_dir):
    folder = shared_dir / "data" / "keypoints" / "posetrack18" / "annotations"
    files = sorted((folder / "val").glob("*.json"))
    if not files:
        pytest.skip(f"no PoseTrack18 per-video files under {folder / 'val'}")
    return folder, files


def _assert_video_matches_json(video: PoseTrackVideo, raw: dict) -> None:
    cat = raw["categories"][0]
    assert video.keypoint_names == tuple(cat["keypoints"])
    assert video.skeleton == [(a - 1, b - 1) for a, b in cat["skeleton"]]
    images = {img["id"]: img for img in raw["images"]}
    assert sorted(fr.image_id for fr in video.frames) == sorted(images)
    for fr in video.frames:
        img = images[fr.image_id]
        assert fr.file_name == img["file_name"]
        assert fr.is_labeled == img["is_labeled"]
        assert fr.frame_index == img["frame_id"] % 10000
        anns = [a for a in raw["annotations"] if a["image_id"] == img["id"]]
        assert fr.track_ids.tolist() == [a["track_id"] for a in anns]
        for j, ann in enumerate(anns):
            x, y, w, h = ann["bbox"]
            np.testing.assert_allclose(fr.boxes[j], [x, y, x + w, y + h])
            kp = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
            np.testing.assert_allclose(fr.keypoints[j], kp[:, :2])
            np.testing.assert_array_equal(fr.visibility[j], kp[:, 2].astype(int))
            hx, hy, hw, hh = ann["bbox_head"]
            np.testing.assert_allclose(fr.head_boxes[j], [hx, hy, hx + hw, hy + hh])
        assert fr.scores is None  # ground truth: empty scores
        assert len(fr.ignore_regions) == len(img.get("ignore_regions_x", []))
        for poly, xs, ys in zip(fr.ignore_regions, img["ignore_regions_x"], img["ignore_regions_y"]):
            np.testing.assert_allclose(poly, np.stack([xs, ys], axis=1))


def test_reads_official_per_video_files(fixtures):
    _, files = fixtures
    for path in files:
        raw = json.loads(path.read_text())
        video = read_posetrack_json(path)
        assert video.name == path.stem  # e.g. "003418_mpii_test"
        assert video.vid_id == raw["images"][0]["vid_id"]
        assert video.nframes == raw["images"][0]["nframes"]
        assert (video.width, video.height) == (1920, 1080)
        # PoseTrack's own joint order, not COCO's, and it is not reordered
        assert video.keypoint_names == POSETRACK_KEYPOINTS
        assert video.keypoint_names[1] == "head_bottom"
        _assert_video_matches_json(video, raw)


def test_multi_video_file(fixtures):
    folder, _ = fixtures
    path = folder / "test_posetrack18_val.json"
    raw = json.loads(path.read_text())
    videos = read_posetrack_videos(path)
    assert len(videos) == len({img["vid_id"] for img in raw["images"]}) == 3
    assert sum(len(fr) for v in videos for fr in v.frames) == len(raw["annotations"])
    with pytest.raises(BadInputError, match="found 3"):
        read_posetrack_json(path)


def _same_video(a: PoseTrackVideo, b: PoseTrackVideo) -> None:
    assert (a.name, a.width, a.height, a.vid_id, a.nframes) == (b.name, b.width, b.height, b.vid_id, b.nframes)
    assert a.keypoint_names == b.keypoint_names and a.skeleton == b.skeleton
    assert len(a.frames) == len(b.frames)
    for fa, fb in zip(a.frames, b.frames):
        assert (fa.frame_index, fa.file_name, fa.is_labeled) == (fb.frame_index, fb.file_name, fb.is_labeled)
        np.testing.assert_array_equal(fa.track_ids, fb.track_ids)
        np.testing.assert_array_equal(fa.boxes.reshape(-1, 4), fb.boxes.reshape(-1, 4))
        np.testing.assert_array_equal(fa.keypoints.reshape(-1), fb.keypoints.reshape(-1))
        np.testing.assert_array_equal(fa.visibility.reshape(-1), fb.visibility.reshape(-1))
        if fa.scores is None:
            assert fb.scores is None
        else:
            np.testing.assert_array_equal(fa.scores.reshape(-1), fb.scores.reshape(-1))
        if fa.head_boxes is not None and len(fa):
            np.testing.assert_array_equal(fa.head_boxes, fb.head_boxes)
        assert len(fa.ignore_regions) == len(fb.ignore_regions)
        for ra, rb in zip(fa.ignore_regions, fb.ignore_regions):
            np.testing.assert_array_equal(ra, rb)


def test_fixture_round_trip(fixtures, tmp_path):
    _, files = fixtures
    for path in files:
        video = read_posetrack_json(path)
        out = tmp_path / path.name
        write_posetrack_json(out, video)
        again = read_posetrack_json(out)
        _same_video(video, again)
        raw_in, raw_out = json.loads(path.read_text()), json.loads(out.read_text())
        assert raw_out["categories"][0]["skeleton"] == raw_in["categories"][0]["skeleton"]  # 1-based
        assert [i["frame_id"] for i in raw_out["images"]] == [i["frame_id"] for i in raw_in["images"]]
        assert [a["id"] for a in raw_out["annotations"]] == [a["id"] for a in raw_in["annotations"]]


def _random_video(with_scores: bool) -> PoseTrackVideo:
    rng = np.random.default_rng(7)
    frames = []
    for index in (0, 3, 4, 9):
        n = 0 if index == 4 else int(rng.integers(1, 5))
        xy = rng.uniform(0, 600, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 90, (n, 2))], axis=1)
        kps = rng.uniform(0, 640, (n, 17, 2))
        vis = rng.integers(0, 3, (n, 17))
        kps[vis == 0] = 0.0
        frames.append(
            PoseTrackFrame(
                frame_index=index,
                file_name=f"images/val/000042_x/{index:06d}.jpg",
                is_labeled=index != 3,
                track_ids=rng.permutation(10)[:n],
                boxes=boxes,
                keypoints=kps,
                visibility=vis,
                scores=rng.random((n, 17)) if with_scores else None,
                ignore_regions=[rng.uniform(0, 600, (5, 2))] if index == 0 else [],
                head_boxes=boxes * 0.5 + 1.25,
            )
        )
    return PoseTrackVideo("000042_x", 640, 480, frames, COCO_KEYPOINTS, list(COCO_EDGES), "000042", 12)


@pytest.mark.parametrize("with_scores", [False, True])
def test_write_read_round_trip(tmp_path, with_scores):
    video = _random_video(with_scores)
    path = tmp_path / "v.json"
    write_posetrack_json(path, video)
    again = read_posetrack_json(path)
    _same_video(video, again)

    raw = json.loads(path.read_text())
    img = raw["images"][1]
    for key in ("id", "file_name", "vid_id", "frame_id", "nframes", "is_labeled",
                "ignore_regions_x", "ignore_regions_y"):  # fmt: skip
        assert key in img
    assert img["frame_id"] == posetrack_frame_id("000042", 3) == 10000420003
    assert img["vid_id"] == "000042" and img["nframes"] == 12
    ann = raw["annotations"][0]
    assert len(ann["keypoints"]) == 51 and ann["category_id"] == 1
    b = video.frames[0].boxes[0]
    assert ann["bbox"] == pytest.approx([b[0], b[1], b[2] - b[0], b[3] - b[1]])
    assert (len(ann["scores"]) == 17) == with_scores
    assert raw["categories"][0]["skeleton"] == [[a + 1, b + 1] for a, b in COCO_EDGES]
    assert raw["categories"][0]["keypoints"] == list(COCO_KEYPOINTS)


def test_frame_index_without_our_key_uses_frame_id(tmp_path):
    video = _random_video(False)
    path = tmp_path / "v.json"
    write_posetrack_json(path, video)
    raw = json.loads(path.read_text())
    for img in raw["images"]:
        del img["frame_index"]  # as in official files
    raw["images"].reverse()
    path.write_text(json.dumps(raw))
    assert [fr.frame_index for fr in read_posetrack_json(path).frames] == [0, 3, 4, 9]


def test_bad_frame_arrays_are_refused(tmp_path):
    video = _random_video(False)
    video.frames[0].keypoints = video.frames[0].keypoints[:, :5]
    with pytest.raises(BadInputError, match="keypoints"):
        write_posetrack_json(tmp_path / "bad.json", video)


def _minimal() -> dict:
    return {
        "images": [{"id": 1, "file_name": "v/000000.jpg", "vid_id": "000001", "frame_id": 10000010000,
                    "nframes": 1, "is_labeled": True}],
        "annotations": [{"id": 1, "image_id": 1, "track_id": 0, "bbox": [1, 2, 3, 4],
                         "keypoints": [0.0] * 51, "scores": [], "category_id": 1}],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS), "skeleton": [[1, 2]]}],
    }  # fmt: skip


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("images"), "images"),
        (lambda d: d["annotations"][0].update(image_id=99), "image_id 99"),
        (lambda d: d["annotations"][0].update(keypoints=[1.0] * 50), "keypoints"),
        (lambda d: d["annotations"][0].update(keypoints=[1.0] * 48), "16 keypoints, expected 17"),
        (lambda d: d["annotations"][0].update(track_id="a"), "track_id"),
        (lambda d: d["annotations"][0].update(bbox=[0, 0, -1, 3]), "bbox"),
        (lambda d: d["annotations"][0].update(scores=[0.5] * 3), "scores"),
        (lambda d: d["images"][0].update(ignore_regions_x=[[1, 2]], ignore_regions_y=[]), "ignore_regions"),
        (lambda d: d["images"][0].update(ignore_regions_x=[[1, 2]], ignore_regions_y=[[1]]), "ignore region 0"),
        (lambda d: d["categories"][0].update(skeleton=[[0, 1]]), "skeleton"),
        (lambda d: d["images"].append(dict(d["images"][0])), "repeats image id"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, mutate, message):
    data = _minimal()
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(data))
    assert len(read_posetrack_json(path).frames[0]) == 1
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(BadInputError, match=message):
        read_posetrack_json(path)


def test_not_json_and_missing_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(BadInputError, match="not a JSON"):
        read_posetrack_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(BadInputError, match="list"):
        read_posetrack_json(path)
    with pytest.raises(FileNotFoundError):
        read_posetrack_json(tmp_path / "missing.json")


def test_video_name_survives_any_file_name(tmp_path):
    video = _random_video(False)
    video.name = "my-sequence"
    for fr in video.frames:
        fr.file_name = f"img1/{fr.frame_index + 1:06d}.jpg"
    path = tmp_path / "v.json"
    write_posetrack_json(path, video)
    assert read_posetrack_json(path).name == "my-sequence"
