"""The interface shared by all trackers, their registry and their track store.

A tracker is fed one frame at a time::

    tracker = make_tracker("deepsort", max_age=30)
    for frame, dets in video:                  # dets: FrameDetections (pixels)
        tracks = tracker.update(dets, frame)   # -> FrameTracks, ids from 1

``FrameTracks.det_indices`` tells which input detection each output track was
matched to in this frame, so that a later stage can reuse the detection.

Detections with a zero width or height cannot be tracked (their aspect ratio
is undefined): they are ignored and never appear in ``det_indices``.

**Appearance on demand** (``appearance_on_demand=True``): appearance features
cost far more than the association, and most detections of a frame match a
track by motion alone. :meth:`Tracker.appearance_needed` tells, before
:meth:`Tracker.update`, which detections need one: all except those in a
*clear motion match* (:func:`clear_motion_pairs`): a track matched in the
previous frame and a detection that are each other's best IoU match, with IoU
>= 0.5 and every other track / detection at least ``clear_margin`` IoU below.
Pass the mask to ``update(..., embedded=mask)`` with features only in those
rows; the trackers then match the clear pairs by motion and use appearance
for the rest.
"""

from __future__ import annotations

import abc
import inspect

import numpy as np

from fiftyone_posetrack.tracking.kalman import make_kalman_filter
from fiftyone_posetrack.tracking.matching import iou_distance
from fiftyone_posetrack.types import BadInputError, FrameDetections, FrameTracks
from fiftyone_posetrack.values import ValueSpec, check_value

#: the most frames a lost track is kept (``max_age``, ``output_missed``): about an hour at 30 fps;
#: more would keep lost tracks (and their Kalman filters) for the whole of any video
MAX_AGE = 100_000

__all__ = [
    "Tracker",
    "TrackSet",
    "register_tracker",
    "make_tracker",
    "available_trackers",
    "as_detections",
    "tracker_params",
    "tracker_labels",
    "check_tracker_params",
    "clear_motion_pairs",
]

#: least IoU of a clear motion match (see :func:`clear_motion_pairs`)
CLEAR_MATCH_IOU = 0.5


def clear_motion_pairs(iou: np.ndarray, eligible: np.ndarray, margin: float, min_iou: float = CLEAR_MATCH_IOU):
    """Track-detection pairs that motion alone matches without doubt.

    A pair ``(r, c)`` is clear when track ``r`` is ``eligible``, ``c`` is the
    detection of highest IoU with ``r`` and ``r`` the track of highest IoU with
    ``c``, that IoU is at least ``min_iou``, and the second best IoU of the
    row and of the column are both at least ``margin`` below it.

    Args:
        iou: ``(T, N)`` IoU of the predicted track boxes and the detections
        eligible: ``(T,)`` bool, tracks that may be matched this way
        margin: least IoU gap to the second best
        min_iou: least IoU of a clear pair

    Returns:
        ``(rows, cols)`` int arrays of the clear pairs
    """
    iou = np.asarray(iou, dtype=np.float64)
    t, n = iou.shape
    if t == 0 or n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    best_col = iou.argmax(axis=1)
    best_row = iou.argmax(axis=0)
    rows = np.flatnonzero(eligible & (best_row[best_col] == np.arange(t)))
    cols = best_col[rows]
    best = iou[rows, cols]
    second_in_row = np.sort(iou[rows], axis=1)[:, -2] if n > 1 else np.zeros(len(rows))
    second_in_col = np.sort(iou[:, cols], axis=0)[-2] if t > 1 else np.zeros(len(rows))
    ok = (best >= min_iou) & (second_in_row <= best - margin) & (second_in_col <= best - margin)
    return rows[ok], cols[ok]


_REGISTRY: dict[str, type] = {}


def register_tracker(name: str):
    """Class decorator adding a :class:`Tracker` to :func:`make_tracker`."""

    def deco(cls):
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def available_trackers() -> list[str]:
    """The names :func:`make_tracker` accepts."""
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    from fiftyone_posetrack.tracking import bytetrack, deepsort, ocsort  # noqa: F401  (registers)


def tracker_params(name: str) -> dict:
    """``{param: default}`` of the tracker called ``name``."""
    _load_builtin()
    if name not in _REGISTRY:
        raise BadInputError(f"unknown tracker {name!r}; expected one of {available_trackers()}")
    sig = inspect.signature(_REGISTRY[name].__init__)
    return {k: p.default for k, p in sig.parameters.items() if k != "self"}


