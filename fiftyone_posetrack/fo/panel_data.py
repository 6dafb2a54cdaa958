"""The data of the App's "Pose tracking" panel, as plain JSON-safe Python values.

The panel (``operators/panel.py``) only lays these out; everything here is
testable without a browser. Numbers are read from the stored evaluation
fields, not only from the stored results, so datasets evaluated before the
panel existed show the same tables:

- per video: the results' ``metrics_by_video`` (every version stored it);
- errors over time: the frame fields ``frames.<key>_fp`` / ``_fn`` / ``_idsw``
  that :func:`~fiftyone_posetrack.fo.evaluation.evaluate_tracking` writes;
- per track: the boxes' ``index`` / ``confidence`` and the marks
  ``<key>`` / ``<key>_id`` / ``<key>_idsw``.

Non-finite numbers (NaN, inf) are returned as None.
"""

from __future__ import annotations

import math

from fiftyone_posetrack.fo.evaluation.base import check_video_collection
from fiftyone_posetrack.fo.labels import collection_video_names, read_videos
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "EVALUATION_KINDS",
    "errors_over_time",
    "evaluation_kind",
    "joint_ap",
    "list_pose_tracking_evaluations",
    "quality_keys",
    "quality_over_time",
    "quality_table",
    "quality_tracks",
    "run_records",
    "track_table",
    "video_table",
]

#: our evaluation methods (``config.method``) -> the panel's name of their kind
EVALUATION_KINDS = {
    "posetrack_mot": "tracking",
    "posetrack_poses": "poses",
    "posetrack_detection": "detection",
}
#: the columns of :func:`video_table` per kind
VIDEO_COLUMNS = {
    "tracking": ("mota", "idf1", "hota", "idsw", "fp", "fn", "precision", "recall"),
    "poses": ("ap", "ap50", "ar", "pt_ap", "pt_mota"),
    "detection": ("ap", "ap50", "lamr"),
}


def _num(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int,)):
        return int(v)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return v
    return v if math.isfinite(v) else None


def list_pose_tracking_evaluations(samples) -> list[dict]:
    """``[{"key", "kind", "pred_field", "gt_field"}]`` of this package's evaluation runs."""
    out = []
    for key in samples.list_evaluations():
        config = samples.get_evaluation_info(key).config
        kind = EVALUATION_KINDS.get(getattr(config, "method", None))
        if kind:
            out.append({"key": key, "kind": kind, "pred_field": config.pred_field, "gt_field": config.gt_field})
    return out


def evaluation_kind(samples, eval_key: str, expected: str | None = None) -> str:
    """The kind (``tracking``, ``poses``, ``detection``) of one of our runs.

    Raises:
        BadInputError: for an unknown key, a run of another package, or a run
            of another kind than ``expected``
    """
    keys = samples.list_evaluations()
    if eval_key not in keys:
        raise BadInputError(f"eval_key: no evaluation {eval_key!r} on this dataset (it has {keys})")
    method = getattr(samples.get_evaluation_info(eval_key).config, "method", None)
    kind = EVALUATION_KINDS.get(method)
    if kind is None:
        raise BadInputError(f"eval_key: {eval_key!r} is not a pose-tracking evaluation (method {method!r})")
    if expected is not None and kind != expected:
        raise BadInputError(f"eval_key: {eval_key!r} is a {kind} evaluation, expected a {expected} evaluation")
    return kind


def video_table(samples, eval_key: str) -> dict:
    """The per-video metrics of a run: ``{"kind", "columns", "rows"}``.

    ``rows``: one dict per video (``video``, ``sample_id`` and the columns),
    then ``OVERALL`` (``sample_id`` None).
    """
    kind = evaluation_kind(samples, eval_key)
    results = samples.load_evaluation_results(eval_key)
    columns = [c for c in VIDEO_COLUMNS[kind] if any(c in m for m in results.metrics_by_video.values())]
    rows = []
    for video, metrics in results.metrics_by_video.items():
        row = {"video": video, "sample_id": results.video_ids.get(video)}
        row.update({c: _num(metrics.get(c)) for c in columns})
        rows.append(row)
    rows.sort(key=lambda r: r["video"] == "OVERALL")
    return {"kind": kind, "columns": columns, "rows": rows}


def errors_over_time(samples, eval_key: str) -> list[dict]:
    """Per-frame FP, FN and ID switches of a tracking run, per video.

    Returns:
        ``[{"video", "sample_id", "frame_number": [...], "fp": [...], "fn":
        [...], "idsw": [...]}]`` over the frames that have the run's counts
    """
    evaluation_kind(samples, eval_key, "tracking")
    counts = ("fp", "fn", "idsw")
    out = []
    for video in read_videos(samples, [f"{eval_key}_{c}" for c in counts]):
        values = [video.labels[f"{eval_key}_{c}"] for c in counts]
        keep = [k for k, x in enumerate(values[0]) if x is not None]
        row = {"video": video.name, "sample_id": video.sample_id,
               "frame_number": [video.frame_numbers[k] for k in keep]}  # fmt: skip
        for c, vals in zip(counts, values):
            row[c] = [int(vals[k] or 0) for k in keep]
        out.append(row)
    return out


