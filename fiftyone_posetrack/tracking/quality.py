"""Track quality without ground truth: flags on every box, frame and track.

The input is what a tracker wrote: per box its frame number, track id, pixel
box ``[x1, y1, x2, y2]`` and score, optionally its COCO-17 skeleton (pixels,
with joint scores) and its appearance (ReID) feature. Every threshold is in
units that carry over between videos: seconds (through the video's frame
rate), box heights (the box's own size), or fractions of the video's own
box scores. Flags (each a boolean per box):

``fragment``
    a track ends and another starts nearby within ``fragment_seconds``: the
    first box of the new track and the last box of the ended one are flagged.
    "Nearby": the new track's first box centre lies within
    ``fragment_distance`` box heights of the ended track's last box centre,
    moved on by its last velocity over the gap.
``jump``
    the box moved further than the motion gate from where its own track's
    constant-velocity motion (the median of its last 3 steps) put it: the centre residual exceeds
    ``jump_gate`` box heights (times ``sqrt(gap)`` over a gap of frames), or
    the height changed by more than the factor ``1 + jump_gate``.
``drift``
    appearance drift (only with features): the cosine distance of the box's
    feature to its track's own gallery (the mean of the track's first
    ``gallery_size`` features) exceeds ``drift_distance``, or the gallery's
    distance to the features of the track's previous second jumps by more
    than ``drift_distance`` at this box. Without features the flag is not
    computed (:attr:`TrackQuality.flags_computed` says so).
``low_confidence``
    part of a stretch of at least ``low_conf_seconds`` of a track's boxes
    scored below ``low_conf_ratio`` times the video's median box score.
``skeleton``
    an implausible skeleton (only with keypoints): a limb length (the COCO-17
    limbs of :data:`RIGID_LIMBS`, relative to the box height) breaks from the track's median by more
    than the factor ``limb_ratio``, or the left/right joints are swapped
    against the track's previous skeleton (the swapped assignment is closer,
    by ``swap_margin`` box heights summed over the pairs, than the straight
    one).

Births (a track's first box) and deaths (its last box) are counted per frame.

A frame's ``score`` counts the *events* within ``window_seconds`` of it: a
box flagged ``jump``, the first box of a stretch flagged ``drift`` or
``skeleton``, the first and the last box of a low-confidence stretch, a birth after the video's first frame, a death
before its last frame (each 1) and the two ends of a fragment
(``fragment_weight`` each). A tracking error shows up within a few frames of
where its cues are (an identity switch where a person comes out of an
occlusion, a frame or two after its boxes' scores recover), so the score
looks at a window, and :func:`top_frames` picks the best frames with
disjoint windows (non-maximum suppression): sorting frames by score puts the
frames most worth a look first, one per incident.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from fiftyone_posetrack.skeleton import COCO_FLIP_PAIRS, NUM_KEYPOINTS
from fiftyone_posetrack.types import BadInputError

__all__ = ["FLAGS", "QualityConfig", "TrackQuality", "score_tracks", "score_mot_tracks", "top_frames"]

#: the flags, in the order the App shows them
FLAGS = ("fragment", "jump", "drift", "low_confidence", "skeleton")
#: COCO-17 limbs whose length does not depend on which way the person faces: upper arms,
#: forearms, thighs, shins and the torso's sides (shoulder and hip widths, and the face,
#: shrink to nothing when a person turns sideways)
RIGID_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 11), (6, 12))


@dataclass
class QualityConfig:
    """The thresholds of :func:`score_tracks` (see the module docs for units)."""

    fragment_seconds: float = 1.0
    fragment_distance: float = 1.0
    jump_gate: float = 0.35
    low_conf_ratio: float = 0.5
    low_conf_seconds: float = 0.1
    gallery_size: int = 10
    drift_distance: float = 0.3
    limb_ratio: float = 1.8
    swap_margin: float = 0.1
    min_joint_score: float = 0.3
    #: the weight of a fragment's end in a frame's score (the other events weigh 1)
    fragment_weight: float = 2.0
    #: half-width of the window of a frame's score, seconds
    window_seconds: float = 0.25

    def validate(self) -> "QualityConfig":
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise BadInputError(f"quality: {name} must be a finite number >= 0, got {value!r}")
        if self.gallery_size < 1:
            raise BadInputError(f"quality: gallery_size must be >= 1, got {self.gallery_size}")
        if self.limb_ratio <= 1:
            raise BadInputError(f"quality: limb_ratio must be > 1, got {self.limb_ratio}")
        return self


@dataclass
class TrackQuality:
    """The flags of every box and their sums per frame and per track.

    Attributes:
        flags: ``{flag: (N,) bool}`` per input box (input row order)
        flags_computed: the flags that were computed (``drift`` needs
            features, ``skeleton`` needs keypoints)
        box_score: ``(N,)`` number of flags of each box
        frames: ``(F,)`` frame numbers with boxes, ascending
        frame_counts: ``{flag | "births" | "deaths" | "tracks": (F,) int}``
            (boxes with that flag, tracks born / ended, boxes)
        frame_score: ``(F,)`` the frames' scores (see the module docs)
        window: half-width of the score's window, frames
        tracks: one dict per track id: ``index``, ``first``, ``last``,
            ``length``, one count per flag and ``score`` (flags per box)
        notes: why a flag was skipped
    """

    flags: dict[str, np.ndarray]
    flags_computed: tuple[str, ...]
    box_score: np.ndarray
    frames: np.ndarray
    frame_counts: dict[str, np.ndarray]
    frame_score: np.ndarray
    tracks: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    window: int = 0


def _as_arrays(frames, ids, boxes, scores):
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(frames)
    scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if not (len(ids) == len(boxes) == len(scores) == n):
        raise BadInputError(
            f"quality: frames, ids, boxes and scores must have one row per box ({n}, {len(ids)}, {len(boxes)}, {len(scores)})"
        )
    if not np.isfinite(boxes).all():
        raise BadInputError("quality: boxes contain NaN or inf")
    scores = np.where(np.isfinite(scores), scores, 1.0)
    return frames, ids, boxes, scores


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop)]`` of the runs of True in a 1-d mask."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return 1.0 - (a * b).sum(axis=-1)


def score_tracks(
    frames,
    ids,
    boxes,
    fps: float,
    scores=None,
    keypoints=None,
    features=None,
    config: QualityConfig | dict | None = None,
) -> TrackQuality:
    """Flags every box of a tracker's output (see the module docs).

    Args:
        frames: ``(N,)`` frame numbers (any order; integers)
        ids: ``(N,)`` track ids
        boxes: ``(N, 4)`` pixel boxes ``[x1, y1, x2, y2]``
        fps: the video's frame rate (frames per second)
        scores: optional ``(N,)`` box scores (missing = 1)
        keypoints: optional ``(N, 17, 3)`` COCO-17 joints ``[x, y, score]`` in
            pixels (NaN for a missing joint)
        features: optional ``(N, D)`` appearance features (NaN rows = none)
        config: a :class:`QualityConfig` or a dict of its fields

    Returns:
        a :class:`TrackQuality`

    Raises:
        BadInputError: for mismatched arrays, a frame rate <= 0, or bad
            thresholds
    """
    if isinstance(config, dict):
        unknown = sorted(set(config) - set(QualityConfig.__dataclass_fields__))
        if unknown:
            raise BadInputError(f"quality: unknown option(s) {unknown}; valid: {sorted(QualityConfig.__dataclass_fields__)}")
        config = QualityConfig(**config)
    cfg = (config or QualityConfig()).validate()
    if not (isinstance(fps, (int, float, np.floating)) and np.isfinite(fps) and fps > 0):
        raise BadInputError(f"quality: fps must be a frame rate > 0, got {fps!r}")
    frames, ids, boxes, scores = _as_arrays(frames, ids, boxes, scores)
    n = len(frames)
    kps = None
    if keypoints is not None:
        kps = np.asarray(keypoints, dtype=np.float64)
        if kps.shape != (n, NUM_KEYPOINTS, 3):
            raise BadInputError(f"quality: keypoints must be (N, {NUM_KEYPOINTS}, 3) for N={n} boxes, got {kps.shape}")
    feats = None
    if features is not None:
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2 or len(feats) != n:
            raise BadInputError(f"quality: features must be (N, D) for N={n} boxes, got {feats.shape}")
    flags = {f: np.zeros(n, dtype=bool) for f in FLAGS}
    computed = ["fragment", "jump", "low_confidence"]
    notes = []
    if feats is not None and np.isfinite(feats).all(axis=1).any():
        computed.append("drift")
    else:
        notes.append("drift: not computed (no appearance features; run with a ReID model to get them)")
    if kps is not None and np.isfinite(kps[..., :2]).any():
        computed.append("skeleton")
    else:
        notes.append("skeleton: not computed (no keypoints)")

    order = np.lexsort((frames, ids))
    heights = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    median_score = float(np.median(scores)) if n else 1.0
    low = scores < cfg.low_conf_ratio * median_score
    min_low = max(1, int(round(cfg.low_conf_seconds * fps)))
    events = np.zeros(n)  # the weight of each box's events in the frames' scores
    ends = []  # (last frame, row, last velocity)
    starts = []  # (first frame, row)
    for tid in np.unique(ids):
        rows = order[ids[order] == tid]
        f = frames[rows]
        starts.append((int(f[0]), int(rows[0])))
        vel = np.zeros(2)
        if len(rows) > 1:
            gap = np.diff(f).astype(np.float64)
            step = np.diff(centres[rows], axis=0) / np.maximum(gap, 1)[:, None]
            # constant-velocity residual: the median of the 3 previous steps' velocities (robust to
            # an earlier jump) carried over this gap
            pad = np.vstack([np.full((3, 2), np.nan), step])
            prev = np.stack([pad[2:-1], pad[1:-2], pad[:-3]])  # steps k-1, k-2, k-3 for step k
            with warnings.catch_warnings():  # the first step has no previous one
                warnings.simplefilter("ignore", RuntimeWarning)
                prev_v = np.nan_to_num(np.nanmedian(prev, axis=0), nan=0.0)
            pred = centres[rows[:-1]] + prev_v * gap[:, None]
            resid = np.linalg.norm(centres[rows[1:]] - pred, axis=1) / heights[rows[:-1]]
            size = np.abs(np.log(heights[rows[1:]] / heights[rows[:-1]]))
            jump = (resid > cfg.jump_gate * np.sqrt(np.maximum(gap, 1))) | (size > np.log1p(cfg.jump_gate))
            flags["jump"][rows[1:]] = jump
            vel = step[-1]
        ends.append((int(f[-1]), int(rows[-1]), vel))
        for a, b in _runs(low[rows]):
            if frames[rows[b - 1]] - frames[rows[a]] + 1 >= min_low:
                flags["low_confidence"][rows[a:b]] = True
                events[rows[a]] += 1
                events[rows[b - 1]] += 1
        if "drift" in computed:
            _drift(rows, feats, cfg, fps, flags["drift"])
        if "skeleton" in computed:
            _skeleton(rows, kps, heights, cfg, flags["skeleton"])

    # fragments: a death followed, within fragment_seconds, by a birth nearby
    max_gap = cfg.fragment_seconds * fps
    first_frame, last_frame = (int(frames.min()), int(frames.max())) if n else (0, 0)
    births = [(f, r) for f, r in starts if f > first_frame]
    for d_frame, d_row, vel in ends:
        if d_frame >= last_frame:
            continue
        for b_frame, b_row in births:
            gap = b_frame - d_frame
            if 0 < gap <= max_gap:
                pred = centres[d_row] + vel * gap
                if np.linalg.norm(centres[b_row] - pred) <= cfg.fragment_distance * heights[d_row]:
                    flags["fragment"][[d_row, b_row]] = True

    box_score = np.sum([flags[f] for f in FLAGS], axis=0).astype(np.int64) if n else np.zeros(0, np.int64)
    uframes, inverse = np.unique(frames, return_inverse=True)
    counts = {f: np.bincount(inverse, weights=flags[f], minlength=len(uframes)).astype(np.int64) for f in FLAGS}
    first_rows = np.array([r for _, r in starts], dtype=np.int64)
    last_rows = np.array([r for _, r, _ in ends], dtype=np.int64)
    counts["births"] = np.bincount(inverse[first_rows], minlength=len(uframes)).astype(np.int64) if n else np.zeros(0, np.int64)
    counts["deaths"] = np.bincount(inverse[last_rows], minlength=len(uframes)).astype(np.int64) if n else np.zeros(0, np.int64)
    counts["tracks"] = np.bincount(inverse, minlength=len(uframes)).astype(np.int64)
    events += flags["jump"] + cfg.fragment_weight * flags["fragment"]
    for tid in np.unique(ids):  # drift and skeleton: an event where a stretch of flagged boxes begins
        rows = order[ids[order] == tid]
        for f in ("drift", "skeleton"):
            onset = flags[f][rows] & ~np.concatenate([[False], flags[f][rows][:-1]])
            events[rows[onset]] += 1
    if n:
        events[first_rows[frames[first_rows] > first_frame]] += 1
        events[last_rows[frames[last_rows] < last_frame]] += 1
    window = max(1, int(round(cfg.window_seconds * fps)))
    frame_score = np.zeros(len(uframes))
    if n:
        dense = np.bincount(frames - first_frame, weights=events, minlength=last_frame - first_frame + 1)
        dense = np.convolve(dense, np.ones(2 * window + 1), mode="same")
        frame_score = dense[uframes - first_frame]
    tracks = []
    for tid in np.unique(ids):
        m = ids == tid
        row = {"index": int(tid), "first": int(frames[m].min()), "last": int(frames[m].max()), "length": int(m.sum())}
        row.update({f: int(flags[f][m].sum()) for f in FLAGS})
        row["score"] = float(box_score[m].sum() / max(m.sum(), 1))
        tracks.append(row)
    tracks.sort(key=lambda r: (-r["score"], r["index"]))
    return TrackQuality(flags, tuple(computed), box_score, uframes, counts, frame_score.astype(np.float64), tracks,
                        notes, window)  # fmt: skip


def _drift(rows, feats, cfg, fps, out) -> None:
    f = feats[rows]
    ok = np.isfinite(f).all(axis=1)
    idx = np.flatnonzero(ok)
    if len(idx) <= cfg.gallery_size:
        return
    gallery = f[idx[: int(cfg.gallery_size)]].mean(axis=0)
    dist = _cosine(f[idx], gallery[None])
    drift = dist > cfg.drift_distance
    # a step: the distance of this box vs. the mean of the track's previous second
    window = max(1, int(round(fps)))
    csum = np.cumsum(np.concatenate([[0.0], dist]))
    k = np.arange(len(dist))
    lo = np.maximum(0, k - window)
    prev = np.where(k > 0, (csum[k] - csum[lo]) / np.maximum(k - lo, 1), dist)
    drift |= (dist - prev) > cfg.drift_distance
    drift[: int(cfg.gallery_size)] = False
    out[rows[idx]] = drift


def _skeleton(rows, kps, heights, cfg, out) -> None:
    k = kps[rows]
    h = heights[rows][:, None]
    vis = np.isfinite(k[..., :2]).all(axis=-1) & (np.nan_to_num(k[..., 2], nan=0.0) >= cfg.min_joint_score)
    a, b = np.array(RIGID_LIMBS).T
    length = np.linalg.norm(k[:, a, :2] - k[:, b, :2], axis=-1) / h
    ok = vis[:, a] & vis[:, b] & (length > 0)
    length = np.where(ok, length, np.nan)
    bad = np.zeros(len(rows), dtype=bool)
    if len(rows) >= 3:
        with warnings.catch_warnings():  # a limb never seen
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(length, axis=0)
        ratio = np.abs(np.log(length / median[None]))
        bad |= np.nan_to_num(ratio, nan=0.0).max(axis=1) > np.log(cfg.limb_ratio)
    # left/right swaps against the previous skeleton of the track
    left, right = np.array(COCO_FLIP_PAIRS).T
    if len(rows) >= 2:
        prev, cur = k[:-1, :, :2], k[1:, :, :2]
        pv, cv = vis[:-1], vis[1:]
        both = pv[:, left] & pv[:, right] & cv[:, left] & cv[:, right]
        straight = np.linalg.norm(cur[:, left] - prev[:, left], axis=-1) + np.linalg.norm(cur[:, right] - prev[:, right], axis=-1)
        swapped = np.linalg.norm(cur[:, left] - prev[:, right], axis=-1) + np.linalg.norm(cur[:, right] - prev[:, left], axis=-1)
        gain = np.where(both, straight - swapped, 0.0).sum(axis=1) / h[1:, 0]
        n_pairs = both.sum(axis=1)
        bad[1:] |= (n_pairs >= 2) & (gain > cfg.swap_margin * n_pairs)
    out[rows] = bad


def score_mot_tracks(tracks, fps: float, config=None, keypoints=None, features=None) -> TrackQuality:
    """:func:`score_tracks` of a MOT array (``frame, id, x, y, w, h, conf, ...``; pixel ``[x, y, w, h]``)."""
    arr = np.asarray(tracks, dtype=np.float64)
    if arr.size == 0:
        arr = np.zeros((0, 7))
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise BadInputError(f"quality: expected a MOT array (N, >=6) frame,id,x,y,w,h,..., got {arr.shape}")
    xyxy = np.column_stack([arr[:, 2], arr[:, 3], arr[:, 2] + arr[:, 4], arr[:, 3] + arr[:, 5]])
    conf = arr[:, 6] if arr.shape[1] > 6 else None
    if conf is not None:
        conf = np.where(conf < 0, 1.0, conf)
    return score_tracks(arr[:, 0], arr[:, 1], xyxy, fps, conf, keypoints, features, config)


def top_frames(quality: TrackQuality, share: float = 0.05) -> np.ndarray:
    """The best-scored frames, one per incident: up to ``share`` of the frames (at least one).

    Frames are taken by descending score (ties: earlier first); a frame whose
    window overlaps the window of one already taken (closer than twice
    :attr:`TrackQuality.window` frames) is skipped, so no event is counted
    twice. Frames with score 0 are never taken.

    Returns:
        frame numbers, best first
    """
    if not 0 < share <= 1:
        raise BadInputError(f"quality: share must be in (0, 1], got {share}")
    k = max(1, int(np.ceil(share * len(quality.frames))))
    order = np.lexsort((quality.frames, -quality.frame_score))
    taken: list[int] = []
    for i in order[quality.frame_score[order] > 0]:
        f = int(quality.frames[i])
        if all(abs(f - t) > 2 * quality.window for t in taken):
            taken.append(f)
            if len(taken) == k:
                break
    return np.array(taken, dtype=np.int64)
