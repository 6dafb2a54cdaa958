"""Per-track views (fiftyone_posetrack.fo.views) and their operators, on a tracked and evaluated crowd video."""

from __future__ import annotations

import pytest

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone import ViewField as F
from fiftyone.operators.executor import ExecutionError

from fiftyone_posetrack.fo.evaluation import evaluate_person_detection, worst_tracks
from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin
from fiftyone_posetrack.fo.views import (
    IDSW_TAG,
    failure_view,
    id_switch_clips,
    open_at_frame,
    show_track,
    track_ids,
    trajectories,
)
from fiftyone_posetrack.types import BadInputError
from tracked import FP_FRAMES, SWAP_FRAME, make_tracked


@pytest.fixture(scope="module")
def ds(tmp_path_factory, fo_home):
    install_plugin(fo.config.plugins_dir)
    dataset = make_tracked(tmp_path_factory.mktemp("views"), persistent=True)  # operators load it by name
    yield dataset
    dataset.delete()


def _labels(ds, field="pred_detections"):
    """Every label of a frame field as (frame, index, tags), for before/after comparisons."""
    return sorted(
        (n, d.index, tuple(d.tags))
        for s in ds.select_fields(f"frames.{field}")
        for n, f in s.frames.items()
        for d in (f[field].detections if field.endswith("detections") else f[field].keypoints) if f[field]
    )


def _execute(name, ds, params):
    return foo.execute_operator(f"{PLUGIN_NAME}/{name}", ctx={"dataset": ds.name, "params": params, "request_delegation": False})


def test_track_ids(ds):
    assert track_ids(ds) == [1, 2, 3, 4, 5] + [90 + f for f in FP_FRAMES]
    assert track_ids(ds, "pred_keypoints") == [1, 2, 3, 4, 5]


def test_show_track_filters_boxes_and_skeletons_together(ds):
    view = show_track(ds, 2)
    assert view.distinct("frames.pred_detections.detections.index") == [2]
    assert view.distinct("frames.pred_keypoints.keypoints.index") == [2]
    n_boxes = ds.count_values("frames.pred_detections.detections.index")[2]
    assert view.count("frames.pred_detections.detections") == n_boxes
    assert view.count("frames.pred_keypoints.keypoints") == ds.count_values("frames.pred_keypoints.keypoints.index")[2]
    # ground truth is left as it is
    assert view.count("frames.gt_detections.detections") == ds.count("frames.gt_detections.detections")
    one = show_track(ds, 2, keypoints_field=None, sample_id=ds.first().id)
    assert one.count("frames.pred_keypoints.keypoints") == ds.count("frames.pred_keypoints.keypoints")


def test_show_track_bad_input(ds):
    before = _labels(ds)
    with pytest.raises(BadInputError, match=r"no track 77 in frames.pred_detections .*track ids: \[1, 2"):
        show_track(ds, 77)
    with pytest.raises(BadInputError, match="integer track id"):
        show_track(ds, "two")
    with pytest.raises(BadInputError, match="keypoints_field: frames.pred_detections holds Detections"):
        show_track(ds, 2, keypoints_field="pred_detections")
    with pytest.raises(BadInputError, match="sample_id: no video"):
        show_track(ds, 2, sample_id="0123456789abcdef01234567")
    assert _labels(ds) == before


def test_trajectories_one_clip_per_track(ds):
    view = trajectories(ds)
    assert len(view) == len(track_ids(ds))
    supports = {s.pred_detections.index: s.support for s in view}
    assert supports[90 + FP_FRAMES[0]] == [FP_FRAMES[0], FP_FRAMES[0]]
    with pytest.raises(BadInputError, match="field: frames.pred_keypoints holds Keypoints, expected Detections"):
        trajectories(ds, "pred_keypoints")


