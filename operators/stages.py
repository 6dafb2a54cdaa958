"""Operators for the pipeline's stages and for the whole pose tracking.

All of them are per-video jobs (:mod:`fiftyone_posetrack.fo.jobs`): they
claim each video atomically, so several runs of one operator on the same
videos (e.g. delegated runs picked up by several ``fiftyone delegated launch``
workers sharing one database) split the videos between them.

Their pipeline options (forms and reads) come from
:data:`fiftyone_posetrack.pipeline.options.OPTIONS`.
"""

from __future__ import annotations

import re

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.pipeline.options import JOB_OPTIONS, OPTIONS, form_values
from fiftyone_posetrack.pose.smoothing import SMOOTHERS
from fiftyone_posetrack.types import BadInputError

from ._common import (
    RUNTIME_OPTIONS,
    Params,
    field_choice,
    form,
    grouped_option_inputs,
    job_inputs,
    operator_config,
    option_input,
    heavy_form,
    option_inputs,
    run_job,
    runtime_inputs,
    scaleout_inputs,
    show_in_app,
    summary_outputs,
    target_view,
    tracker_inputs,
)

def _config(**values):
    """A :class:`PipelineConfig` from a submitted form's values (fields left at their defaults
    count as not given, see :func:`form_values`); its errors name the parameter."""
    from fiftyone_posetrack.pipeline.config import PipelineConfig

    try:
        return PipelineConfig(**form_values(values))
    except BadInputError as e:
        raise BadInputError(re.sub(r"^config\.(\w+)", r"parameter '\1'", str(e))) from None


def _builder(config):
    """Builds models exactly as the pipeline does (the same fusion thresholds, devices)."""
    from types import SimpleNamespace

    from fiftyone_posetrack.pipeline import core

    return SimpleNamespace(
        detector=lambda: core.build_detector(config),
        pose=lambda: core.build_pose_estimator(config),
        embedder=lambda: core.build_embedder(config),
    )


POSE_OPTIONS = ("pose", "pose2", "keypoint_threshold")
DETECTION_OPTIONS = (
    "detector", "detector2", "fusion_weights", "det_score_threshold",
    "det_input_size", "det_tile_size", "det_tile_overlap", "det_tile_merge",
)  # fmt: skip
BOX_SMOOTHING_OPTIONS = ("box_smoothing", "box_alpha", "box_max_gap", "flow_method")


def _stage_outputs(ctx):
    outputs = types.Object()
    summary_outputs(outputs, ctx)
    return types.Property(outputs, view=types.View(label="Done"))


class _Stage(foo.Operator):
    """A heavy per-video operator: delegated by default, targets the dataset / view / selection."""

    def resolve_output(self, ctx):
        return _stage_outputs(ctx)

    def _finish(self, ctx, view, field):
        # the App shows the processed videos (all of them when the target was the dataset)
        show_in_app(ctx, None if isinstance(view, fo.Dataset) else view)


