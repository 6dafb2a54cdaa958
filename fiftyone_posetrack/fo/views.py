"""Per-track views of a tracked video collection.

Tracked labels are frame-level ``fo.Detections`` (boxes) and ``fo.Keypoints``
(skeletons) sharing ``index`` = track id; track ids are unique within a video.

- :func:`trajectories`: one clip per track (FiftyOne's ``to_trajectories``)
- :func:`show_track`: one track's boxes and skeletons together, nothing else
  of those fields
- :func:`id_switch_clips`: a few frames before and after every identity
  switch of a tracking evaluation, the switching boxes tagged
- :func:`failure_view`: the failure views of an existing tracking evaluation
  (:mod:`fiftyone_posetrack.fo.evaluation.views`) by name, without
  re-running it

Nothing here writes labels except :func:`id_switch_clips`, which adds a label
tag to the switching boxes (``tag``; removable with ``untag_labels``).
"""

from __future__ import annotations

import fiftyone as fo
from fiftyone import ViewField as F

from fiftyone_posetrack.fo.evaluation.base import check_label_field, check_video_collection, frame_path
from fiftyone_posetrack.fo.evaluation.views import _tracking_config
from fiftyone_posetrack.fo.labels import frame_documents, matched_label_ids, read_videos
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "FAILURE_VIEWS",
    "IDSW_TAG",
    "failure_view",
    "id_switch_clips",
    "open_at_frame",
    "show_track",
    "trajectories",
    "track_ids",
]

#: the label tag :func:`id_switch_clips` puts on switching boxes
IDSW_TAG = "id_switch"
#: the names :func:`failure_view` accepts
FAILURE_VIEWS = ("id_switch_clips", "id_switch_frames", "worst_tracks", "fp_patches", "fn_patches")


def _one_video(samples, sample_id: str | None):
    if sample_id is None:
        return samples
    view = samples.select(sample_id)
    if len(view) == 0:
        raise BadInputError(f"sample_id: no video {sample_id!r} in this collection")
    return view


def track_ids(samples, field: str = "pred_detections", sample_id: str | None = None) -> list[int]:
    """The distinct track ids (``index``) of a frame-level label field, ascending."""
    check_video_collection(samples)
    try:
        name = check_label_field(samples, field, fo.Detections, "field")
    except BadInputError:
        name = check_label_field(samples, field, fo.Keypoints, "field")
    view = _one_video(samples, sample_id)
    ftype = samples.get_field(frame_path(name)).document_type
    return sorted(int(i) for i in view.distinct(f"frames.{name}.{ftype._LABEL_LIST_FIELD}.index") if i is not None)


def trajectories(samples, field: str = "pred_detections"):
    """A clips view with one clip per track of ``field`` (FiftyOne's ``to_trajectories``).

    Each clip spans the track's first to last frame and has a sample field
    ``<field>`` with the track's ``label`` and ``index``.

    Raises:
        BadInputError: for a collection that is not a video collection or a
            field that is not frame-level ``fo.Detections``
    """
    check_video_collection(samples)
    name = check_label_field(samples, field, fo.Detections, "field")
    if not track_ids(samples, name):
        raise BadInputError(f"field: frames.{name} has no boxes with a track id (`index`)")
    return samples.to_trajectories(frame_path(name))


def show_track(
    samples,
    index: int,
    box_field: str = "pred_detections",
    keypoints_field: str | None = "pred_keypoints",
    sample_id: str | None = None,
    clip: bool = False,
):
    """A view of the videos holding track ``index`` with only that track's boxes and skeletons.

    Both fields are filtered by ``index`` (other labels of those two fields are
    hidden; other fields, e.g. ground truth, are left as they are).

    Args:
        samples: a video collection
        index: the track id
        box_field: the tracked ``fo.Detections`` frame field
        keypoints_field: the ``fo.Keypoints`` frame field of the same tracks,
            or None
        sample_id: restrict to this video (track ids are per video)
        clip: return a clips view, one clip per video from the track's first to
            its last frame, so the App's modal opens (and plays) at the track's
            first frame rather than where the video starts

    Raises:
        BadInputError: for a bad field, or a track id absent from the collection
    """
    check_video_collection(samples)
    box = check_label_field(samples, box_field, fo.Detections, "box_field")
    kps = check_label_field(samples, keypoints_field, fo.Keypoints, "keypoints_field") if keypoints_field else None
    if isinstance(index, bool) or not isinstance(index, (int,)) and not (isinstance(index, float) and index.is_integer()):
        raise BadInputError(f"index: expected an integer track id, got {index!r}")
    index = int(index)
    view = _one_video(samples, sample_id)
    present = track_ids(view, box)
    if index not in present:
        where = f"video {sample_id}" if sample_id else "this collection"
        shown = present[:20] + (["..."] if len(present) > 20 else [])
        raise BadInputError(f"index: no track {index} in frames.{box} of {where} (track ids: {shown})")
    if clip:  # the clip first: a clips view is built from the unfiltered frames
        spans = _track_spans(view, box, index)
        view = view.select(list(spans), ordered=True).to_clips([[spans[sid]] for sid in spans])
    view = view.filter_labels(frame_path(box), F("index") == index, only_matches=True)
    if kps:
        view = view.filter_labels(frame_path(kps), F("index") == index, only_matches=False)
    return view


