"""A stand-in for mmcv's compiled ``mmcv._ext`` with the two ops our models run, on torchvision.

Used by ``bench/gpu_check.sh`` only, on a GPU machine where mmcv is installed
without its compiled ops (``MMCV_WITH_OPS=0``: no mmcv wheel exists for that
machine's torch, and compiling mmcv's ~200 C++/CUDA files would take a large
part of a 15-minute device lease). It is copied to ``<site>/mmcv/_ext.py``.

Person detection and top-down pose inference (RTMDet, Faster / Cascade R-CNN,
HRNet, RTMPose, SimpleBaseline) call only:

- ``nms(boxes, scores, iou_threshold, offset)``: torchvision's NMS; mmcv's
  ``offset=1`` (legacy "+1" box widths) is the same as widening every box by
  1 pixel, which is what is done;
- ``roi_align_forward(...)`` in ``avg`` mode: torchvision's ``roi_align``,
  which is the same bilinear-sampling average (mmcv's own ``RoIAlign`` offers
  it as ``use_torchvision=True``).

Every other name that ``mmcv.ops`` asks for at import exists (``load_ext``
checks with ``hasattr``) and raises ``NotImplementedError`` naming the op when
called, so a model that needs another op fails loudly instead of silently.
``tests/test_bench_gpu.py`` checks both ops against mmcv's compiled ones.
"""

from __future__ import annotations

import torch
import torchvision

#: the mmcv ops this module implements
IMPLEMENTED = ("nms", "roi_align_forward")


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """Indices of the kept boxes, by decreasing score (as ``mmcv._ext.nms``).

    Args:
        boxes: ``(N, 4)`` ``[x1, y1, x2, y2]``
        scores: ``(N,)``
        iou_threshold: boxes overlapping a kept box by more are dropped
        offset: 0, or 1 for widths ``x2 - x1 + 1`` (mmcv's legacy mode)
    """
    if offset not in (0, 1):
        raise ValueError(f"nms: offset must be 0 or 1, got {offset}")
    if offset:
        boxes = boxes.clone()
        boxes[:, 2:] += offset
    return torchvision.ops.nms(boxes.float(), scores.float(), float(iou_threshold))


def roi_align_forward(
    input: torch.Tensor,
    rois: torch.Tensor,
    output: torch.Tensor,
    argmax_y: torch.Tensor,
    argmax_x: torch.Tensor,
    aligned_height: int,
    aligned_width: int,
    spatial_scale: float,
    sampling_ratio: int,
    pool_mode: int,
    aligned: bool,
) -> None:
    """Fills ``output`` with RoIAlign of ``rois`` ``(K, 5)`` ``[batch_index, x1, y1, x2, y2]``."""
    if pool_mode != 1:
        raise NotImplementedError("roi_align_forward: only pool_mode 'avg' is implemented on torchvision")
    out = torchvision.ops.roi_align(
        input, rois.to(input.dtype), (aligned_height, aligned_width), spatial_scale, sampling_ratio, aligned
    )
    output.copy_(out)


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)

    def missing(*args, **kwargs):
        raise NotImplementedError(
            f"mmcv op {name!r} is not available: mmcv runs without its compiled ops here "
            f"(bench/mmcv_ext_torchvision.py implements only {', '.join(IMPLEMENTED)}); "
            "run bench/gpu_check.sh with GPU_CHECK_BUILD_MMCV=1 to compile them"
        )

    missing.__name__ = name
    return missing
