"""The interface of appearance (ReID) embedders and their shared preprocessing.

An embedder turns person boxes of a frame into L2-normalized features::

    emb = make_embedder("mobilenet")              # offline default
    feats = emb.embed(frame_bgr, boxes_xyxy)      # (N, D) float32

Test-time augmentation as in the HIE 2020 challenge winner ("Towards Accurate
Human Pose Estimation in Videos of Crowded Scenes", Wang et al.): the
features of the crop and of its horizontal mirror, at each of several input
scales (``scales`` relative to the model's input size, e.g.
``(1.0, 0.875, 1.125)``), are averaged, then L2-normalized.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import cv2
import numpy as np

from fiftyone_posetrack.types import BadInputError

__all__ = ["Embedder", "IMAGENET_MEAN", "IMAGENET_STD", "crop_batch", "check_frame_boxes"]

#: ImageNet RGB mean / std on the 0-255 scale
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def check_frame_boxes(frame, boxes) -> tuple[np.ndarray, np.ndarray]:
    """Validates a BGR ``uint8`` frame and ``(N, 4)`` pixel boxes."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise BadInputError(
            f"frame: expected an (H, W, 3) uint8 BGR image, got {frame.shape} {frame.dtype}"
        )
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return frame, np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise BadInputError(f"boxes: expected shape (N, 4) [x1, y1, x2, y2], got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise BadInputError("boxes: contain NaN or inf")
    if (boxes[:, 2:] < boxes[:, :2]).any():
        raise BadInputError("boxes: x2 < x1 or y2 < y1 (expected [x1, y1, x2, y2] pixels)")
    return frame, boxes


def crop_batch(
    frame: np.ndarray,
    boxes: np.ndarray,
    size_hw: tuple[int, int],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    rgb: bool = True,
) -> np.ndarray:
    """Crops, resizes and normalizes boxes into an ``(N, 3, H, W)`` float32 batch.

    Boxes are clipped to the frame (at least one pixel is kept), resized
    bilinearly to ``size_hw``, converted to RGB if ``rgb`` and normalized
    with ``(x - mean) / std`` (0-255 scale).
    """
    h, w = frame.shape[:2]
    out_h, out_w = size_hw
    b = np.round(boxes).astype(np.int64)
    x1 = np.clip(b[:, 0], 0, w - 1)
    y1 = np.clip(b[:, 1], 0, h - 1)
    x2 = np.maximum(np.clip(b[:, 2], 0, w), x1 + 1)
    y2 = np.maximum(np.clip(b[:, 3], 0, h), y1 + 1)
    crops = np.stack(
        [
            cv2.resize(frame[t:bm, lf:r], (out_w, out_h), interpolation=cv2.INTER_LINEAR)
            for lf, t, r, bm in zip(x1, y1, x2, y2)
        ]
    )  # (N, H, W, 3) BGR
    if rgb:
        crops = crops[..., ::-1]
    batch = (crops.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class Embedder(abc.ABC):
    """Base class: crops boxes, runs the network on batches, combines features.

    Args:
        input_size: ``(H, W)`` the network was trained on
        flip: also embed the mirrored crop and average
        scales: input scales relative to ``input_size``, averaged
        batch_size: crops per forward pass
        mean, std, rgb: input normalization (0-255 scale) and channel order
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        flip: bool = True,
        scales: Sequence[float] = (1.0,),
        batch_size: int = 32,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        rgb: bool = True,
    ):
        scales = tuple(float(s) for s in np.atleast_1d(scales))
        if not scales or min(scales) <= 0:
            raise BadInputError(f"scales: expected positive numbers, got {scales}")
        if int(batch_size) < 1:
            raise BadInputError(f"batch_size must be >= 1, got {batch_size}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.flip = bool(flip)
        self.scales = scales
        self.batch_size = int(batch_size)
        self.mean, self.std, self.rgb = tuple(mean), tuple(std), bool(rgb)

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Feature dimension ``D``."""

    @abc.abstractmethod
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """``(B, 3, H, W)`` float32 normalized crops -> ``(B, D)`` raw features."""

    def _sizes(self) -> list[tuple[int, int]]:
        h, w = self.input_size
        return [(max(int(round(h * s)), 8), max(int(round(w * s)), 8)) for s in self.scales]

    def embed(self, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Appearance features of the boxes of one frame.

        Args:
            frame_bgr: ``(H, W, 3)`` ``uint8`` BGR frame
            boxes_xyxy: ``(N, 4)`` ``[x1, y1, x2, y2]`` boxes in pixels

        Returns:
            ``(N, D)`` float32 L2-normalized features
        """
        frame, boxes = check_frame_boxes(frame_bgr, boxes_xyxy)
        n = len(boxes)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        total = None
        for size in self._sizes():
            batch = crop_batch(frame, boxes, size, self.mean, self.std, self.rgb)
            if self.flip:
                batch = np.concatenate([batch, batch[..., ::-1]])
            feats = np.concatenate(
                [
                    np.asarray(self._forward(np.ascontiguousarray(batch[i : i + self.batch_size])))
                    for i in range(0, len(batch), self.batch_size)
                ]
            ).astype(np.float64)
            feats = feats[:n] + feats[n:] if self.flip else feats
            total = feats if total is None else total + feats
        norm = np.linalg.norm(total, axis=1, keepdims=True)
        return (total / np.maximum(norm, 1e-12)).astype(np.float32)

    __call__ = embed
