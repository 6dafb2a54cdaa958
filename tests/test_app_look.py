"""The App's look of a tracked dataset beyond colours: bookkeeping fields grouped, the App's colour-scheme
parameters, form help without CLI commands, the scheduling notice, the models folder's default and error.
(Colours reaching an already-open App: tests/test_app_browser_quality.py, with a real App and browser.)"""

from __future__ import annotations

import pytest

import fiftyone as fo

from fiftyone_posetrack.fo.appconfig import (
    BOOKKEEPING_GROUP,
    app_color_scheme_params,
    apply_track_colors,
    bookkeeping_fields,
    group_bookkeeping_fields,
)


@pytest.fixture()
def ds(fo_home):
    dataset = fo.Dataset()
    dataset.media_type = "video"
    sample = fo.Sample(filepath="/tmp/none.mp4")
    sample.frames[1] = fo.Frame(pred_detections=fo.Detections(detections=[fo.Detection(bounding_box=[0, 0, 0.1, 0.1], index=1)]))
    dataset.add_sample(sample)
    for name, value in (("pred_detections_status", "done"), ("pred_detections_claimed_at", 1.7e9),
                        ("pred_detections_run", "posetrack_run_1"), ("pred_detections_claim", "abc"), ("notes", "x")):
        dataset.set_values(name, [value])
    yield dataset
    dataset.delete()


def test_bookkeeping_fields_go_into_one_collapsed_group(ds):
    assert bookkeeping_fields(ds) == ["pred_detections_claim", "pred_detections_claimed_at", "pred_detections_run",
                                      "pred_detections_status"]  # fmt: skip
    group_bookkeeping_fields(ds)
    ds.reload()
    groups = {g.name: g for g in ds.app_config.sidebar_groups}
    assert groups[BOOKKEEPING_GROUP].paths == bookkeeping_fields(ds) and groups[BOOKKEEPING_GROUP].expanded is False
    others = [p for name, g in groups.items() if name != BOOKKEEPING_GROUP for p in g.paths]
    assert "notes" in others and not set(others) & set(bookkeeping_fields(ds))
    # idempotent, and a new bookkeeping field joins the group
    ds.set_values("pred_detections_stage_seconds", [1.0])
    group_bookkeeping_fields(ds)
    ds.reload()
    names = [g.name for g in ds.app_config.sidebar_groups]
    assert names.count(BOOKKEEPING_GROUP) == 1
    assert "pred_detections_stage_seconds" in ds.app_config.sidebar_groups[names.index(BOOKKEEPING_GROUP)].paths


def test_colours_grouping_and_the_apps_scheme_parameters(ds):
    assert apply_track_colors(ds, ["pred_detections"])
    ds.reload()
    assert BOOKKEEPING_GROUP in [g.name for g in ds.app_config.sidebar_groups]
    params = app_color_scheme_params(ds)
    assert params["color_by"] == "value" and params["fields"] == [
        {"path": "frames.pred_detections", "colorByAttribute": "index"}]  # fmt: skip
    assert params["show_keypoint_skeletons"] is True and params["multi_color_keypoints"] is False


def test_form_help_has_no_cli_commands_and_escapes_markdown():
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from operators._common import app_help, for_the_form
    from fiftyone_posetrack.pipeline.options import OPTIONS

    for o in OPTIONS.values():
        text = app_help(o.help)
        assert "posetrack " not in text.replace("posetrack_", ""), (o.name, text)
    assert r"a\*J(k-1->k)" in app_help(OPTIONS["pose_alpha"].help)  # not italics
    message = "model 'x' was not found (or into <DIR>/x/ and pass --models-dir DIR or set POSETRACK_MODELS_DIR=DIR)."
    assert "'Models folder' field" in for_the_form(message) and "--models-dir" not in for_the_form(message)


def test_scheduling_notice_and_models_folder_default(monkeypatch, tmp_path):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    import fiftyone.operators.types as types

    from operators import _common

    monkeypatch.setattr(fo.config, "allow_legacy_orchestrators", False)
    form = _common.heavy_form(types.Object(), "Run", "Boxes for every frame")
    text = form.to_json()["view"]["description"]
    assert text.startswith("Boxes for every frame. Schedule is not available")
    assert "FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true" in text and "Execute" in text
    monkeypatch.setattr(fo.config, "allow_legacy_orchestrators", True)
    assert _common.heavy_form(types.Object(), "Run", "Boxes").to_json()["view"]["description"] == "Boxes"
    monkeypatch.setenv("POSETRACK_MODELS_DIR", str(tmp_path))
    inputs = types.Object()
    _common.option_input(inputs, "models_dir")
    assert inputs.to_json()["properties"]["models_dir"]["default"] == str(tmp_path)
    monkeypatch.delenv("POSETRACK_MODELS_DIR")
    from fiftyone_posetrack.models import cache_dir

    assert _common.default_models_dir() == str(cache_dir())
