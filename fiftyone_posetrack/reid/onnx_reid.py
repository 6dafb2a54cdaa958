"""ReID models in ONNX files, run with onnxruntime (CUDA provider when present).

The graph must take one 4-d float32 image input and return ``(B, D)``
features. Nothing about the input is assumed; it is read, in this order, from

1. the options (``layout``, ``rgb``, ``mean``, ``std``),
2. the model's metadata (``metadata_props``, written e.g. by
   :func:`write_input_metadata`): ``layout`` (``NCHW`` / ``NHWC``),
   ``color_order`` (``RGB`` / ``BGR``), ``mean`` and ``std`` (three numbers on
   the 0-255 scale, comma separated),
3. the input shape, for the layout only (the axis of size 3).

A model whose colour order or normalization is given by neither is refused
with a message saying what to pass. Examples: torchreid exports take RGB,
``mean = (123.675, 116.28, 103.53)``, ``std = (58.395, 57.12, 57.375)``;
Open Model Zoo's person-reidentification-retail-0287 takes BGR 0-255
(``mean = (0, 0, 0)``, ``std = (1, 1, 1)``) in NHWC.

Fixed input sizes are read from the graph (multi-scale inference needs dynamic
``H`` and ``W``); a fixed batch of one is fed one crop at a time.
"""

from __future__ import annotations

import json
import os

import numpy as np

from fiftyone_posetrack.reid.base import Embedder
from fiftyone_posetrack.types import BadInputError

__all__ = ["OnnxReID", "read_input_metadata", "write_input_metadata"]

_LAYOUTS = ("NCHW", "NHWC")


def _numbers(text, key: str, path: str) -> tuple[float, float, float]:
    try:
        values = json.loads(text) if str(text).strip().startswith("[") else str(text).split(",")
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3:
        raise BadInputError(f"{path}: metadata {key!r} must be three numbers, got {text!r}")
    return values


def read_input_metadata(session, path: str = "") -> dict:
    """The input convention an ONNX model declares in its metadata (keys it sets only)."""
    meta = {k.lower(): v for k, v in session.get_modelmeta().custom_metadata_map.items()}
    out = {}
    if "layout" in meta:
        out["layout"] = meta["layout"].upper()
    if "color_order" in meta:
        order = meta["color_order"].upper()
        if order not in ("RGB", "BGR"):
            raise BadInputError(f"{path}: metadata 'color_order' must be RGB or BGR, got {meta['color_order']!r}")
        out["rgb"] = order == "RGB"
    for key in ("mean", "std"):
        if key in meta:
            out[key] = _numbers(meta[key], key, path)
    return out


def write_input_metadata(path, layout: str, rgb: bool, mean, std) -> None:
    """Records a ReID model's input convention in its ONNX metadata (in place).

    Args:
        path: the ``.onnx`` file
        layout: ``"NCHW"`` or ``"NHWC"``
        rgb: True for RGB input, False for BGR
        mean, std: three numbers each, 0-255 scale: the model gets ``(x - mean) / std``
    """
    import onnx

    if str(layout).upper() not in _LAYOUTS:
        raise BadInputError(f"layout: expected NCHW or NHWC, got {layout!r}")
    model = onnx.load(os.fspath(path))
    values = {
        "layout": str(layout).upper(),
        "color_order": "RGB" if rgb else "BGR",
        "mean": ",".join(str(float(v)) for v in mean),
        "std": ",".join(str(float(v)) for v in std),
    }
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, os.fspath(path))


def _layout_from_shape(shape, path: str) -> str:
    c_first, c_last = shape[1] == 3, shape[3] == 3
    if c_first and not c_last:
        return "NCHW"
    if c_last and not c_first:
        return "NHWC"
    raise BadInputError(
        f"{path}: cannot tell the layout of input shape {list(shape)} (expected [B, 3, H, W] or "
        "[B, H, W, 3]); pass layout='NCHW' or 'NHWC' or record it with write_input_metadata"
    )


