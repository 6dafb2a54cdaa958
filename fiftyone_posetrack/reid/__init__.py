"""Appearance (ReID) embedders: ``embed(frame_bgr, boxes_xyxy) -> (N, D)``.

:func:`make_embedder` picks one by name::

    make_embedder("mobilenet")                               # offline default
    make_embedder("osnet_x1_0", weights="osnet_x1_0.pth")    # torch checkpoint
    make_embedder("resnet50", weights="bnneck_r50.pth")
    make_embedder("reid.onnx")                               # ONNX file

Heavy modules (torch, onnxruntime) are imported only when an embedder is made.
"""

from __future__ import annotations

from fiftyone_posetrack.types import BadInputError

__all__ = ["make_embedder", "EMBEDDERS"]

#: names :func:`make_embedder` accepts besides an ``.onnx`` path
EMBEDDERS = ("mobilenet", "osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25", "resnet50")


def make_embedder(name: str = "mobilenet", **kwargs):
    """Creates an embedder.

    Args:
        name: ``"mobilenet"``, a torch architecture (:data:`EMBEDDERS`, needs
            ``weights=PATH``), or the path of an ``.onnx`` model
        **kwargs: passed to the embedder (``device``, ``flip``, ``scales``,
            ``batch_size``, ``weights``, ``input_size``, ...)

    Returns:
        an :class:`~fiftyone_posetrack.reid.base.Embedder`
    """
    name = str(name)
    if name.lower().endswith(".onnx"):
        from fiftyone_posetrack.reid.onnx_reid import OnnxReID

        return OnnxReID(name, **kwargs)
    if name == "mobilenet":
        from fiftyone_posetrack.reid.mobilenet import MobileNetV2Embedder

        return MobileNetV2Embedder(**kwargs)
    if name in EMBEDDERS:
        from fiftyone_posetrack.reid.torch_reid import TorchReID

        return TorchReID(name, **kwargs)
    raise BadInputError(f"unknown embedder {name!r}; expected one of {list(EMBEDDERS)} or a .onnx path")
