"""Operators that evaluate tracking and poses against ground truth, and export COCO keypoints.

The evaluations are stored FiftyOne evaluation runs
(:mod:`fiftyone_posetrack.fo.evaluation`); run in the App, the operators move
the view to the failures (the frames with identity switches, the worst
tracks, the false-positive / missed boxes, or the worst videos).
"""

from __future__ import annotations

import math
import os

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.eval.posetrack import MOTA_JOINT_THRESHOLD
from fiftyone_posetrack.types import BadInputError

from ._common import Params, field_choice, form, frame_fields, operator_config, show_in_app, target_view, worker_id

TRACKING_VIEWS = ["id_switch_frames", "worst_tracks", "fp_patches", "fn_patches", "none"]
SHOW_LABELS = {
    "id_switch_frames": "the frames with an ID switch",
    "worst_tracks": "the worst ground-truth tracks",
    "fp_patches": "the false-positive boxes",
    "fn_patches": "the missed ground-truth boxes",
    "none": "nothing (stay here)",
}
TRACKING_KEYS = ("mota", "idf1", "hota", "idsw", "fp", "fn", "recall", "precision")
POSE_KINDS = ["coco", "crowdpose", "posetrack"]


def _plain(d: dict) -> dict:
    """A JSON-safe copy (NaN -> None)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, float) and math.isnan(v):
            v = None
        elif isinstance(v, dict):
            v = _plain(v)
        out[k] = v
    return out


def _frames_dir(dataset) -> str:
    """Where frame images of frames / patches views go (never next to the user's videos)."""
    return os.path.join(fo.config.default_dataset_dir, "posetrack-frames", dataset.name)


def _eval_key(p: Params, default: str) -> str:
    import re

    key = p.str("eval_key", default, required=True)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
        p.bad("eval_key", "a key of letters, digits and underscores")
    return key


METRIC_LABELS = {
    "mota": "MOTA", "motp": "MOTP", "idf1": "IDF1", "hota": "HOTA", "idsw": "ID switches", "fp": "FP", "fn": "FN",
    "recall": "Recall", "precision": "Precision", "ap": "AP", "ap50": "AP50", "ap75": "AP75", "ar": "AR",
    "lamr": "Miss rate (LAMR)", "pt_ap": "PoseTrack AP", "pt_mota": "PoseTrack MOTA", "pt_motp": "PoseTrack MOTP",
    "num_gt": "GT", "num_pred": "Predictions",
}  # fmt: skip
POSE_KEYS = ("ap", "ap50", "ap75", "ar")
POSETRACK_KEYS = POSE_KEYS + ("pt_ap", "pt_mota", "pt_motp")
DETECTION_KEYS = ("ap", "ap50", "ap75", "ar", "lamr")


def _cell(value) -> str:
    """A table cell: 3 decimals for fractions, integers as they are, "–" for undefined."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "–"
        return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:.3f}"
    return str(value)


def metric_rows(results, keys) -> list[dict]:
    """One row per video and ``OVERALL``: ``{"video", key: "0.883", ...}`` (strings, 3 decimals)."""
    rows = []
    for video, metrics in results.metrics_by_video.items():
        rows.append({"video": video, **{k: _cell(metrics.get(k)) for k in keys}})
    rows.sort(key=lambda r: r["video"] == "OVERALL")
    return rows


def _table_output(outputs, name, keys, label):
    table = types.TableView()
    table.add_column("video", label="Video")
    for k in keys:
        table.add_column(k, label=METRIC_LABELS.get(k, k))
    outputs.list(name, types.Object(), label=label, view=table)


def replace_warning(inputs, ctx, key: str | None, name: str = "replace_warning") -> bool:
    """A form warning when evaluation ``key`` exists (running replaces it and its fields)."""
    dataset = ctx.dataset
    if not key or dataset is None or key not in dataset.list_evaluations():
        return False
    fields = dataset.get_evaluation_info(key).config.build().get_fields(dataset, key)
    inputs.view(name, types.Warning(
        label=f"Evaluation '{key}' exists: running replaces it",
        description=f"its results and the {len(fields)} fields it wrote ({', '.join(fields[:4])}{', ...' if len(fields) > 4 else ''}) "
        "are overwritten; choose another key to keep it",
    ))  # fmt: skip
    return True


def predicted_fields(dataset, fields) -> dict[str, list[str]]:
    """``{field: [run keys]}`` of the ``fields`` that a labelling job of this package wrote.

    A job's record has a status field (:func:`fiftyone_posetrack.fo.runs.writers_of_field`);
    imports of ground truth are recorded too, without one, and do not count.
    """
    from fiftyone_posetrack.fo.runs import writers_of_field

    out = {}
    for field in fields:
        keys = [k for k, c in writers_of_field(dataset, field).items() if c.get("status_field")]
        if keys:
            out[field] = keys
    return out


def gt_field_choice(inputs, ctx, name, cls, label, default, pred_name):
    """The ground-truth dropdown: never defaults to a field a run predicted, nor to the chosen predictions.

    The choices are every frame field of ``cls`` (a user may evaluate against
    any field); the default is ``default`` or else the first field that no
    labelling run wrote and that is not the prediction field chosen. When there
    is none, the form says that there is no ground truth and what to do.
    """
    choices = frame_fields(ctx, cls)
    predicted = predicted_fields(ctx.dataset, choices) if choices else {}
    pred = ctx.params.get(pred_name)
    candidates = [c for c in choices if c not in predicted and c != pred]
    if default not in candidates:
        default = candidates[0] if candidates else None
    view = types.DropdownView(label=label, description="a field of ground-truth labels (imported or annotated)")
    for c in choices:
        view.add_choice(c, label=c + (" (predictions)" if c in predicted else ""))
    prop = inputs.enum(name, choices, default=default, required=True, label=label, view=view)
    chosen = ctx.params.get(name, default)
    if not candidates:
        written = [f"{f} (written by run {', '.join(k)})" for f, k in predicted.items()]
        if pred in choices and pred not in predicted:
            written.append(f"{pred} (the predictions chosen above)")
        prop.invalid = True
        prop.error_message = (
            f"no ground truth: every {cls.__name__} field of this dataset holds predictions: "
            f"{', '.join(written) or 'none'}; import ground truth first (Pose tracking: import MOT / "
            "PoseTrack ground truth, or fiftyone_posetrack.fo.io.import_mot_sequences / import_posetrack)"
        )
        inputs.view(f"{name}_missing", types.Error(label="No ground truth", description=prop.error_message))
    elif chosen is not None and chosen == pred:
        prop.invalid = True
        prop.error_message = f"{chosen} is also the prediction field: choose the ground-truth field"
    elif chosen in predicted:
        inputs.view(f"{name}_predicted", types.Warning(
            label=f"{chosen} holds predictions",
            description=f"run {', '.join(predicted[chosen])} wrote it; the metrics compare two predictions",
        ))  # fmt: skip
    return prop


class EvaluateTracking(foo.Operator):
    """MOTA, IDF1, HOTA, ID switches of tracked boxes; tp/fp/fn/ID-switch marks on every box."""

    @property
    def config(self):
        return operator_config(
            "evaluate_tracking",
            "Pose tracking: evaluate tracking",
            "MOTA, IDF1, HOTA and ID switches against ground-truth boxes; then show the ID switches",
            heavy=True,
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Evaluate")
        field_choice(inputs, ctx, "pred_field", fo.Detections, "Tracked boxes", "run pose tracking first", default="pred_detections")
        gt_field_choice(inputs, ctx, "gt_field", fo.Detections, "Ground-truth boxes", "gt_detections", "pred_field")
        inputs.str("eval_key", default="track_eval", required=True, label="Evaluation key")
        replace_warning(inputs, ctx, ctx.params.get("eval_key", "track_eval"))
        inputs.float("iou_threshold", min=0.01, max=1, default=0.5, required=False, label="IoU threshold")
        field_choice(inputs, ctx, "ignore_field", fo.Polylines, "Ignore regions (optional)", "optional", required=False)
        inputs.str(
            "detection_eval_key", default="", required=False, label="Also evaluate detection (AP, LAMR) under key",
            description="empty: tracking only",
        )  # fmt: skip
        replace_warning(inputs, ctx, ctx.params.get("detection_eval_key"), "replace_detection_warning")
        shows = types.DropdownView()
        for name, label in SHOW_LABELS.items():
            shows.add_choice(name, label=label)
        inputs.enum("show", TRACKING_VIEWS, default="id_switch_frames", required=False, label="Then show", view=shows)
        return form(inputs, "Evaluate tracking")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.evaluation import evaluate_person_detection, evaluate_tracking

        p = Params(ctx)
        pred = p.field(ctx, "pred_field", fo.Detections)
        gt = p.field(ctx, "gt_field", fo.Detections)
        ignore = p.field(ctx, "ignore_field", fo.Polylines, required=False)
        key = _eval_key(p, "track_eval")
        iou = p.float("iou_threshold", 0.5, 0.01, 1.0)
        det_key = p.str("detection_eval_key")
        show = p.str("show", "id_switch_frames", choices=TRACKING_VIEWS)
        view = target_view(ctx)
        if ctx.delegated:
            ctx.set_progress(progress=0.0, label="evaluating tracking")
        results = evaluate_tracking(view, pred, gt, eval_key=key, iou_threshold=iou, ignore_field=ignore)
        out = {
            "eval_key": key,
            "metrics": _plain({k: results.metrics().get(k) for k in TRACKING_KEYS}),
            "per_video": metric_rows(results, TRACKING_KEYS),
            "worker": worker_id(),
        }
        if det_key:
            if ctx.delegated:
                ctx.set_progress(progress=0.5, label="evaluating detection")
            det = evaluate_person_detection(view, pred, gt, eval_key=det_key, ignore_field=ignore)
            out["detection_metrics"] = _plain(det.metrics())
            out["detection_per_video"] = metric_rows(det, DETECTION_KEYS)
        if ctx.delegated:
            ctx.set_progress(progress=1.0, label="done")
        out["shown"] = self._show(ctx, view, key, show, out["metrics"])
        return out

    def _show(self, ctx, view, key, show, metrics):
        """Moves the App to the failures (immediate runs in the App only)."""
        from fiftyone_posetrack.fo.evaluation import fn_patches, fp_patches, id_switch_frames, worst_tracks

        if ctx.delegated or show == "none":
            show_in_app(ctx)
            return "none"
        counts = {"id_switch_frames": "idsw", "fp_patches": "fp", "fn_patches": "fn"}
        if show in counts and not metrics.get(counts[show]):
            show_in_app(ctx)
            return "none"
        frames = dict(output_dir=_frames_dir(ctx.dataset), rel_dir=os.path.sep)
        if show == "id_switch_frames":
            failures = id_switch_frames(view, key, **frames)
        elif show == "fp_patches":
            failures = fp_patches(view, key, **frames)
        elif show == "fn_patches":
            failures = fn_patches(view, key, **frames)
        else:
            failures = worst_tracks(view, key)[1]
        show_in_app(ctx, failures)
        return show

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("eval_key", label="Evaluation key")
        _table_output(outputs, "per_video", TRACKING_KEYS, "Tracking (per video and overall)")
        if (ctx.results or {}).get("detection_per_video"):  # only when detection was evaluated too
            _table_output(outputs, "detection_per_video", DETECTION_KEYS, "Person detection")
        return types.Property(outputs, view=types.View(label="Tracking evaluation"))


class EvaluatePoses(foo.Operator):
    """OKS AP (COCO / CrowdPose) and PoseTrack's per-joint AP and MOTA."""

    @property
    def config(self):
        return operator_config(
            "evaluate_poses",
            "Pose tracking: evaluate poses",
            "OKS AP (COCO, CrowdPose) or PoseTrack per-joint AP and MOTA against ground-truth keypoints",
            heavy=True,
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Evaluate")
        field_choice(inputs, ctx, "pred_field", fo.Keypoints, "Predicted keypoints", "run pose tracking first", default="pred_keypoints")
        gt_field_choice(inputs, ctx, "gt_field", fo.Keypoints, "Ground-truth keypoints", "gt_keypoints", "pred_field")
        inputs.str("eval_key", default="pose_eval", required=True, label="Evaluation key")
        replace_warning(inputs, ctx, ctx.params.get("eval_key", "pose_eval"))
        inputs.enum("kind", POSE_KINDS, default="coco", required=False, label="Benchmark", view=types.DropdownView())
        field_choice(inputs, ctx, "gt_box_field", fo.Detections, "Ground-truth boxes (areas)", "optional", required=False)
        field_choice(inputs, ctx, "pred_box_field", fo.Detections, "Predicted boxes (scores)", "optional", required=False)
        field_choice(inputs, ctx, "ignore_field", fo.Polylines, "Ignore regions (PoseTrack)", "optional", required=False)
        inputs.float(
            "posetrack_joint_threshold", min=0, max=1, required=False, default=MOTA_JOINT_THRESHOLD,
            label="PoseTrack MOTA: joints scoring at least",
            description="MOTA counts the predicted joints scoring at least this (low-confidence guesses at occluded "
            "joints are false positives); AP always ranks every joint",
        )  # fmt: skip
        inputs.bool("show_worst", default=True, required=False, label="Then show the videos, worst AP first")
        return form(inputs, "Evaluate poses")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.evaluation import evaluate_poses

        p = Params(ctx)
        pred = p.field(ctx, "pred_field", fo.Keypoints)
        gt = p.field(ctx, "gt_field", fo.Keypoints)
        key = _eval_key(p, "pose_eval")
        kind = p.str("kind", "coco", choices=POSE_KINDS)
        gt_box = p.field(ctx, "gt_box_field", fo.Detections, required=False)
        pred_box = p.field(ctx, "pred_box_field", fo.Detections, required=False)
        ignore = p.field(ctx, "ignore_field", fo.Polylines, required=False)
        joint_thr = MOTA_JOINT_THRESHOLD
        if ctx.params.get("posetrack_joint_threshold") is not None:
            joint_thr = p.float("posetrack_joint_threshold", None, lo=0, hi=1)
        show = p.bool("show_worst", True)
        view = target_view(ctx)
        if ctx.delegated:
            ctx.set_progress(progress=0.0, label=f"evaluating poses ({kind})")
        results = evaluate_poses(
            view, pred, gt, eval_key=key, kind=kind, gt_box_field=gt_box, pred_box_field=pred_box, ignore_field=ignore,
            posetrack_joint_threshold=joint_thr,
        )  # fmt: skip
        if ctx.delegated:
            ctx.set_progress(progress=1.0, label="done")
        overall = _plain(results.metrics())
        show_in_app(ctx, view.sort_by(f"{key}_ap") if show else None)
        keys = POSETRACK_KEYS if kind == "posetrack" else POSE_KEYS
        return {"eval_key": key, "kind": kind, "metrics": overall, "per_video": metric_rows(results, keys),
                "worker": worker_id()}  # fmt: skip

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("eval_key", label="Evaluation key")
        keys = POSETRACK_KEYS if (ctx.results or {}).get("kind") == "posetrack" else POSE_KEYS
        _table_output(outputs, "per_video", keys, "Per video and overall (PoseTrack numbers in percent)")
        return types.Property(outputs, view=types.View(label="Pose evaluation"))


class ExportCOCOKeypoints(foo.Operator):
    """Writes a keypoints field as COCO keypoints JSON (to train detectors / pose models elsewhere)."""

    @property
    def config(self):
        return operator_config(
            "export_coco_keypoints",
            "Pose tracking: export COCO keypoints",
            "A COCO keypoints JSON (dataset or results) of the annotated frames, e.g. for training elsewhere",
            heavy=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Export")
        field_choice(inputs, ctx, "field", fo.Keypoints, "Keypoints field", "import or compute keypoints first", default="gt_keypoints")
        inputs.str("path", required=True, label="Output .json file")
        inputs.bool(
            "results", default=False, required=False, label="Write a results list (predictions)",
            description="default: a COCO keypoints dataset (images, annotations, categories)",
        )  # fmt: skip
        field_choice(
            inputs, ctx, "gt_field", fo.Keypoints, "Ground truth defining the annotated frames (results only)",
            "optional", required=False,
        )  # fmt: skip
        field_choice(inputs, ctx, "box_field", fo.Detections, "Boxes (areas / scores)", "optional", required=False)
        inputs.enum("kind", ["coco", "crowdpose"], default="coco", required=False, label="Joints", view=types.DropdownView())
        inputs.bool("overwrite", default=False, required=False, label="Replace an existing file")
        return form(inputs, "Export COCO keypoints")

    def execute(self, ctx):
        from fiftyone_posetrack.fo.evaluation import export_coco_keypoints

        p = Params(ctx)
        field = p.field(ctx, "field", fo.Keypoints)
        path = p.path("path")
        if not path.lower().endswith(".json"):
            p.bad("path", "a .json file")
        if os.path.exists(path) and not p.bool("overwrite"):
            raise BadInputError(f"parameter 'path': {path} exists; pass overwrite=true to replace it")
        results = p.bool("results")
        kwargs = dict(results=results, box_field=p.field(ctx, "box_field", fo.Detections, required=False))
        if results:
            kwargs["gt_field"] = p.field(ctx, "gt_field", fo.Keypoints, default="gt_keypoints")
        kwargs["kind"] = p.str("kind", "coco", choices=["coco", "crowdpose"])
        count = export_coco_keypoints(target_view(ctx), field, path, **kwargs)
        return {"path": path, "count": int(count)}

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("path", label="File")
        outputs.int("count", label="Annotations / results written")
        return types.Property(outputs)
