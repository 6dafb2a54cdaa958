"""Running the whole pose-tracking pipeline over a FiftyOne video collection.

:func:`run` streams each video's frames through
:class:`fiftyone_posetrack.pipeline.PoseTrackingPipeline` and writes the tracked
boxes (``config.detections_field``) and poses (``config.keypoints_field``) as
frame labels sharing ``index`` = track id, and colours them by track in the
App (:func:`fiftyone_posetrack.fo.appconfig.apply_track_colors`). Claims,
resumability, chunked bulk writes, failure handling, run records and label
safety are those of :mod:`fiftyone_posetrack.fo.jobs`: the status fields are
``<detections_field>_status``, ``<detections_field>_claimed_at`` and
``<detections_field>_run`` (the key of the run record that wrote the video).
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Callable

import fiftyone as fo

from fiftyone_posetrack.fo.appconfig import apply_track_colors
from fiftyone_posetrack.fo.jobs import DEFAULT_STALE_AFTER, RunSummary, VideoJob, run_video_jobs, status_fields
from fiftyone_posetrack.fo.labels import poses_to_keypoints, tracks_to_detections
from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline
from fiftyone_posetrack.skeleton import fiftyone_skeleton
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import VideoReader

__all__ = ["RunSummary", "run", "pipeline_job", "ray_jobs", "status_field", "check_tile_size", "PIPELINE_MODELS"]

#: the config options that name models (their files are hashed into the run record)
PIPELINE_MODELS = ("detector", "detector2", "pose", "pose2", "reid")


def status_field(config: PipelineConfig) -> str:
    """The sample field that records a video's progress for this config's outputs."""
    return status_fields(config.detections_field)[0]


def pipeline_job(pipeline: PoseTrackingPipeline) -> VideoJob:
    """The :class:`VideoJob` that runs ``pipeline`` on a video."""
    config = pipeline.config

    def compute(sample: fo.Sample, n_frames: int):
        width, height = sample.metadata.frame_width, sample.metadata.frame_height
        with VideoReader(sample.filepath, expected_frames=n_frames, expected_size=(width, height)) as reader:
            for r in pipeline.process(reader.batches(config.batch_size), fps=reader.fps):
                yield r.frame_number, {
                    config.detections_field: tracks_to_detections(r.tracks, width, height),
                    config.keypoints_field: poses_to_keypoints(
                        r.poses, width, height, min_score=config.keypoint_threshold
                    ),
                }

    def prepare(dataset):
        if dataset.default_skeleton is None:
            dataset.default_skeleton = fiftyone_skeleton()
            dataset.save()

    return VideoJob(
        name="pose tracking",
        outputs={config.detections_field: fo.Detections, config.keypoints_field: fo.Keypoints},
        compute=compute,
        overwrite=config.overwrite,
        timings=pipeline.timings,
        options=config.to_dict(),
        models={role: getattr(config, role) for role in PIPELINE_MODELS},
        models_dir=config.models_dir,
        overwrite_fields=tuple(getattr(config, "overwrite_fields", ()) or ()),
        prepare=prepare,
    )


class _Described:
    """A pipeline's configuration without its models: what a Ray driver checks and records."""

    def __init__(self, config: PipelineConfig):
        self.config, self.timings = config, defaultdict(float)


def build_pipeline_job(config: PipelineConfig) -> VideoJob:
    """The job of a pipeline built from ``config`` (a Ray worker's: its models load once)."""
    return pipeline_job(PoseTrackingPipeline(config))


def ray_jobs(config: PipelineConfig) -> tuple[VideoJob, Callable[[], VideoJob]]:
    """``(job, make_job)`` of :func:`fiftyone_posetrack.fo.engine_ray.run_on_ray` for ``config``:
    the driver's job (checked and recorded, no models built) and each worker's builder."""
    return pipeline_job(_Described(config)), partial(build_pipeline_job, config)