class OnnxReID(Embedder):
    """A ReID network in an ONNX file.

    Args:
        path: the ``.onnx`` file
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        input_size: ``(H, W)``; default: read from the graph, else 256 x 128
        layout: ``"NCHW"`` or ``"NHWC"``; default: the metadata, else the input shape
        rgb: channel order of the input (True: RGB, False: BGR); default: the metadata
        mean, std: input normalization ``(x - mean) / std`` on the 0-255 scale;
            default: the metadata
        threads: onnxruntime CPU threads (0: its default)
        **kwargs: ``flip``, ``scales``, ``batch_size`` (see
            :class:`~fiftyone_posetrack.reid.base.Embedder`)

    Raises:
        BadInputError: an input that is not one 4-d image tensor with 3
            channels (the message names its shape), or an input convention
            neither given nor recorded in the model
    """

    def __init__(self, path, device="auto", input_size=None, layout=None, rgb=None, mean=None, std=None,
                 threads: int = 0, **kwargs):  # fmt: skip
        from fiftyone_posetrack.detection.runtime import onnx_session

        self.path = os.fspath(path)
        self.session = onnx_session(self.path, device, "ONNX ReID model", "your ReID export", threads)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise BadInputError(
                f"{self.path}: expected one image input [B, 3, H, W] or [B, H, W, 3], got "
                f"{[(i.name, i.shape) for i in inputs]}"
            )
        shape = inputs[0].shape
        meta = read_input_metadata(self.session, self.path)
        given = {"layout": layout, "rgb": rgb, "mean": mean, "std": std}
        conv = {k: v if v is not None else meta.get(k) for k, v in given.items()}
        if conv["layout"] is None:
            conv["layout"] = _layout_from_shape(shape, self.path)
        self.layout = str(conv["layout"]).upper()
        if self.layout not in _LAYOUTS:
            raise BadInputError(f"{self.path}: layout must be NCHW or NHWC, got {conv['layout']!r}")
        b, h, w = (shape[0], *shape[2:]) if self.layout == "NCHW" else shape[:3]
        channels = shape[1] if self.layout == "NCHW" else shape[3]
        if channels != 3:
            raise BadInputError(
                f"{self.path}: input shape {list(shape)} has {channels!r} channels in layout {self.layout} "
                "(expected 3: a colour image)"
            )
        missing = [k for k in ("rgb", "mean", "std") if conv[k] is None]
        if missing:
            raise BadInputError(
                f"{self.path}: its input convention is unknown ({', '.join(missing)} neither given nor in the "
                "model's metadata). Pass them (torchreid exports: rgb=True, mean=(123.675, 116.28, 103.53), "
                "std=(58.395, 57.12, 57.375); Open Model Zoo: rgb=False, mean=(0, 0, 0), std=(1, 1, 1)) or "
                "record them once with fiftyone_posetrack.reid.onnx_reid.write_input_metadata"
            )
        self.input_name = inputs[0].name
        fixed_hw = isinstance(h, int) and isinstance(w, int)
        self.fixed_batch = b if isinstance(b, int) else None
        if input_size is None:
            input_size = (h, w) if fixed_hw else (256, 128)
        super().__init__(input_size=input_size, mean=conv["mean"], std=conv["std"], rgb=conv["rgb"], **kwargs)
        if fixed_hw and any(s != (h, w) for s in self._sizes()):
            raise BadInputError(
                f"{self.path} has a fixed input size {h}x{w}: use input_size=({h}, {w}) and "
                "scales=(1.0,), or export it with dynamic height and width for multi-scale"
            )
        if self.fixed_batch is not None and self.fixed_batch != 1:
            raise BadInputError(f"{self.path}: input shape {list(shape)} has a fixed batch of {b}; use 1 or dynamic")
        dim = outputs[0].shape[-1]
        self._dim = dim if isinstance(dim, int) else None

    @property
    def dim(self) -> int:
        if self._dim is None:
            h, w = self.input_size
            self._dim = self._forward(np.zeros((1, 3, h, w), np.float32)).shape[1]
        return self._dim

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """``(B, 3, H, W)`` normalized crops -> ``(B, D)``; NHWC models get them transposed."""
        if self.fixed_batch == 1 and len(batch) != 1:
            return np.concatenate([self._forward(batch[i : i + 1]) for i in range(len(batch))])
        x = batch.astype(np.float32)
        if self.layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        out = self.session.run(None, {self.input_name: x})[0]
        return np.asarray(out).reshape(len(batch), -1)