def test_id_switch_clips_cover_every_switch_and_tag_the_boxes(ds):
    numbers, counts = ds.values(["frames.frame_number", "frames.track_eval_idsw"])
    switches = [n for n, c in zip(numbers[0], counts[0]) if c]
    assert switches and min(switches) >= SWAP_FRAME
    gt_before = _labels(ds, "gt_detections")
    clips = id_switch_clips(ds, before=2, after=3)
    spans = clips.values("support")
    for n in switches:
        assert any(a <= n - 2 and n + 3 <= b for a, b in spans), (n, spans)
    assert all(b - a <= (max(switches) - min(switches)) + 5 for a, b in spans)
    tagged_gt = ds.filter_labels("frames.gt_detections", F("tags").contains(IDSW_TAG))
    assert tagged_gt.count("frames.gt_detections.detections") == ds.sum("frames.track_eval_idsw")
    tagged_pred = ds.filter_labels("frames.pred_detections", F("tags").contains(IDSW_TAG))
    assert tagged_pred.distinct("frames.pred_detections.detections.index") == [2, 3]
    # only tags were added
    assert [(n, i) for n, i, _ in _labels(ds, "gt_detections")] == [(n, i) for n, i, _ in gt_before]
    ds.untag_labels(IDSW_TAG)


def test_failure_views_reopen_without_rerunning(ds):
    info = ds.get_evaluation_info("track_eval")
    assert len(failure_view(ds, "track_eval", "worst_tracks")) == len(worst_tracks(ds, "track_eval")[1])
    assert len(failure_view(ds, "track_eval", "id_switch_clips", tag=None)) >= 1
    assert ds.get_evaluation_info("track_eval").timestamp == info.timestamp  # not re-run
    with pytest.raises(BadInputError, match="no evaluation 'nope'"):
        failure_view(ds, "nope")
    with pytest.raises(BadInputError, match="'pose_eval' is not a tracking evaluation"):
        failure_view(ds, "pose_eval")
    with pytest.raises(BadInputError, match="which: expected one of"):
        failure_view(ds, "track_eval", "everything")


def test_open_at_frame(ds):
    sid = ds.first().id
    clips, clip_id = open_at_frame(ds, sid, 12)
    assert clips.first().id == clip_id and clips.first().support == [12, 24]
    assert min(clips.first().frames.keys()) == 12
    with pytest.raises(BadInputError, match=r"frame: expected a frame number in \[1, 24\]"):
        open_at_frame(ds, sid, 25)


def test_operators_set_the_views(ds):
    r = _execute("show_track", ds, {"index": 3, "box_field": "pred_detections", "keypoints_field": "pred_keypoints"})
    assert r.error is None, r.error
    view = show_track(ds, 3)
    assert r.result == {"index": 3, "samples": 1, "pred_detections": view.count("frames.pred_detections.detections"),
                        "pred_keypoints": view.count("frames.pred_keypoints.keypoints")}  # fmt: skip
    r = _execute("show_trajectories", ds, {"field": "pred_detections"})
    assert r.result == {"clips": len(track_ids(ds))}
    r = _execute("show_evaluation_failures", ds, {"eval_key": "track_eval", "which": "id_switch_clips", "before": 1, "after": 1})
    assert r.result["samples"] == len(id_switch_clips(ds, before=1, after=1, tag=None))
    r = _execute("show_evaluation_failures", ds, {"eval_key": "track_eval", "which": "worst_tracks"})
    assert r.result["samples"] == 1
    ds.untag_labels(IDSW_TAG)


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("show_track", {"index": 99, "box_field": "pred_detections"}, "no track 99"),
        ("show_track", {"box_field": "pred_detections"}, "Path: index. Reason: Required"),
        ("show_evaluation_failures", {"eval_key": "nope", "which": "worst_tracks"}, "no evaluation 'nope'"),
        ("show_evaluation_failures", {"eval_key": "pose_eval", "which": "worst_tracks"}, "not a tracking evaluation"),
        ("show_evaluation_failures", {"eval_key": "track_eval", "which": "all"}, "parameter 'which'"),
        ("show_trajectories", {"field": "gt_keypoints"}, "Path: field. Reason: Invalid enum value"),
    ],
)
def test_operators_bad_parameters(ds, name, params, message):
    before = (_labels(ds), _labels(ds, "gt_detections"))
    with pytest.raises(ExecutionError, match=message):
        _execute(name, ds, params)
    assert (_labels(ds), _labels(ds, "gt_detections")) == before


