"""Appearance (ReID) embedders: ``embed(frame_bgr, boxes_xyxy) -> (N, D)``.

:func:`make_embedder` picks one by name::

    make_embedder("mobilenet")                               # offline default
    make_embedder("osnet-x0_25-msmt17")                      # a named model of the zoo
    make_embedder("omz-person-reid-0287", models_dir="models")
    make_embedder("osnet_x1_0", weights="osnet_x1_0.pth")    # torch checkpoint
    make_embedder("resnet50", weights="bnneck_r50.pth")
    make_embedder("reid.onnx", rgb=True, mean=..., std=...)  # ONNX file

Heavy modules (torch, onnxruntime) are imported only when an embedder is made.
"""

from __future__ import annotations

from fiftyone_posetrack.types import BadInputError

__all__ = ["make_embedder", "EMBEDDERS", "reid_model_names"]

#: names :func:`make_embedder` accepts besides named models and an ``.onnx`` path
EMBEDDERS = ("mobilenet", "osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25", "resnet50")


def reid_model_names() -> list[str]:
    """The ReID models of the zoo (:data:`fiftyone_posetrack.models.MODELS`)."""
    from fiftyone_posetrack.models import MODELS

    return sorted(n for n, m in MODELS.items() if m.kind == "reid")


def _named(name: str, models_dir=None, **kwargs):
    """An embedder for a ReID model of the zoo (its file found locally or downloaded once)."""
    from fiftyone_posetrack.models import MODELS, model_path

    info = MODELS[name]
    path = model_path(name, models_dir)
    if info.backend == "torchreid":
        from fiftyone_posetrack.reid.torch_reid import TorchReID

        return TorchReID(info.arch, weights=path, **kwargs)
    from fiftyone_posetrack.reid.onnx_reid import OnnxReID

    return OnnxReID(path, **{**dict(info.input_format), **kwargs})


def make_embedder(name: str = "mobilenet", models_dir=None, **kwargs):
    """Creates an embedder.

    Args:
        name: ``"mobilenet"``, a ReID model of the zoo (:func:`reid_model_names`,
            e.g. ``"osnet-x0_25-msmt17"``), a torch architecture
            (:data:`EMBEDDERS`, needs ``weights=PATH``), or the path of an
            ``.onnx`` model
        models_dir: a local models folder for named models (``<dir>/<name>/<file>``)
        **kwargs: passed to the embedder (``device``, ``flip``, ``scales``,
            ``batch_size``, ``weights``, ``input_size``, ...)

    Returns:
        an :class:`~fiftyone_posetrack.reid.base.Embedder`

    Raises:
        BadInputError: an unknown name (the message lists the valid ones)
        ModelUnavailableError: a named model that is not local and cannot be downloaded
    """
    name = str(name)
    if name in reid_model_names():
        return _named(name, models_dir, **kwargs)
    if name.lower().endswith(".onnx"):
        from fiftyone_posetrack.reid.onnx_reid import OnnxReID

        return OnnxReID(name, **kwargs)
    if name == "mobilenet":
        from fiftyone_posetrack.reid.mobilenet import MobileNetV2Embedder

        return MobileNetV2Embedder(**kwargs)
    if name in EMBEDDERS:
        from fiftyone_posetrack.reid.torch_reid import TorchReID

        return TorchReID(name, **kwargs)
    raise BadInputError(
        f"unknown embedder {name!r}; expected a named ReID model {reid_model_names()}, "
        f"one of {list(EMBEDDERS)} or a .onnx path"
    )
