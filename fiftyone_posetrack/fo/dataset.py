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
``frames.gt_ignore``         fo.Polylines     ignore regions of PoseTrack ground
                                              truth (:data:`IGNORE_REGIONS_FIELD`),
                                              the evaluations' ``ignore_field``
``frames.pred_detections``   fo.Detections    tracked person boxes, ``index`` =
                                              track id, ``confidence``
``frames.pred_keypoints``    fo.Keypoints     poses of the tracked boxes, same
                                              ``index``, per-joint ``confidence``
===========================  ===============  =====================================
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Mapping

import fiftyone as fo
import numpy as np

from fiftyone_posetrack.formats import mot
from fiftyone_posetrack.fo.labels import write_frame_labels
from fiftyone_posetrack.fo.posetrack import posetrack_frame_labels
from fiftyone_posetrack.formats.posetrack import PoseTrackVideo
from fiftyone_posetrack.skeleton import fiftyone_skeleton
from fiftyone_posetrack.types import BadInputError

logger = logging.getLogger(__name__)

#: The frame field (``fo.Polylines``) that PoseTrack imports write ignore regions to.
IGNORE_REGIONS_FIELD = "gt_ignore"

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

__all__ = [
    "IGNORE_REGIONS_FIELD",
    "VIDEO_EXTENSIONS",
    "find_videos",
    "get_or_create_dataset",
    "add_videos",
    "ensure_metadata",
    "import_mot_ground_truth",
    "import_posetrack_keypoints",
    "check_import_fields",
    "mot_detections",
    "check_mot_rows",
    "forget_run_status",
    "posetrack_labels",
    "posetrack_field_types",
    "apply_posetrack_labels",
    "posetrack_frame_labels",
    "write_posetrack_labels",
    "load_synth",
]


def find_videos(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Expands files and directories into a sorted list of video files, each file once.

    Directories are walked (recursively, following symlinked folders once)
    by literal names, so names with glob characters (``[``, ``*``) work;
    extensions match case-insensitively (``CLIP.MP4``). Paths naming the same
    file (a symlink beside its target, hard links, ``a/../a``) are one video:
    the real file's path is kept, else the first in sorted order.

    Raises:
        FileNotFoundError: for a path that does not exist
        BadInputError: when no video file is found, or a path holds a NUL byte
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fsdecode(os.fspath(p)) for p in paths]
    found = []
    for path in paths:
        if "\x00" in path:
            raise BadInputError(f"video path {path!r} contains a NUL byte (\\x00), which no file or folder name can hold")
        if os.path.isdir(path):
            found.extend(_walk_videos(path))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    by_file: dict[tuple[int, int], str] = {}
    for path in sorted({os.path.abspath(p) for p in found}):
        st = os.stat(path)
        key = (st.st_dev, st.st_ino)
        if key not in by_file or (os.path.islink(by_file[key]) and not os.path.islink(path)):
            by_file[key] = path
    found = sorted(by_file.values())
    if not found:
        raise BadInputError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}, any case) found in {paths}")
    return found


def _walk_videos(root: str) -> list[str]:
    out, seen = [], set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlinked folder seen already (or a link cycle)
            dirs[:] = []
            continue
        seen.add(real)
        out.extend(os.path.join(folder, n) for n in names if n.lower().endswith(VIDEO_EXTENSIONS))
    return out


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
    """Fills ``metadata`` of video samples (size, fps, frame count) as labels are normalised with it.

    The frame size is the *displayed* one (a file's rotation metadata
    applied, as decoding and the App apply it), and the metadata records the
    file's ``rotation`` and ``fingerprint`` (see
    :mod:`fiftyone_posetrack.fo.geometry`), against which
    :func:`~fiftyone_posetrack.fo.geometry.check_video_file` detects a file
    replaced or edited later. FiftyOne's ffprobe-based ``compute_metadata`` is
    used for the mime type, frame rate and duration when ffprobe exists.

    Samples that have metadata without a fingerprint (computed by FiftyOne)
    are checked against their file: when they agree they get the fingerprint;
    a frame size given unrotated for a rotated file is corrected; any other
    difference (the file changed since) is refused unless ``overwrite``.

    Args:
        samples: a video collection
        overwrite: recompute the metadata of every sample

    Raises:
        BadInputError: naming the videos that cannot be decoded
        VideoChangedError: naming the videos whose file differs from their
            metadata (pass ``overwrite=True`` to recompute it)
    """
    import shutil

    from fiftyone_posetrack.fo.geometry import VideoChangedError, metadata_problems, video_metadata

    if shutil.which("ffprobe"):
        samples.compute_metadata(overwrite=overwrite, progress=False)
    bad, changed = [], []
    for sample in samples.select_fields("metadata"):
        md = sample.metadata
        if md is not None and getattr(md, "fingerprint", None) and not overwrite:
            continue
        try:
            if md is not None and md.frame_width and not overwrite:
                problems = [p for ps in metadata_problems(sample.filepath, md) for p in ps]
                if [p for p in problems if "rotation" not in p]:
                    changed.append(f"{sample.filepath}: " + "; ".join(problems))
                    continue
            sample.metadata = video_metadata(sample.filepath, base=md)
        except (BadInputError, FileNotFoundError) as e:
            bad.append(str(e))
            continue
        sample.save()
    if bad:
        raise BadInputError("cannot read video metadata: " + "; ".join(bad))
    if changed:
        raise VideoChangedError(
            "video file(s) changed since their metadata was computed: " + " | ".join(changed)
            + "; pass overwrite=True to recompute their metadata (and recompute or re-import their labels)"
        )


