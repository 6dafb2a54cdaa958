"""PoseTrack18 JSON files (ground truth and predictions).

A PoseTrack18 file is COCO-like::

    {"images": [{"id", "file_name", "vid_id", "frame_id", "nframes", "is_labeled",
                 "ignore_regions_x": [[x, ...], ...], "ignore_regions_y": [[y, ...], ...]}, ...],
     "annotations": [{"id", "image_id", "track_id", "category_id",
                      "bbox": [x, y, w, h], "bbox_head": [x, y, w, h],
                      "keypoints": [x1, y1, v1, ..., xK, yK, vK], "scores": [s1, ..., sK]}, ...],
     "categories": [{"id": 1, "name": "person", "keypoints": [names],
                     "skeleton": [[a, b], ...]}]}   # skeleton 1-based

Coordinates are pixels. ``frame_id`` follows PoseTrack's numbering
``10000000000 + vid_id * 10000 + frame_index``; ground truth leaves ``scores``
empty, predictions give one score per joint. PoseTrack's own 17 joints are
``nose, head_bottom, head_top, left_ear, right_ear, left_shoulder, ...`` (not
COCO's eyes): the reader records the file's joint names on the video as
:attr:`PoseTrackVideo.keypoint_names` and never reorders joints.

In memory, boxes are ``[x1, y1, x2, y2]`` pixels like everywhere in the
library, and frames are addressed by their 0-based index in the video.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from fiftyone_posetrack.formats.mot import MAX_FRAME, MAX_ID
from fiftyone_posetrack.skeleton import COCO_EDGES, COCO_KEYPOINTS
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "PoseTrackFrame",
    "PoseTrackVideo",
    "read_posetrack_json",
    "read_posetrack_videos",
    "write_posetrack_json",
    "posetrack_frame_id",
]

#: PoseTrack18's joint order (what its official files use)
POSETRACK_KEYPOINTS: tuple[str, ...] = (
    "nose", "head_bottom", "head_top", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

_FRAME_ID_BASE = 10_000_000_000
#: the largest frame width / height in pixels a file may state
_MAX_SIZE = 100_000


@dataclass
class PoseTrackFrame:
    """The people of one frame.

    Attributes:
        frame_index: 0-based position of the frame in the video
        file_name: the image path as written in the file
        is_labeled: whether the frame was annotated
        track_ids: ``(N,)`` int track ids
        boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` pixels (from ``bbox``; from the
            labelled joints' extent when a file has no ``bbox``; NaN when
            neither exists)
        keypoints: ``(N, K, 2)`` ``(x, y)`` pixels, as in the file (unlabelled
            joints are usually ``(0, 0)``)
        visibility: ``(N, K)`` int flags as in the file (0 = not labelled /
            not visible; PoseTrack ground truth uses 1, COCO uses 2 for visible)
        scores: ``(N, K)`` keypoint scores of predictions, else None (NaN for
            annotations without scores in a file where others have them)
        ignore_regions: polygons, each ``(P, 2)`` ``(x, y)`` pixels, where
            people are not annotated
        head_boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` head boxes (``bbox_head``),
            NaN rows where absent; None when no annotation in the video has one
        image_id: the image's ``id`` in the file, if any
    """

    frame_index: int
    file_name: str
    is_labeled: bool
    track_ids: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    scores: np.ndarray | None = None
    ignore_regions: list[np.ndarray] = field(default_factory=list)
    head_boxes: np.ndarray | None = None
    image_id: int | None = None

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass
class PoseTrackVideo:
    """One video's PoseTrack annotations.

    Attributes:
        name: the video's name (the folder of its images, e.g.
            ``"003418_mpii_test"``)
        width, height: frame size in pixels when the file states it, else None
        frames: the frames listed in the file, sorted by ``frame_index``
        keypoint_names: the joint names of the file's category, in file order
        skeleton: limbs as 0-based joint index pairs (files store them 1-based)
        vid_id: PoseTrack's video id string (e.g. ``"003418"``), if any
        nframes: the number of frames of the video (the images' ``nframes``)
    """

    name: str
    width: int | None
    height: int | None
    frames: list[PoseTrackFrame]
    keypoint_names: tuple[str, ...] = COCO_KEYPOINTS
    skeleton: list[tuple[int, int]] = field(default_factory=lambda: list(COCO_EDGES))
    vid_id: str | None = None
    nframes: int | None = None


def posetrack_frame_id(vid_id: str | int, frame_index: int) -> int:
    """PoseTrack's ``frame_id`` / image ``id``: ``1e10 + vid_id * 1e4 + frame_index``."""
    return _FRAME_ID_BASE + int(vid_id) * 10_000 + int(frame_index)


# --------------------------------------------------------------------------- reading


def read_posetrack_json(path: str | os.PathLike) -> PoseTrackVideo:
    """Reads a PoseTrack18 file holding one video (the official per-video files).

    Raises:
        FileNotFoundError: if ``path`` does not exist
        BadInputError: if the file is not valid PoseTrack18 JSON, or holds
            several videos (use :func:`read_posetrack_videos` then)
    """
    videos = read_posetrack_videos(path)
    if len(videos) != 1:
        names = ", ".join(v.name for v in videos[:5])
        raise BadInputError(
            f"{os.fspath(path)}: expected one video, found {len(videos)} ({names}); "
            "use read_posetrack_videos() for multi-video files"
        )
    return videos[0]


def read_posetrack_videos(path: str | os.PathLike) -> list[PoseTrackVideo]:
    """Reads a PoseTrack18 file, one :class:`PoseTrackVideo` per video in it.

    Images are grouped into videos by ``vid_id`` (or, without it, by the
    folder of ``file_name``); a video's name is the images' ``video_name``
    (written by this module) or else the folder of ``file_name``. A frame's index is, in order of preference, the
    image's ``frame_index`` key (written by this module), its ``frame_id``
    when that follows PoseTrack's numbering for the video, or its position
    among the video's images in the file.

    Raises:
        FileNotFoundError: if ``path`` does not exist
        BadInputError: naming the file and the offending item
    """
    from fiftyone_posetrack.formats.paths import check_input_path

    path = check_input_path(path, "PoseTrack file", kind="file")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BadInputError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise BadInputError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(data, dict):
        raise BadInputError(
            f"{path}: expected a PoseTrack18 object with 'images' and 'annotations', "
            f"got a JSON {type(data).__name__}"
        )
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise BadInputError(f"{path}: missing or invalid '{key}' list (not a PoseTrack18 file?)")

    names, skeleton = _read_category(data.get("categories"), path)
    num_kp = len(names) if names is not None else None

    images = data["images"]
    by_image: dict[object, list[dict]] = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise BadInputError(f"{path}: images[{i}] needs an 'id' and a 'file_name'")
        if img["id"] in by_image:
            raise BadInputError(f"{path}: images[{i}] repeats image id {img['id']}")
        by_image[img["id"]] = []
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise BadInputError(f"{path}: annotations[{i}] is not an object")
        if ann.get("image_id") not in by_image:
            raise BadInputError(
                f"{path}: annotations[{i}] refers to image_id {ann.get('image_id')!r}, "
                "which is not in 'images'"
            )
        kp = ann.get("keypoints")
        if not isinstance(kp, list) or len(kp) % 3 != 0 or not kp:
            raise BadInputError(
                f"{path}: annotations[{i}] needs 'keypoints' as a flat [x, y, v] * K list, "
                f"got {_describe(kp)}"
            )
        if num_kp is None:
            num_kp = len(kp) // 3
        if len(kp) != 3 * num_kp:
            raise BadInputError(
                f"{path}: annotations[{i}] has {len(kp) // 3} keypoints, expected {num_kp}"
            )
        by_image[ann["image_id"]].append(ann)
    if num_kp is None:
        num_kp = len(COCO_KEYPOINTS)
    if names is None:
        coco = num_kp == len(COCO_KEYPOINTS)
        names = COCO_KEYPOINTS if coco else tuple(f"joint_{k}" for k in range(num_kp))
        skeleton = list(COCO_EDGES) if coco else []

    groups: dict[str, list[dict]] = {}
    for img in images:
        groups.setdefault(_video_key(img), []).append(img)
    has_scores = any(len(a.get("scores") or []) > 0 for a in data["annotations"])
    has_head = any(a.get("bbox_head") for a in data["annotations"])

    videos = []
    for key, imgs in groups.items():
        frames = []
        indices = _frame_indices(imgs, path)
        for pos, img in enumerate(imgs):
            frames.append(
                _read_frame(img, indices[pos], by_image[img["id"]], num_kp, has_scores, has_head, path)
            )
        frames.sort(key=lambda fr: fr.frame_index)
        seen = [fr.frame_index for fr in frames]
        if len(set(seen)) != len(seen):
            raise BadInputError(f"{path}: video {key!r} lists the same frame index twice")
        first = imgs[0]
        videos.append(
            PoseTrackVideo(
                name=_video_name(first, key),
                width=_opt_int(first, "width", path, 1, _MAX_SIZE),
                height=_opt_int(first, "height", path, 1, _MAX_SIZE),
                frames=frames,
                keypoint_names=tuple(names),
                skeleton=list(skeleton),
                vid_id=None if first.get("vid_id") is None else str(first["vid_id"]),
                nframes=_opt_int(first, "nframes", path, 0, MAX_FRAME),
            )
        )
    return videos


def _read_category(categories, path: str):
    if not categories:
        return None, None
    if not isinstance(categories, list) or not isinstance(categories[0], dict):
        raise BadInputError(f"{path}: 'categories' must be a list of objects")
    cat = next((c for c in categories if c.get("name") == "person"), categories[0])
    names = cat.get("keypoints")
    if names is None:
        return None, None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadInputError(f"{path}: the category's 'keypoints' must be a list of joint names")
    skeleton = []
    for pair in cat.get("skeleton") or []:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(j, int) and 1 <= j <= len(names) for j in pair)
        ):
            raise BadInputError(
                f"{path}: skeleton limb {pair!r} is not a pair of 1-based joint indices "
                f"in 1..{len(names)}"
            )
        skeleton.append((pair[0] - 1, pair[1] - 1))
    return tuple(names), skeleton


