"""Offline post-processing of finished tracks (no FiftyOne): linking,
filtering, interpolation and Gaussian-smoothed interpolation.

Tracks are MOT result arrays, ``(N, >=7)`` rows ``frame, id, x, y, w, h,
score, ...`` with 1-based frames and ``[x, y, w, h]`` boxes in pixels (what
:func:`fiftyone_posetrack.tracking.run.track_mot_array` returns). Every
function returns a new ``(M, 10)`` array sorted by frame, then id, and never
modifies its input.

The steps, each written from its paper, and run by :func:`postprocess_tracks`
in this order:

1. :func:`link_tracklets` joins a track that ends to one that starts up to
   ``max_gap`` frames later when they are one person leaving and re-entering
   (or lost and re-found): a Hungarian assignment of track ends to track
   starts on the distance between the end's constant-velocity prediction and
   the start (and the start's backward prediction and the end), in box
   heights, gated by the time gap and the height ratio. This is the
   spatio-temporal idea of StrongSORT's AFLink (Du et al., 2023) without its
   learned model; appearance (mean track features) adds a gated cosine term
   when given.
2. :func:`filter_tracks` removes tracks with fewer than ``min_length`` boxes
   or a mean score below ``min_score``.
3. :func:`interpolate_tracks` fills the gaps of at most ``max_gap`` missing
   frames inside a track with boxes on the straight line between its ends
   (ByteTrack's and StrongSORT's linear interpolation).
4. :func:`gsi_smooth_tracks`: Gaussian-smoothed interpolation (GSI,
   StrongSORT): each coordinate of each track is regressed on time by a
   Gaussian process with an RBF kernel of length scale
   ``lambda = tau * log(tau^3 / n)`` (clipped to ``[1/tau, tau^2]``; ``n`` =
   the track's length in frames) and replaced by the posterior mean. Our
   process has a linear mean function (the least-squares line of the track),
   so a straight, constant-speed track is returned unchanged.

Interpolated boxes have score 0 and are flagged in the returned mask
(``interpolated``), so a caller can tell them from observed ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from fiftyone_posetrack.types import BadInputError

__all__ = [
    "PostprocessConfig",
    "check_tracks",
    "link_tracklets",
    "filter_tracks",
    "interpolate_tracks",
    "gsi_smooth_tracks",
    "postprocess_tracks",
    "StreamPostprocessor",
]

#: GP observation noise relative to the unit RBF prior (StrongSORT's GSI uses
#: scikit-learn's default 1e-10): spectral components of the kernel smaller
#: than this are filtered out, so ``tau`` alone sets the smoothness
GSI_NOISE = 1e-10
#: tracks longer than this many frames are smoothed in overlapping windows
#: (the GP costs O(n^3))
GSI_WINDOW = 200


def _check_number(name: str, value, lo=0.0, hi=math.inf, integer=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BadInputError(f"{name}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or not lo <= v <= hi:
        rng = f">= {lo:g}" if hi == math.inf else f"in [{lo:g}, {hi:g}]"
        raise BadInputError(f"{name}: expected a finite number {rng}, got {value!r}")
    if integer:
        if v != int(v):
            raise BadInputError(f"{name}: expected an integer, got {value!r}")
        return int(v)
    return v


@dataclass
class PostprocessConfig:
    """The options of :func:`postprocess_tracks` (each step is off by default).

    Attributes:
        interpolate: fill gaps of up to this many missing frames inside a
            track linearly (0 = off)
        gsi: Gaussian-smoothed interpolation (after linear interpolation)
        gsi_tau: GSI smoothness ``tau`` in frames (StrongSORT: 10)
        min_length: remove tracks with fewer boxes than this (0 = keep all)
        min_score: remove tracks whose mean detection score is below this
        link: join tracklets of one person (see :func:`link_tracklets`)
        link_max_gap: largest gap in frames a link may bridge
        link_max_distance: largest prediction distance of a link, in box heights
    """

    interpolate: int = 0
    gsi: bool = False
    gsi_tau: float = 10.0
    min_length: int = 0
    min_score: float = 0.0
    link: bool = False
    link_max_gap: int = 60
    link_max_distance: float = 0.5

    def __post_init__(self):
        self.validate()

    def validate(self) -> "PostprocessConfig":
        """Checks every value; raises :class:`BadInputError` naming the bad one."""
        self.interpolate = _check_number("interpolate", self.interpolate, 0, integer=True)
        self.gsi_tau = _check_number("gsi_tau", self.gsi_tau, 1e-3)
        self.min_length = _check_number("min_length", self.min_length, 0, integer=True)
        self.min_score = _check_number("min_score", self.min_score, 0, 1)
        self.link_max_gap = _check_number("link_max_gap", self.link_max_gap, 1, integer=True)
        self.link_max_distance = _check_number("link_max_distance", self.link_max_distance, 0)
        for name in ("gsi", "link"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise BadInputError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        return self

    @property
    def active(self) -> bool:
        """Whether any step is on."""
        return bool(self.interpolate or self.gsi or self.min_length or self.min_score or self.link)

    def to_dict(self) -> dict:
        return asdict(self)


def check_tracks(tracks, what: str = "tracks") -> np.ndarray:
    """Validates MOT tracks; returns a ``(N, 10)`` float copy sorted by (frame, id).

    Raises:
        BadInputError: wrong shape, NaN / inf, negative sizes, frames that are
            not integers >= 1, or an id twice in one frame
    """
    arr = np.asarray(tracks, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 10))
    if arr.ndim != 2 or arr.shape[1] < 6:
        raise BadInputError(f"{what}: expected a MOT array (N, >=6) frame,id,x,y,w,h[,score], got {arr.shape}")
    bad = ~np.isfinite(arr[:, :6]).all(axis=1)
    if bad.any():
        raise BadInputError(f"{what}: rows {np.flatnonzero(bad)[:5].tolist()} contain NaN or inf")
    if (arr[:, 4:6] < 0).any():
        raise BadInputError(f"{what}: rows {np.flatnonzero((arr[:, 4:6] < 0).any(axis=1))[:5].tolist()} have negative width/height")
    if ((arr[:, 0] < 1) | (arr[:, 0] != np.round(arr[:, 0]))).any():
        raise BadInputError(f"{what}: frames must be integers >= 1")
    if (arr[:, 1] != np.round(arr[:, 1])).any():
        raise BadInputError(f"{what}: track ids must be integers")
    out = np.full((len(arr), 10), -1.0)
    out[:, : min(arr.shape[1], 10)] = arr[:, :10]
    if arr.shape[1] < 7:
        out[:, 6] = 1.0
    out[~np.isfinite(out[:, 6]), 6] = 0.0
    out = out[np.lexsort((out[:, 1], out[:, 0]))]
    dup = (np.diff(out[:, 0]) == 0) & (np.diff(out[:, 1]) == 0)
    if dup.any():
        i = int(np.argmax(dup))
        raise BadInputError(f"{what}: id {int(out[i, 1])} appears twice in frame {int(out[i, 0])}")
    return out


def _sorted(arr: np.ndarray) -> np.ndarray:
    return arr[np.lexsort((arr[:, 1], arr[:, 0]))]


def _by_track(arr: np.ndarray):
    """Yields ``(id, rows)`` with each track's rows in frame order."""
    order = np.lexsort((arr[:, 0], arr[:, 1]))
    ids = arr[order, 1]
    bounds = np.flatnonzero(np.diff(ids)) + 1
    for rows in np.split(order, bounds):
        if len(rows):
            yield int(arr[rows[0], 1]), rows


