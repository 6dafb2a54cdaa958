"""Import and export of MOTChallenge and PoseTrack data for FiftyOne video datasets.

Import:

- :func:`import_mot_sequences`: a MOTChallenge folder (``SEQ/img1/*.jpg`` +
  ``SEQ/gt/gt.txt`` + ``SEQ/seqinfo.ini``, optionally ``SEQ/det/det.txt``), or
  sequences holding a ``video.mp4`` (what ``posetrack synth`` writes). Image
  sequences are encoded once to H.264 mp4 files (FiftyOne video samples need
  a video file; browsers play only H.264).
- :func:`import_posetrack`: PoseTrack18 JSON files (one per video, or several
  videos per file) onto existing video samples, or onto videos encoded from
  the images the files name.

Export (one file per video, named after the video, see :func:`video_name`):

- :func:`export_mot`: MOTChallenge text files (``<out>/<name>.txt`` results, or
  ``<out>/<name>/gt/gt.txt`` + ``seqinfo.ini`` ground truth).
- :func:`export_posetrack`: PoseTrack18 JSON files in the challenge's
  submission format (``<out>/<name>.json``).

Sample fields written by the importers: ``sequence`` (the video's name in its
benchmark) and, for PoseTrack, ``posetrack_info`` (``vid_id``, the image
``file_names`` per frame and the ``labeled`` frame numbers), which the exporter
uses to write files that line up with the ground truth.

Coordinates follow the module conventions: files hold pixels, FiftyOne holds
relative ``[x, y, w, h]`` boxes and ``(x, y)`` points; missing joints are NaN in
FiftyOne and ``(0, 0)`` with visibility 0 in PoseTrack files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import fiftyone as fo
import numpy as np

from fiftyone_posetrack.fo.dataset import (
    IGNORE_REGIONS_FIELD,
    forget_run_status,
    add_videos,
    _frame_size,
    apply_posetrack_labels,
    check_import_fields,
    check_mot_rows,
    mot_detections,
    posetrack_field_types,
    posetrack_labels,
)
from fiftyone_posetrack.fo.labels import (
    RawLabel,
    boxes_to_detections,
    check_frame_field,
    frame_documents,
    sample_to_mot,
    write_frame_labels,
)
from fiftyone_posetrack.fo.posetrack import default_file_name, posetrack_frame
from fiftyone_posetrack.fo.posetrack import keypoint_names as _keypoint_names
from fiftyone_posetrack.formats import mot
from fiftyone_posetrack.formats.paths import inside, safe_name
from fiftyone_posetrack.formats.paths import video_name as _video_name
from fiftyone_posetrack.formats.posetrack import (
    POSETRACK_KEYPOINTS,
    PoseTrackVideo,
    read_posetrack_videos,
    write_posetrack_json,
)
from fiftyone_posetrack.skeleton import COCO_KEYPOINTS
from fiftyone_posetrack.types import BadInputError

logger = logging.getLogger(__name__)

__all__ = [
    "SEQUENCE_FIELD",
    "POSETRACK_INFO_FIELD",
    "MotSequence",
    "find_mot_sequences",
    "encode_images",
    "import_mot_sequences",
    "import_posetrack",
    "video_name",
    "export_mot",
    "export_posetrack",
    "keypoint_names",
]

#: sample field holding a video's name in its benchmark (MOT sequence, PoseTrack video)
SEQUENCE_FIELD = "sequence"
#: sample field with the PoseTrack image names and labelled frames of a video
POSETRACK_INFO_FIELD = "posetrack_info"

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


# --------------------------------------------------------------------------- MOTChallenge import


@dataclass
class MotSequence:
    """One MOTChallenge sequence folder.

    Attributes:
        name: the sequence name (``seqinfo.ini``'s ``name``, else the folder
            name), made a safe file name (:func:`~fiftyone_posetrack.formats.paths.safe_name`:
            ``name=../../x`` becomes ``.._.._x``)
        path: the folder
        video: ``<path>/video.mp4`` when it exists
        images: the frame images (``imDir``, default ``img1``), sorted
        gt: ``gt/gt.txt`` when it exists
        det: ``det/det.txt`` when it exists
        fps: ``frameRate`` (None when unknown)
        length: ``seqLength`` (None when unknown)
    """

    name: str
    path: str
    video: str | None = None
    images: list[str] = field(default_factory=list)
    gt: str | None = None
    det: str | None = None
    fps: float | None = None
    length: int | None = None


def _sequence(path: str) -> MotSequence | None:
    """The sequence in folder ``path``, or None when it is not one."""
    info_path = os.path.join(path, "seqinfo.ini")
    info = mot.read_seqinfo(info_path) if os.path.isfile(info_path) else {}
    im_dir = inside(path, info.get("imdir") or "img1", f"{info_path}: imDir")
    video = os.path.join(path, "video.mp4")
    has_video, has_images = os.path.isfile(video), os.path.isdir(im_dir)
    if not (has_video or has_images):
        return None
    images = []
    if has_images:
        images = sorted(
            os.path.join(im_dir, n) for n in os.listdir(im_dir) if n.lower().endswith(_IMAGE_EXTS)
        )

    def number(key, cast):
        try:
            return cast(info[key]) if key in info else None
        except ValueError:
            raise BadInputError(f"{info_path}: {key} must be a number, got {info[key]!r}") from None

    gt, det = os.path.join(path, "gt", "gt.txt"), os.path.join(path, "det", "det.txt")
    return MotSequence(
        name=safe_name(info.get("name") or os.path.basename(os.path.abspath(path)), f"{info_path}: name"),
        path=os.path.abspath(path),
        video=video if has_video else None,
        images=images,
        gt=gt if os.path.isfile(gt) else None,
        det=det if os.path.isfile(det) else None,
        fps=number("framerate", float),
        length=number("seqlength", int),
    )


def find_mot_sequences(root: str | os.PathLike) -> list[MotSequence]:
    """Finds the MOTChallenge sequences in ``root`` (itself a sequence, or up to 3 levels above some).

    A sequence is a folder with a ``video.mp4`` or an image folder (``img1``, or
    ``imDir`` of its ``seqinfo.ini``).

    Raises:
        FileNotFoundError: if ``root`` does not exist
        BadInputError: if no sequence is found
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no such directory: {root}")
    found, level = [], [root]
    for _ in range(4):
        nxt = []
        for folder in level:
            seq = _sequence(folder)
            if seq is not None:
                found.append(seq)
            else:
                nxt.extend(sorted(e.path for e in os.scandir(folder) if e.is_dir()))
        level = nxt
    if not found:
        raise BadInputError(
            f"no MOTChallenge sequence in {root}: expected folders SEQ/ holding img1/*.jpg "
            "(+ gt/gt.txt, seqinfo.ini) or video.mp4"
        )
    return sorted(found, key=lambda s: s.path)


