"""The :class:`Detector` interface, model spec strings and the backend registry.

A detector turns a batch of BGR ``uint8`` frames into one
:class:`fiftyone_posetrack.types.FrameDetections` per frame: person boxes as
``[x1, y1, x2, y2]`` float **pixels of the original frame** with scores in
``[0, 1]``.

Backends are named by a *model spec* string ``BACKEND:PATH[:CHECKPOINT]``::

    rtmdet-onnx:/models/rtmdet-nano-person/end2end.onnx
    yolox-onnx:/models/yolox-nano/yolox_nano.onnx
    onnx:/models/any.onnx                 # backend sniffed from the graph outputs
    mmdet:configs/rtmdet_m.py:rtmdet_m.pth
    /models/any.onnx                      # no prefix: guessed from the extension

:func:`parse_model_spec` parses such a string (the pose estimators share it, see
:mod:`fiftyone_posetrack.pose.base`) and :func:`make_detector` builds the
detector. Backends are registered lazily as ``"module:Class"`` targets, so a
spec only imports the backend it names (the OpenMMLab ones plug in with
:func:`register_detector` or by adding a line to ``_DETECTORS``).
"""

from __future__ import annotations

import abc
import importlib
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fiftyone_posetrack.types import BadInputError, FrameDetections, MissingDependencyError

__all__ = [
    "Detector",
    "ModelSpec",
    "parse_model_spec",
    "make_detector",
    "register_detector",
    "available_detectors",
    "check_frame",
    "check_frames",
]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        backend: lower-case backend name, e.g. ``"rtmdet-onnx"`` or ``"mmdet"``
        path: the model file (ONNX / TFLite) or the OpenMMLab config
        checkpoint: the OpenMMLab checkpoint (path or URL), or None
    """

    backend: str
    path: str
    checkpoint: str | None = None

    def __str__(self) -> str:
        tail = f":{self.checkpoint}" if self.checkpoint else ""
        return f"{self.backend}:{self.path}{tail}"


_EXTENSION_BACKENDS = {".onnx": "onnx", ".tflite": "tflite", ".py": "mm"}


def parse_model_spec(spec: "str | ModelSpec") -> ModelSpec:
    """Parses ``BACKEND:PATH[:CHECKPOINT]``.

    The checkpoint part is only recognised after a ``.py`` config path (the
    OpenMMLab backends), so paths and URLs with colons stay intact. Without a
    ``BACKEND:`` prefix the backend is guessed from the file extension:
    ``.onnx`` -> ``onnx``, ``.tflite`` -> ``tflite``, ``.py`` -> ``mm``.

    Args:
        spec: the spec string, or a :class:`ModelSpec` (returned as is)

    Returns:
        a :class:`ModelSpec`

    Raises:
        BadInputError: if the string is empty or has no usable backend
    """
    if isinstance(spec, ModelSpec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise BadInputError(f"model spec: expected a string like 'rtmdet-onnx:PATH', got {spec!r}")
    spec = spec.strip()
    head, sep, rest = spec.partition(":")
    if sep and head and "/" not in head and "\\" not in head and "." not in head and len(head) > 1:
        backend, rest = head.lower(), rest
    else:  # no prefix (or a Windows drive letter): guess from the extension
        backend, rest = None, spec
    checkpoint = None
    if ".py:" in rest:
        rest, _, checkpoint = rest.partition(".py:")
        rest += ".py"
        checkpoint = checkpoint or None
    if not rest:
        raise BadInputError(f"model spec {spec!r}: no model path after '{backend}:'")
    if backend is None:
        ext = os.path.splitext(rest)[1].lower()
        if ext not in _EXTENSION_BACKENDS:
            raise BadInputError(
                f"model spec {spec!r}: no 'BACKEND:' prefix and cannot guess the backend "
                f"from the extension {ext!r} (expected one of {sorted(_EXTENSION_BACKENDS)})"
            )
        backend = _EXTENSION_BACKENDS[ext]
    return ModelSpec(backend, rest, checkpoint)


def check_frame(frame, what: str = "frame") -> np.ndarray:
    """Checks that ``frame`` is a BGR ``uint8`` ``(H, W, 3)`` array and returns it."""
    if not isinstance(frame, np.ndarray):
        raise BadInputError(f"{what}: expected a numpy array, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise BadInputError(f"{what}: expected a BGR image of shape (H, W, 3), got {frame.shape}")
    if frame.dtype != np.uint8:
        raise BadInputError(f"{what}: expected dtype uint8, got {frame.dtype}")
    return frame


def check_frames(frames, what: str = "frames") -> list[np.ndarray]:
    """Checks a list of frames (or an ``(B, H, W, 3)`` array); returns a list."""
    if isinstance(frames, np.ndarray):
        if frames.ndim == 3:
            raise BadInputError(
                f"{what}: expected a list of frames (or a (B, H, W, 3) array), got one "
                f"frame of shape {frames.shape}; wrap it in a list"
            )
        frames = list(frames)
    if not isinstance(frames, (list, tuple)):
        raise BadInputError(f"{what}: expected a list of frames, got {type(frames).__name__}")
    return [check_frame(f, f"{what}[{i}]") for i, f in enumerate(frames)]


class Detector(abc.ABC):
    """Base class of person detectors.

    Subclasses implement :meth:`_detect_batch` for at most ``batch_size``
    frames; this class validates the input, splits it into batches and applies
    ``score_threshold``.

    Args:
        score_threshold: detections scoring below it are dropped
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, or ``"auto"`` (CUDA when
            the backend has it, else CPU)
        batch_size: the most frames sent to the model in one forward pass
    """

    def __init__(self, score_threshold: float = 0.3, device: str = "auto", batch_size: int = 8):
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise BadInputError(
                f"score_threshold: expected a value in [0, 1], got {score_threshold}"
            )
        if int(batch_size) < 1:
            raise BadInputError(f"batch_size: expected >= 1, got {batch_size}")
        self.score_threshold = float(score_threshold)
        self.device = str(device)
        self.batch_size = int(batch_size)

    @abc.abstractmethod
    def _detect_batch(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        """Detects persons in validated frames (at most ``batch_size`` of them)."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[FrameDetections]:
        """Detects persons in a batch of frames.

        Args:
            frames: a list of BGR ``uint8`` ``(H, W, 3)`` arrays (sizes may differ)

        Returns:
            one :class:`FrameDetections` per frame, boxes ``[x1, y1, x2, y2]``
            in pixels of that frame, sorted by decreasing score
        """
        frames = check_frames(frames)
        out: list[FrameDetections] = []
        for start in range(0, len(frames), self.batch_size):
            for dets in self._detect_batch(frames[start : start + self.batch_size]):
                keep = dets.scores >= self.score_threshold
                order = np.argsort(-dets.scores[keep], kind="stable")
                out.append(dets.select(np.flatnonzero(keep)[order]))
        return out

    def detect_one(self, frame: np.ndarray) -> FrameDetections:
        """Detects persons in one BGR ``uint8`` frame."""
        return self.detect([check_frame(frame)])[0]

    @classmethod
    def from_spec(cls, spec: ModelSpec, **kwargs) -> "Detector":
        """Builds the detector from a parsed spec (model file backends)."""
        return cls(spec.path, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(score_threshold={self.score_threshold}, device={self.device!r})"
        )