def _video_key(img: dict) -> str:
    if img.get("vid_id") is not None:
        return str(img["vid_id"])
    return os.path.dirname(str(img["file_name"]))


def _video_name(img: dict, key: str) -> str:
    if isinstance(img.get("video_name"), str) and img["video_name"]:
        return img["video_name"]
    folder = os.path.basename(os.path.dirname(str(img["file_name"])))
    return folder or key or "video"


def _frame_indices(imgs: list[dict], path: str) -> list[int]:
    if all(isinstance(img.get("frame_index"), int) for img in imgs):
        for img in imgs:
            if not 0 <= img["frame_index"] < MAX_FRAME:
                raise BadInputError(
                    f"{path}: image {img['id']!r} has frame_index {img['frame_index']}, expected 0 to {MAX_FRAME - 1}"
                )
        return [img["frame_index"] for img in imgs]
    vid = imgs[0].get("vid_id")
    try:
        base = posetrack_frame_id(vid, 0) if vid is not None else None
    except (TypeError, ValueError):
        base = None
    if base is not None:
        ids = [img.get("frame_id", img.get("id")) for img in imgs]
        if all(isinstance(i, int) and 0 <= i - base < 10_000 for i in ids):
            return [i - base for i in ids]
    return list(range(len(imgs)))


