"""Detector input preprocessing: keep-ratio resize + pad, normalisation, mmdeploy pipelines.

Both RTMDet (mmdet's ``Resize(keep_ratio=True)`` + ``Pad``) and YOLOX
(``preproc``) scale the frame by ``r = min(S_h / H, S_w / W)``, put the resized
image at the **top-left** of an ``S_h x S_w`` canvas filled with 114, and
predict boxes in that canvas, so a box maps back to the frame by dividing by
``r``. They only differ in how the resized size is rounded.
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np

from fiftyone_posetrack.types import BadInputError, FrameDetections

__all__ = [
    "check_input_size",
    "input_canvas",
    "letterbox",
    "letterbox_batch",
    "read_mmdeploy_pipeline",
    "unletterbox_boxes",
    "unletterbox_detections",
]


def check_input_size(input_size, what: str = "det_input_size") -> int:
    """Checks a detector input size (longer side, pixels; 0 = the model's own size)."""
    if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)) or input_size < 0:
        raise BadInputError(
            f"{what}: expected an integer number of pixels >= 0 (0 = the model's own size), "
            f"got {input_size!r}"
        )
    if 0 < input_size < 32:
        raise BadInputError(f"{what}: {input_size} px is smaller than the detectors' stride 32")
    return int(input_size)


def input_canvas(frames: list[np.ndarray], longer_side: int, divisor: int = 32) -> tuple[int, int]:
    """The model input that holds every frame resized to ``longer_side``.

    Each frame is scaled so that its longer side is ``longer_side`` pixels
    (keeping its aspect ratio); the canvas is the smallest ``(width, height)``
    holding all of them, rounded up to a multiple of ``divisor`` (the
    detectors' largest stride). A 1920x1080 frame at 960 gives a 960 x 544
    canvas rather than 960 x 960: the padding costs compute and finds nothing.

    Args:
        frames: ``(H, W, C)`` images
        longer_side: pixels of the resized frames' longer side
        divisor: the canvas sides are multiples of it

    Returns:
        ``(width, height)`` of the input canvas
    """
    width = height = divisor
    for frame in frames:
        h, w = frame.shape[:2]
        ratio = longer_side / max(h, w)
        width = max(width, int(np.ceil(round(w * ratio) / divisor)) * divisor)
        height = max(height, int(np.ceil(round(h * ratio) / divisor)) * divisor)
    return width, height


def letterbox(
    frame: np.ndarray,
    size: tuple[int, int],
    pad_value: int = 114,
    round_half_up: bool = True,
) -> tuple[np.ndarray, float]:
    """Resizes ``frame`` keeping its aspect ratio and pads it bottom/right.

    Args:
        frame: ``(H, W, C)`` image
        size: ``(width, height)`` of the model input
        pad_value: value of the padding
        round_half_up: round the resized size to nearest (mmcv's
            ``rescale_size``); False truncates (YOLOX's ``preproc``)

    Returns:
        ``(canvas, ratio)``: the ``(height, width, C)`` padded image (same
        dtype) and the scale factor ``ratio`` (input pixels per frame pixel)
    """
    h, w = frame.shape[:2]
    out_w, out_h = int(size[0]), int(size[1])
    ratio = min(out_h / h, out_w / w)
    offset = 0.5 if round_half_up else 0.0
    new_w = min(out_w, max(1, int(w * ratio + offset)))
    new_h = min(out_h, max(1, int(h * ratio + offset)))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((out_h, out_w) + frame.shape[2:], pad_value, dtype=frame.dtype)
    canvas[:new_h, :new_w] = resized
    return canvas, ratio


def letterbox_batch(
    frames: list[np.ndarray],
    size: tuple[int, int],
    mean=None,
    std=None,
    to_rgb: bool = False,
    pad_value: int = 114,
    round_half_up: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Letterboxes frames into one normalised ``(B, 3, H, W)`` float32 tensor.

    Args:
        frames: BGR ``uint8`` frames
        size: ``(width, height)`` of the model input
        mean, std: per-channel normalisation in the model's channel order
            (after ``to_rgb``), or None for raw 0-255 values
        to_rgb: convert BGR to RGB first
        pad_value: padding value (before normalisation)
        round_half_up: see :func:`letterbox`

    Returns:
        ``(tensor, ratios)`` with ``ratios`` ``(B,)`` input pixels per frame pixel
    """
    canvases, ratios = [], []
    for frame in frames:
        canvas, ratio = letterbox(frame, size, pad_value, round_half_up)
        canvases.append(canvas)
        ratios.append(ratio)
    batch = np.stack(canvases).astype(np.float32)
    if to_rgb:
        batch = batch[..., ::-1]
    if mean is not None:
        batch -= np.asarray(mean, dtype=np.float32)
    if std is not None:
        batch /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2)), np.asarray(ratios)


def unletterbox_boxes(boxes: np.ndarray, ratio: float, frame_shape) -> np.ndarray:
    """Maps ``(N, 4)`` ``[x1, y1, x2, y2]`` boxes from the padded input to frame pixels.

    Boxes are divided by ``ratio`` and clipped to the frame ``(H, W, ...)``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / ratio
    h, w = frame_shape[:2]
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return boxes


def unletterbox_detections(boxes: np.ndarray, scores: np.ndarray, ratio: float, frame_shape) -> FrameDetections:
    """A frame's detections from boxes in the padded input.

    Boxes are mapped as by :func:`unletterbox_boxes`; those left empty by the
    clipping (outside the frame, e.g. in the padding) are dropped.

    Args:
        boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` in input pixels
        scores: ``(N,)`` scores
        ratio: the resize ratio of the frame
        frame_shape: the frame's ``(H, W, ...)``
    """
    px = unletterbox_boxes(boxes, ratio, frame_shape)
    valid = (px[:, 2] > px[:, 0]) & (px[:, 3] > px[:, 1])
    return FrameDetections(px[valid], np.asarray(scores, dtype=np.float64)[valid])


def read_mmdeploy_pipeline(model_path) -> dict | None:
    """Reads the preprocessing of an mmdeploy SDK export (``pipeline.json``).

    Looks for ``pipeline.json`` next to ``model_path``.

    Returns:
        None when there is no such file, else a dict with the keys found among
        ``size`` ((width, height) of ``Resize`` / ``TopDownAffine``'s input),
        ``pad_value``, ``mean``, ``std``, ``to_rgb`` and ``padding`` (bbox
        padding of ``TopDownGetBboxCenterScale``)
    """
    path = os.path.join(os.path.dirname(os.fspath(model_path)), "pipeline.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        pipeline = json.load(f)
    found: dict = {}
    for task in pipeline.get("pipeline", {}).get("tasks", []):
        for t in task.get("transforms", []) or []:
            kind = t.get("type")
            if kind == "Resize" and "size" in t:  # mmdeploy SDK stores (height, width)
                found["size"] = (int(t["size"][1]), int(t["size"][0]))
            elif kind == "TopDownAffine" and "image_size" in t:
                found["size"] = (int(t["image_size"][0]), int(t["image_size"][1]))
            elif kind == "Pad" and "pad_val" in t:
                pad = t["pad_val"]
                pad = pad.get("img", pad) if isinstance(pad, dict) else pad
                found["pad_value"] = int(np.atleast_1d(pad)[0])
            elif kind == "Normalize":
                found["mean"] = [float(v) for v in t["mean"]]
                found["std"] = [float(v) for v in t["std"]]
                found["to_rgb"] = bool(t.get("to_rgb", False))
            elif kind == "TopDownGetBboxCenterScale":
                found["padding"] = float(t.get("padding", 1.25))
    return found