def add_videos(
    dataset: fo.Dataset, paths: str | os.PathLike | Iterable[str | os.PathLike]
) -> list[str]:
    """Adds video files (or directories of them) to a dataset, once each.

    Videos already in the dataset (the same file, by any path: a symlink to a
    sample's file is that sample) are not added again.
    The metadata of every new video is computed before any sample is added
    (:func:`~fiftyone_posetrack.fo.geometry.video_metadata`: decodable, not a
    still image under a video name, constant frame rate, header frame count =
    frames in the file), so one bad file refuses the whole call and the
    dataset is left as it was; the samples are added with that metadata.

    Returns:
        the ids of the samples for ``paths``, in order (existing and new)

    Raises:
        FileNotFoundError, BadInputError: naming every bad file
    """
    files = find_videos(paths)
    existing = dict(zip(*dataset.values(["filepath", "id"]))) if len(dataset) else {}
    by_file = {_file_key(p): p for p in existing if os.path.exists(p)}
    # a file already in the dataset under another path (a symlink, a hard link) is that sample
    files = [by_file.get(_file_key(p), p) for p in files]
    new = [p for p in dict.fromkeys(files) if p not in existing]
    metadata, bad = {}, []
    for path in new:  # refuse bad input before touching the dataset
        try:
            metadata[path] = _new_metadata(path)
        except (BadInputError, FileNotFoundError) as e:
            bad.append(str(e))
    if bad:
        raise BadInputError(f"cannot add {len(bad)} of {len(new)} new video(s), none was added: " + " | ".join(bad))
    if new:
        samples = [fo.Sample(filepath=p, metadata=metadata[p]) for p in new]
        try:
            dataset.add_samples(samples, progress=False)
        except BaseException:
            added = [s.id for s in samples if s.id is not None]
            if added:
                dataset.delete_samples(added)
            raise
    ids = dict(zip(*dataset.values(["filepath", "id"])))
    return [ids[p] for p in files]


def _new_metadata(path: str) -> fo.VideoMetadata:
    """The metadata a new sample of ``path`` gets (what :func:`ensure_metadata` computes)."""
    import shutil

    from fiftyone_posetrack.fo.geometry import video_metadata

    base = None
    if shutil.which("ffprobe"):
        try:
            base = fo.VideoMetadata.build_for(path)
        except Exception:  # noqa: BLE001 - ffprobe's view is optional (mime type, duration); ours decides
            base = None
    return video_metadata(path, base=base)


def _file_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _frame_size(sample: fo.Sample) -> tuple[int, int]:
    md = sample.metadata
    if md is None or not md.frame_width or not md.frame_height:
        raise BadInputError(f"sample {sample.id} ({sample.filepath}) has no video metadata")
    return int(md.frame_width), int(md.frame_height)


