"""Per-video jobs that write frame labels: claims, heartbeats, chunked bulk writes.

Every stage that writes frame labels to a video collection (the whole pipeline,
detection alone, tracking an existing field, ...) is a :class:`VideoJob`: a
function that yields ``(frame_number, {field: label})`` for one video.
:func:`run_video_jobs` runs it over a collection with these guarantees:

- **Constant memory**: labels are written in bulk every ``flush_frames`` frames.
- **Resumable, scale-out safe**: each video carries two sample fields,
  ``<first output field>_status`` (``"running"``, ``"done"`` or ``"failed"``)
  and ``<first output field>_claimed_at`` (unix time of the claim, refreshed at
  every bulk write: a heartbeat). A video is *claimed* with one atomic MongoDB
  ``find_one_and_update`` before any work, so several runs on one dataset
  (``fiftyone delegated launch`` workers on different machines sharing one
  database) split the videos between them, each video processed once:
  unclaimed or ``"failed"`` videos can be claimed; ``"running"`` videos whose
  heartbeat is older than ``stale_after`` seconds (their worker died) are
  taken over; ``"done"`` videos are skipped unless ``overwrite``, which
  reclaims those finished before this run started.
- **No half-written labels**: a claimed video first has the job's own output
  fields cleared (whatever a crashed run left), so a rerun gives the same
  labels as an uninterrupted run; a video that fails has them cleared again
  and its status set to ``"failed"``. Other fields are never touched.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterator

import fiftyone as fo
from bson import ObjectId
from tqdm.auto import tqdm

from fiftyone_posetrack.fo.labels import write_frame_labels
from fiftyone_posetrack.types import BadInputError
from fiftyone_posetrack.video import FrameCountMismatchError, probe_video

logger = logging.getLogger(__name__)

__all__ = ["VideoJob", "RunSummary", "run_video_jobs", "claim_video", "status_fields", "check_video"]

#: seconds without a heartbeat after which a "running" video is considered abandoned
DEFAULT_STALE_AFTER = 600.0

FrameLabels = dict[str, "fo.Label | None"]


@dataclass
class VideoJob:
    """A computation that labels the frames of one video at a time.

    Attributes:
        name: what the job does, for messages (e.g. ``"pose tracking"``)
        outputs: ``{frame field: label class}``; the first field names the
            status fields
        compute: ``compute(sample, num_frames)`` yields ``(frame_number,
            {field: label})`` for the video, in any order, each frame once
        overwrite: recompute videos already done
        input_field: the frame field ``compute`` reads, if any (stages that
            replace their input read a temporary copy named here)
        timings: seconds per stage, filled by ``compute`` and the writes
    """

    name: str
    outputs: dict[str, type]
    compute: Callable[[fo.Sample, int], Iterator[tuple[int, FrameLabels]]]
    overwrite: bool = False
    input_field: str | None = None
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class RunSummary:
    """What :func:`run_video_jobs` did.

    Attributes:
        processed: ids of the videos computed in this run
        skipped: ids of the videos done already or claimed by another worker
        failed: ``{sample id: error message}``
        frames: frames processed
        timings: seconds per stage (plus ``"write"``)
    """

    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def status_fields(job_or_field: "VideoJob | str") -> tuple[str, str]:
    """The ``(status, claimed_at)`` sample fields of a job (or of its first output field)."""
    first = job_or_field if isinstance(job_or_field, str) else next(iter(job_or_field.outputs))
    return f"{first}_status", f"{first}_claimed_at"


def check_fields(samples, job: VideoJob) -> None:
    """Refuses a non-video collection and output fields that exist with another type."""
    if samples.media_type != "video":
        raise BadInputError(f"{job.name} needs a video collection, got media type {samples.media_type!r}")
    frame_schema = samples.get_frame_field_schema() or {}
    for name, cls in job.outputs.items():
        f = frame_schema.get(name)
        if f is not None and getattr(f, "document_type", None) is not cls:
            have = getattr(f, "document_type", None) or type(f)
            raise BadInputError(
                f"frame field {name!r} exists with type {have.__name__}, not {cls.__name__}; "
                "choose another output field"
            )
    schema = samples.get_field_schema()
    status, claimed = status_fields(job)
    for name, cls in ((status, fo.StringField), (claimed, fo.FloatField)):
        if schema.get(name) is not None and not isinstance(schema[name], cls):
            raise BadInputError(f"sample field {name!r} exists and is not a {cls.__name__}")


def check_video(sample: fo.Sample) -> int:
    """Returns the video's frame count, refusing missing metadata or a file that disagrees with it."""
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


def claim_video(
    dataset: fo.Dataset,
    sample_id: str,
    job_or_field: "VideoJob | str",
    run_started: float,
    stale_after: float = DEFAULT_STALE_AFTER,
    overwrite: bool = False,
) -> bool:
    """Atomically claims a video; False if another worker holds it or it is done."""
    status, claimed = status_fields(job_or_field)
    now = time.time()
    free = [
        {status: {"$exists": False}},
        {status: {"$in": [None, "failed"]}},
        {status: "running", claimed: {"$lt": now - stale_after}},
    ]
    if overwrite:
        free.append({status: "done", claimed: {"$lt": run_started}})
    doc = dataset._sample_collection.find_one_and_update(
        {"_id": ObjectId(sample_id), "$or": free},
        {"$set": {status: "running", claimed: now}},
        projection={"_id": 1},
    )
    return doc is not None


