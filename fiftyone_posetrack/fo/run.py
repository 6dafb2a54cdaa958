"""Running the pose-tracking pipeline over a FiftyOne video collection.

:func:`run` processes each video of a collection, streaming its frames through
:class:`fiftyone_posetrack.pipeline.PoseTrackingPipeline` and writing the
tracked boxes and poses as frame labels in bulk, ``flush_frames`` frames at a
time (memory stays flat in the length of the video).

Resumability and scale-out: each video carries two sample fields,
``<detections_field>_status`` (``"running"``, ``"done"`` or ``"failed"``) and
``<detections_field>_claimed_at`` (unix time of the claim, refreshed at every
bulk write: a heartbeat). A video is *claimed* with one atomic MongoDB
``find_one_and_update`` before any work, so several runs on the same dataset
(e.g. ``fiftyone delegated launch`` workers on different machines sharing one
database) split the videos between them, each video processed once:

- unclaimed or ``"failed"`` videos can be claimed;
- ``"running"`` videos whose heartbeat is older than ``stale_after`` seconds
  (their worker died) can be claimed again, and are recomputed from scratch;
- ``"done"`` videos are skipped, unless ``config.overwrite``, which reclaims
  those finished before this run started.

A claimed video first has *its own* two output fields cleared (whatever a
crashed run left), so a rerun gives the same labels as an uninterrupted run.
Other fields are never touched, and a video that fails (e.g. a frame-count
mismatch) has its two fields cleared and its status set to ``"failed"`` before
the error is reported, so no half-written labels remain.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from bson import ObjectId

import fiftyone as fo
from tqdm.auto import tqdm

from fiftyone_posetrack.fo.labels import poses_to_keypoints, tracks_to_detections, write_frame_labels
from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline
from fiftyone_posetrack.skeleton import fiftyone_skeleton
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import FrameCountMismatchError, VideoReader, probe_video

logger = logging.getLogger(__name__)

__all__ = ["RunSummary", "run", "status_field", "claimed_field", "check_output_fields", "claim_video"]

#: seconds without a heartbeat after which a "running" video is considered abandoned
DEFAULT_STALE_AFTER = 600.0


def status_field(config: PipelineConfig) -> str:
    """The sample field that records a video's progress for this config's outputs."""
    return f"{config.detections_field}_status"


def claimed_field(config: PipelineConfig) -> str:
    """The sample field holding the unix time of a video's claim (the heartbeat)."""
    return f"{config.detections_field}_claimed_at"


def claim_video(
    dataset, sample_id: str, config: PipelineConfig, run_started: float, stale_after: float = DEFAULT_STALE_AFTER
) -> bool:
    """Atomically claims a video for this worker; False if another worker has it or it is done."""
    status, claimed = status_field(config), claimed_field(config)
    now = time.time()
    free = [
        {status: {"$exists": False}},
        {status: {"$in": [None, "failed"]}},
        {status: "running", claimed: {"$lt": now - stale_after}},
    ]
    if config.overwrite:
        free.append({status: "done", claimed: {"$lt": run_started}})
    doc = dataset._sample_collection.find_one_and_update(
        {"_id": ObjectId(sample_id), "$or": free},
        {"$set": {status: "running", claimed: now}},
        projection={"_id": 1},
    )
    return doc is not None


def _heartbeat(dataset, sample_id: str, config: PipelineConfig, value: str = "running") -> None:
    dataset._sample_collection.update_one(
        {"_id": ObjectId(sample_id)},
        {"$set": {status_field(config): value, claimed_field(config): time.time()}},
    )


@dataclass
class RunSummary:
    """What :func:`run` did.

    Attributes:
        processed: ids of the videos computed in this run
        skipped: ids of the videos already done
        failed: ``{sample id: error message}``
        frames: frames processed
        timings: seconds per pipeline stage (plus ``"write"``)
    """

    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def check_output_fields(samples, config: PipelineConfig) -> None:
    """Refuses output fields that exist with another type, before any work is done."""
    if samples.media_type != "video":
        raise BadInputError(f"pose tracking needs a video collection, got media type {samples.media_type!r}")
    schema = samples.get_frame_field_schema() or {}
    for name, cls in ((config.detections_field, fo.Detections), (config.keypoints_field, fo.Keypoints)):
        f = schema.get(name)
        if f is not None and getattr(f, "document_type", None) is not cls:
            have = getattr(f, "document_type", type(f)).__name__
            raise BadInputError(
                f"frame field {name!r} exists with type {have}, not {cls.__name__}; "
                "choose another output field"
            )
    schema = samples.get_field_schema()
    for name, cls in ((status_field(config), fo.StringField), (claimed_field(config), fo.FloatField)):
        if schema.get(name) is not None and not isinstance(schema[name], cls):
            raise BadInputError(f"sample field {name!r} exists and is not a {cls.__name__}")


def _check_video(sample) -> int:
    md = sample.metadata
    if md is None or not md.total_frame_count:
        raise BadInputError(f"{sample.filepath}: no video metadata; run dataset.compute_metadata() first")
    header = probe_video(sample.filepath).frame_count
    if header != md.total_frame_count:
        raise FrameCountMismatchError(
            f"{sample.filepath}: the file has {header} frames but the metadata says "
            f"{md.total_frame_count}; recompute the metadata (dataset.compute_metadata(overwrite=True))"
        )
    return int(md.total_frame_count)


