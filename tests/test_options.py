"""The one parameter schema: every option reachable from Python, the CLI and the run operator,
numbers parsed and checked once, NaN / strings / ``_`` field names refused everywhere."""

import argparse
import math
import re

import pytest

from fiftyone_posetrack.cli import build_parser
from fiftyone_posetrack.cli.run import config_from_args
from fiftyone_posetrack.pipeline.config import PipelineConfig
from fiftyone_posetrack.pipeline.options import GROUPS, JOB_OPTIONS, OPTIONS, parse_text, values_from_params
from fiftyone_posetrack.tracking.base import available_trackers, check_tracker_params, tracker_params
from fiftyone_posetrack.tracking.base import _REGISTRY  # noqa: F401  (loaded by available_trackers)
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.values import ValueSpec, check_value


def _run_parser():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def test_python_fields_equal_cli_flags_equal_run_operator_inputs(fo_home):
    import dataclasses

    import fiftyone as fo
    from fiftyone.operators.executor import ExecutionContext

    from operators.stages import RunPoseTracking

    fields = [f.name for f in dataclasses.fields(PipelineConfig)]
    assert fields == list(OPTIONS)
    run = _run_parser()
    dests = {a.dest for a in run._actions}
    assert set(fields) <= dests, f"options without a CLI flag: {sorted(set(fields) - dests)}"
    ds = fo.Dataset()
    ds.media_type = "video"

    def form_inputs(params):
        form = RunPoseTracking().resolve_input(ExecutionContext({"dataset_name": ds.name, "params": params}))
        return {k for k in form.type.properties if not k.startswith("header_")} - {
            "view_target", "view", "show_advanced", "preset_values",
        }  # fmt: skip

    try:
        inputs = form_inputs({"show_advanced": True})
        collapsed = form_inputs({})
    finally:
        ds.delete()
    assert inputs == set(fields) | set(JOB_OPTIONS), inputs ^ (set(fields) | set(JOB_OPTIONS))
    hidden = {n for n, o in {**OPTIONS, **JOB_OPTIONS}.items() if o.group in ("runtime", "advanced")}
    assert {"engine", "workers", "ray_address", "flush_frames", "stale_after", "batch_size", "device"} <= hidden
    assert collapsed == inputs - hidden, "runtime and scale-out knobs are behind the advanced switch"


def test_run_form_is_grouped_with_human_labels_and_own_help(fo_home):
    import fiftyone as fo
    from fiftyone.operators.executor import ExecutionContext

    from operators.stages import RunPoseTracking

    ds = fo.Dataset()
    ds.media_type = "video"
    try:
        form = RunPoseTracking().resolve_input(ExecutionContext({"dataset_name": ds.name, "params": {"show_advanced": True}}))
    finally:
        ds.delete()
    props = form.type.properties
    assert "preset_values" not in props, "no preset chosen: no preset notice"
    headers = [k for k in props if k.startswith("header_")]
    assert headers == [f"header_{g}" for g in GROUPS], "one header per group, in order"
    order = [k for k in props if not k.startswith("header_")]
    assert order.index("detector") < order.index("tracker") < order.index("pose_smoothing") < order.index("keypoints_field") < order.index("engine")
    flow = {c.value: c.label for c in props["flow_method"].view.choices}
    assert flow["lk"].startswith("Lucas-Kanade") and flow["dis"].startswith("DIS")
    trackers = {c.value: c.label for c in props["tracker"].view.choices}
    assert trackers["deepsort"].startswith("DeepSORT") and trackers["bytetrack"].startswith("ByteTrack")
    assert {c.value: c.label for c in props["pose_smoothing"].view.choices}["one-euro"].startswith("One-Euro")
    assert "rtmpose" in props["pose"].view.description and "rtmdet" not in props["pose"].view.description
    assert "rtmdet" in props["detector"].view.description


