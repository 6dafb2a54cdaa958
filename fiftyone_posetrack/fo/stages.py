"""The pipeline's stages one at a time, on the fields of a FiftyOne video collection.

Each function runs one stage over the videos of a collection and writes a new
frame field, reading earlier stages' fields as input:

============================  ======================  =================================
function                      reads                   writes
============================  ======================  =================================
:func:`detect_persons`        the video               ``fo.Detections`` (no ``index``)
:func:`track_detections`      a ``Detections`` field  ``fo.Detections`` with ``index``
:func:`estimate_poses`        tracked ``Detections``  ``fo.Keypoints`` with the same ``index``
:func:`smooth_poses`          ``Keypoints`` + video   ``fo.Keypoints``
============================  ======================  =================================

They are :class:`fiftyone_posetrack.fo.jobs.VideoJob` s, so they share the
runner's guarantees: constant memory, atomic per-video claims, resumable,
no half-written labels, a run record per call (:mod:`fiftyone_posetrack.fo.runs`:
the stage's parameters and model files), reruns with other parameters refused
unless ``overwrite``, fields written by others refused unless
``overwrite_fields`` names them, and input fields never modified (writing a
stage's output over its own input needs ``overwrite_input=True``).
"""

from __future__ import annotations

import fiftyone as fo

from fiftyone_posetrack.fo.appconfig import apply_track_colors, tracked_fields
from fiftyone_posetrack.fo.jobs import RunSummary, VideoJob, check_collection, run_video_jobs
from fiftyone_posetrack.fo.runs import describe_object
from fiftyone_posetrack.fo.labels import (
    FrameLabelCursor,
    boxes_to_detections,
    check_frame_field,
    detections_to_arrays,
    keypoints_to_arrays,
    poses_to_keypoints,
    tracks_to_detections,
)
from fiftyone_posetrack.types import BadInputError, FrameDetections, FramePoses
from fiftyone_posetrack.video import VideoReader

__all__ = ["detect_persons", "track_detections", "estimate_poses", "smooth_poses"]


def _frame_labels(dataset, sample_id: str, field: str) -> FrameLabelCursor:
    return FrameLabelCursor(dataset, sample_id, field)


def _execute(samples, job: VideoJob, engine: str = "inprocess", workers=None, ray_address=None, **kwargs) -> RunSummary:
    """Runs ``job`` in this process, or with ``engine="ray"`` on Ray workers
    (:func:`fiftyone_posetrack.fo.engine_ray.run_on_ray`: each worker gets a
    copy of the job, its models included, pickled once per worker)."""
    from fiftyone_posetrack.fo.engine_ray import check_engine, picklable_job, run_on_ray

    engine, workers, ray_address = check_engine(engine, workers, ray_address)
    if engine == "inprocess":
        return run_video_jobs(samples, job, **kwargs)
    has_models = any(m is not None for m in job.models.values())  # model-free stages take CPU workers
    return run_on_ray(
        samples, job, picklable_job(job), workers=workers, ray_address=ray_address, use_gpus=has_models, **kwargs
    )


def _run(samples, job: VideoJob, in_field: str | None, overwrite_input: bool, **kwargs) -> RunSummary:
    """Runs ``job``, refusing to replace its input unless ``overwrite_input``.

    A job may read the field it replaces: a video's new labels are written
    aside and swapped in only once the whole video is computed
    (:mod:`fiftyone_posetrack.fo.staging`), so the input is read unchanged.
    """
    out_field = next(iter(job.outputs))
    if in_field == out_field:
        if not overwrite_input:
            raise BadInputError(
                f"the output field {out_field!r} is the input field; pass overwrite_input=True to replace it"
            )
        job.replace_existing = True
    return _execute(samples, job, **kwargs)