def _read_frame(img, index, anns, num_kp, has_scores, has_head, path) -> PoseTrackFrame:
    n = len(anns)
    kps = np.zeros((n, num_kp, 3), dtype=np.float64)
    boxes = np.full((n, 4), np.nan)
    heads = np.full((n, 4), np.nan) if has_head else None
    scores = np.full((n, num_kp), np.nan) if has_scores else None
    track_ids = np.zeros(n, dtype=np.int64)
    for j, ann in enumerate(anns):
        where = f"{path}: annotation id {ann.get('id', '?')}"
        kps[j] = _numbers(ann["keypoints"], where, "keypoints").reshape(num_kp, 3)
        track = ann.get("track_id")
        if (
            not _is_number(track)
            or not math.isfinite(track)
            or track != int(track)
        ):
            raise BadInputError(f"{where}: needs an integer 'track_id', got {track!r}")
        if abs(track) > MAX_ID:
            raise BadInputError(f"{where}: 'track_id' {track!r} is beyond the largest track id, 2**53 - 1")
        track_ids[j] = int(track)
        bbox = ann.get("bbox")
        if bbox:
            boxes[j] = _xywh(bbox, where, "bbox")
        else:
            labelled = kps[j, :, 2] > 0
            if labelled.any():
                pts = kps[j, labelled, :2]
                boxes[j] = [*pts.min(axis=0), *pts.max(axis=0)]
        if heads is not None and ann.get("bbox_head"):
            heads[j] = _xywh(ann["bbox_head"], where, "bbox_head")
        if scores is not None and ann.get("scores"):
            sc = ann["scores"]
            if not isinstance(sc, list) or len(sc) != num_kp:
                raise BadInputError(f"{where}: 'scores' must hold {num_kp} numbers, got {_describe(sc)}")
            scores[j] = _numbers(sc, where, "scores")
            if not np.isfinite(scores[j]).all():
                raise BadInputError(f"{where}: 'scores' hold NaN or inf: {_describe(sc)}")
    if not np.isfinite(kps).all():
        raise BadInputError(f"{path}: image {img['id']} has NaN or inf keypoints")
    flags = kps[..., 2]
    if ((flags < 0) | (flags > 2)).any():
        j = int(np.flatnonzero(((flags < 0) | (flags > 2)).any(axis=1))[0])
        raise BadInputError(
            f"{path}: annotation id {anns[j].get('id', '?')}: keypoint visibility flags must be 0, 1 or 2 "
            f"(or a score in [0, 1]), got {flags[j][(flags[j] < 0) | (flags[j] > 2)][0]:g}"
        )
    return PoseTrackFrame(
        frame_index=int(index),
        file_name=str(img["file_name"]),
        is_labeled=bool(img.get("is_labeled", n > 0)),
        track_ids=track_ids,
        boxes=boxes,
        keypoints=kps[..., :2].copy(),
        visibility=np.round(kps[..., 2]).astype(np.int64),
        scores=scores,
        ignore_regions=_ignore_regions(img, path),
        head_boxes=heads,
        image_id=img["id"] if isinstance(img["id"], int) else None,
    )


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(values, where: str, key: str) -> np.ndarray:
    """A JSON list of numbers as float64; strings (``"0.9"``), booleans and nested lists are refused."""
    if not isinstance(values, list) or not all(_is_number(v) for v in values):
        bad = next((v for v in values if not _is_number(v)), values) if isinstance(values, list) else values
        raise BadInputError(f"{where}: '{key}' must be a list of numbers, got {_describe(bad)}")
    try:
        return np.asarray(values, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        raise BadInputError(f"{where}: '{key}' holds a number beyond float64") from None


def _xywh(values, where: str, key: str) -> np.ndarray:
    box = _numbers(values, where, key)
    if box.shape != (4,):
        raise BadInputError(f"{where}: '{key}' must be [x, y, w, h], got {_describe(values)}")
    if not np.isfinite(box).all() or box[2] < 0 or box[3] < 0:
        raise BadInputError(f"{where}: '{key}' {values!r} is not a finite [x, y, w, h] with w, h >= 0")
    return np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]])


