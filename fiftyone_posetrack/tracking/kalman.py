"""Constant-velocity Kalman filter for boxes, batched over tracks.

The state of a track is the 8-vector ``(x, y, a, h, vx, vy, va, vh)``: box
center ``(x, y)`` in pixels, aspect ratio ``a = w / h``, height ``h`` in pixels
and their velocities per frame, as in DeepSORT (Wojke et al., 2017). Process
and measurement noise scale with the box height through the paper's weights
``std_pos = 1/20`` and ``std_vel = 1/160``.

Every function works on a whole batch of tracks at once: ``mean`` is ``(T, 8)``
and ``cov`` is ``(T, 8, 8)``, so a tracker never loops over its tracks in
Python to predict, gate or update them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CHI2_95_4DOF",
    "KalmanBoxFilter",
    "KalmanXYWHFilter",
    "make_kalman_filter",
    "xyxy_to_xyah",
    "xyah_to_xyxy",
    "xyxy_to_xywh_center",
    "xywh_center_to_xyxy",
]

#: 0.95 quantile of the chi-square distribution with 4 degrees of freedom
#: (DeepSORT's Mahalanobis gate on ``(x, y, a, h)``)
CHI2_95_4DOF = 9.4877

_NDIM = 4
_F = np.eye(2 * _NDIM)
_F[:_NDIM, _NDIM:] = np.eye(_NDIM)  # x' = x + v (dt = 1 frame)
_FT = _F.T.copy()
_DIAG8 = np.arange(2 * _NDIM)
_DIAG4 = np.arange(_NDIM)


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` ``[x1, y1, x2, y2]`` -> ``(N, 4)`` ``(cx, cy, w / h, h)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty_like(boxes)
    out[:, 3] = boxes[:, 3] - boxes[:, 1]
    out[:, 2] = (boxes[:, 2] - boxes[:, 0]) / out[:, 3]
    out[:, :2] = (boxes[:, :2] + boxes[:, 2:]) / 2
    return out


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """``(N, >=4)`` ``(cx, cy, a, h, ...)`` -> ``(N, 4)`` ``[x1, y1, x2, y2]``."""
    xyah = np.asarray(xyah, dtype=np.float64)
    half = np.empty((len(xyah), 2))
    half[:, 1] = xyah[:, 3] / 2
    half[:, 0] = xyah[:, 2] * half[:, 1]
    return np.concatenate([xyah[:, :2] - half, xyah[:, :2] + half], axis=1)


def xyxy_to_xywh_center(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` ``[x1, y1, x2, y2]`` -> ``(N, 4)`` ``(cx, cy, w, h)``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)


def xywh_center_to_xyxy(state: np.ndarray) -> np.ndarray:
    """``(N, >=4)`` ``(cx, cy, w, h, ...)`` -> ``(N, 4)`` ``[x1, y1, x2, y2]``."""
    state = np.asarray(state, dtype=np.float64)
    half = state[:, 2:4] / 2
    return np.concatenate([state[:, :2] - half, state[:, :2] + half], axis=1)


def make_kalman_filter(kind: str = "xyah", nsa: bool = False) -> "KalmanBoxFilter":
    """``"xyah"``: DeepSORT's filter; ``"xywh"``: BoT-SORT's box-state filter.

    ``nsa``: StrongSORT's noise-scale-adaptive correction (see :class:`KalmanBoxFilter`).
    """
    if kind == "xyah":
        return KalmanBoxFilter(nsa=nsa)
    if kind == "xywh":
        return KalmanXYWHFilter(nsa=nsa)
    from fiftyone_posetrack.types import BadInputError

    raise BadInputError(f"kalman: expected 'xyah' or 'xywh', got {kind!r}")


class KalmanBoxFilter:
    """The DeepSORT Kalman filter, vectorized over tracks.

    Args:
        std_pos: position noise as a fraction of the box height (1/20)
        std_vel: velocity noise as a fraction of the box height (1/160)
        nsa: StrongSORT's NSA Kalman (Du et al., 2023, after GIAOTracker): the
            measurement noise of a correction is scaled by ``1 - score`` of
            the detection, so confident detections pull the state harder
    """

    #: state layout name, measurement indices scaled by a camera zoom
    kind = "xyah"
    _zoom_slots = (3, 7)

    def __init__(self, std_pos: float = 1.0 / 20, std_vel: float = 1.0 / 160, nsa: bool = False):
        self.std_pos = float(std_pos)
        self.std_vel = float(std_vel)
        self.nsa = bool(nsa)

    @staticmethod
    def from_boxes(boxes: np.ndarray) -> np.ndarray:
        """``(N, 4)`` ``[x1, y1, x2, y2]`` pixels -> measurements of this filter."""
        return xyxy_to_xyah(boxes)

    @staticmethod
    def to_boxes(mean: np.ndarray) -> np.ndarray:
        """``(N, >=4)`` states -> ``(N, 4)`` ``[x1, y1, x2, y2]`` pixels."""
        return xyah_to_xyxy(mean)

    def _measurement_std(self, mean: np.ndarray) -> np.ndarray:
        p = self.std_pos
        return self._hstd(mean[:, 3], (p, p, 0, p), ((2, 1e-1),))

    def _hstd(self, h: np.ndarray, weights: tuple, const: tuple) -> np.ndarray:
        """Per-track std vectors: ``weights * h`` except at aspect-ratio slots."""
        std = np.asarray(weights)[None, :] * h[:, None]
        for i, c in const:
            std[:, i] = c
        return std

    def initiate(self, xyah: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Creates tracks from unassociated measurements.

        Args:
            xyah: ``(N, 4)`` measurements ``(cx, cy, a, h)``

        Returns:
            ``(mean (N, 8), cov (N, 8, 8))`` with zero velocity
        """
        xyah = np.asarray(xyah, dtype=np.float64).reshape(-1, 4)
        n = len(xyah)
        mean = np.zeros((n, 8))
        mean[:, :4] = xyah
        p, v = 2 * self.std_pos, 10 * self.std_vel
        std = self._hstd(xyah[:, 3], (p, p, 0, p, v, v, 0, v), ((2, 1e-2), (6, 1e-5)))
        cov = np.zeros((n, 8, 8))
        cov[:, _DIAG8, _DIAG8] = std**2
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One constant-velocity step: ``x' = F x``, ``P' = F P F^T + Q``."""
        if len(mean) == 0:
            return mean, cov
        p, v = self.std_pos, self.std_vel
        q = self._hstd(mean[:, 3], (p, p, 0, p, v, v, 0, v), ((2, 1e-2), (6, 1e-5))) ** 2
        mean = mean.copy()
        mean[:, :4] += mean[:, 4:]
        cov = _F @ cov @ _FT
        cov[:, _DIAG8, _DIAG8] += q
        return mean, cov

    def project(self, mean: np.ndarray, cov: np.ndarray, scores=None) -> tuple[np.ndarray, np.ndarray]:
        """State -> measurement space: ``(H x, H P H^T + R)``, ``(T, 4)``, ``(T, 4, 4)``.

        ``scores``: the ``(T,)`` detection scores of a correction (NSA only).
        """
        r = self._measurement_std(mean) ** 2
        if scores is not None and self.nsa:
            r = r * (1.0 - np.clip(np.asarray(scores, dtype=np.float64), 0.0, 0.99))[:, None]
        s = cov[:, :4, :4].copy()
        s[:, _DIAG4, _DIAG4] += r
        return mean[:, :4], s

    def innovation_inverse(self, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """``(T, 4, 4)`` inverses of the projected covariances ``S = H P H^T + R``.

        Gating and correction of the same predicted states both need
        ``S^-1``: compute it once per frame and pass it to both.
        """
        return np.linalg.inv(self.project(mean, cov)[1])

    def update(
        self,
        mean: np.ndarray,
        cov: np.ndarray,
        xyah: np.ndarray,
        s_inv: np.ndarray | None = None,
        scores: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Kalman correction of ``T`` tracks with one measurement each.

        Args:
            mean, cov: ``(T, 8)``, ``(T, 8, 8)`` predicted states
            xyah: ``(T, 4)`` associated measurements ``(cx, cy, a, h)``
            s_inv: optional :meth:`innovation_inverse` of these states
                (ignored when NSA scales the noise by ``scores``)
            scores: ``(T,)`` detection scores (used with ``nsa``)

        Returns:
            the corrected ``(mean, cov)``
        """
        if len(mean) == 0:
            return mean, cov
        if scores is not None and self.nsa:
            s_inv = np.linalg.inv(self.project(mean, cov, scores)[1])
        elif s_inv is None:
            s_inv = self.innovation_inverse(mean, cov)
        gain = cov[:, :, :4] @ s_inv  # K = P H^T S^-1, (T, 8, 4)
        innovation = np.asarray(xyah, dtype=np.float64) - mean[:, :4]
        mean = mean + (gain @ innovation[:, :, None])[:, :, 0]
        cov = cov - gain @ cov[:, :4, :]  # P - K S K^T = P - K H P
        return mean, cov

    def gating_distance(
        self,
        mean: np.ndarray,
        cov: np.ndarray,
        xyah: np.ndarray,
        only_position: bool = False,
        s_inv: np.ndarray | None = None,
    ) -> np.ndarray:
        """Squared Mahalanobis distances of all measurements to all tracks.

        Args:
            mean, cov: ``(T, 8)``, ``(T, 8, 8)`` predicted states
            xyah: ``(N, 4)`` measurements
            only_position: use only ``(cx, cy)`` (then gate with 2 dof)
            s_inv: optional :meth:`innovation_inverse` of these states
                (ignored with ``only_position``)

        Returns:
            ``(T, N)`` squared distances; compare with :data:`CHI2_95_4DOF`
        """
        xyah = np.asarray(xyah, dtype=np.float64).reshape(-1, 4)
        if len(mean) == 0 or len(xyah) == 0:
            return np.zeros((len(mean), len(xyah)))
        k = 2 if only_position else 4
        d = xyah[None, :, :k] - mean[:, None, :k]  # (T, N, k)
        if only_position:
            s_inv = np.linalg.inv(self.project(mean, cov)[1][:, :2, :2])
        elif s_inv is None:
            s_inv = self.innovation_inverse(mean, cov)
        return np.einsum("tnk,tnk->tn", d @ s_inv, d)

    @classmethod
    def warp(cls, mean: np.ndarray, cov: np.ndarray, affine: np.ndarray):
        """Applies a camera motion (a 2x3 similarity) to predicted states.

        Centers and center velocities are rotated, scaled and (centers only)
        translated; heights and their velocities are scaled; aspect ratios are
        unchanged. The covariance is transformed with the same linear map.

        Args:
            mean, cov: ``(T, 8)``, ``(T, 8, 8)``
            affine: ``(2, 3)`` matrix mapping previous-frame pixels to current

        Returns:
            the warped ``(mean, cov)``
        """
        a = np.asarray(affine, dtype=np.float64).reshape(2, 3)
        rot = a[:, :2]
        scale = float(np.sqrt(abs(np.linalg.det(rot))))
        m = np.eye(8)
        m[0:2, 0:2] = rot
        m[4:6, 4:6] = rot
        for i in cls._zoom_slots:
            m[i, i] = scale
        mean = mean @ m.T
        mean[:, :2] += a[:, 2]
        cov = m @ cov @ m.T
        return mean, cov


