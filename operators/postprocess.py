"""Operator ``postprocess_tracks``: link, filter, interpolate and smooth a tracked field.

A form plus a call into :func:`fiftyone_posetrack.fo.postprocess.postprocess_tracks_field`;
it writes a new frame field (the input only with "allow writing over the input").
"""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._common import (
    Params,
    field_choice,
    form,
    job_inputs,
    operator_config,
    run_job,
    scaleout_inputs,
    show_in_app,
    summary_outputs,
    target_view,
)


class PostprocessTracks(foo.Operator):
    """Track post-processing (tracklet linking, short / low-score track removal,
    linear interpolation, Gaussian-smoothed interpolation) into a new field."""

    @property
    def config(self):
        return operator_config(
            "postprocess_tracks",
            "Pose tracking: post-process tracks",
            "Link tracklets, drop short tracks, fill gaps and smooth boxes (GSI) into a new field",
            heavy=True,
        )

    def resolve_input(self, ctx):
        from fiftyone_posetrack.tracking.postprocess import PostprocessConfig

        d = PostprocessConfig()
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Post-process tracks of")
        field_choice(inputs, ctx, "in_field", fo.Detections, "Tracked detections", "run 'track persons' first")
        inputs.str("out_field", default="pred_detections_post", required=False, label="Output frame field")
        inputs.int("interpolate", min=0, default=20, required=False, label="Interpolate gaps up to (frames, 0 = off)")
        inputs.bool("gsi", default=True, required=False, label="Gaussian-smoothed interpolation (GSI)")
        inputs.float("gsi_tau", min=0.001, default=d.gsi_tau, required=False, label="GSI smoothness tau (frames)")
        inputs.int("min_length", min=0, default=d.min_length, required=False, label="Remove tracks shorter than (boxes)")
        inputs.float("min_score", min=0, max=1, default=d.min_score, required=False, label="Remove tracks with mean score below")
        inputs.bool("link", default=d.link, required=False, label="Link tracklets of one person (leaving and re-entering)")
        inputs.int("link_max_gap", min=1, default=d.link_max_gap, required=False, label="Largest gap a link bridges (frames)")
        inputs.float("link_max_distance", min=0, default=d.link_max_distance, required=False,
                     label="Largest link distance (box heights)")  # fmt: skip
        inputs.bool("overwrite_input", default=False, required=False, label="Allow writing over the input field")
        job_inputs(inputs)
        scaleout_inputs(inputs)
        return form(inputs, "Post-process tracks")

    def resolve_output(self, ctx):
        outputs = types.Object()
        summary_outputs(outputs, ctx)
        return types.Property(outputs, view=types.View(label="Done"))

    def execute(self, ctx):
        from fiftyone_posetrack.fo.postprocess import postprocess_tracks_field
        from fiftyone_posetrack.tracking.postprocess import PostprocessConfig

        p = Params(ctx)
        d = PostprocessConfig()
        in_field = p.field(ctx, "in_field", fo.Detections)
        out_field = p.new_field("out_field", "pred_detections_post")
        config = PostprocessConfig(
            interpolate=p.int("interpolate", 20, lo=0),
            gsi=p.bool("gsi", True),
            gsi_tau=p.float("gsi_tau", d.gsi_tau, 0.001),
            min_length=p.int("min_length", d.min_length, lo=0),
            min_score=p.float("min_score", d.min_score, 0, 1),
            link=p.bool("link", d.link),
            link_max_gap=p.int("link_max_gap", d.link_max_gap, lo=1),
            link_max_distance=p.float("link_max_distance", d.link_max_distance, 0),
        )
        overwrite, overwrite_input = p.bool("overwrite"), p.bool("overwrite_input")
        view = target_view(ctx)

        def once(samples, **job_options):
            return postprocess_tracks_field(samples, in_field, out_field, config, overwrite, overwrite_input,
                                            **job_options)  # fmt: skip

        result = run_job(ctx, self, view, f"{out_field}_status", once, "track post-processing")
        show_in_app(ctx, None if isinstance(view, fo.Dataset) else view)
        return result
