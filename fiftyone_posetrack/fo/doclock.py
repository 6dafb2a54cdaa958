"""One writer at a time for a dataset's run records, across processes.

FiftyOne registers a run from the runs the registering process last loaded,
and deletes one by writing that process's copy of the runs back. Two of our
jobs starting at once on one dataset (two CLI runs, delegated copies) could
both take ``posetrack_run_N``; when one then processed nothing and deleted its
record, it deleted the other's (in CI the other run then failed with "Dataset
has no run key 'posetrack_run_1'").

:func:`dataset_document_lock` serializes those changes: it takes a lease on a
document of the dataset's database, reloads the dataset's document (its
fields as the database holds them; the sample and frame classes are left as
they are, so ``Sample`` objects in memory keep working), runs the block and
gives the lease back. The lease ends by itself after :data:`LEASE_SECONDS`, so
a killed holder blocks the others that long at most. It is reentrant in a
thread. :func:`~fiftyone_posetrack.fo.runs.begin_run` and
:meth:`~fiftyone_posetrack.fo.runs.RunRecord.delete` use it.

A job's start declares its fields under the same lock with ``full=True``
(:func:`~fiftyone_posetrack.fo.jobs.declare_job_fields`): FiftyOne writes the
whole field list from its copy, so two runs starting at once lost each
other's new fields. A full reload rebuilds the sample classes, which is safe
only where no ``Sample`` edits are held (a job's start; not the imports).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid

from fiftyone_posetrack.types import BadInputError

__all__ = ["dataset_document_lock", "LOCK_COLLECTION", "LEASE_SECONDS"]

#: the collection of the dataset's database that holds the leases
LOCK_COLLECTION = "posetrack_locks"
#: a lease not given back (its holder was killed) ends after this many seconds
LEASE_SECONDS = 30.0
#: how long to wait for another holder before giving up
WAIT_SECONDS = 120.0

_held = threading.local()  # {lock id: depth} of this thread


def _lock_id(dataset) -> str:
    return f"dataset-document:{dataset._doc.id}"


@contextlib.contextmanager
def dataset_document_lock(dataset, wait: float = WAIT_SECONDS, full: bool = False):
    """Holds the dataset's document lease for the block, the document reloaded first.

    ``full``: reload as ``dataset.reload()`` does (the sample and frame classes
    rebuilt from the database's schema and the samples in memory reloaded), for
    a block that adds fields; only where no unsaved ``Sample`` edits are held
    (a job's start).

    Raises:
        BadInputError: when another process held it for longer than ``wait`` seconds
    """
    from pymongo.errors import DuplicateKeyError

    depth = getattr(_held, "depth", None)
    if depth is None:
        depth = _held.depth = {}
    key = _lock_id(dataset)
    if depth.get(key):  # held by this thread: the document is current; a full block still rebuilds the classes
        depth[key] += 1
        try:
            if full:
                dataset.reload()
            yield
        finally:
            depth[key] -= 1
        return
    coll = dataset._sample_collection.database[LOCK_COLLECTION]
    token = f"{os.getpid()}:{uuid.uuid4().hex}"
    deadline = time.monotonic() + wait
    pause = 0.01
    while True:
        now = time.time()
        try:  # free or expired: take it (a held, live lease makes the upsert collide on _id)
            coll.update_one(
                {"_id": key, "expires": {"$lt": now}},
                {"$set": {"token": token, "expires": now + LEASE_SECONDS, "pid": os.getpid()}},
                upsert=True,
            )
            break
        except DuplicateKeyError:
            if time.monotonic() > deadline:
                holder = coll.find_one({"_id": key}) or {}
                raise BadInputError(
                    f"dataset {dataset.name!r}: another process (pid {holder.get('pid')}) has held the lock on the "
                    f"dataset's schema and runs for over {wait:g} s; retry when it is done"
                ) from None
            time.sleep(pause)
            pause = min(0.2, pause * 2)
    depth[key] = 1
    try:
        if full:
            dataset.reload()  # the schema as the database holds it, classes and samples in memory too
        else:
            dataset._reload()  # the runs (and fields) as the database holds them; classes untouched
        yield
    finally:
        depth[key] = 0
        coll.delete_one({"_id": key, "token": token})