def _ignore_regions(img: dict, path: str) -> list[np.ndarray]:
    xs, ys = img.get("ignore_regions_x") or [], img.get("ignore_regions_y") or []
    if len(xs) != len(ys):
        raise BadInputError(
            f"{path}: image {img['id']} has {len(xs)} ignore_regions_x but {len(ys)} ignore_regions_y"
        )
    regions = []
    for r, (x, y) in enumerate(zip(xs, ys)):
        if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y):
            raise BadInputError(
                f"{path}: image {img['id']} ignore region {r}: x and y lists differ in length"
            )
        where = f"{path}: image {img['id']} ignore region {r}"
        poly = np.stack([_numbers(x, where, "ignore_regions_x"), _numbers(y, where, "ignore_regions_y")], axis=1)
        if not np.isfinite(poly).all():
            raise BadInputError(f"{where}: NaN or inf coordinates")
        regions.append(poly.reshape(-1, 2))
    return regions


def _opt_int(img: dict, key: str, path: str, lo: int, hi: int) -> int | None:
    """``img[key]`` as an int in ``[lo, hi]``, None when absent or null; anything else is refused."""
    value = img.get(key)
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or value != int(value) or not lo <= value <= hi:
        raise BadInputError(f"{path}: image {img.get('id')!r} has {key} {value!r}, expected an integer {lo} to {hi}")
    return int(value)


def _describe(value) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return repr(value)[:60]


# --------------------------------------------------------------------------- writing


