"""Sliced inference: a detector run on overlapping tiles plus the whole frame.

Small people in a large frame shrink below what a detector sees at its input
size; cutting the frame into overlapping tiles (each resized to the detector's
input on its own) enlarges them. :class:`TiledDetector` wraps any
:class:`~fiftyone_posetrack.detection.base.Detector`:

1. **Slicing**: ``sahi.slicing.get_slice_bboxes`` cuts an ``H x W`` frame into
   ``tile_size x tile_size`` tiles (pixels; a tile side larger than the
   frame's shorter side is clipped to it) overlapping by ``overlap`` of the
   tile size; the last row / column is shifted inside the frame, as SAHI does.
2. **Batched detection**: the whole frame and all tiles of all frames of a
   batch go to the wrapped detector's ``detect`` in one call, so they are
   batched by its ``batch_size``. (SAHI's own ``get_sliced_prediction`` runs
   its model slice by slice, one forward pass per tile, and only through its
   own model wrappers: not used.)
3. **Boxes cut at tile borders**: a tile box whose edge lies on an *inner*
   tile border (within ``border_margin`` pixels; a border on the frame's edge
   cuts nothing) is probably a part of a person. It is dropped when a larger
   box from another tile or the whole frame covers it (intersection over the
   cut box's area >= ``cover_threshold``), as SAHI's postprocess merges boxes
   by intersection over the smaller area; an uncovered cut box is kept (it may
   be all the detector saw of that person).
4. **Merging** the boxes of the tiles and the whole frame: ``"nms"`` (greedy
   IoU NMS, :func:`~fiftyone_posetrack.detection.nms.nms`) keeps the best box
   of each cluster (SAHI's ``sahi.postprocess.combine.nms`` is the same greedy
   NMS but dispatches to numba when it is installed, which costs 2-3 s of JIT
   loading in every process here, more than a whole frame's detection); ``"wbf"`` (:func:`~fiftyone_posetrack.detection.fusion.weighted_boxes_fusion`,
   all boxes as one model) averages the cluster's corners weighted by score.
   Merging by IoU, not by intersection over the smaller area (SAHI's
   default), keeps the boxes of people standing in front of each other apart.

All boxes are ``[x1, y1, x2, y2]`` pixels of the original frame.
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.detection.base import Detector, check_frames
from fiftyone_posetrack.detection.fusion import weighted_boxes_fusion
from fiftyone_posetrack.detection.nms import nms
from fiftyone_posetrack.types import BadInputError, FrameDetections

__all__ = ["TILE_MERGES", "TiledDetector", "check_tile_options", "tile_boxes", "cut_box_mask"]

#: the ways tile boxes are merged: value -> label
TILE_MERGES = {"nms": "NMS (keep the best box)", "wbf": "Weighted boxes fusion (average)"}


def check_tile_options(tile_size, overlap, merge) -> None:
    """Checks the tiling options (tile size in px, overlap fraction, merge name).

    Raises:
        BadInputError: naming the bad value
    """
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or tile_size < 0:
        raise BadInputError(
            f"det_tile_size: expected an integer number of pixels >= 0 (0 = no tiling), got {tile_size!r}"
        )
    if 0 < tile_size < 32:
        raise BadInputError(f"det_tile_size: {tile_size} px is too small for a detector (at least 32)")
    try:
        overlap_ok = 0.0 <= float(overlap) <= 0.9
    except (TypeError, ValueError):
        overlap_ok = False
    if not overlap_ok:
        raise BadInputError(
            f"det_tile_overlap: expected a fraction of the tile size in [0, 0.9], got {overlap!r}"
        )
    if merge not in TILE_MERGES:
        raise BadInputError(f"det_tile_merge: expected one of {list(TILE_MERGES)}, got {merge!r}")


def tile_boxes(height: int, width: int, tile_size: int, overlap: float) -> np.ndarray:
    """The tiles of an ``height x width`` frame.

    Args:
        height, width: the frame's size in pixels
        tile_size: the tile side in pixels (clipped to the frame's shorter side)
        overlap: overlap of neighbouring tiles, a fraction of the tile side

    Returns:
        ``(T, 4)`` int ``[x1, y1, x2, y2]`` pixel tiles covering the frame

    Raises:
        BadInputError: if the tile is larger than the frame's longer side
    """
    if tile_size > max(height, width):
        raise BadInputError(
            f"det_tile_size: {tile_size} px tiles are larger than the {width}x{height} frame; "
            f"use a tile size <= {max(height, width)} or 0 (no tiling)"
        )
    from sahi.slicing import get_slice_bboxes

    side_h, side_w = min(tile_size, height), min(tile_size, width)
    tiles = get_slice_bboxes(
        image_height=height,
        image_width=width,
        slice_height=side_h,
        slice_width=side_w,
        auto_slice_resolution=False,
        overlap_height_ratio=float(overlap),
        overlap_width_ratio=float(overlap),
    )
    return np.unique(np.asarray(tiles, dtype=np.int64).reshape(-1, 4), axis=0)


def cut_box_mask(boxes: np.ndarray, tile: np.ndarray, height: int, width: int, margin: float) -> np.ndarray:
    """Which boxes of a tile touch one of its inner borders.

    Args:
        boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` frame pixels, detected in ``tile``
        tile: ``[x1, y1, x2, y2]`` the tile in frame pixels
        height, width: the frame's size (a tile edge on the frame edge cuts nothing)
        margin: pixels within which a box edge counts as on the border

    Returns:
        ``(N,)`` bool
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = (float(v) for v in tile)
    cut = np.zeros(len(boxes), dtype=bool)
    if x1 > 0:
        cut |= boxes[:, 0] <= x1 + margin
    if y1 > 0:
        cut |= boxes[:, 1] <= y1 + margin
    if x2 < width:
        cut |= boxes[:, 2] >= x2 - margin
    if y2 < height:
        cut |= boxes[:, 3] >= y2 - margin
    return cut


def _covered(boxes: np.ndarray, source: np.ndarray, cut: np.ndarray, threshold: float) -> np.ndarray:
    """Cut boxes covered by a larger box of another source (intersection / cut area)."""
    drop = np.zeros(len(boxes), dtype=bool)
    idx = np.flatnonzero(cut)
    if not len(idx):
        return drop
    a = boxes[idx]
    lt = np.maximum(a[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(a[:, None, 2:], boxes[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    ios = inter / np.maximum(area[idx][:, None], 1e-9)
    other = (source[idx][:, None] != source[None, :]) & (area[None, :] > area[idx][:, None])
    drop[idx] = ((ios >= threshold) & other).any(axis=1)
    return drop


class TiledDetector(Detector):
    """Runs a detector on overlapping tiles plus the whole frame and merges the boxes.

    See the module docstring for the steps.

    Args:
        detector: the wrapped :class:`Detector` (its own ``score_threshold``
            applies to each tile's boxes, its ``batch_size`` to the tiles)
        tile_size: tile side in pixels of the frame (> 0)
        overlap: overlap of neighbouring tiles, a fraction of the tile side in
            ``[0, 0.9]``
        merge: ``"nms"`` or ``"wbf"``
        iou_threshold: IoU above which merged boxes are one person
        full_frame: also detect on the whole frame (finds the large people
            that no tile holds whole)
        border_margin: pixels within which a box edge is on a tile border
        cover_threshold: a cut box covered by this fraction of its area by a
            larger box of another tile / the frame is dropped
        score_threshold: merged boxes scoring below it are dropped (default:
            the wrapped detector's)
        strict: refuse frames whose longer side is shorter than ``tile_size``
            (``False``: such frames are detected whole, untiled — what a
            preset's tile size does on small videos)
    """

    def __init__(
        self,
        detector: Detector,
        tile_size: int,
        overlap: float = 0.2,
        merge: str = "nms",
        iou_threshold: float = 0.5,
        full_frame: bool = True,
        border_margin: float = 2.0,
        cover_threshold: float = 0.6,
        score_threshold: float | None = None,
        strict: bool = True,
    ):
        if not isinstance(detector, Detector):
            raise BadInputError(f"TiledDetector: expected a Detector, got {type(detector).__name__}")
        check_tile_options(tile_size, overlap, merge)
        if tile_size == 0:
            raise BadInputError("det_tile_size: 0 means no tiling; use the detector itself")
        if score_threshold is None:
            score_threshold = detector.score_threshold
        super().__init__(score_threshold, detector.device, detector.batch_size)
        self.detector = detector
        self.tile_size = int(tile_size)
        self.overlap = float(overlap)
        self.merge = merge
        self.iou_threshold = float(iou_threshold)
        self.full_frame = bool(full_frame)
        self.border_margin = float(border_margin)
        self.cover_threshold = float(cover_threshold)
        self.strict = bool(strict)

    def tiles(self, height: int, width: int) -> np.ndarray:
        """The ``(T, 4)`` ``[x1, y1, x2, y2]`` tiles of a frame of that size (none for a frame
        smaller than a tile when not ``strict``)."""
        if not self.strict and self.tile_size >= max(height, width):
            return np.zeros((0, 4), dtype=np.int64)
        return tile_boxes(height, width, self.tile_size, self.overlap)

    def detect(self, frames) -> list[FrameDetections]:
        # all tiles of all frames go to the wrapped detector at once (it batches them)
        frames = check_frames(frames)
        crops, layout = [], []
        for frame in frames:
            h, w = frame.shape[:2]
            tiles = self.tiles(h, w)
            if self.full_frame:  # a tile that is the whole frame adds nothing
                tiles = tiles[~(tiles == [0, 0, w, h]).all(axis=1)]
            layout.append((len(crops), tiles))
            if self.full_frame:
                crops.append(frame)
            crops.extend(frame[y1:y2, x1:x2] for x1, y1, x2, y2 in tiles)
        dets = self.detector.detect(crops) if crops else []
        out = []
        for frame, (start, tiles) in zip(frames, layout):
            n = len(tiles) + int(self.full_frame)
            merged = self.merge_frame(dets[start : start + n], tiles, frame.shape[0], frame.shape[1])
            keep = merged.scores >= self.score_threshold
            order = np.argsort(-merged.scores[keep], kind="stable")
            out.append(merged.select(np.flatnonzero(keep)[order]))
        return out

    def _detect_batch(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        return self.detect(frames)

    def merge_frame(self, dets: list[FrameDetections], tiles: np.ndarray, height: int, width: int) -> FrameDetections:
        """Merges one frame's detections (whole frame first if ``full_frame``, then each tile).

        Args:
            dets: detections in each crop's own pixels
            tiles: the frame's ``(T, 4)`` tiles
            height, width: the frame's size

        Returns:
            the merged detections in frame pixels
        """
        boxes, scores, source, cut = [], [], [], []
        offset = int(self.full_frame)
        if self.full_frame:
            boxes.append(dets[0].boxes)
            scores.append(dets[0].scores)
            source.append(np.full(len(dets[0]), -1))
            cut.append(np.zeros(len(dets[0]), dtype=bool))
        for t, tile in enumerate(tiles):
            d = dets[t + offset]
            shifted = d.boxes + np.array([tile[0], tile[1], tile[0], tile[1]], dtype=np.float64)
            boxes.append(shifted)
            scores.append(d.scores)
            source.append(np.full(len(d), t))
            cut.append(cut_box_mask(shifted, tile, height, width, self.border_margin))
        boxes = np.concatenate(boxes).reshape(-1, 4)
        scores = np.concatenate(scores)
        if not len(boxes):
            return FrameDetections(np.zeros((0, 4)), np.zeros(0))
        keep = ~_covered(boxes, np.concatenate(source), np.concatenate(cut), self.cover_threshold)
        boxes, scores = boxes[keep], scores[keep]
        if self.merge == "wbf":
            boxes, scores = weighted_boxes_fusion([boxes], [scores], iou_thr=self.iou_threshold)
        else:
            kept = nms(boxes, scores, self.iou_threshold, max_det=len(boxes))
            boxes, scores = boxes[kept], scores[kept]
        return FrameDetections(boxes, scores)

    def __repr__(self) -> str:
        return (
            f"TiledDetector({self.detector!r}, tile_size={self.tile_size}, overlap={self.overlap}, "
            f"merge={self.merge!r})"
        )
