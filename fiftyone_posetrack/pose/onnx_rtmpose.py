"""RTMPose (SimCC head) top-down pose estimation with an ONNX model.

Weights: RTMPose ONNX files are not shipped with this package. Get them from
mmpose's RTMPose project (https://github.com/open-mmlab/mmpose/tree/main/projects/rtmpose,
"onnx sdk" zips of mmdeploy exports, Apache-2.0) or the ``rtmlib`` model zoo, or
export a checkpoint yourself with mmdeploy's ``pose-detection_simcc_onnxruntime_dynamic``
config. The graph takes ``input`` ``[B, 3, H, W]`` and returns ``simcc_x``
``[B, K, W * r]`` and ``simcc_y`` ``[B, K, H * r]`` (split ratio ``r = 2``).

Pre- and post-processing follow mmpose's RTMPose configs (and the mmdeploy
``pipeline.json`` when it lies next to the model):

- box -> center and scale with padding 1.25, fixed to the input aspect ratio
  ``W / H`` (192 x 256 for the body models), affine crop (bilinear, border 0);
- BGR -> RGB, ``(x - mean) / std`` with mean ``(123.675, 116.28, 103.53)``
  and std ``(58.395, 57.12, 57.375)``;
- SimCC decode: ``x = argmax(simcc_x) / r``, ``y = argmax(simcc_y) / r`` in
  input pixels, then the inverse crop to frame pixels; the score is the
  *smaller* of the two maxima as in mmpose's ``get_simcc_maximum``
  (``score_reduce="mean"`` gives rtmlib's average). Joints with a score
  ``<= 0`` get NaN coordinates (mmpose marks them -1). Scores are the raw
  SimCC maxima, which lie roughly in ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np

from fiftyone_posetrack.detection.preprocess import read_mmdeploy_pipeline
from fiftyone_posetrack.detection.runtime import onnx_session
from fiftyone_posetrack.pose.base import PoseEstimator
from fiftyone_posetrack.pose.crops import (
    boxes_to_center_scale,
    crop_boxes,
    crop_to_frame,
    fix_aspect_ratio,
)
from fiftyone_posetrack.types import BadInputError

__all__ = ["RTMPoseONNX", "decode_simcc"]

SOURCE = (
    "the RTMPose 'onnx sdk' zips linked from "
    "https://github.com/open-mmlab/mmpose/tree/main/projects/rtmpose, "
    "the rtmlib model zoo, or an mmdeploy export of an RTMPose checkpoint"
)


def decode_simcc(
    simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = 2.0, score_reduce: str = "min"
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes SimCC vectors to keypoints in model-input pixels.

    Args:
        simcc_x: ``(N, K, Wx)`` x-axis SimCC logits
        simcc_y: ``(N, K, Wy)`` y-axis SimCC logits
        split_ratio: SimCC bins per input pixel
        score_reduce: ``"min"`` (mmpose), ``"mean"`` (rtmlib) or ``"max"`` of
            the two maxima

    Returns:
        ``(keypoints, scores)``: ``(N, K, 2)`` input pixels (NaN where the
        score is ``<= 0``) and ``(N, K)`` scores
    """
    x_idx = simcc_x.argmax(axis=-1)
    y_idx = simcc_y.argmax(axis=-1)
    x_val = np.take_along_axis(simcc_x, x_idx[..., None], axis=-1)[..., 0]
    y_val = np.take_along_axis(simcc_y, y_idx[..., None], axis=-1)[..., 0]
    reduce = {"min": np.minimum, "max": np.maximum, "mean": lambda a, b: (a + b) / 2}
    if score_reduce not in reduce:
        raise BadInputError(f"score_reduce: expected one of {sorted(reduce)}, got {score_reduce!r}")
    scores = reduce[score_reduce](x_val, y_val).astype(np.float64)
    keypoints = np.stack([x_idx, y_idx], axis=-1).astype(np.float64) / split_ratio
    keypoints[scores <= 0] = np.nan
    return keypoints, scores


