"""The "Pose tracking" panel: its data (fiftyone_posetrack.fo.panel_data) and its events, run as the App runs them.

The panel's methods are executed through ``execute_operator`` with the
parameters the App sends (``__method__``, ``panel_id``, ``panel_state``);
what the panel asks the App to do (set state/data, set the view, open a
sample) is read back from the executor's requests.
"""

from __future__ import annotations

import math

import pytest

import fiftyone as fo
import fiftyone.operators as foo

from fiftyone_posetrack.fo import panel_data as pd
from fiftyone_posetrack.fo.evaluation import TrackingEvaluation, evaluate_person_detection
from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin
from fiftyone_posetrack.fo.views import show_track
from fiftyone_posetrack.formats.paths import video_name
from fiftyone_posetrack.types import BadInputError
from tracked import FP_FRAMES, SWAP_FRAME, make_tracked

PANEL = f"{PLUGIN_NAME}/pose_tracking_panel"


@pytest.fixture(scope="module")
def ds(tmp_path_factory, fo_home):
    install_plugin(fo.config.plugins_dir)
    dataset = make_tracked(tmp_path_factory.mktemp("panel"), persistent=True)
    evaluate_person_detection(dataset, eval_key="det_eval")
    yield dataset
    dataset.delete()


def test_evaluations_listed_by_kind(ds):
    kinds = {e["key"]: e["kind"] for e in pd.list_pose_tracking_evaluations(ds)}
    assert kinds == {"track_eval": "tracking", "pose_eval": "poses", "det_eval": "detection"}


def test_video_table_matches_the_results(ds):
    t = pd.video_table(ds, "track_eval")
    res = ds.load_evaluation_results("track_eval")
    assert [r["video"] for r in t["rows"]] == [video_name(ds.first().filepath), "OVERALL"]  # synth: its folder
    assert t["rows"][0]["sample_id"] == ds.first().id
    for c in ("mota", "idf1", "hota", "idsw", "fp", "fn"):
        assert t["rows"][-1][c] == res.metrics()[c]
    assert pd.video_table(ds, "pose_eval")["columns"] == ["ap", "ap50", "ar", "pt_ap", "pt_mota"]


def test_errors_over_time_sum_to_the_metrics(ds):
    (v,) = pd.errors_over_time(ds, "track_eval")
    m = ds.load_evaluation_results("track_eval").metrics()
    assert v["frame_number"] == list(range(1, 25)) and v["sample_id"] == ds.first().id
    assert (sum(v["fp"]), sum(v["fn"]), sum(v["idsw"])) == (m["fp"], m["fn"], m["idsw"])
    assert [n for n, c in zip(v["frame_number"], v["fp"]) if c] == list(FP_FRAMES)
    assert min(n for n, c in zip(v["frame_number"], v["idsw"]) if c) >= SWAP_FRAME


def test_track_table(ds):
    rows = {r["index"]: r for r in pd.track_table(ds, "track_eval")}
    assert sorted(rows) == [1, 2, 3, 4, 5] + [90 + f for f in FP_FRAMES]
    counts = ds.count_values("frames.pred_detections.detections.index")
    assert all(rows[i]["length"] == counts[i] for i in rows)
    assert set(rows[2]["gt_ids"]) == {2, 3} and set(rows[3]["gt_ids"]) == {2, 3}  # the swapped pair
    assert rows[1]["gt_ids"] == [1] and rows[1]["switches"] == 0
    assert sum(r["switches"] for r in rows.values()) == ds.count_values("frames.pred_detections.detections.track_eval_idsw")[True]
    fp = rows[90 + FP_FRAMES[0]]
    assert (fp["fp"], fp["length"], fp["first"], fp["gt_ids"], fp["mean_confidence"]) == (1, 1, FP_FRAMES[0], [], 0.35)
    # gaps: frames missing between first and last
    frames = sorted(n for s in ds for n, f in s.frames.items() if any(d.index == 1 for d in f.pred_detections.detections))
    assert rows[1]["gaps"] == sum(1 for a, b in zip(frames, frames[1:]) if b > a + 1)
    plain = pd.track_table(ds, field="pred_detections")
    assert [r["index"] for r in plain] == sorted(rows) and "switches" not in plain[0]


def test_joint_ap_and_run_records(ds):
    ap = pd.joint_ap(ds, "pose_eval")
    assert len(ap["joints"]) == len(ap["ap"]) == 15 and "nose" in ap["joints"]
    assert all(a is None or 0 <= a <= 100 for a in ap["ap"])
    records = {r["key"]: r for r in pd.run_records(ds)}
    assert records["track_eval"]["config"]["method"] == "posetrack_mot"
    assert records["pose_eval"]["config"]["kind"] == "posetrack"