def detect_persons(
    samples,
    detector,
    field: str = "pred_raw_detections",
    batch_size: int = 8,
    overwrite: bool = False,
    overwrite_fields: tuple[str, ...] = (),
    **kwargs,
) -> RunSummary:
    """Detects persons in every frame and writes untracked ``fo.Detections``.

    Args:
        samples: a video collection
        detector: a :class:`fiftyone_posetrack.detection.Detector`
        field: the output frame field
        batch_size: frames per detector call
        overwrite: recompute videos already done (also by other parameters)
        overwrite_fields: output fields that may be replaced although
            another job wrote them
        **kwargs: :func:`~fiftyone_posetrack.fo.jobs.run_video_jobs` options, and
            ``engine`` / ``workers`` / ``ray_address`` (as :func:`fiftyone_posetrack.fo.run.run`)
    """

    def compute(sample, n_frames):
        w, h = sample.metadata.frame_width, sample.metadata.frame_height
        with VideoReader(sample.filepath, expected_frames=n_frames, expected_size=(w, h)) as reader:
            for numbers, frames in reader.batches(batch_size):
                for n, dets in zip(numbers, detector.detect(frames)):
                    yield n, {field: boxes_to_detections(dets.boxes, dets.scores, w, h)}

    job = VideoJob(
        "person detection", {field: fo.Detections}, compute, overwrite,
        options={"field": field, "batch_size": batch_size, "detector": describe_object(detector)},
        models={"detector": detector}, overwrite_fields=tuple(overwrite_fields),
    )  # fmt: skip
    return _execute(samples, job, **kwargs)


def track_detections(
    samples,
    in_field: str,
    out_field: str = "pred_detections",
    tracker: str | None = None,
    tracker_params: dict | None = None,
    embedder=None,
    box_smoother=None,
    overwrite: bool = False,
    overwrite_input: bool = False,
    overwrite_fields: tuple[str, ...] = (),
    **kwargs,
) -> RunSummary:
    """Tracks an existing detections field: writes copies of the boxes with ``index`` = track id.

    Args:
        samples: a video collection
        in_field: a frame field of ``fo.Detections`` (e.g. from another detector)
        out_field: the output field (a new one unless ``overwrite_input``)
        tracker: a tracker name (``"bytetrack"``, ``"deepsort"``, ``"ocsort"``, ``"sort"``);
            None: the pipeline's default tracker (``PipelineConfig().tracker``)
        tracker_params: the tracker's keyword arguments; None: the pipeline's
            default parameters with the default tracker, else the tracker's own
        embedder: a ReID embedder (``embed(frame, boxes)``) for appearance
            matching; None tracks by motion only (and reads no frames unless
            ``box_smoother`` is given)
        box_smoother: a :class:`fiftyone_posetrack.tracking.box_smoothing.FlowBoxSmoother`
        overwrite: recompute videos already done (also by other parameters)
        overwrite_input: allow ``out_field == in_field``
        overwrite_fields: output fields that may be replaced although
            another job wrote them
        **kwargs: :func:`~fiftyone_posetrack.fo.jobs.run_video_jobs` options, and
            ``engine`` / ``workers`` / ``ray_address`` (as :func:`fiftyone_posetrack.fo.run.run`)
    """
    from fiftyone_posetrack.pipeline.core import embed_needed
    from fiftyone_posetrack.tracking.base import make_tracker

    check_collection(samples, "tracking")
    check_frame_field(samples, in_field, fo.Detections)
    if tracker is None:
        from fiftyone_posetrack.pipeline.options import OPTIONS

        tracker = OPTIONS["tracker"].default
        if tracker_params is None:
            tracker_params = OPTIONS["tracker_params"].default_value()
    make_tracker(tracker, **(tracker_params or {}))  # refuse bad names / params up front
    needs_frames = embedder is not None or box_smoother is not None
    dataset = samples._dataset

    def compute(sample, n_frames):
        w, h = sample.metadata.frame_width, sample.metadata.frame_height
        trk = make_tracker(tracker, **(tracker_params or {}))
        if box_smoother is not None:
            box_smoother.reset()
        inputs = _frame_labels(sample._dataset, sample.id, job.input_field)
        frames = None
        if needs_frames:
            frames = VideoReader(sample.filepath, expected_frames=n_frames, expected_size=(w, h))
        stream = iter(frames) if frames is not None else ((n, None) for n in range(1, n_frames + 1))
        try:
            for n, frame in stream:
                boxes, scores, _ = detections_to_arrays(inputs.get(n), w, h)
                dets = FrameDetections(boxes, scores)
                embedded = None
                if embedder is not None and len(dets):  # only the boxes the tracker asks for
                    dets.embeddings, embedded = embed_needed(embedder, trk, frame, dets)
                tracks = trk.update(dets, frame, embedded=embedded)
                if box_smoother is not None:
                    tracks = box_smoother.update(tracks, frame)
                yield n, {out_field: tracks_to_detections(tracks, w, h)}
        finally:
            if frames is not None:
                frames.close()

    options = {
        "in_field": in_field, "out_field": out_field, "tracker": tracker, "tracker_params": tracker_params or {},
        "embedder": describe_object(embedder), "box_smoother": describe_object(box_smoother),
    }  # fmt: skip
    job = VideoJob(
        "tracking", {out_field: fo.Detections}, compute, overwrite, input_field=in_field, options=options,
        models={"reid": embedder}, overwrite_fields=tuple(overwrite_fields),
    )  # fmt: skip
    summary = _run(samples, job, in_field, overwrite_input, **kwargs)
    apply_track_colors(dataset, [out_field])  # one colour per track in the App (unless the user chose)
    return summary


