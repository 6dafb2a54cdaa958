"""YOLOX (COCO-80) exported to ONNX with raw head outputs, used as a person detector.

Weights: the official YOLOX ONNX exports (``yolox_nano.onnx``, ``yolox_tiny.onnx``,
``yolox_s.onnx`` ...) from the releases of https://github.com/Megvii-BaseDetection/YOLOX
(Apache-2.0), see its ``demo/ONNXRuntime`` page.

Preprocessing is the one of YOLOX >= 0.2.0 (``yolox.data.data_augment.preproc``):
BGR, keep-ratio resize (sizes truncated), top-left on a canvas filled with 114,
raw 0-255 values, no normalisation. Checked on real frames: the pre-0.2 "legacy"
variant (RGB / 255, ImageNet mean/std) gives objectness below 0.06 on images
full of people, so it is available only as ``legacy=True`` for old exports.

The output ``[B, A, 5 + C]`` holds, per anchor point of the stride 8/16/32
grids, ``(dx, dy, log w, log h)`` and sigmoid objectness and class scores:
``center = (d + grid) * stride``, ``size = exp(log size) * stride``. The
person score is ``objectness * p(person)``; boxes go through class-agnostic
greedy NMS (only one class is kept).
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.detection.base import Detector
from fiftyone_posetrack.detection.nms import nms
from fiftyone_posetrack.detection.preprocess import letterbox_batch, unletterbox_detections
from fiftyone_posetrack.detection.runtime import onnx_session
from fiftyone_posetrack.types import BadInputError, FrameDetections

__all__ = ["YOLOXONNX", "yolox_grids", "decode_yolox"]

SOURCE = "the YOLOX releases (https://github.com/Megvii-BaseDetection/YOLOX, demo/ONNXRuntime)"


def yolox_grids(input_size: tuple[int, int], strides=(8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """The anchor-point grid of a YOLOX head.

    Args:
        input_size: ``(width, height)`` of the model input
        strides: the head strides, finest first

    Returns:
        ``(grid, stride)``: ``(A, 2)`` cell ``(x, y)`` indices and ``(A, 1)``
        strides, in the order of the output rows
    """
    grids, steps = [], []
    for s in strides:
        h, w = input_size[1] // s, input_size[0] // s
        ys, xs = np.mgrid[0:h, 0:w]
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full((h * w, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)


def decode_yolox(raw: np.ndarray, grid: np.ndarray, stride: np.ndarray, class_id: int = 0):
    """Decodes raw YOLOX outputs of one image for one class.

    Args:
        raw: ``(A, 5 + C)`` raw output rows
        grid, stride: from :func:`yolox_grids`
        class_id: the class to score

    Returns:
        ``(boxes, scores)``: ``(A, 4)`` ``[x1, y1, x2, y2]`` in input pixels and
        ``(A,)`` ``objectness * p(class)``
    """
    centers = (raw[:, :2] + grid) * stride
    sizes = np.exp(np.minimum(raw[:, 2:4], 20.0)) * stride
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
    return boxes, raw[:, 4] * raw[:, 5 + class_id]


class YOLOXONNX(Detector):
    """YOLOX (raw-output ONNX) person detector.

    Args:
        model_path: the ``.onnx`` file
        score_threshold: detections below it are dropped (before NMS)
        device: ``"cpu"``, ``"cuda[:N]"`` or ``"auto"``
        batch_size: frames per forward pass (1 unless the export has a
            dynamic batch axis)
        nms_threshold: IoU above which NMS suppresses a box (YOLOX's demo: 0.45)
        person_class: class index of persons (0 in COCO-80)
        legacy: pre-0.2 YOLOX preprocessing (RGB / 255, ImageNet mean/std)
        max_det: the most detections kept per frame
        input_size: 0 / None, or the export's own input size (its longer
            side, or ``(width, height)``): the official YOLOX ONNX files have a
            fixed input (nano / tiny 416, s / m / l / x 640), so any other size
            is refused; export the model again at the size you need
        threads: onnxruntime intra-op CPU threads (0: default)
    """

    def __init__(
        self,
        model_path,
        score_threshold: float = 0.3,
        device: str = "auto",
        batch_size: int = 8,
        nms_threshold: float = 0.45,
        person_class: int = 0,
        legacy: bool = False,
        max_det: int = 100,
        input_size: "int | tuple[int, int] | None" = None,
        threads: int = 0,
    ):
        super().__init__(score_threshold, device, batch_size)
        self.session = onnx_session(model_path, device, "YOLOX ONNX model", SOURCE, threads)
        inp = self.session.get_inputs()[0]
        out = self.session.get_outputs()
        if len(inp.shape) != 4 or not all(isinstance(d, int) for d in inp.shape[2:]):
            raise BadInputError(
                f"YOLOX ONNX model {model_path!r}: expected a fixed-size [B, 3, H, W] input, "
                f"got {inp.shape}"
            )
        if len(out) != 1 or len(out[0].shape) != 3:
            raise BadInputError(
                f"YOLOX ONNX model {model_path!r}: expected one raw [B, A, 5 + C] output "
                f"(exported without decode_in_inference), got {[o.shape for o in out]}"
            )
        self.input_name = inp.name
        self.input_size = (int(inp.shape[3]), int(inp.shape[2]))
        if not isinstance(inp.shape[0], int) or inp.shape[0] != 1:
            self._max_batch = batch_size
        else:
            self._max_batch = 1
        self._check_input_size(model_path, input_size)
        self.grid, self.stride = yolox_grids(self.input_size)
        n_out = out[0].shape[1]
        if isinstance(n_out, int) and n_out != len(self.grid):
            raise BadInputError(
                f"YOLOX ONNX model {model_path!r}: {n_out} output rows, but a {self.input_size} "
                f"input with strides 8/16/32 has {len(self.grid)} anchor points"
            )
        self.nms_threshold = float(nms_threshold)
        self.person_class = int(person_class)
        self.legacy = bool(legacy)
        self.max_det = int(max_det)

    def _check_input_size(self, model_path, input_size) -> None:
        if input_size is None or (isinstance(input_size, (int, np.integer)) and input_size == 0):
            return
        if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, bool):
            ok = int(input_size) == max(self.input_size)
        else:
            ok = tuple(int(v) for v in input_size) == self.input_size
        if not ok:
            w, h = self.input_size
            raise BadInputError(
                f"YOLOX ONNX model {model_path!r}: input size {input_size!r} is not possible, the "
                f"export has a fixed {w}x{h} input (the official YOLOX ONNX files are fixed at 416 "
                f"or 640); use 0 (the model's own size) or {max(w, h)}, or export the model at the "
                "size you need"
            )

    def _preprocess(self, frames):
        if self.legacy:
            return letterbox_batch(
                frames, self.input_size, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375),
                to_rgb=True, round_half_up=False,
            )  # fmt: skip
        return letterbox_batch(frames, self.input_size, round_half_up=False)

    def _detect_batch(self, frames: list[np.ndarray]) -> list[FrameDetections]:
        tensor, ratios = self._preprocess(frames)
        raw = np.concatenate(
            [
                self.session.run(None, {self.input_name: tensor[i : i + self._max_batch]})[0]
                for i in range(0, len(tensor), self._max_batch)
            ]
        )
        out = []
        for frame, ratio, rows in zip(frames, ratios, raw):
            boxes, scores = decode_yolox(rows, self.grid, self.stride, self.person_class)
            cand = np.flatnonzero(scores >= self.score_threshold)
            keep = cand[nms(boxes[cand], scores[cand], self.nms_threshold, self.max_det)]
            out.append(unletterbox_detections(boxes[keep], scores[keep], ratio, frame.shape))
        return out
