"""The "score track quality" operator: flags on tracks and frames without ground truth.

It calls :func:`fiftyone_posetrack.fo.quality.score_track_quality` on the
target videos and, in the App, shows the top flagged frames (one clip each,
:func:`~fiftyone_posetrack.fo.quality.quality_clips`). See ``docs/quality.md``.
"""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._common import Params, field_choice, form, operator_config, show_in_app, target_view

FLAG_HELP = (
    "Flags: **fragment** (a track ends and another starts nearby within a second), **jump** (a box moved "
    "beyond the motion gate, in box heights), **drift** (appearance far from the track's own gallery; needs "
    "a ReID model), **low confidence** (a stretch of boxes scored below half the video's median), "
    "**skeleton** (limb lengths or left/right joints implausible). The *Pose tracking* panel lists the "
    "flagged frames when the dataset has no evaluation."
)


class EvaluateTrackQuality(foo.Operator):
    """Scores every track and frame of a tracked field (no ground truth needed)."""

    @property
    def config(self):
        return operator_config(
            "evaluate_track_quality", "Pose tracking: evaluate track quality (no ground truth)",
            "Flag fragments, jumps, appearance drift, low-confidence stretches and implausible skeletons",
            heavy=False, icon="rule",
        )  # fmt: skip

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view("help", types.Notice(label=FLAG_HELP))
        field_choice(inputs, ctx, "box_field", fo.Detections, "Tracked boxes", "run pose tracking first",
                     default="pred_detections")  # fmt: skip
        field_choice(inputs, ctx, "keypoints_field", fo.Keypoints, "Skeletons (optional)",
                     "for the skeleton flag", default="pred_keypoints", required=False)  # fmt: skip
        inputs.str("reid", default="none", required=False, label="ReID model for the drift flag",
                   description="`none` skips the drift flag (the videos are then not decoded); "
                   "`mobilenet` is the shipped embedder")  # fmt: skip
        inputs.str("key", default="quality", required=False, label="Field prefix",
                   description="fields written: frames.<prefix>_score, _flags, _births, _deaths and the boxes' "
                   "<prefix>_flags")  # fmt: skip
        return form(inputs, "Evaluate track quality (no ground truth)")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.quality import quality_clips, score_track_quality

        p = Params(ctx)
        box = p.field(ctx, "box_field", fo.Detections, default="pred_detections")
        kps = p.field(ctx, "keypoints_field", fo.Keypoints, required=False)
        key = p.str("key", "quality") or "quality"
        reid = (p.str("reid", "none") or "none").strip()
        embedder = None
        if reid.lower() != "none":
            from fiftyone_posetrack.reid import make_embedder

            embedder = make_embedder(reid)
        view = target_view(ctx)
        summary = score_track_quality(view, box, kps, key=key, embedder=embedder)
        clips = quality_clips(view, key)
        show_in_app(ctx, clips)
        videos = summary["videos"].values()
        return {
            "key": key,
            "videos": len(summary["videos"]),
            "flagged_frames": sum(v["flagged_frames"] for v in videos),
            "top_frames": len(clips),
            "flags_computed": ", ".join(summary["flags_computed"]),
            "notes": "; ".join(summary["notes"]),
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("videos", label="Videos scored")
        outputs.int("flagged_frames", label="Frames with a flag")
        outputs.int("top_frames", label="Top flagged frames shown (one clip each)")
        outputs.str("flags_computed", label="Flags computed")
        outputs.str("notes", label="Notes")
        return types.Property(outputs)