# -- filtering -----------------------------------------------------------------


def filter_tracks(tracks, min_length: int = 0, min_score: float = 0.0, interpolated=None) -> np.ndarray:
    """Removes short or low-confidence tracks.

    Args:
        tracks: MOT tracks
        min_length: least number of observed boxes a track keeps
        min_score: least mean score (of its observed boxes) a track keeps
        interpolated: optional ``(N,)`` mask of rows that are not observations

    Returns:
        the kept rows, ``(M, 10)``
    """
    arr = check_tracks(tracks)
    min_length = _check_number("min_length", min_length, 0, integer=True)
    min_score = _check_number("min_score", min_score, 0, 1)
    keep = _filter_mask(arr, min_length, min_score, interpolated)
    return arr[keep]


def _filter_mask(arr, min_length, min_score, interpolated=None) -> np.ndarray:
    observed = np.ones(len(arr), bool) if interpolated is None else ~np.asarray(interpolated, bool)
    keep = np.ones(len(arr), dtype=bool)
    if not (min_length or min_score) or len(arr) == 0:
        return keep
    ids, inv = np.unique(arr[:, 1], return_inverse=True)
    count = np.bincount(inv, weights=observed, minlength=len(ids))
    total = np.bincount(inv, weights=np.where(observed, arr[:, 6], 0.0), minlength=len(ids))
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    good = (count >= min_length) & (mean >= min_score)
    return good[inv]


