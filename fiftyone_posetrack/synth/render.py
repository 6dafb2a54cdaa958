"""Drawing people into frames, with exact masks, boxes, visibility and joint flags.

Each person is drawn on a small canvas of its own that covers its whole figure
(also the parts outside the frame) as a single-channel *part code* image: every
pixel holds the body part that covers it (skin, shirt, trousers, ... and their
darker far-side variants; 0 = empty). Clothing patterns re-code shirt and
trouser pixels, and a per-person colour look-up table turns codes into BGR.
The canvas is then pasted into the frame with :func:`cv2.copyTo`, far people
first (painter's algorithm, depth = the feet's image row), and the person's
track id is pasted the same way into a ``uint16`` label map.

Because the label map holds, for every pixel, the nearest person drawn there,
the ground truth follows exactly:

- box: the tight box of the canvas mask, clipped to the frame;
- visibility: pixels of the person in the label map / pixels of its full mask;
- joint flag: 0 when the joint is outside the frame or the label map shows a
  *nearer* person at the joint's pixel, else 2 (COCO's "visible").
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fiftyone_posetrack.skeleton import NUM_KEYPOINTS
from fiftyone_posetrack.synth import people as P
from fiftyone_posetrack.synth.people import Appearance

_SHIFT = 3  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT

# part codes; +1 = the darker far-side variant, +2 = a pattern's second colour
SKIN, SKIN_FAR, HAIR = 1, 2, 3
SHIRT, SHIRT_FAR, SHIRT2, SHIRT2_FAR = 4, 5, 6, 7
TROUSER, TROUSER_FAR, TROUSER2, TROUSER2_FAR = 8, 9, 10, 11
SHOE, SHOE_FAR = 12, 13
# joints of a side: shoulder, elbow, wrist, hip, knee, ankle, toe
_LEFT = (5, 7, 9, 11, 13, 15, P.LEFT_TOE)
_RIGHT = (6, 8, 10, 12, 14, 16, P.RIGHT_TOE)
_FAR_SHADE = 0.72

VISIBLE = 2  # COCO keypoint flag of a labelled, visible joint


@dataclass
class PersonStyle:
    """Everything about a person's look that the renderer precomputes once."""

    lut: np.ndarray  # (256,) uint32: BGRA bytes per part code
    shirt_pattern: str
    trouser_pattern: str
    shirt_period: float
    trouser_period: float
    long_sleeves: bool
    bald: bool
    build: float

    @classmethod
    def from_appearance(cls, app: Appearance) -> "PersonStyle":
        lut = np.zeros((256, 4), dtype=np.uint8)

        def put(code, colour, far_code=None):
            lut[code, :3] = colour
            if far_code is not None:
                lut[far_code, :3] = np.round(np.asarray(colour) * _FAR_SHADE)

        put(SKIN, app.skin, SKIN_FAR)
        put(HAIR, app.hair)
        put(SHIRT, app.shirt[0], SHIRT_FAR)
        put(SHIRT2, app.shirt[1], SHIRT2_FAR)
        put(TROUSER, app.trousers[0], TROUSER_FAR)
        put(TROUSER2, app.trousers[1], TROUSER2_FAR)
        put(SHOE, app.shoes, SHOE_FAR)
        return cls(
            lut.view(np.uint32).reshape(256),
            app.shirt_pattern,
            app.trouser_pattern,
            app.shirt_period,
            app.trouser_period,
            app.long_sleeves,
            app.bald,
            app.build,
        )


@dataclass
class DrawnPerson:
    """One person drawn on its own canvas.

    Attributes:
        origin: ``(x, y)`` frame pixel of the canvas' top-left pixel
        codes: ``(h, w)`` uint8 part codes (0 = not this person)
        mask: ``(h, w)`` uint8, 255 where the person is drawn
    """

    origin: tuple[int, int]
    codes: np.ndarray
    mask: np.ndarray


