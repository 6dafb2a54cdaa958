"""Views to the failures of a tracking evaluation run (:func:`evaluate_tracking`).

Frames and patches views need frame images: FiftyOne's ``to_frames`` samples
them from the videos with ffmpeg. These helpers pass ``sample_frames=True``
and ``sparse=True`` by default, so only the frames in question are written,
once (later calls reuse them); by default FiftyOne writes them to a folder
named after each video next to it (``/data/video.mp4`` ->
``/data/video/000001.jpg``); pass ``output_dir=...`` to put them elsewhere.
Any ``to_frames`` argument can be given as a keyword.
"""

from __future__ import annotations

from typing import NamedTuple

from fiftyone import ViewField as F

from fiftyone_posetrack.fo.labels import matched_label_ids, read_videos
from fiftyone_posetrack.fo.evaluation.tracking import TrackingEvaluationConfig
from fiftyone_posetrack.types import BadInputError

__all__ = ["TrackErrors", "fn_patches", "fp_patches", "id_switch_frames", "worst_tracks"]


class TrackErrors(NamedTuple):
    """A ground-truth track's errors: ``(video, index, counts)``.

    ``counts``: ``{"frames", "tp", "fn", "idsw", "ignored"}`` (boxes of the
    track; ``tp`` includes the switches).
    """

    video: str
    index: int
    counts: dict


def _tracking_config(samples, eval_key: str) -> TrackingEvaluationConfig:
    if eval_key not in samples.list_evaluations():
        raise BadInputError(
            f"eval_key: no evaluation {eval_key!r} on this dataset "
            f"(it has {samples.list_evaluations()}); run evaluate_tracking() first"
        )
    config = samples.get_evaluation_info(eval_key).config
    if not isinstance(config, TrackingEvaluationConfig):
        raise BadInputError(f"eval_key: {eval_key!r} is not a tracking evaluation (evaluate_tracking)")
    return config


def _frames(view, kwargs):
    args = {"sample_frames": True, "sparse": True}
    args.update(kwargs)
    return view.to_frames(**args)


def id_switch_frames(samples, eval_key: str = "track_eval", **to_frames_kwargs):
    """A frames view of the frames with at least one identity switch.

    Returns:
        a :class:`fiftyone.core.video.FramesView` (one image sample per frame,
        with every frame field, ``sample_id`` and ``frame_number``)
    """
    _tracking_config(samples, eval_key)
    view = samples.match_frames(F(f"{eval_key}_idsw") > 0)
    return _frames(view, to_frames_kwargs)


def _patches(samples, eval_key, which: str, to_frames_kwargs):
    config = _tracking_config(samples, eval_key)
    field = (config.pred_field if which == "fp" else config.gt_field)[len("frames.") :]
    view = samples.match_frames(F(f"{eval_key}_{which}") > 0)
    frames = _frames(view, to_frames_kwargs)
    return frames.filter_labels(field, F(eval_key) == which).to_patches(field)


def fp_patches(samples, eval_key: str = "track_eval", **to_frames_kwargs):
    """A patches view with one sample per false-positive predicted box.

    Built as ``match_frames(fp > 0).to_frames().filter_labels(pred, fp).to_patches(pred)``.
    """
    return _patches(samples, eval_key, "fp", to_frames_kwargs)


def fn_patches(samples, eval_key: str = "track_eval", **to_frames_kwargs):
    """A patches view with one sample per missed ground-truth box."""
    return _patches(samples, eval_key, "fn", to_frames_kwargs)


def worst_tracks(samples, eval_key: str = "track_eval", k: int = 10):
    """The ground-truth tracks with the most misses and identity switches.

    Tracks are ranked by ``fn + idsw``, then by ``idsw``; tracks without
    errors are left out.

    Returns:
        ``(tracks, view)``: up to ``k`` :class:`TrackErrors` ``(video, index,
        counts)``, and a view of the collection keeping only those tracks'
        ground-truth boxes and the predictions matched to them (videos
        without them are left out)
    """
    if int(k) < 1:
        raise BadInputError(f"k: expected a positive number, got {k}")
    config = _tracking_config(samples, eval_key)
    gt, pred = config.gt_field, config.pred_field
    gt_name, pred_name = gt[len("frames.") :], pred[len("frames.") :]
    videos = read_videos(samples, [gt_name, pred_name])
    names = [v.name for v in videos]
    tracks: dict[tuple[int, int], dict] = {}
    labels: dict[tuple[int, int], list[str]] = {}
    for v, video in enumerate(videos):
        for dets in video.labels[gt_name]:
            for d in dets.detections if dets is not None else []:
                st, i = getattr(d, eval_key), d.index
                key = (v, -1 if i is None else int(i))
                c = tracks.setdefault(key, {"frames": 0, "tp": 0, "fn": 0, "idsw": 0, "ignored": 0})
                c["frames"] += 1
                if st in ("tp", "fn", "ignored"):
                    c[st] += 1
                c["idsw"] += bool(getattr(d, f"{eval_key}_idsw"))
                labels.setdefault(key, []).append(d.id)
    ranked = sorted(
        (key for key, c in tracks.items() if c["fn"] + c["idsw"] > 0),
        key=lambda key: (-(tracks[key]["fn"] + tracks[key]["idsw"]), -tracks[key]["idsw"], key),
    )[: int(k)]
    out = [TrackErrors(names[v], i, tracks[(v, i)]) for v, i in ranked]
    gt_ids = {lid for key in ranked for lid in labels[key]}
    pred_ids = matched_label_ids(videos, pred_name, f"{eval_key}_id", gt_ids)
    view = samples.select_labels(ids=sorted(gt_ids) + pred_ids, fields=[gt, pred])
    return out, view