def _heartbeat(dataset, sample_id: str, job: VideoJob, value: str = "running") -> None:
    status, claimed = status_fields(job)
    dataset._sample_collection.update_one(
        {"_id": ObjectId(sample_id)}, {"$set": {status: value, claimed: time.time()}}
    )


def _clear(dataset, sample_id: str, job: VideoJob) -> None:
    view = dataset.select(sample_id)
    for name in job.outputs:
        if dataset.has_frame_field(name):
            view.set_values(f"frames.{name}", [[None] * len(f) for f in view.values("frames.frame_number")])


class _Progress:
    """Turns frame counts into ``callback(fraction, label)`` calls."""

    def __init__(self, callback, total_frames: int):
        self.callback, self.total, self.done = callback, max(1, total_frames), 0

    def __call__(self, frames: int, label: str) -> None:
        self.done += frames
        if self.callback is not None:
            self.callback(min(1.0, self.done / self.total), label)


def run_video_jobs(
    samples,
    job: VideoJob,
    flush_frames: int = 500,
    progress: bool = True,
    raise_on_error: bool = True,
    stale_after: float = DEFAULT_STALE_AFTER,
    progress_callback: Callable[[float, str], None] | None = None,
) -> RunSummary:
    """Runs a :class:`VideoJob` over the videos of a collection (see the module docstring).

    Args:
        samples: a video dataset or view
        job: the job
        flush_frames: frames of labels held before a bulk write
        progress: show a progress bar per video
        raise_on_error: after all videos, raise :class:`BadInputError` naming
            the videos that failed (otherwise only report them in the summary)
        stale_after: seconds without a heartbeat after which another worker's
            ``"running"`` video is taken over
        progress_callback: called as ``callback(fraction_done, label)`` after
            every bulk write (e.g. an operator's ``ctx.set_progress``)
    """
    if int(flush_frames) < 1:
        raise BadInputError(f"flush_frames: expected >= 1, got {flush_frames}")
    check_fields(samples, job)
    dataset = samples._dataset
    for name, cls in zip(status_fields(job), (fo.StringField, fo.FloatField)):
        if not dataset.has_sample_field(name):
            dataset.add_sample_field(name, cls)
    summary = RunSummary()
    run_started = time.time()
    ids, counts = samples.values(["id", "metadata.total_frame_count"])
    report = _Progress(progress_callback, sum(n or 0 for n in counts))
    for sample_id in ids:
        if not claim_video(dataset, sample_id, job, run_started, stale_after, job.overwrite):
            summary.skipped.append(sample_id)
            continue
        try:
            summary.frames += _run_one(dataset, sample_id, job, flush_frames, progress, report)
            summary.processed.append(sample_id)
        except (BadInputError, FileNotFoundError) as e:
            logger.warning("%s of video %s failed: %s", job.name, sample_id, e)
            summary.failed[sample_id] = str(e)
            _clear(dataset, sample_id, job)
            _heartbeat(dataset, sample_id, job, "failed")
        except BaseException:
            _heartbeat(dataset, sample_id, job, "failed")  # free the claim for a rerun
            raise
    dataset.reload()
    summary.timings = dict(job.timings)
    if summary.failed and raise_on_error:
        names = "; ".join(f"{sid}: {msg}" for sid, msg in summary.failed.items())
        raise BadInputError(f"{job.name}: {len(summary.failed)} video(s) failed: {names}")
    return summary


def _run_one(dataset, sample_id: str, job: VideoJob, flush_frames: int, progress: bool, report) -> int:
    sample = dataset[sample_id]
    n_frames = check_video(sample)
    name = os.path.basename(sample.filepath)
    _clear(dataset, sample_id, job)
    pending: dict[str, dict[int, fo.Label | None]] = {f: {} for f in job.outputs}
    count = held = 0

    def flush():
        nonlocal held
        if held:
            job.timings["write"] += write_frame_labels(dataset, {f: {sample_id: v} for f, v in pending.items() if v})
            for v in pending.values():
                v.clear()
            report(held, f"{name}: {count}/{n_frames} frames")
            held = 0
            _heartbeat(dataset, sample_id, job)

    with tqdm(total=n_frames, desc=name, unit="frame", disable=not progress) as bar:
        for number, labels in job.compute(sample, n_frames):
            unknown = set(labels) - set(pending)
            if unknown:
                raise BadInputError(f"{job.name} produced undeclared field(s) {sorted(unknown)}")
            for f, label in labels.items():
                pending[f][int(number)] = label
            count += 1
            held += 1
            bar.update(1)
            if held >= flush_frames:
                flush()
    flush()
    _heartbeat(dataset, sample_id, job, "done")
    return count