def _pattern(kind: str, h: int, w: int, anchor, period: float) -> np.ndarray | None:
    """``(h, w)`` uint8 pattern, 2 where the second colour goes (None for solid)."""
    if kind == "solid":
        return None
    period = max(period, 2.0)
    ys = (np.floor((np.arange(h) - anchor[1]) / period).astype(np.int32) & 1).astype(np.uint8) * 2
    xs = (np.floor((np.arange(w) - anchor[0]) / period).astype(np.int32) & 1).astype(np.uint8) * 2
    if kind == "hstripes":
        return np.repeat(ys[:, None], w, axis=1)
    if kind == "vstripes":
        return np.repeat(xs[None, :], h, axis=0)
    return ys[:, None] ^ xs[None, :]


_THICK_KEYS = ("thigh", "shin", "shoe", "upper_arm", "forearm", "neck")


@dataclass
class Geometry:
    """Drawing geometry of ``n`` people, computed for all of them at once.

    Attributes:
        origin: ``(n, 2)`` int frame pixel of each canvas' top-left pixel
        size: ``(n, 2)`` int canvas ``(width, height)``
        points: ``(n, NUM_POINTS, 2)`` int32 canvas points, ``_SHIFT`` fixed point
        polys: ``(n, 2, 6, 2)`` int32 trouser-top and torso polygons, fixed point
        thick: ``(n, 6)`` int line thicknesses (pixels), in :data:`_THICK_KEYS` order
        radii: ``(n, 3)`` int fixed-point radii of hand, head and face
        face: ``(n, 2)`` int32 fixed-point face circle centres
        anchors: ``(n, 2, 2)`` float canvas anchors of the shirt and trouser patterns
        left_far: ``(n,)`` bool, the person's left side faces away from the camera
        show_face: ``(n,)`` bool, the face is seen (not walking straight away)
    """

    origin: np.ndarray
    size: np.ndarray
    points: np.ndarray
    polys: np.ndarray
    thick: np.ndarray
    radii: np.ndarray
    face: np.ndarray
    anchors: np.ndarray
    left_far: np.ndarray
    show_face: np.ndarray


def person_geometry(
    points: np.ndarray, height_px: np.ndarray, yaw: np.ndarray, build: np.ndarray
) -> Geometry:
    """Vectorized canvas geometry of ``n`` people (see :func:`draw_person`).

    Args:
        points: ``(n, NUM_POINTS, 2)`` projected points, frame pixels
        height_px: ``(n,)`` standing heights, pixels
        yaw: ``(n,)`` walking directions, radians (0 = to the right)
        build: ``(n,)`` body width factors
    """
    s = np.asarray(height_px, dtype=np.float64)
    yaw = np.asarray(yaw, dtype=np.float64)
    sb = s * np.asarray(build, dtype=np.float64)
    pad = (0.09 * s + 3.0)[:, None]
    lo = np.floor(points.min(axis=1) - pad).astype(np.int64)
    hi = np.ceil(points.max(axis=1) + pad).astype(np.int64)
    local = points - lo[:, None, :]

    cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
    pelvis, neck = local[:, P.PELVIS], local[:, P.NECK]
    axis = neck - pelvis
    axis /= np.maximum(np.hypot(axis[:, 0], axis[:, 1]), 1e-9)[:, None]
    normal = np.stack([-axis[:, 1], axis[:, 0]], axis=1)
    lateral, depth = np.abs(sin_yaw), np.abs(cos_yaw)
    tw = P.TORSO_WIDTH
    n_sh = normal * (sb * (tw["shoulder"] * lateral + tw["depth_shoulder"] * depth))[:, None]
    n_wa = normal * (sb * (tw["waist"] * lateral + tw["depth_waist"] * depth))[:, None]
    a = axis * s[:, None]
    bottom, waist = pelvis - 0.075 * a, pelvis + 0.02 * a
    top = neck - 0.02 * a
    shoulder = top - 0.03 * a
    base = pelvis + 0.01 * a
    trouser_top = [waist + n_wa, waist - n_wa, bottom - 0.9 * n_wa, bottom + 0.9 * n_wa, bottom, bottom]
    torso = [top + 0.6 * n_sh, shoulder + n_sh, base + n_wa, base - n_wa, shoulder - n_sh, top - 0.6 * n_sh]
    polys = np.stack([np.stack(trouser_top, 1), np.stack(torso, 1)], axis=1)

    radius = P.HEAD_RADIUS * s
    face = local[:, P.HEAD] + np.stack([0.3 * cos_yaw * radius, 0.22 * radius], axis=1)
    thick = np.stack([np.maximum(1, np.round(P.THICKNESS[k] * sb)) for k in _THICK_KEYS], axis=1)
    radii = np.stack([0.5 * P.THICKNESS["hand"] * s, radius, 0.8 * radius], axis=1)
    return Geometry(
        origin=lo,
        size=hi - lo + 1,
        points=np.round(local * _ONE).astype(np.int32),
        polys=np.round(polys * _ONE).astype(np.int32),
        thick=thick.astype(np.int64),
        radii=np.maximum(1, np.round(radii * _ONE)).astype(np.int64),
        face=np.round(face * _ONE).astype(np.int32),
        anchors=np.stack([top, pelvis], axis=1),
        left_far=cos_yaw >= 0.0,  # walking right: the left side faces away
        show_face=sin_yaw < 0.55,  # not walking straight away from the camera
    )