def encode_images(images: list[str], out_path: str | os.PathLike, fps: float) -> str:
    """Encodes image files, in the given order, into an H.264 mp4 (frame ``i`` = ``images[i - 1]``).

    Odd frame sizes are padded by one pixel at the right / bottom (pixel
    coordinates stay valid). The file is written under a temporary name and
    moved into place, so a half-written video never remains.

    Raises:
        BadInputError: if an image cannot be read or the sizes differ
    """
    import cv2

    from fiftyone_posetrack.synth.writer import H264Writer

    if not images:
        raise BadInputError("no images to encode")
    out_path = os.fspath(out_path)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".part.mp4"
    writer, size = None, None
    try:
        for path in images:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise BadInputError(f"cannot read image {path}")
            if size is None:
                size = img.shape[:2]
                h, w = size
                writer = H264Writer(tmp, w + w % 2, h + h % 2, fps)
            elif img.shape[:2] != size:
                raise BadInputError(f"{path} is {img.shape[1]}x{img.shape[0]}, the first image {size[1]}x{size[0]}")
            if img.shape[0] % 2 or img.shape[1] % 2:
                img = cv2.copyMakeBorder(img, 0, img.shape[0] % 2, 0, img.shape[1] % 2, cv2.BORDER_REPLICATE)
            writer.write(img)
        writer.close()
        writer = None
        os.replace(tmp, out_path)
    finally:
        if writer is not None:
            writer.__exit__(RuntimeError, None, None)
        if os.path.exists(tmp):
            os.remove(tmp)
    return out_path


def _default_videos_dir(dataset: fo.Dataset) -> str:
    return os.path.join(fo.config.default_dataset_dir, "posetrack-videos", dataset.name)


def _encoded_video(name: str, images: list[str], fps: float, videos_dir: str) -> str:
    """The mp4 of an image sequence, encoded unless a complete one exists already."""
    from fiftyone_posetrack.video import probe_video

    path = os.path.join(videos_dir, f"{safe_name(name, 'video name')}.mp4")
    if os.path.isfile(path):
        try:
            if probe_video(path).frame_count == len(images):
                return path
        except BadInputError:
            pass
    logger.info("encoding %d images of %s into %s", len(images), name, path)
    return encode_images(images, path, fps)


def _check_sample_fields(dataset: fo.Dataset, fields: dict) -> None:
    """Refuses sample fields an import writes that exist with another type (checked before any write)."""
    schema = dataset.get_field_schema()
    for name, ftype in fields.items():
        if name in schema and not isinstance(schema[name], ftype):
            raise BadInputError(
                f"sample field {name!r} exists as {type(schema[name]).__name__}, but imports write a "
                f"{ftype.__name__} there (the video's name in its benchmark); rename or delete that field first"
            )


