"""Who runs a job: the worker identity recorded with operator results.

Scale-out itself is the Ray engine (:mod:`fiftyone_posetrack.fo.engine_ray`:
``engine="ray"``, one video per Ray worker, every worker recorded per video in
the run record). What this module held before, extra delegated copies of an
operation (``queue_delegated_copies``, the ``parallel_runs`` knob) and a
worker loop polling for abandoned videos (``run_until_done``,
``wait_for_others``), is retired: Ray places, restarts and retries the workers.
Several runs on one dataset (two drivers, or ``fiftyone delegated launch``
workers each running a queued operation) still split its videos through the
per-video claims of :mod:`fiftyone_posetrack.fo.jobs`.
"""

from __future__ import annotations

import os
import socket

__all__ = ["worker_id", "worker_field", "record_workers"]


def worker_id() -> str:
    """``host:pid`` of this process: who ran an operation."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_field(status_field: str) -> str:
    """The sample field recording who processed a video: ``<status field without _status>_worker``."""
    return status_field[: -len("_status")] + "_worker"


def record_workers(dataset, status_field: str, workers: dict[str, str]) -> None:
    """Writes ``{sample id: worker}`` into :func:`worker_field` (``host:pid`` of the process, or
    of the Ray worker, that labelled each video)."""
    import fiftyone as fo

    if not workers:
        return
    field = worker_field(status_field)
    if not dataset.has_sample_field(field):
        dataset.add_sample_field(field, fo.StringField)
    dataset.set_values(field, workers, key_field="id")