def draw_person(geom: Geometry, i: int, style: PersonStyle, height_px: float) -> DrawnPerson:
    """Draws person ``i`` of ``geom`` on a canvas that covers its whole figure.

    Painter's order within the body: far arm, far leg, near leg, trouser top,
    torso, neck, head (hair, then face), near arm; the far side is shaded.
    """
    w, h = geom.size[i].tolist()
    codes = np.zeros((h, w), dtype=np.uint8)
    q = geom.points[i].tolist()
    t_thigh, t_shin, t_shoe, t_upper, t_fore, t_neck = geom.thick[i].tolist()
    r_hand, r_head, r_face = geom.radii[i].tolist()
    line, circle, l8, sh = cv2.line, cv2.circle, cv2.LINE_8, _SHIFT
    far, near = (_LEFT, _RIGHT) if geom.left_far[i] else (_RIGHT, _LEFT)
    fore = SHIRT if style.long_sleeves else SKIN

    def arm(side, far_side: int) -> None:
        line(codes, q[side[0]], q[side[1]], SHIRT + far_side, t_upper, l8, sh)
        line(codes, q[side[1]], q[side[2]], fore + far_side, t_fore, l8, sh)
        circle(codes, q[side[2]], r_hand, SKIN + far_side, -1, l8, sh)

    arm(far, 1)
    for side, far_side in ((far, 1), (near, 0)):
        hip, knee, ankle, toe = side[3:]
        line(codes, q[hip], q[knee], TROUSER + far_side, t_thigh, l8, sh)
        line(codes, q[knee], q[ankle], TROUSER + far_side, t_shin, l8, sh)
        line(codes, q[ankle], q[toe], SHOE + far_side, t_shoe, l8, sh)
    cv2.fillConvexPoly(codes, geom.polys[i, 0], TROUSER, l8, sh)
    cv2.fillConvexPoly(codes, geom.polys[i, 1], SHIRT, l8, sh)
    line(codes, q[P.NECK], q[P.HEAD], SKIN, t_neck, l8, sh)
    if style.bald:
        circle(codes, q[P.HEAD], r_head, SKIN, -1, l8, sh)
    else:
        circle(codes, q[P.HEAD], r_head, HAIR, -1, l8, sh)
        if geom.show_face[i]:
            circle(codes, geom.face[i].tolist(), r_face, SKIN, -1, l8, sh)
    arm(near, 0)

    # clothing patterns: the second colour (code + 2) where the pattern says so
    shirt_anchor, trouser_anchor = geom.anchors[i]
    pat = _pattern(style.shirt_pattern, h, w, shirt_anchor, style.shirt_period * height_px)
    if pat is not None:
        cv2.add(codes, pat, codes, mask=cv2.inRange(codes, SHIRT, SHIRT + 1))
    pat = _pattern(style.trouser_pattern, h, w, trouser_anchor, style.trouser_period * height_px)
    if pat is not None:
        cv2.add(codes, pat, codes, mask=cv2.inRange(codes, TROUSER, TROUSER + 1))
    mask = cv2.compare(codes, 0, cv2.CMP_GT)
    return DrawnPerson(tuple(geom.origin[i].tolist()), codes, mask)


