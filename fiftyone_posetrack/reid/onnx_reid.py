"""ReID models exported to ONNX, run with onnxruntime (CUDA provider when present).

The graph must take one ``(B, 3, H, W)`` float32 input, normalized like the
torch model (RGB, ImageNet mean / std by default), and return ``(B, D)``
features. Fixed input sizes are read from the graph; multi-scale inference
needs dynamic ``H`` and ``W``, and batches larger than one need a dynamic
``B`` (otherwise crops are run one at a time).
"""

from __future__ import annotations

import os

import numpy as np

from fiftyone_posetrack.reid.base import Embedder
from fiftyone_posetrack.types import BadInputError

__all__ = ["OnnxReID"]


class OnnxReID(Embedder):
    """A ReID network in an ONNX file.

    Args:
        path: the ``.onnx`` file
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        input_size: ``(H, W)``; default: read from the graph, else 256 x 128
        threads: onnxruntime CPU threads (0: its default)
        **kwargs: ``flip``, ``scales``, ``batch_size``, ``mean``, ``std``,
            ``rgb`` (see :class:`~fiftyone_posetrack.reid.base.Embedder`)
    """

    def __init__(self, path, device="auto", input_size=None, threads: int = 0, **kwargs):
        from fiftyone_posetrack.detection.runtime import onnx_session

        self.path = os.fspath(path)
        self.session = onnx_session(self.path, device, "ONNX ReID model", "your ReID export", threads)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise BadInputError(
                f"{self.path}: expected one (B, 3, H, W) input, got "
                f"{[(i.name, i.shape) for i in inputs]}"
            )
        self.input_name = inputs[0].name
        b, _, h, w = inputs[0].shape
        fixed_hw = isinstance(h, int) and isinstance(w, int)
        self.fixed_batch = b if isinstance(b, int) else None
        if input_size is None:
            input_size = (h, w) if fixed_hw else (256, 128)
        super().__init__(input_size=input_size, **kwargs)
        if fixed_hw and any(s != (h, w) for s in self._sizes()):
            raise BadInputError(
                f"{self.path} has a fixed input size {h}x{w}: use input_size=({h}, {w}) and "
                "scales=(1.0,), or export it with dynamic height and width for multi-scale"
            )
        dim = outputs[0].shape[-1]
        self._dim = dim if isinstance(dim, int) else None

    @property
    def dim(self) -> int:
        if self._dim is None:
            h, w = self.input_size
            self._dim = self._forward(np.zeros((1, 3, h, w), np.float32)).shape[1]
        return self._dim

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        if self.fixed_batch is not None and len(batch) != self.fixed_batch:
            if self.fixed_batch != 1:
                raise BadInputError(f"{self.path}: fixed batch size {self.fixed_batch} is unsupported")
            return np.concatenate([self._forward(batch[i : i + 1]) for i in range(len(batch))])
        out = self.session.run(None, {self.input_name: batch.astype(np.float32)})[0]
        return np.asarray(out).reshape(len(batch), -1)
