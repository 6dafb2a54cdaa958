"""Typed containers passed between the pipeline stages.

Every stage speaks in **pixel** coordinates of the original frame, with boxes as
``[x1, y1, x2, y2]`` (top-left and bottom-right corners, float). Conversion to
FiftyOne's relative ``[x, y, w, h]`` in ``[0, 1]`` happens only in
:mod:`fiftyone_posetrack.fo`, at the very end.

These classes are deliberately thin: they hold numpy arrays, validate their
shapes once at construction, and offer a few vectorized helpers. They never
touch a database, so all numerics can be tested without FiftyOne.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PosetrackError",
    "BadInputError",
    "DatabaseUnavailableError",
    "ModelUnavailableError",
    "MissingDependencyError",
    "missing_dependency",
    "FrameDetections",
    "FrameTracks",
    "FramePoses",
    "xyxy_to_xywh",
    "xywh_to_xyxy",
]


class PosetrackError(Exception):
    """Base of this package's errors; ``exit_code`` is the ``posetrack`` CLI's exit status for it.

    The message always says what went wrong and what to do.
    """

    exit_code = 1


class BadInputError(PosetrackError, ValueError):
    """Raised when user input (a file, an array, a parameter) is unusable (CLI exit 2).

    The message always names the offending input and what was expected.
    """

    exit_code = 2


class DatabaseUnavailableError(PosetrackError):
    """The FiftyOne database did not answer (stopped, restarting, unreachable) (CLI exit 3)."""

    exit_code = 3


class ModelUnavailableError(PosetrackError):
    """A named model is not here and cannot be downloaded (offline, failed download) (CLI exit 4).

    The message gives the URL and where to put the file.
    """

    exit_code = 4


class MissingDependencyError(PosetrackError, ImportError):
    """An optional dependency is not installed (CLI exit 5); the message names the pip extra."""

    exit_code = 5


def missing_dependency(what: str, package: str, extra: str, error: Exception | None = None) -> MissingDependencyError:
    """The :class:`MissingDependencyError` for ``what`` needing ``package`` of extra ``extra``.

    Args:
        what: what needs it (e.g. ``"MoveNet TFLite"``)
        package: the missing pip package (e.g. ``"ai-edge-litert"``)
        extra: the ``fiftyone-posetrack`` extra that installs it (e.g. ``"lite"``)
        error: the ImportError, quoted in the message
    """
    detail = f" ({error})" if error else ""
    return MissingDependencyError(
        f"{what} needs {package}, which is not installed{detail}: pip install 'fiftyone-posetrack[{extra}]'"
    )


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Converts ``(N, 4)`` ``[x1, y1, x2, y2]`` boxes to ``[x, y, w, h]``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes.copy()
    out[:, 2:] = boxes[:, 2:] - boxes[:, :2]
    return out


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Converts ``(N, 4)`` ``[x, y, w, h]`` boxes to ``[x1, y1, x2, y2]``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes.copy()
    out[:, 2:] = boxes[:, :2] + boxes[:, 2:]
    return out


def _check_boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise BadInputError(f"{what}: expected boxes of shape (N, 4), got {boxes.shape}")
    if not np.isfinite(boxes).all():
        bad = np.flatnonzero(~np.isfinite(boxes).all(axis=1))
        raise BadInputError(f"{what}: boxes {bad.tolist()} contain NaN or inf")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
        raise BadInputError(
            f"{what}: boxes {bad.tolist()} have negative width or height "
            "(expected [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1)"
        )
    return boxes


def _check_vector(values, n: int, what: str, default: float | None = None) -> np.ndarray:
    if values is None:
        if default is None:
            raise BadInputError(f"{what} is required")
        return np.full(n, default, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.shape[0] != n:
        raise BadInputError(f"{what}: expected {n} values, got {values.shape[0]}")
    return values


@dataclass
class FrameDetections:
    """Person detections of one frame.

    Attributes:
        boxes: ``(N, 4)`` float ``[x1, y1, x2, y2]`` in pixels
        scores: ``(N,)`` confidences in ``[0, 1]``
        embeddings: optional ``(N, D)`` L2-normalized appearance features
    """

    boxes: np.ndarray
    scores: np.ndarray = None
    embeddings: np.ndarray | None = None

    def __post_init__(self):
        self.boxes = _check_boxes(self.boxes, "detections")
        self.scores = _check_vector(self.scores, len(self.boxes), "detection scores", 1.0)
        if self.embeddings is not None:
            emb = np.asarray(self.embeddings, dtype=np.float32)
            if emb.ndim != 2 or emb.shape[0] != len(self.boxes):
                raise BadInputError(
                    f"embeddings: expected shape ({len(self.boxes)}, D), got {emb.shape}"
                )
            self.embeddings = emb

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> "FrameDetections":
        return cls(np.zeros((0, 4)), np.zeros(0))

    def select(self, keep) -> "FrameDetections":
        """Returns the detections at the boolean mask or indices ``keep``."""
        emb = None if self.embeddings is None else self.embeddings[keep]
        return FrameDetections(self.boxes[keep], self.scores[keep], emb)


@dataclass
class FrameTracks:
    """Tracker output for one frame.

    Attributes:
        boxes: ``(M, 4)`` float ``[x1, y1, x2, y2]`` in pixels
        track_ids: ``(M,)`` int, stable across frames, starting at 1
        scores: ``(M,)`` detection confidences (0 for boxes the tracker predicted
            without a detection)
        det_indices: ``(M,)`` int, index of the input detection each track was
            matched to in this frame, or -1 when the box is a prediction
    """

    boxes: np.ndarray
    track_ids: np.ndarray
    scores: np.ndarray = None
    det_indices: np.ndarray = None

    def __post_init__(self):
        self.boxes = _check_boxes(self.boxes, "tracks")
        n = len(self.boxes)
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        if self.track_ids.shape[0] != n:
            raise BadInputError(f"tracks: expected {n} track ids, got {len(self.track_ids)}")
        self.scores = _check_vector(self.scores, n, "track scores", 1.0)
        if self.det_indices is None:
            self.det_indices = np.full(n, -1, dtype=np.int64)
        self.det_indices = np.asarray(self.det_indices, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> "FrameTracks":
        return cls(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0))


@dataclass
class FramePoses:
    """Keypoints of the tracked people of one frame, aligned with a FrameTracks.

    Attributes:
        keypoints: ``(M, K, 2)`` float ``(x, y)`` in pixels; NaN for a joint
            that was not estimated
        scores: ``(M, K)`` per-joint confidences in ``[0, 1]``
        track_ids: ``(M,)`` int track id of each person
        boxes: optional ``(M, 4)`` ``[x1, y1, x2, y2]`` boxes the poses were
            estimated in
    """

    keypoints: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    boxes: np.ndarray = field(default=None)

    def __post_init__(self):
        kp = np.asarray(self.keypoints, dtype=np.float64)
        if kp.size == 0:
            kp = kp.reshape(0, kp.shape[1] if kp.ndim == 3 else 17, 2)
        if kp.ndim != 3 or kp.shape[2] != 2:
            raise BadInputError(f"keypoints: expected shape (M, K, 2), got {kp.shape}")
        self.keypoints = kp
        sc = np.asarray(self.scores, dtype=np.float64).reshape(kp.shape[0], kp.shape[1])
        self.scores = sc
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        if self.track_ids.shape[0] != kp.shape[0]:
            raise BadInputError(
                f"poses: {kp.shape[0]} poses but {self.track_ids.shape[0]} track ids"
            )
        if self.boxes is not None:
            self.boxes = _check_boxes(self.boxes, "pose boxes")

    def __len__(self) -> int:
        return len(self.keypoints)
