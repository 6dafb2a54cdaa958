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
- **Fenced claims**: each claim draws a fresh token, stored with the claim
  of *every* output field ``F`` of the job in the sample field ``F_claim``
  (``{"token", "run", "job": status field, "at": heartbeat, "live"}``). The
  claim is refused while another live claim holds any of the job's output
  fields (e.g. a run of another detection field writing the same keypoints
  field), or while another job's finished labels are in one of them (unless
  ``overwrite_fields`` names it). Every heartbeat, every staged write and the
  final swap are conditional on the token still being current (one atomic
  update filtering on it; the swap checks it in the same server-side
  aggregation): a worker whose claim was taken over (it was stopped longer
  than the other run's ``stale_after``) raises :class:`ClaimLostError`
  naming the video and the run that took it, writes nothing more, and its
  staged labels are discarded.
- **Interrupted runs clean up**: SIGTERM is handled like Ctrl-C (when the run
  is in the main thread and nobody else handles SIGTERM): the video's claim is
  released (its earlier state restored) and the run record is closed with
  outcome ``"interrupted"``.
- **No half-written labels**: a video's new labels are written aside
  (:mod:`fiftyone_posetrack.fo.staging`) and replace its output fields in one
  swap once the video is complete; a video that fails or is interrupted keeps
  the labels it had (an ``overwrite`` run that dies keeps the complete labels
  of the run before it), a video that fails gets status ``"failed"`` unless it
  was done before. Other fields are never touched.
- **Recorded, never silently stale**: every run is recorded on the dataset
  (:mod:`fiftyone_posetrack.fo.runs`: full options, model file hashes,
  package versions, per-video status, timings, who ran it) and each video
  names the run that wrote it in ``<first output field>_run``. A video "done"
  by a run of another configuration is refused, naming the differing options,
  unless ``overwrite``.
- **Label safety**: only plain sample/frame selections of a video dataset are
  accepted (clips, frames, patches, trajectories views, grouped datasets and
  dynamic groups are refused: their frames are not the dataset's). An output
  field that holds labels this job did not write (ground truth, imports,
  another job's labels) is replaced only when ``overwrite_fields`` names it.
- **A lost database fails fast and clearly**: before each claim and bulk write
  the database is pinged with a short timeout (``POSETRACK_DB_TIMEOUT``
  seconds, default 10), and any pymongo connection error is raised as a
  :class:`DatabaseUnavailableError` naming the database. The video being
  processed keeps its ``"running"`` claim (the database could not be told
  otherwise); a rerun takes it over once its heartbeat is ``stale_after``
  seconds old, clearing the frames written before the outage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterator

import fiftyone as fo
import pymongo
from bson import ObjectId
from pymongo.errors import ConnectionFailure, PyMongoError
from tqdm.auto import tqdm

from fiftyone_posetrack.fo import runs as fruns
from fiftyone_posetrack.fo.doclock import dataset_document_lock
from fiftyone_posetrack.fo.geometry import check_video_file
from fiftyone_posetrack.fo.staging import StagedVideo, declare_fields, discard_video, prune_staging
from fiftyone_posetrack.types import BadInputError, DatabaseUnavailableError
from fiftyone_posetrack.values import check_field_name

logger = logging.getLogger(__name__)

__all__ = [
    "VideoJob",
    "RunSummary",
    "ClaimLostError",
    "Terminated",
    "claim_field",
    "DatabaseUnavailableError",
    "run_video_jobs",
    "claim_video",
    "release_claim",
    "status_fields",
    "check_video",
    "check_collection",
    "check_fields",
    "check_reruns",
]

#: seconds without a heartbeat after which a "running" video is considered abandoned
DEFAULT_STALE_AFTER = 600.0

FrameLabels = dict[str, "fo.Label | None"]


class ClaimLostError(BadInputError):
    """This run's claim on a video was taken over by another run (CLI exit 2); nothing more was written."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that a run releases its claim and closes its record."""


_TERM = threading.local()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Within: SIGTERM raises :class:`Terminated` (main thread only, when SIGTERM is not handled already)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    _TERM.critical, _TERM.pending = False, False

    def handler(signum, frame):
        if _TERM.critical:  # the swap and its status update: finish them, then stop
            _TERM.pending = True
            return
        raise Terminated("terminated (SIGTERM)")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _uninterrupted():
    """Defers SIGTERM (see :func:`_sigterm_as_interrupt`) until the block is done."""
    if getattr(_TERM, "critical", None) is None:
        yield
        return
    _TERM.critical = True
    try:
        yield
    finally:
        _TERM.critical = False


def _stop_if_terminated() -> None:
    """Raises the SIGTERM deferred by :func:`_uninterrupted`, once the video is recorded."""
    if getattr(_TERM, "pending", False):
        _TERM.pending = False
        raise Terminated("terminated (SIGTERM)")


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
        input_field: the frame field ``compute`` reads, if any (it may be an
            output: new labels are swapped in only once the video is computed)
        timings: seconds per stage, filled by ``compute`` and the writes
        replace_existing: write over output fields that exist but were not
            written by this job, as if ``overwrite_fields`` named them; set by
            stages that replace their input when asked to
        options: the job's parameters, recorded in its run record (the
            options of :data:`fiftyone_posetrack.fo.runs.RUNTIME_OPTIONS` do
            not count when runs are compared)
        models: ``{role: model name, spec or object}`` whose files are hashed
            into the run record
        models_dir: where named models are looked up first
        overwrite_fields: output fields this job may replace although another
            job (or an import, or ground truth) wrote them
        prepare: ``prepare(dataset)`` called once the checks passed, before
            anything is written (e.g. to set the default skeleton)
    """

    name: str
    outputs: dict[str, type]
    compute: Callable[[fo.Sample, int], Iterator[tuple[int, FrameLabels]]]
    overwrite: bool = False
    input_field: str | None = None
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    replace_existing: bool = False
    options: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    models_dir: str | None = None
    overwrite_fields: tuple[str, ...] = ()
    prepare: Callable | None = None


@dataclass
class RunSummary:
    """What :func:`run_video_jobs` did.

    Attributes:
        processed: ids of the videos computed in this run
        skipped: ids of the videos done already or claimed by another worker
        failed: ``{sample id: error message}``
        frames: frames processed
        timings: seconds per stage (plus ``"write"``)
        run_key: the key of the run's record on the dataset (None when the
            run did nothing and left no record)
        claimed: ``{sample id: run key}`` of the skipped videos that another
            live run holds (the others were done already)
    """

    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    claimed: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    run_key: str | None = None


def status_fields(job_or_field: "VideoJob | str") -> tuple[str, str]:
    """The ``(status, claimed_at)`` sample fields of a job (or of its first output field)."""
    first = job_or_field if isinstance(job_or_field, str) else next(iter(job_or_field.outputs))
    return f"{first}_status", f"{first}_claimed_at"


def claim_field(frame_field: str) -> str:
    """The sample field holding the claim on a video's frame field ``frame_field``: ``<field>_claim``."""
    return f"{frame_field}_claim"


def _outputs(job_or_field) -> list[str]:
    return [job_or_field] if isinstance(job_or_field, str) else list(job_or_field.outputs)


def _replaceable(job_or_field) -> set[str]:
    """Output fields whose labels by another job this job may replace."""
    if isinstance(job_or_field, str):
        return set()
    return set(_outputs(job_or_field)) if job_or_field.replace_existing else set(job_or_field.overwrite_fields)


_VIEW_KINDS = (  # the most specific first: patches of a frames view are both
    ("_is_patches", "a patches view (to_patches / to_evaluation_patches)"),
    ("_is_clips", "a clips view (to_clips / to_trajectories)"),
    ("_is_frames", "a frames view (to_frames)"),
    ("_is_dynamic_groups", "a dynamic groups view (group_by)"),
)


def check_collection(samples, what: str) -> None:
    """Refuses collections whose frames are not those of a video dataset.

    Accepted: a video dataset, or a view of it that selects, filters or sorts
    samples and frames. Refused, naming the kind: clips, trajectories, frames
    and patches views (their samples live in a generated dataset, so labels
    written there never reach the videos), dynamic groups, grouped datasets
    and non-video collections.
    """
    for attr, kind in _VIEW_KINDS:
        if getattr(samples, attr, False):
            raise BadInputError(
                f"{what} cannot run on {kind}: its samples are generated copies, so labels written "
                "there would not reach the videos; run it on the video dataset or a plain view of it "
                "(select, match, filter_labels, ...) and build the view afterwards"
            )
    root = getattr(samples, "_root_dataset", None)
    if root is not None and root.media_type == "group":
        raise BadInputError(
            f"{what} cannot run on a grouped dataset: clone its video slice first "
            "(dataset.select_group_slices('SLICE').clone()) and run on the clone"
        )
    if getattr(samples, "_is_generated", False) or (root is not None and samples._dataset is not root):
        raise BadInputError(f"{what} cannot run on a generated view; run it on the video dataset")
    if samples.media_type != "video":
        raise BadInputError(f"{what} needs a video collection, got media type {samples.media_type!r}")


def _holds_labels(dataset, name: str) -> bool:
    return dataset._frame_collection.find_one({name: {"$ne": None}}, {"_id": 1}) is not None


def check_fields(samples, job: VideoJob) -> None:
    """Refuses collections that are not plain video collections (:func:`check_collection`),
    output fields that exist with another type, and output fields holding labels
    that this job did not write, unless ``overwrite_fields`` names them.

    A field counts as this job's when a run record of this package with the
    same status field lists it (:func:`fiftyone_posetrack.fo.runs.writers_of_field`);
    every output field is checked on its own.
    """
    check_collection(samples, job.name)
    for name in job.outputs:
        check_field_name(name, f"{job.name}: output field")
    frame_schema = samples.get_frame_field_schema() or {}
    for name, cls in job.outputs.items():
        f = frame_schema.get(name)
        if f is not None and getattr(f, "document_type", None) is not cls:
            have = getattr(f, "document_type", None) or type(f)
            raise BadInputError(
                f"frame field {name!r} exists with type {have.__name__}, not {cls.__name__}; "
                "choose another output field"
            )
    status, claimed = status_fields(job)
    dataset = samples._dataset  # not the view: a field the view hides would still be overwritten
    full_schema = dataset.get_frame_field_schema() or {}
    for name in job.outputs:
        if name not in full_schema or name in job.overwrite_fields or job.replace_existing:
            continue
        writers = fruns.writers_of_field(dataset, name)
        if any(c.get("status_field") == status for c in writers.values()) or not _holds_labels(dataset, name):
            continue
        by = (
            f"run {sorted(writers)[-1]!r} ({writers[sorted(writers)[-1]].get('job')}) wrote them"
            if writers
            else "no recorded run of this package wrote them: ground truth, an import or another tool"
        )
        raise BadInputError(
            f"frame field {name!r} holds labels that {job.name} into {status!r} did not write ({by}); "
            f"choose another output field, or pass overwrite_fields=[{name!r}] (--overwrite-field {name}) "
            "to replace them"
        )
    schema = dataset.get_field_schema()
    claims = [(claim_field(f), fo.DictField) for f in job.outputs]
    for name, cls in ((status, fo.StringField), (claimed, fo.FloatField), (fruns.run_field(status), fo.StringField), *claims):
        if schema.get(name) is not None and not isinstance(schema[name], cls):
            raise BadInputError(f"sample field {name!r} exists and is not a {cls.__name__}")


def check_reruns(samples, job: VideoJob, config: dict, ids: list[str], stale_after: float) -> None:
    """Refuses a run when videos it would skip as done were written with another configuration.

    A video ``"done"`` (or ``"running"`` with a live heartbeat) by a run whose
    record differs from ``config`` (:func:`fiftyone_posetrack.fo.runs.config_differences`)
    is refused unless ``job.overwrite``, naming the differing options.
    """
    if job.overwrite or not ids:
        return
    dataset = samples._dataset
    status, claimed = status_fields(job)
    run_name = fruns.run_field(status)
    query = {
        "_id": {"$in": [ObjectId(i) for i in ids]},
        "$or": [{status: "done"}, {status: "running", claimed: {"$gte": time.time() - stale_after}}],
    }
    by_run: dict = defaultdict(int)
    for doc in dataset._sample_collection.find(query, {run_name: 1}):
        by_run[doc.get(run_name)] += 1
    if not by_run:
        return
    records = fruns.writers_of_field(dataset, next(iter(job.outputs)))
    first = next(iter(job.outputs))
    for key, count in by_run.items():
        old = records.get(key)
        if old is None:
            raise BadInputError(fruns.difference_message(first, key, None, config, count))
        if fruns.config_differences(old, config):
            raise BadInputError(fruns.difference_message(first, key, old, config, count))


def check_video(sample: fo.Sample) -> int:
    """Returns the video's frame count, refusing missing metadata or a file that disagrees with it.

    See :func:`fiftyone_posetrack.fo.geometry.check_video_file` (frame count,
    displayed frame size, and a file replaced or edited since its metadata).
    """
    return check_video_file(sample).frame_count


def _claim(
    dataset, sample_id, job_or_field, run_started, stale_after, overwrite, run_key=None, token=None
) -> dict | None:
    """Atomically claims a video and each of its output fields with ``token``.

    Returns its sample document's status and claim fields before the claim, or
    None when the video is done, held by a live claim, or one of its output
    fields holds another job's labels that this job may not replace.
    """
    status, claimed = status_fields(job_or_field)
    run_name = fruns.run_field(status)
    now = time.time()
    free = [
        {status: {"$exists": False}},
        {status: {"$in": [None, "failed"]}},
        {status: "running", claimed: {"$lt": now - stale_after}},
    ]
    if overwrite:
        free.append({status: "done", claimed: {"$lt": run_started}})
    conditions = [{"$or": free}]
    replaceable = _replaceable(job_or_field)
    for name in _outputs(job_or_field):
        c = claim_field(name)
        ok = [{c: None}, {f"{c}.job": status}, {f"{c}.live": True, f"{c}.at": {"$lt": now - stale_after}}]
        if name in replaceable:
            ok.append({f"{c}.live": {"$ne": True}})
        conditions.append({"$or": ok})
    token = token or uuid.uuid4().hex
    entry = {"token": token, "run": run_key, "job": status, "at": now, "live": True}
    update = {status: "running", claimed: now, **{claim_field(f): entry for f in _outputs(job_or_field)}}
    if run_key is not None:
        update[run_name] = run_key
    projection = {"_id": 1, status: 1, claimed: 1, run_name: 1, **{claim_field(f): 1 for f in _outputs(job_or_field)}}
    before = dataset._sample_collection.find_one_and_update(
        {"_id": ObjectId(sample_id), "$and": conditions}, {"$set": update}, projection=projection
    )
    if before is not None:
        before["_token"] = token
    return before


def _why_not_claimed(dataset, sample_id: str, job: "VideoJob", stale_after: float) -> tuple[str, str | None]:
    """Why a claim was refused: ``("claimed", run key)``, ``("held", message)`` or ``("done", None)``."""
    status, claimed = status_fields(job)
    doc = dataset._sample_collection.find_one({"_id": ObjectId(sample_id)}) or {}
    now = time.time()
    for name in job.outputs:
        c = doc.get(claim_field(name)) or {}
        if c.get("live") and (c.get("at") or 0) >= now - stale_after and c.get("job") != status:
            return "claimed", f"{c.get('run')} (writing {name!r} into {c.get('job')!r})"
    if doc.get(status) == "running" and (doc.get(claimed) or 0) >= now - stale_after:
        return "claimed", str(doc.get(fruns.run_field(status)))
    for name in job.outputs:
        c = doc.get(claim_field(name)) or {}
        if c and not c.get("live") and c.get("job") != status and name not in _replaceable(job):
            return "held", (
                f"frame field {name!r} of this video holds the labels of run {c.get('run')!r} "
                f"(status field {c.get('job')!r}), not of {job.name} into {status!r}; choose another output "
                f"field, or pass overwrite_fields=[{name!r}] (--overwrite-field {name}) to replace them"
            )
    return "done", None


def claim_video(
    dataset: fo.Dataset,
    sample_id: str,
    job_or_field: "VideoJob | str",
    run_started: float,
    stale_after: float = DEFAULT_STALE_AFTER,
    overwrite: bool = False,
    run_key: str | None = None,
) -> bool:
    """Atomically claims a video (naming ``run_key`` as its writer); False if another worker holds it or it is done.

    Declares the claim fields (:func:`claim_field`) of its output fields when
    missing, as a job's start does (:func:`declare_job_fields`).
    """
    declare_job_fields(dataset, {claim_field(name): fo.DictField for name in _outputs(job_or_field)}, {})
    return _claim(dataset, sample_id, job_or_field, run_started, stale_after, overwrite, run_key) is not None


def declare_job_fields(dataset: fo.Dataset, sample_fields: dict, frame_fields: dict) -> None:
    """Adds a job's sample fields (``{name: field class}``) and output frame fields
    (``{name: label class}``) where missing, at the job's start.

    Under :func:`~fiftyone_posetrack.fo.doclock.dataset_document_lock` with a
    full reload: FiftyOne writes the whole field list from this process's copy,
    so without it two runs starting at once lost each other's new fields.
    """
    if all(dataset.has_sample_field(n) for n in sample_fields) and all(dataset.has_frame_field(n) for n in frame_fields):
        return
    with dataset_document_lock(dataset, full=True):
        for name, cls in sample_fields.items():
            if not dataset.has_sample_field(name):
                dataset.add_sample_field(name, cls)
        declare_fields(dataset, frame_fields)


def _token_filter(sample_id: str, job_or_field, token: str) -> dict:
    return {"_id": ObjectId(sample_id), **{f"{claim_field(f)}.token": token for f in _outputs(job_or_field)}}


def release_claim(dataset: fo.Dataset, sample_id: str, job_or_field: "VideoJob | str", run_key: str) -> bool:
    """Frees a video that run ``run_key`` claimed and no longer works on (its worker died:
    the Ray engine's retry, or its driver's clean-up); True if it was claimed by that run.

    Its heartbeat is set to 0 and its claim token replaced, so the next claim of
    any run takes it over as stale (clearing what the dead attempt staged), and
    a worker of the dead attempt that still runs (a stalled process) can neither
    renew nor commit it: its writes are fenced off. Videos of other runs are
    left alone: the claim still guards against a second driver.
    """
    status, claimed = status_fields(job_or_field)
    fenced = "released-" + uuid.uuid4().hex
    update = {claimed: 0.0}
    for f in _outputs(job_or_field):
        update[f"{claim_field(f)}.at"] = 0.0
        update[f"{claim_field(f)}.token"] = fenced
    result = dataset._sample_collection.update_one(
        {"_id": ObjectId(sample_id), status: "running", fruns.run_field(status): run_key}, {"$set": update}
    )
    return result.modified_count > 0


def _claim_lost(dataset, sample_id: str, job: "VideoJob", token: str) -> ClaimLostError:
    status = status_fields(job)[0]
    doc = dataset._sample_collection.find_one({"_id": ObjectId(sample_id)}) or {}
    by = None
    for name in job.outputs:
        c = doc.get(claim_field(name)) or {}
        if c.get("token") != token:
            by = c.get("run") or doc.get(fruns.run_field(status))
            break
    where = os.path.basename(doc.get("filepath") or "") or "?"
    return ClaimLostError(
        f"{job.name}: lost the claim on video {sample_id} ({where}): run {by!r} took it over (this run's "
        "heartbeat was older than that run's stale_after, e.g. this process was stopped or stalled); this "
        "run wrote nothing more and discarded its staged labels; the video's labels are those of run "
        f"{by!r}"
    )


def _heartbeat(dataset, sample_id: str, job: VideoJob, token: str, value: str = "running") -> None:
    """Refreshes the claim (or marks the video ``value``), only if ``token`` is still its claim."""
    status, claimed = status_fields(job)
    now = time.time()
    update = {status: value, claimed: now, **{f"{claim_field(f)}.at": now for f in job.outputs}}
    if value != "running":
        update.update({f"{claim_field(f)}.live": False for f in job.outputs})
    result = dataset._sample_collection.update_one(_token_filter(sample_id, job, token), {"$set": update})
    if result.matched_count == 0:
        raise _claim_lost(dataset, sample_id, job, token)


def _restore(dataset, sample_id: str, job: VideoJob, before: dict) -> bool:
    """After a failure: gives a video that was done before the claim its earlier state back.

    Returns False (and marks the video failed) when it was not done: its
    fields hold no complete labels of this job. Does nothing when the claim
    was taken over meanwhile (the video is another run's now).
    """
    status, claimed = status_fields(job)
    run_name = fruns.run_field(status)
    claims = {claim_field(f): before.get(claim_field(f)) for f in job.outputs}
    if before.get(status) == "done":
        values = {k: before.get(k) for k in (status, claimed, run_name)} | claims
        dataset._sample_collection.update_one(_token_filter(sample_id, job, before["_token"]), {"$set": values})
        return True
    values = {status: "failed", claimed: time.time()} | claims
    dataset._sample_collection.update_one(_token_filter(sample_id, job, before["_token"]), {"$set": values})
    return False


def _release_if_possible(dataset, sample_id: str, job: VideoJob, before: dict) -> bool:
    """After a connection error: frees the claim if the database answers within 2 s."""
    try:
        with pymongo.timeout(2.0):
            _restore(dataset, sample_id, job, before)
        return True
    except PyMongoError:
        return False  # still down: the claim goes stale after stale_after seconds


class _Progress:
    """Turns frame counts into ``callback(fraction, label)`` calls."""

    def __init__(self, callback, total_frames: int):
        self.callback, self.total, self.done = callback, max(1, total_frames), 0

    def __call__(self, frames: int, label: str) -> None:
        self.done += frames
        if self.callback is not None:
            self.callback(min(1.0, self.done / self.total), label)


def job_config(job: VideoJob) -> dict:
    """The run-record config of a job (options, model files and hashes, versions, who, when)."""
    status = status_fields(job)[0]
    models = fruns.model_files(job.models, job.models_dir)
    return fruns.new_config(job.name, list(job.outputs), status, job.options, models)


def run_video_jobs(
    samples,
    job: VideoJob,
    flush_frames: int = 500,
    progress: bool = True,
    raise_on_error: bool = True,
    stale_after: float = DEFAULT_STALE_AFTER,
    progress_callback: Callable[[float, str], None] | None = None,
    record: "fruns.RunRecord | None" = None,
) -> RunSummary:
    """Runs a :class:`VideoJob` over the videos of a collection (see the module docstring).

    Args:
        samples: a video dataset or a plain view of one
        job: the job
        flush_frames: frames of labels held before a bulk write
        progress: show a progress bar per video
        raise_on_error: after all videos, raise :class:`BadInputError` naming
            the videos that failed (otherwise only report them in the summary)
        stale_after: seconds without a heartbeat after which another worker's
            ``"running"`` video is taken over
        progress_callback: called as ``callback(fraction_done, label)`` after
            every bulk write (e.g. an operator's ``ctx.set_progress``)
        record: the record of a run this call is a part of (a Ray worker's
            video of the driver's run, :mod:`fiftyone_posetrack.fo.engine_ray`):
            claims name its key and outcomes are added to it; it is neither
            begun nor finished here. None: this call is a run of its own

    Raises:
        BadInputError: for a refused collection or field (nothing is written),
            for videos done by a run of another configuration (without
            ``overwrite``; nothing is written), or after the run when videos
            failed (``raise_on_error``)
    """
    if int(flush_frames) < 1:
        raise BadInputError(f"flush_frames: expected >= 1, got {flush_frames}")
    if not float(stale_after) > 0:  # <= 0 would take over the videos of live runs
        raise BadInputError(f"stale_after: expected a number of seconds > 0, got {stale_after}")
    summary = RunSummary()
    run_started = time.time()
    current, released = None, False  # the claimed video; whether its claim was freed
    joined, record = record, None  # a record given by the caller (the Ray engine) stays open
    outcome = "interrupted"
    try:
        with _sigterm_as_interrupt():
            check_fields(samples, job)
            dataset = samples._dataset
            _ping(dataset)
            ids, counts = samples.values(["id", "metadata.total_frame_count"])
            config = job_config(job)
            check_reruns(samples, job, config, ids, stale_after)
            if job.prepare is not None:
                job.prepare(dataset)
            status = status_fields(job)[0]
            names = (*status_fields(job), fruns.run_field(status), *(claim_field(f) for f in job.outputs))
            kinds = (fo.StringField, fo.FloatField, fo.StringField, *(fo.DictField for _ in job.outputs))
            declare_job_fields(dataset, dict(zip(names, kinds)), job.outputs)
            prune_staging(dataset)  # what killed runs of since deleted datasets left aside
            record = joined if joined is not None else fruns.begin_run(samples, config)
            summary.run_key = record.key
            report = _Progress(progress_callback, sum(n or 0 for n in counts))
            for sample_id in ids:
                _ping(dataset)
                before = _claim(dataset, sample_id, job, run_started, stale_after, job.overwrite, record.key)
                if before is None:
                    why, detail = _why_not_claimed(dataset, sample_id, job, stale_after)
                    if why == "held":
                        summary.failed[sample_id] = detail
                        record.video(sample_id, "failed", error=detail)
                        continue
                    summary.skipped.append(sample_id)
                    if why == "claimed":
                        summary.claimed[sample_id] = detail
                    continue
                current, started = sample_id, time.perf_counter()
                try:
                    frames = _run_one(dataset, sample_id, job, before["_token"], flush_frames, progress, report)
                    summary.frames += frames
                    summary.processed.append(sample_id)
                    record.video(sample_id, "done", frames, time.perf_counter() - started)
                except ConnectionFailure:
                    released = _release_if_possible(dataset, sample_id, job, before)
                    raise
                except ClaimLostError as e:  # the video is another run's now: leave it as it is
                    logger.warning("%s", e)
                    record.video(sample_id, "claim lost", error=str(e), seconds=time.perf_counter() - started)
                    outcome = "claim lost"
                    raise
                except (BadInputError, FileNotFoundError) as e:
                    logger.warning("%s of video %s failed: %s", job.name, sample_id, e)
                    kept = _restore(dataset, sample_id, job, before)
                    summary.failed[sample_id] = str(e) + ("; its earlier labels are kept" if kept else "")
                    record.video(sample_id, "failed", error=str(e), seconds=time.perf_counter() - started)
                except BaseException as e:
                    _restore(dataset, sample_id, job, before)  # free the claim for a rerun
                    record.video(sample_id, "interrupted", error=repr(e), seconds=time.perf_counter() - started)
                    raise
                current = None
                _stop_if_terminated()
            dataset.reload()
            outcome = "finished"
    except ConnectionFailure as e:  # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
        outcome = "database lost"
        raise _lost_database(job, e, current, released, stale_after) from e
    finally:
        if joined is None:
            _close_record(record, job, summary, outcome)
    summary.timings = dict(job.timings)
    if summary.failed and raise_on_error:
        names = "; ".join(f"{sid}: {msg}" for sid, msg in summary.failed.items())
        raise BadInputError(f"{job.name}: {len(summary.failed)} video(s) failed: {names}")
    return summary


def _close_record(record, job: VideoJob, summary: RunSummary, outcome: str = "finished") -> None:
    """Stores the timings and the outcome; drops the record of a run that neither processed nor failed a video."""
    if record is None:
        return
    try:
        with pymongo.timeout(2.0):
            if not record.videos:
                record.delete()
                summary.run_key = None
            else:
                record.finish(job.timings, outcome)
    except PyMongoError:
        logger.warning("could not finish the run record %s (database unavailable)", record.key)


def _run_one(dataset, sample_id: str, job: VideoJob, token: str, flush_frames: int, progress: bool, report) -> int:
    sample = dataset[sample_id]
    n_frames = check_video(sample)
    name = os.path.basename(sample.filepath)
    status = status_fields(job)[0]
    discard_video(dataset, sample_id, status)  # whatever a dead run staged
    staged = StagedVideo(dataset, sample_id, job.outputs, status, token=token)
    pending: dict[str, dict[int, fo.Label | None]] = {f: {} for f in job.outputs}
    count = held = 0

    def flush():
        nonlocal held
        if held:
            _ping(dataset)
            _heartbeat(dataset, sample_id, job, token)  # raises ClaimLostError before anything is staged
            start = time.perf_counter()
            staged.write(pending)
            job.timings["write"] += time.perf_counter() - start
            for v in pending.values():
                v.clear()
            report(held, f"{name}: {count}/{n_frames} frames")
            held = 0

    try:
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
        _heartbeat(dataset, sample_id, job, token)
        with _uninterrupted():
            start = time.perf_counter()
            # the video's labels are replaced in one swap, only now, and only while the claim is this run's
            staged.commit(guard=(dataset._sample_collection_name, _token_filter(sample_id, job, token)))
            job.timings["write"] += time.perf_counter() - start
            _heartbeat(dataset, sample_id, job, token, "done")
    except BaseException:
        try:
            staged.discard()
        except PyMongoError:
            pass
        raise
    return count
