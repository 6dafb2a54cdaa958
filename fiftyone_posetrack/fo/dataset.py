"""Video datasets: creation from files, metadata, skeleton and ground-truth import.

Field-naming convention (see the README):

===========================  ===============  =====================================
field                        type             content
===========================  ===============  =====================================
``frames.gt_detections``     fo.Detections    ground-truth person boxes,
                                              ``index`` = ground-truth track id,
                                              attribute ``visibility`` in [0, 1]
``frames.gt_keypoints``      fo.Keypoints     ground-truth COCO-17 poses, same
                                              ``index``; joints not visible are NaN
``frames.pred_detections``   fo.Detections    tracked person boxes, ``index`` =
                                              track id, ``confidence``
``frames.pred_keypoints``    fo.Keypoints     poses of the tracked boxes, same
                                              ``index``, per-joint ``confidence``
===========================  ===============  =====================================
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Iterable

import fiftyone as fo
import numpy as np

from fiftyone_posetrack.formats import mot
from fiftyone_posetrack.fo.labels import write_frame_labels
from fiftyone_posetrack.skeleton import fiftyone_skeleton
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import probe_video

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

__all__ = [
    "VIDEO_EXTENSIONS",
    "find_videos",
    "get_or_create_dataset",
    "add_videos",
    "ensure_metadata",
    "import_mot_ground_truth",
    "import_posetrack_keypoints",
    "load_synth",
]


def find_videos(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Expands files and directories into a sorted list of video files.

    Raises:
        FileNotFoundError: for a path that does not exist
        BadInputError: when no video file is found
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            for ext in VIDEO_EXTENSIONS:
                found.extend(glob.glob(os.path.join(path, "**", f"*{ext}"), recursive=True))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    found = sorted({os.path.abspath(p) for p in found})
    if not found:
        raise BadInputError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) found in {list(paths)}")
    return found


def get_or_create_dataset(name: str, persistent: bool = True) -> fo.Dataset:
    """Loads the dataset ``name`` or creates it as a video dataset with the COCO-17 skeleton.

    Raises:
        BadInputError: if an existing dataset of that name is not a video dataset
    """
    if fo.dataset_exists(name):
        dataset = fo.load_dataset(name)
        if dataset.media_type not in (None, "video"):
            raise BadInputError(f"dataset {name!r} holds {dataset.media_type}s, not videos")
    else:
        dataset = fo.Dataset(name, persistent=persistent)
    if dataset.default_skeleton is None:
        dataset.default_skeleton = fiftyone_skeleton()
        dataset.save()
    return dataset


def ensure_metadata(samples: fo.core.collections.SampleCollection, overwrite: bool = False) -> None:
    """Fills ``metadata`` of video samples (size, fps, frame count).

    Uses FiftyOne's ffprobe-based ``compute_metadata`` when ffprobe exists, and
    OpenCV otherwise (FiftyOne silently leaves ``None`` without ffprobe).

    Raises:
        BadInputError: naming the videos that cannot be decoded
    """
    import shutil

    if shutil.which("ffprobe"):
        samples.compute_metadata(overwrite=overwrite, progress=False)
        overwrite = False
    todo = samples if overwrite else samples.exists("metadata", False)
    bad = []
    for sample in todo:
        try:
            info = probe_video(sample.filepath)
        except (BadInputError, FileNotFoundError) as e:
            bad.append(str(e))
            continue
        sample.metadata = fo.VideoMetadata(
            size_bytes=os.path.getsize(sample.filepath),
            mime_type="video/mp4",
            frame_width=info.width,
            frame_height=info.height,
            frame_rate=info.fps,
            total_frame_count=info.frame_count,
            duration=info.duration,
            encoding_str=info.codec,
        )
        sample.save()
    if bad:
        raise BadInputError("cannot read video metadata: " + "; ".join(bad))


def add_videos(
    dataset: fo.Dataset, paths: str | os.PathLike | Iterable[str | os.PathLike]
) -> list[str]:
    """Adds video files (or directories of them) to a dataset, once each.

    Videos already in the dataset (same absolute path) are not added again.
    Every new video is probed first, so an unreadable file is refused before
    the dataset is changed.

    Returns:
        the ids of the samples for ``paths``, in order (existing and new)

    Raises:
        FileNotFoundError, BadInputError: naming the bad file
    """
    files = find_videos(paths)
    for path in files:
        probe_video(path)  # refuse corrupt input before touching the dataset
    existing = dict(zip(*dataset.values(["filepath", "id"]))) if len(dataset) else {}
    new = [fo.Sample(filepath=p) for p in files if p not in existing]
    if new:
        dataset.add_samples(new, progress=False)
        ensure_metadata(dataset.select([s.id for s in new]))
    ids = dict(zip(*dataset.values(["filepath", "id"])))
    return [ids[p] for p in files]


def _frame_size(sample: fo.Sample) -> tuple[int, int]:
    md = sample.metadata
    if md is None or not md.frame_width or not md.frame_height:
        raise BadInputError(f"sample {sample.id} ({sample.filepath}) has no video metadata")
    return int(md.frame_width), int(md.frame_height)


def import_mot_ground_truth(
    sample: fo.Sample, gt_path: str | os.PathLike, field: str = "gt_detections", label: str = "person"
) -> int:
    """Imports a MOT ``gt.txt`` as frame-level ``fo.Detections`` with ``index`` = track id.

    Every MOT column is kept: ``visibility`` (-1 = unknown), ``mot_conf`` (0 marks
    a box MOTChallenge does not evaluate) and ``mot_class`` (1 pedestrian, -1
    unknown, 2/7/8/12 distractors, others non-persons), so that evaluation in
    FiftyOne equals evaluation of the file. Rows that are not evaluated as
    persons (another class, or ``mot_conf`` 0) also get ``ignore=True``, for
    filtering in the App.

    Returns:
        the number of boxes imported
    """
    data = mot.read_mot(gt_path)
    width, height = _frame_size(sample)
    n_frames = sample.metadata.total_frame_count
    if len(data) and n_frames and data[:, mot.FRAME].max() > n_frames:
        raise BadInputError(
            f"{gt_path}: has frame {int(data[:, mot.FRAME].max())} but the video "
            f"{sample.filepath} has {n_frames} frames"
        )
    scale = np.array([width, height, width, height], dtype=np.float64)
    per_frame = {}
    for frame, rows in mot.split_frames(data).items():
        rel = rows[:, mot.X : mot.H + 1] / scale
        per_frame[frame] = fo.Detections(
            detections=[
                fo.Detection(
                    label=label,
                    bounding_box=box.tolist(),
                    index=int(r[mot.ID]),
                    visibility=float(r[mot.VIS]),
                    mot_conf=float(r[mot.CONF]),
                    mot_class=int(r[mot.CLASS]),
                    ignore=bool(r[mot.CLASS] not in (1, -1) or r[mot.CONF] == 0),
                )
                for box, r in zip(rel, rows)
            ]
        )
    write_frame_labels(sample._dataset, {field: {sample.id: per_frame}})
    return len(data)


def import_posetrack_keypoints(
    sample: fo.Sample,
    json_path: str | os.PathLike,
    field: str = "gt_keypoints",
    label: str = "person",
    regions_field: str = "gt_ignore_regions",
) -> int:
    """Imports a PoseTrack18 JSON as frame-level ``fo.Keypoints`` with ``index`` = track id.

    Frames are matched by their position in the JSON (frame 1 = the first image).
    Everything the PoseTrack evaluation needs is kept:

    - joints whose visibility flag is 0 (not labelled, or occluded in our
      synthetic videos) are NaN, FiftyOne's missing point, as its COCO
      importer does; the flags are kept as the ``visibility`` attribute;
    - each pose's head box is the ``bbox_head`` attribute (relative
      ``[x, y, w, h]``), PCKh's scale;
    - ignore regions become ``regions_field`` (closed ``fo.Polylines``);
    - joint names other than COCO-17's are stored as the field's skeleton
      (``dataset.skeletons[field]``), never silently reordered.

    Returns:
        the number of poses imported
    """
    from fiftyone_posetrack.formats.posetrack import read_posetrack_json
    from fiftyone_posetrack.skeleton import COCO_KEYPOINTS

    video = read_posetrack_json(json_path)
    width, height = _frame_size(sample)
    n_frames = sample.metadata.total_frame_count
    if n_frames and len(video.frames) > n_frames:
        raise BadInputError(
            f"{json_path}: has {len(video.frames)} frames but the video "
            f"{sample.filepath} has {n_frames}"
        )
    scale = np.array([width, height], dtype=np.float64)
    poses, regions, count = {}, {}, 0
    for frame in video.frames:
        number = frame.frame_index + 1
        if frame.ignore_regions:
            regions[number] = fo.Polylines(
                polylines=[
                    fo.Polyline(label="ignore", points=[(np.asarray(r, dtype=np.float64) / scale).tolist()], closed=True, filled=True)
                    for r in frame.ignore_regions
                ]
            )
        if not frame.is_labeled:
            continue
        pts = frame.keypoints / scale
        pts[frame.visibility == 0] = np.nan
        heads = [None] * len(pts)
        if frame.head_boxes is not None:
            rel = np.asarray(frame.head_boxes, dtype=np.float64) / np.tile(scale, 2)
            rel[:, 2:] -= rel[:, :2]
            heads = [h.tolist() if np.isfinite(h).all() else None for h in rel]
        poses[number] = fo.Keypoints(
            keypoints=[
                fo.Keypoint(
                    label=label,
                    points=[(float(x), float(y)) for x, y in p],
                    index=int(tid),
                    visibility=[int(v) for v in vis],
                    bbox_head=head,
                )
                for p, tid, vis, head in zip(pts, frame.track_ids, frame.visibility, heads)
            ]
        )
        count += len(frame.track_ids)
    dataset = sample._dataset
    if tuple(video.keypoint_names) != COCO_KEYPOINTS:
        dataset.skeletons = dict(
            dataset.skeletons,
            **{field: fo.KeypointSkeleton(labels=list(video.keypoint_names), edges=[list(e) for e in video.skeleton])},
        )
        dataset.save()
    fields = {field: {sample.id: poses}}
    if regions:
        fields[regions_field] = {sample.id: regions}
    write_frame_labels(dataset, fields)
    return count


def load_synth(synth_dir: str | os.PathLike, dataset_name: str, overwrite: bool = False) -> fo.Dataset:
    """Loads a ``posetrack synth`` output folder into a (persistent) video dataset.

    The video becomes a sample with ``frames.gt_detections`` (from ``gt/gt.txt``)
    and ``frames.gt_keypoints`` (from ``posetrack.json``).

    Args:
        synth_dir: the folder written by ``posetrack synth``
        dataset_name: the dataset to create or add to
        overwrite: delete an existing dataset of that name first
    """
    synth_dir = os.fspath(synth_dir)
    video = os.path.join(synth_dir, "video.mp4")
    for path in (video, os.path.join(synth_dir, "gt", "gt.txt"), os.path.join(synth_dir, "posetrack.json")):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"not a `posetrack synth` folder, missing {path}")
    if overwrite and fo.dataset_exists(dataset_name):
        fo.delete_dataset(dataset_name)
    dataset = get_or_create_dataset(dataset_name)
    (sample_id,) = add_videos(dataset, [video])
    sample = dataset[sample_id]
    import_mot_ground_truth(sample, os.path.join(synth_dir, "gt", "gt.txt"))
    import_posetrack_keypoints(sample, os.path.join(synth_dir, "posetrack.json"))
    return dataset
