"""Fast CPU inference for torch embedders.

PyTorch's eager CPU kernels are slow for the depthwise and 1x1 convolutions of
MobileNet-style ReID networks (measured on 2 cores, MobileNetV2 at 256 x 128,
40 crops: eager 743 ms, conv-BN folded + channels-last 243 ms, onnxruntime
134 ms). :func:`cpu_runner` picks the fastest route that works here:

1. ``"onnxruntime"``: the module is exported to ONNX in memory (needs the
   ``onnx`` and ``onnxruntime`` packages; nothing is written to disk) with
   dynamic batch, height and width, and run by onnxruntime;
2. ``"torch"``: batch norms folded into the preceding convolutions, weights
   and inputs in channels-last memory format.

Either route is checked against the eager module on a probe batch before it
is used; a route that fails to build or disagrees falls back to the next one
(and finally to the eager module), with the reason logged.
"""

from __future__ import annotations

import copy
import inspect
import io
import logging
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["RUNTIMES", "cpu_runner"]

logger = logging.getLogger(__name__)

#: values of ``runtime`` that :func:`cpu_runner` accepts
RUNTIMES = ("auto", "onnxruntime", "torch", "eager")

Runner = Callable[[np.ndarray], np.ndarray]


def _eager(model: nn.Module) -> Runner:
    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).float().numpy()

    return run


def _onnxruntime(model: nn.Module, probe: np.ndarray) -> Runner:
    import onnxruntime as ort

    buf = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    # the TorchScript exporter; torch >= 2.5 defaults to (or offers) the dynamo one
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, torch.from_numpy(probe[:1]), buf, input_names=["crops"], output_names=["features"],
            dynamic_axes={"crops": axes, "features": {0: "batch"}}, **legacy,
        )  # fmt: skip
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> np.ndarray:
        out = session.run(None, {"crops": np.ascontiguousarray(batch, dtype=np.float32)})[0]
        return np.asarray(out).reshape(len(batch), -1)

    return run


def _fused_channels_last(model: nn.Module) -> Runner:
    from torch.fx.experimental.optimization import fuse

    fused = fuse(copy.deepcopy(model).eval()).to(memory_format=torch.channels_last)

    def run(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return fused(x).float().numpy()

    return run


def cpu_runner(model: nn.Module, probe: np.ndarray, runtime: str = "auto") -> tuple[Runner, str]:
    """A fast function ``(B, 3, H, W) float32 -> (B, D) float32`` for a CPU module.

    Args:
        model: a float32 module in eval mode on the CPU
        probe: a ``(B, 3, H, W)`` float32 batch (B >= 2) to check the route
            against the eager module
        runtime: ``"auto"`` (onnxruntime, else torch, else eager),
            ``"onnxruntime"``, ``"torch"`` (fused, channels-last) or
            ``"eager"``; a named route that fails falls back the same way

    Returns:
        ``(run, name)``: the function and the route actually taken
    """
    eager = _eager(model)
    if runtime == "eager":
        return eager, "eager"
    routes = {"onnxruntime": lambda: _onnxruntime(model, probe), "torch": lambda: _fused_channels_last(model)}
    order = ["torch"] if runtime == "torch" else ["onnxruntime", "torch"]
    expected = eager(probe)
    scale = max(float(np.abs(expected).max()), 1e-6)
    for name in order:
        try:
            run = routes[name]()
            err = float(np.abs(run(probe) - expected).max()) / scale
        except Exception as e:  # export / session / fx failures of any kind
            logger.info("ReID runtime %s unavailable (%s: %s)", name, type(e).__name__, e)
            continue
        if err <= 1e-3:
            return run, name
        logger.warning("ReID runtime %s disagrees with torch (relative error %.2g); not used", name, err)
    return eager, "eager"
