"""The data-access layer for frame labels: conversion between pixel arrays and
FiftyOne labels, indexed reads and bulk writes.

Every read and write of frame labels in this package goes through here
(:func:`write_frame_labels`, :class:`FrameLabelCursor`,
:func:`read_frame_labels`, :func:`read_videos`): frame documents are found by
the ``(_sample_id, frame_number)`` index with a cursor, one video at a time,
never with FiftyOne's whole-collection ``values("frames.*")``, whose per-video
aggregation fails once a video's labels exceed MongoDB's document (16 MB)
and aggregation (100 MB) limits (long or crowded videos).

Pixel arrays (the library's convention) become FiftyOne's relative coordinates:

- a box ``[x1, y1, x2, y2]`` in pixels -> ``bounding_box = [x / W, y / H, w / W, h / H]``
- a joint ``(x, y)`` in pixels -> ``(x / W, y / H)``; a missing joint -> ``(nan, nan)``

A person's :class:`fiftyone.core.labels.Detection` and
:class:`fiftyone.core.labels.Keypoint` in the same frame share ``index`` = the
track id, which is what the App uses to link them and to colour tracks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field as dataclass_field
from datetime import datetime, timezone
from typing import Iterable, Iterator, Mapping

import fiftyone as fo
import numpy as np
from bson import ObjectId
from pymongo.errors import BulkWriteError

from fiftyone_posetrack.formats.paths import unique_names, video_name
from fiftyone_posetrack.types import BadInputError, FramePoses, FrameTracks

_DUPLICATE_KEY = 11000  # MongoDB's error code for a unique-index violation

logger = logging.getLogger(__name__)

__all__ = [
    "boxes_to_detections",
    "tracks_to_detections",
    "poses_to_keypoints",
    "detections_to_arrays",
    "keypoints_to_arrays",
    "write_frame_labels",
    "frame_ids",
    "read_frame_labels",
    "frame_documents",
    "FrameLabelCursor",
    "RawLabel",
    "VideoLabels",
    "read_videos",
    "video_names",
    "collection_video_names",
    "matched_label_ids",
    "check_frame_field",
    "frames_to_mot",
    "sample_to_mot",
]


def _scale(width: int, height: int) -> np.ndarray:
    if not (width and height and width > 0 and height > 0):
        raise BadInputError(f"frame size must be positive, got {width}x{height}")
    return np.array([width, height, width, height], dtype=np.float64)


def boxes_to_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    width: int,
    height: int,
    track_ids: np.ndarray | None = None,
    label: str = "person",
) -> fo.Detections:
    """Converts ``(N, 4)`` ``[x1, y1, x2, y2]`` pixel boxes to ``fo.Detections``.

    Boxes are clipped to the frame. ``track_ids`` (if given) become ``index``.
    """
    scale = _scale(width, height)
    rel = np.clip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), 0, scale) / scale
    rel[:, 2:] -= rel[:, :2]
    ids = [None] * len(rel) if track_ids is None else [int(t) for t in track_ids]
    return fo.Detections(
        detections=[
            fo.Detection(label=label, bounding_box=box.tolist(), confidence=float(score), index=tid)
            for box, score, tid in zip(rel, scores, ids)
        ]
    )


def tracks_to_detections(
    tracks: FrameTracks, width: int, height: int, label: str = "person"
) -> fo.Detections:
    """Converts one frame's tracks to ``fo.Detections`` with ``index`` = track id.

    Boxes are clipped to the frame before conversion.
    """
    return boxes_to_detections(tracks.boxes, tracks.scores, width, height, tracks.track_ids, label)


def poses_to_keypoints(
    poses: FramePoses,
    width: int,
    height: int,
    label: str = "person",
    min_score: float = 0.0,
) -> fo.Keypoints:
    """Converts one frame's poses to ``fo.Keypoints`` with ``index`` = track id.

    Joints with a NaN coordinate or a score below ``min_score`` become
    ``(nan, nan)``, FiftyOne's marker for a missing point; their confidence is kept.
    """
    scale = _scale(width, height)[:2]
    points = poses.keypoints / scale
    missing = ~np.isfinite(points).all(axis=2) | (poses.scores < min_score)
    points[missing] = np.nan
    conf = np.nan_to_num(poses.scores, nan=0.0)
    return fo.Keypoints(
        keypoints=[
            fo.Keypoint(
                label=label,
                points=[(float(x), float(y)) for x, y in pts],
                confidence=c.tolist(),
                index=int(tid),
            )
            for pts, c, tid in zip(points, conf, poses.track_ids)
        ]
    )


def detections_to_arrays(
    detections: fo.Detections | None, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Converts ``fo.Detections`` back to pixel arrays.

    Returns:
        ``(boxes (N, 4) [x1, y1, x2, y2] px, scores (N,), indices (N,))``;
        a missing confidence reads as 1 and a missing index as -1
    """
    dets = [] if detections is None else detections.detections
    if not dets:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)
    rel = np.array([d.bounding_box for d in dets], dtype=np.float64)
    boxes = rel * _scale(width, height)
    boxes[:, 2:] += boxes[:, :2]
    scores = np.array([1.0 if d.confidence is None else d.confidence for d in dets])
    index = np.array([-1 if d.index is None else d.index for d in dets], dtype=np.int64)
    return boxes, scores, index


