"""Presets: data checked against the schema, explicit options override, CLI and operator reach them."""

import argparse
import re

import pytest

from fiftyone_posetrack.cli import build_parser, main
from fiftyone_posetrack.cli.run import config_from_args
from fiftyone_posetrack.models import MODELS
from fiftyone_posetrack.pipeline.config import PipelineConfig
from fiftyone_posetrack.pipeline.options import OPTIONS, form_values
from fiftyone_posetrack.presets import PRESETS, preset_models, preset_options
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.values import check_value


def _usable(name):
    """Whether every detector / pose model of the preset is known to this version's zoo."""
    return all(m in MODELS for opt, m in preset_models(name).items() if OPTIONS[opt].model_kind != "reid")


def test_the_agreed_presets_exist_and_their_values_fit_the_schema():
    assert {"hie2020", "accurate", "balanced", "fast", "cpu"} <= set(PRESETS)
    for name, preset in PRESETS.items():
        assert preset["description"]
        for option, value in preset["options"].items():
            assert option in OPTIONS and option != "preset", (name, option)
            check_value(OPTIONS[option].spec, value, f"{name}.{option}")


def test_hie2020_is_the_seed_pipeline():
    o = preset_options("hie2020")
    assert (o["detector"], o["detector2"], o["fusion_weights"]) == ("cascade-rcnn-x101-fpn-coco", "cascade-rcnn-r101-fpn-coco", (1.0, 1.0))
    assert o["tracker"] == "deepsort" and o["tracker_params"] == {
        "max_cosine_distance": 0.3, "nn_budget": 256, "max_age": 30, "n_init": 3, "max_iou_distance": 0.7,
    }  # fmt: skip
    assert (o["pose"], o["pose2"], o["pose_smoothing"], o["box_alpha"]) == (
        "hrnet-w48-coco-256x192", "simplebaseline-r152-coco-256x192", "flow", 0.5,
    )  # fmt: skip


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_gives_its_values_or_names_the_model_the_zoo_lacks(name):
    if not _usable(name):
        missing = [m for opt, m in preset_models(name).items() if OPTIONS[opt].model_kind != "reid" and m not in MODELS]
        with pytest.raises(BadInputError, match=re.escape(f"unknown model {missing[0]!r}; known models")):
            PipelineConfig(preset=name)
        return
    config = PipelineConfig(preset=name)
    for option, value in preset_options(name).items():
        assert getattr(config, option) == value, option
    assert config.explicit_options == {"preset"}


def test_the_defaults_are_the_measured_cpu_preset():
    """``PipelineConfig()`` is the ``cpu`` preset in every value (the bench-chosen defaults);
    the other presets do not inherit its tiles."""
    default, cpu = PipelineConfig().to_dict(), PipelineConfig(preset="cpu").to_dict()
    assert [k for k in default if default[k] != cpu[k]] == ["preset"]
    assert config_from_args(build_parser().parse_args(["run", "x.mp4"])) == PipelineConfig()
    assert default["det_tile_size"] > 0 and default["reid"] in MODELS and default["tracker"] == "bytetrack"
    for name in PRESETS:
        if name != "cpu" and _usable(name):
            assert PipelineConfig(preset=name).det_tile_size == 0, name


def test_another_tracker_does_not_inherit_the_default_trackers_parameters():
    default_params = OPTIONS["tracker_params"].default
    assert default_params and PipelineConfig().tracker_params == default_params
    for config in (
        PipelineConfig(tracker="deepsort"),
        PipelineConfig().replace(tracker="sort"),
        PipelineConfig(preset="balanced"),  # DeepSORT, no parameters of its own
        PipelineConfig(preset="cpu", tracker="ocsort"),
    ):
        assert config.tracker_params == {}, config.tracker
    assert PipelineConfig(tracker="deepsort").replace(tracker="bytetrack").tracker_params == default_params
    # parameters given explicitly stay, and are checked against the new tracker
    assert PipelineConfig(tracker_params={"max_age": 5}).replace(tracker="sort").tracker_params == {"max_age": 5}
    with pytest.raises(BadInputError, match=r"unknown parameter\(s\) \['track_thresh'\] of tracker 'deepsort'"):
        PipelineConfig(tracker_params={"track_thresh": 0.4}).replace(tracker="deepsort")