def _ensure_sample_field(dataset: fo.Dataset, name: str, ftype, **kwargs) -> None:
    if not dataset.has_sample_field(name):
        dataset.add_sample_field(name, ftype, **kwargs)


def _det_labels(data: np.ndarray, width: int, height: int, n_frames: int, source: str) -> dict[int, fo.Detections]:
    """Public detections (``det.txt`` rows) as untracked ``{frame: fo.Detections}`` with ``confidence``."""
    check_mot_rows(data, width, height, n_frames, source)
    return {
        f: boxes_to_detections(
            np.column_stack([r[:, mot.X : mot.Y + 1], r[:, mot.X : mot.Y + 1] + r[:, mot.W : mot.H + 1]]),
            r[:, mot.CONF],
            width,
            height,
        )
        for f, r in mot.split_frames(data).items()
    }


def _image_size(path: str) -> tuple[int, int]:
    """``(width, height)`` of the video :func:`encode_images` makes from images of this size (odd sizes padded)."""
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise BadInputError(f"cannot read image {path}")
    h, w = img.shape[:2]
    return w + w % 2, h + h % 2


def _geometry(video: str | None, images: list[str], where: str) -> tuple[int, int, int]:
    """``(width, height, frames)`` of a sequence's video, before it is added (or encoded)."""
    from fiftyone_posetrack.fo.geometry import video_metadata

    if video is not None:
        md = video_metadata(video)
        return int(md.frame_width), int(md.frame_height), int(md.total_frame_count)
    if not images:
        raise BadInputError(f"{where}: the image folder holds no images ({', '.join(_IMAGE_EXTS)})")
    return (*_image_size(images[0]), len(images))


def _check_encoded(path: str, size: tuple[int, int], where: str) -> None:
    from fiftyone_posetrack.video import probe_video

    info = probe_video(path)
    if (info.width, info.height) != size:
        raise BadInputError(
            f"{where}: the encoded video {path} is {info.width}x{info.height}, its first image {size[0]}x{size[1]}"
        )


class _Added:
    """Deletes the samples an import added when the import fails after adding them."""

    def __init__(self, dataset: fo.Dataset):
        self.dataset = dataset
        self.before = set(dataset.values("id")) if len(dataset) else set()
        self.created_field = not dataset.has_sample_field(SEQUENCE_FIELD)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if kind is None:
            return False
        try:
            new = [i for i in (self.dataset.values("id") if len(self.dataset) else []) if i not in self.before]
            if new:
                self.dataset.delete_samples(new)
            if self.created_field and self.dataset.has_sample_field(SEQUENCE_FIELD):
                self.dataset.delete_sample_field(SEQUENCE_FIELD)
        except Exception:  # noqa: BLE001 - the import's own error is the one to report
            logger.exception("could not remove the samples of a failed import")
        return False


def _add_all(dataset: fo.Dataset, videos: list[str]) -> list[str]:
    """Adds the videos (all checked before any is added) and returns their sample ids, in order."""
    add_videos(dataset, videos)
    return [add_videos(dataset, [v])[0] for v in videos]