class KalmanXYWHFilter(KalmanBoxFilter):
    """BoT-SORT's Kalman filter (Aharon et al., 2022): the state is
    ``(x, y, w, h, vx, vy, vw, vh)`` (center, width and height in pixels and
    their velocities per frame), and the noise of the x / w components scales
    with the box width, that of the y / h components with its height. Tracks the
    width directly, which follows people whose aspect ratio changes (arms,
    strides) better than DeepSORT's ``(x, y, a, h)``.
    """

    kind = "xywh"
    _zoom_slots = (2, 3, 6, 7)

    @staticmethod
    def from_boxes(boxes: np.ndarray) -> np.ndarray:
        return xyxy_to_xywh_center(boxes)

    @staticmethod
    def to_boxes(mean: np.ndarray) -> np.ndarray:
        return xywh_center_to_xyxy(mean)

    def _wh_std(self, mean: np.ndarray, weights: tuple) -> np.ndarray:
        w, h = mean[:, 2], mean[:, 3]
        scale = np.stack([w, h, w, h] * (len(weights) // 4), axis=1)
        return np.asarray(weights)[None, :] * scale

    def initiate(self, xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
        mean = np.zeros((len(xywh), 8))
        mean[:, :4] = xywh
        p, v = 2 * self.std_pos, 10 * self.std_vel
        std = self._wh_std(mean, (p, p, p, p, v, v, v, v))
        cov = np.zeros((len(xywh), 8, 8))
        cov[:, _DIAG8, _DIAG8] = std**2
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(mean) == 0:
            return mean, cov
        p, v = self.std_pos, self.std_vel
        q = self._wh_std(mean, (p, p, p, p, v, v, v, v)) ** 2
        mean = mean.copy()
        mean[:, :4] += mean[:, 4:]
        cov = _F @ cov @ _FT
        cov[:, _DIAG8, _DIAG8] += q
        return mean, cov

    def _measurement_std(self, mean: np.ndarray) -> np.ndarray:
        p = self.std_pos
        return self._wh_std(mean, (p, p, p, p))
