"""The Ray engine: the videos of a per-video job over the actors of a Ray cluster.

A run with ``engine="ray"`` is driven from the calling process (the CLI, a
Python session, a delegated operation): it checks the job's fields and earlier
runs (:func:`~fiftyone_posetrack.fo.jobs.check_fields`,
:func:`~fiftyone_posetrack.fo.jobs.check_reruns`), registers one run record,
then hands the videos to ``workers`` Ray actors, one video at a time each, in
the manner of Ray's batch-inference examples (an :class:`ray.util.ActorPool`
of model-holding actors):

- **Actors hold the models**: each builds its job (its models) once per run,
  before any video, placed by resources: one GPU per actor (``num_gpus=1``, Ray
  sets its ``CUDA_VISIBLE_DEVICES``) when the cluster has GPUs and the job may
  use them, else ``num_cpus`` CPUs; spread over the nodes (``"SPREAD"``).
- **Warm workers**: a worker process costs seconds to start (mostly importing
  FiftyOne), so the actors of a run that ended well stay up for
  :data:`WORKER_IDLE_SECONDS` and the next run of this process on the same
  cluster, with the same resources per worker and settings, takes them over
  when they are enough for it (it builds its own job in the ones it uses).
  Then, or at :func:`release_ray_workers`, they are killed and their resources
  given back. A worker that Ray restarted, or any run that
  failed, is never reused. The models are dropped at the end of each run, so
  idle workers hold no GPU memory.
- **Videos are the unit of work**: tracking is sequential inside a video. Each
  actor runs its video through the same per-video path as an in-process run
  (:func:`~fiftyone_posetrack.fo.jobs.run_video_jobs` on a one-video
  selection: claim, staged writes, one swap), writing straight to the
  dataset's MongoDB (the driver's ``FIFTYONE_*`` / ``POSETRACK_*`` settings
  travel in the actors' ``runtime_env``), so memory stays constant and a
  video's labels land complete or not at all. The dataset must be persistent.
- **Faults**: a worker process that dies (SIGKILL, out of memory, a lost node)
  is restarted by Ray (``max_restarts``) and its video is redone
  (``max_task_retries``); the retry frees the dead attempt's claim, which
  names this run's key, and recomputes the video from its first frame, so
  the labels equal those of a one-process run. The per-video claim still
  guards against a second driver on the same dataset: videos another run holds
  are skipped, as in-process.
- **Recorded**: the run record has, per video, the node (``node``: Ray node
  id, ``host``), the worker (``worker``: ``host:pid``), the GPUs it saw
  (``cuda_visible_devices``), the seconds the video took (``seconds``, as
  in-process) and the worker's whole task (``task_seconds``: with its checks,
  claim and record). Progress is one bar of
  frames over all workers (a small progress actor the workers report to).

With no ``ray_address`` the driver joins the Ray instance it is already
connected to (``ray.init()`` called before), else starts a local one
(``ray.init()``: every core and GPU of this machine); ``"auto"`` joins the
cluster started on this machine with ``ray start --head``, ``"ray://HOST:PORT"``
a remote one (Ray Client), ``"HOST:PORT"`` a cluster's GCS address.
"""

from __future__ import annotations

import math
import os
import re
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import fiftyone as fo
from bson import ObjectId
from tqdm.auto import tqdm

from fiftyone_posetrack.fo import runs as fruns
from fiftyone_posetrack.fo.jobs import (
    RunSummary,
    VideoJob,
    check_fields,
    check_reruns,
    job_config,
    release_claim,
    run_video_jobs,
)
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "ENGINES",
    "WORKER_IDLE_SECONDS",
    "check_engine",
    "check_ray_address",
    "picklable_job",
    "release_ray_workers",
    "run_on_ray",
    "worker_resources",
]

#: the engines of every label-writing run
ENGINES = ("inprocess", "ray")

#: how often Ray restarts a dead worker actor, and retries the video it held
MAX_RESTARTS = 3

#: seconds the workers of a finished run wait for the next run of this process before they are killed
WORKER_IDLE_SECONDS = 120.0

#: environment variables the workers get from the driver (database, FiftyOne and package settings)
_ENV_PREFIXES = ("FIFTYONE_", "POSETRACK_")

_ADDRESS = re.compile(r"^(auto|ray://[^\s:/]+:\d{1,5}|[^\s:/]+:\d{1,5})$")


def check_ray_address(address) -> str | None:
    """``address`` checked: None, ``"auto"``, ``"ray://HOST:PORT"`` or ``"HOST:PORT"``."""
    if address is None or (isinstance(address, str) and not address.strip()):
        return None
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
        raise BadInputError(
            f"ray_address: expected 'auto', 'ray://HOST:PORT' or 'HOST:PORT' (a Ray cluster's address), got {address!r}"
        )
    return address.strip()