def import_mot_sequences(
    dataset: fo.Dataset,
    root: str | os.PathLike,
    gt_field: str | None = "gt_detections",
    det_field: str | None = None,
    videos_dir: str | os.PathLike | None = None,
    default_fps: float = 30.0,
    overwrite_fields=(),
) -> dict:
    """Imports MOTChallenge sequences as video samples with their ground truth.

    Each sequence becomes one sample (``sequence`` = its name): its
    ``video.mp4``, or its images encoded once to ``<videos_dir>/<name>.mp4``.
    Importing again adds no duplicate samples and reuses encoded videos.

    All or nothing: every file of every sequence is read and checked (the
    MOT files by :func:`~fiftyone_posetrack.formats.mot.read_mot`, frames
    within the video and boxes overlapping it, the videos by
    :func:`~fiftyone_posetrack.fo.geometry.video_metadata`, the fields by
    :func:`~fiftyone_posetrack.fo.dataset.check_import_fields`) before the
    dataset is changed, so a refused import adds no sample, label, field or
    run record.

    Args:
        dataset: a video dataset
        root: a sequence folder, or a folder above sequence folders
            (e.g. ``MOT17/train``)
        gt_field: frame field for ``gt/gt.txt`` (``fo.Detections`` with
            ``index`` = track id, see
            :func:`~fiftyone_posetrack.fo.dataset.import_mot_ground_truth`);
            None skips ground truth
        det_field: frame field for the public detections ``det/det.txt``
            (untracked ``fo.Detections`` with ``confidence``); None skips them
        videos_dir: where encoded videos go (default:
            ``<fo.config.default_dataset_dir>/posetrack-videos/<dataset name>``)
        default_fps: frame rate of image sequences without ``frameRate``
        overwrite_fields: frame fields that may be replaced although a run
            (pose tracking, a stage) wrote them; without it such fields are refused

    Returns:
        ``{"sequences": [names], "sample_ids": [ids], "gt_boxes": n, "det_boxes": n, "run_key": key}``:
        the import is recorded as a run (``posetrack runs DATASET``,
        :func:`fiftyone_posetrack.fo.runs.record_import`); None when no labels were written

    Raises:
        FileNotFoundError, BadInputError: naming the bad folder or file
    """
    from fiftyone_posetrack.formats.paths import check_input_path

    root = check_input_path(root, "MOT sequences folder", kind="dir")
    sequences = find_mot_sequences(root)
    names = [s.name for s in sequences]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInputError(f"{root}: several sequences are named {dupes}; import them separately")
    if gt_field and gt_field == det_field:
        raise BadInputError(f"gt_field and det_field are both {gt_field!r}; give them different fields")
    videos_dir = os.fspath(videos_dir) if videos_dir else _default_videos_dir(dataset)
    plans = []
    for seq in sequences:  # read and check everything before changing the dataset
        if seq.video is None and seq.length is not None and seq.length != len(seq.images):
            raise BadInputError(
                f"{seq.path}: seqinfo.ini says seqLength={seq.length} but the image folder has "
                f"{len(seq.images)} images"
            )
        width, height, n_frames = _geometry(seq.video, seq.images, seq.path)
        where = f"(sequence {seq.name}, {width}x{height}, {n_frames} frames)"
        labels = {}
        if gt_field and seq.gt:
            data = mot.read_mot(seq.gt, max_frame=n_frames)
            labels[gt_field] = (mot_detections(data, width, height, n_frames, f"{seq.gt} {where}"), len(data))
        if det_field and seq.det:
            data = mot.read_mot(seq.det, max_frame=n_frames, unique_ids=False)
            labels[det_field] = (_det_labels(data, width, height, n_frames, f"{seq.det} {where}"), len(data))
        plans.append((seq, (width, height), labels))
    fields = {f: fo.Detections for f in (gt_field, det_field) if f}
    replaced = check_import_fields(dataset, fields, overwrite_fields, "MOT import")
    _check_sample_fields(dataset, {SEQUENCE_FIELD: fo.StringField})
    videos = []
    for seq, size, _ in plans:  # files only: the dataset is not touched yet
        video = seq.video or _encoded_video(seq.name, seq.images, seq.fps or default_fps, videos_dir)
        if seq.video is None:
            _check_encoded(video, size, seq.path)
        videos.append(video)
    out = {"sequences": [], "sample_ids": [], "gt_boxes": 0, "det_boxes": 0}
    with _Added(dataset):
        sample_ids = _add_all(dataset, videos)
        _ensure_sample_field(dataset, SEQUENCE_FIELD, fo.StringField)
        for (seq, _, labels), sample_id in zip(plans, sample_ids):
            sample = dataset[sample_id]
            sample[SEQUENCE_FIELD] = seq.name
            sample.save()
            write_frame_labels(dataset, {f: {sample_id: per_frame} for f, (per_frame, _) in labels.items()})
            if gt_field in labels:
                out["gt_boxes"] += labels[gt_field][1]
            if det_field in labels:
                out["det_boxes"] += labels[det_field][1]
            out["sequences"].append(seq.name)
            out["sample_ids"].append(sample_id)
        written = [f for f, n in ((gt_field, out["gt_boxes"]), (det_field, out["det_boxes"])) if f and n]
        options = {"root": os.path.abspath(root), "gt_field": gt_field, "det_field": det_field,
                   "videos_dir": os.path.abspath(videos_dir), "default_fps": default_fps,
                   "overwrite_fields": list(overwrite_fields or ())}  # fmt: skip
        out["run_key"] = _record(dataset, "MOT import", written, options, out["sample_ids"])
    forget_run_status(dataset, out["sample_ids"], replaced)
    if dataset.default_skeleton is None:
        from fiftyone_posetrack.skeleton import fiftyone_skeleton

        dataset.default_skeleton = fiftyone_skeleton()
        dataset.save()
    return out


def _record(dataset, job_name: str, fields: list[str], options: dict, sample_ids: list[str]) -> str | None:
    """Records the import as a run (the videos' frame counts from their metadata)."""
    from fiftyone_posetrack.fo.runs import record_import

    if not sample_ids:
        return None
    ids, counts = dataset.select(sample_ids).values(["id", "metadata.total_frame_count"])
    return record_import(dataset, job_name, fields, options, {i: n or 0 for i, n in zip(ids, counts)})