def track_table(samples, eval_key: str | None = None, field: str | None = None, sample_id: str | None = None) -> list[dict]:
    """One row per predicted track: its length, gaps, confidence and (with a run) its errors.

    Args:
        samples: a video collection
        eval_key: a tracking run; its ``pred_field`` is the field unless given
        field: the tracked ``fo.Detections`` frame field (needed without a run)
        sample_id: only this video

    Returns:
        rows sorted by video, then most switches, then track id:
        ``{"video", "sample_id", "index", "length" (frames with a box),
        "first", "last" (frame numbers), "gaps" (runs of frames without a box
        between first and last), "mean_confidence" (None without scores)}``
        and, with a run, ``"gt_ids"`` (the ground-truth track ids it was
        matched to, by frames, most first), ``"switches"`` (its boxes marked as
        an ID switch), ``"fp"`` (its unmatched boxes)
    """
    check_video_collection(samples)
    gt_field = None
    if eval_key is not None:
        evaluation_kind(samples, eval_key, "tracking")
        config = samples.get_evaluation_info(eval_key).config
        field = field or config.pred_field
        gt_field = config.gt_field
    if not field:
        raise BadInputError("field: name the tracked boxes' field, or give a tracking eval_key")
    field = field if field.startswith("frames.") else f"frames.{field}"
    if samples.get_field(field) is None:
        raise BadInputError(f"field: the collection has no field {field!r}")
    view = samples.select(sample_id) if sample_id else samples
    if sample_id and len(view) == 0:
        raise BadInputError(f"sample_id: no video {sample_id!r} in this collection")
    box = field[len("frames.") :]
    gt_box = gt_field[len("frames.") :] if eval_key else None
    names = collection_video_names(samples)
    name_of = dict(zip(map(str, samples.values("id")), names))
    rows = []
    for video in read_videos(view, [box, gt_box]):  # indexed cursor, one video at a time
        sid = video.sample_id
        gt_index = {}
        if eval_key:
            for dets in video.labels[gt_box]:
                gt_index.update((d.id, d.index) for d in (dets.detections if dets is not None else []))
        tracks: dict[int, dict] = {}
        for n, dets in zip(video.frame_numbers, video.labels[box]):
            for d in dets.detections if dets is not None else []:
                i = d.index
                if i is None:
                    continue
                t = tracks.setdefault(int(i), {"frames": [], "conf": [], "gt": {}, "idsw": 0, "fp": 0})
                t["frames"].append(int(n))
                c = d.confidence
                if c is not None and math.isfinite(c):
                    t["conf"].append(float(c))
                if eval_key:
                    status, match, sw = (getattr(d, a) for a in (eval_key, f"{eval_key}_id", f"{eval_key}_idsw"))
                    t["fp"] += status == "fp"
                    t["idsw"] += bool(sw)
                    g = gt_index.get(match)
                    if g is not None:
                        t["gt"][int(g)] = t["gt"].get(int(g), 0) + 1
        for i, t in sorted(tracks.items()):
            frames = sorted(set(t["frames"]))
            row = {
                "video": name_of.get(sid, sid),
                "sample_id": sid,
                "index": i,
                "length": len(frames),
                "first": frames[0],
                "last": frames[-1],
                "gaps": sum(1 for a, b in zip(frames, frames[1:]) if b > a + 1),
                "mean_confidence": _num(sum(t["conf"]) / len(t["conf"])) if t["conf"] else None,
            }
            if eval_key:
                row["gt_ids"] = [g for g, _ in sorted(t["gt"].items(), key=lambda x: (-x[1], x[0]))]
                row["switches"] = int(t["idsw"])
                row["fp"] = int(t["fp"])
            rows.append(row)
    rows.sort(key=lambda r: (r["video"], -r.get("switches", 0), r["index"]))
    return rows


def joint_ap(samples, eval_key: str, video: str | None = None) -> dict:
    """PoseTrack per-joint AP (percent) of a pose run: ``{"joints": [...], "ap": [...]}``.

    Raises:
        BadInputError: for a run that is not a ``kind="posetrack"`` pose evaluation
    """
    evaluation_kind(samples, eval_key, "poses")
    results = samples.load_evaluation_results(eval_key)
    if getattr(results, "kind", None) != "posetrack":
        raise BadInputError(
            f"eval_key: {eval_key!r} is a {getattr(results, 'kind', '?')} pose evaluation; "
            "per-joint AP needs kind='posetrack'"
        )
    ap = results.joint_ap(video)
    return {"joints": list(ap), "ap": [_num(x) for x in ap.values()]}


