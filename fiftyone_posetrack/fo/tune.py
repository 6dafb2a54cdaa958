"""Tuning a tracker on a dataset: grid search of its parameters against ground truth.

:func:`tune_tracker` tracks a detections field with every combination of a
parameter grid and scores each on all videos together; :func:`store_tuning`
keeps the result in ``dataset.info[INFO_KEY]`` (one entry per tracker). The
``tune_tracker`` operator is a form around them.
"""

from __future__ import annotations

import itertools

from fiftyone_posetrack.types import BadInputError

__all__ = ["INFO_KEY", "METRICS", "tune_tracker", "store_tuning"]

#: ``dataset.info`` key where the last tuning of each tracker is kept
INFO_KEY = "posetrack_tracker_tuning"
METRICS = ("idf1", "mota", "hota", "idsw", "fp", "fn")


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
    from fiftyone_posetrack.tracking.base import check_tracker_params, make_tracker, tracker_params
    from fiftyone_posetrack.tracking.run import embed_mot_detections, track_mot_array

    valid = tracker_params(tracker)
    unknown = sorted((set(grid) | set(base_params or {})) - set(valid))
    if unknown:
        raise BadInputError(f"grid: tracker {tracker!r} has no parameter(s) {unknown}; valid: {sorted(valid)}")
    empty = [k for k, v in grid.items() if not v]
    if empty:
        raise BadInputError(f"grid: no values for {empty}")
    check_tracker_params(tracker, dict(base_params or {}), "base_params")
    for key, values in grid.items():  # every value, before any video is read
        for value in values:
            check_tracker_params(tracker, {key: value}, "grid")
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
        rows.append({"params": dict(zip(keys, values)), **{m: overall[m] for m in METRICS}})
        if progress_callback is not None:
            progress_callback((i + 1) / len(combos), f"{i + 1}/{len(combos)} parameter combinations")

    def key(r):
        return tuple(-x if x == x else float("inf") for x in (r["idf1"], r["mota"]))

    rows.sort(key=key)
    return rows


def store_tuning(samples, tracker: str, dets_field: str, gt_field: str, rows: list[dict], base_params=None) -> dict:
    """Keeps a tuning's result in ``dataset.info[INFO_KEY][tracker]`` and returns that entry.

    The entry holds the fields, the best parameters (``base_params`` with the
    best row's on top), the 50 best rows (NaN metrics as None) and the number
    of videos.
    """
    dataset = samples._dataset
    rows = [{"params": r["params"], **{m: _plain(r[m]) for m in METRICS}} for r in rows]
    entry = {
        "detections_field": dets_field,
        "gt_field": gt_field,
        "best_params": dict(base_params or {}, **rows[0]["params"]),
        "rows": rows[:50],
        "videos": len(samples),
    }
    info = dict(dataset.info.get(INFO_KEY) or {})
    info[tracker] = entry
    dataset.info[INFO_KEY] = info
    dataset.save()
    return entry


def _plain(x):
    """A JSON-safe number (NaN -> None)."""
    x = float(x)
    if x != x:
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 else x
