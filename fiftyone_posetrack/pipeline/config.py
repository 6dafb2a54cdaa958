"""The pipeline's configuration: one typed object shared by the CLI, the operators and Python.

:class:`PipelineConfig` is a dataclass generated from
:data:`fiftyone_posetrack.pipeline.options.OPTIONS` (one field per option, in
its order): declare a new option there, not here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fiftyone_posetrack.pipeline.options import OPTIONS, check_option, docstring_attributes
from fiftyone_posetrack.types import BadInputError

__all__ = ["PipelineConfig", "UNSET"]


class _Unset:
    """The default of every field: "not given", resolved from the preset, then the option's default."""

    def __repr__(self):
        return "UNSET"

    def __reduce__(self):
        return (_unset, ())


def _unset():
    return UNSET


UNSET: Any = _Unset()


class _ConfigMethods:
    """Validation, (de)serialisation and presets of :class:`PipelineConfig`."""

    def __post_init__(self):
        given = {name for name in OPTIONS if getattr(self, name) is not UNSET}
        preset = self.preset if "preset" in given else None
        if preset is not None:
            from fiftyone_posetrack.presets import preset_options

            preset = check_option(OPTIONS["preset"], preset, "config.preset")
            preset_values = dict(preset_options(preset))
        else:
            preset_values = {}
        for name, option in OPTIONS.items():
            if name in given:
                continue
            setattr(self, name, preset_values[name] if name in preset_values else option.default_value())
        if "tracker_params" not in given and self.tracker != _params_tracker(preset_values):
            self.tracker_params = {}  # they were another tracker's parameters: this tracker's own defaults apply
        object.__setattr__(self, "_given", frozenset(given))
        self.validate()

    @property
    def explicit_options(self) -> frozenset:
        """The names of the options given explicitly (not from the preset or the defaults)."""
        return self._given

    def validate(self):
        """Checks every value (normalising numbers and tuples); raises
        :class:`BadInputError` naming the bad one (``config.<name>: ...``)."""
        for name, option in OPTIONS.items():
            setattr(self, name, check_option(option, getattr(self, name), f"config.{name}"))
        for name in ("det_input_size", "det_tile_size"):  # what the schema's ranges cannot say
            if 0 < getattr(self, name) < 32:
                raise BadInputError(
                    f"config.{name}: expected 0 or at least 32 pixels (the detectors' stride), got {getattr(self, name)}"
                )
        if self.detections_field == self.keypoints_field:
            raise BadInputError(
                f"config.keypoints_field: expected a field other than detections_field, got {self.keypoints_field!r}"
            )
        if self.pose2 is not None and not _is_mmpose(self.pose2):
            raise BadInputError(
                f"config.pose2: expected an mmpose model (a named mmpose model or an "
                f"'mmpose:CONFIG[:CHECKPOINT]' spec; heatmap averaging needs two mmpose models), got {self.pose2!r}"
            )
        from fiftyone_posetrack.tracking.base import check_tracker_params, make_tracker

        self.tracker_params = check_tracker_params(self.tracker, self.tracker_params, "config.tracker_params")
        make_tracker(self.tracker, **self.tracker_params)  # the checks that involve several parameters
        return self

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (``from_dict`` inverts it)."""
        d = {name: getattr(self, name) for name in OPTIONS}
        d["fusion_weights"] = list(self.fusion_weights)
        d["tracker_params"] = dict(self.tracker_params)
        d["overwrite_fields"] = list(self.overwrite_fields)
        return d

    @classmethod
    def from_dict(cls, d: dict):
        """Builds a config from a dict, refusing unknown keys by name."""
        unknown = sorted(set(d) - set(OPTIONS))
        if unknown:
            raise BadInputError(f"unknown config key(s) {unknown}; valid keys: {sorted(OPTIONS)}")
        return cls(**d)

    @classmethod
    def from_preset(cls, name: str, **overrides):
        """The preset ``name``'s values, with ``overrides`` (explicit options) on top."""
        return cls(preset=name, **overrides)

    def replace(self, **changes):
        """A copy with some values changed (validated).

        The explicitly given options stay explicit and the changed ones
        become explicit; the others are resolved again from the preset and
        the defaults (changing ``preset`` re-applies the new preset; changing
        ``tracker`` drops the unset parameters of the old tracker).
        """
        unknown = sorted(set(changes) - set(OPTIONS))
        if unknown:
            raise BadInputError(f"unknown config key(s) {unknown}; valid keys: {sorted(OPTIONS)}")
        values = {name: getattr(self, name) for name in self._given}
        return type(self)(**dict(values, **changes))


def _params_tracker(preset_values: dict) -> str:
    """The tracker whose parameters an unset ``tracker_params`` takes (the preset's, else the default's)."""
    if "tracker_params" in preset_values:
        return preset_values.get("tracker", OPTIONS["tracker"].default)
    return OPTIONS["tracker"].default


def _is_mmpose(model: str) -> bool:
    from fiftyone_posetrack.models import MODELS

    if model in MODELS:
        return MODELS[model].backend == "mmpose"
    return model.startswith("mmpose:")


_DOC = f"""Everything that decides what the pipeline computes and where it writes.

    Generated from :data:`fiftyone_posetrack.pipeline.options.OPTIONS`. Every
    field is optional; ``preset`` names a set of values
    (:data:`fiftyone_posetrack.presets.PRESETS`) and the fields given
    explicitly override it::

        PipelineConfig(preset="cpu", tracker="bytetrack")

    Model fields take a model name from :data:`fiftyone_posetrack.models.MODELS`
    (resolved through ``models_dir`` / ``POSETRACK_MODELS_DIR`` / the cache) or a
    model spec ``BACKEND:PATH[:CHECKPOINT]``.

    Attributes:
{docstring_attributes()}
    """

PipelineConfig = dataclasses.make_dataclass(
    "PipelineConfig",
    [(name, Any, dataclasses.field(default=UNSET)) for name in OPTIONS],
    bases=(_ConfigMethods,),
    namespace={"__doc__": _DOC, "__module__": __name__},
)