def check_tile_size(samples, config: PipelineConfig) -> None:
    """Refuses, before anything is written, tiles larger than a video's frames (a tile size
    given explicitly; the default's or a preset's tile size leaves smaller videos untiled)."""
    if not config.det_tile_size or samples.media_type != "video" or "det_tile_size" not in config.explicit_options:
        return
    from fiftyone_posetrack.detection.tiling import tile_boxes

    for w, h in zip(*samples.values(["metadata.frame_width", "metadata.frame_height"])):
        if w and h:  # videos without metadata are checked when they are read
            tile_boxes(int(h), int(w), config.det_tile_size, config.det_tile_overlap)


def run(
    samples,
    config: PipelineConfig | None = None,
    pipeline: PoseTrackingPipeline | None = None,
    flush_frames: int = 500,
    progress: bool = True,
    raise_on_error: bool = True,
    stale_after: float = DEFAULT_STALE_AFTER,
    progress_callback: Callable[[float, str], None] | None = None,
    engine: str = "inprocess",
    workers: int | None = None,
    ray_address: str | None = None,
) -> RunSummary:
    """Runs pose tracking over the videos of a collection and writes frame labels.

    Args:
        samples: a video dataset or view
        config: the :class:`PipelineConfig` (default: ``pipeline``'s, or all defaults)
        pipeline: a prebuilt pipeline (models load once); built from ``config`` if None
        flush_frames, progress, raise_on_error, stale_after, progress_callback:
            see :func:`fiftyone_posetrack.fo.jobs.run_video_jobs`
        engine: ``"inprocess"`` (one video at a time, here) or ``"ray"``
            (one video per Ray worker at a time, each worker building the
            models of ``config`` once; the workers stay up for this process's
            next run: :mod:`fiftyone_posetrack.fo.engine_ray`)
        workers: Ray workers (None: one per GPU of the cluster, else per CPU)
        ray_address: the Ray cluster to join (None: the one this process is
            connected to, else a new local one; ``"auto"``; ``"ray://HOST:PORT"``)

    Returns:
        a :class:`fiftyone_posetrack.fo.jobs.RunSummary` (``run_key`` names
        the run's record, see :mod:`fiftyone_posetrack.fo.runs`)

    Raises:
        BadInputError: for a clips / frames / patches view, output fields
            holding labels this run did not write (unless
            ``config.overwrite_fields`` names them), or videos done by a run of
            another configuration (unless ``config.overwrite``); nothing is
            written then
    """
    from fiftyone_posetrack.fo.engine_ray import check_engine, run_on_ray

    engine, workers, ray_address = check_engine(engine, workers, ray_address)
    if engine == "ray":
        if pipeline is not None:
            raise BadInputError("engine='ray' builds the pipeline in each worker: pass config, not pipeline")
        config = config or PipelineConfig()
        check_tile_size(samples, config)
        summary = run_on_ray(
            samples, *ray_jobs(config), workers=workers,
            ray_address=ray_address, use_gpus=config.device != "cpu", flush_frames=flush_frames,
            progress=progress, raise_on_error=raise_on_error, stale_after=stale_after,
            progress_callback=progress_callback,
        )  # fmt: skip
        apply_track_colors(samples._dataset, [config.detections_field, config.keypoints_field])
        return summary
    if pipeline is None:
        pipeline = PoseTrackingPipeline(config or PipelineConfig())
    elif config is not None and config != pipeline.config:
        pipeline.config = config
    check_tile_size(samples, pipeline.config)
    dataset = samples._dataset
    summary = run_video_jobs(
        samples,
        pipeline_job(pipeline),
        flush_frames=flush_frames,
        progress=progress,
        raise_on_error=raise_on_error,
        stale_after=stale_after,
        progress_callback=progress_callback,
    )
    # one colour per track in the App, unless the user chose a colour scheme
    apply_track_colors(dataset, [pipeline.config.detections_field, pipeline.config.keypoints_field])
    return summary
