"""Operators that import and export MOTChallenge, PoseTrack and COCO files.

The logic lives in :mod:`fiftyone_posetrack.fo.io`; these operators read
their parameters and report.
"""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._common import Params, field_choice, form, operator_config, option_input, show_in_app

#: the import forms' text for ``overwrite_fields`` (the option's own help is about jobs)
IMPORT_OVERWRITE_HELP = (
    "frame fields that may be replaced although a run (pose tracking, a stage) wrote them; "
    "without it an import into such a field is refused"
)


#: what every path field of these forms says about relative paths (see ``Params.path``)
PATH_HELP = "an absolute path (or ~/...); relative paths are refused: the App server's working folder is not yours"


def _path_input(inputs, name, label, description, required=True):
    inputs.str(name, required=required, label=label, description=f"{description}; {PATH_HELP}")


def _export_target(ctx):
    view = ctx.target_view()
    return view


class ImportMOT(foo.Operator):
    """Adds MOTChallenge sequences (images or video.mp4, gt.txt, det.txt) to the dataset."""

    @property
    def config(self):
        return operator_config(
            "import_mot",
            "Pose tracking: import MOTChallenge sequences",
            "Add MOTChallenge sequences (SEQ/img1 + gt/gt.txt + seqinfo.ini, or SEQ/video.mp4) as videos",
            heavy=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _path_input(
            inputs, "path", "Sequences folder",
            "a sequence folder, or a folder above sequence folders (e.g. MOT17/train)",
        )  # fmt: skip
        inputs.str("gt_field", default="gt_detections", required=False, label="Frame field for gt/gt.txt")
        inputs.str(
            "det_field", default="", required=False, label="Frame field for det/det.txt",
            description="the public detections (untracked); empty: not imported",
        )  # fmt: skip
        _path_input(
            inputs, "videos_dir", "Folder for encoded videos",
            "image sequences are encoded to <folder>/<sequence>.mp4 (default: under FiftyOne's dataset dir)",
            required=False,
        )  # fmt: skip
        inputs.float("default_fps", min=0.1, default=30.0, required=False, label="Frame rate when seqinfo.ini has none")
        option_input(inputs, "overwrite_fields", description=IMPORT_OVERWRITE_HELP)
        return form(inputs, "Import MOTChallenge sequences")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.io import import_mot_sequences

        p = Params(ctx)
        out = import_mot_sequences(
            ctx.dataset,
            p.path("path"),
            gt_field=p.str("gt_field", "gt_detections") or None,
            det_field=p.str("det_field") or None,
            videos_dir=p.path("videos_dir", required=False),
            default_fps=p.float("default_fps", 30.0, lo=0.1),
            overwrite_fields=p.option("overwrite_fields"),
        )
        show_in_app(ctx, ctx.dataset.select(out["sample_ids"]))
        return {
            "num_sequences": len(out["sequences"]),
            "sequences": out["sequences"],
            "gt_boxes": out["gt_boxes"],
            "det_boxes": out["det_boxes"],
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_sequences", label="Sequences")
        outputs.list("sequences", types.String(), label="Names")
        outputs.int("gt_boxes", label="Ground-truth boxes")
        outputs.int("det_boxes", label="Public detections")
        return types.Property(outputs)


class ImportPoseTrack(foo.Operator):
    """Adds PoseTrack18 annotations (keypoints, boxes) to videos of the dataset."""

    @property
    def config(self):
        return operator_config(
            "import_posetrack",
            "Pose tracking: import PoseTrack annotations",
            "PoseTrack18 JSON files onto the dataset's videos (or onto videos encoded from their images)",
            heavy=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _path_input(inputs, "path", "PoseTrack JSON file or folder", "a .json file, or a folder searched recursively")
        inputs.str("keypoints_field", default="gt_keypoints", required=False, label="Frame field for the poses")
        inputs.str(
            "detections_field", default="gt_detections", required=False, label="Frame field for the boxes",
            description="empty: boxes are not imported",
        )  # fmt: skip
        inputs.str(
            "ignore_field", default="gt_ignore", required=False, label="Frame field for ignore regions",
            description="fo.Polylines; empty: ignore regions are not imported",
        )  # fmt: skip
        _path_input(
            inputs, "image_root", "PoseTrack root folder",
            "the folder the files' image paths are relative to; needed for videos not in the dataset",
            required=False,
        )  # fmt: skip
        _path_input(inputs, "videos_dir", "Folder for encoded videos", "<folder>/<video>.mp4", required=False)
        inputs.float("fps", min=0.1, default=25.0, required=False, label="Frame rate of encoded videos")
        option_input(inputs, "overwrite_fields", description=IMPORT_OVERWRITE_HELP)
        return form(inputs, "Import PoseTrack annotations")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.io import import_posetrack

        p = Params(ctx)
        out = import_posetrack(
            ctx.dataset,
            p.path("path"),
            keypoints_field=p.new_field("keypoints_field", "gt_keypoints"),
            detections_field=p.str("detections_field", "gt_detections") or None,
            ignore_field=p.str("ignore_field", "gt_ignore") or None,
            image_root=p.path("image_root", required=False),
            videos_dir=p.path("videos_dir", required=False),
            fps=p.float("fps", 25.0, lo=0.1),
            overwrite_fields=p.option("overwrite_fields"),
        )
        show_in_app(ctx, ctx.dataset.select(out["sample_ids"]))
        return {"num_videos": len(out["videos"]), "videos": out["videos"], "poses": out["poses"]}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("num_videos", label="Videos")
        outputs.list("videos", types.String(), label="Names")
        outputs.int("poses", label="Poses imported")
        return types.Property(outputs)


def _files_output(label):
    outputs = types.Object()
    outputs.int("num_files", label="Files written")
    outputs.str("out_dir", label="Folder")
    outputs.list("files", types.String(), label=label)
    return types.Property(outputs)


class ExportMOT(foo.Operator):
    """Writes a detections field as MOTChallenge text files."""

    @property
    def config(self):
        return operator_config(
            "export_mot",
            "Pose tracking: export MOT txt",
            "One MOTChallenge .txt per video (tracker results, or ground truth with seqinfo.ini)",
            heavy=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Export")
        field_choice(inputs, ctx, "field", fo.Detections, "Detections field", "import or compute boxes first")
        _path_input(inputs, "out_dir", "Output folder", "<folder>/<video>.txt (results) or <folder>/<video>/gt/gt.txt")
        inputs.bool("gt", default=False, required=False, label="Ground-truth layout (gt/gt.txt + seqinfo.ini)")
        inputs.bool("overwrite", default=False, required=False, label="Replace existing files")
        return form(inputs, "Export MOTChallenge files")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.io import export_mot

        p = Params(ctx)
        field = p.field(ctx, "field", fo.Detections)
        out_dir = p.path("out_dir")
        files = export_mot(_export_target(ctx), field, out_dir, gt=p.bool("gt"), overwrite=p.bool("overwrite"))
        return {"num_files": len(files), "out_dir": out_dir, "files": files}

    def resolve_output(self, ctx):
        return _files_output("MOT files")


class ExportPoseTrack(foo.Operator):
    """Writes a tracked keypoints field as PoseTrack18 JSON (challenge submission format)."""

    @property
    def config(self):
        return operator_config(
            "export_posetrack",
            "Pose tracking: export PoseTrack JSON",
            "One PoseTrack18 .json per video, the PoseTrack challenge's submission format",
            heavy=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Export")
        field_choice(inputs, ctx, "keypoints_field", fo.Keypoints, "Tracked keypoints", "run pose tracking first", default="pred_keypoints")
        field_choice(
            inputs, ctx, "detections_field", fo.Detections, "Boxes (matched by index; default: joint extent)",
            "optional", required=False,
        )  # fmt: skip
        _path_input(inputs, "out_dir", "Output folder", "<folder>/<video>.json")
        inputs.bool(
            "posetrack_joints", default=False, required=False, label="Reorder joints into PoseTrack18's 17",
            description="joints the field lacks (head_bottom, head_top for COCO-17) are written missing",
        )  # fmt: skip
        inputs.bool(
            "gt", default=False, required=False, label="Ground truth (visibility flags, head boxes, no scores)",
            description="the layout a PoseTrack evaluation reads as ground truth; default: predictions with scores",
        )  # fmt: skip
        field_choice(
            inputs, ctx, "ignore_field", fo.Polylines, "Ignore regions (ground truth)", "optional", required=False,
        )  # fmt: skip
        inputs.bool("overwrite", default=False, required=False, label="Replace existing files")
        return form(inputs, "Export PoseTrack JSON")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.io import export_posetrack

        p = Params(ctx)
        kp_field = p.field(ctx, "keypoints_field", fo.Keypoints)
        det_field = p.field(ctx, "detections_field", fo.Detections, required=False)
        out_dir = p.path("out_dir")
        files = export_posetrack(
            _export_target(ctx),
            kp_field,
            out_dir,
            detections_field=det_field,
            posetrack_joints=p.bool("posetrack_joints"),
            overwrite=p.bool("overwrite"),
            gt=p.bool("gt"),
            ignore_field=p.field(ctx, "ignore_field", fo.Polylines, required=False),
        )
        return {"num_files": len(files), "out_dir": out_dir, "files": files}

    def resolve_output(self, ctx):
        return _files_output("PoseTrack files")