def tracker_labels() -> dict:
    """``{name: human label}`` of the registered trackers (each class's ``label``)."""
    _load_builtin()
    return {name: _REGISTRY[name].label for name in sorted(_REGISTRY)}


def check_tracker_params(name: str, params, what: str | None = None) -> dict:
    """``params`` checked against the tracker's ``PARAMS`` table (types, ranges, NaN).

    Args:
        name: the tracker
        params: ``{parameter: value}``
        what: how errors name the parameters: ``{what}.{parameter}`` (default
            ``tracker 'NAME': parameter 'PARAMETER'``)

    Returns:
        the normalised parameters

    Raises:
        BadInputError: for an unknown tracker, an unknown parameter (naming the
            valid ones) or a bad value (naming the parameter)
    """
    def named(key):
        return f"{what}.{key}" if what else f"tracker {name!r}: parameter {key!r}"

    valid = tracker_params(name)
    if not isinstance(params, dict):
        raise BadInputError(f"{what or 'tracker parameters'}: expected a mapping of names to values, got {params!r}")
    unknown = sorted(set(params) - set(valid), key=str)
    if unknown:
        raise BadInputError(
            f"{what or 'tracker ' + repr(name)}: unknown parameter(s) {unknown} of tracker {name!r}; valid: {sorted(valid)}"
        )
    table = _REGISTRY[name].PARAMS
    return {k: check_value(table[k], v, named(k)) for k, v in params.items()}


def make_tracker(name: str, **params) -> "Tracker":
    """Creates a tracker by name: ``"deepsort"``, ``"bytetrack"``, ``"ocsort"`` or ``"sort"``.

    Raises:
        BadInputError: for an unknown name or parameter (naming the valid
            ones) or a bad parameter value (naming it)
    """
    params = check_tracker_params(name, params)
    try:
        return _REGISTRY[name](**params)
    except BadInputError:
        raise
    except (TypeError, ValueError) as e:
        raise BadInputError(f"tracker {name!r}: bad parameter value ({e}); got {params}") from e


def as_detections(dets) -> FrameDetections:
    """Accepts a :class:`FrameDetections`, ``None`` or an ``(N, 4|5)`` array
    ``[x1, y1, x2, y2(, score)]``, and checks scores and embeddings."""
    if dets is None:
        return FrameDetections.empty()
    if not isinstance(dets, FrameDetections):
        arr = np.asarray(dets, dtype=np.float64)
        if arr.size == 0:
            return FrameDetections.empty()
        if arr.ndim != 2 or arr.shape[1] not in (4, 5):
            raise BadInputError(
                f"detections: expected FrameDetections or an (N, 4|5) array "
                f"[x1, y1, x2, y2(, score)], got shape {arr.shape}"
            )
        dets = FrameDetections(arr[:, :4], arr[:, 4] if arr.shape[1] == 5 else None)
    if not np.isfinite(dets.scores).all():
        bad = np.flatnonzero(~np.isfinite(dets.scores)).tolist()
        raise BadInputError(f"detection scores {bad} are NaN or inf")
    if dets.embeddings is not None and not np.isfinite(dets.embeddings).all():
        bad = np.flatnonzero(~np.isfinite(dets.embeddings).all(axis=1)).tolist()
        raise BadInputError(f"detection embeddings {bad} contain NaN or inf")
    return dets


