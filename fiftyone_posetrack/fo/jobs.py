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
- **A lost database fails fast and clearly**: before each claim and bulk write
  the database is pinged with a short timeout (``POSETRACK_DB_TIMEOUT``
  seconds, default 10), and any pymongo connection error is raised as a
  :class:`DatabaseUnavailableError` naming the database. The video being
  processed keeps its ``"running"`` claim (the database could not be told
  otherwise); a rerun takes it over once its heartbeat is ``stale_after``
  seconds old, clearing the frames written before the outage.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterator

import fiftyone as fo
import pymongo
from bson import ObjectId
from pymongo.errors import ConnectionFailure, PyMongoError
from tqdm.auto import tqdm

from fiftyone_posetrack.fo.geometry import check_video_file
from fiftyone_posetrack.fo.labels import write_frame_labels
from fiftyone_posetrack.types import BadInputError, DatabaseUnavailableError

logger = logging.getLogger(__name__)

__all__ = [
    "VideoJob",
    "RunSummary",
    "DatabaseUnavailableError",
    "run_video_jobs",
    "claim_video",
    "status_fields",
    "check_video",
]

#: seconds without a heartbeat after which a "running" video is considered abandoned
DEFAULT_STALE_AFTER = 600.0

FrameLabels = dict[str, "fo.Label | None"]


def _db_timeout() -> float:
    """Seconds a job waits for an unreachable database: ``POSETRACK_DB_TIMEOUT`` (default 10)."""
    value = os.environ.get("POSETRACK_DB_TIMEOUT", "10")
    try:
        seconds = float(value)
    except ValueError:
        raise BadInputError(f"POSETRACK_DB_TIMEOUT: expected a number of seconds, got {value!r}") from None
    if not seconds > 0:
        raise BadInputError(f"POSETRACK_DB_TIMEOUT: expected a number of seconds > 0, got {value!r}")
    return seconds


def database_name() -> str:
    """The database FiftyOne uses, for messages (credentials in the URI are masked)."""
    uri = fo.config.database_uri
    if not uri:
        return "FiftyOne's local database (fo.config.database_uri is not set)"
    return "the database at " + re.sub(r"//[^@/]*@", "//***@", str(uri))


def _ping(dataset) -> None:
    """Fails within :func:`_db_timeout` seconds when the database is unreachable."""
    with pymongo.timeout(_db_timeout()):
        dataset._sample_collection.database.client.admin.command("ping")


def _lost_database(job: "VideoJob", error: Exception, sample_id: str | None, released: bool, stale_after: float):
    where = f" while processing video {sample_id}" if sample_id else ""
    resume = (
        "; rerun when it is back (finished videos are skipped, the others are redone)"
        if sample_id is None or released
        else f"; video {sample_id} stays claimed until its heartbeat is {stale_after:g} s old: rerun then "
        "(finished videos are skipped, the frames written before the outage are redone), or sooner "
        "with a smaller stale_after (posetrack run --stale-after SECONDS) if no other run is working "
        "on this dataset"
    )
    first_line = str(error).split(", Timeout:")[0].split("\n")[0][:300]
    return DatabaseUnavailableError(
        f"{job.name}: lost {database_name()}{where} ({type(error).__name__}: {first_line}){resume}"
    )


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
        replace_existing: write over output fields that exist but were not
            written by this job (no status field yet), as ``overwrite`` does;
            set by stages that replace their input when asked to
    """

    name: str
    outputs: dict[str, type]
    compute: Callable[[fo.Sample, int], Iterator[tuple[int, FrameLabels]]]
    overwrite: bool = False
    input_field: str | None = None
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    replace_existing: bool = False


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
    """Refuses a non-video collection, output fields that exist with another type, and
    existing output fields this job did not write (unless ``overwrite``)."""
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
    dataset = samples._dataset  # not the view: a field the view hides would still be overwritten
    foreign = [n for n in job.outputs if n in (dataset.get_frame_field_schema() or {})]
    if foreign and status not in dataset.get_field_schema() and not (job.overwrite or job.replace_existing):
        raise BadInputError(
            f"frame field(s) {foreign} exist but were not written by {job.name} (the dataset has no "
            f"sample field {status!r}); choose other output fields, or pass overwrite=True to replace them"
        )
    for name, cls in ((status, fo.StringField), (claimed, fo.FloatField)):
        if schema.get(name) is not None and not isinstance(schema[name], cls):
            raise BadInputError(f"sample field {name!r} exists and is not a {cls.__name__}")


def check_video(sample: fo.Sample) -> int:
    """Returns the video's frame count, refusing missing metadata or a file that disagrees with it.

    See :func:`fiftyone_posetrack.fo.geometry.check_video_file` (frame count,
    displayed frame size, and a file replaced or edited since its metadata).
    """
    return check_video_file(sample).frame_count


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


def _release_if_possible(dataset, sample_id: str, job: VideoJob) -> bool:
    """After a connection error: marks the video failed if the database answers within 2 s."""
    try:
        with pymongo.timeout(2.0):
            _heartbeat(dataset, sample_id, job, "failed")
        return True
    except PyMongoError:
        return False  # still down: the claim goes stale after stale_after seconds


def _clear(dataset, sample_id: str, job: VideoJob) -> None:
    """Sets the job's output fields of every frame of the video to None (one update, no read)."""
    from datetime import datetime, timezone

    from fiftyone.core.frame import Frame

    names = [name for name in job.outputs if dataset.has_frame_field(name)]
    if names:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        dataset._frame_collection.update_many(
            {"_sample_id": ObjectId(sample_id)}, {"$set": {**dict.fromkeys(names), "last_modified_at": now}}
        )
        Frame._reload_docs(dataset._frame_collection_name, sample_ids=[sample_id])  # frames held in memory


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
    if not float(stale_after) > 0:  # <= 0 would take over the videos of live runs
        raise BadInputError(f"stale_after: expected a number of seconds > 0, got {stale_after}")
    summary = RunSummary()
    run_started = time.time()
    current, released = None, False  # the claimed video; whether its claim was freed after an outage
    try:
        check_fields(samples, job)
        dataset = samples._dataset
        _ping(dataset)
        for name, cls in zip(status_fields(job), (fo.StringField, fo.FloatField)):
            if not dataset.has_sample_field(name):
                dataset.add_sample_field(name, cls)
        ids, counts = samples.values(["id", "metadata.total_frame_count"])
        report = _Progress(progress_callback, sum(n or 0 for n in counts))
        for sample_id in ids:
            _ping(dataset)
            if not claim_video(dataset, sample_id, job, run_started, stale_after, job.overwrite):
                summary.skipped.append(sample_id)
                continue
            current = sample_id
            try:
                summary.frames += _run_one(dataset, sample_id, job, flush_frames, progress, report)
                summary.processed.append(sample_id)
            except ConnectionFailure:
                released = _release_if_possible(dataset, sample_id, job)
                raise
            except (BadInputError, FileNotFoundError) as e:
                logger.warning("%s of video %s failed: %s", job.name, sample_id, e)
                summary.failed[sample_id] = str(e)
                _clear(dataset, sample_id, job)
                _heartbeat(dataset, sample_id, job, "failed")
            except BaseException:
                _heartbeat(dataset, sample_id, job, "failed")  # free the claim for a rerun
                raise
            current = None
        dataset.reload()
    except ConnectionFailure as e:  # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
        raise _lost_database(job, e, current, released, stale_after) from e
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
            _ping(dataset)
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
