"""Operator that grid-searches tracker parameters against ground truth."""

from __future__ import annotations

import re

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.fo.tune import METRICS, store_tuning, tune_tracker
from fiftyone_posetrack.types import BadInputError

from ._common import (
    Params,
    field_choice,
    form,
    operator_config,
    option_input,
    heavy_form,
    progress_callback,
    show_in_app,
    target_view,
    worker_id,
)

def parse_grid_text(text: str) -> dict[str, list]:
    """``"max_age=10,30; n_init=1,3"`` (``;`` or newlines between parameters) -> a grid."""
    from fiftyone_posetrack.tracking.tune import parse_grid

    items = [s.strip() for s in re.split(r"[;\n]", text or "") if s.strip()]
    if not items:
        raise BadInputError(f"parameter 'grid': expected 'param=v1,v2; param2=v1,v2', got {text!r}")
    try:
        return parse_grid(items)
    except BadInputError as e:
        raise BadInputError(f"parameter 'grid': {e}") from None


class TuneTracker(foo.Operator):
    """Grid search of tracker parameters on detections + ground truth of the dataset."""

    @property
    def config(self):
        return operator_config(
            "tune_tracker",
            "Pose tracking: tune the tracker",
            "Grid-search tracker parameters (max_age, n_init, ...) for the best IDF1 on ground truth",
            heavy=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.view_target(ctx, action_description="Tune on")
        field_choice(inputs, ctx, "dets_field", fo.Detections, "Detections to track", "run 'detect persons' first", default="pred_raw_detections")
        field_choice(inputs, ctx, "gt_field", fo.Detections, "Ground-truth boxes (index = id)", "import ground truth first", default="gt_detections")
        option_input(inputs, "tracker")
        inputs.str(
            "grid", required=True, default="max_age=10,30; n_init=1,3", label="Grid",
            description="param=v1,v2; param2=v1,v2 (the cartesian product is searched)",
        )  # fmt: skip
        inputs.str("base_params", default="{}", required=False, label="Fixed parameters (JSON)")
        option_input(inputs, "reid", default=None)  # motion only unless asked
        inputs.float("iou_threshold", min=0.01, max=1, default=0.5, required=False, label="IoU threshold")
        return heavy_form(inputs, "Tune the tracker")

    def execute(self, ctx):
        from fiftyone_posetrack.tracking.tune import format_table

        p = Params(ctx)
        dets_field = p.field(ctx, "dets_field", fo.Detections)
        gt_field = p.field(ctx, "gt_field", fo.Detections)
        tracker = p.option("tracker")
        grid = parse_grid_text(p.str("grid", required=True))
        base = p.json("base_params")
        reid = p.options(["reid"]).get("reid")  # absent or "none": motion only
        iou = p.float("iou_threshold", 0.5, 0.01, 1.0)
        view = target_view(ctx)
        embedder = None
        if reid is not None:
            from fiftyone_posetrack.reid import make_embedder

            embedder = make_embedder(reid)
        rows = tune_tracker(view, dets_field, gt_field, tracker, grid, base, embedder, iou, progress_callback(ctx))
        entry = store_tuning(view, tracker, dets_field, gt_field, rows, base)
        show_in_app(ctx)
        best = entry["rows"][0]
        return {
            "best_params": entry["best_params"],
            "best_idf1": best["idf1"],
            "best_mota": best["mota"],
            "combinations": len(rows),
            "table": format_table(entry["rows"], metrics=METRICS),
            "worker": worker_id(),
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.obj("best_params", label="Best parameters", view=types.JSONView())
        outputs.float("best_idf1", label="IDF1")
        outputs.float("best_mota", label="MOTA")
        outputs.int("combinations", label="Combinations")
        outputs.str("table", label="Results", view=types.MarkdownView())
        return types.Property(outputs, view=types.View(label="Tracker tuning"))