def test_every_option_is_declared_completely():
    for o in list(OPTIONS.values()) + list(JOB_OPTIONS.values()):
        assert o.group in GROUPS and o.label and o.help, o.name
        check_value(o.spec, o.default, o.name)  # the default is a valid value
        if o.choices is not None:
            assert o.spec.choices is None or set(o.choices) == set(o.spec.choices), o.name
            for value in o.choices:  # what the form offers is accepted
                check_value(o.spec, value, o.name)
            assert all(label and label != value for value, label in o.choices.items() if value != "none"), o.name


def test_every_option_given_on_the_command_line_reaches_the_config():
    """One non-default value per option, typed as a user would, lands in the config."""
    argv = [
        "--detector", "rtmdet-onnx:/m/det.onnx", "--detector2", "yolox-nano", "--fusion-weights", "2", "1",
        "--det-score-threshold", "0.4", "--det-input-size", "640", "--det-tile-size", "512",
        "--det-tile-overlap", "0.3", "--det-tile-merge", "wbf", "--pose", "rtmpose-onnx:/m/pose.onnx", "--pose2", "mmpose:a.py",
        "--no-pose-flip", "--tracker", "deepsort", "--param", "max_age=12", "--param", "n_init=2",
        "--reid", "none", "--reid-flip", "--reid-scales", "1", "0.875", "--no-box-smoothing", "--box-alpha", "0.7", "--box-max-gap", "3", "--flow", "dis",
        "--pose-smoothing", "one-euro", "--pose-alpha", "0.1", "--keypoint-threshold", "0.2",
        "--detections-field", "boxes", "--keypoints-field", "poses", "--overwrite", "--batch-size", "3",
        "--device", "cuda:1", "--models-dir", "/m", "--preset", "fast",
        "--overwrite-field", "gt_keypoints", "--overwrite-field", "imported",
        "--post-interpolate", "20", "--post-gsi", "--post-gsi-tau", "5", "--post-min-length", "4",
        "--post-min-score", "0.3", "--post-link",
    ]  # fmt: skip
    config = config_from_args(_run_parser().parse_args(argv))
    expected = dict(
        detector="rtmdet-onnx:/m/det.onnx", detector2="yolox-nano", fusion_weights=(2.0, 1.0),
        det_score_threshold=0.4, det_input_size=640, det_tile_size=512, det_tile_overlap=0.3,
        det_tile_merge="wbf", pose="rtmpose-onnx:/m/pose.onnx", pose2="mmpose:a.py", pose_flip=False, tracker="deepsort",
        tracker_params={"max_age": 12, "n_init": 2}, reid=None, reid_flip=True,
        reid_scales=(1.0, 0.875), box_smoothing=False, box_alpha=0.7,
        box_max_gap=3, flow_method="dis", pose_smoothing="one-euro", pose_alpha=0.1, keypoint_threshold=0.2,
        detections_field="boxes", keypoints_field="poses", overwrite=True, batch_size=3, device="cuda:1",
        models_dir="/m", preset="fast", overwrite_fields=("gt_keypoints", "imported"),
        post_interpolate=20, post_gsi=True, post_gsi_tau=5.0, post_min_length=4, post_min_score=0.3,
        post_link=True,
    )  # fmt: skip
    assert set(expected) == set(OPTIONS)
    for name, value in expected.items():
        assert getattr(config, name) == value, name
        assert value != OPTIONS[name].default, f"{name}: the test must use a non-default value"