class TrackSet:
    """Struct-of-arrays store of the live tracks of a tracker.

    Every per-track quantity is one numpy array whose first axis is the track,
    so that predict / gate / update run on all tracks at once. Appearance
    galleries (one ``(k, D)`` array per track) live in a list aligned with
    the rows.
    """

    #: name -> (trailing shape, dtype)
    FIELDS = {
        "mean": ((8,), np.float64),
        "cov": ((8, 8), np.float64),
        "ids": ((), np.int64),
        "hits": ((), np.int64),
        "age": ((), np.int64),
        "tsu": ((), np.int64),  # frames since the last matched detection
        "confirmed": ((), bool),
        "score": ((), np.float64),
        "det_index": ((), np.int64),  # input detection matched this frame, or -1
        "obs_box": ((4,), np.float64),  # last matched detection box
    }

    def __init__(self, extra_fields: dict | None = None, kf=None):
        self.kf = kf
        self.fields = dict(self.FIELDS, **(extra_fields or {}))
        for name, (shape, dtype) in self.fields.items():
            setattr(self, name, np.zeros((0, *shape), dtype=dtype))
        self.galleries: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add_field(self, name: str, shape: tuple, dtype=np.float64) -> None:
        """Adds a per-track array (zeros for the existing tracks)."""
        self.fields[name] = (tuple(shape), dtype)
        setattr(self, name, np.zeros((len(self), *shape), dtype=dtype))

    def append(self, **values) -> None:
        """Adds tracks; ``values`` gives the fields of the new rows (missing
        fields are zeros)."""
        n = len(values["ids"])
        for name, (shape, dtype) in self.fields.items():
            new = np.asarray(values.get(name, 0), dtype=dtype)
            if new.shape != (n, *shape):
                new = np.broadcast_to(new, (n, *shape))
            setattr(self, name, np.concatenate([getattr(self, name), new]))
        self.galleries.extend(values.get("galleries", [None] * n))

    def keep(self, mask: np.ndarray) -> None:
        """Keeps only the rows where ``mask`` is True."""
        if mask.all():
            return
        for name in self.fields:
            setattr(self, name, getattr(self, name)[mask])
        self.galleries = [g for g, k in zip(self.galleries, mask) if k]

    def boxes(self, rows=slice(None)) -> np.ndarray:
        """``(k, 4)`` ``[x1, y1, x2, y2]`` boxes of the Kalman means of ``rows`` (the
        filter given at creation converts its state)."""
        return self.kf.to_boxes(self.mean[rows])