def estimate_poses(
    samples,
    pose_estimator,
    tracks_field: str = "pred_detections",
    out_field: str = "pred_keypoints",
    batch_size: int = 8,
    keypoint_threshold: float = 0.0,
    overwrite: bool = False,
    overwrite_fields: tuple[str, ...] = (),
    **kwargs,
) -> RunSummary:
    """Estimates a pose in every box of a (tracked) detections field.

    Each ``fo.Keypoint`` gets the ``index`` of its box, so tracked skeletons
    link to their tracks.

    Args:
        samples: a video collection
        pose_estimator: a :class:`fiftyone_posetrack.pose.base.PoseEstimator`
        tracks_field: a frame field of ``fo.Detections``
        out_field: the output ``fo.Keypoints`` field
        batch_size: frames per pose call (all their boxes in one pass)
        keypoint_threshold: joints scoring below it are stored as missing
        overwrite: recompute videos already done (also by other parameters)
        overwrite_fields: output fields that may be replaced although
            another job wrote them
        **kwargs: :func:`~fiftyone_posetrack.fo.jobs.run_video_jobs` options, and
            ``engine`` / ``workers`` / ``ray_address`` (as :func:`fiftyone_posetrack.fo.run.run`)
    """
    from fiftyone_posetrack.pipeline.core import sanitize_poses

    check_collection(samples, "pose estimation")
    check_frame_field(samples, tracks_field, fo.Detections)
    dataset = samples._dataset

    def compute(sample, n_frames):
        w, h = sample.metadata.frame_width, sample.metadata.frame_height
        inputs = _frame_labels(sample._dataset, sample.id, tracks_field)
        with VideoReader(sample.filepath, expected_frames=n_frames, expected_size=(w, h)) as reader:
            for numbers, frames in reader.batches(batch_size):
                boxed = [detections_to_arrays(inputs.get(n), w, h) for n in numbers]
                results = pose_estimator.estimate_batch(frames, [b for b, _, _ in boxed])
                for n, (boxes, _, index), (kps, scores) in zip(numbers, boxed, results):
                    kps, scores = sanitize_poses(kps, scores, w, h)
                    poses = FramePoses(kps, scores, index, boxes)
                    yield n, {out_field: poses_to_keypoints(poses, w, h, min_score=keypoint_threshold)}

    options = {
        "tracks_field": tracks_field, "out_field": out_field, "batch_size": batch_size,
        "keypoint_threshold": keypoint_threshold, "pose_estimator": describe_object(pose_estimator),
    }  # fmt: skip
    job = VideoJob(
        "pose estimation", {out_field: fo.Keypoints}, compute, overwrite, options=options,
        models={"pose": pose_estimator}, overwrite_fields=tuple(overwrite_fields),
    )  # fmt: skip
    summary = _execute(samples, job, **kwargs)
    apply_track_colors(dataset, [tracks_field, out_field])  # skeletons in their track's colour
    return summary


