"""Run records registered by processes that start at once (fiftyone_posetrack.fo.doclock).

Without the lock, two runs starting at once could both take ``posetrack_run_1``; in CI one of two
concurrent ``posetrack run`` processes then failed with "Dataset has no run key 'posetrack_run_1'"
after the other, which processed nothing, deleted the shared record.
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

    name, role, go = sys.argv[1:4]
    dataset = fo.load_dataset(name)
    while not os.path.exists(go):  # both start together
        time.sleep(0.005)
    keys, records = [], []
    for i in range(8):
        records.append(begin_run(dataset, new_config("race", [f"{role}_f{i}"], f"{role}_s{i}", {}, {})))
        keys.append(records[-1].key)
        if i % 2:  # a run that processed nothing removes its record
            records.pop().delete()
    print("KEYS", *keys)
    print("KEPT", *[r.key for r in records])
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


def test_two_processes_registering_and_deleting_runs_at_once_never_share_a_key(dataset, tmp_path):
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
    kept = {role: next(ln for ln in out.splitlines() if ln.startswith("KEPT")).split()[1:] for role, out in outs.items()}

    dataset.reload()
    assert len(keys["a"]) == len(keys["b"]) == 8 and len(kept["a"]) == len(kept["b"]) == 4
    # a key freed by a deletion may be taken again, but never two live records on one key:
    assert not set(kept["a"]) & set(kept["b"]), kept
    # each kept record is there and is its own process's (not overwritten by the other's)
    assert set(dataset.list_runs()) == set(kept["a"]) | set(kept["b"]), (dataset.list_runs(), kept)
    for role in ("a", "b"):
        for key in kept[role]:
            assert dataset.get_run_info(key).config.fields[0].startswith(f"{role}_"), (role, key)


FIELDS_WORKER = textwrap.dedent(
    """
    import os, sys, time
    import fiftyone as fo
    from fiftyone_posetrack.fo.jobs import declare_job_fields

    name, role, go = sys.argv[1:4]
    dataset = fo.load_dataset(name)
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(12):  # as 12 jobs starting one after another in this process
        declare_job_fields(dataset, {f"{role}_status{i}": fo.StringField, "shared_claim": fo.DictField},
                           {f"{role}_boxes{i}": fo.Detections, "shared": fo.Keypoints})
    """
)


def test_two_processes_starting_jobs_at_once_keep_each_others_fields(dataset, tmp_path):
    """FiftyOne writes the whole field list from each process's copy: without the lock 22 of 30 new
    fields were kept in a trial; both processes also declare the same shared fields, which must
    exist once."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", FIELDS_WORKER, dataset.name, role, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
             for role in ("a", "b")]  # fmt: skip
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    dataset.reload()
    for role in ("a", "b"):
        for i in range(12):
            assert dataset.has_sample_field(f"{role}_status{i}") and dataset.has_frame_field(f"{role}_boxes{i}"), (role, i)
    doc = dataset._doc
    assert [f.name for f in doc.sample_fields].count("shared_claim") == 1
    assert [f.name for f in doc.frame_fields].count("shared") == 1


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


def test_a_full_block_inside_a_held_lock_still_sees_fields_added_since(dataset):
    """A nested ``full=True`` block rebuilds the schema from the database (before, a nested block
    skipped its reload, so a field another process added after the outer block began stayed unseen)."""
    import fiftyone_posetrack.fo.doclock as doclock

    add = "import fiftyone as fo, sys; fo.load_dataset(sys.argv[1]).add_sample_field('added_outside', fo.StringField)"
    with doclock.dataset_document_lock(dataset):
        subprocess.run([sys.executable, "-c", add, dataset.name], check=True, timeout=300, env=dict(os.environ))
        assert not dataset.has_sample_field("added_outside"), "this process's copy predates the addition"
        with doclock.dataset_document_lock(dataset, full=True):
            assert dataset.has_sample_field("added_outside")
