"""Schema and run-record changes from processes that start at once (fiftyone_posetrack.fo.doclock).

Without the lock, two processes adding fields to one dataset lose some of each other's (FiftyOne
writes the whole field list from its in-memory copy: 22 of 30 fields were left in a trial with
plain ``add_sample_field``), and two runs starting at once could both take ``posetrack_run_1``;
in CI one of two concurrent ``posetrack run`` processes then failed with ``FieldDoesNotExist``
and "Dataset has no run key 'posetrack_run_1'".
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

WORKER = textwrap.dedent(
    """
    import os, sys, time
    import fiftyone as fo
    from fiftyone_posetrack.fo.runs import begin_run, new_config
    from fiftyone_posetrack.fo.staging import add_sample_fields, declare_fields

    name, role, go = sys.argv[1:4]
    dataset = fo.load_dataset(name)
    while not os.path.exists(go):  # both start together
        time.sleep(0.005)
    keys = []
    for i in range(12):
        add_sample_fields(dataset, {f"{role}_s{i}": fo.StringField})
        declare_fields(dataset, {f"{role}_f{i}": fo.Detections})
        if i % 3 == 0:
            config = new_config("race", [f"{role}_f{i}"], f"{role}_s{i}", {}, {})
            keys.append(begin_run(dataset, config).key)
    print("KEYS", *keys)
    """
)


@pytest.fixture()
def dataset(request):
    import fiftyone as fo

    ds = fo.Dataset(f"doclock-{request.node.name}"[:60])
    ds.persistent = True
    ds.add_sample(fo.Sample(filepath="/tmp/doclock.mp4"))
    yield ds
    if fo.dataset_exists(ds.name):
        fo.delete_dataset(ds.name)


def test_two_processes_adding_fields_and_runs_at_once_keep_all_of_them(dataset, tmp_path):
    go = tmp_path / "go"
    procs = {
        role: subprocess.Popen([sys.executable, "-c", WORKER, dataset.name, role, str(go)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
        for role in ("a", "b")
    }  # fmt: skip
    time.sleep(0.5)
    go.touch()
    outs = {role: p.communicate(timeout=300)[0] for role, p in procs.items()}
    assert all(p.returncode == 0 for p in procs.values()), outs
    keys = {role: next(ln for ln in out.splitlines() if ln.startswith("KEYS")).split()[1:] for role, out in outs.items()}

    dataset.reload()
    for role in ("a", "b"):
        for i in range(12):
            assert dataset.has_sample_field(f"{role}_s{i}"), (role, i)
            assert dataset.has_frame_field(f"{role}_f{i}"), (role, i)
    assert len(keys["a"]) == len(keys["b"]) == 4
    assert not set(keys["a"]) & set(keys["b"]), keys  # never the same key twice
    assert set(keys["a"]) | set(keys["b"]) <= set(dataset.list_runs())


def test_a_lease_left_by_a_killed_holder_ends_and_a_live_one_is_waited_for(dataset):
    import fiftyone_posetrack.fo.doclock as doclock
    from fiftyone_posetrack.types import BadInputError

    coll = dataset._sample_collection.database[doclock.LOCK_COLLECTION]
    key = doclock._lock_id(dataset)
    # a live lease of another process: waited for, then a clear error naming it
    coll.replace_one({"_id": key}, {"_id": key, "token": "x", "pid": 4242, "expires": time.time() + 60}, upsert=True)
    with pytest.raises(BadInputError, match="pid 4242"):
        with doclock.dataset_document_lock(dataset, wait=0.3):
            pass
    # the holder was killed: its lease ends by itself and the next holder takes it
    coll.update_one({"_id": key}, {"$set": {"expires": time.time() + 0.5}})
    start = time.monotonic()
    with doclock.dataset_document_lock(dataset, wait=10):
        assert coll.find_one({"_id": key})["pid"] == os.getpid()
        with doclock.dataset_document_lock(dataset, wait=0.1):  # reentrant in this process
            pass
    assert time.monotonic() - start >= 0.3
    assert coll.find_one({"_id": key}) is None  # given back


def test_schema_lock_reloads_what_another_process_added(dataset):
    """A field added by another process since this one loaded the dataset survives this one's addition."""
    import fiftyone as fo

    from fiftyone_posetrack.fo.staging import add_sample_fields

    other = subprocess.run(
        [sys.executable, "-c", f"import fiftyone as fo; d = fo.load_dataset({dataset.name!r}); "
         "d.add_sample_field('from_other', fo.StringField)"],
        env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr[-2000:]
    assert not dataset.has_sample_field("from_other")  # this copy is stale
    add_sample_fields(dataset, {"from_here": fo.StringField})
    fresh = fo.load_dataset(dataset.name)
    fresh.reload()
    assert fresh.has_sample_field("from_other") and fresh.has_sample_field("from_here")

