"""Video geometry: rotation metadata and files changed since their metadata (real ffmpeg videos)."""

import shutil
import subprocess

import numpy as np
import pytest

from fiftyone_posetrack.fo.dataset import add_videos, ensure_metadata, get_or_create_dataset, import_mot_ground_truth
from fiftyone_posetrack.fo.geometry import VideoChangedError, check_video_file, file_fingerprint
from fiftyone_posetrack.fo.labels import sample_to_mot
from fiftyone_posetrack.fo.stages import track_detections
from fiftyone_posetrack.formats.mot import write_mot
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import FrameSizeMismatchError, VideoReader, probe_video
from test_bad_input import snapshot
from videos import make_video

W, H, N = 160, 96, 12


def rotate(src, dst):
    """A copy of ``src`` whose stream says "rotate by 90 degrees" (as phone videos do); no re-encode."""
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-i", str(src), "-c", "copy", "-metadata:s:v", "rotate=90", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


@pytest.fixture()
def dataset(request):
    ds = get_or_create_dataset(f"t-{request.node.name}", persistent=False)
    yield ds
    ds.delete()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("geometry")
    plain = make_video(root / "plain.mp4", frames=N, size=(W, H))
    return {"plain": plain, "rotated": rotate(plain, root / "rotated.mp4"), "root": root}


def test_reader_decodes_rotated_video_as_displayed(videos):
    info = probe_video(videos["rotated"])
    assert (info.width, info.height) == (H, W), "the displayed size is the stored one turned by 90 degrees"
    assert info.rotation % 180 == 90
    assert probe_video(videos["plain"]).rotation == 0
    with VideoReader(videos["rotated"], expected_size=(H, W)) as reader:
        shapes = {frame.shape for _, frame in reader}
    assert shapes == {(W, H, 3)}
    with pytest.raises(FrameSizeMismatchError, match=r"decode as 96x160 .* normalised with 160x96 \(the same size turned"):
        VideoReader(videos["rotated"], expected_size=(W, H))


def test_metadata_of_rotated_video_is_the_displayed_size(dataset, videos, tmp_path):
    (sid,) = add_videos(dataset, [videos["rotated"]])
    md = dataset[sid].metadata
    assert (md.frame_width, md.frame_height) == (H, W)
    assert md.rotation % 180 == 90
    assert md.fingerprint == file_fingerprint(videos["rotated"])
    assert check_video_file(dataset[sid]).width == H

    # labels in displayed pixels (x up to 96, y up to 160) are normalised by the displayed size
    rows = np.array([[f, 1, 10.0, 100.0, 80.0, 50.0, 1, 1, 1.0] for f in range(1, N + 1)])
    write_mot(tmp_path / "gt.txt", rows, gt=True)
    import_mot_ground_truth(dataset[sid], tmp_path / "gt.txt")
    box = dataset[sid].frames[1]["gt_detections"].detections[0].bounding_box
    np.testing.assert_allclose(box, [10 / H, 100 / W, 80 / H, 50 / W])
    np.testing.assert_allclose(sample_to_mot(dataset[sid], "gt_detections")[:, 2:6], rows[:, 2:6])


def test_fiftyone_metadata_of_rotated_video_is_refused_then_corrected(dataset, videos):
    if not shutil.which("ffprobe"):
        pytest.skip("ffprobe not installed: FiftyOne's compute_metadata needs it")
    (sid,) = add_videos(dataset, [videos["rotated"]])
    dataset.compute_metadata(overwrite=True, progress=False)  # FiftyOne's: the stored size, no rotation
    md = dataset[sid].metadata
    assert (md.frame_width, md.frame_height) == (W, H), "FiftyOne reports the stored size"
    with pytest.raises(VideoChangedError, match=r"decode as 96x160 but the metadata says 160x96 \(the file's rotation"):
        check_video_file(dataset[sid])
    ensure_metadata(dataset)  # corrects the rotation without overwrite=True
    md = dataset[sid].metadata
    assert (md.frame_width, md.frame_height) == (H, W)
    assert check_video_file(dataset[sid]).height == W


def replace(path, other):
    shutil.copyfile(other, path)


JOB_FIELDS = ("trk", "trk_status", "trk_claimed_at", "trk_run", "trk_claim")  # the run's own fields


