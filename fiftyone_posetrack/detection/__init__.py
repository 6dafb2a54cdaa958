"""Person detection: the :class:`Detector` interface, ONNX backends and box fusion.

Build a detector from a model spec string::

    from fiftyone_posetrack.detection import make_detector

    detector = make_detector("rtmdet-onnx:models/rtmdet-nano-person/end2end.onnx",
                             score_threshold=0.3, device="auto")
    dets = detector.detect([frame_bgr])[0]   # FrameDetections, pixels [x1, y1, x2, y2]

Backends: ``rtmdet-onnx`` (:mod:`.onnx_rtmdet`), ``yolox-onnx``
(:mod:`.onnx_yolox`), ``onnx`` (sniffs which of the two), ``mmdet`` (the
OpenMMLab backend, when installed). :class:`FusedDetector` fuses several
detectors with weighted boxes fusion (:mod:`.fusion`); :class:`TiledDetector`
runs one on overlapping tiles plus the whole frame (sliced inference,
:mod:`.tiling`). Every backend takes ``input_size`` (the longer side in pixels).
"""

from fiftyone_posetrack.detection.base import (
    Detector,
    ModelSpec,
    available_detectors,
    make_detector,
    parse_model_spec,
    register_detector,
)
from fiftyone_posetrack.detection.fusion import FusedDetector, weighted_boxes_fusion
from fiftyone_posetrack.detection.nms import box_iou, nms
from fiftyone_posetrack.detection.tiling import TiledDetector

__all__ = [
    "Detector",
    "ModelSpec",
    "FusedDetector",
    "TiledDetector",
    "available_detectors",
    "box_iou",
    "make_detector",
    "nms",
    "parse_model_spec",
    "register_detector",
    "weighted_boxes_fusion",
]