class Tracker(abc.ABC):
    """Base class of the Kalman trackers: detection checks, track creation,
    Kalman steps and output.

    Subclasses implement :meth:`_associate`, which matches the predicted
    tracks to the frame's detections and updates, creates and deletes tracks.

    Args:
        min_score: detections below this confidence are ignored
        output: ``"filtered"`` outputs the Kalman-corrected box of each
            track, ``"detection"`` the matched detection box itself
        cmc: estimate camera motion from the frames (sparse optical flow) and
            warp the track states with it; needs ``frame`` in :meth:`update`
        output_missed: also output confirmed tracks missed for at most this
            many frames, with their predicted box (``score`` 0, ``det_index`` -1)
        kalman: ``"xyah"`` (DeepSORT's state ``(x, y, w/h, h)``) or ``"xywh"``
            (BoT-SORT's ``(x, y, w, h)`` state, noise scaled by w / h)
        nsa: StrongSORT's NSA Kalman: measurement noise scaled by
            ``1 - detection score``
        appearance_on_demand: :meth:`appearance_needed` asks for features
            only where motion is not clear (see the module docstring)
        clear_margin: IoU gap to the second best that makes a motion match
            clear (with ``appearance_on_demand``)
    """

    name = "tracker"
    #: a short human label (forms)
    label = "tracker"
    #: the constructor's parameters: what values each takes (defaults are the signature's)
    PARAMS = {
        "min_score": ValueSpec("float", lo=0.0, hi=1.0),
        "output": ValueSpec("str", choices=("filtered", "detection")),
        "cmc": ValueSpec("bool"),
        "output_missed": ValueSpec("int", lo=0, hi=MAX_AGE),
        "kalman": ValueSpec("str", choices=("xyah", "xywh")),
        "nsa": ValueSpec("bool"),
        "appearance_on_demand": ValueSpec("bool"),
        "clear_margin": ValueSpec("float", lo=0.0, hi=1.0),
    }

    def __init__(
        self,
        min_score: float = 0.0,
        output: str = "filtered",
        cmc: bool = False,
        output_missed: int = 0,
        kalman: str = "xyah",
        nsa: bool = False,
        appearance_on_demand: bool = False,
        clear_margin: float = 0.3,
    ):
        if output not in ("filtered", "detection"):
            raise BadInputError(f"output: expected 'filtered' or 'detection', got {output!r}")
        if int(output_missed) < 0:
            raise BadInputError(f"output_missed must be >= 0, got {output_missed}")
        self.min_score = float(min_score)
        self.output = output
        self.output_missed = int(output_missed)
        self.use_cmc = bool(cmc)
        if not 0.0 <= float(clear_margin) <= 1.0:
            raise BadInputError(f"clear_margin: expected an IoU gap in [0, 1], got {clear_margin}")
        self.appearance_on_demand = bool(appearance_on_demand)
        self.clear_margin = float(clear_margin)
        self.kf = make_kalman_filter(kalman, nsa)
        self.reset()

    def reset(self) -> None:
        """Forgets all tracks; the next id is 1 again."""
        self.tracks = TrackSet(self._extra_fields(), self.kf)
        self.next_id = 1
        self.frame_count = 0
        self.feature_dim: int | None = None
        self._cmc = None

    def _extra_fields(self) -> dict:
        return {}

    def has_tracks(self) -> bool:
        """Whether any track (tentative, confirmed or lost) is alive."""
        return len(self.tracks) > 0

    def skip_frames(self, n: int) -> None:
        """Advances the frame count by ``n`` empty frames at once.

        Only allowed when no track is alive (an empty frame then changes
        nothing but the count), so a gap of millions of frames costs nothing.

        Raises:
            BadInputError: when tracks are alive (they must age frame by frame)
        """
        if self.has_tracks():
            raise BadInputError("skip_frames: tracks are alive; feed the empty frames with update(None)")
        self.frame_count += int(n)

    # -- per-frame driver --------------------------------------------------

    def appearance_needed(self, dets) -> np.ndarray:
        """Which detections of the coming frame need an appearance feature.

        Call it before :meth:`update` with the same detections. Without
        ``appearance_on_demand`` every detection does; with it, all but the
        clear motion matches of the tracks matched in the last frame
        (:func:`clear_motion_pairs` on the Kalman-predicted boxes; the
        tracker's state is not changed).

        Returns:
            ``(N,)`` bool
        """
        dets = as_detections(dets)
        if not self.appearance_on_demand:
            return np.ones(len(dets), dtype=bool)
        need = np.zeros(len(dets), dtype=bool)
        keep = self._appearance_candidates(dets)
        need[keep] = True
        t = self.tracks
        if len(t) == 0 or len(keep) == 0:
            return need
        mean, _ = self.kf.predict(*self._pre_predict(t.mean, t.cov))  # as update() will
        iou = 1.0 - iou_distance(self.kf.to_boxes(mean), dets.boxes[keep])
        _, cols = clear_motion_pairs(iou, t.confirmed & (t.tsu == 0), self.clear_margin)
        need[keep[cols]] = False
        return need

    def _appearance_candidates(self, dets: FrameDetections) -> np.ndarray:
        """Indices of the detections whose features the association may use."""
        return self._usable(dets)

    def _clear_pairs(self, boxes: np.ndarray, embedded: np.ndarray | None):
        """Clear motion matches (after predict) of the detections without features."""
        none = np.zeros(0, dtype=np.int64)
        if embedded is None or embedded.all() or len(self.tracks) == 0:
            return none, none
        t = self.tracks
        iou = 1.0 - iou_distance(self.pred_boxes, boxes)
        rows, cols = clear_motion_pairs(iou, t.confirmed & (t.tsu == 1), self.clear_margin)
        sel = ~embedded[cols]
        return rows[sel], cols[sel]

    def _usable(self, dets: FrameDetections) -> np.ndarray:
        return np.flatnonzero(
            (dets.scores >= self.min_score)
            & (dets.boxes[:, 2] > dets.boxes[:, 0])
            & (dets.boxes[:, 3] > dets.boxes[:, 1])
        )

    def update(self, dets, frame: np.ndarray | None = None, embedded=None) -> FrameTracks:
        """Tracks one frame.

        Args:
            dets: :class:`FrameDetections` (boxes in pixels), an ``(N, 4|5)``
                array, or ``None`` for a frame without detections
            frame: optional BGR image of the frame (camera-motion compensation)
            embedded: optional ``(N,)`` bool, the detections whose row of
                ``dets.embeddings`` holds a feature (from
                :meth:`appearance_needed`); the other rows are ignored

        Returns:
            :class:`FrameTracks` of the tracks confirmed and matched in this
            frame, with ``det_indices`` into ``dets``
        """
        dets = as_detections(dets)
        self._check_features(dets)
        self._embedded = self._check_embedded(dets, embedded)
        self.frame_count += 1
        keep = self._usable(dets)
        t = self.tracks
        t.mean, t.cov = self.kf.predict(*self._pre_predict(t.mean, t.cov))
        t.age += 1
        t.tsu += 1
        t.det_index[:] = -1
        if self.use_cmc and frame is not None:
            self._apply_cmc(frame, dets.boxes[keep])
        self.pred_boxes = t.boxes()  # predicted [x1, y1, x2, y2] of every track
        self.s_inv = self.kf.innovation_inverse(t.mean, t.cov)  # for gating and update
        self._associate(dets, keep)
        return self._output(dets)

    @staticmethod
    def _check_embedded(dets: FrameDetections, embedded) -> np.ndarray | None:
        """The ``embedded`` mask as bool ``(N,)``, or None when every row has a feature."""
        if embedded is None or dets.embeddings is None:
            return None
        embedded = np.asarray(embedded)
        if embedded.shape != (len(dets),) or embedded.dtype != bool:
            raise BadInputError(
                f"embedded: expected a bool mask of the {len(dets)} detections, got "
                f"{embedded.dtype} {embedded.shape}"
            )
        return None if embedded.all() else embedded

    def _check_features(self, dets: FrameDetections) -> None:
        if dets.embeddings is None or len(dets) == 0:
            return
        dim = dets.embeddings.shape[1]
        if self.feature_dim is None:
            self.feature_dim = dim
        elif dim != self.feature_dim:
            raise BadInputError(
                f"detection embeddings have {dim} dimensions; earlier frames had "
                f"{self.feature_dim} (use one embedder per video, or reset() the tracker)"
            )

    def _pre_predict(self, mean, cov):
        return mean, cov

    def _apply_cmc(self, frame: np.ndarray, det_boxes: np.ndarray) -> None:
        from fiftyone_posetrack.tracking.cmc import CameraMotion

        if self._cmc is None:
            self._cmc = CameraMotion()
        affine = self._cmc.update(frame, det_boxes)
        if len(self.tracks):
            self.tracks.mean, self.tracks.cov = self.kf.warp(
                self.tracks.mean, self.tracks.cov, affine
            )

    @abc.abstractmethod
    def _associate(self, dets: FrameDetections, keep: np.ndarray) -> None:
        """Matches, updates, creates and deletes tracks.

        Args:
            dets: all detections of the frame
            keep: indices of the usable detections
        """

    # -- helpers for subclasses ---------------------------------------------

    def _update_tracks(self, rows: np.ndarray, det_idx: np.ndarray, dets: FrameDetections):
        """Kalman-corrects ``rows`` with detections ``det_idx`` (input indices)."""
        if len(rows) == 0:
            return
        t = self.tracks
        boxes = dets.boxes[det_idx]
        s_inv = None if self.s_inv is None else self.s_inv[rows]
        t.mean[rows], t.cov[rows] = self.kf.update(
            t.mean[rows], t.cov[rows], self.kf.from_boxes(boxes), s_inv, dets.scores[det_idx]
        )
        t.hits[rows] += 1
        t.tsu[rows] = 0
        t.score[rows] = dets.scores[det_idx]
        t.det_index[rows] = det_idx
        t.obs_box[rows] = boxes

    def _new_tracks(self, det_idx: np.ndarray, dets: FrameDetections, confirmed, **extra):
        """Starts one track per detection ``det_idx`` (input indices)."""
        n = len(det_idx)
        if n == 0:
            return
        boxes = dets.boxes[det_idx]
        mean, cov = self.kf.initiate(self.kf.from_boxes(boxes))
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        values = dict(
            mean=mean, cov=cov, ids=ids, hits=np.ones(n), age=np.ones(n), tsu=np.zeros(n),
            confirmed=np.broadcast_to(confirmed, (n,)), score=dets.scores[det_idx],
            det_index=det_idx, obs_box=boxes,
        )  # fmt: skip
        values.update(extra)
        self.tracks.append(**values)

    def _output(self, dets: FrameDetections) -> FrameTracks:
        t = self.tracks
        rows = np.flatnonzero(t.confirmed & (t.tsu <= self.output_missed))
        if len(rows) == 0:
            return FrameTracks.empty()
        boxes = t.boxes(rows)
        matched = t.tsu[rows] == 0
        det_idx = t.det_index[rows]
        if self.output == "detection":
            boxes[matched] = dets.boxes[det_idx[matched]]
        bad = ~(np.isfinite(boxes).all(axis=1) & (boxes[:, 2:] >= boxes[:, :2]).all(axis=1))
        if bad.any():  # degenerate Kalman box: fall back to the detection, or drop
            boxes[bad & matched] = dets.boxes[det_idx[bad & matched]]
            ok = ~bad | matched
            rows, boxes, matched, det_idx = rows[ok], boxes[ok], matched[ok], det_idx[ok]
        scores = np.where(matched, t.score[rows], 0.0)
        return FrameTracks(boxes, t.ids[rows], scores, det_idx)