def test_file_replaced_by_another_size_is_refused_and_labels_untouched(dataset, videos, tmp_path):
    path = tmp_path / "clip.mp4"
    shutil.copyfile(videos["plain"], path)
    (sid,) = add_videos(dataset, [path])
    rows = np.array([[f, 1, 10.0, 20.0, 30.0, 40.0, 1, 1, 1.0] for f in range(1, N + 1)])
    write_mot(tmp_path / "gt.txt", rows, gt=True)
    import_mot_ground_truth(dataset[sid], tmp_path / "gt.txt")
    replace(path, make_video(tmp_path / "other.mp4", frames=N, size=(128, 128)))
    before = snapshot(dataset, JOB_FIELDS)
    with pytest.raises(BadInputError, match=r"clip.mp4: the frames decode as 128x128 but the metadata says 160x96; "
                                            r"the file is \d+ bytes but the metadata says \d+"):
        track_detections(dataset, "gt_detections", "trk", tracker="bytetrack", progress=False)
    assert snapshot(dataset, JOB_FIELDS) == before
    assert not dataset.has_frame_field("trk") or dataset.count("frames.trk") == 0
    ensure_metadata(dataset)  # keeps the metadata (and its fingerprint): never blesses the new file silently
    with pytest.raises(VideoChangedError, match="clip.mp4: the frames decode as 128x128"):
        check_video_file(dataset[sid])
    assert snapshot(dataset, JOB_FIELDS) == before
    ensure_metadata(dataset, overwrite=True)
    assert (dataset[sid].metadata.frame_width, dataset[sid].metadata.frame_height) == (128, 128)
    assert check_video_file(dataset[sid]).width == 128


def test_file_edited_in_place_is_detected_by_its_fingerprint(dataset, videos, tmp_path, caplog):
    path = tmp_path / "clip.mp4"
    shutil.copyfile(videos["plain"], path)
    (sid,) = add_videos(dataset, [path])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, same header: a frame's bytes changed
    path.write_bytes(bytes(data))
    assert check_video_file(dataset[sid]).width == W, "same frame size and count: processed"
    assert "the file's content differs from when the metadata was computed" in caplog.text
    replace(path, make_video(tmp_path / "other.mp4", frames=N, size=(W, H + 2)))
    with pytest.raises(VideoChangedError, match=r"decode as 160x98 but the metadata says 160x96; the file is"):
        check_video_file(dataset[sid])


def test_file_changed_before_fingerprint_is_caught_by_size(dataset, videos, tmp_path):
    """Metadata computed elsewhere (no fingerprint) still catches a replaced file by its size in bytes."""
    path = tmp_path / "clip.mp4"
    shutil.copyfile(videos["plain"], path)
    (sid,) = add_videos(dataset, [path])
    sample = dataset[sid]
    del sample.metadata["fingerprint"]
    sample.save()
    replace(path, make_video(tmp_path / "longer.mp4", frames=N + 3, size=(W, H)))
    with pytest.raises(VideoChangedError, match=rf"the file has {N + 3} frames but the metadata says {N}; the file is"):
        check_video_file(dataset[sid])
    with pytest.raises(VideoChangedError, match=rf"clip.mp4: the file has {N + 3} frames"):
        ensure_metadata(dataset)  # refuses to fingerprint a file that no longer matches
    assert "fingerprint" not in dataset._sample_collection.find_one()["metadata"]


def test_stage_on_rotated_video_reads_and_normalises_the_displayed_frames(dataset, videos):
    """A stage that decodes frames (flow smoothing) agrees with the metadata on a rotated video; stale metadata is refused."""
    from fiftyone_posetrack.fo.labels import poses_to_keypoints, write_frame_labels
    from fiftyone_posetrack.fo.stages import smooth_poses
    from fiftyone_posetrack.types import FramePoses

    (sid,) = add_videos(dataset, [videos["rotated"]])
    w, h = dataset[sid].metadata.frame_width, dataset[sid].metadata.frame_height
    assert (w, h) == (H, W)
    rng = np.random.default_rng(0)
    pts = rng.uniform([5, 5], [w - 5, h - 5], (1, 17, 2))  # displayed pixels: x < 96, y < 160
    labels = {n: poses_to_keypoints(FramePoses(pts, np.full((1, 17), 0.9), np.array([1])), w, h) for n in range(1, N + 1)}
    write_frame_labels(dataset, {"kps": {sid: labels}})
    smooth_poses(dataset, "kps", "smooth", method="flow", progress=False)
    out = np.array([kp.points for n in range(1, N + 1) for kp in dataset[sid].frames[n]["smooth"].keypoints])
    assert out.shape == (N, 17, 2) and np.nanmax(out) <= 1.0 and np.nanmin(out) >= 0.0

    if shutil.which("ffprobe"):
        dataset.compute_metadata(overwrite=True, progress=False)  # FiftyOne's unrotated size
        before = snapshot(dataset, ("smooth2", "smooth2_status", "smooth2_claimed_at", "smooth2_run", "smooth2_claim"))
        with pytest.raises(BadInputError, match=r"rotated.mp4: the frames decode as 96x160 but the metadata says 160x96"):
            smooth_poses(dataset, "kps", "smooth2", method="flow", progress=False)
        assert snapshot(dataset, ("smooth2", "smooth2_status", "smooth2_claimed_at", "smooth2_run", "smooth2_claim")) == before
