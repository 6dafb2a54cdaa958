"""RTMDet person detector exported by mmdeploy to ONNX (``end2end.onnx``, NMS inside).

Weights: the RTMDet-nano / -m person detectors of mmpose's RTMPose project
(``rtmdet_nano_8xb32-300e_coco-person``, Apache-2.0), exported with mmdeploy's
``detection_onnxruntime_dynamic`` config; the ready-made SDK folders are linked
from https://github.com/open-mmlab/mmpose/tree/main/projects/rtmpose
(``rtmdet-nano`` / ``rtmdet-m`` "onnx sdk" zips).

Preprocessing follows the exported ``pipeline.json`` when it lies next to the
ONNX file, else the RTMDet-nano defaults: BGR, keep-ratio resize to 320 x 320,
pad bottom/right with 114, ``(x - mean) / std`` with mean
``(103.53, 116.28, 123.675)`` and std ``(57.375, 57.12, 58.395)``. The graph
outputs ``dets`` ``[B, N, 5]`` (``x1, y1, x2, y2, score`` in the padded input
frame) and ``labels`` ``[B, N]``; boxes are divided by the resize ratio to get
frame pixels.

mmdeploy declares the batch axis dynamic, but the NMS part of the graph fails
for batch > 1 (a ``Where`` node broadcasts the batch against the anchors). The
detector therefore tries one batched run and falls back to one frame per run,
for good, when onnxruntime refuses it.
"""

from __future__ import annotations

import logging

import numpy as np

from fiftyone_posetrack.detection.base import Detector
from fiftyone_posetrack.detection.preprocess import (
    check_input_size,
    input_canvas,
    letterbox_batch,
    read_mmdeploy_pipeline,
    unletterbox_detections,
)
from fiftyone_posetrack.detection.runtime import onnx_session
from fiftyone_posetrack.types import BadInputError, FrameDetections

logger = logging.getLogger(__name__)

__all__ = ["RTMDetONNX"]

SOURCE = (
    "the RTMDet person 'onnx sdk' zips linked from "
    "https://github.com/open-mmlab/mmpose/tree/main/projects/rtmpose (or export with mmdeploy)"
)


class RTMDetONNX(Detector):
    """RTMDet (mmdeploy end2end ONNX) person detector.

    Args:
        model_path: the ``end2end.onnx`` file
        score_threshold: detections below it are dropped
        device: ``"cpu"``, ``"cuda[:N]"`` or ``"auto"``
        batch_size: frames per forward pass (the shared RTMDet export only runs
            batch 1; larger batches are tried once, see the module docstring)
        person_label: the label id of persons in the model (0 for the person
            only models and for COCO-80 models)
        input_size: the model input: an int is the frames' longer side in
            pixels (the canvas follows the frames' aspect ratio, sides rounded
            up to multiples of 32; the mmdeploy export has dynamic H and W),
            a ``(width, height)`` pair a fixed canvas, 0 / None the export's
            own size (``pipeline.json``, else 320 x 320)
        mean, std, to_rgb, pad_value: preprocessing overrides;
            default to ``pipeline.json`` next to the model, else RTMDet-nano's
        threads: onnxruntime intra-op CPU threads (0: default)
    """

    def __init__(
        self,
        model_path,
        score_threshold: float = 0.3,
        device: str = "auto",
        batch_size: int = 8,
        person_label: int = 0,
        input_size: "int | tuple[int, int] | None" = None,
        mean=None,
        std=None,
        to_rgb: bool | None = None,
        pad_value: int | None = None,
        threads: int = 0,
    ):
        super().__init__(score_threshold, device, batch_size)
        self.session = onnx_session(model_path, device, "RTMDet ONNX model", SOURCE, threads)
        names = [o.name for o in self.session.get_outputs()]
        if "dets" not in names or "labels" not in names:
            raise BadInputError(
                f"RTMDet ONNX model {model_path!r}: expected mmdeploy end2end outputs 'dets' and "
                f"'labels', got {names}"
            )
        self.input_name = self.session.get_inputs()[0].name
        cfg = read_mmdeploy_pipeline(model_path) or {}
        self.longer_side = 0
        if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, bool):
            self.longer_side = check_input_size(input_size, "input_size")
            input_size = None
        self.input_size = tuple(input_size or cfg.get("size", (320, 320)))
        self.mean = mean if mean is not None else cfg.get("mean", (103.53, 116.28, 123.675))
        self.std = std if std is not None else cfg.get("std", (57.375, 57.12, 58.395))
        self.to_rgb = bool(to_rgb if to_rgb is not None else cfg.get("to_rgb", False))
        self.pad_value = int(pad_value if pad_value is not None else cfg.get("pad_value", 114))
        self.person_label = int(person_label)
        self._batched_ok = batch_size > 1

    def _run(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._batched_ok and len(tensor) > 1:
            import onnxruntime as ort

            quiet = ort.RunOptions()
            quiet.log_severity_level = 4  # the expected failure is reported below, once
            try:
                dets, labels = self.session.run(
                    ["dets", "labels"], {self.input_name: tensor}, quiet
                )
                return dets, labels
            except Exception as e:  # onnxruntime's Fail: this export only runs batch 1
                logger.info(
                    "RTMDet ONNX refuses batch %d (%s); running frame by frame", len(tensor), e
                )
                self._batched_ok = False
        outs = [self.session.run(["dets", "labels"], {self.input_name: t[None]}) for t in tensor]
        n = max(o[0].shape[1] for o in outs)
        dets = np.zeros((len(outs), n, 5), np.float32)
        labels = np.full((len(outs), n), -1, np.int64)
        for i, (d, lab) in enumerate(outs):
            dets[i, : d.shape[1]] = d[0]
            labels[i, : lab.shape[1]] = lab[0]
        return dets, labels

    def _detect_batch(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        size = input_canvas(frames, self.longer_side) if self.longer_side else self.input_size
        tensor, ratios = letterbox_batch(
            frames,
            size,
            self.mean,
            self.std,
            self.to_rgb,
            self.pad_value,
            round_half_up=True,
        )
        dets, labels = self._run(tensor)
        out = []
        for frame, ratio, d, lab in zip(frames, ratios, dets, labels):
            keep = (lab == self.person_label) & (d[:, 4] >= self.score_threshold)
            out.append(unletterbox_detections(d[keep, :4], d[keep, 4], ratio, frame.shape))
        return out
