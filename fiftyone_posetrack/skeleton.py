"""The COCO-17 person skeleton: joint names, limbs, flip pairs and OKS sigmas.

Joint order is COCO's (and mmpose's, MoveNet's, RTMPose's)::

    0 nose, 1 left_eye, 2 right_eye, 3 left_ear, 4 right_ear,
    5 left_shoulder, 6 right_shoulder, 7 left_elbow, 8 right_elbow,
    9 left_wrist, 10 right_wrist, 11 left_hip, 12 right_hip,
    13 left_knee, 14 right_knee, 15 left_ankle, 16 right_ankle
"""

from __future__ import annotations

import numpy as np

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

NUM_KEYPOINTS = len(COCO_KEYPOINTS)

#: limbs as pairs of 0-based joint indices (COCO's skeleton, 0-based)
COCO_EDGES: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12),
    (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

#: left/right joint pairs swapped by a horizontal flip
COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip

#: per-joint OKS sigmas of the COCO keypoint benchmark
COCO_SIGMAS = np.array(
    [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
     0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
)  # fmt: skip


def flip_permutation() -> np.ndarray:
    """Returns the joint permutation that a horizontal flip applies."""
    perm = np.arange(NUM_KEYPOINTS)
    for a, b in COCO_FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


def fiftyone_skeleton():
    """Returns the COCO-17 skeleton as a :class:`fiftyone.core.odm.KeypointSkeleton`.

    FiftyOne is imported lazily so that the numerics never need it.
    """
    import fiftyone as fo

    return fo.KeypointSkeleton(
        labels=list(COCO_KEYPOINTS), edges=[list(e) for e in COCO_EDGES]
    )