def smooth_poses(
    samples,
    in_field: str = "pred_keypoints",
    out_field: str = "pred_keypoints_smoothed",
    method: str = "flow",
    alpha: float = 0.25,
    flow_method: str = "lk",
    overwrite: bool = False,
    overwrite_input: bool = False,
    overwrite_fields: tuple[str, ...] = (),
    **kwargs,
) -> RunSummary:
    """Temporally smooths a tracked keypoints field (joints linked by ``index``).

    Args:
        samples: a video collection
        in_field: a frame field of ``fo.Keypoints`` with ``index`` = track id
        out_field: the output field
        method: ``"flow"`` (``J = a*J(k-1->k) + a*J(k+1->k) + (1-2a)*J(k)``,
            joints moved by optical flow) or ``"one-euro"``
        alpha: ``a`` of the flow formula, in ``[0, 0.5]``
        flow_method: ``"lk"`` or ``"dis"``
        overwrite: recompute videos already done (also by other parameters)
        overwrite_input: allow ``out_field == in_field``
        overwrite_fields: output fields that may be replaced although
            another job wrote them
        **kwargs: :func:`~fiftyone_posetrack.fo.jobs.run_video_jobs` options, and
            ``engine`` / ``workers`` / ``ray_address`` (as :func:`fiftyone_posetrack.fo.run.run`)
    """
    from fiftyone_posetrack.pose.smoothing import SMOOTHERS, FlowPoseSmoother, OneEuroPoseSmoother

    check_collection(samples, "pose smoothing")
    check_frame_field(samples, in_field, fo.Keypoints)
    if method not in SMOOTHERS:
        raise BadInputError(f"method: expected one of {list(SMOOTHERS)}, got {method!r}")
    if method == "flow":
        FlowPoseSmoother(alpha=alpha, method=flow_method)  # validates the parameters
    dataset = samples._dataset

    def compute(sample, n_frames):
        w, h = sample.metadata.frame_width, sample.metadata.frame_height
        inputs = _frame_labels(sample._dataset, sample.id, job.input_field)

        def poses(n):
            kps, scores, index = keypoints_to_arrays(inputs.get(n), w, h)
            return FramePoses(kps, scores, index)

        def label(p):
            return {out_field: poses_to_keypoints(p, w, h)}

        if method == "one-euro":
            smoother = OneEuroPoseSmoother(fps=sample.metadata.frame_rate or 30.0)
            for n in range(1, n_frames + 1):
                yield n, label(smoother.update(poses(n), n))
            return
        smoother = FlowPoseSmoother(alpha=alpha, method=flow_method)
        with VideoReader(sample.filepath, expected_frames=n_frames, expected_size=(w, h)) as reader:
            for n, frame in reader:
                out = smoother.push(frame, poses(n))
                if out is not None:
                    yield n - 1, label(out)
            yield n_frames, label(smoother.flush())

    options = {"in_field": in_field, "out_field": out_field, "method": method, "alpha": alpha, "flow_method": flow_method}
    job = VideoJob(
        "pose smoothing", {out_field: fo.Keypoints}, compute, overwrite, input_field=in_field, options=options,
        overwrite_fields=tuple(overwrite_fields),
    )  # fmt: skip
    summary = _run(samples, job, in_field, overwrite_input, **kwargs)
    if in_field in tracked_fields(dataset):
        apply_track_colors(dataset, [out_field])
    return summary
