import numpy as np
import pytest

from fiftyone_posetrack.formats.mot import CLASS, VIS, read_mot, split_frames, write_mot
from fiftyone_posetrack.types import BadInputError


def test_dialects(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("2,1,10,20,30,40,0.9,4.5,5.5,-1\n1,2,1,2,3,4,1,1,0.25\n1,3,5,5,5,5\n")
    d = read_mot(p)
    assert d[:, 0].tolist() == [1, 1, 2], "sorted by frame"
    assert d[0, CLASS] == 1 and d[0, VIS] == 0.25, "MOT16+ class and visibility"
    assert d[1, CLASS] == 1 and d[1, VIS] == 1, "6 columns: pedestrian, visible"
    assert d[2, CLASS] == -1 and d[2, VIS] == -1, "MOT15 world coordinates are not class/visibility"


def test_round_trip(tmp_path):
    rows = np.array([[3, 1, 1.5, 2.25, 10, 20, 0.5, 1, 0.75], [1, 2, 0, 0, 1, 1, 1, 1, 1]])
    write_mot(tmp_path / "gt.txt", rows, gt=True)
    back = read_mot(tmp_path / "gt.txt")
    np.testing.assert_allclose(back, rows[[1, 0]])
    assert sorted(split_frames(back)) == [1, 3]


@pytest.mark.parametrize(
    "line, message",
    [
        ("1,1,a,2,3,4", "not a MOT line"),
        ("1,1,2,3", "at least 6 columns"),
        ("1,1,2,3,nan,4", "NaN"),
        ("1,1,2,3,-4,4", "negative width"),
        ("0,1,2,3,4,4", "1-based"),
    ],
)
def test_bad_lines_are_named(tmp_path, line, message):
    p = tmp_path / "bad.txt"
    p.write_text("1,1,1,1,1,1\n" + line + "\n")
    with pytest.raises(BadInputError, match=message):
        read_mot(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_mot(tmp_path / "nope.txt")
