"""Operators that move the App to per-track views (:mod:`fiftyone_posetrack.fo.views`).

Each returns what it shows (counts), so programmatic runs can check it; in
the App it also sets the view.
"""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.types import BadInputError

from ._common import Params, field_choice, form, operator_config, show_in_app

FAILURE_LABELS = {
    "id_switch_clips": "ID switches: short clips around each switch, switching boxes tagged",
    "id_switch_frames": "ID switches: the frames with a switch",
    "worst_tracks": "Worst ground-truth tracks (most misses and switches)",
    "fp_patches": "False-positive boxes, one patch each",
    "fn_patches": "Missed ground-truth boxes, one patch each",
}


def tracking_eval_keys(ctx) -> list[str]:
    """The dataset's tracking evaluation keys (our ``posetrack_mot`` runs)."""
    from fiftyone_posetrack.fo.panel_data import list_pose_tracking_evaluations

    if ctx.dataset is None or ctx.dataset.media_type != "video":
        return []
    return [e["key"] for e in list_pose_tracking_evaluations(ctx.dataset) if e["kind"] == "tracking"]


def eval_key_choice(inputs, ctx, default="track_eval"):
    keys = tracking_eval_keys(ctx)
    view = types.DropdownView(label="Tracking evaluation", description="a run of 'evaluate tracking'")
    for k in keys:
        view.add_choice(k, label=k)
    # a string with a dropdown (not an enum): an unknown key reaches execute(), which names the keys there are
    prop = inputs.str("eval_key", default=default if default in keys else (keys[0] if keys else None),
                      required=True, label="Tracking evaluation", view=view)  # fmt: skip
    if not keys:
        prop.invalid = True
        prop.error_message = "this dataset has no tracking evaluation; run 'Pose tracking: evaluate tracking' first"
    return prop


def _eval_key(p: Params) -> str:
    return p.str("eval_key", "track_eval", required=True)


def _counts(view, *fields) -> dict:
    out = {"samples": len(view)}
    for f in fields:
        if f:
            list_name = view.get_field(f"frames.{f}").document_type._LABEL_LIST_FIELD
            out[f] = view.count(f"frames.{f}.{list_name}")
    return out


class ShowTrack(foo.Operator):
    """Only one track's boxes and skeletons (both fields filtered by ``index``)."""

    @property
    def config(self):
        return operator_config(
            "show_track", "Pose tracking: show one track",
            "Only one track's boxes and skeletons, in the videos that hold it", heavy=False, icon="person_pin",
        )  # fmt: skip

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.int("index", required=True, label="Track id", description="the `index` shared by the track's boxes and skeletons")
        field_choice(inputs, ctx, "box_field", fo.Detections, "Tracked boxes", "run pose tracking first", default="pred_detections")
        field_choice(inputs, ctx, "keypoints_field", fo.Keypoints, "Skeletons (optional)", "optional", default="pred_keypoints", required=False)
        inputs.str("sample_id", required=False, label="Video (sample id, optional)",
                   description="track ids are per video; empty: every video holding this id")  # fmt: skip
        return form(inputs, "Show one track")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.views import show_track

        p = Params(ctx)
        if ctx.params.get("index") is None:
            raise BadInputError("parameter 'index' is required (the track id)")
        index = p.int("index", None)
        box = p.field(ctx, "box_field", fo.Detections, default="pred_detections")
        kps = p.field(ctx, "keypoints_field", fo.Keypoints, required=False)
        sample_id = p.str("sample_id") or None
        view = show_track(ctx.dataset, index, box, kps, sample_id=sample_id, clip=True)  # opens at its first frame
        show_in_app(ctx, view)
        return {"index": index, **_counts(view, box, kps)}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("index", label="Track id")
        outputs.int("samples", label="Videos holding it")
        return types.Property(outputs)


class ShowTrajectories(foo.Operator):
    """One clip per track (FiftyOne's ``to_trajectories``)."""

    @property
    def config(self):
        return operator_config(
            "show_trajectories", "Pose tracking: one clip per track",
            "Trajectories: a clip from each track's first to last frame", heavy=False, icon="timeline",
        )  # fmt: skip

    def resolve_input(self, ctx):
        inputs = types.Object()
        field_choice(inputs, ctx, "field", fo.Detections, "Tracked boxes", "run pose tracking first", default="pred_detections")
        return form(inputs, "One clip per track")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.views import trajectories

        field = Params(ctx).field(ctx, "field", fo.Detections, default="pred_detections")
        view = trajectories(ctx.dataset, field)
        show_in_app(ctx, view)
        return {"clips": len(view)}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("clips", label="Tracks (clips)")
        return types.Property(outputs)


class ShowEvaluationFailures(foo.Operator):
    """The failure views of an existing tracking evaluation (nothing is re-run)."""

    @property
    def config(self):
        return operator_config(
            "show_evaluation_failures", "Pose tracking: show tracking failures",
            "ID-switch clips, worst tracks, false positives or misses of a stored tracking evaluation",
            heavy=False, icon="report_problem",
        )  # fmt: skip

    def resolve_input(self, ctx):
        from fiftyone_posetrack.fo.views import FAILURE_VIEWS

        inputs = types.Object()
        eval_key_choice(inputs, ctx)
        choices = types.RadioGroup()
        for name in FAILURE_VIEWS:
            choices.add_choice(name, label=FAILURE_LABELS[name])
        inputs.str("which", default="id_switch_clips", required=True, label="Show", view=choices)
        inputs.int("before", default=5, min=0, required=False, label="ID-switch clips: frames before each switch")
        inputs.int("after", default=5, min=0, required=False, label="ID-switch clips: frames after each switch")
        return form(inputs, "Show tracking failures")

    def execute(self, ctx):
        import os

        from fiftyone_posetrack.fo.views import FAILURE_VIEWS, failure_view

        p = Params(ctx)
        key = _eval_key(p)
        which = p.str("which", "id_switch_clips", choices=FAILURE_VIEWS)
        kwargs = {}
        if which == "id_switch_clips":
            kwargs = dict(before=p.int("before", 5, lo=0), after=p.int("after", 5, lo=0))
        elif which != "worst_tracks":
            out = os.path.join(fo.config.default_dataset_dir, "posetrack-frames", ctx.dataset.name)
            kwargs = dict(output_dir=out, rel_dir=os.path.sep)
        view = failure_view(ctx.dataset, key, which, **kwargs)
        show_in_app(ctx, view)
        return {"eval_key": key, "which": which, "samples": len(view)}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("which", label="Shown")
        outputs.int("samples", label="Samples in the view")
        return types.Property(outputs)