# --------------------------------------------------------------------------- PoseTrack import


def _find_json(path: str) -> list[str]:
    from fiftyone_posetrack.formats.paths import check_input_path

    path = check_input_path(path, "PoseTrack file or folder", kind="any")
    if os.path.isdir(path):
        files = sorted(
            os.path.join(root, n) for root, _, names in os.walk(path) for n in names if n.lower().endswith(".json")
        )
        if not files:
            raise BadInputError(f"no .json files in {path}")
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file or directory: {path}")
    return [path]


def _find_sample(dataset: fo.Dataset, name: str) -> fo.Sample | None:
    if not len(dataset):
        return None
    if dataset.has_sample_field(SEQUENCE_FIELD):
        match = dataset.match({SEQUENCE_FIELD: name})
        if len(match):
            return match.first()
    for sid, path in zip(*dataset.values(["id", "filepath"])):
        if os.path.splitext(os.path.basename(path))[0] == name:
            return dataset[sid]
    return None


def _video_images(video: PoseTrackVideo, image_root: str) -> list[str]:
    indices = [fr.frame_index for fr in video.frames]
    n = video.nframes or (max(indices) + 1 if indices else 0)
    if sorted(indices) != list(range(n)):
        missing = sorted(set(range(n)) - set(indices))[:5]
        raise BadInputError(
            f"PoseTrack video {video.name!r} lists {len(indices)} of its {n} frames (missing e.g. {missing}); "
            "a video needs every frame's image: add the video to the dataset first instead"
        )
    images = [
        inside(image_root, fr.file_name, f"PoseTrack video {video.name!r}: file_name")
        for fr in sorted(video.frames, key=lambda f: f.frame_index)
    ]
    absent = [p for p in images if not os.path.isfile(p)]
    if absent:
        raise BadInputError(
            f"PoseTrack video {video.name!r}: {len(absent)} of its {n} images are missing under "
            f"image_root {image_root}, e.g. {absent[0]}"
        )
    return images