def check_import_fields(dataset: fo.Dataset, fields: Mapping[str, type], overwrite_fields=(), what="import") -> list[str]:
    """The label-safety check of imports: refuses to write over a run's labels unless named.

    A frame field that a pose-tracking run or a stage wrote (a run record of
    this package with a status field lists it, or samples carry its
    ``<field>_status``) and that holds labels is refused unless
    ``overwrite_fields`` names it: importing ground truth into
    ``pred_detections`` would replace the predictions while their status
    stays ``done``. Fields written by imports, or by no recorded run, may be
    imported into again (re-importing ground truth). A field that exists with
    another label type is always refused.

    Args:
        dataset: the video dataset
        fields: ``{frame field: label class}`` the import writes
        overwrite_fields: fields the caller allows to be replaced
        what: the import, for the message

    Returns:
        the status fields of the runs whose labels the import replaces (named
        in ``overwrite_fields``); their videos are no longer ``done`` once
        imported into (see :func:`forget_run_status`)

    Raises:
        BadInputError: naming the field, the run that wrote it, and the way out
    """
    from fiftyone_posetrack.fo import runs as fruns

    schema = dataset.get_frame_field_schema() or {}
    sample_schema = dataset.get_field_schema()
    overwrite_fields = tuple(overwrite_fields or ())
    replaced = []
    for name, cls in fields.items():
        have = schema.get(name)
        if have is not None and getattr(have, "document_type", None) is not cls:
            kind = getattr(have, "document_type", None) or type(have)
            raise BadInputError(
                f"{what}: frame field {name!r} exists with type {kind.__name__}, not {cls.__name__}; "
                "choose another field"
            )
        if have is None or dataset._frame_collection.find_one({name: {"$ne": None}}, {"_id": 1}) is None:
            continue
        jobs = {k: c for k, c in fruns.writers_of_field(dataset, name).items() if c.get("status_field")}
        status = {c["status_field"] for c in jobs.values()}
        own = f"{name}_status"
        if own in sample_schema and dataset._sample_collection.find_one({own: {"$ne": None}}, {"_id": 1}):
            status.add(own)
        if not status:
            continue
        if name in overwrite_fields:
            replaced.extend(sorted(status - set(replaced)))
            continue
        by = (
            f"run {sorted(jobs)[-1]!r} ({jobs[sorted(jobs)[-1]].get('job')}) wrote them"
            if jobs
            else f"a run wrote them (samples carry {own!r})"
        )
        raise BadInputError(
            f"{what}: frame field {name!r} holds labels that {by}; importing would replace them while "
            f"their status stays 'done'; import into another field (e.g. 'gt_detections' / 'gt_keypoints'), "
            f"or pass overwrite_fields=[{name!r}] (--overwrite-field {name}) to replace them"
        )
    return replaced


def forget_run_status(dataset: fo.Dataset, sample_ids: list[str], status_fields: list[str]) -> None:
    """Clears the status, claim and run of ``status_fields`` on videos whose labels an import replaced."""
    from fiftyone_posetrack.fo.runs import run_field

    if not sample_ids or not status_fields:
        return
    schema = dataset.get_field_schema()
    unset = {}
    for status in status_fields:
        first = status[: -len("_status")] if status.endswith("_status") else status
        for name in (status, f"{first}_claimed_at", run_field(status)):
            if name in schema:
                unset[name] = ""
    if unset:
        from bson import ObjectId

        dataset._sample_collection.update_many({"_id": {"$in": [ObjectId(i) for i in sample_ids]}}, {"$unset": unset})
        dataset.reload()


def check_mot_rows(data: np.ndarray, width: int, height: int, n_frames: int | None, source: str) -> None:
    """Refuses MOT rows that do not fit a video of ``width`` x ``height`` pixels and ``n_frames`` frames.

    Every frame must be a frame of the video and every box must overlap the
    frame (boxes partly outside are normal in MOT files; a box entirely
    outside is a broken file or one made for another video).

    Raises:
        BadInputError: naming ``source``, the frame, the id and the box
    """
    if len(data) and n_frames and data[:, mot.FRAME].max() > n_frames:
        raise BadInputError(
            f"{source}: has frame {int(data[:, mot.FRAME].max())} but the video has {n_frames} frames"
        )
    x, y, w, h = (data[:, c] for c in (mot.X, mot.Y, mot.W, mot.H))
    outside = (x > width) | (y > height) | (x + w < 0) | (y + h < 0)
    if outside.any():
        r = data[int(np.flatnonzero(outside)[0])]
        raise BadInputError(
            f"{source}: the box of id {int(r[mot.ID])} at frame {int(r[mot.FRAME])} "
            f"([x, y, w, h] = [{r[mot.X]:g}, {r[mot.Y]:g}, {r[mot.W]:g}, {r[mot.H]:g}] pixels) lies entirely "
            f"outside the {width}x{height} video" + (f" (and {int(outside.sum()) - 1} more)" if outside.sum() > 1 else "")
        )