def run(
    samples,
    config: PipelineConfig | None = None,
    pipeline: PoseTrackingPipeline | None = None,
    flush_frames: int = 500,
    progress: bool = True,
    raise_on_error: bool = True,
    stale_after: float = DEFAULT_STALE_AFTER,
    progress_callback: Callable[[float, str], None] | None = None,
) -> RunSummary:
    """Runs pose tracking over the videos of a collection and writes frame labels.

    Args:
        samples: a video dataset or view
        config: the :class:`PipelineConfig` (default: all defaults)
        pipeline: a prebuilt pipeline for ``config`` (models load once)
        flush_frames: frames of labels held before a bulk write
        progress: show a progress bar per video
        raise_on_error: after all videos, raise :class:`BadInputError` naming
            the videos that failed (otherwise only report them in the summary)
        stale_after: seconds without a heartbeat after which another worker's
            ``"running"`` video is taken over
        progress_callback: called as ``callback(fraction_done, label)`` after
            every bulk write and video (e.g. ``ctx.set_progress`` of an operator)

    Returns:
        a :class:`RunSummary`
    """
    config = config or (pipeline.config if pipeline is not None else PipelineConfig())
    check_output_fields(samples, config)
    dataset = samples._dataset
    if dataset.default_skeleton is None:
        dataset.default_skeleton = fiftyone_skeleton()
        dataset.save()
    for name, cls in ((status_field(config), fo.StringField), (claimed_field(config), fo.FloatField)):
        if not dataset.has_sample_field(name):
            dataset.add_sample_field(name, cls)
    pipeline = pipeline or PoseTrackingPipeline(config)
    summary = RunSummary()
    run_started = time.time()
    ids = samples.values("id")
    total_frames = max(1, sum(n or 0 for n in samples.values("metadata.total_frame_count")))
    report = _Progress(progress_callback, total_frames)
    for sample_id in ids:
        if not claim_video(dataset, sample_id, config, run_started, stale_after):
            summary.skipped.append(sample_id)
            continue
        try:
            summary.frames += _run_video(dataset, sample_id, pipeline, config, flush_frames, progress, report)
            summary.processed.append(sample_id)
        except (BadInputError, FileNotFoundError) as e:
            logger.warning("video %s failed: %s", sample_id, e)
            summary.failed[sample_id] = str(e)
            _clear(dataset, sample_id, config)
            _heartbeat(dataset, sample_id, config, "failed")
        except BaseException:
            # an unexpected error or an interrupt: free the claim for a rerun
            _heartbeat(dataset, sample_id, config, "failed")
            raise
    dataset.reload()
    summary.timings = dict(pipeline.timings)
    if summary.failed and raise_on_error:
        names = "; ".join(f"{sid}: {msg}" for sid, msg in summary.failed.items())
        raise BadInputError(f"{len(summary.failed)} video(s) failed: {names}")
    return summary


class _Progress:
    """Turns frame counts into ``callback(fraction, label)`` calls."""

    def __init__(self, callback, total_frames: int):
        self.callback, self.total, self.done = callback, total_frames, 0

    def __call__(self, frames: int, label: str) -> None:
        self.done += frames
        if self.callback is not None:
            self.callback(min(1.0, self.done / self.total), label)


def _clear(dataset, sample_id: str, config: PipelineConfig) -> None:
    view = dataset.select(sample_id)
    for name in (config.detections_field, config.keypoints_field):
        if dataset.has_frame_field(name):
            view.set_values(f"frames.{name}", [[None] * len(f) for f in view.values("frames.frame_number")])


def _run_video(dataset, sample_id, pipeline, config, flush_frames: int, progress: bool, report) -> int:
    sample = dataset[sample_id]
    n_frames = _check_video(sample)
    width, height = sample.metadata.frame_width, sample.metadata.frame_height
    name = os.path.basename(sample.filepath)
    _clear(dataset, sample_id, config)
    dets, kps = {}, {}
    count = 0
    with VideoReader(sample.filepath, expected_frames=n_frames) as reader:
        bar = tqdm(total=n_frames, desc=name, unit="frame", disable=not progress)
        for result in pipeline.process(reader.batches(config.batch_size), fps=reader.fps):
            dets[result.frame_number] = tracks_to_detections(result.tracks, width, height)
            kps[result.frame_number] = poses_to_keypoints(
                result.poses, width, height, min_score=config.keypoint_threshold
            )
            count += 1
            bar.update(1)
            if len(dets) >= flush_frames:
                report(len(dets), f"{name}: frame {result.frame_number}/{n_frames}")
                _flush(dataset, sample_id, config, dets, kps, pipeline)
        bar.close()
    report(len(dets), f"{name}: done")
    _flush(dataset, sample_id, config, dets, kps, pipeline)
    _heartbeat(dataset, sample_id, config, "done")
    return count


def _flush(dataset, sample_id: str, config, dets: dict, kps: dict, pipeline) -> None:
    if not dets:
        return
    pipeline.timings["write"] += write_frame_labels(
        dataset, {config.detections_field: {sample_id: dict(dets)}, config.keypoints_field: {sample_id: dict(kps)}}
    )
    dets.clear()
    kps.clear()
    _heartbeat(dataset, sample_id, config)