def test_bad_parameters(ds):
    with pytest.raises(BadInputError, match="no evaluation 'nope'"):
        pd.video_table(ds, "nope")
    with pytest.raises(BadInputError, match="'pose_eval' is a poses evaluation, expected a tracking evaluation"):
        pd.errors_over_time(ds, "pose_eval")
    with pytest.raises(BadInputError, match="'track_eval' is a tracking evaluation, expected a poses evaluation"):
        pd.joint_ap(ds, "track_eval")
    with pytest.raises(BadInputError, match="field: name the tracked boxes"):
        pd.track_table(ds)


def test_works_for_runs_stored_before_the_panel(ds):
    """Older runs stored no per-frame counts in their results: the panel reads the fields."""
    res = ds.load_evaluation_results("track_eval")
    expected = pd.errors_over_time(ds, "track_eval"), pd.track_table(ds, "track_eval")
    del res.per_frame
    TrackingEvaluation.save_run_results(ds, "track_eval", res, overwrite=True, cache=False)
    ds.clear_cache() if hasattr(ds, "clear_cache") else None
    ds.reload()
    assert not hasattr(ds.load_evaluation_results("track_eval", cache=False), "per_frame")
    assert (pd.errors_over_time(ds, "track_eval"), pd.track_table(ds, "track_eval")) == expected
    assert pd.video_table(ds, "track_eval")["rows"][0]["mota"] == res.metrics()["mota"]


# --------------------------------------------------------------------------- the panel's events


def _event(ds, method, state=None, **params):
    r = foo.execute_operator(PANEL, ctx={"dataset": ds.name, "params": {
        "__method__": method, "panel_id": "p1", "panel_state": state or {}, "event_args": {}, **params}})  # fmt: skip
    assert r.error is None, r.error
    return [q.to_json() for q in r.executor._requests]


def _sent(requests, uri):
    return [q["params"] for q in requests if q["operator_uri"] == uri]


def test_panel_loads_the_tracking_evaluation(ds):
    reqs = _event(ds, "on_load")
    state = {k: v for p in _sent(reqs, "patch_panel_state") for k, v in p["state"].items()}
    data = {k: v for p in _sent(reqs, "patch_panel_data") for k, v in p["data"].items()}
    assert state["eval_key"] == "track_eval" and state["pt"]["kind"] == "tracking" and state["pt"]["error"] is None
    overall = data["videos"][-1]
    assert overall["video"] == "OVERALL" and overall["mota"] == f"{ds.load_evaluation_results('track_eval').metrics()['mota']:.3f}"
    assert {t["name"] for t in data["errors"]} == {"false positives", "misses", "ID switches"}
    assert data["errors"][0]["ids"][11] == f"{ds.first().id}:12"
    assert len(data["tracks"]) == 8 and {r["key"] for r in data["runs"]} >= {"track_eval", "pose_eval", "det_eval"}
    (out,) = _sent(reqs, "show_panel_output")
    props = out["output"]["type"]["properties"]
    assert {"videos", "errors", "tracks", "runs"} <= set(props) and "joints" not in props
    assert props["errors"]["view"]["on_click"].endswith("#on_click_error")
    assert props["tracks"]["view"]["on_click_row"].endswith("#on_click_track")


def test_panel_pose_evaluation_shows_joint_ap(ds):
    reqs = _event(ds, "on_change_eval", {"eval_key": "track_eval"}, value="pose_eval")
    data = {k: v for p in _sent(reqs, "patch_panel_data") for k, v in p["data"].items()}
    assert data["joints"][0]["type"] == "bar" and len(data["joints"][0]["x"]) == 15
    assert "joints" in _sent(reqs, "show_panel_output")[0]["output"]["type"]["properties"]


def test_clicking_an_error_point_opens_the_video_at_that_frame(ds):
    sid = ds.first().id
    reqs = _event(ds, "on_click_error", id=f"{sid}:12", x=12, y=1)
    (view,) = _sent(reqs, "set_view")
    pending = {k: v for p in _sent(reqs, "patch_panel_state") for k, v in p["state"].items()}["pending_open"]
    assert not _sent(reqs, "open_sample"), "the modal opens after the App shows the clip"
    (opened,) = _sent(_event(ds, "on_change_view", {"pending_open": pending}), "open_sample")
    assert not _sent(_event(ds, "on_change_view", {"pending_open": None}), "open_sample")
    clips = fo.DatasetView._build(ds, view["view"])
    assert clips.first().id == opened["id"] == pending and clips.first().support == [12, 24]
    assert clips.first().sample_id == sid
    bad = _event(ds, "on_click_error", id=f"{sid}:99")
    assert "frame: expected a frame number in [1, 24]" in _sent(bad, "notify")[0]["message"]
    assert not _sent(bad, "set_view")