@dataclass
class FrameTruth:
    """Exact ground truth of one rendered frame, one row per person in view.

    Attributes:
        track_ids: ``(n,)`` int, ascending
        boxes: ``(n, 4)`` ``[x1, y1, x2, y2]`` pixel edges of the tight box
            around the person's drawn pixels, clipped to the frame
        visibility: ``(n,)`` fraction of the person's drawn pixels that are
            inside the frame and not covered by nearer people
        keypoints: ``(n, 17, 2)`` COCO joints in pixels (also when occluded or
            outside the frame)
        flags: ``(n, 17)`` 0 = outside the frame or occluded by a nearer
            person, 2 = visible
        head_boxes: ``(n, 4)`` ``[x1, y1, x2, y2]`` box of the head circle
            (not clipped)
        depth_order: ``(n,)`` int, 0 = drawn first (farthest)
    """

    track_ids: np.ndarray
    boxes: np.ndarray
    visibility: np.ndarray
    keypoints: np.ndarray
    flags: np.ndarray
    head_boxes: np.ndarray
    depth_order: np.ndarray

    def __len__(self) -> int:
        return len(self.track_ids)


def shade_shadows(image: np.ndarray, feet: np.ndarray, height_px: np.ndarray) -> None:
    """Darkens an ellipse on the floor under each person (a contact shadow), in place."""
    hgt, wid = image.shape[:2]
    for (fx, fy), s in zip(feet, height_px):
        ax, ay = 0.22 * s, 0.045 * s
        x0, x1 = int(max(fx - ax - 1, 0)), int(min(fx + ax + 2, wid))
        y0, y1 = int(max(fy - ay - 1, 0)), int(min(fy + ay + 2, hgt))
        if x1 <= x0 or y1 <= y0:
            continue
        m = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        centre = (int(round((fx - x0) * _ONE)), int(round((fy - y0) * _ONE)))
        axes = (max(1, int(round(ax * _ONE))), max(1, int(round(ay * _ONE))))
        cv2.ellipse(m, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_8, _SHIFT)
        roi = image[y0:y1, x0:x1]
        cv2.copyTo(cv2.multiply(roi, (0.7, 0.7, 0.7, 0)), m, roi)


