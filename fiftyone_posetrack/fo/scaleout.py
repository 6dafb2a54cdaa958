"""Scale-out: several runs of one per-video job sharing the videos of a dataset.

Each video is claimed atomically by one run (:mod:`fiftyone_posetrack.fo.jobs`),
so any number of runs of the same job split the videos between them.
:func:`queue_delegated_copies` queues extra runs as FiftyOne delegated
operations (one per ``fiftyone delegated launch`` worker);
:func:`run_until_done` is one run's loop: its own share, then the videos of
runs that stopped (their claims go stale), recording which worker processed
each video. The operators are forms around them.
"""

from __future__ import annotations

import copy
import os
import socket
import time

import fiftyone as fo
from fiftyone import ViewField as F

__all__ = ["worker_id", "worker_field", "queue_delegated_copies", "run_until_done"]

#: request keys of an operation that must not be copied into a new one
_NOT_COPIED = {"run_doc", "results", "target", "delegated_operation_id", "prompt_id"}


def worker_id() -> str:
    """``host:pid`` of this process: who ran an operation."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_field(status_field: str) -> str:
    """The sample field recording who processed a video: ``<status field without _status>_worker``."""
    return status_field[: -len("_status")] + "_worker"


def queue_delegated_copies(
    operator_uri: str,
    label: str,
    request_params: dict,
    params: dict,
    dataset_id: str,
    count: int,
    delegation_target=None,
) -> list[str]:
    """Queues ``count`` delegated copies of an operation, each with ``parallel_runs=1``.

    Args:
        operator_uri: the operator's URI
        label: the operation's label; `` (parallel run i/n)`` is appended
        request_params: the original request (``ctx.request_params``)
        params: its parameters (``ctx.params``)
        dataset_id: the dataset's id (when the request lacks one)
        count: how many copies
        delegation_target: the orchestrator to queue them for

    Returns:
        the ids of the queued operations
    """
    from fiftyone.operators.delegated import DelegatedOperationService
    from fiftyone.operators.executor import ExecutionContext

    service, ids = DelegatedOperationService(), []
    for i in range(count):
        request = copy.deepcopy({k: v for k, v in request_params.items() if k not in _NOT_COPIED})
        request["params"] = dict(copy.deepcopy(params), parallel_runs=1)
        request["delegated"] = True
        request["request_delegation"] = True
        request.setdefault("dataset_id", dataset_id)
        doc = service.queue_operation(
            operator=operator_uri,
            label=f"{label} (parallel run {i + 2}/{count + 1})",
            delegation_target=delegation_target,
            context=ExecutionContext(request_params=request).serialize(),
        )
        ids.append(str(doc.id))
    return ids


def run_until_done(
    view,
    status_field: str,
    once,
    flush_frames: int,
    stale_after: float,
    wait_for_others: bool,
    progress_callback=None,
):
    """Runs ``once(samples, **job_options)`` over ``view`` like a worker, and returns the summary.

    ``job_options`` are the keyword arguments of
    :func:`fiftyone_posetrack.fo.jobs.run_video_jobs` that every stage takes
    (``flush_frames``, ``progress``, ``raise_on_error``, ``stale_after``,
    ``progress_callback``).

    After the first pass, with ``wait_for_others``, while other runs hold
    videos of ``view`` (status ``"running"``) it polls (every
    ``stale_after / 10`` s, 0.5 to 30 s) and runs again on those, so videos of
    a worker that died are redone once their claim is stale. Records the
    worker (:func:`worker_id`) of each processed video in the sample field
    :func:`worker_field`.

    Returns:
        the :class:`~fiftyone_posetrack.fo.jobs.RunSummary` of all passes
        (``skipped`` lists only the videos no pass processed)
    """
    dataset = view._dataset
    field = worker_field(status_field)
    me = worker_id()
    totals = None
    samples = view
    poll = min(max(stale_after / 10.0, 0.5), 30.0)
    while True:
        summary = once(
            samples, flush_frames=flush_frames, progress=False, raise_on_error=False, stale_after=stale_after,
            progress_callback=progress_callback,
        )  # fmt: skip
        if summary.processed:
            if not dataset.has_sample_field(field):
                dataset.add_sample_field(field, fo.StringField)
            dataset.select(summary.processed).set_values(field, [me] * len(summary.processed))
        if totals is None:
            totals = summary
        else:
            totals.processed += summary.processed
            totals.failed.update(summary.failed)
            totals.frames += summary.frames
            totals.run_key = totals.run_key or summary.run_key
            for k, v in summary.timings.items():
                totals.timings[k] = totals.timings.get(k, 0.0) + v
        if not wait_for_others or not dataset.has_sample_field(status_field):
            break
        samples = view.match(F(status_field) == "running")
        if not len(samples):
            break
        time.sleep(poll)
    done = set(totals.processed)
    totals.skipped = [s for s in dict.fromkeys(totals.skipped) if s not in done]
    return totals
