"""Cost matrices and linear assignment for tracking-by-detection.

All boxes are ``[x1, y1, x2, y2]`` in pixels; all costs are distances (lower
is better). Every function is vectorized over tracks and detections.
"""

from __future__ import annotations

import lap
import numpy as np

__all__ = [
    "INF_COST",
    "iou_matrix",
    "iou_distance",
    "buffered_boxes",
    "height_iou_matrix",
    "cosine_distance",
    "paired_cosine_distance",
    "gallery_distance",
    "linear_assignment",
    "normalize_rows",
]

#: cost of a gated (forbidden) pair
INF_COST = 1e5


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` boxes -> ``(N, M)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - IoU`` of ``(N, 4)`` and ``(M, 4)`` boxes -> ``(N, M)`` in ``[0, 1]``."""
    return 1.0 - iou_matrix(a, b)


def buffered_boxes(boxes: np.ndarray, scale: float) -> np.ndarray:
    """C-BIoU's buffered boxes (Yang et al., WACV 2023): each ``[x1, y1, x2, y2]``
    box grown by ``scale`` times its own width (left and right) and height (top
    and bottom), so that the buffered IoU of two boxes that moved apart by a
    fraction of their size is still positive. ``scale`` is in box units (0 = the
    box itself)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not scale:
        return boxes
    pad = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1) * float(scale)
    return boxes + pad * np.array([-1.0, -1.0, 1.0, 1.0])


def height_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hybrid-SORT's height IoU (Yang et al., AAAI 2024): the overlap of the
    vertical extents ``[y1, y2]`` of ``(N, 4)`` and ``(M, 4)`` boxes over the
    extent of their union, ``(N, M)`` in ``[0, 1]``. Multiplying the IoU by it
    (height-modulated IoU) penalises pairs of different heights, e.g. a near
    and a far person whose boxes overlap."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    inter = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    union = np.maximum(a[:, None, 3], b[None, :, 3]) - np.minimum(a[:, None, 1], b[None, :, 1])
    return np.divide(np.clip(inter, 0, None), union, out=np.zeros_like(inter), where=union > 0)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalizes the rows of ``x`` (float32; zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def cosine_distance(a: np.ndarray, b: np.ndarray, normalized: bool = False) -> np.ndarray:
    """Pairwise cosine distance ``1 - cos`` of ``(N, D)`` and ``(M, D)`` features.

    Args:
        a, b: feature rows
        normalized: the rows are already L2-normalized (skips normalizing)

    Returns:
        ``(N, M)`` float64 distances in ``[0, 2]``
    """
    if not normalized:
        a, b = normalize_rows(a), normalize_rows(b)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return 1.0 - (a @ b.T).astype(np.float64)


def paired_cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine distance ``1 - cos`` of matching rows: ``(K, D)`` and ``(K, D)`` -> ``(K,)`` float64 in ``[0, 2]``.

    For sparse candidate pairs (row ``k`` of ``a`` against row ``k`` of ``b``),
    where :func:`cosine_distance` would build the dense ``(N, M)`` matrix.
    """
    a, b = normalize_rows(a), normalize_rows(b)
    return 1.0 - np.einsum("ij,ij->i", a, b).astype(np.float64)


def gallery_distance(galleries: list[np.ndarray], features: np.ndarray) -> np.ndarray:
    """DeepSORT's nearest-neighbour cosine distance of detections to track galleries.

    The distance of a track to a detection is the smallest cosine distance
    between the detection's feature and any feature in the track's gallery.
    All galleries are compared in one matrix product.

    Args:
        galleries: ``T`` arrays ``(k_t, D)`` of L2-normalized features (a
            track with ``k_t = 0`` gets distance ``INF_COST`` everywhere)
        features: ``(N, D)`` L2-normalized detection features

    Returns:
        ``(T, N)`` distances
    """
    features = np.asarray(features, dtype=np.float32)
    out = np.full((len(galleries), len(features)), INF_COST)
    sizes = np.fromiter((len(g) for g in galleries), dtype=np.int64, count=len(galleries))
    nonempty = np.flatnonzero(sizes)
    if len(nonempty) == 0 or len(features) == 0:
        return out
    stacked = np.concatenate([galleries[i] for i in nonempty])  # (G, D)
    starts = np.concatenate([[0], np.cumsum(sizes[nonempty])[:-1]])
    best = np.maximum.reduceat(stacked @ features.T, starts, axis=0)  # highest cosine
    out[nonempty] = 1.0 - best.astype(np.float64)
    return out


def linear_assignment(
    cost: np.ndarray, max_cost: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching with a per-pair limit (Jonker-Volgenant, ``lap``).

    Pairs costing more than ``max_cost`` are never matched: the matrix is
    extended so that leaving a row and a column unmatched costs ``max_cost``.

    Args:
        cost: ``(N, M)`` cost matrix (``INF_COST`` or any value above
            ``max_cost`` forbids a pair)
        max_cost: the largest cost an accepted pair may have

    Returns:
        ``(matches (K, 2) int rows/cols, unmatched_rows, unmatched_cols)``
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        empty = np.zeros((0, 2), dtype=np.int64)
        return empty, np.arange(n), np.arange(m)
    cost = np.where(np.isfinite(cost), cost, INF_COST)
    admissible = cost <= max_cost
    sub_rows = np.flatnonzero(admissible.any(axis=1))  # only rows / cols that can match
    sub_cols = np.flatnonzero(admissible.any(axis=0))
    rows = cols = np.zeros(0, dtype=np.int64)
    n_adm = int(admissible.sum())
    if len(sub_rows) and n_adm == len(sub_rows) == len(sub_cols):
        rows, cols = np.nonzero(admissible)  # no conflicts: each can only take the other
    elif len(sub_rows):
        sub = cost[np.ix_(sub_rows, sub_cols)]
        _, x, _ = lap.lapjv(sub, extend_cost=True, cost_limit=float(max_cost) + 1e-9)
        r = np.flatnonzero(x >= 0)
        rows, cols = sub_rows[r], sub_cols[x[r]]
        keep = cost[rows, cols] <= max_cost
        rows, cols = rows[keep], cols[keep]
    matched_cols = np.zeros(m, dtype=bool)
    matched_cols[cols] = True
    matched_rows = np.zeros(n, dtype=bool)
    matched_rows[rows] = True
    return (
        np.stack([rows, cols], axis=1),
        np.flatnonzero(~matched_rows),
        np.flatnonzero(~matched_cols),
    )
