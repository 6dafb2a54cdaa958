"""Synthetic crowd scenes: who walks where and when, and the floor they walk on.

A :class:`Walker` crosses the floor on a straight line at constant speed, from
an entry point just outside one side of the frame to an exit point just
outside the other side (both in world metres, see
:mod:`fiftyone_posetrack.synth.camera`). Most walkers keep their depth (they
move horizontally in the image); some walk diagonally, nearer or farther.
:func:`random_scene` draws walkers that enter and leave at different times, at
different depths and speeds, and pairs some of them so that they cross each
other's paths in the middle of the video.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import cv2
import numpy as np

from fiftyone_posetrack.synth.camera import FAR_FEET_ROW, NEAR_FEET_ROW, Camera
from fiftyone_posetrack.synth.people import Appearance, gait_frequency, random_appearances

#: how far (metres) outside the frame's side a walker starts and ends, so that
#: the whole body, swinging arms included, is out of view there
SIDE_MARGIN_M = 0.6


@dataclass
class Walker:
    """One person crossing the floor.

    Attributes:
        appearance: how the person looks
        start: ``(X, Z)`` floor point (metres) where the walk starts
        end: ``(X, Z)`` floor point (metres) where the walk ends
        speed: walking speed, metres per second
        start_frame: frame index (0-based, may be negative or fractional) at
            which the person is at ``start``
        phase0: walking-cycle phase at ``start``, radians
        hip_amp: hip swing amplitude, radians
        arm_amp: shoulder swing amplitude, radians
    """

    appearance: Appearance
    start: tuple[float, float]
    end: tuple[float, float]
    speed: float
    start_frame: float
    phase0: float = 0.0
    hip_amp: float = 0.38
    arm_amp: float = 0.35

    def duration_frames(self, fps: float) -> float:
        """Frames the walk from ``start`` to ``end`` takes."""
        dist = float(np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]))
        return dist / self.speed * fps


@dataclass
class Scene:
    """A camera, its floor image and the walkers; track id of walker ``i`` is ``i + 1``.

    Attributes:
        camera: the projection
        walkers: the people
        frames: number of frames
        fps: frames per second
        background: ``(H, W, 3)`` uint8 BGR image of the empty scene
    """

    camera: Camera
    walkers: list[Walker]
    frames: int
    fps: float
    background: np.ndarray = field(repr=False)
    _table: "WalkerTable | None" = field(default=None, init=False, repr=False, compare=False)

    def states(self, frame: int) -> "WalkerStates":
        """Positions, headings and gait phases of the walkers on the floor at ``frame``.

        The walkers' parameters are tabulated on the first call; call
        :meth:`refresh` after changing :attr:`walkers`.
        """
        if self._table is None:
            self._table = WalkerTable.from_walkers(self.walkers)
        return self._table.states(frame, self.fps)

    def refresh(self) -> None:
        """Forgets the tabulated walker parameters (after editing :attr:`walkers`)."""
        self._table = None


@dataclass
class WalkerStates:
    """Vectorized state of the walkers that are on their walk at one frame.

    Attributes:
        index: ``(n,)`` walker indices (track id = index + 1)
        ground: ``(n, 2)`` floor points ``(X, Z)``, metres
        yaw: ``(n,)`` walking directions, radians (0 = to the right)
        phase: ``(n,)`` walking-cycle phases, radians
        height_m, hip_amp, arm_amp: ``(n,)`` body parameters
    """

    index: np.ndarray
    ground: np.ndarray
    yaw: np.ndarray
    phase: np.ndarray
    height_m: np.ndarray
    hip_amp: np.ndarray
    arm_amp: np.ndarray


@dataclass
class WalkerTable:
    """The walkers' constant parameters as arrays (one row per walker)."""

    start: np.ndarray  # (P, 2) metres
    delta: np.ndarray  # (P, 2) end - start, metres
    dist: np.ndarray  # (P,) metres
    speed: np.ndarray  # (P,) m/s
    start_frame: np.ndarray  # (P,)
    phase0: np.ndarray  # (P,) radians
    omega: np.ndarray  # (P,) gait frequency, rad/s
    height_m: np.ndarray
    hip_amp: np.ndarray
    arm_amp: np.ndarray

    @classmethod
    def from_walkers(cls, walkers: list[Walker]) -> "WalkerTable":
        def col(get):
            return np.array([get(w) for w in walkers], dtype=np.float64)

        start = col(lambda w: w.start).reshape(-1, 2)
        delta = col(lambda w: w.end).reshape(-1, 2) - start
        speed, hip = col(lambda w: w.speed), col(lambda w: w.hip_amp)
        height = col(lambda w: w.appearance.height_m)
        return cls(
            start=start,
            delta=delta,
            dist=np.hypot(delta[:, 0], delta[:, 1]),
            speed=speed,
            start_frame=col(lambda w: w.start_frame),
            phase0=col(lambda w: w.phase0),
            omega=gait_frequency(speed, hip, height),
            height_m=height,
            hip_amp=hip,
            arm_amp=col(lambda w: w.arm_amp),
        )

    def states(self, frame: float, fps: float) -> WalkerStates:
        """Vectorized :class:`WalkerStates` of the walkers whose walk spans ``frame``."""
        elapsed = (frame - self.start_frame) / fps  # seconds since the start point
        travelled = self.speed * elapsed
        idx = np.flatnonzero((travelled >= 0) & (travelled <= self.dist))
        unit = self.delta[idx] / np.maximum(self.dist[idx], 1e-9)[:, None]
        return WalkerStates(
            index=idx,
            ground=self.start[idx] + unit * travelled[idx, None],
            yaw=np.arctan2(unit[:, 1], unit[:, 0]),
            phase=self.phase0[idx] + self.omega[idx] * elapsed[idx],
            height_m=self.height_m[idx],
            hip_amp=self.hip_amp[idx],
            arm_amp=self.arm_amp[idx],
        )


