"""One writer at a time for a dataset's document (its field schema and its runs), across processes.

FiftyOne saves a dataset's document from the copy each process holds in memory:
adding a field writes the whole ``sample_fields`` / ``frame_fields`` list, and
a run key is chosen from the runs that process last loaded. Two of our jobs
that start at once on one dataset (two CLI runs, Ray workers, delegated copies)
therefore lose each other's new fields (a later reload then fails with
``FieldDoesNotExist``), or both register ``posetrack_run_N`` and one deletes the
other's record.

:func:`dataset_document_lock` serializes those changes: it takes a lease on a
document of the dataset's database, reloads the dataset's document (so the
change starts from what the database holds), runs the block and gives the
lease back. The lease ends by itself after :data:`LEASE_SECONDS`, so a killed
holder blocks the others that long at most. It is reentrant in a process.

Used around every schema and run-record change of the jobs
(:mod:`fiftyone_posetrack.fo.jobs`, :mod:`fiftyone_posetrack.fo.staging`,
:mod:`fiftyone_posetrack.fo.runs`) and of the track-quality stage; label
writes do not need it (they go to the frame documents, atomically, by the
staging swap). The reload rebuilds the dataset's document classes: ``Sample``
objects loaded before it keep the old schema, so take the lock before loading
the samples a block will edit (the imports of :mod:`fiftyone_posetrack.fo.io`,
which edit samples they loaded first, do not use it).
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
def dataset_document_lock(dataset, wait: float = WAIT_SECONDS):
    """Holds the dataset's document lease for the block, the document reloaded first.

    Raises:
        BadInputError: when another process held it for longer than ``wait`` seconds
    """
    from pymongo.errors import DuplicateKeyError

    depth = getattr(_held, "depth", None)
    if depth is None:
        depth = _held.depth = {}
    key = _lock_id(dataset)
    if depth.get(key):
        depth[key] += 1
        try:
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
        dataset._reload(hard=True)  # start from the schema and runs the database holds
        yield
    finally:
        depth[key] = 0
        coll.delete_one({"_id": key, "token": token})
