"""Box IoU and greedy non-maximum suppression in numpy (boxes ``[x1, y1, x2, y2]``)."""

from __future__ import annotations

import numpy as np

__all__ = ["box_iou", "nms"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` ``[x1, y1, x2, y2]`` boxes.

    Areas are ``(x2 - x1) * (y2 - y1)`` (continuous coordinates, no ``+1``);
    a pair whose union is empty has IoU 0.

    Returns:
        ``(N, M)`` float64 IoU matrix
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.45, max_det: int = 300
) -> np.ndarray:
    """Greedy NMS: keeps the best box, drops those with IoU > ``iou_threshold``, repeats.

    Args:
        boxes: ``(N, 4)`` ``[x1, y1, x2, y2]``
        scores: ``(N,)``
        iou_threshold: boxes overlapping a kept box by more are suppressed
        max_det: the most boxes kept

    Returns:
        indices of the kept boxes, by decreasing score
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while order.size and len(keep) < max_det:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