def walker_states(walkers: list[Walker], frame: float, fps: float) -> WalkerStates:
    """Vectorized :class:`WalkerStates` of the walkers whose walk spans ``frame``."""
    return WalkerTable.from_walkers(walkers).states(frame, fps)


def crossing_walker(
    camera: Camera,
    appearance: Appearance,
    direction: int,
    depth_from: float,
    depth_to: float,
    speed: float,
    start_frame: float,
    **kwargs,
) -> Walker:
    """A walker that crosses the whole frame.

    Args:
        camera: the scene's camera
        appearance: the person's look
        direction: +1 walks left to right, -1 right to left
        depth_from: depth (metres) where the person enters
        depth_to: depth (metres) where the person leaves
        speed: metres per second
        start_frame: frame at which the person is at the entry point, just
            outside the frame
        **kwargs: other :class:`Walker` fields
    """
    x_from = -direction * (float(camera.half_width_at(depth_from)) + SIDE_MARGIN_M)
    x_to = direction * (float(camera.half_width_at(depth_to)) + SIDE_MARGIN_M)
    return Walker(appearance, (x_from, depth_from), (x_to, depth_to), speed, start_frame, **kwargs)


def random_scene(
    people: int, frames: int, width: int, height: int, seed: int = 0, fps: float = 25.0
) -> Scene:
    """Draws a crowd scene; the same arguments give the same scene.

    Every walker is in view for part of the video: 40 % enter during the
    video, 40 % leave during it, the rest are anywhere. About a quarter walk
    diagonally, the rest nearly horizontally; depths are spread evenly over
    the image rows where feet can be; speeds are 0.9-1.7 m/s; about half of
    the walkers are paired with the previous one so that the two cross each
    other's paths, in opposite directions, between 20 % and 80 % of the video.
    """
    rng = np.random.default_rng(seed)
    camera = Camera.for_frame(width, height)
    appearances = random_appearances(people, rng)
    row_lo, row_hi = FAR_FEET_ROW * height, NEAR_FEET_ROW * height
    walkers: list[Walker] = []
    for i in range(people):
        row_a = rng.uniform(row_lo, row_hi)
        if rng.random() < 0.25:  # diagonal
            row_b = rng.uniform(row_lo, row_hi)
            while abs(row_b - row_a) < 0.2 * height:
                row_b = rng.uniform(row_lo, row_hi)
        else:
            row_b = float(np.clip(row_a + rng.normal(0, 0.03 * height), row_lo, row_hi))
        depth_a, depth_b = (float(d) for d in camera.depth_of_row(np.array([row_a, row_b])))
        speed = float(rng.uniform(0.9, 1.7))
        direction = 1 if rng.random() < 0.5 else -1
        pair = i > 0 and rng.random() < 0.5
        if pair:
            direction = -int(np.sign(walkers[-1].end[0] - walkers[-1].start[0]))
        extra = dict(
            phase0=float(rng.uniform(0, 2 * np.pi)),
            hip_amp=float(rng.uniform(0.32, 0.42)),
            arm_amp=float(rng.uniform(0.25, 0.45)),
        )
        walker = crossing_walker(
            camera, appearances[i], direction, depth_a, depth_b, speed, 0.0, **extra
        )
        duration = walker.duration_frames(fps)
        edge = SIDE_MARGIN_M / speed * fps  # frames from the start point to the frame's side
        mode = rng.choice(3, p=[0.4, 0.4, 0.2])
        if mode == 0:  # enters during the video
            start = rng.uniform(-edge, 0.75 * frames)
        elif mode == 1:  # leaves during the video
            start = rng.uniform(0.25 * frames, frames + edge) - duration
        else:  # anywhere, at least partly inside the video
            keep = min(0.25 * duration, 0.25 * frames)
            start = rng.uniform(-duration + keep, frames - keep)
        if pair:
            meet = _meeting_start(walkers[-1], walker, rng.uniform(0.2, 0.8) * frames, fps)
            if meet is not None:
                start = meet
        walker.start_frame = float(start)
        walkers.append(walker)
    return Scene(camera, walkers, int(frames), float(fps), render_background(camera, rng))