# -- interpolation ------------------------------------------------------------------


def interpolate_tracks(tracks, max_gap: int, num_frames: int | None = None, return_mask: bool = False):
    """Fills gaps of at most ``max_gap`` missing frames inside each track linearly.

    A gap of ``k`` missing frames between boxes ``a`` (frame ``f``) and ``b``
    (frame ``f + k + 1``) gets ``k`` boxes ``a + (b - a) * j / (k + 1)``,
    ``j = 1..k``, in ``[x, y, w, h]`` (so every corner moves on a straight
    line), with score 0. Tracks are never extended beyond their first or last
    box.

    Args:
        tracks: MOT tracks
        max_gap: largest number of missing frames filled (0 = nothing)
        num_frames: optional number of frames of the video; a track box after
            it is an error (a gap larger than the video cannot exist)
        return_mask: also return the ``(M,)`` mask of the inserted rows

    Returns:
        ``(M, 10)`` tracks (and the mask)
    """
    arr = check_tracks(tracks)
    max_gap = _check_number("max_gap", max_gap, 0, integer=True)
    _check_frames(arr, num_frames)
    new = []
    for _, rows in _by_track(arr):
        frames = arr[rows, 0].astype(np.int64)
        gaps = np.diff(frames) - 1
        for i in np.flatnonzero((gaps > 0) & (gaps <= max_gap)):
            a, b, k = arr[rows[i]], arr[rows[i + 1]], int(gaps[i])
            j = np.arange(1, k + 1)[:, None] / (k + 1)
            fill = np.repeat(a[None], k, axis=0)
            fill[:, 0] = frames[i] + np.arange(1, k + 1)
            fill[:, 2:6] = a[2:6] + (b[2:6] - a[2:6]) * j
            fill[:, 6] = 0.0
            new.append(fill)
    mask = np.zeros(len(arr), dtype=bool)
    if new:
        add = np.concatenate(new)
        arr = np.concatenate([arr, add])
        mask = np.concatenate([mask, np.ones(len(add), dtype=bool)])
        order = np.lexsort((arr[:, 1], arr[:, 0]))
        arr, mask = arr[order], mask[order]
    return (arr, mask) if return_mask else arr


def _check_frames(arr: np.ndarray, num_frames) -> None:
    if num_frames is None:
        return
    num_frames = _check_number("num_frames", num_frames, 0, integer=True)
    if len(arr) and arr[:, 0].max() > num_frames:
        raise BadInputError(
            f"tracks reach frame {int(arr[:, 0].max())} but the video has {num_frames} frames"
        )


# -- Gaussian-smoothed interpolation ---------------------------------------------------


def gsi_length_scale(tau: float, n: int) -> float:
    """StrongSORT's adaptive RBF length scale ``clip(tau log(tau^3 / n), 1/tau, tau^2)`` (frames)."""
    return float(np.clip(tau * math.log(tau**3 / max(n, 1)), 1.0 / tau, tau**2))