def test_clicking_a_track_row_shows_only_that_track(ds):
    state = {"pt": {"eval_key": "track_eval", "kind": "tracking", "box_field": "pred_detections",
                    "keypoints_field": "pred_keypoints"}}  # fmt: skip
    rows = pd.track_table(ds, "track_eval")
    reqs = _event(ds, "on_click_track", state, row=0)
    (view,) = _sent(reqs, "set_view")
    shown = fo.DatasetView._build(ds, view["view"])
    assert shown.distinct("frames.pred_detections.detections.index") == [rows[0]["index"]]
    assert shown.distinct("frames.pred_keypoints.keypoints.index") == [rows[0]["index"]]
    assert shown.count("frames.pred_detections.detections") == show_track(ds, rows[0]["index"]).count("frames.pred_detections.detections")
    bad = _event(ds, "on_click_track", state, row=99)
    assert "cannot show that track" in _sent(bad, "notify")[0]["message"] and not _sent(bad, "set_view")


# --------------------------------------------------------------------------- FiftyOne's Model Evaluation panel

BUILTIN_PANEL = "@voxel51/panels/model_evaluation_panel_builtin"


def test_fiftyones_model_evaluation_panel_opens_our_runs(ds):
    """Its ``load_evaluation`` crashed on our runs ('NoneType' object has no attribute 'get')."""

    def run(method, state):
        r = foo.execute_operator(BUILTIN_PANEL, ctx={"dataset": ds.name, "params": {
            "__method__": method, "panel_id": "m1", "panel_state": state, "event_args": {}}})  # fmt: skip
        assert r.error is None, r.error
        return {k: v for p in _sent([q.to_json() for q in r.executor._requests], "patch_panel_data") for k, v in p["data"].items()}

    r = foo.execute_operator(BUILTIN_PANEL, ctx={"dataset": ds.name, "params": {
        "__method__": "on_load", "panel_id": "m1", "panel_state": {}, "event_args": {}}})  # fmt: skip
    assert r.error is None, r.error
    listed = [e for q in r.executor._requests for e in (q.to_json()["params"].get("state") or {}).get("evaluations", [])]
    assert {e["key"] for e in listed} == {"track_eval", "pose_eval", "det_eval"}
    ids = {e["key"]: e["id"] for e in listed}  # the panel caches by evaluation id
    m = ds.load_evaluation_results("track_eval").metrics()
    for key in ("track_eval", "pose_eval", "det_eval"):
        data = run("load_evaluation", {"view": {"key": key, "id": ids[key]}})[f"evaluation_{key}"]
        assert data["info"]["key"] == key and data["custom_metrics"]
    track = run("load_evaluation", {"view": {"key": "track_eval", "id": ids["track_eval"]}})["evaluation_track_eval"]
    # the box matches of the tracking run: the per-box marks; fp / fn as the run counted them
    marks = ds.count_values("frames.pred_detections.detections.track_eval")
    assert (int(track["metrics"]["tp"]), int(track["metrics"]["fp"]), int(track["metrics"]["fn"])) == (
        marks["tp"], m["fp"], m["fn"])  # fmt: skip
    assert marks["tp"] == m["num_objects"] - m["fn"]
    assert track["custom_metrics"]["posetrack/mota"]["value"] == m["mota"]
    assert track["per_class_metrics"]["person"]["precision"] == pytest.approx(m["precision"])


def test_the_clicked_kind_of_error_is_selected_in_the_modal(ds):
    """Clicking a false-positive point opens the frame with its false-positive boxes selected (highlighted)."""
    sid, frame = ds.first().id, FP_FRAMES[0]
    state = {"pt": {"eval_key": "track_eval", "kind": "tracking"}}
    reqs = _event(ds, "on_click_error", state, id=f"{sid}:{frame}", x=frame, y=1, trace="false positives")
    patched = {k: v for p in _sent(reqs, "patch_panel_state") for k, v in p["state"].items()}
    labels = patched["pending_select"]
    fp = ds.filter_labels("frames.pred_detections", fo.ViewField("track_eval") == "fp").match_frames(
        fo.ViewField("frame_number") == frame)  # fmt: skip
    expected = {d.id for s in fp for f in s.frames.values() for d in f.pred_detections.detections}
    assert expected and {x["label_id"] for x in labels} == expected
    assert {(x["sample_id"], x["field"], x["frame_number"]) for x in labels} == {(patched["pending_open"], "frames.pred_detections", frame)}
    opened = _event(ds, "on_change_view", {"pending_open": patched["pending_open"], "pending_select": labels})
    assert _sent(opened, "open_sample") and _sent(opened, "set_selected_labels")[0]["labels"] == labels
    misses = _event(ds, "on_click_error", state, id=f"{sid}:{frame}", x=frame, y=1, trace="misses")
    missed = {k: v for p in _sent(misses, "patch_panel_state") for k, v in p["state"].items()}["pending_select"]
    assert all(x["field"] == "frames.gt_detections" for x in missed)