def _track_spans(samples, box: str, index: int) -> dict[str, tuple[int, int]]:
    """``{sample id: (first, last)}`` frame numbers of track ``index`` of ``box`` per video holding it."""
    spans = {}
    for video in read_videos(samples._dataset.select(samples.values("id")), [box]):
        frames = [n for n, dets in zip(video.frame_numbers, video.labels[box])
                  if any(d.index == index for d in (dets.detections if dets is not None else []))]  # fmt: skip
        if frames:
            spans[video.sample_id] = (min(frames), max(frames))
    return spans


def open_at_frame(samples, sample_id: str, frame: int):
    """A clip of video ``sample_id`` from ``frame`` to its last frame, and the clip's id.

    Opening that clip in the App's modal plays the video from ``frame``.

    Raises:
        BadInputError: for an unknown video or a frame outside it
    """
    check_video_collection(samples)
    if not sample_id:
        raise BadInputError("sample_id: name the video")
    view = _one_video(samples, sample_id)
    numbers = [d["frame_number"] for d in frame_documents(view._dataset, view.first().id, [])]
    last = max([int(view.first().metadata.total_frame_count or 0)] + [int(n) for n in numbers])
    if isinstance(frame, bool) or int(frame) != frame or not 1 <= int(frame) <= last:
        raise BadInputError(f"frame: expected a frame number in [1, {last}] of video {sample_id}, got {frame!r}")
    clips = view.to_clips([[(int(frame), last)]])
    return clips, clips.first().id


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def id_switch_clips(samples, eval_key: str = "track_eval", before: int = 5, after: int = 5, tag: str | None = IDSW_TAG):
    """A clips view around every identity switch of a tracking evaluation.

    Each clip runs from ``before`` frames before a switch to ``after`` frames
    after it (clips of one video that touch are merged). The ground-truth box
    whose match switched and the predicted box it switched to get the label
    tag ``tag`` (unless None), so the App can show and filter them.

    Args:
        samples: the evaluated video collection (or a view of it)
        eval_key: a run of :func:`~fiftyone_posetrack.fo.evaluation.evaluate_tracking`
        before, after: frames around each switch, >= 0
        tag: the label tag of the switching boxes, or None for no tagging

    Returns:
        a :class:`fiftyone.core.clips.ClipsView` (empty when there are no switches)

    Raises:
        BadInputError: for an unknown eval key, an evaluation of another kind
            or negative ``before`` / ``after``
    """
    config = _tracking_config(samples, eval_key)
    for name, value in (("before", before), ("after", after)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise BadInputError(f"{name}: expected a number of frames >= 0, got {value!r}")
    gt, pred = config.gt_field, config.pred_field
    gt_name, pred_name = gt[len("frames.") :], pred[len("frames.") :]
    videos = read_videos(samples, [gt_name, pred_name])  # indexed cursor, one video at a time
    ids = [v.sample_id for v in videos]
    support, switched = [], set()
    for video in videos:
        spans = []
        for n, dets in zip(video.frame_numbers, video.labels[gt_name]):
            hits = [d.id for d in (dets.detections if dets is not None else []) if getattr(d, f"{eval_key}_idsw")]
            if hits:
                spans.append((max(1, n - int(before)), n + int(after)))
                switched.update(hits)
        support.append(_merge(spans))
    if tag and switched:
        pred_switched = matched_label_ids(videos, pred_name, f"{eval_key}_id", switched)
        # only the predictions matched to the switching gt box in that frame
        samples.select_labels(ids=sorted(switched) + pred_switched, fields=[gt, pred]).tag_labels(tag)
    keep = [sid for sid, s in zip(ids, support) if s]
    if not keep:
        return samples.limit(0).to_clips([])
    view = samples.select(keep, ordered=True)
    return view.to_clips([s for s in support if s])


def failure_view(samples, eval_key: str = "track_eval", which: str = "id_switch_clips", **kwargs):
    """A failure view of an existing tracking evaluation, by name (nothing is re-run).

    Args:
        samples: the evaluated video collection
        eval_key: a run of :func:`~fiftyone_posetrack.fo.evaluation.evaluate_tracking`
        which: one of :data:`FAILURE_VIEWS`
        **kwargs: passed on (``before`` / ``after`` of :func:`id_switch_clips`,
            ``k`` of ``worst_tracks``, ``to_frames`` arguments of the frames and
            patches views)

    Raises:
        BadInputError: for an unknown name, unknown eval key or an evaluation
            of another kind
    """
    from fiftyone_posetrack.fo.evaluation import fn_patches, fp_patches, id_switch_frames, worst_tracks

    if which not in FAILURE_VIEWS:
        raise BadInputError(f"which: expected one of {list(FAILURE_VIEWS)}, got {which!r}")
    _tracking_config(samples, eval_key)
    if which == "id_switch_clips":
        return id_switch_clips(samples, eval_key, **kwargs)
    if which == "worst_tracks":
        return worst_tracks(samples, eval_key, **kwargs)[1]
    return {"id_switch_frames": id_switch_frames, "fp_patches": fp_patches, "fn_patches": fn_patches}[which](
        samples, eval_key, **kwargs
    )
