"""The Ray engine on a real local Ray cluster and the session's real mongod.

One two-node cluster (``ray.cluster_utils.Cluster``, both nodes on this
machine) serves the whole module: the head declares 1 CPU and 2 logical GPUs,
the second node 1 CPU. CPU workers (``device="cpu"``) therefore land one per
node; GPU workers (``device="auto"``) both on the head, one logical GPU each.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import bson
import pytest

import fiftyone as fo

from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset
from fiftyone_posetrack.fo.run import run
from fiftyone_posetrack.fo.runs import get_run
from fiftyone_posetrack.fo.stages import detect_persons, track_detections
from fiftyone_posetrack.fo.staging import STAGING_COLLECTION
from fiftyone_posetrack.pipeline import PipelineConfig
from fiftyone_posetrack.synth import render_crowd
from fiftyone_posetrack.types import BadInputError
from test_bad_input import snapshot

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra (pip install .[ray])")

FRAMES = 40
FIELDS = ("pred_detections", "pred_keypoints")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    for attempt in range(5):  # Ray gives a node 30 s to register: a loaded machine may need more tries
        c = Cluster()
        try:
            c.add_node(num_cpus=1, num_gpus=2, include_dashboard=False)
            c.add_node(num_cpus=1)
            c.wait_for_nodes()
            break
        except Exception:
            c.shutdown()
            if attempt == 4:
                raise
    ray.init(address=c.address, logging_level="WARNING", log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-videos")
    return [
        str(render_crowd(root / f"v{i}", people=3, frames=FRAMES, width=320, height=192, seed=i).video_path)
        for i in range(2)
    ]


def fast_config(shared_dir, device: str = "cpu") -> PipelineConfig:
    return PipelineConfig(
        models_dir=str(shared_dir / "models"), detector="rtmdet-nano-person", pose="movenet-lightning-int8",
        reid=None, tracker="bytetrack", batch_size=4, box_smoothing=False, pose_smoothing="none", device=device,
    )  # fmt: skip


@pytest.fixture(scope="module")
def config(shared_dir) -> PipelineConfig:
    return fast_config(shared_dir)


def make_dataset(name: str, videos) -> fo.Dataset:
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    ds = get_or_create_dataset(name)
    add_videos(ds, videos)
    return ds


def labels(dataset) -> dict:
    """``{video file: [BSON of each frame's labels, label ids dropped]}``: what identical labels means."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "_id"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    files = dict(zip(*dataset.values(["_id", "filepath"])))
    out: dict = {}
    for doc in dataset._frame_collection.find({}, {"_sample_id": 1, "frame_number": 1, **{f: 1 for f in FIELDS}}):
        body = {f: strip(doc.get(f)) for f in FIELDS}
        out.setdefault(os.path.basename(os.path.dirname(files[doc["_sample_id"]])), []).append(
            (doc["frame_number"], bson.encode(body))
        )
    return {k: [b for _, b in sorted(v)] for k, v in out.items()}


@pytest.fixture(scope="module")
def reference(videos, config) -> dict:
    """The labels of a one-process run of the same videos and configuration."""
    ds = make_dataset("ray-reference", videos)
    summary = run(ds, config, progress=False)
    assert len(summary.processed) == 2
    out = labels(ds)
    assert sum(len(v) for v in out.values()) == 2 * FRAMES
    ds.delete()
    return out


@pytest.mark.slow
def test_ray_run_equals_a_one_process_run_and_spreads_over_both_nodes(cluster, videos, config, reference):
    ds = make_dataset("ray-spread", videos)
    summary = run(ds, config, engine="ray", workers=2, ray_address=cluster.address, progress=False)
    assert sorted(summary.processed) == sorted(ds.values("id")) and summary.frames == 2 * FRAMES
    assert labels(ds) == reference
    record = get_run(ds, summary.run_key)
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    entries = list(record["videos"].values())
    assert {e["node"] for e in entries} == nodes and len(nodes) == 2, "one video per node"
    assert all(e["status"] == "done" and e["frames"] == FRAMES and e["seconds"] > 0 for e in entries)
    assert len({e["worker"] for e in entries}) == 2 and all(":" in e["worker"] for e in entries)
    assert set(ds.values("pred_detections_status")) == {"done"}
    assert set(ds.values("pred_detections_run")) == {summary.run_key}, "one run record for the whole Ray run"
    # a single stage the same way: tracking the written boxes again, here and on Ray
    track_detections(ds, "pred_detections", "retracked_here", progress=False)
    retracked = track_detections(ds, "pred_detections", "retracked_ray", engine="ray", workers=2, progress=False)
    assert len(retracked.processed) == 2 and ds.count("frames.retracked_ray.detections") > 0
    here, there = (ds.values(f"frames.{f}.detections") for f in ("retracked_here", "retracked_ray"))
    strip = lambda videos: [[[d.to_dict() | {"_id": None} for d in f or []] for f in v] for v in videos]  # noqa: E731
    assert strip(here) == strip(there)
    ds.delete()


def _wait_gone(pids, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        time.sleep(0.1)
    assert not alive, f"worker processes {sorted(alive)} still run"


def _worker_pids_of_a_run(name, videos, config, reference, workers) -> list[int]:
    """Runs ``run_on_ray`` on a fresh dataset (labels checked against the reference); its workers' pids."""
    from fiftyone_posetrack.fo import engine_ray
    from fiftyone_posetrack.fo.run import ray_jobs

    ds = make_dataset(name, videos)
    seen = {}
    summary = engine_ray.run_on_ray(ds, *ray_jobs(config), workers=workers, use_gpus=False, progress=False,
                                    on_start=lambda handles: seen.update(handles))  # fmt: skip
    assert len(summary.processed) == 2 and labels(ds) == reference, name
    ds.delete()
    return sorted(who["pid"] for who in seen["identities"])


@pytest.mark.slow
def test_warm_workers_serve_the_next_run_and_are_released(cluster, videos, config, reference, monkeypatch):
    """The next run of this process takes over the last run's workers (same processes, same labels);
    they end at release_ray_workers(), or by themselves after WORKER_IDLE_SECONDS."""
    from fiftyone_posetrack.fo import engine_ray

    def run_once(name, workers=2) -> list[int]:
        return _worker_pids_of_a_run(name, videos, config, reference, workers)

    engine_ray.release_ray_workers()  # what earlier tests left warm
    cold = run_once("ray-warm-a")
    assert run_once("ray-warm-b") == cold, "the second run ran in the first run's worker processes"
    (one,) = run_once("ray-warm-one", workers=1)
    assert one in cold, "a run with fewer workers takes one of the warm ones"
    assert engine_ray.release_ray_workers() == 2 and engine_ray.release_ray_workers() == 0
    _wait_gone(cold)
    monkeypatch.setattr(engine_ray, "WORKER_IDLE_SECONDS", 1.0)
    fresh = run_once("ray-warm-c")
    assert not set(fresh) & set(cold), "new workers after the release"
    _wait_gone(fresh)  # idle for WORKER_IDLE_SECONDS: killed, their CPUs given back
    assert engine_ray._warm is None


IDLE_AFTER_SHUTDOWN = """
import ray
from fiftyone_posetrack.fo import engine_ray

ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
progress_class, _ = engine_ray._actor_classes()
workers = engine_ray._Workers((ray.get_runtime_context().gcs_address,), [], progress_class.remote())
engine_ray.WORKER_IDLE_SECONDS = 5.0
engine_ray._keep_workers(workers)
ray.shutdown()
workers.timer.join(timeout=120)  # the idle timer fires after the shutdown; wait until its kill returned
assert not workers.timer.is_alive() and engine_ray._warm is None, "the timer ran"
print("INITIALIZED", ray.is_initialized())
"""


def test_warm_workers_expiring_after_ray_shutdown_start_no_new_ray(tmp_path):
    """Ray's API auto-starts a local instance when called disconnected: the idle timer of workers
    whose cluster was shut down must leave them alone (CI: it started a new Ray after the tests)."""
    out = subprocess.run([sys.executable, "-c", IDLE_AFTER_SHUTDOWN], capture_output=True, text=True, timeout=300,
                         env=os.environ.copy(), cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "INITIALIZED False" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


def test_a_stage_whose_models_cannot_be_pickled_is_refused_before_anything_is_written(cluster, videos, config):
    from fiftyone_posetrack.pipeline.core import build_detector

    ds = make_dataset("ray-unpicklable", videos)
    before = snapshot(ds)
    with pytest.raises(BadInputError, match="cannot be pickled.*engine='ray'"):
        detect_persons(ds, build_detector(config), engine="ray", workers=1, progress=False)
    assert snapshot(ds) == before and ds.list_runs() == []
    ds.delete()


@pytest.mark.slow
def test_run_operator_on_ray_drives_gpu_workers_that_each_see_their_own_cuda_visible_devices(
    cluster, videos, shared_dir, reference, fo_home
):
    """"Run on Ray" from the run operator, queued: the delegated operation is the Ray driver; the two
    workers ask for one GPU each on the head's 2 logical GPUs."""
    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService

    from fiftyone_posetrack.fo.plugin import PLUGIN_NAME, install_plugin

    install_plugin(fo.config.plugins_dir)
    ds = make_dataset("ray-operator", videos)
    params = dict(
        detector="rtmdet-nano-person", pose="movenet-lightning-int8", reid="none", tracker="bytetrack",
        models_dir=str(shared_dir / "models"), batch_size=4, box_smoothing=False, pose_smoothing="none",
        device="auto", engine="ray", workers=2,
    )  # fmt: skip
    op = f"{PLUGIN_NAME}/run_pose_tracking"
    foo.execute_operator(op, ctx={"dataset": ds.name, "params": params, "request_delegation": True})
    (done,) = DelegatedOperationService().execute_queued_operations(operator=op, limit=1)
    assert done.error is None, done.error
    result = done.result
    assert result["engine"] == "ray" and result["processed"] == 2 and result["frames"] == 2 * FRAMES
    doc = DelegatedOperationService().list_operations(operator=op)[0]
    assert doc.status.progress == pytest.approx(1.0) and f"{2 * FRAMES}/{2 * FRAMES} frames" in doc.status.label
    record = get_run(ds, result["run_key"])
    seen = sorted(e["cuda_visible_devices"] for e in record["videos"].values())
    assert seen == ["0", "1"], f"one logical GPU per worker, got {seen}"
    assert {e["node"] for e in record["videos"].values()} == {cluster.head_node.node_id}, "the head's GPUs"
    assert labels(ds) == reference
    ds.delete()


@pytest.mark.slow
def test_a_sigkilled_worker_restarts_and_its_video_is_redone_identically(cluster, videos, config, reference):
    ds = make_dataset("ray-kill", videos)
    staging = ds._frame_collection.database[STAGING_COLLECTION]
    started, result = {}, {}

    def on_start(handles):
        started["progress"] = handles["progress"]

    def drive():
        try:
            result["summary"] = run(ds, config, engine="ray", workers=1, flush_frames=4, progress=False,
                                    stale_after=600.0)  # fmt: skip
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            result["error"] = e

    from fiftyone_posetrack.fo import engine_ray

    original = engine_ray.run_on_ray

    def run_on_ray(*args, **kwargs):
        return original(*args, **kwargs, on_start=on_start)

    engine_ray.run_on_ray = run_on_ray
    try:
        driver = threading.Thread(target=drive)
        driver.start()
        deadline = time.monotonic() + 300
        victim = None
        while victim is None and driver.is_alive() and time.monotonic() < deadline:
            if "progress" in started:
                _, holders = ray.get(started["progress"].state.remote())
                for sample_id, pid in holders.items():  # mid-video: some frames staged, not yet swapped in
                    if staging.count_documents({"sample": bson.ObjectId(sample_id)}, limit=1):
                        victim = (sample_id, pid)
            if victim is None:
                time.sleep(0.05)
        assert victim is not None, f"the worker never got mid-video: {result}"
        os.kill(victim[1], signal.SIGKILL)
        driver.join(timeout=600)
    finally:
        engine_ray.run_on_ray = original
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert sorted(summary.processed) == sorted(ds.values("id"))
    assert labels(ds) == reference, "the killed worker's video was redone from its first frame"
    entry = get_run(ds, summary.run_key)["videos"][victim[0]]
    assert entry["status"] == "done" and not entry["worker"].endswith(f":{victim[1]}"), "redone by a new process"
    assert staging.count_documents({"sample": {"$in": [bson.ObjectId(i) for i in ds.values("id")]}}) == 0
    ds.delete()
    # the restarted worker is not kept warm for the next run: that one starts a worker of its own
    restarted = int(entry["worker"].rpartition(":")[2])
    assert _worker_pids_of_a_run("ray-kill-next", videos, config, reference, workers=1) != [restarted]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"workers": 0}, "workers: expected an integer >= 1"),
        ({"workers": -3}, "workers: expected an integer >= 1"),
        ({"workers": "two"}, "workers: expected an integer"),
        ({"workers": 3}, "the Ray cluster holds at most 2 worker(s)"),
        ({"workers": 3, "device": "auto"}, "at most 2 worker(s) (2 GPU(s), one per worker)"),
        ({"ray_address": "not an address"}, "ray_address: expected 'auto', 'ray://HOST:PORT' or 'HOST:PORT'"),
        ({"ray_address": "ray://somewhere"}, "ray_address: expected"),
        ({"ray_address": "127.0.0.1:1"}, "already connected to the Ray cluster at"),
        ({"engine": "spark"}, "engine: expected one of ['inprocess', 'ray']"),
        ({"engine": "inprocess", "workers": 2}, "workers and ray_address are options of engine='ray'"),
        ({"persistent": False}, "is not persistent"),
    ],
)
def test_bad_workers_and_addresses_are_refused_with_nothing_written(cluster, videos, shared_dir, options, message):
    ds = make_dataset("ray-bad", videos)
    options = dict(options)
    ds.persistent = options.pop("persistent", True)
    cfg = fast_config(shared_dir, options.pop("device", "cpu"))
    before = snapshot(ds)
    runs_before = ds.list_runs()
    with pytest.raises(BadInputError) as e:
        run(ds, cfg, **{"engine": "ray", **options}, progress=False)
    assert message in str(e.value)
    assert snapshot(ds) == before and ds.list_runs() == runs_before
    assert ds.count("frames.pred_detections") == 0 if ds.has_frame_field("pred_detections") else True
    ds.delete()


def test_cli_refuses_an_address_where_no_cluster_answers(videos, tmp_path):
    """In a fresh process (not connected to Ray): the address is tried for a few seconds, not minutes."""
    ds = make_dataset("ray-cli-bad", videos)
    before = snapshot(ds)
    port = _free_port()
    cmd = [sys.executable, "-m", "fiftyone_posetrack.cli", "run", "--dataset", ds.name, "--engine", "ray",
           "--workers", "1", "--ray-address", f"127.0.0.1:{port}"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"posetrack: error: ray_address: no Ray cluster answers at '127.0.0.1:{port}'" in out.stderr
    assert snapshot(ds) == before and ds.list_runs() == []
    ds.delete()