def _gp_smooth(t: np.ndarray, y: np.ndarray, length: float) -> np.ndarray:
    """GP posterior mean at ``t`` of ``y`` ``(n, d)``: linear mean + RBF(``length``) kernel."""
    n = len(t)
    if n < 3:
        return y.copy()
    tc = t - t.mean()
    design = np.column_stack([np.ones(n), tc])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    trend = design @ coef
    resid = y - trend
    k = np.exp(-0.5 * ((tc[:, None] - tc[None, :]) / length) ** 2)
    w, u = np.linalg.eigh(k)
    gain = np.clip(w, 0, None) / (np.clip(w, 0, None) + GSI_NOISE)
    return trend + u @ (gain[:, None] * (u.T @ resid))


def gsi_smooth_tracks(tracks, tau: float = 10.0, interpolated=None) -> np.ndarray:
    """Gaussian-smoothed interpolation (StrongSORT's GSI) of every track.

    Each of ``x, y, w, h`` is replaced by the posterior mean of a Gaussian
    process on the frame number: linear mean function (least squares) plus an
    RBF kernel of length :func:`gsi_length_scale` ``(tau, n)`` frames. Run
    :func:`interpolate_tracks` first to fill gaps (GSI itself only smooths the
    frames a track has). Tracks with fewer than 3 boxes are returned as they are.
    Tracks longer than :data:`GSI_WINDOW` frames are smoothed in half-overlapping
    windows (each frame takes the window in which it is most central).

    Args:
        tracks: MOT tracks
        tau: smoothness in frames (> 0; larger = smoother)
        interpolated: unused (accepted for symmetry with the other steps)

    Returns:
        ``(N, 10)`` tracks, same rows, smoothed boxes
    """
    arr = check_tracks(tracks)
    tau = _check_number("tau", tau, 1e-3)
    for _, rows in _by_track(arr):
        t = arr[rows, 0]
        n = int(t[-1] - t[0] + 1)
        length = gsi_length_scale(tau, n)
        y = arr[rows, 2:6]
        if len(rows) <= GSI_WINDOW:
            arr[rows, 2:6] = _gp_smooth(t, y, length)
            continue
        out = np.empty_like(y)
        best = np.full(len(rows), np.inf)
        step = GSI_WINDOW // 2
        for s in range(0, len(rows) - step, step):
            e = min(s + GSI_WINDOW, len(rows))
            sm = _gp_smooth(t[s:e], y[s:e], length)
            dist = np.abs(np.arange(s, e) - (s + e - 1) / 2)
            better = dist < best[s:e]
            out[s:e][better] = sm[better]
            best[s:e][better] = dist[better]
        arr[rows, 2:6] = out
    arr[:, 4:6] = np.clip(arr[:, 4:6], 0, None)
    return arr


# -- tracklet linking --------------------------------------------------------------


def _endpoint_motion(arr: np.ndarray, rows: np.ndarray, end: bool, window: int = 10):
    """Box ``(cx, cy, w, h)``, velocity per frame and frame of a track's end or start."""
    sel = rows[-window:] if end else rows[:window]
    t = arr[sel, 0]
    c = np.column_stack([arr[sel, 2] + arr[sel, 4] / 2, arr[sel, 3] + arr[sel, 5] / 2, arr[sel, 4], arr[sel, 5]])
    i = -1 if end else 0
    if len(sel) >= 2 and t[-1] > t[0]:
        vel = (c[-1, :2] - c[0, :2]) / (t[-1] - t[0])
    else:
        vel = np.zeros(2)
    return c[i], vel, t[i]


