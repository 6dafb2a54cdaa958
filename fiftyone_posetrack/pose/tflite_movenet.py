"""MoveNet single-pose (TFLite) run top-down on each person box.

Weights: Google's MoveNet SinglePose Lightning / Thunder TFLite models
(Apache-2.0), e.g. ``lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite``
from Kaggle Models / TF Hub (``google/movenet``, variation ``singlepose-lightning``,
"tflite int8"). Run with ``ai_edge_litert`` (``pip install ai-edge-litert``).

MoveNet single-pose expects one centred person in a square ``uint8`` RGB image
(192 x 192 for Lightning, 256 x 256 for Thunder) and outputs ``[1, 1, 17, 3]``
``(y, x, score)`` normalised to that image. Each box is enlarged by
``padding`` (1.25), padded to a square around its center (pixels outside the
frame are black), resized, and the normalised outputs are mapped back:
``u`` in ``[0, 1]`` spans the crop, so crop pixel = ``u * size - 0.5``, then
the inverse crop gives frame pixels. The graph has a fixed batch of 1 (it fails
when resized to a batch), so boxes run one by one.

``flip_test=True`` also runs each crop mirrored left-right and averages the two
predictions (the mirrored one's joints mapped back, normalised ``x -> 1 - x``,
and left/right swapped): test-time flip, twice the cost. Measured in
``bench/bench_smoothing.py`` and ``bench/bench_pose_threshold.py --flip``
(docs/pose.md); off by default.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from fiftyone_posetrack.detection.runtime import check_model_file, cpu_threads
from fiftyone_posetrack.pose.base import PoseEstimator
from fiftyone_posetrack.skeleton import flip_permutation
from fiftyone_posetrack.pose.crops import (
    boxes_to_center_scale,
    crop_boxes,
    crop_to_frame,
    fix_aspect_ratio,
)
from fiftyone_posetrack.types import BadInputError, missing_dependency

logger = logging.getLogger(__name__)

__all__ = ["MoveNetTFLite"]

SOURCE = (
    "Kaggle Models / TF Hub: google/movenet, singlepose-lightning (or -thunder), TFLite "
    "(e.g. lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite)"
)


class MoveNetTFLite(PoseEstimator):
    """MoveNet SinglePose (TFLite) applied to each box.

    Args:
        model_path: the ``.tflite`` file
        device: ignored: TFLite runs on the CPU (a warning says so for ``"cuda"``)
        padding: box enlargement before the square crop (1.25)
        threads: interpreter CPU threads (None:
            :func:`~fiftyone_posetrack.detection.runtime.cpu_threads`, at most 4; LiteRT's own default is one thread, and two threads
            measured 3.2 instead of 4.8 ms per crop on 2 cores)
        flip_test: also run each crop mirrored and average (see the module docs)
    """

    def __init__(
        self, model_path, device: str = "auto", padding: float = 1.25, threads: int | None = None,
        flip_test: bool = False,
    ):
        super().__init__(device, batch_size=1)
        if str(device).lower().startswith("cuda"):
            logger.warning("MoveNet TFLite runs on the CPU only; ignoring device=%r", device)
        path = check_model_file(model_path, "MoveNet TFLite model", SOURCE)
        with open(path, "rb") as f:
            head = f.read(8)
        if head[4:8] != b"TFL3":
            raise BadInputError(
                f"MoveNet TFLite model {path!r} is not a TFLite flatbuffer (no 'TFL3' tag)"
            )
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            raise missing_dependency("MoveNet TFLite", "ai-edge-litert", "lite", e) from e
        if threads is None:
            threads = cpu_threads(most=4)
        try:
            self.interpreter = Interpreter(model_path=path, num_threads=int(threads))
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:  # LiteRT: "The model is not a valid Flatbuffer buffer"
            raise BadInputError(
                f"MoveNet TFLite model {path!r} ({os.path.getsize(path)} bytes) cannot be loaded: {e}; the file "
                f"is damaged or truncated: delete it to download it again, or get a complete copy from {SOURCE}"
            ) from None
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        shape = tuple(int(v) for v in inp["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or shape[1] != shape[2]:
            raise BadInputError(
                f"MoveNet TFLite model {path!r}: expected input [1, S, S, 3], got {list(shape)}"
            )
        if tuple(out["shape"][-2:]) != (17, 3):
            raise BadInputError(
                f"MoveNet TFLite model {path!r}: expected output [1, 1, 17, 3] (single-pose), "
                f"got {list(out['shape'])}"
            )
        self.input_index, self.output_index = inp["index"], out["index"]
        self.input_dtype = inp["dtype"]
        self.size = shape[1]
        self.padding = float(padding)
        self.flip_test = bool(flip_test)

    def _run(self, crop: np.ndarray) -> np.ndarray:
        """The model's ``(17, 3)`` ``(y, x, score)`` output for one BGR crop."""
        rgb = np.ascontiguousarray(crop[None, ..., ::-1]).astype(self.input_dtype)
        self.interpreter.set_tensor(self.input_index, rgb)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index).reshape(17, 3).astype(np.float64)

    def _estimate_many(self, frames, frame_index, boxes):
        centers, scales = boxes_to_center_scale(boxes, self.padding)
        scales = fix_aspect_ratio(scales, 1.0)
        size = (self.size, self.size)
        raw = np.zeros((len(boxes), 17, 3))
        for i, (f, c, s) in enumerate(zip(frame_index, centers, scales)):
            crop = crop_boxes(frames[f], c[None], s[None], size)[0]
            raw[i] = self._run(crop)
            if self.flip_test:
                mirrored = self._run(np.ascontiguousarray(crop[:, ::-1]))[flip_permutation()]
                # mirrored crop pixel x' = S - 1 - x with pixel = u * S - 0.5 on both sides: u = 1 - u'
                mirrored[:, 1] = 1.0 - mirrored[:, 1]
                raw[i] = (raw[i] + mirrored) / 2
        crop_px = raw[..., 1::-1] * self.size - 0.5  # (y, x) normalised -> (x, y) crop pixels
        return crop_to_frame(crop_px, centers, scales, size), raw[..., 2]
