"""The :class:`PoseEstimator` interface and the pose backend registry.

A top-down pose estimator takes a BGR ``uint8`` frame and person boxes
``[x1, y1, x2, y2]`` in pixels, and returns COCO-17 keypoints ``(N, 17, 2)``
as ``(x, y)`` **pixels of the frame** (NaN for a joint the model could not
place) and per-joint scores ``(N, 17)``.

Model specs are those of :func:`fiftyone_posetrack.detection.base.parse_model_spec`::

    rtmpose-onnx:/models/rtmpose-m/end2end.onnx
    movenet-tflite:/models/movenet/lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite
    mmpose:configs/rtmpose-m_coco-256x192.py:rtmpose-m.pth
    /models/x.tflite                      # -> movenet-tflite;  /models/x.onnx -> rtmpose-onnx
"""

from __future__ import annotations

import abc
from typing import Sequence

import numpy as np

from fiftyone_posetrack.detection.base import (
    ModelSpec,
    check_frame,
    check_frames,
    parse_model_spec,
    resolve_target,
)
from fiftyone_posetrack.types import BadInputError, _check_boxes

__all__ = [
    "PoseEstimator",
    "make_pose_estimator",
    "register_pose_estimator",
    "available_pose_estimators",
]

PoseResult = tuple[np.ndarray, np.ndarray]


class PoseEstimator(abc.ABC):
    """Base class of top-down pose estimators.

    Subclasses implement :meth:`_estimate_many` for a list of frames and a
    flat list of ``(frame index, box)`` pairs; this class validates input,
    splits the boxes into chunks of ``batch_size`` and regroups the results
    per frame.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``
        batch_size: the most person crops per forward pass

    Attributes:
        num_keypoints: joints per person (17, COCO order)
    """

    num_keypoints: int = 17

    def __init__(self, device: str = "auto", batch_size: int = 32):
        if int(batch_size) < 1:
            raise BadInputError(f"batch_size: expected >= 1, got {batch_size}")
        self.device = str(device)
        self.batch_size = int(batch_size)

    @abc.abstractmethod
    def _estimate_many(
        self, frames: list[np.ndarray], frame_index: np.ndarray, boxes: np.ndarray
    ) -> PoseResult:
        """Estimates poses for ``boxes[i]`` in ``frames[frame_index[i]]``.

        Returns:
            ``(M, K, 2)`` frame-pixel keypoints and ``(M, K)`` scores
        """

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> PoseResult:
        """Estimates the poses of the persons in ``boxes`` of one frame.

        Args:
            frame: BGR ``uint8`` ``(H, W, 3)`` image
            boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` boxes in pixels

        Returns:
            ``(keypoints, scores)``: ``(N, 17, 2)`` ``(x, y)`` pixels of the
            frame and ``(N, 17)`` scores
        """
        return self.estimate_batch([check_frame(frame)], [boxes])[0]

    def estimate_batch(
        self, frames: Sequence[np.ndarray], boxes_per_frame: Sequence[np.ndarray]
    ) -> list[PoseResult]:
        """Estimates poses in several frames, all boxes in as few forward passes as allowed.

        Args:
            frames: BGR ``uint8`` frames
            boxes_per_frame: one ``(N_i, 4)`` ``[x1, y1, x2, y2]`` array per frame

        Returns:
            one ``(keypoints (N_i, 17, 2), scores (N_i, 17))`` pair per frame
        """
        frames = check_frames(frames)
        if len(boxes_per_frame) != len(frames):
            raise BadInputError(
                f"estimate_batch: {len(frames)} frames but {len(boxes_per_frame)} box arrays"
            )
        checked = [_check_boxes(b, f"boxes of frame {i}") for i, b in enumerate(boxes_per_frame)]
        counts = [len(b) for b in checked]
        boxes = np.concatenate(checked) if checked else np.zeros((0, 4))
        index = np.repeat(np.arange(len(frames)), counts)
        k = self.num_keypoints
        kps, scores = np.zeros((0, k, 2)), np.zeros((0, k))
        if len(boxes):
            parts = [
                self._estimate_many(
                    frames, index[s : s + self.batch_size], boxes[s : s + self.batch_size]
                )
                for s in range(0, len(boxes), self.batch_size)
            ]
            kps = np.concatenate([p[0] for p in parts]).astype(np.float64)
            scores = np.concatenate([p[1] for p in parts]).astype(np.float64)
        splits = np.cumsum(counts)[:-1]
        return list(zip(np.split(kps, splits), np.split(scores, splits)))

    @classmethod
    def from_spec(cls, spec: ModelSpec, **kwargs) -> "PoseEstimator":
        """Builds the estimator from a parsed spec (model file backends)."""
        return cls(spec.path, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device!r})"


#: backend name -> "module:Class" (imported on first use)
_POSE_ESTIMATORS: dict[str, str] = {
    "rtmpose-onnx": "fiftyone_posetrack.pose.onnx_rtmpose:RTMPoseONNX",
    "movenet-tflite": "fiftyone_posetrack.pose.tflite_movenet:MoveNetTFLite",
    "mmpose": "fiftyone_posetrack.pose.mmpose:MMPoseEstimator",
}
_ALIASES = {"onnx": "rtmpose-onnx", "tflite": "movenet-tflite", "mm": "mmpose"}


def register_pose_estimator(backend: str, target) -> None:
    """Registers a pose backend under ``backend`` (a class or ``"module:Class"``)."""
    _POSE_ESTIMATORS[backend.lower()] = target


def available_pose_estimators() -> list[str]:
    """The registered pose backend names."""
    return sorted(_POSE_ESTIMATORS)


def make_pose_estimator(spec: "str | ModelSpec", **kwargs) -> PoseEstimator:
    """Builds a pose estimator from a model spec string.

    Args:
        spec: ``BACKEND:PATH[:CHECKPOINT]`` (see
            :func:`fiftyone_posetrack.detection.base.parse_model_spec`);
            ``onnx:`` means ``rtmpose-onnx:``, ``tflite:`` ``movenet-tflite:``
        **kwargs: passed to the backend (``device``, ``batch_size``, ...)

    Returns:
        a :class:`PoseEstimator`
    """
    parsed = parse_model_spec(spec)
    backend = _ALIASES.get(parsed.backend, parsed.backend)
    if backend not in _POSE_ESTIMATORS:
        raise BadInputError(
            f"model spec {str(spec)!r}: unknown pose backend {backend!r} "
            f"(expected one of {available_pose_estimators()})"
        )
    cls = resolve_target(_POSE_ESTIMATORS[backend], "pose", backend)
    return cls.from_spec(ModelSpec(backend, parsed.path, parsed.checkpoint), **kwargs)
