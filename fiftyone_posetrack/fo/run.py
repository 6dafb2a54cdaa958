"""Running the pose-tracking pipeline over a FiftyOne video collection.

:func:`run` processes each video of a collection, streaming its frames through
:class:`fiftyone_posetrack.pipeline.PoseTrackingPipeline` and writing the
tracked boxes and poses as frame labels in bulk, ``flush_frames`` frames at a
time (memory stays flat in the length of the video).

Resumability: each video carries a sample field ``<detections_field>_status``
that is ``"running"`` while it is processed and ``"done"`` once all its frames
are written. A rerun skips the videos that are done (unless
``config.overwrite``) and recomputes the others from scratch, clearing whatever
a crashed run left in *its own* two fields of that video first. Other fields
are never touched, and a video that fails (e.g. a frame-count mismatch) has its
two fields cleared and its status set to ``"failed"`` before the error is
reported, so no half-written labels remain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import fiftyone as fo
from tqdm.auto import tqdm

from fiftyone_posetrack.fo.labels import poses_to_keypoints, tracks_to_detections, write_frame_labels
from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline
from fiftyone_posetrack.skeleton import fiftyone_skeleton
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import FrameCountMismatchError, VideoReader, probe_video

logger = logging.getLogger(__name__)

__all__ = ["RunSummary", "run", "status_field", "check_output_fields"]


def status_field(config: PipelineConfig) -> str:
    """The sample field that records a video's progress for this config's outputs."""
    return f"{config.detections_field}_status"


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
    sample_field = samples.get_field_schema().get(status_field(config))
    if sample_field is not None and not isinstance(sample_field, fo.StringField):
        raise BadInputError(f"sample field {status_field(config)!r} exists and is not a string field")


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

    Returns:
        a :class:`RunSummary`
    """
    config = config or (pipeline.config if pipeline is not None else PipelineConfig())
    check_output_fields(samples, config)
    dataset = samples._dataset
    if dataset.default_skeleton is None:
        dataset.default_skeleton = fiftyone_skeleton()
        dataset.save()
    status = status_field(config)
    if not dataset.has_sample_field(status):
        dataset.add_sample_field(status, fo.StringField)
    pipeline = pipeline or PoseTrackingPipeline(config)
    summary = RunSummary()
    for sample in samples.select_fields(status):
        if sample[status] == "done" and not config.overwrite:
            summary.skipped.append(sample.id)
            continue
        try:
            summary.frames += _run_video(dataset, sample, pipeline, config, flush_frames, progress)
            summary.processed.append(sample.id)
        except (BadInputError, FileNotFoundError) as e:
            logger.warning("%s failed: %s", sample.filepath, e)
            summary.failed[sample.id] = str(e)
            _clear(dataset, sample.id, config)
            _set_status(dataset, sample.id, status, "failed")
    summary.timings = dict(pipeline.timings)
    if summary.failed and raise_on_error:
        names = "; ".join(f"{sid}: {msg}" for sid, msg in summary.failed.items())
        raise BadInputError(f"{len(summary.failed)} video(s) failed: {names}")
    return summary


def _set_status(dataset, sample_id: str, field_name: str, value: str) -> None:
    dataset.select(sample_id).set_values(field_name, [value])


def _clear(dataset, sample_id: str, config: PipelineConfig) -> None:
    view = dataset.select(sample_id)
    for name in (config.detections_field, config.keypoints_field):
        if dataset.has_frame_field(name):
            view.set_values(f"frames.{name}", [[None] * len(f) for f in view.values("frames.frame_number")])


def _run_video(dataset, sample, pipeline, config, flush_frames: int, progress: bool) -> int:
    full = dataset[sample.id]
    n_frames = _check_video(full)
    width, height = full.metadata.frame_width, full.metadata.frame_height
    status = status_field(config)
    _set_status(dataset, sample.id, status, "running")
    _clear(dataset, sample.id, config)
    dets, kps = {}, {}
    count = 0
    with VideoReader(full.filepath, expected_frames=n_frames) as reader:
        bar = tqdm(total=n_frames, desc=sample.filepath.rsplit("/", 1)[-1], unit="frame", disable=not progress)
        for result in pipeline.process(reader.batches(config.batch_size), fps=reader.fps):
            dets[result.frame_number] = tracks_to_detections(result.tracks, width, height)
            kps[result.frame_number] = poses_to_keypoints(
                result.poses, width, height, min_score=config.keypoint_threshold
            )
            count += 1
            bar.update(1)
            if len(dets) >= flush_frames:
                _flush(dataset, sample.id, config, dets, kps, pipeline)
        bar.close()
    _flush(dataset, sample.id, config, dets, kps, pipeline)
    _set_status(dataset, sample.id, status, "done")
    return count


def _flush(dataset, sample_id: str, config, dets: dict, kps: dict, pipeline) -> None:
    if not dets:
        return
    pipeline.timings["write"] += write_frame_labels(
        dataset, {config.detections_field: {sample_id: dict(dets)}, config.keypoints_field: {sample_id: dict(kps)}}
    )
    dets.clear()
    kps.clear()