def test_unset_flags_leave_the_config_defaults():
    assert config_from_args(_run_parser().parse_args([])) == PipelineConfig()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"box_alpha": "0.5"}, "config.box_alpha: expected a finite number >= 0 and <= 1, got '0.5'"),
        ({"det_score_threshold": math.nan}, "config.det_score_threshold: expected a finite number"),
        ({"pose_alpha": math.inf}, "config.pose_alpha: expected a finite number >= 0 and <= 0.5, got inf"),
        ({"box_max_gap": True}, "config.box_max_gap: expected an integer >= 0 and <= 100000, got True"),
        ({"batch_size": "8"}, "config.batch_size: expected an integer >= 1 and <= 1024, got '8'"),
        ({"fusion_weights": (1.0, math.nan)}, "config.fusion_weights: expected 2 finite numbers >= 0"),
        ({"fusion_weights": (1.0,)}, "config.fusion_weights: expected 2 finite numbers >= 0"),
        ({"reid_scales": ()}, "config.reid_scales: expected one or more finite numbers > 0 and <= 4, got ()"),
        ({"reid_scales": (1.0, 0.0)}, "config.reid_scales: expected one or more finite numbers > 0"),
        ({"box_smoothing": "yes"}, "config.box_smoothing: expected true or false, got 'yes'"),
        ({"detections_field": "_boxes"}, "config.detections_field: expected a field name"),
        ({"keypoints_field": "_id"}, "config.keypoints_field: expected a field name"),
        ({"flow_method": "farneback"}, "config.flow_method: expected one of 'lk', 'dis', got 'farneback'"),
        ({"tracker": "deepsort", "tracker_params": {"max_iou_distance": math.nan}}, "config.tracker_params.max_iou_distance: expected a finite number"),
        ({"tracker": "bytetrack", "tracker_params": {"track_thresh": 2.0}}, "config.tracker_params.track_thresh: expected a finite number >= 0 and <= 1, got 2.0"),
        ({"tracker": "deepsort", "tracker_params": {"nn_budget": "10"}}, "config.tracker_params.nn_budget: expected an integer >= 1 and <= 100000, got '10'"),
        ({"tracker_params": {"max_age": 2.5}}, "config.tracker_params.max_age: expected an integer >= 0 and <= 100000, got 2.5"),
        ({"tracker": "sort", "tracker_params": {"max_cosine_distance": 0.2}}, "unknown parameter(s) ['max_cosine_distance'] of tracker 'sort'"),
        ({"preset": "nope"}, "config.preset: expected one of 'hie2020', 'accurate', 'balanced', 'fast', 'cpu' or None, got 'nope'"),
    ],
    ids=lambda v: None if isinstance(v, str) else re.sub(r"\W+", "-", str(v))[:40],
)
def test_bad_values_are_refused_by_name(changes, message):
    with pytest.raises(BadInputError, match=re.escape(message)):
        PipelineConfig(**changes)


@pytest.mark.parametrize(
    "flag, text, message",
    [
        ("--box-alpha", "nan", "--box-alpha: expected a finite number >= 0 and <= 1, got nan"),
        ("--box-alpha", "half", "--box-alpha: expected a finite number >= 0 and <= 1, got 'half'"),
        ("--batch-size", "2.5", "--batch-size: expected an integer >= 1 and <= 1024, got 2.5"),
        ("--box-max-gap", "inf", "--box-max-gap: expected an integer >= 0 and <= 100000, got inf"),
        ("--fusion-weights", "1 -1", "--fusion-weights: expected 2 finite numbers >= 0"),
        ("--keypoints-field", "_x", "--keypoints-field: expected a field name"),
        ("--param", "track_thresh=NaN", "config.tracker_params.track_thresh: expected a finite number"),
        ("--stale-after", "0", "--stale-after: expected a finite number > 0 and <= 604800, got 0"),
    ],
)
def test_bad_command_line_values_are_refused_by_flag(flag, text, message):
    from fiftyone_posetrack.cli.run import job_options_from_args

    args = _run_parser().parse_args([flag, *text.split()])
    with pytest.raises(BadInputError, match=re.escape(message)):
        config_from_args(args)
        job_options_from_args(args)


