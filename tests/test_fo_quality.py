"""Track quality stored on a dataset (fiftyone_posetrack.fo.quality), its operator and the panel's section.

The dataset is tests/tracked.py's crowd (tracks 2 and 3 swap identities at
frame SWAP_FRAME, a few one-box false-positive tracks) with its evaluations
deleted: a tracked dataset without ground-truth results.
"""

from __future__ import annotations

import pytest

import fiftyone as fo
import fiftyone.operators as foo
from fiftyone import ViewField as F

from fiftyone_posetrack.fo import panel_data as pd
from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin
from fiftyone_posetrack.fo.quality import (
    flagged_frames,
    has_quality,
    quality_clips,
    quality_frames_view,
    score_track_quality,
)
from fiftyone_posetrack.types import BadInputError
from tracked import SWAP_FRAME, make_tracked

PANEL = f"{PLUGIN_NAME}/pose_tracking_panel"


def _docs(ds):
    """Every sample and frame document, as stored."""
    coll = ds._sample_collection.find({}, sort=[("_id", 1)])
    frames = ds._frame_collection.find({}, sort=[("_sample_id", 1), ("frame_number", 1)])
    return list(coll), list(frames)


def _strip(frame_docs, key="quality"):
    out = []
    for d in frame_docs:
        d = {k: v for k, v in d.items() if not k.startswith(f"{key}_") and k != "last_modified_at"}
        if d.get("pred_detections"):
            d["pred_detections"] = dict(d["pred_detections"], detections=[
                {k: v for k, v in b.items() if k != f"{key}_flags"} for b in d["pred_detections"]["detections"]])  # fmt: skip
        out.append(d)
    return out


@pytest.fixture(scope="module")
def ds(tmp_path_factory, fo_home):
    install_plugin(fo.config.plugins_dir)
    dataset = make_tracked(tmp_path_factory.mktemp("quality"), persistent=True)
    dataset.delete_evaluations()
    yield dataset
    dataset.delete()


@pytest.fixture(scope="module")
def scored(ds):
    before = _docs(ds)
    summary = score_track_quality(ds, "pred_detections", "pred_keypoints")
    return before, summary


def test_scoring_writes_only_its_fields(ds, scored):
    before, summary = scored
    after = _docs(ds)
    # repr: NaN (missing joints) compares equal to itself
    assert repr(_strip(after[1])) == repr(_strip(before[1])), "every other frame field and box attribute is untouched"
    assert repr([dict(d, last_modified_at=None) for d in after[0]]) == repr([dict(d, last_modified_at=None) for d in before[0]])
    assert has_quality(ds) and summary["flags_computed"] == ["fragment", "jump", "low_confidence", "skeleton"]
    assert any("drift" in n for n in summary["notes"]), "no ReID model: the drift flag is skipped, and said so"
    assert ds.count("frames") == ds.count("frames.quality_score")
    assert "posetrack" in {ds.get_run_info(k).config.method for k in ds.list_runs()}


def test_the_swap_is_in_the_top_flagged_frames(ds, scored):
    rows = flagged_frames(ds, share=0.1)  # 3 of 24 frames
    assert rows and rows[0]["score"] == max(ds.values("frames.quality_score", unwind=True))
    window = round(0.25 * ds.first().metadata.frame_rate)  # the score's window: 0.25 s
    assert any(abs(r["frame_number"] - SWAP_FRAME) <= window for r in rows), rows
    jumped = ds.filter_labels("frames.pred_detections", F("quality_flags").contains("jump"))
    # the swapped pair jumps at the swap (or at its next box, where a box was dropped)
    at_swap = jumped.match_frames((F("frame_number") >= SWAP_FRAME) & (F("frame_number") <= SWAP_FRAME + 2))
    assert set(at_swap.distinct("frames.pred_detections.detections.index")) >= {2, 3}


def test_views_jump_to_the_flagged_frames(ds, scored):
    rows = flagged_frames(ds, share=0.1)
    clips = quality_clips(ds, share=0.1)
    assert [c.support[0] for c in clips] == sorted(r["frame_number"] for r in rows)
    view = quality_frames_view(ds, flag="jump")
    frames = [n for s in view for n in s.frames]
    assert SWAP_FRAME in frames and all("jump" in s.frames[n].quality_flags for s in view for n in s.frames)
    with pytest.raises(BadInputError, match="flag: expected one of"):
        quality_frames_view(ds, flag="everything")
    with pytest.raises(BadInputError, match="no track-quality fields"):
        flagged_frames(ds, key="nope")


def test_bad_input_names_the_problem(ds):
    with pytest.raises(BadInputError, match="box_field"):
        score_track_quality(ds, "nope")
    with pytest.raises(BadInputError, match="key"):
        score_track_quality(ds, key="bad key")
    with pytest.raises(BadInputError, match="unknown option"):
        score_track_quality(ds, config={"gate": 1})


def _event(ds, method, state=None, **params):
    r = foo.execute_operator(PANEL, ctx={"dataset": ds.name, "params": {
        "__method__": method, "panel_id": "p1", "panel_state": state or {}, "event_args": {}, **params}})  # fmt: skip
    assert r.error is None, r.error
    return [q.to_json() for q in r.executor._requests]


def _sent(requests, uri):
    return [q["params"] for q in requests if q["operator_uri"] == uri]


def test_panel_shows_the_flags_without_an_evaluation(ds, scored):
    reqs = _event(ds, "on_load")
    state = {k: v for p in _sent(reqs, "patch_panel_state") for k, v in p["state"].items()}
    data = {k: v for p in _sent(reqs, "patch_panel_data") for k, v in p["data"].items()}
    assert state["pt"]["quality_key"] == "quality" and state["pt"]["kind"] is None
    rows = pd.quality_table(ds)
    assert [r["frame_number"] for r in data["quality"]] == [str(r["frame_number"]) for r in rows]
    assert {t["name"] for t in data["births"]} == {"track births", "track deaths"}
    assert "jump" in data["tracks"][0] and int(data["tracks"][0]["jump"]) >= 1  # most-flagged track first
    props = _sent(reqs, "show_panel_output")[0]["output"]["type"]["properties"]
    assert props["quality"]["view"]["on_click_row"].endswith("#on_click_quality")
    # clicking a flagged frame opens that video at that frame
    click = _event(ds, "on_click_quality", {"pt": state["pt"]}, row=0)
    (view,) = _sent(click, "set_view")
    clips = fo.DatasetView._build(ds, view["view"])
    assert clips.first().support[0] == rows[0]["frame_number"]
    assert "cannot open that frame" in _sent(_event(ds, "on_click_quality", {"pt": state["pt"]}, row=99), "notify")[0]["message"]


def test_operator(ds, scored):
    r = foo.execute_operator(f"{PLUGIN_NAME}/evaluate_track_quality", ctx={"dataset": ds.name, "params": {
        "box_field": "pred_detections", "keypoints_field": "pred_keypoints", "key": "q2"}, "request_delegation": False})  # fmt: skip
    assert r.error is None, r.error
    assert r.result["videos"] == 1 and r.result["flagged_frames"] >= 1 and "skeleton" in r.result["flags_computed"]
    assert "drift" in r.result["notes"]
    assert has_quality(ds, "q2") and pd.quality_keys(ds) == ["q2", "quality"]
