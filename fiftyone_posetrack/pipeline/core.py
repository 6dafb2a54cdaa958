"""The streaming pose-tracking pipeline over frames (no database involved).

::

    pipeline = PoseTrackingPipeline(PipelineConfig(models_dir="models"))
    with VideoReader("video.mp4") as reader:
        for result in pipeline.process(reader.batches(8)):
            result.frame_number, result.tracks, result.poses   # pixels

Per batch of frames: the detector runs once on the whole batch; then, frame by
frame, appearance embeddings, the tracker and the optical-flow box smoother;
then the pose model runs once on all tracked boxes of the batch; pose smoothing
needs the next frame, so results come out with one frame of delay (flushed at
the end). Memory is one batch of frames plus a few gray frames, whatever the
length of the video. ``timings`` accumulates the seconds spent in each stage.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from fiftyone_posetrack.flow import to_gray
from fiftyone_posetrack.pipeline.config import PipelineConfig
from fiftyone_posetrack.types import BadInputError, FrameDetections, FramePoses, FrameTracks

logger = logging.getLogger(__name__)

#: score threshold of the member detectors of a fusion (the real one applies after WBF)
FUSION_MEMBER_THRESHOLD = 0.05

__all__ = [
    "FrameResult",
    "PoseTrackingPipeline",
    "build_detector",
    "build_embedder",
    "build_pose_estimator",
    "embed_needed",
    "sanitize_detections",
    "sanitize_poses",
]


@dataclass
class FrameResult:
    """The pipeline's output for one frame.

    Attributes:
        frame_number: 1-based frame number
        detections: the detector's (fused) boxes before tracking
        tracks: the tracked (and smoothed) boxes with track ids
        poses: the poses of ``tracks``, row for row (same ``track_ids``)
    """

    frame_number: int
    detections: FrameDetections
    tracks: FrameTracks
    poses: FramePoses


def sanitize_detections(dets: FrameDetections, width: int, height: int) -> tuple[FrameDetections, int]:
    """Clips boxes to the frame and drops degenerate ones (zero area after clipping).

    Models can emit boxes partly or wholly outside the frame, and scores that
    are NaN or outside ``[0, 1]``: boxes or scores that are not finite are
    dropped, scores are clipped to ``[0, 1]``. (NaN boxes are refused by
    :class:`FrameDetections`, but a detector may fill its arrays afterwards.)

    Returns:
        the kept detections and the number dropped
    """
    if len(dets) == 0:
        return dets, 0
    limit = np.array([width, height, width, height], dtype=np.float64)
    finite = np.isfinite(dets.boxes).all(axis=1) & np.isfinite(dets.scores)
    boxes = np.clip(np.where(finite[:, None], dets.boxes, 0.0), 0, limit)
    keep = finite & (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
    emb = None if dets.embeddings is None else dets.embeddings[keep]
    return FrameDetections(boxes[keep], np.clip(dets.scores[keep], 0.0, 1.0), emb), int((~keep).sum())


def sanitize_poses(keypoints: np.ndarray, scores: np.ndarray, width: int, height: int, margin: float = 0.05):
    """Marks joints that are NaN or far outside the frame as missing (NaN, score 0)."""
    kp = np.asarray(keypoints, dtype=np.float64).copy()
    sc = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    lo = -margin * np.array([width, height])
    hi = (1 + margin) * np.array([width, height])
    bad = ~np.isfinite(kp).all(axis=-1) | (kp < lo).any(axis=-1) | (kp > hi).any(axis=-1)
    kp[bad] = np.nan
    sc[bad] = 0.0
    return np.clip(kp, 0, [width - 1, height - 1]), np.clip(sc, 0.0, 1.0)


def build_detector(config: PipelineConfig):
    """The detector of a config.

    One model, or two fused by weighted box fusion; at ``det_input_size``
    when it is set; wrapped in a :class:`~fiftyone_posetrack.detection.tiling.TiledDetector`
    when ``det_tile_size`` is set.
    """
    from fiftyone_posetrack.detection import FusedDetector, make_detector
    from fiftyone_posetrack.detection.tiling import TiledDetector
    from fiftyone_posetrack.models import resolve_model_spec

    c = config
    kwargs = dict(device=c.device, batch_size=c.batch_size)
    if c.det_input_size:  # only then: a backend registered by a user need not know the option
        kwargs["input_size"] = c.det_input_size
    if not c.detector2:
        detector = make_detector(resolve_model_spec(c.detector, c.models_dir), score_threshold=c.det_score_threshold, **kwargs)
    else:
        # Members keep low-score boxes: WBF lowers the score of a box only one model
        # finds, so the threshold applies to the fused scores.
        members = [
            make_detector(resolve_model_spec(spec, c.models_dir), score_threshold=FUSION_MEMBER_THRESHOLD, **kwargs)
            for spec in (c.detector, c.detector2)
        ]
        detector = FusedDetector(members, weights=list(c.fusion_weights), score_threshold=c.det_score_threshold, batch_size=c.batch_size)
    if c.det_tile_size:
        # a tile size the user gave is checked against every frame; the default's / a preset's only tiles frames larger than it
        strict = "det_tile_size" in c.explicit_options
        detector = TiledDetector(detector, c.det_tile_size, c.det_tile_overlap, c.det_tile_merge, strict=strict)
    return detector


def embed_needed(embedder, tracker, frame: np.ndarray, dets: FrameDetections):
    """Appearance features of the detections the tracker needs them for, in one batch.

    Returns:
        ``(embeddings, embedded)``: ``(N, D)`` features (zero rows where not
        computed) and the ``(N,)`` bool mask of the computed rows (None: all)
    """
    need = tracker.appearance_needed(dets)
    if need.all():
        return embedder.embed(frame, dets.boxes), None
    feats = embedder.embed(frame, dets.boxes[need]) if need.any() else None
    dim = feats.shape[1] if feats is not None else (tracker.feature_dim or embedder.dim)
    out = np.zeros((len(dets), dim), dtype=np.float32)
    if feats is not None:
        out[need] = feats
    return out, need


def build_pose_estimator(config: PipelineConfig):
    """The pose estimator of a config (with ``pose2``: two mmpose models' heatmaps averaged; ``pose_flip``:
    MoveNet's test-time flip)."""
    from fiftyone_posetrack.models import resolve_model_spec
    from fiftyone_posetrack.pose.base import make_pose_estimator

    kwargs = dict(device=config.device)
    if config.pose2:
        kwargs["second_model"] = resolve_model_spec(config.pose2, config.models_dir)
    estimator = make_pose_estimator(resolve_model_spec(config.pose, config.models_dir), **kwargs)
    if config.pose_flip:
        # MoveNet's test-time flip; the default is ignored by models without one, a flip asked for is not
        if hasattr(estimator, "flip_test"):
            estimator.flip_test = True
        elif "pose_flip" in config.explicit_options:
            raise BadInputError(f"pose_flip: the pose model {config.pose!r} has no test-time flip here (MoveNet has)")
    return estimator


def build_embedder(config: PipelineConfig):
    """The ReID embedder of a config, or None for motion-only tracking."""
    if not config.reid:
        return None
    from fiftyone_posetrack.reid import make_embedder

    return make_embedder(
        config.reid, models_dir=config.models_dir, device=config.device,
        flip=config.reid_flip, scales=tuple(config.reid_scales),
    )  # fmt: skip


class PoseTrackingPipeline:
    """Runs detect -> (box smoothing) -> track -> pose -> (pose smoothing) over frames.

    The stages are built from ``config`` unless given (any object with the same
    interface works, which is how tests and benchmarks swap parts).

    Args:
        config: the :class:`PipelineConfig`
        detector: a :class:`fiftyone_posetrack.detection.Detector`
        pose_estimator: a :class:`fiftyone_posetrack.pose.base.PoseEstimator`
        embedder: a ReID embedder with ``embed(frame, boxes) -> (N, D)``, or
            None for motion-only tracking (default: built from ``config.reid``)
    """

    def __init__(self, config: PipelineConfig | None = None, detector=None, pose_estimator=None, embedder="config"):
        self.config = config = config or PipelineConfig()
        self.timings: dict[str, float] = defaultdict(float)
        self.frames_done = 0
        self.dropped_boxes = 0
        self.detector = detector if detector is not None else build_detector(config)
        self.pose_estimator = pose_estimator if pose_estimator is not None else build_pose_estimator(config)
        self.embedder = build_embedder(config) if embedder == "config" else embedder
        self.reset()

    def reset(self, fps: float = 30.0) -> None:
        """Starts a new video: fresh tracker, box smoother and pose smoother.

        Args:
            fps: the video's frame rate (the One-Euro filter's time base)
        """
        from fiftyone_posetrack.pose.smoothing import FlowPoseSmoother, OneEuroPoseSmoother
        from fiftyone_posetrack.tracking.base import make_tracker
        from fiftyone_posetrack.tracking.box_smoothing import FlowBoxSmoother

        c = self.config
        # the detector already drops boxes below det_score_threshold; a tracker's own min_score
        # (DeepSORT: 0.3) must not silently drop more when the user lowered det_score_threshold
        self.tracker = make_tracker(c.tracker, **{"min_score": c.det_score_threshold, **c.tracker_params})
        self.box_smoother = (
            FlowBoxSmoother(alpha=c.box_alpha, max_gap=c.box_max_gap, method=c.flow_method)
            if c.box_smoothing
            else None
        )
        self.flow_smoother = (
            FlowPoseSmoother(alpha=c.pose_alpha, method=c.flow_method) if c.pose_smoothing == "flow" else None
        )
        self.euro_smoother = OneEuroPoseSmoother(fps=fps or 30.0) if c.pose_smoothing == "one-euro" else None
        self._pending: list[tuple[int, FrameDetections, FrameTracks]] = []
        from fiftyone_posetrack.tracking.postprocess import StreamPostprocessor

        # track post-processing: frames wait here (a bounded look-ahead) before pose estimation
        self.post = StreamPostprocessor(dict(
            interpolate=c.post_interpolate, gsi=c.post_gsi, gsi_tau=c.post_gsi_tau,
            min_length=c.post_min_length, min_score=c.post_min_score, link=c.post_link,
        ))  # fmt: skip

    @contextmanager
    def _timed(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - start

    # -- processing ------------------------------------------------------------------------

    def process(
        self, batches: Iterable[tuple[list[int], list[np.ndarray]]], fps: float = 30.0
    ) -> Iterator[FrameResult]:
        """Processes a stream of ``(frame_numbers, frames)`` batches of one video, in order.

        Args:
            batches: e.g. :meth:`fiftyone_posetrack.video.VideoReader.batches`
            fps: the video's frame rate

        Yields one :class:`FrameResult` per frame, in frame order.
        """
        self.reset(fps)
        try:
            for numbers, frames in batches:
                yield from self._process_batch(numbers, frames)
            yield from self._pose(self.post.flush())
            if self.flow_smoother is not None and self._pending:
                with self._timed("pose_smoothing"):
                    poses = self.flow_smoother.flush()
                yield self._emit(poses)
        finally:
            self.reset()

    def _process_batch(self, numbers: list[int], frames: list[np.ndarray]) -> Iterator[FrameResult]:
        height, width = frames[0].shape[:2]
        with self._timed("detection"):
            detections = self.detector.detect(frames)
        if self.box_smoother is not None or self.flow_smoother is not None:
            with self._timed("box_smoothing" if self.box_smoother is not None else "pose_smoothing"):
                grays = [to_gray(f) for f in frames]  # once per frame, shared by both smoothers
        else:
            grays = frames
        for number, frame, gray, dets in zip(numbers, frames, grays, detections):
            dets, dropped = sanitize_detections(dets, width, height)
            self.dropped_boxes += dropped
            embedded = None
            if self.embedder is not None and len(dets):
                with self._timed("reid"):
                    dets.embeddings, embedded = embed_needed(self.embedder, self.tracker, frame, dets)
            with self._timed("tracking"):
                tracks = self.tracker.update(dets, frame, embedded=embedded)
            if self.box_smoother is not None:
                with self._timed("box_smoothing"):
                    tracks = self.box_smoother.update(tracks, gray)
            with self._timed("track_postprocess"):
                self.post.push(number, (frame, gray, dets), tracks)
        with self._timed("track_postprocess"):
            ready = self.post.pop_ready()
        yield from self._pose(ready)

    def _pose(self, ready: list) -> Iterator[FrameResult]:
        """Poses of the frames released by the track post-processing, then pose smoothing."""
        if not ready:
            return
        frames = [payload[0] for _, payload, _ in ready]
        height, width = frames[0].shape[:2]
        with self._timed("pose"):
            results = self.pose_estimator.estimate_batch(frames, [t.boxes for _, _, t in ready])
        for (number, (_, gray, dets), tracks), (kps, scores) in zip(ready, results):
            kps, scores = sanitize_poses(kps, scores, width, height)
            poses = FramePoses(kps, scores, tracks.track_ids, tracks.boxes)
            self.frames_done += 1
            if self.flow_smoother is not None:
                self._pending.append((number, dets, tracks))
                with self._timed("pose_smoothing"):
                    smoothed = self.flow_smoother.push(gray, poses)
                if smoothed is not None:
                    yield self._emit(smoothed)
                continue
            if self.euro_smoother is not None:
                with self._timed("pose_smoothing"):
                    poses = self.euro_smoother.update(poses, number)
            yield FrameResult(number, dets, tracks, poses)

    def _emit(self, poses: FramePoses) -> FrameResult:
        number, dets, tracks = self._pending.pop(0)
        return FrameResult(number, dets, tracks, poses)