def import_posetrack(
    dataset: fo.Dataset,
    path: str | os.PathLike,
    keypoints_field: str = "gt_keypoints",
    detections_field: str | None = "gt_detections",
    ignore_field: str | None = IGNORE_REGIONS_FIELD,
    image_root: str | os.PathLike | None = None,
    videos_dir: str | os.PathLike | None = None,
    fps: float = 25.0,
    label: str = "person",
    overwrite_fields=(),
) -> dict:
    """Imports PoseTrack18 annotations as frame labels of video samples.

    Each video of the files goes onto the sample whose ``sequence`` field or
    file name (without extension) is the video's name; when there is none and
    ``image_root`` is given, the video's images (``<image_root>/<file_name>``,
    every frame) are encoded to ``<videos_dir>/<name>.mp4`` and added.

    The labels are written by
    :func:`fiftyone_posetrack.fo.dataset.write_posetrack_labels`: per labelled
    frame ``fo.Keypoints`` (``index`` = ``track_id``, joints with visibility 0
    as NaN, the flags in ``visibility``, the head box as relative
    ``[x, y, w, h]`` in ``bbox_head``, per-joint ``confidence`` for prediction
    files), with ``detections_field`` the person boxes as ``fo.Detections``
    with the same ``index`` (and ``bbox_head``), and with ``ignore_field`` the
    frame's ignore regions as filled ``fo.Polyline`` objects (label
    ``"ignore"``, one per region). These are the conventions of
    :func:`fiftyone_posetrack.fo.evaluation.evaluate_poses` (``kind="posetrack"``,
    ``ignore_field``). The sample gets ``sequence`` and ``posetrack_info`` (see the
    module docstring); a file whose joints are not COCO-17 sets the field's
    skeleton (``dataset.skeletons[keypoints_field]``).

    Args:
        dataset: a video dataset
        path: a PoseTrack18 ``.json`` file or a folder of them (searched recursively)
        keypoints_field: the frame field for the poses
        detections_field: the frame field for the boxes, or None
        ignore_field: the frame field (``fo.Polylines``) for ignore regions, or None
        image_root: the folder the files' ``file_name`` paths are relative to
            (PoseTrack's root folder); only needed for videos not in the dataset
        videos_dir: where encoded videos go (default as :func:`import_mot_sequences`)
        fps: the frame rate of encoded videos (PoseTrack does not state one)
        label: the label of the imported people
        overwrite_fields: frame fields that may be replaced although a run
            (pose tracking, a stage) wrote them; without it such fields are refused

    All or nothing, as :func:`import_mot_sequences`: every file, video and
    field is checked before the dataset is changed.

    Returns:
        ``{"videos": [names], "sample_ids": [ids], "poses": n, "run_key": key}``: the
        import is recorded as a run (see :func:`import_mot_sequences`)
    """
    files = _find_json(os.fspath(path))
    videos = [(f, v) for f in files for v in read_posetrack_videos(f)]
    names = [v.name for _, v in videos]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInputError(f"{path}: several files hold the videos {dupes}")
    given = [f for f in (keypoints_field, detections_field, ignore_field) if f]
    if len(set(given)) != len(given):
        raise BadInputError(f"keypoints_field, detections_field and ignore_field must differ, got {given}")
    videos_dir = os.fspath(videos_dir) if videos_dir else _default_videos_dir(dataset)
    targets = []
    for file, video in videos:  # resolve and check every video before changing the dataset
        sample = _find_sample(dataset, video.name)
        images = None
        if sample is None:
            if image_root is None:
                raise BadInputError(
                    f"{file}: no sample of the dataset is the video {video.name!r} (by its `sequence` field "
                    "or file name); add the video first or pass image_root to encode it from its images"
                )
            images = _video_images(video, os.fspath(image_root))
            (width, height), n_frames, target = _image_size(images[0]), len(images), "its images"
        else:
            width, height = _frame_size(sample)
            n_frames, target = sample.metadata.total_frame_count, sample.filepath
        labels, skeleton = posetrack_labels(
            video, width, height, n_frames, f"{file} (video {target})",
            keypoints_field, detections_field, ignore_field, label,
        )  # fmt: skip
        targets.append((video, sample, images, (width, height), labels, skeleton))
    replaced = check_import_fields(
        dataset, posetrack_field_types(keypoints_field, detections_field, ignore_field), overwrite_fields,
        "PoseTrack import",
    )  # fmt: skip
    _check_sample_fields(dataset, {SEQUENCE_FIELD: fo.StringField, POSETRACK_INFO_FIELD: fo.DictField})
    encoded = {}
    for video, sample, images, size, _, _ in targets:  # files only: the dataset is not touched yet
        if sample is None:
            encoded[video.name] = _encoded_video(video.name, images, fps, videos_dir)
            _check_encoded(encoded[video.name], size, f"PoseTrack video {video.name!r}")
    out = {"videos": [], "sample_ids": [], "poses": 0}
    with _Added(dataset):
        new_ids = dict(zip(encoded, _add_all(dataset, list(encoded.values())))) if encoded else {}
        _ensure_sample_field(dataset, SEQUENCE_FIELD, fo.StringField)
        for video, sample, _, _, labels, skeleton in targets:
            sample = dataset[new_ids[video.name]] if sample is None else sample
            apply_posetrack_labels(dataset, sample.id, labels, skeleton, keypoints_field)
            by_index = sorted(video.frames, key=lambda f: f.frame_index)
            sample[SEQUENCE_FIELD] = video.name
            sample[POSETRACK_INFO_FIELD] = {
                "vid_id": video.vid_id,
                "file_names": {str(fr.frame_index + 1): fr.file_name for fr in by_index},
                "labeled": [fr.frame_index + 1 for fr in by_index if fr.is_labeled],
                "nframes": video.nframes,
            }
            sample.save()
            out["videos"].append(video.name)
            out["sample_ids"].append(sample.id)
            out["poses"] += sum(len(fr.track_ids) for fr in video.frames if fr.is_labeled)
        written = [f for f in given if dataset.has_frame_field(f)]
        options = {"path": os.path.abspath(os.fspath(path)), "keypoints_field": keypoints_field,
                   "detections_field": detections_field, "ignore_field": ignore_field,
                   "image_root": os.path.abspath(os.fspath(image_root)) if image_root else None,
                   "videos_dir": os.path.abspath(videos_dir), "fps": fps, "label": label,
                   "overwrite_fields": list(overwrite_fields or ())}  # fmt: skip
        out["run_key"] = _record(dataset, "PoseTrack import", written, options, out["sample_ids"])
    forget_run_status(dataset, out["sample_ids"], replaced)
    if dataset.default_skeleton is None:
        from fiftyone_posetrack.skeleton import fiftyone_skeleton

        dataset.default_skeleton = fiftyone_skeleton()
        dataset.save()
    return out


# --------------------------------------------------------------------------- export


def video_name(sample: fo.Sample) -> str:
    """A video's name in exported files (:func:`fiftyone_posetrack.formats.paths.video_name`).

    The ``sequence`` field when set; else the file name without extension,
    except for files named ``video.*`` (``posetrack synth``'s layout), which
    take their folder's name; made a safe file name. Evaluations name videos
    by the same rule (:func:`fiftyone_posetrack.fo.labels.video_names`).
    """
    sequence = sample[SEQUENCE_FIELD] if sample.has_field(SEQUENCE_FIELD) else None
    return _video_name(sample.filepath, sequence)


