"""Running a tracker over MOTChallenge detection arrays (and optional frames).

MOT arrays are ``(N, >=6)`` rows ``frame, id, x, y, w, h[, conf, ...]`` with
1-based frames and ``[x, y, w, h]`` pixel boxes, as
:func:`fiftyone_posetrack.formats.mot.read_mot` returns them. Input ids are
ignored; rows may come in any frame order; a missing or negative confidence
(``-1`` = unknown in MOT15 files) counts as 1.

Without images, only the frames that matter are run: those with detections
and the empty frames in which live tracks age; a longer gap is skipped in one
step, so frame numbers that jump by millions (rows at frame 1 and 100000000)
cost what their rows cost.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import cv2
import numpy as np
from tqdm import tqdm

from fiftyone_posetrack.types import BadInputError, FrameDetections, xywh_to_xyxy

__all__ = ["check_mot_detections", "open_frames", "embed_mot_detections", "track_mot_array"]

_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def check_mot_detections(dets, what: str = "detections") -> np.ndarray:
    """Validates a MOT detection array and returns it sorted by frame.

    Raises:
        BadInputError: for a wrong shape, NaN / inf, negative sizes, or frames
            that are not integers >= 1
    """
    arr = np.asarray(dets, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 9))
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise BadInputError(f"{what}: expected a MOT array (N, >=6) frame,id,x,y,w,h,..., got {arr.shape}")
    bad = ~np.isfinite(arr[:, :6]).all(axis=1)
    if bad.any():
        raise BadInputError(f"{what}: rows {np.flatnonzero(bad)[:5].tolist()} contain NaN or inf")
    bad = (arr[:, 4] < 0) | (arr[:, 5] < 0)
    if bad.any():
        raise BadInputError(f"{what}: rows {np.flatnonzero(bad)[:5].tolist()} have negative width/height")
    frames = arr[:, 0]
    bad = (frames < 1) | (frames != np.round(frames))
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise BadInputError(f"{what}: rows {rows} have frames that are not integers >= 1")
    full = np.full((len(arr), 9), -1.0)
    full[:, : min(arr.shape[1], 9)] = arr[:, :9]
    if arr.shape[1] < 7:
        full[:, 6] = 1.0
    full[full[:, 6] < 0, 6] = 1.0
    if not np.isfinite(full[:, 6]).all():
        raise BadInputError(f"{what}: confidences contain NaN or inf")
    return full[np.argsort(full[:, 0], kind="stable")]


def open_frames(path) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(frame_number, bgr_frame)`` from a video file or an image folder.

    Images of a folder are taken in file-name order as frames 1, 2, ...
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.lower().endswith(_IMAGE_EXTS))
        if not files:
            raise BadInputError(f"frames folder {path} holds no images ({', '.join(_IMAGE_EXTS)})")
        for i, name in enumerate(files, 1):
            img = cv2.imread(os.path.join(path, name), cv2.IMREAD_COLOR)
            if img is None:
                raise BadInputError(f"cannot read image {os.path.join(path, name)}")
            yield i, img
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f"frames not found: {path} (expected a video file or an image folder)")
    from fiftyone_posetrack.video import VideoReader

    with VideoReader(path) as reader:
        yield from reader


def _frame_rows(dets: np.ndarray) -> dict[int, slice]:
    """``{frame: row slice}`` of the frames that have detections, in a sorted array
    (sized by the rows, never by the largest frame number)."""
    frames = dets[:, 0].astype(np.int64)
    uniq, starts = np.unique(frames, return_index=True)
    ends = np.append(starts[1:], len(frames))
    return {int(f): slice(int(a), int(b)) for f, a, b in zip(uniq, starts, ends)}


def _needed_frames(rows: dict[int, slice], tracker) -> Iterator[int]:
    """The frame numbers a tracker must see without images: every frame with
    detections, and after it the empty frames while the tracker still has live
    tracks (they age there); a gap beyond that is skipped in one step
    (:meth:`~fiftyone_posetrack.tracking.base.Tracker.skip_frames`), so frame
    numbers that jump by millions cost nothing."""
    frames = sorted(rows)
    for i, f in enumerate(frames):
        yield f
        nxt = frames[i + 1] if i + 1 < len(frames) else f + 1
        g = f + 1
        while g < nxt and tracker.has_tracks():
            yield g
            g += 1
        if g < nxt:
            tracker.skip_frames(nxt - g)


def _iter_frames(last: int, frames, needed: Iterator[int] | None = None) -> Iterator[tuple[int, np.ndarray | None]]:
    if frames is None:
        for f in needed if needed is not None else range(1, last + 1):
            yield f, None
        return
    count = 0
    for f, img in open_frames(frames) if isinstance(frames, (str, os.PathLike)) else frames:
        if f > last:
            return
        count = f
        yield f, img
    if count < last:
        raise BadInputError(f"frames: detections reach frame {last} but the frames end at {count}")


def embed_mot_detections(dets, frames, embedder, progress: bool = False) -> dict[int, np.ndarray]:
    """Appearance features of every detection: ``{frame: (n_frame, D)}`` in row order."""
    dets = check_mot_detections(dets)
    if len(dets) == 0:
        return {}
    where = _frame_rows(dets)
    last = max(where)
    out = {}
    for f, img in tqdm(_iter_frames(last, frames), total=last, disable=not progress, desc="embed"):
        if f in where:
            out[f] = embedder.embed(img, xywh_to_xyxy(dets[where[f], 2:6]))
    return out


def track_mot_array(
    dets,
    tracker,
    frames=None,
    embedder=None,
    embeddings: dict | None = None,
    smoother=None,
    progress: bool = False,
) -> np.ndarray:
    """Tracks a MOT detection array frame by frame.

    Args:
        dets: ``(N, >=6)`` MOT detections (ids ignored)
        tracker: a :class:`~fiftyone_posetrack.tracking.base.Tracker` (it is reset)
        frames: optional video path, image folder, or iterable of
            ``(frame_number, bgr)``; needed by ``embedder``, ``smoother`` and CMC
        embedder: optional ReID embedder run on each frame's boxes
        embeddings: optional precomputed ``{frame: (n, D)}`` features
            (see :func:`embed_mot_detections`)
        smoother: optional :class:`~fiftyone_posetrack.tracking.box_smoothing.FlowBoxSmoother`
        progress: show a progress bar

    Returns:
        ``(M, 10)`` MOT results ``frame, id, x, y, w, h, score, -1, -1, -1``
    """
    dets = check_mot_detections(dets)
    if (embedder is not None or smoother is not None) and frames is None:
        raise BadInputError("an embedder or box smoother needs the frames (video or image folder)")
    tracker.reset()
    if smoother is not None:
        smoother.reset()
    if len(dets) == 0:
        return np.zeros((0, 10))
    where = _frame_rows(dets)
    last = max(where)
    needed = _needed_frames(where, tracker) if frames is None else None
    out = []
    empty = dets[:0]
    for f, img in tqdm(_iter_frames(last, frames, needed), total=last, disable=not progress, desc="track"):
        rows = dets[where[f]] if f in where else empty
        boxes = xywh_to_xyxy(rows[:, 2:6])
        emb = None
        if embeddings is not None and f in embeddings:
            emb = embeddings[f]
        elif embedder is not None and len(rows):
            emb = embedder.embed(img, boxes)
        tracks = tracker.update(FrameDetections(boxes, rows[:, 6], emb), img)
        if smoother is not None:
            tracks = smoother.update(tracks, img)
        if len(tracks):
            xywh = tracks.boxes.copy()
            xywh[:, 2:] -= xywh[:, :2]
            n = len(tracks)
            out.append(np.column_stack([np.full(n, f), tracks.track_ids, xywh, tracks.scores,
                                        -np.ones((n, 3))]))  # fmt: skip
    return np.concatenate(out) if out else np.zeros((0, 10))