#: backend name -> "module:Class" (imported on first use)
_DETECTORS: dict[str, str] = {
    "rtmdet-onnx": "fiftyone_posetrack.detection.onnx_rtmdet:RTMDetONNX",
    "yolox-onnx": "fiftyone_posetrack.detection.onnx_yolox:YOLOXONNX",
    "mmdet": "fiftyone_posetrack.detection.mmdet:MMDetDetector",
}


def register_detector(backend: str, target: "str | type[Detector]") -> None:
    """Registers a detector backend under ``backend`` (a class or ``"module:Class"``)."""
    _DETECTORS[backend.lower()] = target


def available_detectors() -> list[str]:
    """The registered detector backend names (plus ``onnx`` which sniffs the graph)."""
    return sorted([*_DETECTORS, "onnx"])


def resolve_target(target, kind: str, backend: str):
    """Imports a ``"module:Class"`` registry target."""
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise MissingDependencyError(
            f"{kind} backend {backend!r} is not available: importing {module_name} failed ({e}). "
            "The mmdet/mmpose backends need the OpenMMLab extra: "
            "pip install 'fiftyone-posetrack[mm]'"
        ) from e
    return getattr(module, attr)


def make_detector(spec: "str | ModelSpec", **kwargs) -> Detector:
    """Builds a detector from a model spec string.

    Args:
        spec: ``BACKEND:PATH[:CHECKPOINT]``, see :func:`parse_model_spec`;
            ``onnx:PATH`` picks the ONNX backend from the graph's outputs
            (mmdeploy ``dets``/``labels`` -> RTMDet, one raw ``[1, A, 5 + C]``
            output -> YOLOX)
        **kwargs: passed to the backend (``score_threshold``, ``device``, ...)

    Returns:
        a :class:`Detector`
    """
    parsed = parse_model_spec(spec)
    backend = parsed.backend
    if backend == "mm":
        backend = "mmdet"
    if backend == "onnx":
        from fiftyone_posetrack.detection.runtime import sniff_onnx_detector

        backend = sniff_onnx_detector(parsed.path)
        parsed = ModelSpec(backend, parsed.path, parsed.checkpoint)
    if backend not in _DETECTORS:
        raise BadInputError(
            f"model spec {str(spec)!r}: unknown detector backend {backend!r} "
            f"(expected one of {available_detectors()})"
        )
    cls = resolve_target(_DETECTORS[backend], "detector", backend)
    return cls.from_spec(parsed, **kwargs)