def _link_candidates(first: np.ndarray, last: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(a, b)``: tracklet ``b`` starts 1 to ``max_gap`` frames after tracklet ``a`` ends.

    Found by a sorted search over the start frames, so their number (not the
    square of the tracklet count) sets the cost: hours of video stay linear.
    """
    order = np.argsort(first, kind="stable")
    starts = first[order]
    lo = np.searchsorted(starts, last + 1, side="left")
    hi = np.searchsorted(starts, last + max_gap, side="right")
    counts = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(len(last)), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return a, order[np.repeat(lo, counts) + within]


def _assign_sparse(n: int, a: np.ndarray, b: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Minimum-cost one-to-one links (ends ``a`` to starts ``b``, cost <= 1) as ``(K, 2)`` pairs.

    The admissible pairs split into connected groups (tracklets near in time);
    each group is solved on its own dense matrix (Jonker-Volgenant), which is
    the same assignment as one matrix over all tracklets, without its n^2 memory.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from fiftyone_posetrack.tracking.matching import linear_assignment

    if len(a) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    graph = coo_matrix((np.ones(len(a)), (a, n + b)), shape=(2 * n, 2 * n))
    _, label = connected_components(graph, directed=False)
    order = np.argsort(label[a], kind="stable")
    bounds = np.flatnonzero(np.diff(label[a][order])) + 1
    out = []
    for sel in np.split(order, bounds):
        rows, ri = np.unique(a[sel], return_inverse=True)
        cols, ci = np.unique(b[sel], return_inverse=True)
        dense = np.full((len(rows), len(cols)), 2.0)
        dense[ri, ci] = cost[sel]
        m, _, _ = linear_assignment(dense, 1.0)
        out.append(np.column_stack([rows[m[:, 0]], cols[m[:, 1]]]))
    return np.concatenate(out).astype(np.int64)


def link_tracklets(
    tracks,
    max_gap: int = 60,
    max_distance: float = 0.5,
    features: dict | None = None,
    max_feature_distance: float = 0.3,
    min_length: int = 3,
) -> np.ndarray:
    """Joins tracklets of one person that leaves and re-enters (or is lost and re-found).

    Candidates are pairs (A, B) where B starts 1 to ``max_gap`` frames after A
    ends and the two never coexist. Their cost is the mean of two distances
    in box heights: A's end moved with A's velocity (over its last 10 boxes)
    to B's first frame vs. B's first box, and B's start moved back with B's
    velocity to A's last frame vs. A's last box; a pair is admissible when the
    cost is at most ``max_distance + 0.02 * gap`` (the allowance grows with
    the gap) and the box heights differ by less than a factor 1.5. With
    ``features`` (``{id: (D,) mean appearance}``), pairs whose cosine
    distance exceeds ``max_feature_distance`` are forbidden and the distance
    is added to the cost. The assignment (each end to at most one start) is
    solved with the Jonker-Volgenant algorithm; chains A -> B -> C get A's id.
    Tracks with fewer than ``min_length`` boxes take no part.

    Args:
        tracks: MOT tracks
        max_gap: largest gap in frames (>= 1)
        max_distance: largest cost in box heights (>= 0)
        features: optional mean appearance feature of each track id
        max_feature_distance: appearance gate (cosine distance)
        min_length: least boxes of a tracklet that may be linked

    Returns:
        ``(N, 10)`` tracks with the ids of linked tracklets replaced
    """
    from fiftyone_posetrack.tracking.matching import paired_cosine_distance

    arr = check_tracks(tracks)
    max_gap = _check_number("max_gap", max_gap, 1, integer=True)
    max_distance = _check_number("max_distance", max_distance, 0)
    max_feature_distance = _check_number("max_feature_distance", max_feature_distance, 0, 2)
    if len(arr) == 0:
        return arr
    ids, ends, starts = [], [], []
    first, last = [], []
    for tid, rows in _by_track(arr):
        if len(rows) < min_length:
            continue
        ids.append(tid)
        ends.append(_endpoint_motion(arr, rows, True))
        starts.append(_endpoint_motion(arr, rows, False))
        first.append(arr[rows[0], 0])
        last.append(arr[rows[-1], 0])
    n = len(ids)
    if n < 2:
        return arr
    first, last = np.array(first), np.array(last)
    e_box = np.array([e[0] for e in ends])
    e_vel = np.array([e[1] for e in ends])
    s_box = np.array([s[0] for s in starts])
    s_vel = np.array([s[1] for s in starts])
    a, b = _link_candidates(first, last, max_gap)  # (end A, start B) pairs, 1 <= gap <= max_gap
    gap = (first[b] - last[a])[:, None]
    h = np.sqrt(e_box[a, 3] * s_box[b, 3])
    d1 = np.linalg.norm(e_box[a, :2] + e_vel[a] * gap - s_box[b, :2], axis=-1) / h
    d2 = np.linalg.norm(s_box[b, :2] - s_vel[b] * gap - e_box[a, :2], axis=-1) / h
    cost = (d1 + d2) / 2
    ratio = np.maximum(e_box[a, 3], s_box[b, 3]) / np.minimum(e_box[a, 3], s_box[b, 3])
    limit = max_distance + 0.02 * gap[:, 0]
    ok = (cost <= limit) & (ratio < 1.5)
    if features is not None:
        have = np.array([tid in features for tid in ids])
        if have.any():
            dim = len(next(iter(features.values())))
            f = np.array([features[t] if t in features else np.zeros(dim) for t in ids], dtype=np.float32)
            app = paired_cosine_distance(f[a], f[b])
            both = have[a] & have[b]
            ok &= ~both | (app <= max_feature_distance)
            cost = cost + np.where(both, app, 0.0)
    # normalise by the gate so that one threshold (1) serves every gap
    a, b, norm = a[ok], b[ok], cost[ok] / np.maximum(limit[ok], 1e-9)
    m = _assign_sparse(n, a, b, norm)
    succ = {int(a): int(b) for a, b in m}
    has_pred = set(succ.values())
    new_id = {}
    for a in range(n):
        if a in has_pred:
            continue
        root, cur = ids[a], a
        while cur in succ:
            cur = succ[cur]
            new_id[ids[cur]] = root
    if new_id:
        old = np.array(sorted(new_id), dtype=np.float64)
        pos = np.clip(np.searchsorted(old, arr[:, 1]), 0, len(old) - 1)
        hit = old[pos] == arr[:, 1]
        arr[hit, 1] = np.array([new_id[int(t)] for t in old])[pos[hit]]
    return _sorted(arr)


# -- all steps ------------------------------------------------------------------------


def postprocess_tracks(
    tracks,
    config: PostprocessConfig | dict | None = None,
    num_frames: int | None = None,
    features: dict | None = None,
    return_mask: bool = False,
):
    """Runs the enabled steps: link, filter, interpolate, GSI (see the module docstring).

    Args:
        tracks: MOT tracks
        config: a :class:`PostprocessConfig` or a dict of its fields
        num_frames: optional number of frames of the video (boxes after it are an error)
        features: optional ``{id: (D,) mean appearance}`` for the linker
        return_mask: also return the mask of the interpolated rows

    Returns:
        ``(M, 10)`` tracks (and the interpolated mask)
    """
    if config is None:
        config = PostprocessConfig()
    elif isinstance(config, dict):
        known = set(PostprocessConfig.__dataclass_fields__)
        unknown = sorted(set(config) - known)
        if unknown:
            raise BadInputError(f"postprocess: unknown option(s) {unknown}; valid: {sorted(known)}")
        config = PostprocessConfig(**config)
    else:
        config.validate()
    arr = check_tracks(tracks)
    _check_frames(arr, num_frames)
    if config.link:
        arr = link_tracklets(arr, config.link_max_gap, config.link_max_distance, features)
    arr = arr[_filter_mask(arr, config.min_length, config.min_score)]
    mask = np.zeros(len(arr), dtype=bool)
    if config.interpolate:
        arr, mask = interpolate_tracks(arr, config.interpolate, return_mask=True)
    if config.gsi:
        arr = gsi_smooth_tracks(arr, config.gsi_tau)
    return (arr, mask) if return_mask else arr


# -- streaming (the pipeline) ----------------------------------------------------------


def _center(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:4]) / 2


class StreamPostprocessor:
    """Post-processing of tracks that arrive frame by frame, with a bounded look-ahead.

    The pipeline streams frames, so it cannot wait for the end of a video: each
    frame is held for ``lookahead`` frames (its image too: memory is constant,
    ``lookahead`` frames), during which later frames can still change it:

    - ``interpolate``: a track seen again after ``k <= interpolate`` missing
      frames gets ``k`` boxes on the line between its ends in the held frames
      (score 0, ``det_index`` -1): real frame labels, so they get poses too;
    - ``min_length`` / ``min_score``: a track's boxes are released only once it
      has ``min_length`` boxes and a mean score >= ``min_score`` (a track
      accepted once stays accepted; boxes released before are dropped);
    - ``gsi``: each released box is the GP posterior mean (as
      :func:`gsi_smooth_tracks`) of the track's boxes within ``lookahead``
      frames on both sides (a windowed GSI);
    - ``link``: online, greedy version of :func:`link_tracklets`: when a new
      track id appears, it takes the id of the track that ended at most
      ``link_max_gap`` frames before whose constant-velocity prediction (from
      its last two boxes) is nearest, within ``link_max_distance + 0.02 * gap``
      box heights and a height ratio below 1.5 (the offline linker, which also
      sees the new track's later boxes, is more reliable: ``posetrack
      postprocess --link`` on the written labels).

    ``lookahead = max(interpolate + 1, min_length, ceil(2 * gsi_tau) if gsi)``;
    0 (nothing enabled) releases every frame at once.

    Usage: ``push(number, payload, tracks)`` each frame in order, then
    ``pop_ready()`` (and ``flush()`` at the end) gives ``(number, payload,
    tracks)`` in frame order, ``tracks`` a :class:`~fiftyone_posetrack.types.FrameTracks`.
    """

    def __init__(self, config: PostprocessConfig | dict | None = None):
        if config is None:
            config = PostprocessConfig()
        elif isinstance(config, dict):
            config = PostprocessConfig(**config)
        self.config = config.validate()
        c = config
        self.lookahead = max(
            c.interpolate + 1 if c.interpolate else 0,
            c.min_length,
            int(math.ceil(2 * c.gsi_tau)) if c.gsi else 0,
        )
        self.reset()

    def reset(self) -> None:
        from collections import deque

        self._buffer = deque()  # [number, payload, rows: dict id -> (box, score, det_index, interpolated)]
        self._last: dict[int, tuple[int, np.ndarray, float]] = {}  # id -> (frame, box, score) last observed
        self._count: dict[int, int] = {}
        self._score_sum: dict[int, float] = {}
        self._accepted: set[int] = set()
        self._history: dict[int, list] = {}  # id -> [(frame, box)] released raw boxes (last lookahead)
        self._velocity: dict[int, np.ndarray] = {}  # id -> center velocity (px / frame)
        self._alias: dict[int, int] = {}  # tracker id -> linked (older) id

    def push(self, number: int, payload, tracks) -> None:
        c = self.config
        rows = {}
        present = {self._alias.get(int(t), int(t)) for t in tracks.track_ids}
        for box, tid, score, det in zip(tracks.boxes, tracks.track_ids, tracks.scores, tracks.det_indices):
            tid = int(tid)
            if c.link and tid not in self._alias and tid not in self._last:
                self._alias[tid] = self._link(number, np.asarray(box, dtype=np.float64), present, tid)
                present.add(self._alias[tid])  # one new track per ended one
            tid = self._alias.get(tid, tid)
            if tid in rows:  # a linked id already has a box in this frame: keep the first
                continue
            rows[tid] = (np.asarray(box, dtype=np.float64), float(score), int(det), False)
            if c.interpolate and tid in self._last:
                f0, b0, _ = self._last[tid]
                k = number - f0 - 1
                if 1 <= k <= c.interpolate:
                    for j in range(1, k + 1):
                        entry = self._entry(f0 + j)
                        if entry is not None and tid not in entry[2]:
                            entry[2][tid] = (b0 + (rows[tid][0] - b0) * j / (k + 1), 0.0, -1, True)
            if tid in self._last:
                f0, b0, _ = self._last[tid]
                self._velocity[tid] = (_center(rows[tid][0]) - _center(b0)) / max(number - f0, 1)
            self._last[tid] = (number, rows[tid][0], float(score))
            self._count[tid] = self._count.get(tid, 0) + 1
            self._score_sum[tid] = self._score_sum.get(tid, 0.0) + float(score)
            if self._count[tid] >= c.min_length and self._score_sum[tid] / self._count[tid] >= c.min_score:
                self._accepted.add(tid)
        self._buffer.append([number, payload, rows])
        horizon = max(self.lookahead, c.interpolate + 1, c.link_max_gap + 1 if c.link else 0)
        stale = [t for t, (f, _, _) in self._last.items() if number - f > horizon]
        for t in stale:  # constant memory: forget tracks gone for longer than any step looks
            for d in (self._last, self._count, self._score_sum, self._history, self._velocity):
                d.pop(t, None)
            self._accepted.discard(t)
        if stale:
            gone = set(stale)
            self._alias = {k: v for k, v in self._alias.items() if v not in gone and k not in gone}

    def _link(self, number: int, box: np.ndarray, present: set, tid: int) -> int:
        """The ended track a new track continues (its id), or the new id itself."""
        c = self.config
        best, best_cost = tid, np.inf
        h = box[3] - box[1]
        for old, (f0, b0, _) in self._last.items():
            gap = number - f0
            if old in present or not 1 <= gap <= c.link_max_gap or h <= 0:
                continue
            h0 = b0[3] - b0[1]
            if h0 <= 0 or max(h, h0) / min(h, h0) >= 1.5:
                continue
            pred = _center(b0) + self._velocity.get(old, np.zeros(2)) * gap
            cost = np.linalg.norm(pred - _center(box)) / np.sqrt(h * h0) / (c.link_max_distance + 0.02 * gap)
            if cost <= 1.0 and cost < best_cost:
                best, best_cost = old, cost
        return best

    def _entry(self, number: int):
        if not self._buffer:
            return None
        i = number - self._buffer[0][0]
        return self._buffer[i] if 0 <= i < len(self._buffer) and self._buffer[i][0] == number else None

    def pop_ready(self) -> list:
        """The frames no later frame can change any more."""
        out = []
        while self._buffer and self._buffer[-1][0] - self._buffer[0][0] >= self.lookahead:
            out.append(self._release())
        return out

    def flush(self) -> list:
        """All held frames (end of the video)."""
        out = []
        while self._buffer:
            out.append(self._release())
        return out

    def _release(self):
        from fiftyone_posetrack.types import FrameTracks

        number, payload, rows = self._buffer.popleft()
        c = self.config
        keep = [t for t in sorted(rows) if t in self._accepted or not (c.min_length or c.min_score)]
        boxes = np.array([rows[t][0] for t in keep], dtype=np.float64).reshape(-1, 4)
        if c.gsi:
            for i, t in enumerate(keep):
                hist = self._history.setdefault(t, [])
                hist.append((number, rows[t][0]))
                del hist[: max(0, len(hist) - self.lookahead - 1)]
                future = [(e[0], e[2][t][0]) for e in self._buffer if t in e[2]]
                pts = hist + future
                if len(pts) >= 3:
                    tt = np.array([p[0] for p in pts], dtype=np.float64)
                    xywh = np.array([[b[0], b[1], b[2] - b[0], b[3] - b[1]] for _, b in pts])
                    length = gsi_length_scale(c.gsi_tau, int(tt[-1] - tt[0] + 1))
                    sm = _gp_smooth(tt, xywh, length)[len(hist) - 1]
                    sm[2:] = np.maximum(sm[2:], 1e-3)
                    boxes[i] = [sm[0], sm[1], sm[0] + sm[2], sm[1] + sm[3]]
        tracks = FrameTracks(
            boxes,
            np.array(keep, dtype=np.int64),
            np.array([rows[t][1] for t in keep], dtype=np.float64),
            np.array([rows[t][2] for t in keep], dtype=np.int64),
        )
        return number, payload, tracks