def _video_samples(samples, what: str) -> list[fo.Sample]:
    if samples.media_type != "video":
        raise BadInputError(f"{what} needs a video collection, got media type {samples.media_type!r}")
    if not len(samples):
        raise BadInputError(f"{what}: the collection has no samples")
    keep = [f for f in (SEQUENCE_FIELD, POSETRACK_INFO_FIELD) if samples.has_sample_field(f)]
    out = list(samples.select_fields(keep))
    names = [video_name(s) for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BadInputError(
            f"{what}: several videos are named {dupes}; give them distinct `{SEQUENCE_FIELD}` values"
        )
    return out


def _out_dir(out_dir) -> str:
    """The export folder as a ``str``; refused when it cannot be one (a NUL byte, an existing file)."""
    try:
        out_dir = os.fspath(out_dir)
    except TypeError:
        raise BadInputError(f"out_dir: expected a folder path, got {out_dir!r}") from None
    if not out_dir or "\x00" in out_dir:
        raise BadInputError(f"out_dir: {out_dir!r} is not a usable folder path (empty, or a NUL byte)")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BadInputError(f"out_dir: {out_dir} exists and is not a folder")
    return out_dir


def _targets(paths: list[str], overwrite: bool) -> list[str]:
    from fiftyone_posetrack.atomic import check_output_path

    for p in paths:
        check_output_path(p, "export path")  # e.g. a folder where the file would go
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        raise BadInputError(f"{existing[0]} exists ({len(existing)} file(s) would be replaced); pass overwrite=True")
    return paths


def export_mot(
    samples,
    field: str,
    out_dir: str | os.PathLike,
    gt: bool = False,
    overwrite: bool = False,
) -> list[str]:
    """Writes a ``fo.Detections`` frame field as MOTChallenge text files, one per video.

    Args:
        samples: a video collection
        field: the frame field (``index`` = track id; untracked boxes get id -1)
        out_dir: the output folder
        gt: write ground truth: ``<out_dir>/<name>/gt/gt.txt`` (MOT16+ columns,
            ``ignore=True`` boxes as class -2) and ``<name>/seqinfo.ini``, the
            layout TrackEval and ``posetrack eval-mot`` read; else tracker
            results ``<out_dir>/<name>.txt`` (the challenge's submission layout)
        overwrite: replace existing files

    The files are written under temporary names and moved into place
    together once all are written (:class:`fiftyone_posetrack.atomic.Staged`):
    a failure (a full disk, a bad label) leaves no file behind and existing
    files as they were.

    Returns:
        the written ``.txt`` paths, in sample order
    """
    from fiftyone_posetrack.synth.writer import write_seqinfo

    from fiftyone_posetrack.atomic import Staged

    check_frame_field(samples, field, fo.Detections, "field")
    videos = _video_samples(samples, "MOT export")
    out_dir = _out_dir(out_dir)
    names = [video_name(s) for s in videos]
    layout = (lambda n: os.path.join(n, "gt", "gt.txt")) if gt else (lambda n: n + ".txt")
    paths = _targets([inside(out_dir, layout(n), "export path") for n in names], overwrite)
    with Staged() as stage:  # every file moved into place once all are written, or none
        for sample, name, path in zip(videos, names, paths):
            rows = sample_to_mot(sample, field)
            if gt:
                rows[:, mot.CONF] = 1.0
            mot.write_mot(stage.path(path), rows, gt=gt)
            if gt:
                md = sample.metadata
                write_seqinfo(
                    stage.path(os.path.join(out_dir, name, "seqinfo.ini")),
                    name,
                    md.total_frame_count,
                    md.frame_rate or 30.0,
                    md.frame_width,
                    md.frame_height,
                )
    return paths


def keypoint_names(samples, field: str) -> tuple[str, ...]:
    """The joint names of a keypoints field (:func:`fiftyone_posetrack.fo.posetrack.keypoint_names`)."""
    return tuple(_keypoint_names(samples, field))


def export_posetrack(
    samples,
    keypoints_field: str,
    out_dir: str | os.PathLike,
    detections_field: str | None = None,
    posetrack_joints: bool = False,
    overwrite: bool = False,
    gt: bool = False,
    ignore_field: str | None = None,
) -> list[str]:
    """Writes a tracked ``fo.Keypoints`` field as PoseTrack18 JSON files, one per video.

    This is the PoseTrack challenge's format: ``<out_dir>/<name>.json`` per
    video (``name`` by :func:`video_name`), every frame an image
    (``file_name`` / ``vid_id`` / labelled flags from ``posetrack_info`` when
    the video was imported from PoseTrack, else
    ``images/<name>/<frame-1:06d>.jpg``), every person an annotation with
    ``track_id`` = ``index``. The frames are converted by
    :func:`fiftyone_posetrack.fo.posetrack.posetrack_frame`, the converter
    :func:`~fiftyone_posetrack.fo.evaluation.evaluate_poses` uses, so
    ``posetrack eval-kpts --kind posetrack`` on exported ground truth and
    predictions gives the numbers of ``evaluate_poses(kind="posetrack")``.

    Args:
        samples: a video collection
        keypoints_field: the ``fo.Keypoints`` frame field; every keypoint needs
            an ``index`` (track id)
        out_dir: the output folder
        detections_field: an ``fo.Detections`` field whose boxes (matched by
            ``index``) become ``bbox``; default: the extent of the joints
        posetrack_joints: reorder the joints by name into PoseTrack18's order
            (joints the field lacks, e.g. ``head_bottom`` / ``head_top`` for
            COCO-17, are written missing); default: the field's own joints
        overwrite: replace existing files
        gt: write ground truth: joints by their ``visibility`` flags, head
            boxes (``bbox_head``, else the estimate of
            :data:`~fiftyone_posetrack.fo.posetrack.HEAD_FRACTION`), no scores;
            only frames where the field is set are labelled. Default:
            predictions (per-joint ``scores``)
        ignore_field: an ``fo.Polylines`` frame field of ignore regions to
            write (ground truth)

    The files are written under temporary names and moved into place
    together once all are written: a failure leaves no file behind and
    existing files as they were.

    Returns:
        the written paths, in sample order
    """
    check_frame_field(samples, keypoints_field, fo.Keypoints, "keypoints_field")
    if detections_field:
        check_frame_field(samples, detections_field, fo.Detections, "detections_field")
    if ignore_field:
        check_frame_field(samples, ignore_field, fo.Polylines, "ignore_field")
    videos = _video_samples(samples, "PoseTrack export")
    names_in = keypoint_names(samples, keypoints_field)
    names_out = POSETRACK_KEYPOINTS if posetrack_joints else names_in
    order = np.array([names_in.index(n) if n in names_in else -1 for n in names_out])
    out_dir = _out_dir(out_dir)
    names = [video_name(s) for s in videos]
    paths = _targets([inside(out_dir, n + ".json", "export path") for n in names], overwrite)
    has_info = samples.has_sample_field(POSETRACK_INFO_FIELD)
    fields = (keypoints_field, detections_field, ignore_field)
    from fiftyone_posetrack.atomic import Staged

    with Staged() as stage:  # every file moved into place once all are written, or none
        for sample, name, path in zip(videos, names, paths):
            info = (sample[POSETRACK_INFO_FIELD] if has_info else None) or {}
            video = _posetrack_video(sample, name, fields, len(names_in), order, names_out, info, gt)
            write_posetrack_json(stage.path(path), video)
    return paths


def _posetrack_video(sample, name, fields, num_keypoints, order, names_out, info, gt) -> PoseTrackVideo:
    from fiftyone_posetrack.skeleton import COCO_EDGES

    md = sample.metadata
    if md is None or not md.total_frame_count:
        raise BadInputError(
            f"{sample.filepath}: no video metadata; run fiftyone_posetrack.fo.dataset.ensure_metadata(samples) first"
        )
    w, h, n_frames = md.frame_width, md.frame_height, int(md.total_frame_count)
    kp_field, det_field, ign_field = fields
    docs = frame_documents(sample._dataset, sample.id, [f for f in fields if f])
    doc = next(docs, None)
    file_names = info.get("file_names") or {}
    labeled = set(info.get("labeled") or range(1, n_frames + 1))
    frames = []
    for n in range(1, n_frames + 1):
        while doc is not None and doc["frame_number"] < n:
            doc = next(docs, None)
        labels = doc if doc is not None and doc["frame_number"] == n else {}

        def label(field):
            value = labels.get(field) if field else None
            return None if value is None else RawLabel(value)

        kps = label(kp_field)
        frames.append(
            posetrack_frame(
                kps, label(det_field), label(ign_field), w, h, n,
                file_names.get(str(n), default_file_name(name, n)), num_keypoints, gt, order=order,
                is_labeled=n in labeled and (kps is not None or not gt),
                where=f"keypoints_field: {kp_field!r} of {sample.filepath} ",
            )
        )  # fmt: skip
    skeleton = [tuple(e) for e in COCO_EDGES] if tuple(names_out) == tuple(COCO_KEYPOINTS) else []
    if not skeleton:
        skel = sample._dataset.skeletons.get(kp_field)
        if skel is not None and tuple(skel.labels) == tuple(names_out):
            skeleton = [tuple(e) for e in skel.edges]
    return PoseTrackVideo(
        name=name,
        width=w,
        height=h,
        frames=frames,
        keypoint_names=tuple(names_out),
        skeleton=skeleton,
        vid_id=info.get("vid_id"),
        nframes=info.get("nframes") or n_frames,
    )
