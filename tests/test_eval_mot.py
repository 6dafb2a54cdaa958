"""MOT metrics: py-motmetrics' reference values, TrackEval's own pipeline, row-level marks."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.eval.mot import (
    METRIC_KEYS,
    evaluate_mot_arrays,
    evaluate_mot_files,
    match_mot_arrays,
    sequence_name,
)
from fiftyone_posetrack.formats.mot import write_mot
from fiftyone_posetrack.types import BadInputError

SEQS = ("TUD-Campus", "TUD-Stadtmitte")
# py-motmetrics' published values on its TUD test data (../shared/README.md)
REFERENCE = {
    "TUD-Campus": dict(idf1=0.557659, idp=0.729730, idr=0.451253, recall=0.582173,
                       precision=0.941441, num_gt_ids=8, mt=1, pt=6, ml=1, fp=13, fn=150,
                       idsw=7, frag=7, mota=0.526462, motp=0.277201),
    "TUD-Stadtmitte": dict(idf1=0.644619, idp=0.819760, idr=0.531142, recall=0.608997,
                           precision=0.939920, num_gt_ids=10, mt=5, pt=4, ml=1, fp=45, fn=452,
                           idsw=7, frag=6, mota=0.564014, motp=0.345904),
    "OVERALL": dict(idf1=0.624296, idp=0.799176, idr=0.512211, recall=0.602640,
                    precision=0.940268, num_gt_ids=18, mt=6, pt=10, ml=2, fp=58, fn=602,
                    idsw=14, frag=13, mota=0.555116, motp=0.330177),
}  # fmt: skip


def _pairs(shared_dir):
    root = shared_dir / "data" / "mot"
    return [(root / s / "gt.txt", root / s / "test.txt") for s in SEQS]


@pytest.fixture(scope="module")
def tud(shared_dir):
    return evaluate_mot_files(_pairs(shared_dir))


def test_tud_reproduces_py_motmetrics_reference(tud):
    assert list(tud) == [*SEQS, "OVERALL"]
    for seq, expected in REFERENCE.items():
        assert set(tud[seq]) == set(METRIC_KEYS)
        for key, value in expected.items():
            if isinstance(value, int):
                assert tud[seq][key] == value, (seq, key)
            else:  # the table prints 6 decimals
                assert abs(tud[seq][key] - value) <= 5e-7 + 1e-9, (seq, key, tud[seq][key])


def test_tud_hota_is_trackevals(tud):
    assert abs(tud["OVERALL"]["hota"] - 0.400) <= 0.001
    for seq in SEQS:
        h = tud[seq]
        assert 0 < h["hota"] < 1 and h["hota"] == pytest.approx(np.sqrt(h["deta"] * h["assa"]), abs=0.02)


def _run_trackeval(tmp_path, sequences: dict, benchmark: str) -> dict:
    """TrackEval's own MotChallenge2DBox pipeline on files laid out as MOTChallenge's."""
    import trackeval

    gt_root, tr_root = tmp_path / "gt", tmp_path / "trackers"
    (tr_root / "t" / "data").mkdir(parents=True)
    for name, (gt_file, res_file) in sequences.items():
        (gt_root / name / "gt").mkdir(parents=True)
        shutil.copy(gt_file, gt_root / name / "gt" / "gt.txt")
        length = int(max(float(line.split(",")[0]) for line in open(gt_file)))
        (gt_root / name / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nseqLength={length}\n")
        shutil.copy(res_file, tr_root / "t" / "data" / f"{name}.txt")
    config = {k: False for k in ("USE_PARALLEL", "PRINT_RESULTS", "PRINT_CONFIG", "OUTPUT_SUMMARY",
                                 "OUTPUT_DETAILED", "PLOT_CURVES", "TIME_PROGRESS")}  # fmt: skip
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(tr_root), "BENCHMARK": benchmark,
        "SEQ_INFO": {n: None for n in sequences}, "SKIP_SPLIT_FOL": True,
        "GT_LOC_FORMAT": "{gt_folder}/{seq}/gt/gt.txt", "TRACKERS_TO_EVAL": ["t"],
        "PRINT_CONFIG": False,
    })  # fmt: skip
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
    with contextlib.redirect_stdout(io.StringIO()):
        res, _ = trackeval.Evaluator(config).evaluate([dataset], metrics)
    return {k: v["pedestrian"] for k, v in res["MotChallenge2DBox"]["t"].items()}


def test_tud_hota_equals_trackeval_file_pipeline(tud, shared_dir, tmp_path):
    ref = _run_trackeval(tmp_path, dict(zip(SEQS, _pairs(shared_dir))), "MOT15")
    for ours, theirs in [(s, s) for s in SEQS] + [("OVERALL", "COMBINED_SEQ")]:
        h = ref[theirs]["HOTA"]
        assert tud[ours]["hota"] == pytest.approx(h["HOTA"].mean(), abs=1e-12)
        assert tud[ours]["deta"] == pytest.approx(h["DetA"].mean(), abs=1e-12)
        assert tud[ours]["assa"] == pytest.approx(h["AssA"].mean(), abs=1e-12)
        assert tud[ours]["mota"] == pytest.approx(ref[theirs]["CLEAR"]["MOTA"], abs=1e-12)
        assert tud[ours]["idf1"] == pytest.approx(ref[theirs]["Identity"]["IDF1"], abs=1e-12)


def _box(frame, tid, x, y, w=40.0, h=100.0, conf=1.0, cls=1, vis=1.0):
    return [frame, tid, x, y, w, h, conf, cls, vis]


def _distractor_scene():
    """Six frames: two pedestrians, a static person (distractor), a car and a
    zero-marked pedestrian; the tracker follows all of them, switches the id of
    pedestrian 2 at frame 4 and adds one stray box."""
    gt, res = [], []
    for f in range(1, 7):
        gt += [_box(f, 1, 10 + 5 * f, 50), _box(f, 2, 200, 50), _box(f, 3, 400, 50, cls=7),
               _box(f, 4, 600, 50, 120, 60, cls=3), _box(f, 5, 800, 50, conf=0)]  # fmt: skip
        res += [_box(f, 10, 12 + 5 * f, 52, conf=0.9, cls=-1, vis=-1),
                _box(f, 11 if f < 4 else 12, 203, 48, conf=0.8, cls=-1, vis=-1),
                _box(f, 13, 401, 51, conf=0.7, cls=-1, vis=-1),
                _box(f, 14, 600, 52, 118, 60, conf=0.6, cls=-1, vis=-1),
                _box(f, 15, 801, 50, conf=0.5, cls=-1, vis=-1)]  # fmt: skip
    res.append(_box(2, 16, 1000, 300, conf=0.4, cls=-1, vis=-1))
    return np.array(gt, float), np.array(res, float)


def test_distractors_and_zero_marked_as_trackeval_mot17(tmp_path):
    gt, res = _distractor_scene()
    write_mot(tmp_path / "src" / "gt.txt", gt, gt=True)
    write_mot(tmp_path / "src" / "res.txt", res)
    ours = evaluate_mot_arrays(gt, res, name="scene")["scene"]
    # by hand: the car and the zero-marked pedestrian are false positives (6 + 6)
    # plus the stray box; the static person's box is removed; one id switch
    assert (ours["fp"], ours["fn"], ours["idsw"], ours["num_objects"]) == (13, 0, 1, 12)
    ref = _run_trackeval(
        tmp_path / "te", {"scene": (tmp_path / "src" / "gt.txt", tmp_path / "src" / "res.txt")}, "MOT17"
    )["scene"]
    assert ours["fp"] == ref["CLEAR"]["CLR_FP"] and ours["fn"] == ref["CLEAR"]["CLR_FN"]
    assert ours["idsw"] == ref["CLEAR"]["IDSW"]
    assert ours["hota"] == pytest.approx(ref["HOTA"]["HOTA"].mean(), abs=1e-12)
    assert ours["assa"] == pytest.approx(ref["HOTA"]["AssA"].mean(), abs=1e-12)
    # flagging the car as an ignore region removes the tracker's box on it too
    car = gt[:, 7] == 3
    flagged = evaluate_mot_arrays(gt, res, name="s", gt_ignore=car)["s"]
    assert flagged["fp"] == 13 - 6
    marked = gt.copy()
    marked[car, 7] = -2  # the library's own ignore class
    assert evaluate_mot_arrays(marked, res, name="s")["s"] == flagged


def test_row_level_marks():
    gt, res = _distractor_scene()
    m = match_mot_arrays(gt, res)
    assert m.gt_status.shape == (len(gt),) and m.pred_status.shape == (len(res),)
    status = {(int(r[0]), int(r[1])): s for r, s in zip(gt, m.gt_status)}
    assert status[(1, 1)] == "match" and status[(1, 3)] == "ignored" and status[(1, 5)] == "ignored"
    assert status[(4, 2)] == "switch" and status[(5, 2)] == "match"
    pstatus = {(int(r[0]), int(r[1])): s for r, s in zip(res, m.pred_status)}
    assert pstatus[(1, 13)] == "ignored" and pstatus[(1, 14)] == "fp" and pstatus[(2, 16)] == "fp"
    assert pstatus[(4, 12)] == "switch"
    # matches point at each other and carry the IoU
    g = int(np.flatnonzero((gt[:, 0] == 3) & (gt[:, 1] == 1))[0])
    p = int(m.gt_match[g])
    assert res[p, 1] == 10 and m.pred_match[p] == g
    assert m.iou[g] == pytest.approx((38 * 98) / (2 * 4000 - 38 * 98))
    frames = m.frames()
    assert sorted(frames) == list(range(1, 7))
    f4 = frames[4]
    assert [int(res[i, 1]) for i in f4["switch_pred"]] == [12]
    assert len(f4["pred_fp"]) == 2 and len(f4["gt_missed"]) == 0 and len(f4["gt_matched"]) == 2
    assert len(frames[2]["pred_fp"]) == 3


def test_empty_sides_and_bad_input():
    gt, res = _distractor_scene()
    none = evaluate_mot_arrays(gt, np.zeros((0, 9)))["OVERALL"]
    assert none["fn"] == 12 and none["fp"] == 0 and none["mota"] == 0.0 and none["hota"] == 0.0
    only_fp = evaluate_mot_arrays(np.zeros((0, 9)), res)["OVERALL"]
    assert only_fp["fp"] == len(res) and only_fp["num_objects"] == 0
    six = evaluate_mot_arrays(gt[:, :6], res[:, :6])["OVERALL"]  # no class column: all pedestrians
    assert six["num_objects"] == len(gt)
    with pytest.raises(BadInputError, match="more than once in frame"):
        evaluate_mot_arrays(np.vstack([gt, gt[:1]]), res)
    with pytest.raises(BadInputError, match="shape"):
        evaluate_mot_arrays(gt[:, :4], res)
    world = gt.copy()
    world[:, 7] = 4.4852  # a MOT15 world coordinate read as a class
    with pytest.raises(BadInputError, match="not a MOTChallenge class"):
        evaluate_mot_arrays(world, res)
    with pytest.raises(BadInputError, match="gt_ignore"):
        match_mot_arrays(gt, res, gt_ignore=np.zeros(3, bool))


def test_sequence_names(tmp_path):
    assert sequence_name(tmp_path / "MOT17-02" / "gt" / "gt.txt") == "MOT17-02"
    assert sequence_name(tmp_path / "TUD-Campus" / "gt.txt") == "TUD-Campus"



def test_cli_eval_mot(shared_dir, capsys, tmp_path):
    (gt1, res1), (gt2, res2) = _pairs(shared_dir)
    rc = main(["eval-mot", "--pair", str(gt1), str(res1), "--pair", str(gt2), str(res2)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == [*SEQS, "OVERALL"]
    assert out["OVERALL"]["idsw"] == 14 and abs(out["OVERALL"]["mota"] - 0.555116) <= 5e-7 + 1e-9
    assert main(["eval-mot", "--pair", str(tmp_path / "missing.txt"), str(res1)]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,three,4,5,6\n")
    assert main(["eval-mot", "--pair", str(bad), str(res1)]) == 2
    assert "not a MOT line" in capsys.readouterr().err


@pytest.mark.parametrize("seq", ["MOT17-09", "MOT17-05"])
def test_mot17_halfval_tracking_equals_trackeval(shared_dir, tmp_path, seq):
    """A real MOT17 sequence (distractors, zero-marked and occluder rows) tracked by
    our ByteTrack: every headline metric equals TrackEval's MotChallenge2DBox run
    on the files (its MOT17 preprocessing)."""
    from fiftyone_posetrack.formats.mot import read_mot
    from fiftyone_posetrack.tracking import make_tracker
    from fiftyone_posetrack.tracking.run import track_mot_array

    root = shared_dir / "data" / "mot17-halfval" / seq
    gt = read_mot(root / "gt" / "gt.txt")
    assert np.isin(gt[:, 7], (2, 7, 8, 12)).any() and (gt[:, 6] == 0).any()  # the case under test
    res = track_mot_array(read_mot(root / "det" / "det.txt"), make_tracker("bytetrack"))
    write_mot(tmp_path / "res.txt", res)
    ours = evaluate_mot_arrays(gt, read_mot(tmp_path / "res.txt"), name=seq)[seq]
    ref = _run_trackeval(tmp_path / "te", {seq: (root / "gt" / "gt.txt", tmp_path / "res.txt")}, "MOT17")[seq]
    assert ours["hota"] == pytest.approx(ref["HOTA"]["HOTA"].mean(), abs=1e-12)
    assert ours["deta"] == pytest.approx(ref["HOTA"]["DetA"].mean(), abs=1e-12)
    assert ours["assa"] == pytest.approx(ref["HOTA"]["AssA"].mean(), abs=1e-12)
    assert ours["idf1"] == pytest.approx(ref["Identity"]["IDF1"], abs=1e-12)
    assert ours["fp"] == ref["CLEAR"]["CLR_FP"] and ours["fn"] == ref["CLEAR"]["CLR_FN"]
    assert ours["idsw"] == ref["CLEAR"]["IDSW"]
    assert ours["mota"] == pytest.approx(ref["CLEAR"]["MOTA"], abs=1e-12)