def test_operator_parameters_are_checked_by_name():
    assert values_from_params({"box_alpha": 0.2, "fusion_weights": "2, 1", "reid": "none", "batch_size": 4.0}) == {
        "box_alpha": 0.2, "fusion_weights": (2.0, 1.0), "reid": None, "batch_size": 4,
    }  # fmt: skip
    for params, message in [
        ({"box_alpha": "0.5"}, "parameter 'box_alpha': expected a finite number"),
        ({"box_alpha": math.nan}, "parameter 'box_alpha': expected a finite number"),
        ({"fusion_weights": "1, x"}, "parameter 'fusion_weights': expected 2 finite numbers"),
        ({"tracker_params": "[1]"}, "parameter 'tracker_params': expected a mapping"),
        ({"keypoints_field": "_k"}, "parameter 'keypoints_field': expected a field name"),
        ({"alpha": 0.9}, "parameter 'alpha': expected a finite number >= 0 and <= 0.5"),
    ]:
        with pytest.raises(BadInputError, match=re.escape(message)):
            values_from_params(params, rename={"pose_alpha": "alpha"})


def test_every_tracker_parameter_is_declared_with_its_type():
    for name in available_trackers():
        defaults = tracker_params(name)
        table = _registry()[name].PARAMS
        assert set(table) == set(defaults), name
        check = check_tracker_params(name, defaults)  # the defaults themselves pass
        assert check == {k: v for k, v in defaults.items()}, name


def _registry():
    from fiftyone_posetrack.tracking import base

    return base._REGISTRY


def test_text_parsing_is_shared():
    assert parse_text("fusion_weights", "1,2") == (1.0, 2.0)
    assert parse_text("batch_size", "8") == 8
    assert parse_text("detector2", "none") is None
    with pytest.raises(BadInputError, match="batch_size: expected an integer >= 1 and <= 1024, got '8x'"):
        parse_text("batch_size", "8x")
    assert check_value(ValueSpec("int", lo=0), 3.0, "n") == 3 and isinstance(check_value(ValueSpec("int"), 3.0, "n"), int)


def test_error_classes_and_exit_codes():
    from fiftyone_posetrack.fo import jobs
    from fiftyone_posetrack.models import ModelUnavailableError as FromModels
    from fiftyone_posetrack.types import (
        DatabaseUnavailableError,
        ModelUnavailableError,
        MissingDependencyError,
        PosetrackError,
        missing_dependency,
    )

    assert jobs.DatabaseUnavailableError is DatabaseUnavailableError and FromModels is ModelUnavailableError
    classes = (BadInputError, DatabaseUnavailableError, ModelUnavailableError, MissingDependencyError)
    assert [c.exit_code for c in classes] == [2, 3, 4, 5]
    assert all(issubclass(c, PosetrackError) for c in classes)
    assert issubclass(BadInputError, ValueError) and issubclass(MissingDependencyError, ImportError)
    assert not any(issubclass(c, BadInputError) for c in classes[1:]), "each failure kind has its own class"
    e = missing_dependency("MoveNet TFLite", "ai-edge-litert", "lite", ImportError("No module named 'ai_edge_litert'"))
    assert "MoveNet TFLite needs ai-edge-litert" in str(e) and "pip install 'fiftyone-posetrack[lite]'" in str(e)


def test_tuning_grid_values_are_checked_before_any_video_is_read():
    from fiftyone_posetrack.fo.tune import tune_tracker

    for grid, message in [
        ({"max_age": [1, -1]}, "grid.max_age: expected an integer >= 0 and <= 100000, got -1"),
        ({"iou_threshold": [0.3, float("nan")]}, "grid.iou_threshold: expected a finite number"),
        ({"bogus": [1]}, "grid: tracker 'sort' has no parameter(s) ['bogus']"),
    ]:
        with pytest.raises(BadInputError, match=re.escape(message)):
            tune_tracker(None, "dets", "gt", "sort", grid)  # no samples: it must fail before reading any


