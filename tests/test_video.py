
import numpy as np
import pytest

from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import (
    FrameCountMismatchError,
    VideoReader,
    is_h264,
    probe_video,
    reencode_h264,
)
from videos import frame_level, make_video


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("v") / "clip.mp4", frames=40)


def test_probe(video):
    info = probe_video(video)
    assert (info.width, info.height, info.frame_count) == (160, 96, 40)
    assert info.fps == pytest.approx(10)
    assert info.duration == pytest.approx(4.0)
    assert info.codec in ("avc1", "h264")
    assert probe_video(video, exact=True).frame_count == 40


def test_sequential_read_numbers_frames_from_one(video):
    with VideoReader(video, expected_frames=40) as reader:
        got = [(n, frame_level(f)) for n, f in reader]
    assert [n for n, _ in got] == list(range(1, 41))
    assert all(abs(level - (10 * n) % 250) <= 4 for n, level in got)


def test_batches_and_ranges(video):
    with VideoReader(video, start=5, stop=17) as reader:
        batches = list(reader.batches(4))
    assert [len(f) for _, f in batches] == [4, 4, 4, 1]
    assert batches[0][0] == [5, 6, 7, 8] and batches[-1][0] == [17]
    assert abs(frame_level(batches[-1][1][0]) - 170) <= 4


def test_random_access_matches_sequential(video):
    with VideoReader(video) as reader:
        sequential = {n: f for n, f in reader}
    with VideoReader(video) as reader:
        for n in (33, 2, 40, 13, 1):
            assert np.abs(reader.read(n).astype(int) - sequential[n]).max() == 0


def test_frame_count_mismatch_is_named(video):
    with pytest.raises(FrameCountMismatchError, match="decoded 40 frames but the metadata says 45"):
        list(VideoReader(video, expected_frames=45))
    with pytest.raises(FrameCountMismatchError, match="ends after frame 40"):
        list(VideoReader(video, stop=50))


def test_memory_is_constant_in_length(tmp_path):
    """Streaming holds one batch: peak traced allocations do not grow with length."""
    import tracemalloc

    peaks = []
    for frames in (20, 120):
        path = make_video(tmp_path / f"v{frames}.mp4", frames=frames, size=(320, 192))
        tracemalloc.start()
        with VideoReader(path) as reader:
            for _ in reader.batches(4):
                pass
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0] + 1e6


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_bad_files(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match="bad.mp4"):
        probe_video(path)
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        VideoReader(tmp_path / "missing.mp4")


def test_truncated_file_reads_fewer_frames_and_says_so(video, tmp_path):
    data = video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        reader = VideoReader(cut, expected_frames=40)
    except BadInputError as e:  # a cut moov atom makes the file unreadable at all
        assert "cut.mp4" in str(e)
        return
    with pytest.raises(BadInputError, match="cut.mp4"):
        list(reader)


def test_bad_parameters(video):
    with pytest.raises(BadInputError, match="1-based"):
        VideoReader(video, start=0)
    with pytest.raises(BadInputError, match="before start"):
        VideoReader(video, start=10, stop=3)
    with pytest.raises(BadInputError, match="batch_size"):
        next(VideoReader(video).batches(0))


def test_reencode_h264(tmp_path):
    src = make_video(tmp_path / "mp4v.mp4", frames=12, codec="mpeg4")
    assert not is_h264(src)
    out = reencode_h264(src, tmp_path / "out" / "h264.mp4")
    assert is_h264(out)
    assert probe_video(out, exact=True).frame_count == 12
    with pytest.raises(BadInputError, match="exists"):
        reencode_h264(src, out)