def mot_detections(
    data: np.ndarray, width: int, height: int, n_frames: int | None, source: str, label: str = "person"
) -> dict[int, fo.Detections]:
    """MOT ground-truth rows as ``{frame: fo.Detections}`` for a video of ``width`` x ``height`` pixels.

    Validates before anything is written: every frame must be a frame of the
    video (``<= n_frames``) and every box must overlap the frame.

    Raises:
        BadInputError: naming ``source``, the frame, the id and the box
    """
    check_mot_rows(data, width, height, n_frames, source)
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
    return per_frame


def import_mot_ground_truth(
    sample: fo.Sample,
    gt_path: str | os.PathLike,
    field: str = "gt_detections",
    label: str = "person",
    overwrite_fields=(),
) -> int:
    """Imports a MOT ``gt.txt`` as frame-level ``fo.Detections`` with ``index`` = track id.

    Every MOT column is kept: ``visibility`` (-1 = unknown), ``mot_conf`` (0 marks
    a box MOTChallenge does not evaluate) and ``mot_class`` (1 pedestrian, -1
    unknown, 2/7/8/12 distractors, others non-persons), so that evaluation in
    FiftyOne equals evaluation of the file. Rows that are not evaluated as
    persons (another class, or ``mot_conf`` 0) also get ``ignore=True``, for
    filtering in the App.

    The whole file is read and checked (:func:`~fiftyone_posetrack.formats.mot.read_mot`,
    :func:`mot_detections`, :func:`check_import_fields`) before anything is
    written: a refused file leaves the sample as it was.

    Args:
        sample: the video sample (with metadata)
        gt_path: the ``gt.txt``
        field: the frame field
        label: the label of the boxes
        overwrite_fields: fields that may be replaced although a run wrote
            them (see :func:`check_import_fields`)

    Returns:
        the number of boxes imported
    """
    width, height = _frame_size(sample)
    n_frames = sample.metadata.total_frame_count
    data = mot.read_mot(gt_path)
    per_frame = mot_detections(data, width, height, n_frames, f"{os.fspath(gt_path)} (video {sample.filepath})", label)
    dataset = sample._dataset
    replaced = check_import_fields(dataset, {field: fo.Detections}, overwrite_fields, "MOT import")
    write_frame_labels(dataset, {field: {sample.id: per_frame}})
    forget_run_status(dataset, [sample.id], replaced)
    return len(data)


def posetrack_labels(
    video: PoseTrackVideo,
    width: int,
    height: int,
    n_frames: int | None,
    source: str | os.PathLike,
    keypoints_field: str = "gt_keypoints",
    detections_field: str | None = None,
    regions_field: str | None = IGNORE_REGIONS_FIELD,
    label: str = "person",
) -> tuple[dict[str, dict[int, fo.Label]], fo.KeypointSkeleton | None]:
    """A PoseTrack18 video's labels for a video of ``width`` x ``height`` pixels and ``n_frames`` frames, unwritten.

    Returns:
        ``({field: {frame: label}}, skeleton)``: the labels of
        :func:`posetrack_frame_labels` per field, and the field's skeleton when
        the joints or edges are not COCO-17's (else None)

    Raises:
        BadInputError: if the file has more frames than the video
    """
    from fiftyone_posetrack.skeleton import COCO_EDGES, COCO_KEYPOINTS

    last = max((fr.frame_index + 1 for fr in video.frames), default=0)
    if n_frames and last > n_frames:
        raise BadInputError(f"{source}: has frame {last} but the video has {n_frames} frames")
    kp_frames, det_frames, region_frames = posetrack_frame_labels(video, width, height, label)
    skeleton = None
    if tuple(video.keypoint_names) != tuple(COCO_KEYPOINTS) or [tuple(e) for e in video.skeleton] != [
        tuple(e) for e in COCO_EDGES
    ]:
        skeleton = fo.KeypointSkeleton(labels=list(video.keypoint_names), edges=[list(e) for e in video.skeleton])
    fields = {keypoints_field: kp_frames}
    if detections_field:
        fields[detections_field] = det_frames
    if regions_field and region_frames:
        fields[regions_field] = region_frames
    return fields, skeleton