def test_run_form_says_what_the_chosen_preset_sets(fo_home):
    import fiftyone as fo
    from fiftyone.operators.executor import ExecutionContext

    from fiftyone_posetrack.presets import preset_options
    from operators.stages import RunPoseTracking

    ds = fo.Dataset()
    ds.media_type = "video"
    try:
        form = RunPoseTracking().resolve_input(ExecutionContext({"dataset_name": ds.name, "params": {"preset": "cpu"}}))
    finally:
        ds.delete()
    keys = list(form.type.properties)
    assert keys.index("preset_values") == keys.index("preset") + 1
    text = form.type.properties["preset_values"].view.label
    assert text.startswith("cpu sets ") and f"reid={preset_options('cpu')['reid']!r}" in text


def test_run_form_says_the_default_tracker_parameters_are_the_default_trackers(fo_home):
    import json

    import fiftyone as fo
    from fiftyone.operators.executor import ExecutionContext

    from operators.stages import RunPoseTracking

    ds = fo.Dataset()
    ds.media_type = "video"
    default_json = json.dumps(OPTIONS["tracker_params"].default)

    def props(params):
        return RunPoseTracking().resolve_input(ExecutionContext({"dataset_name": ds.name, "params": params})).type.properties

    try:
        chosen = props({"tracker": "deepsort", "tracker_params": default_json})
        default_tracker = props({"tracker": OPTIONS["tracker"].default, "tracker_params": default_json})
        edited = props({"tracker": "deepsort", "tracker_params": '{"max_age": 12}'})
    finally:
        ds.delete()
    keys = list(chosen)
    assert keys.index("tracker_params_note") == keys.index("tracker_params") + 1
    assert chosen["tracker_params_note"].view.label.startswith(f"These default parameters are {OPTIONS['tracker'].default}'s: deepsort")
    assert "tracker_params_note" not in default_tracker and "tracker_params_note" not in edited


# --------------------------------------------------------------------------- issue 21, case 5: bounded knobs


def _numeric_specs():
    for table, options in (("option", OPTIONS), ("job option", JOB_OPTIONS)):
        for name, o in options.items():
            if o.spec.type in ("int", "float", "floats") and name != "parallel_runs":  # retired with the Ray engine
                yield f"{table} {name}", o.spec
    for tracker in available_trackers():
        for name, spec in _REGISTRY[tracker].PARAMS.items():
            if spec.type in ("int", "float", "floats"):
                yield f"tracker {tracker} parameter {name}", spec


def test_every_numeric_option_and_tracker_parameter_has_a_maximum():
    unbounded = [what for what, spec in _numeric_specs() if spec.hi is None]
    assert not unbounded, f"numeric options without a documented maximum: {unbounded}"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"tracker": "bytetrack", "tracker_params": {"max_age": 2**64}}, r"max_age: expected an integer >= 0 and <= 100000, got 18446744073709551616"),
        ({"tracker": "deepsort", "tracker_params": {"nn_budget": 10**12}}, r"nn_budget: expected an integer >= 1 and <= 100000"),
        ({"det_input_size": 10**9}, r"det_input_size: expected an integer >= 0 and <= 8192, got 1000000000"),
        ({"det_tile_size": 10**6}, r"det_tile_size: expected an integer >= 0 and <= 8192"),
        ({"post_interpolate": 10**7}, r"post_interpolate: expected an integer >= 0 and <= 3000"),
        ({"batch_size": 10**6}, r"batch_size: expected an integer >= 1 and <= 1024"),
    ],
)
def test_huge_numbers_are_refused_before_the_run(changes, message):
    """``max_age=2**64`` and ``det_input_size=10**9`` used to be accepted and crash at run time."""
    with pytest.raises(BadInputError, match=message):
        PipelineConfig(**changes)


def test_huge_job_options_are_refused_on_the_command_line():
    parser = build_parser()
    for flag, text in (("--flush-frames", "1000000000"), ("--stale-after", "1e12")):
        args = parser.parse_args(["run", "--dataset", "x", flag, text])
        from fiftyone_posetrack.cli.run import job_options_from_args

        with pytest.raises(BadInputError, match=flag.lstrip("-").replace("-", "[-_]") + ".*<="):
            job_options_from_args(args)
