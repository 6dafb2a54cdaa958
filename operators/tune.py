"""Operator that grid-searches tracker parameters against ground truth."""

from __future__ import annotations

import itertools
import re

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from fiftyone_posetrack.types import BadInputError

from ._common import (
    Params,
    field_choice,
    form,
    operator_config,
    option_input,
    progress_callback,
    show_in_app,
    target_view,
    worker_id,
)

#: ``dataset.info`` key where the last tuning of each tracker is kept
INFO_KEY = "posetrack_tracker_tuning"
_METRICS = ("idf1", "mota", "hota", "idsw", "fp", "fn")


def tune_tracker(samples, dets_field, gt_field, tracker, grid, base_params=None, embedder=None,
                 iou_threshold=0.5, progress_callback=None) -> list[dict]:  # fmt: skip
    """Tracks ``dets_field`` with every combination of ``grid`` and scores it on all videos together.

    Metrics are MOTChallenge's combined ones over the videos
    (:func:`fiftyone_posetrack.eval.mot.evaluate_mot_sequences`, OVERALL);
    appearance features are computed once per video.

    Returns:
        one row per combination, best first (IDF1, then MOTA):
        ``{"params": {...}, "idf1", "mota", "hota", "idsw", "fp", "fn"}``
    """
    from fiftyone_posetrack.eval.mot import evaluate_mot_sequences
    from fiftyone_posetrack.fo.labels import sample_to_mot
    from fiftyone_posetrack.tracking.base import make_tracker, tracker_params
    from fiftyone_posetrack.tracking.run import embed_mot_detections, track_mot_array

    valid = tracker_params(tracker)
    unknown = sorted((set(grid) | set(base_params or {})) - set(valid))
    if unknown:
        raise BadInputError(f"parameter 'grid': tracker {tracker!r} has no parameter(s) {unknown}; valid: {sorted(valid)}")
    empty = [k for k, v in grid.items() if not v]
    if empty:
        raise BadInputError(f"parameter 'grid': no values for {empty}")
    videos = {}
    for sample in samples.select_fields():
        dets = sample_to_mot(sample, dets_field)
        feats = embed_mot_detections(dets, sample.filepath, embedder) if embedder is not None and len(dets) else None
        videos[sample.id] = (sample_to_mot(sample, gt_field), dets, feats)
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    rows = []
    for i, values in enumerate(combos):
        params = dict(base_params or {}, **dict(zip(keys, values)))
        trk = make_tracker(tracker, **params)
        seqs = {sid: (gt, track_mot_array(dets, trk, embeddings=feats)) for sid, (gt, dets, feats) in videos.items()}
        overall = evaluate_mot_sequences(seqs, iou_threshold)["OVERALL"]
        rows.append({"params": dict(zip(keys, values)), **{m: overall[m] for m in _METRICS}})
        if progress_callback is not None:
            progress_callback((i + 1) / len(combos), f"{i + 1}/{len(combos)} parameter combinations")

    def key(r):
        return tuple(-x if x == x else float("inf") for x in (r["idf1"], r["mota"]))

    rows.sort(key=key)
    return rows


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
        inputs.str("reid", default="none", required=False, label="ReID embedder ('none', 'mobilenet', .onnx path)")
        inputs.float("iou_threshold", min=0.01, max=1, default=0.5, required=False, label="IoU threshold")
        return form(inputs, "Tune the tracker")

    def execute(self, ctx):
        from fiftyone_posetrack.tracking.tune import format_table

        p = Params(ctx)
        dets_field = p.field(ctx, "dets_field", fo.Detections)
        gt_field = p.field(ctx, "gt_field", fo.Detections)
        tracker = p.option("tracker")
        grid = parse_grid_text(p.str("grid", required=True))
        base = p.json("base_params")
        reid = p.str("reid", "none")
        iou = p.float("iou_threshold", 0.5, 0.01, 1.0)
        view = target_view(ctx)
        embedder = None
        if reid and reid.lower() != "none":
            from fiftyone_posetrack.reid import make_embedder

            embedder = make_embedder(reid)
        rows = tune_tracker(view, dets_field, gt_field, tracker, grid, base, embedder, iou, progress_callback(ctx))
        rows = [{"params": r["params"], **{m: _plain(r[m]) for m in _METRICS}} for r in rows]
        best = dict(base, **rows[0]["params"])
        dataset = ctx.dataset
        info = dict(dataset.info.get(INFO_KEY) or {})
        info[tracker] = {
            "detections_field": dets_field,
            "gt_field": gt_field,
            "best_params": best,
            "rows": rows[:50],
            "videos": len(view),
        }
        dataset.info[INFO_KEY] = info
        dataset.save()
        show_in_app(ctx)
        return {
            "best_params": best,
            "best_idf1": rows[0]["idf1"],
            "best_mota": rows[0]["mota"],
            "combinations": len(rows),
            "table": format_table(rows, metrics=("idf1", "mota", "hota", "idsw", "fp", "fn")),
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


def _plain(x):
    """A JSON-safe number (NaN -> None)."""
    x = float(x)
    if x != x:
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 else x