def keypoints_to_arrays(
    keypoints: fo.Keypoints | None, width: int, height: int, num_keypoints: int = 17
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Converts ``fo.Keypoints`` back to pixel arrays.

    Returns:
        ``(points (N, K, 2) px with NaN for missing joints, scores (N, K), indices (N,))``;
        missing confidences read as 1 for present joints and 0 for missing ones
    """
    kps = [] if keypoints is None else keypoints.keypoints
    if not kps:
        return np.zeros((0, num_keypoints, 2)), np.zeros((0, num_keypoints)), np.zeros(0, dtype=np.int64)
    points = np.full((len(kps), num_keypoints, 2), np.nan)
    scores = np.zeros((len(kps), num_keypoints))
    for i, kp in enumerate(kps):
        pts = np.array(kp.points, dtype=np.float64).reshape(-1, 2)[:num_keypoints]
        points[i, : len(pts)] = pts
        if kp.confidence is not None:
            c = np.array(kp.confidence, dtype=np.float64)[:num_keypoints]
            scores[i, : len(c)] = c
        else:
            scores[i] = np.isfinite(points[i]).all(axis=1)
    points *= _scale(width, height)[:2]
    index = np.array([-1 if k.index is None else k.index for k in kps], dtype=np.int64)
    return points, scores, index


def write_frame_labels(
    dataset: fo.Dataset,
    fields: Mapping[str, Mapping[str, Mapping[int, fo.Label | None]]],
) -> float:
    """Writes frame labels of many videos in one bulk operation per field and video.

    This is the fast path: no per-frame ``save()``; frames that do not exist yet
    are created. Frames of a video that are not in the mapping are not touched,
    and not read either: the frame documents are found by their (indexed)
    frame numbers, so a write costs the same at the end of a long video as at
    its start, and never hits MongoDB's 100 MB limit on the frames that
    FiftyOne's ``set_values(key_field="id")`` gathers per video.

    Args:
        dataset: the video dataset
        fields: ``{frame_field: {sample_id: {frame_number: label}}}``, e.g.
            ``{"pose_tracks": {sample.id: {1: fo.Detections(...), ...}}}``

    Returns:
        the seconds spent writing
    """
    start = time.perf_counter()
    for field, per_sample in fields.items():
        if not per_sample:
            continue
        for sample_id, frames in per_sample.items():
            bad = [n for n in frames if not isinstance(n, (int, np.integer)) or n < 1]
            if bad:
                raise BadInputError(
                    f"frame numbers must be integers >= 1, got {bad[:5]} for sample {sample_id}"
                )
        for sample_id, frames in per_sample.items():
            if not frames:
                continue
            ids = frame_ids(dataset, sample_id, frames)
            dataset.set_values(
                f"frames.{field}", {ids[int(n)]: v for n, v in frames.items()}, key_field="frames.id"
            )
    return time.perf_counter() - start


def frame_ids(dataset: fo.Dataset, sample_id: str, numbers: Iterable[int]) -> dict[int, str]:
    """The ids of a video's frame documents ``numbers``, creating the missing ones.

    Reads only those frames (by the ``_sample_id, frame_number`` index); new
    frame documents get the fields FiftyOne's own ``set_values`` gives them.
    Safe when another process creates the same frames at once (two runs on one
    video, or a run stopped between the read and the insert): the unique
    ``(_sample_id, frame_number)`` index refuses the second copy, and the ids
    of the frames the other process created are read back.
    """
    numbers = sorted({int(n) for n in numbers})
    oid = ObjectId(sample_id)
    coll = dataset._frame_collection

    def read(wanted):
        query = {"_sample_id": oid, "frame_number": {"$in": wanted}}
        return {d["frame_number"]: d["_id"] for d in coll.find(query, {"frame_number": 1})}

    found = read(numbers)
    missing = [n for n in numbers if n not in found]
    if missing:
        now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as FiftyOne stores it
        docs = [{"_sample_id": oid, "frame_number": n, "last_modified_at": now} for n in missing]
        try:
            coll.insert_many(docs, ordered=False)
            found.update((d["frame_number"], d["_id"]) for d in docs)
        except BulkWriteError as e:
            if any(err.get("code") != _DUPLICATE_KEY for err in e.details.get("writeErrors", [])):
                raise
            found.update(read(missing))  # ours and the other process's
    return {n: str(found[n]) for n in numbers}


def check_frame_field(samples, name: str, cls: type, param: str | None = None) -> None:
    """Refuses a frame field that does not exist or does not hold ``cls`` labels.

    Args:
        samples: a video collection
        name: the frame field (without ``frames.``)
        cls: the label class it must hold, e.g. ``fo.Detections``
        param: the parameter that named the field, put first in the message

    Raises:
        BadInputError: naming the field (and ``param``), and the frame fields
            or the type found
    """
    prefix = f"{param}: " if param else ""
    schema = samples.get_frame_field_schema() or {}
    if name not in schema:
        raise BadInputError(f"{prefix}frame field {name!r} does not exist; frame fields: {sorted(schema)}")
    have = getattr(schema[name], "document_type", None)
    if have is not cls:
        raise BadInputError(
            f"{prefix}frame field {name!r} holds {getattr(have, '__name__', type(schema[name]).__name__)}, "
            f"expected {cls.__name__}"
        )


def frames_to_mot(frame_numbers, detections, width: int, height: int, gt: bool = False) -> np.ndarray:
    """Converts one video's per-frame ``fo.Detections`` into a MOT array.

    Args:
        frame_numbers: the frame numbers (1-based), one per entry of ``detections``
        detections: ``fo.Detections`` (or None) per frame
        width, height: the frame size in pixels

    Returns:
        ``(N, 9)`` rows ``frame, id, x, y, w, h, conf, class, visibility`` in
        pixels (see :mod:`fiftyone_posetrack.formats.mot`), in frame order and
        then in the order of the detections; ``id`` is the detection's
        ``index`` (-1 when unset); ``conf`` and ``class`` are the MOT values
        kept by :func:`fiftyone_posetrack.fo.dataset.import_mot_ground_truth`
        (attributes ``mot_conf`` / ``mot_class``) when present, else the
        confidence and class 1, or -2 (ignore) for ``ignore=True``. With
        ``gt=True`` (ground truth) ``conf`` is MOTChallenge's *consider* flag:
        ``mot_conf`` when imported, else 1 -- never the label's confidence
    """
    rows = []
    for number, dets in zip(frame_numbers, detections):
        if dets is None or not dets.detections:
            continue
        boxes, scores, index = detections_to_arrays(dets, width, height)
        vis = [getattr(d, "visibility", None) for d in dets.detections]
        ign = [bool(getattr(d, "ignore", False)) for d in dets.detections]
        cls = [getattr(d, "mot_class", None) for d in dets.detections]
        conf = [getattr(d, "mot_conf", None) for d in dets.detections]
        block = np.empty((len(boxes), 9))
        block[:, 0] = number
        block[:, 1] = index
        block[:, 2:4] = boxes[:, :2]
        block[:, 4:6] = boxes[:, 2:] - boxes[:, :2]
        # In ground truth, column 6 is the "consider" flag and the evaluation keeps rows with
        # trunc(conf) != 0: a detector score (0.93) there would drop the row. Reading a
        # predictions field as ground truth did exactly that -- every box dropped, num_gt_ids 0,
        # FP = every prediction, MOTA -inf (issue 21, case 8) -- so gt rows get 1 unless imported.
        default = 1.0 if gt else None
        block[:, 6] = [(s if default is None else default) if c is None else float(c) for s, c in zip(scores, conf)]
        block[:, 7] = [(-2 if i else 1) if c is None else int(c) for i, c in zip(ign, cls)]
        block[:, 8] = [-1.0 if v is None else float(v) for v in vis]
        rows.append(block)
    return np.concatenate(rows) if rows else np.zeros((0, 9))


def sample_to_mot(sample: fo.Sample, field: str) -> np.ndarray:
    """Reads a video sample's frame-level ``fo.Detections`` into a MOT array.

    Returns:
        ``(N, 9)`` rows ``frame, id, x, y, w, h, conf, class, visibility`` in
        pixels, see :func:`frames_to_mot`
    """
    md = sample.metadata
    if md is None or not md.frame_width:
        raise BadInputError(f"sample {sample.id} ({sample.filepath}) has no video metadata")
    numbers, labels = read_frame_labels(sample._dataset, sample.id, field)
    return frames_to_mot(numbers, labels, md.frame_width, md.frame_height)


def frame_documents(dataset: fo.Dataset, sample_id: str, fields: Iterable[str], only_set: str | None = None,
                    batch_size: int = 256) -> Iterator[dict]:  # fmt: skip
    """One video's raw frame documents in frame order, by an indexed cursor.

    Args:
        dataset: the dataset (not a view: its frame collection is read)
        sample_id: the video sample
        fields: the frame fields to read (plus ``_id`` and ``frame_number``)
        only_set: skip frames where this field is unset or None
        batch_size: documents per round trip

    Yields:
        raw documents ``{"_id", "frame_number", field: dict | None, ...}``
    """
    query = {"_sample_id": ObjectId(sample_id)}
    if only_set:
        query[only_set] = {"$ne": None}
    projection = {"frame_number": 1, **{f: 1 for f in fields}}
    cursor = dataset._frame_collection.find(query, projection).sort("frame_number", 1).batch_size(batch_size)
    yield from cursor


def read_frame_labels(dataset: fo.Dataset, sample_id: str, field: str) -> tuple[list[int], list[fo.Label]]:
    """One video's labels of ``field`` in frame order (frames without one are left out).

    Reads the frame documents with an indexed cursor (:func:`frame_documents`).
    """
    numbers, labels = [], []
    for doc in frame_documents(dataset, sample_id, [field], only_set=field):
        numbers.append(int(doc["frame_number"]))
        labels.append(fo.Label.from_dict(doc[field]))
    return numbers, labels


class FrameLabelCursor:
    """A video's labels of one frame field, read frame by frame in increasing order.

    ``get(n)`` returns frame ``n``'s label (None when unset) for ``n`` never
    decreasing: the labels come from :func:`frame_documents`, so memory stays
    constant in the length of the video.
    """

    def __init__(self, dataset: fo.Dataset, sample_id: str, field: str):
        self._docs = frame_documents(dataset, sample_id, [field], only_set=field)
        self._field, self._next, self._last = field, None, 0

    def get(self, number: int) -> fo.Label | None:
        if number < self._last:
            raise ValueError(f"frame labels are read in order; asked for {number} after {self._last}")
        self._last = number
        while self._next is None or self._next["frame_number"] < number:
            self._next = next(self._docs, None)
            if self._next is None:
                self._next = {"frame_number": float("inf")}
        if self._next["frame_number"] != number:
            return None
        return fo.Label.from_dict(self._next[self._field])


class RawLabel:
    """Attribute access to a label as the database stores it (no validation).

    Reading labels as raw dicts and wrapping them is about 10x faster than
    building FiftyOne label objects, and the converters of this module only
    read attributes. ``id`` is the label id as a string; a missing attribute
    reads as None; the lists ``detections``, ``keypoints``, ``polylines`` hold
    :class:`RawLabel` items.
    """

    def __init__(self, doc: dict):
        self.__dict__.update(doc)
        if "_id" in doc:
            self.id = str(doc["_id"])
        for name in ("detections", "keypoints", "polylines"):
            if name in doc:
                setattr(self, name, [RawLabel(d) for d in doc[name] or []])

    def __getattr__(self, name):  # only called for attributes the label lacks
        if name.startswith("__"):
            raise AttributeError(name)
        return None


@dataclass
class VideoLabels:
    """The frames of one video as read from a collection.

    Attributes:
        sample_id: the video sample's id
        name: its name (see :func:`video_names`)
        filepath: the video file
        width, height: frame size in pixels (the metadata's)
        num_frames: the video's frame count from its metadata (0 if unknown)
        frame_numbers: the frame numbers that have a frame document, ascending
        frame_ids: their frame ids
        labels: ``{field: [value per frame document]}``: labels as
            :class:`RawLabel`, other values (counts) as stored, None where unset
    """

    sample_id: str
    name: str
    filepath: str
    width: int
    height: int
    num_frames: int
    frame_numbers: list[int]
    frame_ids: list[str]
    labels: dict[str, list] = dataclass_field(default_factory=dict)


#: the sample field holding a video's benchmark name (written by the importers of :mod:`fiftyone_posetrack.fo.io`)
SEQUENCE_FIELD = "sequence"


def video_names(filepaths, sequences=None) -> list[str]:
    """The videos' names in reports and exported files, unique within the collection.

    Each is :func:`fiftyone_posetrack.formats.paths.video_name` (the
    ``sequence`` field, else the file name without extension; ``video.*``
    files take their folder's name); repeated names get ``#2``, ``#3``, ...
    and ``OVERALL`` is reserved.
    """
    sequences = sequences if sequences is not None else [None] * len(filepaths)
    return unique_names([video_name(p, s) for p, s in zip(filepaths, sequences)])


def matched_label_ids(videos: Iterable[VideoLabels], field: str, attr: str, targets: set) -> list[str]:
    """The ids of the ``fo.Detections`` labels of ``field`` whose attribute ``attr`` is in ``targets``.

    E.g. the predictions an evaluation matched to some ground-truth boxes:
    ``matched_label_ids(videos, "pred_detections", "track_eval_id", gt_ids)``.
    """
    return [
        d.id
        for video in videos
        for dets in video.labels[field]
        for d in (dets.detections if dets is not None else [])
        if getattr(d, attr) in targets
    ]


def collection_video_names(samples) -> list[str]:
    """:func:`video_names` of a collection's videos, in collection order."""
    _, filepaths, _, sequences = _sample_values(samples)
    return video_names(filepaths, sequences)


def _sample_values(samples) -> tuple[list, list, list, list]:
    paths = ["id", "filepath", "metadata"]
    has_seq = samples.has_sample_field(SEQUENCE_FIELD)
    values = samples.values(paths + ([SEQUENCE_FIELD] if has_seq else []), _raw=True)
    seqs = values[3] if has_seq else [None] * len(values[0])
    return [str(i) for i in values[0]], values[1], values[2], seqs


def _direct(samples) -> bool:
    """Whether the collection's frames are its dataset's frame documents, unfiltered."""
    if isinstance(samples, fo.Dataset):
        return True
    if getattr(samples, "_is_clips", False) or getattr(samples, "_is_frames", False):
        return False
    return not samples._needs_frames()


def read_videos(samples, fields: Iterable[str | None]) -> list[VideoLabels]:
    """Reads the frame labels of ``fields`` of every video, one video at a time.

    Datasets and views that do not change frame labels (selections, matches,
    sorts of samples) are read by indexed cursor (:func:`frame_documents`);
    views that filter frame labels are read per video through the view, so
    their filters apply (filtered labels stay filtered). Labels are
    :class:`RawLabel` objects.

    Raises:
        BadInputError: for a video without metadata (frame size)
    """
    fields = [f for f in dict.fromkeys(fields) if f]
    ids, filepaths, metadata, sequences = _sample_values(samples)
    names = video_names(filepaths, sequences)
    direct = _direct(samples)
    out = []
    for sid, path, md, name in zip(ids, filepaths, metadata, names):
        md = md or {}
        if not md.get("frame_width") or not md.get("frame_height"):
            raise BadInputError(
                f"video {path} (sample {sid}) has no metadata with its frame size; "
                "run fiftyone_posetrack.fo.dataset.ensure_metadata() first"
            )
        if direct:
            docs = list(frame_documents(samples._dataset, sid, fields))
            numbers = [d["frame_number"] for d in docs]
            frame_ids = [d["_id"] for d in docs]
            columns = [[d.get(f) for d in docs] for f in fields]
        else:
            paths = ["frames.id", "frames.frame_number"] + [f"frames.{f}" for f in fields]
            values = samples.select(sid).values(paths, _raw=True)
            frame_ids, numbers = values[0][0] or [], values[1][0] or []
            columns = [v[0] or [] for v in values[2:]]
        out.append(
            VideoLabels(
                sample_id=sid,
                name=name,
                filepath=path,
                width=int(md["frame_width"]),
                height=int(md["frame_height"]),
                num_frames=int(md.get("total_frame_count") or 0),
                frame_numbers=[int(n) for n in numbers],
                frame_ids=[str(f) for f in frame_ids],
                labels={f: [RawLabel(v) if isinstance(v, dict) else v for v in col] for f, col in zip(fields, columns)},
            )
        )
    return out