class RTMPoseONNX(PoseEstimator):
    """RTMPose ONNX pose estimator (SimCC outputs).

    Args:
        model_path: the ``.onnx`` file (mmdeploy / rtmlib export)
        device: ``"cpu"``, ``"cuda[:N]"`` or ``"auto"``
        batch_size: person crops per forward pass (1 when the export has a
            fixed batch of 1)
        input_size: ``(W, H)`` model input; default from the graph, else
            ``pipeline.json``, else ``(192, 256)``
        mean, std, to_rgb: normalisation (defaults: ``pipeline.json``, else mmpose's RGB ones)
        padding: box enlargement before cropping (1.25)
        split_ratio: SimCC bins per pixel (default: output length / input size)
        score_reduce: see :func:`decode_simcc`
        threads: onnxruntime intra-op CPU threads (0: default)
    """

    def __init__(
        self,
        model_path,
        device: str = "auto",
        batch_size: int = 32,
        input_size: tuple[int, int] | None = None,
        mean=None,
        std=None,
        to_rgb: bool | None = None,
        padding: float | None = None,
        split_ratio: float | None = None,
        score_reduce: str = "min",
        threads: int = 0,
    ):
        super().__init__(device, batch_size)
        self.session = onnx_session(model_path, device, "RTMPose ONNX model", SOURCE, threads)
        inp = self.session.get_inputs()[0]
        outs = self.session.get_outputs()
        if len(inp.shape) != 4 or len(outs) < 2 or any(len(o.shape) != 3 for o in outs[:2]):
            raise BadInputError(
                f"RTMPose ONNX model {model_path!r}: expected input [B, 3, H, W] and outputs "
                f"simcc_x [B, K, Wx], simcc_y [B, K, Wy]; got input {inp.shape}, outputs "
                f"{[o.shape for o in outs]}"
            )
        cfg = read_mmdeploy_pipeline(model_path) or {}
        graph_size = (inp.shape[3], inp.shape[2])
        if input_size is None:
            input_size = graph_size if all(isinstance(d, int) for d in graph_size) else None
        self.input_size = tuple(int(v) for v in (input_size or cfg.get("size", (192, 256))))
        self.input_name = inp.name
        names = [o.name for o in outs]
        self.output_names = (
            ["simcc_x", "simcc_y"] if {"simcc_x", "simcc_y"} <= set(names) else names[:2]
        )
        self.fixed_batch = isinstance(inp.shape[0], int) and inp.shape[0] == 1
        k = outs[0].shape[1]
        self.num_keypoints = int(k) if isinstance(k, int) else 17
        if split_ratio is None:
            wx = dict(zip(names, (o.shape for o in outs)))[self.output_names[0]][2]
            split_ratio = wx / self.input_size[0] if isinstance(wx, int) else 2.0
        self.split_ratio = float(split_ratio)
        self.mean = np.asarray(
            mean if mean is not None else cfg.get("mean", (123.675, 116.28, 103.53)), np.float32
        )
        self.std = np.asarray(
            std if std is not None else cfg.get("std", (58.395, 57.12, 57.375)), np.float32
        )
        self.to_rgb = bool(to_rgb if to_rgb is not None else cfg.get("to_rgb", True))
        self.padding = float(padding if padding is not None else cfg.get("padding", 1.25))
        self.score_reduce = score_reduce

    def _estimate_many(self, frames, frame_index, boxes):
        centers, scales = boxes_to_center_scale(boxes, self.padding)
        scales = fix_aspect_ratio(scales, self.input_size[0] / self.input_size[1])
        crops = np.concatenate(
            [
                crop_boxes(
                    frames[f], centers[frame_index == f], scales[frame_index == f], self.input_size
                )
                for f in np.unique(frame_index)
            ]
        )
        order = np.concatenate([np.flatnonzero(frame_index == f) for f in np.unique(frame_index)])
        centers, scales = centers[order], scales[order]
        x = crops.astype(np.float32)
        if self.to_rgb:
            x = x[..., ::-1]
        x = np.ascontiguousarray(((x - self.mean) / self.std).transpose(0, 3, 1, 2))
        step = 1 if self.fixed_batch else len(x)
        outs = [
            self.session.run(self.output_names, {self.input_name: x[i : i + step]})
            for i in range(0, len(x), step)
        ]
        simcc_x = np.concatenate([o[0] for o in outs])
        simcc_y = np.concatenate([o[1] for o in outs])
        kps, scores = decode_simcc(simcc_x, simcc_y, self.split_ratio, self.score_reduce)
        kps = crop_to_frame(kps, centers, scales, self.input_size)
        inverse = np.argsort(order)
        return kps[inverse], scores[inverse]