#: the label class of each PoseTrack field kind
POSETRACK_FIELD_TYPES = {"keypoints": fo.Keypoints, "detections": fo.Detections, "regions": fo.Polylines}


def posetrack_field_types(keypoints_field, detections_field=None, regions_field=None) -> dict[str, type]:
    """``{field: label class}`` of the fields a PoseTrack import writes (for :func:`check_import_fields`)."""
    kinds = (("keypoints", keypoints_field), ("detections", detections_field), ("regions", regions_field))
    return {f: POSETRACK_FIELD_TYPES[k] for k, f in kinds if f}


def apply_posetrack_labels(dataset, sample_id: str, labels: dict, skeleton, keypoints_field: str) -> None:
    """Writes labels from :func:`posetrack_labels` onto a sample (and the field's skeleton)."""
    if skeleton is not None:
        dataset.skeletons = dict(dataset.skeletons, **{keypoints_field: skeleton})
        dataset.save()
    write_frame_labels(dataset, {f: {sample_id: frames} for f, frames in labels.items()})


def write_posetrack_labels(
    sample: fo.Sample,
    video: PoseTrackVideo,
    source: str | os.PathLike,
    keypoints_field: str = "gt_keypoints",
    detections_field: str | None = None,
    regions_field: str | None = IGNORE_REGIONS_FIELD,
    label: str = "person",
    overwrite_fields=(),
) -> int:
    """Writes a PoseTrack18 video's annotations onto a video sample.

    The labels are those of :func:`posetrack_frame_labels`. Joint names or
    edges other than COCO-17's are stored as the field's skeleton
    (``dataset.skeletons[keypoints_field]``), never silently reordered.
    Everything is checked (:func:`posetrack_labels`, :func:`check_import_fields`)
    before anything is written.

    Args:
        sample: the video sample (with metadata)
        video: the PoseTrack video
        source: the file ``video`` came from, for error messages
        keypoints_field: the frame field for the poses
        detections_field: the frame field for the boxes, or None
        regions_field: the frame field (``fo.Polylines``) for ignore regions, or None
        label: the label of the people
        overwrite_fields: fields that may be replaced although a run wrote them

    Returns:
        the number of poses written

    Raises:
        BadInputError: if the file has more frames than the video, or a field is refused
    """
    width, height = _frame_size(sample)
    labels, skeleton = posetrack_labels(
        video, width, height, sample.metadata.total_frame_count, f"{os.fspath(source)} (video {sample.filepath})",
        keypoints_field, detections_field, regions_field, label,
    )  # fmt: skip
    dataset = sample._dataset
    replaced = check_import_fields(
        dataset, posetrack_field_types(keypoints_field, detections_field, regions_field), overwrite_fields,
        "PoseTrack import",
    )  # fmt: skip
    apply_posetrack_labels(dataset, sample.id, labels, skeleton, keypoints_field)
    forget_run_status(dataset, [sample.id], replaced)
    return sum(len(fr.track_ids) for fr in video.frames if fr.is_labeled)


def import_posetrack_keypoints(
    sample: fo.Sample,
    json_path: str | os.PathLike,
    field: str = "gt_keypoints",
    label: str = "person",
    regions_field: str | None = IGNORE_REGIONS_FIELD,
    overwrite_fields=(),
) -> int:
    """Imports a PoseTrack18 JSON of one video as frame-level ``fo.Keypoints`` with ``index`` = track id.

    Frames are matched by their ``frame_index`` (frame 1 = index 0). The labels
    are those of :func:`posetrack_frame_labels` (NaN for joints of visibility 0,
    ``visibility`` and ``bbox_head`` attributes), the ignore regions go to
    ``regions_field`` and joint names other than COCO-17's become the field's
    skeleton (see :func:`write_posetrack_labels`). For files of several videos,
    boxes, or videos encoded from PoseTrack's images use
    :func:`fiftyone_posetrack.fo.io.import_posetrack`.

    Returns:
        the number of poses imported
    """
    from fiftyone_posetrack.formats.posetrack import read_posetrack_json

    video = read_posetrack_json(json_path)
    return write_posetrack_labels(sample, video, json_path, field, None, regions_field, label, overwrite_fields)


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