def write_posetrack_json(path: str | os.PathLike, video: PoseTrackVideo) -> None:
    """Writes one video as an official PoseTrack18 JSON file.

    Images get PoseTrack's ``frame_id`` numbering when the video's ``vid_id``
    is numeric (``"000000"`` when it has none) and the frame indices are below
    10000, plus two keys official files lack (readers ignore unknown keys):
    ``frame_index``, so that any frame subset reads back at the right
    positions, and ``video_name``. Annotations get ``bbox`` and ``bbox_head`` as
    ``[x, y, w, h]``, flat ``keypoints``, ``scores`` (empty for ground truth,
    i.e. when :attr:`PoseTrackFrame.scores` is None) and ``num_keypoints``.
    The category's skeleton is written 1-based.

    Raises:
        BadInputError: if arrays of a frame disagree in shape or are not finite
    """
    path = os.fspath(path)
    vid_id = video.vid_id if video.vid_id is not None else "000000"
    numeric = str(vid_id).isdigit()
    nframes = video.nframes if video.nframes is not None else (
        max((fr.frame_index for fr in video.frames), default=-1) + 1
    )
    num_kp = len(video.keypoint_names)
    images, annotations = [], []
    for fr in video.frames:
        _check_frame(fr, num_kp)
        if numeric and 0 <= fr.frame_index < 10_000:
            frame_id = posetrack_frame_id(vid_id, fr.frame_index)
        else:
            frame_id = fr.frame_index
        image_id = fr.image_id if fr.image_id is not None else frame_id
        img = {
            "id": image_id,
            "file_name": fr.file_name,
            "vid_id": str(vid_id),
            "frame_id": frame_id,
            "frame_index": int(fr.frame_index),
            "video_name": video.name,
            "nframes": int(nframes),
            "is_labeled": bool(fr.is_labeled),
            "ignore_regions_x": [_num_list(np.asarray(r)[:, 0]) for r in fr.ignore_regions],
            "ignore_regions_y": [_num_list(np.asarray(r)[:, 1]) for r in fr.ignore_regions],
        }
        if video.width is not None and video.height is not None:
            img["width"], img["height"] = int(video.width), int(video.height)
        images.append(img)
        for j in range(len(fr)):
            box = fr.boxes[j]
            kp = np.concatenate([fr.keypoints[j], fr.visibility[j][:, None]], axis=1)
            ann = {
                "id": int(image_id) * 100 + j if len(fr) <= 100 else int(image_id) * 10_000 + j,
                "image_id": image_id,
                "track_id": int(fr.track_ids[j]),
                "category_id": 1,
                "keypoints": [_num(v) for v in kp.reshape(-1)],
                "scores": _scores(fr.scores, j),
                "num_keypoints": int((fr.visibility[j] > 0).sum()),
                "iscrowd": False,
            }
            if np.isfinite(box).all():
                ann["bbox"] = _num_list([box[0], box[1], box[2] - box[0], box[3] - box[1]])
            if fr.head_boxes is not None and np.isfinite(fr.head_boxes[j]).all():
                hb = fr.head_boxes[j]
                ann["bbox_head"] = _num_list([hb[0], hb[1], hb[2] - hb[0], hb[3] - hb[1]])
            annotations.append(ann)
    categories = [
        {
            "supercategory": "person",
            "id": 1,
            "name": "person",
            "keypoints": list(video.keypoint_names),
            "skeleton": [[int(a) + 1, int(b) + 1] for a, b in video.skeleton],
        }
    ]
    from fiftyone_posetrack.atomic import atomic_write

    with atomic_write(path, what="PoseTrack file") as f:  # whole or not at all
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def _check_frame(fr: PoseTrackFrame, num_kp: int) -> None:
    n = len(fr.track_ids)
    where = f"PoseTrack frame {fr.frame_index}"
    shapes = {
        "boxes": (np.shape(fr.boxes), (n, 4)),
        "keypoints": (np.shape(fr.keypoints), (n, num_kp, 2)),
        "visibility": (np.shape(fr.visibility), (n, num_kp)),
    }
    if fr.scores is not None:
        shapes["scores"] = (np.shape(fr.scores), (n, num_kp))
    if fr.head_boxes is not None:
        shapes["head_boxes"] = (np.shape(fr.head_boxes), (n, 4))
    for name, (got, want) in shapes.items():
        if n == 0 and (np.prod(got) == 0):
            continue
        if tuple(got) != want:
            raise BadInputError(f"{where}: {name} has shape {tuple(got)}, expected {want}")
    if n and not np.isfinite(fr.keypoints).all():
        raise BadInputError(f"{where}: keypoints contain NaN or inf (use (0, 0) with flag 0)")
    for r, poly in enumerate(fr.ignore_regions):
        poly = np.asarray(poly)
        if poly.ndim != 2 or poly.shape[1] != 2 or not np.isfinite(poly).all():
            raise BadInputError(f"{where}: ignore region {r} must be a finite (P, 2) array of (x, y)")


def _scores(scores: np.ndarray | None, j: int) -> list:
    if scores is None or not np.isfinite(scores[j]).all():
        return []  # ground truth, or an annotation without scores
    return _num_list(scores[j])


def _num(v) -> float | int:
    v = float(v)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def _num_list(values) -> list:
    return [_num(v) for v in values]