def test_explicit_options_override_the_preset():
    config = PipelineConfig(preset="cpu", tracker="bytetrack", batch_size=2)
    assert (config.tracker, config.batch_size, config.reid) == ("bytetrack", 2, preset_options("cpu")["reid"])
    assert PipelineConfig.from_preset("cpu", tracker="bytetrack", batch_size=2) == config
    # an explicit value equal to the option's default still wins over the preset
    assert preset_options("fast")["reid"] != OPTIONS["reid"].default
    assert PipelineConfig(preset="fast", reid=OPTIONS["reid"].default).reid == OPTIONS["reid"].default
    # replace keeps explicit values explicit, and a new preset applies to the rest
    again = config.replace(preset=None)
    assert (again.tracker, again.batch_size, again.reid) == ("bytetrack", 2, OPTIONS["reid"].default)
    assert config.replace(box_alpha=0.9).explicit_options == {"preset", "tracker", "batch_size", "box_alpha"}
    assert PipelineConfig.from_dict(config.to_dict()) == config


def test_unknown_preset_lists_the_known_ones(capsys):
    with pytest.raises(BadInputError, match="got 'best'"):
        PipelineConfig(preset="best")
    with pytest.raises(BadInputError, match="known presets: hie2020, accurate, balanced, fast, cpu"):
        preset_options("best")
    assert main(["presets", "best"]) == 2
    assert "unknown preset(s) ['best']; known presets: hie2020" in capsys.readouterr().err


def test_cli_preset_with_flags_that_override_it():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    args = sub.choices["run"].parse_args(["--preset", "cpu", "--tracker", "sort", "--no-box-smoothing"])
    config = config_from_args(args)
    assert (config.preset, config.tracker, config.box_smoothing) == ("cpu", "sort", False)
    assert config.detector == preset_options("cpu")["detector"]


def test_run_form_fields_left_at_their_defaults_take_the_preset():
    submitted = {name: o.default_value() for name, o in OPTIONS.items()} | {"preset": "cpu", "batch_size": 2}
    config = PipelineConfig(**form_values(submitted))
    assert config.batch_size == 2 and config.reid == preset_options("cpu")["reid"]
    # without a preset too, a field left at its default is not given: the default's tiles stay lenient
    # and a tracker chosen in the form does not receive the default tracker's parameters
    defaults = {name: o.default_value() for name, o in OPTIONS.items()}
    assert form_values(defaults | {"preset": None, "batch_size": 8 + 1}) == {"preset": None, "batch_size": 9}
    plain = PipelineConfig(**form_values(defaults | {"preset": None}))
    assert plain == PipelineConfig() and "det_tile_size" not in plain.explicit_options
    other = PipelineConfig(**form_values(defaults | {"preset": None, "tracker": "deepsort"}))
    assert other.tracker == "deepsort" and other.tracker_params == {}


def test_presets_command_lists_models_and_offline_state(shared_dir, capsys, monkeypatch):
    monkeypatch.setenv("POSETRACK_OFFLINE", "1")
    models = shared_dir / "models"
    assert main(["presets", "--models-dir", str(models)]) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert re.search(rf"^{name}: ", out, re.M), name
    cpu = out.split("cpu: ", 1)[1]
    assert str(models / "rtmdet-nano-person") in cpu and str(models / "movenet-lightning-int8") in cpu
    for name in PRESETS:
        block = out.split(f"{name}: ", 1)[1].split("\n\n", 1)[0]
        local = all(m in MODELS and (models / m).is_dir() for m in preset_models(name).values())
        assert block.splitlines()[1].startswith("  available offline") == local, name


def test_cpu_preset_detection_and_tracker_values():
    config = PipelineConfig(preset="cpu")
    assert (config.det_input_size, config.det_tile_size, config.tracker) == (0, 640, "bytetrack")
    assert config.tracker_params["appearance_on_demand"] is True
    # another tracker given explicitly: the preset's ByteTrack parameters do not follow it
    other = PipelineConfig(preset="cpu", tracker="deepsort")
    assert other.tracker_params == {} and other.det_tile_size == 640
    mine = PipelineConfig(preset="cpu", tracker="deepsort", tracker_params={"max_age": 5})
    assert mine.tracker_params == {"max_age": 5}