def _meeting_start(other: Walker, walker: Walker, meet_frame: float, fps: float) -> float | None:
    """Start frame making ``walker`` reach ``other``'s image column at ``meet_frame``."""
    states = walker_states([other], meet_frame, fps)
    if len(states.index) == 0:
        return None
    x_other = states.ground[0, 0]
    dx = walker.end[0] - walker.start[0]
    dist = float(np.hypot(dx, walker.end[1] - walker.start[1]))
    if abs(dx) < 1e-9:
        return None
    frac = (x_other - walker.start[0]) / dx  # fraction of the walk at the meeting point
    if not 0.0 <= frac <= 1.0:
        return None
    return meet_frame - frac * dist / walker.speed * fps


def render_background(camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """A tiled floor in perspective below a wall with doors and posters, plus noise.

    Rendered at twice the resolution and downsampled with area averaging, so
    that far tiles do not alias.
    """
    ss = 2
    wid, hgt = camera.width * ss, camera.height * ss
    focal, horizon, cx = camera.focal * ss, camera.horizon * ss, (wid - 1) / 2.0
    wall_depth = 1.25 * camera.depth_range()[1]
    wall_row = horizon + focal * camera.height_m / wall_depth

    image = np.empty((hgt, wid, 3), dtype=np.float32)
    rows = np.arange(hgt, dtype=np.float32)[:, None]
    cols = np.arange(wid, dtype=np.float32)[None, :]

    # floor: square tiles with grout, per-tile brightness jitter
    tile = float(rng.uniform(0.6, 1.0))
    # muted floor colours: greys, beiges, terracotta, slate
    hue = float(rng.choice([0.05, 0.08, 0.1, 0.12, 0.55, 0.6]))
    colour_a = np.array(_hsv_bgr(hue, rng.uniform(0.05, 0.35), rng.uniform(0.5, 0.8)), dtype=np.float32)
    colour_b = colour_a * float(rng.uniform(0.75, 0.92))
    grout = colour_a * 0.5
    floor_rows = rows[int(np.ceil(wall_row)):]
    depth = focal * camera.height_m / np.maximum(floor_rows - horizon, 1e-3)
    xw = (cols - cx) * depth / focal
    u, v = xw / tile, depth / tile
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    checker = ((iu + iv) & 1).astype(np.float32)[..., None]
    jitter = ((iu * 73856093) ^ (iv * 19349663)) % 1000 / 1000.0
    tile_rgb = colour_a * (1 - checker) + colour_b * checker
    tile_rgb = tile_rgb * (0.92 + 0.16 * jitter[..., None]).astype(np.float32)
    edge = np.minimum(np.minimum(u - iu, 1 - (u - iu)), np.minimum(v - iv, 1 - (v - iv)))
    is_grout = (edge < 0.03)[..., None]
    image[int(np.ceil(wall_row)):] = np.where(is_grout, grout, tile_rgb)

    # wall: base colour, skirting, doors / posters / windows
    wall_hsv = (rng.random(), rng.uniform(0.05, 0.3), rng.uniform(0.55, 0.9))
    wall = np.array(_hsv_bgr(*wall_hsv), dtype=np.float32)
    top = image[: int(np.ceil(wall_row))]
    top[:] = wall * (0.85 + 0.15 * rows[: len(top)] / max(wall_row, 1.0))[..., None]
    skirt = max(2, int(0.02 * hgt))
    top[-skirt:] = wall * 0.45
    for _ in range(int(rng.integers(3, 8))):
        w = int(rng.uniform(0.04, 0.12) * wid)
        h = int(rng.uniform(0.3, 0.8) * wall_row)
        x = int(rng.uniform(0, wid - w))
        y = int(max(0.0, wall_row - skirt - h - rng.uniform(0, 0.3) * wall_row))
        colour = tuple(float(c) for c in rng.uniform(30, 240, 3))
        corner = (x + w, min(y + h, len(top) - skirt))
        cv2.rectangle(top, (x, y), corner, colour, -1)
        cv2.rectangle(top, (x, y), corner, tuple(c * 0.5 for c in colour), ss * 2)

    image += rng.normal(0.0, 7.0, size=image.shape).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), 0.8 * ss)
    image = cv2.resize(image, (camera.width, camera.height), interpolation=cv2.INTER_AREA)
    image += rng.normal(0.0, 3.0, size=image.shape).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _hsv_bgr(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (255.0 * b, 255.0 * g, 255.0 * r)