def compose_frame(
    background: np.ndarray,
    track_ids: np.ndarray,
    points: np.ndarray,
    feet: np.ndarray,
    height_px: np.ndarray,
    yaw: np.ndarray,
    styles: list[PersonStyle],
) -> tuple[np.ndarray, np.ndarray, FrameTruth]:
    """Renders one frame and its exact ground truth.

    Args:
        background: ``(H, W, 3)`` uint8 BGR floor image (not modified)
        track_ids: ``(n,)`` ids (>= 1) of the people near the frame
        points: ``(n, NUM_POINTS, 2)`` their projected points, pixels
        feet: ``(n, 2)`` image position of each person's floor point (between
            the feet), pixels; its row sets the depth order
        height_px: ``(n,)`` standing heights in pixels
        yaw: ``(n,)`` walking directions, radians
        styles: ``n`` precomputed looks

    Returns:
        ``(image, labels, truth)``: the BGR frame, the ``(H, W)`` uint16 map of
        the track id drawn at each pixel (0 = background), and the
        :class:`FrameTruth` of the people at least partly inside the frame
    """
    hgt, wid = background.shape[:2]
    image = background.copy()
    labels = np.zeros((hgt, wid), dtype=np.uint16)
    track_ids = np.asarray(track_ids, dtype=np.int64)
    n = len(track_ids)
    if n == 0:
        return image, labels, _empty_truth()

    # painter's order: feet higher in the image are farther; ties by id
    feet = np.asarray(feet, dtype=np.float64).reshape(n, 2)
    order = np.lexsort((track_ids, feet[:, 1]))
    shade_shadows(image, feet[order], height_px[order])

    geom = person_geometry(points, height_px, yaw, np.array([st.build for st in styles]))
    kept, boxes, totals, rois = [], [], [], []
    for k in order:
        drawn = draw_person(geom, k, styles[k], float(height_px[k]))
        ox, oy = drawn.origin
        h, w = drawn.mask.shape
        fx0, fy0 = max(ox, 0), max(oy, 0)
        fx1, fy1 = min(ox + w, wid), min(oy + h, hgt)
        if fx1 <= fx0 or fy1 <= fy0:
            continue
        sub = (slice(fy0 - oy, fy1 - oy), slice(fx0 - ox, fx1 - ox))
        sub_mask = drawn.mask[sub]
        n_inside = cv2.countNonZero(sub_mask)
        if n_inside == 0:
            continue
        codes = drawn.codes[sub]
        bgra = np.take(styles[k].lut, codes).view(np.uint8).reshape(codes.shape + (4,))
        cv2.copyTo(cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR), sub_mask, image[fy0:fy1, fx0:fx1])
        ids = np.full(sub_mask.shape, track_ids[k], dtype=np.uint16)
        cv2.copyTo(ids, sub_mask, labels[fy0:fy1, fx0:fx1])
        bx, by, bw, bh = cv2.boundingRect(drawn.mask)
        boxes.append((ox + bx, oy + by, ox + bx + bw, oy + by + bh))
        totals.append(cv2.countNonZero(drawn.mask))
        rois.append((fy0, fy1, fx0, fx1))
        kept.append(k)

    if not kept:
        return image, labels, _empty_truth()
    kept = np.asarray(kept)
    ids = track_ids[kept]
    # pixels still showing each person after the nearer ones were pasted
    shown = [
        cv2.countNonZero(cv2.compare(labels[y0:y1, x0:x1], int(i), cv2.CMP_EQ))
        for i, (y0, y1, x0, x1) in zip(ids, rois)
    ]
    visibility = np.asarray(shown, dtype=np.float64) / np.asarray(totals, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, wid)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, hgt)

    kps = points[kept, :NUM_KEYPOINTS]
    flags = joint_flags(kps, ids, np.arange(len(kept)), labels)
    head = points[kept, P.HEAD]
    r = (P.HEAD_RADIUS * height_px[kept])[:, None]
    head_boxes = np.concatenate([head - r, head + r], axis=1)

    by_id = np.argsort(ids, kind="stable")
    return image, labels, FrameTruth(
        ids[by_id], boxes[by_id], visibility[by_id], kps[by_id], flags[by_id],
        head_boxes[by_id], np.arange(len(kept))[by_id],
    )  # fmt: skip


def joint_flags(
    keypoints: np.ndarray, track_ids: np.ndarray, depth_rank: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """COCO visibility flags of joints given the frame's label map.

    Args:
        keypoints: ``(n, K, 2)`` joints in pixels
        track_ids: ``(n,)`` the people's ids as drawn into ``labels``
        depth_rank: ``(n,)`` drawing order (larger = nearer)
        labels: ``(H, W)`` map of the nearest person's id at each pixel

    Returns:
        ``(n, K)`` int: 0 where the joint is outside the frame or its pixel
        shows a nearer person, else 2
    """
    hgt, wid = labels.shape
    x, y = keypoints[..., 0], keypoints[..., 1]
    inside = joints_inside(keypoints, wid, hgt)
    px = np.clip(np.round(x), 0, wid - 1).astype(np.int64)
    py = np.clip(np.round(y), 0, hgt - 1).astype(np.int64)
    shown = labels[py, px].astype(np.int64)  # (n, K) id drawn at the joint
    rank_of = np.full(int(max(shown.max(initial=0), track_ids.max(initial=0))) + 1, -1)
    rank_of[track_ids] = depth_rank
    occluded = rank_of[shown] > np.asarray(depth_rank)[:, None]
    return np.where(inside & ~occluded, VISIBLE, 0).astype(np.int64)


def joints_inside(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(..., K)`` bool: joints whose nearest pixel centre lies in the frame.

    A joint at ``(x, y)`` is inside when ``0 <= x <= width - 1`` and
    ``0 <= y <= height - 1`` (pixel centres are at integer coordinates).
    """
    x, y = keypoints[..., 0], keypoints[..., 1]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def _empty_truth() -> FrameTruth:
    return FrameTruth(
        np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros(0),
        np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros((0, NUM_KEYPOINTS), dtype=np.int64),
        np.zeros((0, 4)), np.zeros(0, dtype=np.int64),
    )  # fmt: skip