class DetectPersons(_Stage):
    """Runs the person detector on every frame (untracked boxes)."""

    @property
    def config(self):
        return operator_config(
            "detect_persons",
            "Pose tracking: detect persons",
            "Person boxes in every frame (no track ids), e.g. to track them later or compare detectors",
            heavy=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Detect persons in")
        option_inputs(inputs, DETECTION_OPTIONS)
        inputs.str("field", default="pred_raw_detections", required=False, label="Output frame field")
        runtime_inputs(inputs)
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return heavy_form(inputs, "Detect persons")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.stages import detect_persons

        p = Params(ctx)
        config = _config(**p.options(DETECTION_OPTIONS + RUNTIME_OPTIONS))
        field = p.new_field("field", "pred_raw_detections")
        overwrite = p.bool("overwrite")
        view = target_view(ctx)
        detector = _builder(config).detector()

        def once(samples, **job_options):
            return detect_persons(samples, detector, field, config.batch_size, overwrite, **job_options)

        result = run_job(ctx, self, view, f"{field}_status", once, "person detection")
        self._finish(ctx, view, field)
        return result


class TrackPersons(_Stage):
    """Tracks an existing detections field (DeepSORT / ByteTrack / SORT)."""

    @property
    def config(self):
        return operator_config(
            "track_persons",
            "Pose tracking: track persons",
            "Link the boxes of a detections field into tracks (index = track id)",
            heavy=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Track persons in")
        field_choice(inputs, ctx, "in_field", fo.Detections, "Detections to track", "run 'detect persons' first")
        inputs.str("out_field", default="pred_detections", required=False, label="Output frame field")
        tracker_inputs(inputs)
        option_inputs(inputs, ("reid",) + BOX_SMOOTHING_OPTIONS)
        option_input(inputs, "device", label="Device (ReID)")
        inputs.bool("overwrite_input", default=False, required=False, label="Allow writing over the input field")
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return heavy_form(inputs, "Track persons")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.stages import track_detections
        from fiftyone_posetrack.tracking.box_smoothing import FlowBoxSmoother

        p = Params(ctx)
        in_field = p.field(ctx, "in_field", fo.Detections)
        out_field = p.new_field("out_field", "pred_detections")
        config = _config(**p.options(("tracker", "tracker_params", "reid", "device") + BOX_SMOOTHING_OPTIONS))
        tracker, params = config.tracker, config.tracker_params
        smoother = None
        if config.box_smoothing:
            smoother = FlowBoxSmoother(alpha=config.box_alpha, max_gap=config.box_max_gap, method=config.flow_method)
        overwrite, overwrite_input = p.bool("overwrite"), p.bool("overwrite_input")
        view = target_view(ctx)
        embedder = _builder(config).embedder()

        def once(samples, **job_options):
            return track_detections(
                samples, in_field, out_field, tracker, params, embedder, smoother, overwrite, overwrite_input,
                **job_options,
            )  # fmt: skip

        result = run_job(ctx, self, view, f"{out_field}_status", once, "tracking")
        self._finish(ctx, view, out_field)
        return result


class EstimatePoses(_Stage):
    """Estimates a pose in every tracked box."""

    @property
    def config(self):
        return operator_config(
            "estimate_poses",
            "Pose tracking: estimate poses",
            "A top-down pose in every box of a (tracked) detections field; keypoints share the box's index",
            heavy=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Estimate poses in")
        field_choice(
            inputs, ctx, "tracks_field", fo.Detections, "Tracked detections",
            "run 'track persons' first", default=OPTIONS["detections_field"].default,
        )  # fmt: skip
        option_inputs(inputs, POSE_OPTIONS)
        inputs.str("out_field", default=OPTIONS["keypoints_field"].default, required=False, label="Output frame field")
        runtime_inputs(inputs)
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return heavy_form(inputs, "Estimate poses")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.stages import estimate_poses

        p = Params(ctx)
        tracks_field = p.field(ctx, "tracks_field", fo.Detections)
        config = _config(**p.options(POSE_OPTIONS + RUNTIME_OPTIONS))
        out_field = p.new_field("out_field", OPTIONS["keypoints_field"].default)
        if out_field == tracks_field:
            raise BadInputError(f"parameter 'out_field': {out_field!r} is the tracks field; choose another")
        overwrite = p.bool("overwrite")
        view = target_view(ctx)
        model = _builder(config).pose()

        def once(samples, **job_options):
            return estimate_poses(
                samples, model, tracks_field, out_field, config.batch_size, config.keypoint_threshold, overwrite,
                **job_options,
            )  # fmt: skip

        result = run_job(ctx, self, view, f"{out_field}_status", once, "pose estimation")
        self._finish(ctx, view, out_field)
        return result


class SmoothPoses(_Stage):
    """Temporally smooths a tracked keypoints field."""

    @property
    def config(self):
        return operator_config(
            "smooth_poses",
            "Pose tracking: smooth poses",
            "Optical-flow (or One-Euro) temporal smoothing of tracked keypoints",
            heavy=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Smooth the poses of")
        field_choice(
            inputs, ctx, "in_field", fo.Keypoints, "Tracked keypoints",
            "run 'estimate poses' first", default=OPTIONS["keypoints_field"].default,
        )  # fmt: skip
        inputs.str("out_field", default="pred_keypoints_smoothed", required=False, label="Output frame field")
        # the pipeline's default is no pose smoothing; this stage smooths, by flow unless told otherwise
        option_input(inputs, "pose_smoothing", param="method", label="Method", choices=SMOOTHERS, default="flow")
        option_input(inputs, "pose_alpha", param="alpha")
        option_input(inputs, "flow_method")
        inputs.bool("overwrite_input", default=False, required=False, label="Allow writing over the input field")
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return heavy_form(inputs, "Smooth poses")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.stages import smooth_poses

        p = Params(ctx)
        in_field = p.field(ctx, "in_field", fo.Keypoints)
        out_field = p.new_field("out_field", "pred_keypoints_smoothed")
        method = p.option("pose_smoothing", param="method") if ctx.params.get("method") is not None else "flow"
        if method not in SMOOTHERS:
            raise BadInputError(f"parameter 'method': expected one of {list(SMOOTHERS)}, got {method!r}")
        alpha = p.option("pose_alpha", param="alpha")
        flow_method = p.option("flow_method")
        overwrite, overwrite_input = p.bool("overwrite"), p.bool("overwrite_input")
        view = target_view(ctx)

        def once(samples, **job_options):
            return smooth_poses(
                samples, in_field, out_field, method, alpha, flow_method, overwrite, overwrite_input, **job_options
            )

        result = run_job(ctx, self, view, f"{out_field}_status", once, "pose smoothing")
        self._finish(ctx, view, out_field)
        return result


class RunPoseTracking(_Stage):
    """The whole pipeline: detect, track, estimate and smooth poses."""

    @property
    def config(self):
        return operator_config(
            "run_pose_tracking",
            "Pose tracking: run the whole pose tracking",
            "Detect, track (DeepSORT/ByteTrack), estimate and smooth poses; tracked boxes and skeletons per frame",
            heavy=True,
            dynamic=True,  # the advanced switch shows / hides fields
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Track poses in")
        grouped_option_inputs(inputs, ctx, [*OPTIONS, *JOB_OPTIONS])
        return heavy_form(inputs, "Run pose tracking", "Tracked person boxes and skeletons for every frame")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.run import run, status_field
        from fiftyone_posetrack.pipeline.core import PoseTrackingPipeline

        p = Params(ctx)
        config = _config(**p.options(OPTIONS))
        view = target_view(ctx)

        def once(samples, **job_options):
            if job_options.get("engine") == "ray":  # "Run on Ray": each worker builds the models
                return run(samples, config, **job_options)
            return run(samples, config, pipeline=PoseTrackingPipeline(config), **job_options)

        result = run_job(ctx, self, view, status_field(config), once, "pose tracking", ray=True)
        result["detections_field"] = config.detections_field
        result["keypoints_field"] = config.keypoints_field
        self._finish(ctx, view, config.keypoints_field)
        return result