def run_records(samples) -> list[dict]:
    """The records of what wrote the labels: every stored run and evaluation.

    Uses :mod:`fiftyone_posetrack.fo.runs` (``list_runs`` / ``get_run``) where
    it exists, else FiftyOne's own run infos. Each record is ``{"key",
    "type" ("run" or "evaluation"), "timestamp", "config"}`` (config as a dict).
    """
    records = []
    try:
        from fiftyone_posetrack.fo import runs as _runs  # branch "runs"
    except ImportError:
        _runs = None
    if _runs is not None and hasattr(_runs, "list_runs") and hasattr(_runs, "get_run"):
        for key in _runs.list_runs(samples):
            rec = _runs.get_run(samples, key)
            d = rec if isinstance(rec, dict) else getattr(rec, "__dict__", {"record": str(rec)})
            records.append({"key": key, "type": "run", "timestamp": str(d.get("timestamp", "")), "config": _plain(d)})
    else:
        for key in samples.list_runs():
            info = samples.get_run_info(key)
            records.append({"key": key, "type": "run", "timestamp": str(info.timestamp),
                            "config": _plain(info.config.serialize())})  # fmt: skip
    for key in samples.list_evaluations():
        info = samples.get_evaluation_info(key)
        records.append({"key": key, "type": "evaluation", "timestamp": str(info.timestamp),
                        "config": _plain(info.config.serialize())})  # fmt: skip
    return records


def _plain(d):
    if isinstance(d, dict):
        return {str(k): _plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_plain(v) for v in d]
    if isinstance(d, (str, bool, type(None))):
        return d
    if isinstance(d, (int, float)):
        return _num(d)
    return str(d)


# --------------------------------------------------------------------------- track quality (no ground truth)


def quality_keys(samples) -> list[str]:
    """The keys of the track-quality scores stored on the collection (:mod:`fiftyone_posetrack.fo.quality`)."""
    from fiftyone_posetrack.fo.quality import has_quality

    names = (samples.get_frame_field_schema() or {}) if samples.media_type == "video" else {}
    keys = sorted({n[: -len("_score")] for n in names if n.endswith("_score")})
    return [k for k in keys if has_quality(samples, k)]


def quality_table(samples, key: str = "quality", share: float = 0.05) -> list[dict]:
    """The top flagged frames of every video (best first, one per incident), as table rows.

    Returns:
        ``[{"video", "sample_id", "frame_number", "score", "flags" (a
        comma-separated string), "births", "deaths"}]``
    """
    from fiftyone_posetrack.fo.quality import flagged_frames

    return [{**r, "score": _num(r["score"]), "flags": ", ".join(r["flags"]) or "–"}
            for r in flagged_frames(samples, key, share)]  # fmt: skip


def quality_over_time(samples, key: str = "quality") -> list[dict]:
    """Per video and frame: births, deaths and the score of a track-quality key.

    Returns:
        ``[{"video", "sample_id", "frame_number": [...], "births": [...],
        "deaths": [...], "score": [...]}]``
    """
    from fiftyone_posetrack.fo.quality import _check_has, quality_fields

    _check_has(samples, key)
    f = quality_fields(key)
    out = []
    for video in read_videos(samples, [f["score"], f["births"], f["deaths"]]):
        out.append({
            "video": video.name, "sample_id": video.sample_id, "frame_number": list(video.frame_numbers),
            "births": [int(v or 0) for v in video.labels[f["births"]]],
            "deaths": [int(v or 0) for v in video.labels[f["deaths"]]],
            "score": [_num(float(v or 0.0)) for v in video.labels[f["score"]]],
        })  # fmt: skip
    return out


def quality_tracks(samples, key: str, field: str) -> dict[tuple[str, int], dict]:
    """Per ``(sample id, track id)``: how many of its boxes carry each flag (the boxes' ``<key>_flags``)."""
    from fiftyone_posetrack.tracking.quality import FLAGS

    box = field[len("frames.") :] if field.startswith("frames.") else field
    out: dict[tuple[str, int], dict] = {}
    for video in read_videos(samples, [box]):
        for dets in video.labels[box]:
            for d in dets.detections if dets is not None else []:
                if d.index is None:
                    continue
                row = out.setdefault((video.sample_id, int(d.index)), {f: 0 for f in FLAGS})
                for flag in getattr(d, f"{key}_flags") or []:
                    if flag in row:
                        row[flag] += 1
    return out