# --------------------------------------------------------------------------- evaluate forms and outputs


def _resolve(ds, name, params, target="inputs", results=None):
    import asyncio

    from fiftyone.operators.executor import resolve_type
    from fiftyone.operators.registry import OperatorRegistry

    request = {"dataset_name": ds.name, "params": params, "target": target}
    if results is not None:
        request["results"] = results
    prop = asyncio.run(resolve_type(OperatorRegistry(), f"{PLUGIN_NAME}/{name}", request))
    assert not hasattr(prop, "error") or prop.error is None, getattr(prop, "error", None)
    return prop.to_json()


def _views(schema) -> dict:
    return {k: v["view"] for k, v in schema["type"]["properties"].items()}


def test_evaluate_forms_warn_before_replacing_a_run(ds):
    views = _views(_resolve(ds, "evaluate_tracking", {"eval_key": "track_eval"}))
    warning = views["replace_warning"]
    assert warning["name"] == "Warning" and "'track_eval' exists" in warning["label"]
    assert "track_eval_mota" in warning["description"] or "fields it wrote" in warning["description"]
    assert "replace_warning" not in _views(_resolve(ds, "evaluate_tracking", {"eval_key": "brand_new"}))
    assert "replace_detection_warning" not in _views(_resolve(ds, "evaluate_tracking", {"eval_key": "x"}))
    assert "'pose_eval' exists" in _views(_resolve(ds, "evaluate_poses", {"eval_key": "pose_eval"}))["replace_warning"]["label"]
    show = _views(_resolve(ds, "evaluate_tracking", {}))["show"]
    assert {c["label"] for c in show["choices"]} >= {"the frames with an ID switch", "nothing (stay here)"}


def test_evaluate_outputs_are_tables_without_empty_sections(ds):
    results = {"eval_key": "k", "per_video": []}
    out = _views(_resolve(ds, "evaluate_tracking", {}, target="outputs", results=results))
    assert out["per_video"]["name"] == "TableView" and "detection_per_video" not in out
    assert not any(v["name"] in ("JSONView", "MarkdownView") for v in out.values())
    cols = [c["label"] for c in out["per_video"]["columns"]]
    assert cols[:4] == ["Video", "MOTA", "IDF1", "HOTA"]
    out = _views(_resolve(ds, "evaluate_tracking", {}, target="outputs", results={**results, "detection_per_video": [{}]}))
    assert out["detection_per_video"]["name"] == "TableView"
    poses = _views(_resolve(ds, "evaluate_poses", {}, target="outputs", results={"kind": "posetrack"}))
    assert "PoseTrack AP" in [c["label"] for c in poses["per_video"]["columns"]]


def test_operators_have_icons_and_are_listed_import_run_evaluate_export(ds):
    import os

    import yaml

    from fiftyone_posetrack.fo.plugin import plugin_dir

    with open(os.path.join(plugin_dir(), "fiftyone.yml")) as f:
        names = yaml.safe_load(f)["operators"]
    ops = {op.name: op for op in foo.list_operators() if op.plugin_name == PLUGIN_NAME}
    assert all(ops[n].config.icon for n in names), [n for n in names if not ops[n].config.icon]
    stage = {"import": 0, "run": 1, "detect": 1, "track": 1, "postprocess": 1, "estimate": 1, "smooth": 1,
             "tune": 1, "evaluate": 2, "show": 2, "export": 3}  # fmt: skip
    order = [stage[n.split("_")[0]] for n in names]
    assert order == sorted(order), names
