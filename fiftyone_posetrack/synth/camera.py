"""The pinhole camera that looks at the synthetic scene's floor.

World coordinates are metres: ``X`` to the right, ``Y`` up from the floor,
``Z`` the depth in front of the camera. The camera stands ``height_m`` above
the floor with a horizontal optical axis and a shifted principal point (a
tilt-shift lens), so the horizon sits near the top of the image and the floor
fills the rest: a person's feet lower in the image are nearer and the person is
drawn larger, exactly as perspective says (height in pixels is proportional to
the feet's distance below the horizon).

Image coordinates are pixels of the rendered frame, ``x`` to the right and
``y`` down, with ``(0, 0)`` the centre of the top-left pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: nominal standing height of a person, metres (people vary around it)
NOMINAL_HEIGHT_M = 1.75

#: image rows (fractions of the frame height) between which feet are placed:
#: a nominal person is ~15 % of the frame tall at the top row, ~43 % at the bottom
FAR_FEET_ROW = 0.42
NEAR_FEET_ROW = 0.97


@dataclass(frozen=True)
class Camera:
    """Perspective projection of the floor scene onto a ``width x height`` frame.

    Attributes:
        width: frame width in pixels
        height: frame height in pixels
        focal: focal length in pixels
        horizon: image row of the horizon (the principal point's ``y``), pixels
        height_m: camera height above the floor, metres
    """

    width: int
    height: int
    focal: float
    horizon: float
    height_m: float

    @classmethod
    def for_frame(cls, width: int, height: int) -> "Camera":
        """The default camera of a ``width x height`` frame.

        A nominal (1.75 m) person is 15 % of the frame height tall with feet
        at row ``0.42 * height`` and ~43 % with feet at ``0.97 * height``.
        """
        horizon = 0.12 * height
        # person height / (feet row - horizon) = NOMINAL_HEIGHT_M / height_m
        height_m = NOMINAL_HEIGHT_M / 0.5
        return cls(int(width), int(height), 1.5 * height, horizon, height_m)

    @property
    def cx(self) -> float:
        return (self.width - 1) / 2.0

    def depth_of_row(self, row) -> np.ndarray:
        """Depth (metres) of the floor point seen at image row ``row`` (pixels)."""
        return self.focal * self.height_m / (np.asarray(row, dtype=np.float64) - self.horizon)

    def depth_range(self) -> tuple[float, float]:
        """``(near, far)`` depths in metres of the floor band where feet are placed."""
        near = float(self.depth_of_row(NEAR_FEET_ROW * self.height))
        far = float(self.depth_of_row(FAR_FEET_ROW * self.height))
        return near, far

    def half_width_at(self, depth) -> np.ndarray:
        """Half the floor width (metres) the frame sees at ``depth`` metres."""
        return (self.width / 2.0) * np.asarray(depth, dtype=np.float64) / self.focal

    def project(self, points: np.ndarray) -> np.ndarray:
        """Projects ``(..., 3)`` world points ``(X, Y, Z)`` to ``(..., 2)`` pixels."""
        points = np.asarray(points, dtype=np.float64)
        z = points[..., 2]
        x = self.cx + self.focal * points[..., 0] / z
        y = self.horizon + self.focal * (self.height_m - points[..., 1]) / z
        return np.stack([x, y], axis=-1)

    def pixels_per_metre(self, depth) -> np.ndarray:
        """Image scale (pixels per metre) of objects at ``depth`` metres."""
        return self.focal / np.asarray(depth, dtype=np.float64)