def check_engine(engine: str, workers, ray_address) -> tuple[str, int | None, str | None]:
    """``(engine, workers, ray_address)`` checked (``workers`` None: one per GPU, else per CPU).

    The in-process engine takes neither ``workers`` nor ``ray_address``.
    """
    from fiftyone_posetrack.pipeline.options import check_option

    if engine not in ENGINES:
        raise BadInputError(f"engine: expected one of {list(ENGINES)}, got {engine!r}")
    if engine == "inprocess":
        if workers is not None and workers != 1 or ray_address:
            raise BadInputError(
                "workers and ray_address are options of engine='ray'; the in-process engine runs one video at a time"
            )
        return engine, None, None
    if workers is not None:
        workers = check_option("workers", workers)
    return engine, workers, check_ray_address(ray_address)


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Refuses within ``timeout`` s an address where nothing listens (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise BadInputError(
            f"ray_address: no Ray cluster answers at {address!r} ({type(e).__name__}: {e}); start one with "
            "`ray start --head` or check the address"
        ) from None


def _connect(address: str | None) -> None:
    """Connects this process to Ray: the instance it is connected to, ``address``, or a new local one."""
    import ray

    if ray.is_initialized():
        connected = ray.get_runtime_context().gcs_address
        if address not in (None, "auto", connected):
            raise BadInputError(
                f"ray_address: this process is already connected to the Ray cluster at {connected!r}, "
                f"not {address!r}; call ray.shutdown() first"
            )
        return
    if address not in (None, "auto"):
        _reachable(address)
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - ConnectionError, grpc errors, RuntimeError, ValueError
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        raise BadInputError(f"could not connect to {where}: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e


def worker_resources(use_gpus: bool, workers: int | None, num_cpus: float = 1.0) -> tuple[dict, int]:
    """``(actor resources, workers)`` on the connected cluster.

    One GPU per actor when ``use_gpus`` and the cluster has GPUs, else
    ``num_cpus`` CPUs. ``workers`` None: as many as the cluster holds.

    Raises:
        BadInputError: when the cluster cannot hold ``workers`` such actors
    """
    import ray

    total = ray.cluster_resources()
    gpus, cpus = total.get("GPU", 0.0), total.get("CPU", 0.0)
    if use_gpus and gpus >= 1:
        resources, capacity, unit = {"num_gpus": 1, "num_cpus": 0}, int(gpus), "GPU"
    else:
        resources, capacity, unit = {"num_cpus": num_cpus}, int(math.floor(cpus / num_cpus + 1e-9)), "CPU"
    if capacity < 1:
        raise BadInputError(f"the Ray cluster has no room for a worker ({cpus:g} CPUs, {gpus:g} GPUs)")
    if workers is None:
        workers = capacity
    elif workers > capacity:
        size = f"{gpus:g} GPU(s), one per worker" if unit == "GPU" else f"{cpus:g} CPU(s), {num_cpus:g} per worker"
        raise BadInputError(f"workers: the Ray cluster holds at most {capacity} worker(s) ({size}), got {workers}")
    return resources, workers


def picklable_job(job: VideoJob) -> Callable[[], VideoJob]:
    """``make_job`` for :func:`run_on_ray` from a built job: each worker unpickles its own copy.

    Raises:
        BadInputError: when the job (a model object it holds) cannot be pickled
    """
    import ray.cloudpickle as cloudpickle

    try:
        payload = cloudpickle.dumps(job)
    except Exception as e:  # noqa: BLE001 - TypeError, PicklingError, ...
        raise BadInputError(
            f"{job.name}: engine='ray' sends the job and its models to each worker, but they cannot be pickled "
            f"({type(e).__name__}: {str(e)[:200]}); run the whole pipeline with fiftyone_posetrack.run(..., "
            "engine='ray') (each worker builds its models from the configuration), or use engine='inprocess'"
        ) from None
    return partial(cloudpickle.loads, payload)


def _worker_env() -> dict:
    """The driver's database and package settings, for the workers' ``runtime_env``."""
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    if fo.config.database_uri:
        env["FIFTYONE_DATABASE_URI"] = str(fo.config.database_uri)
    env.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    return env


class _Outcomes(fruns.RunRecord):
    """A worker's view of the driver's run record: collects its video's outcome; the driver saves."""

    def __init__(self, dataset, key: str):
        super().__init__(dataset, key, {})

    def save(self) -> None:  # the driver saves the record (one writer, no lost updates)
        pass


def _actor_classes():
    """The Ray actor classes (defined on first use: importing this module needs no Ray)."""
    import ray

    @ray.remote(num_cpus=0)
    class Progress:
        """Frames done over all workers, and which worker holds which video (for the driver and tests)."""

        def __init__(self):
            self.frames, self.holders = 0, {}

        def reset(self) -> None:  # a new run on warm workers
            self.frames, self.holders = 0, {}

        def add(self, frames: int) -> None:
            self.frames += int(frames)

        def hold(self, sample_id: str, pid: int | None) -> None:
            if pid is None:
                self.holders.pop(sample_id, None)
            else:
                self.holders[sample_id] = pid

        def state(self) -> tuple[int, dict]:
            return self.frames, dict(self.holders)

    class VideoWorker:
        """Holds the job of one run (its models, built once per run) and runs it on one video per call."""

        def __init__(self):
            self.run_id = self.job = self.dataset = self.options = self.progress = None
            ctx = ray.get_runtime_context()
            self.where = {
                "node": ctx.get_node_id(),
                "host": socket.gethostname(),
                "worker": f"{socket.gethostname()}:{os.getpid()}",
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            }

        def identity(self) -> dict:
            return dict(self.where, pid=os.getpid())

        def begin(self, run_id: str, make_job: Callable[[], VideoJob], dataset_name: str, options: dict, progress) -> dict:
            """Builds the run's job (its models) and loads its dataset; a restarted worker does it again."""
            if self.run_id != run_id:
                self.job = None  # the last run's models go before the new ones are built
                self.job = make_job()
                self.dataset = fo.load_dataset(dataset_name)
                self.dataset.reload()  # a warm worker's copy predates the fields the driver declared
                self.options, self.progress, self.run_id = options, progress, run_id
            return self.identity()

        def end(self) -> None:
            """Drops the run's job (its models: GPU memory) while the worker waits for the next run."""
            self.run_id = self.job = self.dataset = self.options = self.progress = None

        def process(self, run_id: str, make_job, dataset_name: str, options: dict, progress, sample_id: str,
                    run_key: str) -> dict:  # fmt: skip
            self.begin(run_id, make_job, dataset_name, options, progress)
            self.progress.hold.remote(sample_id, os.getpid())
            # a retry after this run's worker died: its claim names this run and is dead, free it
            release_claim(self.dataset, sample_id, self.job, run_key)
            outcomes = _Outcomes(self.dataset, run_key)
            before = dict(self.job.timings)
            reported = [0]
            n_frames = self.dataset[sample_id].metadata.total_frame_count or 0

            def report(fraction: float, label: str) -> None:
                done = round(fraction * max(1, n_frames))
                self.progress.add.remote(done - reported[0])
                reported[0] = done

            start = time.perf_counter()
            summary = run_video_jobs(
                self.dataset.select(sample_id), self.job, progress=False, raise_on_error=False,
                progress_callback=report, record=outcomes, **self.options,
            )  # fmt: skip
            self.progress.hold.remote(sample_id, None)
            timings = {k: v - before.get(k, 0.0) for k, v in self.job.timings.items()}
            entry = outcomes.videos.get(sample_id)
            if entry is None:  # skipped: done already (a retry after the swap) or another run holds it
                doc = self.dataset._sample_collection.find_one({"_id": ObjectId(sample_id)}) or {}
                done_here = doc.get(_status(self.job)) == "done" and doc.get(_run(self.job)) == run_key
                entry = {"status": "done", "frames": n_frames, "seconds": 0.0} if done_here else None
            if entry is not None:
                entry = dict(entry, **self.where, task_seconds=round(time.perf_counter() - start, 3))
            return {"sample_id": sample_id, "entry": entry, "summary": summary, "timings": timings}

    return Progress, ray.remote(VideoWorker)


@dataclass
class _Workers:
    """The actors of a run (and its progress actor), kept warm for the next run with the same ``key``."""

    key: tuple
    actors: list
    progress: object
    pids: list = field(default_factory=list)  # each actor's process: a restarted actor is not reused
    timer: threading.Timer | None = None

    def connected(self) -> bool:
        """Whether this process is still connected to the cluster the workers live on.

        Ray's API called while disconnected starts a new local Ray instance
        (``auto_init``): after ``ray.shutdown()`` (or a switch to another
        cluster) the handles are left alone, their cluster ends them.
        """
        import ray

        return ray.is_initialized() and ray.get_runtime_context().gcs_address == self.key[0]

    def kill(self) -> None:
        import ray

        if self.timer is not None:
            self.timer.cancel()
        if not self.connected():
            return
        for actor in (*self.actors, self.progress):
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already dead, or its cluster is gone
                pass

    def alive(self) -> bool:
        """Every actor answers from the process it was started in (none was restarted); the
        progress actor's answer is its reset for the next run."""
        import ray

        if not self.connected():
            return False
        try:
            pids = [who["pid"] for who in ray.get([a.identity.remote() for a in self.actors], timeout=30)]
            ray.get(self.progress.reset.remote(), timeout=30)
        except Exception:  # noqa: BLE001 - a dead actor, a lost node, a gone cluster
            return False
        return pids == self.pids


_warm_lock = threading.Lock()
_warm: _Workers | None = None


def release_ray_workers() -> int:
    """Kills the workers kept warm for this process's next Ray run; returns how many there were."""
    global _warm
    with _warm_lock:
        workers, _warm = _warm, None
    if workers is None:
        return 0
    workers.kill()
    return len(workers.actors)


def _take_workers(key: tuple, count: int, make: Callable[[], _Workers]) -> tuple[_Workers, bool]:
    """The warm workers if their ``key`` matches, they are at least ``count`` and sound
    (``(workers, True)``; the run uses the first ``count``), else new ones."""
    global _warm
    with _warm_lock:
        workers, _warm = _warm, None
    if workers is not None:
        if workers.timer is not None:
            workers.timer.cancel()
        if workers.key == key and len(workers.actors) >= count and workers.alive():
            return workers, True
        workers.kill()  # before new ones: they may need its resources
    return make(), False


def _keep_workers(workers: _Workers) -> None:
    """Keeps a finished run's workers for :data:`WORKER_IDLE_SECONDS` (one set per process)."""
    global _warm
    with _warm_lock:
        if _warm is None:
            workers.timer = threading.Timer(WORKER_IDLE_SECONDS, _expire, args=(workers,))
            workers.timer.daemon = True
            workers.timer.start()
            _warm, workers = workers, None
    if workers is not None:  # another run's workers wait already
        workers.kill()


def _expire(workers: _Workers) -> None:
    global _warm
    with _warm_lock:
        if _warm is not workers:
            return
        _warm = None
    workers.kill()


def _status(job: VideoJob) -> str:
    return f"{next(iter(job.outputs))}_status"


def _run(job: VideoJob) -> str:
    return fruns.run_field(_status(job))


def _cause(error: BaseException) -> BaseException:
    from ray.exceptions import RayTaskError

    if isinstance(error, RayTaskError) and getattr(error, "cause", None) is not None:
        return error.cause
    return error


def run_on_ray(
    samples,
    job: VideoJob,
    make_job: Callable[[], VideoJob],
    workers: int | None = None,
    ray_address: str | None = None,
    use_gpus: bool = True,
    num_cpus: float = 1.0,
    flush_frames: int = 500,
    progress: bool = True,
    raise_on_error: bool = True,
    stale_after: float = 600.0,
    progress_callback: Callable[[float, str], None] | None = None,
    on_start: Callable[[dict], None] | None = None,
) -> RunSummary:
    """Runs a per-video job over the videos of a collection on Ray actors (see the module docstring).

    Args:
        samples: a video dataset (persistent) or a plain view of one
        job: the job as the driver sees it: its outputs, options and model
            names are checked and recorded (``compute`` is never called here)
        make_job: builds the job in each actor (its models, once per actor);
            it is pickled to the actors
        workers: how many actors (None: as many as the cluster holds)
        ray_address: the cluster (see the module docstring)
        use_gpus: place one actor per GPU when the cluster has GPUs
        num_cpus: CPUs per actor without a GPU
        flush_frames, progress, raise_on_error, stale_after, progress_callback:
            as :func:`~fiftyone_posetrack.fo.jobs.run_video_jobs` (``progress``:
            one bar of frames over all workers)
        on_start: called with ``{"progress": actor, "workers": [actor handles],
            "identities": [{node, host, worker, cuda_visible_devices, pid}]}``
            once the workers are up (tests and benchmarks use it to find the workers' processes)

    Raises:
        BadInputError: for a bad worker count or address, a dataset that is
            not persistent, or the refusals of an in-process run; nothing is
            written then. After the run, when videos failed (``raise_on_error``).
        DatabaseUnavailableError: when a worker lost the database
    """
    if int(flush_frames) < 1:
        raise BadInputError(f"flush_frames: expected >= 1, got {flush_frames}")
    if not float(stale_after) > 0:
        raise BadInputError(f"stale_after: expected a number of seconds > 0, got {stale_after}")
    _, workers, ray_address = check_engine("ray", workers, ray_address)
    dataset = samples._dataset
    check_fields(samples, job)
    if not dataset.persistent:
        raise BadInputError(
            f"dataset {dataset.name!r} is not persistent: Ray workers load it by name from the database; "
            "set dataset.persistent = True first"
        )
    ids, counts = samples.values(["id", "metadata.total_frame_count"])
    config = job_config(job)
    check_reruns(samples, job, config, ids, stale_after)
    _connect(ray_address)
    resources, workers = worker_resources(use_gpus, workers, num_cpus)
    import ray
    from ray.util import ActorPool

    summary = RunSummary()
    if not ids:
        return summary
    Progress, Worker = _actor_classes()
    env, count = _worker_env(), min(workers, len(ids))
    key = (ray.get_runtime_context().gcs_address, tuple(sorted(resources.items())), tuple(sorted(env.items())))

    def start() -> _Workers:
        actors = [
            Worker.options(
                **resources, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS,
                scheduling_strategy="SPREAD", runtime_env={"env_vars": env},
            ).remote()
            for _ in range(count)
        ]  # fmt: skip
        return _Workers(key, actors, Progress.remote())

    held, warm = _take_workers(key, count, start)
    actors, tracker = held.actors[:count], held.progress
    options = {"flush_frames": int(flush_frames), "stale_after": float(stale_after)}
    job_ref = ray.put(make_job)  # held until the run ends: a restarted worker rebuilds its job from it
    run_id = uuid.uuid4().hex
    run_args = (run_id, job_ref, dataset.name, options, tracker)
    record = None
    reusable = False
    total = sum(n or 0 for n in counts)
    bar = tqdm(total=total, desc=f"{job.name} on {len(actors)} Ray worker(s)", unit="frame", disable=not progress)
    timings: dict[str, float] = defaultdict(float)
    try:
        try:  # up, models built: the job is sound
            identities = ray.get([a.begin.remote(*run_args) for a in actors])
        except Exception as e:  # noqa: BLE001 - the job's own error (e.g. a missing model), re-raised as itself
            raise _cause(e) from None
        if not warm:
            held.pids = [who["pid"] for who in identities]
        if on_start is not None:
            on_start({"progress": tracker, "workers": actors, "identities": identities})
        if job.prepare is not None:
            job.prepare(dataset)
        record = fruns.begin_run(samples, config)
        summary.run_key = record.key
        pool = ActorPool(actors)
        for sample_id in ids:
            pool.submit(lambda a, sid: a.process.remote(*run_args, sid, record.key), sample_id)
        shown = finished = 0  # frames on the bar; frames of the videos finished

        def show(frames: int) -> None:
            nonlocal shown
            frames = min(total, max(frames, finished))  # a redone video's first attempt counted too
            if frames != shown:
                bar.update(frames - shown)
                shown = frames
                if progress_callback is not None:
                    progress_callback(frames / max(1, total), f"{frames}/{total} frames")

        while pool.has_next():
            try:
                out = pool.get_next_unordered(timeout=0.5)
            except TimeoutError:
                out = None
            except Exception as e:  # noqa: BLE001 - a worker's error, re-raised as itself
                raise _cause(e) from None
            if out is not None:
                finished += int((out["entry"] or {}).get("frames") or 0)
            show(ray.get(tracker.state.remote())[0])
            if out is None:
                continue
            sample_id, entry, part = out["sample_id"], out["entry"], out["summary"]
            for k, v in out["timings"].items():
                timings[k] += v
            summary.failed.update(part.failed)
            if entry is None:
                summary.skipped.append(sample_id)
                continue
            record.videos[sample_id] = entry
            record.save()
            if entry["status"] == "done":
                summary.processed.append(sample_id)
                summary.frames += int(entry.get("frames") or 0)
        dataset.reload()
        reusable = True
    finally:
        bar.close()
        if reusable:  # the workers drop the run's models and wait for the next run
            try:
                ray.get([a.end.remote() for a in held.actors], timeout=60)
            except Exception:  # noqa: BLE001 - a worker that cannot answer is not kept
                reusable = False
        if reusable:
            _keep_workers(held)
        else:
            held.kill()
        if record is not None:
            for sample_id in set(ids) - set(record.videos):  # interrupted: free this run's claims for a rerun
                release_claim(dataset, sample_id, job, record.key)
            if record.videos:
                record.finish(timings)
            else:
                record.delete()
                summary.run_key = None
    summary.timings = dict(timings)
    if summary.failed and raise_on_error:
        names = "; ".join(f"{sid}: {msg}" for sid, msg in summary.failed.items())
        raise BadInputError(f"{job.name}: {len(summary.failed)} video(s) failed: {names}")
    return summary
