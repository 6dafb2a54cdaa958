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

__all__ = ["worker_id"]


def worker_id() -> str:
    """``host:pid`` of this process: who ran an operation."""
    return f"{socket.gethostname()}:{os.getpid()}"
