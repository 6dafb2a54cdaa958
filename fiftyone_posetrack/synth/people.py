"""Articulated walking people: appearance and the walking-cycle body model.

A person is a stick figure of the 17 COCO joints
(:data:`fiftyone_posetrack.skeleton.COCO_KEYPOINTS`) plus a few helper points
used only for drawing (neck, head centre, pelvis, toes, head top). Joint
positions are computed in metres in the world (see
:mod:`fiftyone_posetrack.synth.camera`) for many people at once, and projected
to pixels by the camera.

The walking cycle is parametrised by a phase ``phi`` (radians): the left hip
swings forward by ``hip_amp * sin(phi)``, the right hip in antiphase, each
knee flexes during its leg's swing phase, the arms swing opposite to the legs
and the pelvis height follows the stance leg, which gives the vertical bob.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from fiftyone_posetrack.skeleton import NUM_KEYPOINTS

# helper points after the 17 COCO joints
NECK, HEAD, PELVIS, LEFT_TOE, RIGHT_TOE, HEAD_TOP = range(NUM_KEYPOINTS, NUM_KEYPOINTS + 6)
NUM_POINTS = NUM_KEYPOINTS + 6

# body proportions, in units of the person's height
THIGH = 0.245
SHIN = 0.245
ANKLE_HEIGHT = 0.045
HIP_HALF_WIDTH = 0.085
SHOULDER_HALF_WIDTH = 0.115
ARM_OFFSET = 0.125
UPPER_ARM = 0.17
FOREARM = 0.155
HEAD_RADIUS = 0.062
#: drawing thicknesses (diameters) in units of the person's height
THICKNESS = {
    "thigh": 0.085,
    "shin": 0.068,
    "upper_arm": 0.056,
    "forearm": 0.046,
    "neck": 0.05,
    "shoe": 0.045,
    "hand": 0.05,
}
#: torso half widths (units of height): side to side, and chest depth
TORSO_WIDTH = {"shoulder": 0.125, "waist": 0.1, "depth_shoulder": 0.07, "depth_waist": 0.075}

SHIRT_PATTERNS = ("solid", "hstripes", "vstripes", "checks")
TROUSER_PATTERNS = ("solid", "vstripes", "checks", "hstripes")

_SKIN = [(189, 224, 255), (150, 195, 240), (120, 170, 225), (90, 135, 198), (60, 95, 150), (45, 70, 110)]
_HAIR = [(20, 20, 25), (30, 45, 70), (40, 80, 130), (90, 170, 215), (170, 170, 175), (30, 60, 150)]
_SHOES = [(25, 25, 25), (60, 60, 60), (40, 60, 90), (230, 230, 230), (30, 30, 110)]


@dataclass(frozen=True)
class Appearance:
    """How one person looks. Colours are BGR ``uint8`` triples.

    Attributes:
        skin, hair, shoes: colours
        shirt: the shirt's two pattern colours ``(main, second)``
        trousers: the trousers' two pattern colours ``(main, second)``
        shirt_pattern: one of :data:`SHIRT_PATTERNS`
        trouser_pattern: one of :data:`TROUSER_PATTERNS`
        shirt_period, trouser_period: pattern period in units of body height
        long_sleeves: whether the forearms are clothed
        bald: no hair drawn
        height_m: standing height in metres
        build: width factor of the torso and limbs (1 = average)
    """

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shoes: tuple[int, int, int]
    shirt: tuple[tuple[int, int, int], tuple[int, int, int]]
    trousers: tuple[tuple[int, int, int], tuple[int, int, int]]
    shirt_pattern: str = "solid"
    trouser_pattern: str = "solid"
    shirt_period: float = 0.05
    trouser_period: float = 0.05
    long_sleeves: bool = False
    bald: bool = False
    height_m: float = 1.75
    build: float = 1.0


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (int(round(b * 255)), int(round(g * 255)), int(round(r * 255)))


def random_appearances(n: int, rng: np.random.Generator) -> list[Appearance]:
    """Draws ``n`` mutually distinct appearances.

    Shirt hues are spread by the golden ratio so neighbours in the list differ,
    patterns cycle through all kinds, and skin, hair and trouser colours are
    drawn independently, so that a re-identification model can tell people
    apart by appearance alone.
    """
    hue0 = rng.random()
    shirt_kinds = rng.permutation(len(SHIRT_PATTERNS))
    trouser_kinds = rng.permutation(len(TROUSER_PATTERNS))
    out = []
    for i in range(n):
        hue = hue0 + 0.618034 * i
        main = _hsv(hue, rng.uniform(0.45, 0.95), rng.uniform(0.45, 0.95))
        second = _hsv(hue + rng.uniform(0.3, 0.7), rng.uniform(0.0, 0.6), rng.uniform(0.7, 1.0))
        denim = rng.random() < 0.35
        if denim:
            t_main = _hsv(rng.uniform(0.58, 0.64), rng.uniform(0.4, 0.7), rng.uniform(0.3, 0.6))
        else:
            t_main = _hsv(rng.random(), rng.uniform(0.0, 0.7), rng.uniform(0.15, 0.75))
        t_second = _hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.5, 0.95))
        out.append(
            Appearance(
                skin=_SKIN[int(rng.integers(len(_SKIN)))],
                hair=_HAIR[int(rng.integers(len(_HAIR)))],
                shoes=_SHOES[int(rng.integers(len(_SHOES)))],
                shirt=(main, second),
                trousers=(t_main, t_second),
                shirt_pattern=SHIRT_PATTERNS[shirt_kinds[i % len(SHIRT_PATTERNS)]],
                trouser_pattern=TROUSER_PATTERNS[trouser_kinds[(i // 2) % len(TROUSER_PATTERNS)]],
                shirt_period=float(rng.uniform(0.035, 0.07)),
                trouser_period=float(rng.uniform(0.035, 0.07)),
                long_sleeves=bool(rng.random() < 0.5),
                bald=bool(rng.random() < 0.1),
                height_m=float(np.clip(rng.normal(1.74, 0.07), 1.55, 1.92)),
                build=float(rng.uniform(0.9, 1.15)),
            )
        )
    return out


def gait_frequency(speed: np.ndarray, hip_amp: np.ndarray, height_m: np.ndarray) -> np.ndarray:
    """Angular gait frequency (rad/s) that makes the stride match ``speed`` (m/s).

    A sinusoidal hip swing of amplitude ``hip_amp`` moves the foot by about
    ``2 * leg * hip_amp`` per half cycle, so the average foot speed equals the
    walking speed when ``omega = pi * speed / (2 * leg * hip_amp)``.
    """
    leg = (THIGH + SHIN) * np.asarray(height_m, dtype=np.float64)
    return np.pi * np.asarray(speed, dtype=np.float64) / (2.0 * leg * np.asarray(hip_amp))


def body_points(
    ground: np.ndarray,
    yaw: np.ndarray,
    phase: np.ndarray,
    height_m: np.ndarray,
    hip_amp: np.ndarray | float = 0.38,
    arm_amp: np.ndarray | float = 0.35,
) -> np.ndarray:
    """World positions (metres) of the 17 COCO joints and the helper points.

    Args:
        ground: ``(P, 2)`` floor position ``(X, Z)`` of each person (metres)
        yaw: ``(P,)`` walking direction on the floor, radians; 0 walks to
            ``+X`` (right in the image), ``pi / 2`` walks away from the camera
        phase: ``(P,)`` walking-cycle phase, radians
        height_m: ``(P,)`` standing heights, metres
        hip_amp: hip swing amplitude, radians
        arm_amp: shoulder swing amplitude, radians

    Returns:
        ``(P, NUM_POINTS, 3)`` world points ``(X, Y, Z)``; the first 17 are the
        COCO joints in COCO order
    """
    ground = np.asarray(ground, dtype=np.float64).reshape(-1, 2)
    p = len(ground)
    yaw = np.broadcast_to(np.asarray(yaw, dtype=np.float64), (p,))
    phase = np.broadcast_to(np.asarray(phase, dtype=np.float64), (p,))
    size = np.broadcast_to(np.asarray(height_m, dtype=np.float64), (p,))
    hip_amp = np.broadcast_to(np.asarray(hip_amp, dtype=np.float64), (p,))
    arm_amp = np.broadcast_to(np.asarray(arm_amp, dtype=np.float64), (p,))

    # body frame coordinates (forward, left, up) in units of height
    fwd = np.zeros((p, NUM_POINTS))
    left = np.zeros((p, NUM_POINTS))
    up = np.zeros((p, NUM_POINTS))

    # legs: index 0 = left (phase), 1 = right (phase + pi)
    leg_phase = np.stack([phase, phase + np.pi], axis=1)  # (P, 2)
    hip_angle = hip_amp[:, None] * np.sin(leg_phase)
    knee_flex = 0.08 + 0.95 * np.clip(np.cos(leg_phase), 0.0, None) ** 2
    shin_angle = hip_angle - knee_flex
    knee_f, knee_u = THIGH * np.sin(hip_angle), -THIGH * np.cos(hip_angle)
    ankle_f = knee_f + SHIN * np.sin(shin_angle)
    ankle_u = knee_u - SHIN * np.cos(shin_angle)
    pelvis = (-ankle_u).max(axis=1) + ANKLE_HEIGHT  # stance leg touches the floor

    side = np.array([1.0, -1.0])  # left, right
    hips = np.array([11, 12])
    knees = np.array([13, 14])
    ankles = np.array([15, 16])
    toes = np.array([LEFT_TOE, RIGHT_TOE])
    left[:, hips] = HIP_HALF_WIDTH * side
    up[:, hips] = pelvis[:, None]
    left[:, knees] = HIP_HALF_WIDTH * side * 0.95
    fwd[:, knees], up[:, knees] = knee_f, pelvis[:, None] + knee_u
    left[:, ankles] = HIP_HALF_WIDTH * side * 0.9
    fwd[:, ankles], up[:, ankles] = ankle_f, pelvis[:, None] + ankle_u
    left[:, toes] = left[:, ankles]
    fwd[:, toes], up[:, toes] = ankle_f + 0.075, up[:, ankles] - 0.03
    up[:, PELVIS] = pelvis

    # torso and head ride on the pelvis, leaning slightly forward
    lean = 0.02
    shoulders = np.array([5, 6])
    left[:, shoulders] = SHOULDER_HALF_WIDTH * side
    fwd[:, shoulders], up[:, shoulders] = lean, pelvis[:, None] + 0.29
    fwd[:, NECK], up[:, NECK] = lean + 0.005, pelvis + 0.335
    head_f, head_u = lean + 0.01, pelvis + 0.405
    fwd[:, HEAD], up[:, HEAD] = head_f, head_u
    fwd[:, HEAD_TOP], up[:, HEAD_TOP] = head_f, head_u + HEAD_RADIUS
    fwd[:, 0], up[:, 0] = head_f + 0.058, head_u - 0.012  # nose
    eyes, ears = np.array([1, 2]), np.array([3, 4])
    fwd[:, eyes], up[:, eyes] = head_f + 0.047, head_u[:, None] + 0.012
    left[:, eyes] = 0.026 * side
    fwd[:, ears], up[:, ears] = head_f - 0.008, head_u[:, None] - 0.004
    left[:, ears] = 0.055 * side

    # arms swing opposite to the leg of the same side
    arm_angle = -arm_amp[:, None] * np.sin(leg_phase)
    elbow_flex = 0.22 + 0.35 * np.clip(-np.sin(leg_phase), 0.0, None)
    fore_angle = arm_angle + elbow_flex
    elbows, wrists = np.array([7, 8]), np.array([9, 10])
    sh_u = up[:, shoulders]
    left[:, elbows] = ARM_OFFSET * side
    fwd[:, elbows] = lean + UPPER_ARM * np.sin(arm_angle)
    up[:, elbows] = sh_u - UPPER_ARM * np.cos(arm_angle)
    left[:, wrists] = ARM_OFFSET * side
    fwd[:, wrists] = fwd[:, elbows] + FOREARM * np.sin(fore_angle)
    up[:, wrists] = up[:, elbows] - FOREARM * np.cos(fore_angle)

    # to the world: forward = (cos yaw, sin yaw), left = (-sin yaw, cos yaw) in (X, Z)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    scale = size[:, None]
    out = np.empty((p, NUM_POINTS, 3))
    out[..., 0] = ground[:, :1] + scale * (fwd * c - left * s)
    out[..., 1] = scale * up
    out[..., 2] = ground[:, 1:] + scale * (fwd * s + left * c)
    return out
