"""Ray engine against the in-process engine: 4 equal videos, in one run of this script.

    nice python bench/bench_ray.py                           # 4 videos x 120 frames, 640x360
    nice python bench/bench_ray.py --frames 40 --width 320 --height 192   # a quick look
    python bench/bench_ray.py --device cuda --json out.json   # GPU machine: one worker per GPU (gpu_check.sh)

Both engines label the same 4 copies of one synthetic crowd video
(:mod:`fiftyone_posetrack.synth`) with the same configuration (RTMDet-nano,
ByteTrack motion-only, MoveNet, no smoothing; ``device="cpu"``) into a private
``mongod`` started by this script:

- **in-process**: ``run(view, config)`` in this process, pinned to one core
  (``sched_setaffinity``: its model threads share that core);
- **Ray**: ``run_on_ray`` with 2 workers on a local Ray instance
  (``ray.init(num_cpus=2)``), each worker process (all its threads) pinned to
  its own core once it is up.

- **an existing cluster** (``--cluster``): ``ray start --head --num-cpus 2`` is
  run before the in-process part (outside the timings), and the Ray run joins it
  (``ray.init(address="auto")``), as a run on a cluster that is already up
  does: the fixed cost is then the workers' start, not Ray's;
- **ceiling** (``--ceiling``): two plain processes, no Ray, each pinned to its
  own core and running ``run`` on half the videos at once: the most any engine
  can get from two cores here (both start after their imports, at a barrier).

Then a second Ray run labels the videos again: it takes over the first run's
workers, still up (``WORKER_IDLE_SECONDS``), as the next run of a Python
session or a delegated-operation executor does; its speed-up is printed beside
the first one's.

Printed: each engine's wall time, the speed-up (in-process seconds / Ray
seconds; the issue's target is >= 1.7x on 2 cores), the labels' equality, and
Ray's fixed costs: per run (starting Ray, starting the workers and building
their models, tearing down; = Ray wall time - the busiest worker's task
seconds) and per video (a worker's task seconds - its video's seconds: the
per-video checks, claim and record). The load
average is printed: on a shared machine the numbers move with it.

With ``--device cuda`` nothing is pinned: the in-process run uses one GPU, the
Ray run one worker per GPU of the machine (``num_gpus=1`` each, Ray sets each
worker's ``CUDA_VISIBLE_DEVICES``), and the video count defaults to 4 per GPU.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def pin_process(pid: int, cores: set[int]) -> None:
    """Pins every thread of process ``pid`` to ``cores`` (threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:
            pass  # a thread that just ended


def labels(dataset, fields) -> list:
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "_id"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    docs = dataset._frame_collection.find({}, {"frame_number": 1, **{f: 1 for f in fields}})
    return sorted(repr(strip({f: d.get(f) for f in fields})) + f"#{d['frame_number']}" for d in docs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=None, help="default: 4 (cpu), 4 per GPU (cuda)")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--workers", type=int, default=None, help="default: 2 (cpu), one per GPU (cuda)")
    parser.add_argument("--device", default="cpu", help="cpu (pinned cores) or cuda (one worker per GPU)")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    parser.add_argument("--cluster", action="store_true", help="join a Ray head started before the timings")
    parser.add_argument("--ceiling", action="store_true", help="also run two plain processes, one core each (no Ray)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: CORE:DIR of a --ceiling process
    parser.add_argument("--models-dir", default=os.environ.get("POSETRACK_MODELS_DIR", str(REPO.parent / "shared" / "models")))
    args = parser.parse_args()

    if args.child:
        return _child(args)
    from bench_long import start_mongod

    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-ray-"))
    mongod, port = start_mongod(root)
    os.environ["FIFTYONE_DATABASE_URI"] = f"mongodb://127.0.0.1:{port}"
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
    head = None
    if args.cluster:
        import subprocess

        ray_bin = pathlib.Path(sys.executable).with_name("ray")
        head = [str(ray_bin), "start", "--head", f"--num-cpus={args.workers or 2}", "--include-dashboard=false",
                "--disable-usage-stats"]  # fmt: skip
        subprocess.run(head, check=True, env=dict(os.environ), capture_output=True)
    try:
        return _bench(args, root, mongod.pid)
    finally:
        if head is not None:
            subprocess.run([head[0], "stop", "--force"], capture_output=True)
        mongod.terminate()
        mongod.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def _config(args):
    from fiftyone_posetrack.pipeline import PipelineConfig

    return PipelineConfig(
        models_dir=args.models_dir, detector="rtmdet-nano-person", pose="movenet-lightning-int8", reid=None,
        tracker="bytetrack", box_smoothing=False, pose_smoothing="none", device=args.device, det_tile_size=0,
    )  # fmt: skip


def _child(args) -> int:
    """A ``--ceiling`` process: pinned to its core, labels its dataset's videos after the barrier."""
    import fiftyone as fo
    from fiftyone_posetrack.fo.run import run

    core, _, where = args.child.partition(":")
    where = pathlib.Path(where)
    os.sched_setaffinity(0, {int(core)})
    dataset = fo.load_dataset(f"bench-ray-ceiling-{core}")
    (where / f"ready-{core}").touch()
    while not (where / "go").exists():
        time.sleep(0.01)
    start = time.perf_counter()
    run(dataset, _config(args), progress=False)
    (where / f"seconds-{core}").write_text(str(time.perf_counter() - start))
    return 0


def _ceiling(args, root: pathlib.Path, paths: list[str], dataset) -> float:
    """Wall seconds of two plain processes on one core each, half the videos each, started together."""
    import subprocess

    cores = sorted(os.sched_getaffinity(0))[:2]
    where = root / "ceiling"
    where.mkdir()
    children = []
    for i, core in enumerate(cores):
        ds = dataset(f"bench-ray-ceiling-{core}", paths[i :: len(cores)])
        ds.persistent = True
        cmd = [sys.executable, __file__, "--child", f"{core}:{where}", "--device", args.device,
               "--models-dir", args.models_dir]  # fmt: skip
        children.append(subprocess.Popen(cmd, env=dict(os.environ)))
    while not all((where / f"ready-{c}").exists() for c in cores):
        if any(c.poll() not in (None, 0) for c in children):
            raise RuntimeError("a --ceiling process failed before the barrier")
        time.sleep(0.05)
    start = time.perf_counter()
    (where / "go").touch()
    if any(c.wait() != 0 for c in children):
        raise RuntimeError("a --ceiling process failed")
    wall = time.perf_counter() - start
    each = [float((where / f"seconds-{c}").read_text()) for c in cores]
    print(f"ceiling (2 plain processes, 1 core each, no Ray): {wall:7.2f} s (each {each[0]:.2f} / {each[1]:.2f} s)")
    return wall


def task_seconds_per_worker(videos: dict) -> dict[str, float]:
    """``{worker: its tasks' seconds}`` from a run record's videos."""
    out: dict[str, float] = {}
    for v in videos.values():
        out[v["worker"]] = out.get(v["worker"], 0.0) + v["task_seconds"]
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bench(args, root: pathlib.Path, mongod_pid: int) -> int:
    import ray

    import fiftyone as fo
    from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset
    from fiftyone_posetrack.fo.engine_ray import release_ray_workers, run_on_ray
    from fiftyone_posetrack.fo.run import ray_jobs, run
    from fiftyone_posetrack.fo.runs import get_run
    from fiftyone_posetrack.synth import render_crowd

    gpu = args.device != "cpu"
    if gpu:
        import torch

        gpus = torch.cuda.device_count()
        args.workers = args.workers or max(1, gpus)
    args.workers = args.workers or 2
    args.videos = args.videos or (4 * args.workers if gpu else 4)
    config = _config(args)
    first = render_crowd(root / "v0", people=6, frames=args.frames, width=args.width, height=args.height, seed=3)
    paths = [str(first.video_path)]
    for i in range(1, args.videos):
        (root / f"v{i}").mkdir()
        shutil.copyfile(first.video_path, root / f"v{i}" / "video.mp4")
        paths.append(str(root / f"v{i}" / "video.mp4"))
    fields = (config.detections_field, config.keypoints_field)

    def dataset(name, videos=paths):
        ds = get_or_create_dataset(name)
        add_videos(ds, videos)
        return ds

    print(f"{args.videos} videos x {args.frames} frames ({args.width}x{args.height}), load average {os.getloadavg()}")
    # ------------------------------------------------------------------ in-process, one core
    everything = os.sched_getaffinity(0)
    base = dataset("bench-ray-inprocess")
    if not gpu:
        os.sched_setaffinity(0, {min(everything)})
    db_cpu, own_cpu = cpu_seconds(mongod_pid), cpu_seconds(os.getpid())
    start = time.perf_counter()
    summary = run(base, config, progress=False)
    t_in = time.perf_counter() - start
    db_cpu_in, own_cpu = cpu_seconds(mongod_pid) - db_cpu, cpu_seconds(os.getpid()) - own_cpu
    os.sched_setaffinity(0, everything)
    in_videos = get_run(base, summary.run_key)["videos"]
    print(f"in-process ({'1 GPU' if gpu else '1 core'}):           {t_in:7.2f} s  ({summary.frames / t_in:.1f} frames/s; "
          f"its own CPU {own_cpu:.2f} s; mongod used {db_cpu_in:.2f} CPU s, on the other core)")  # fmt: skip
    db_cpu = cpu_seconds(mongod_pid)
    t_ceiling = _ceiling(args, root, paths, dataset) if args.ceiling and not gpu else None
    if t_ceiling:
        print(f"  mongod used {cpu_seconds(mongod_pid) - db_cpu:.2f} CPU s during the ceiling run")
        print(f"ceiling speed-up: {t_in / t_ceiling:.2f}x (two cores, no engine)")

    # ------------------------------------------------------------------ Ray, one core per worker
    ds = dataset("bench-ray-ray")
    cores = sorted(everything)

    def pin(handles):
        for i, who in enumerate(handles["identities"]):
            print(f"  worker {who['worker']} on node {who['node'][:8]}, CUDA_VISIBLE_DEVICES={who['cuda_visible_devices']}")
            if not gpu:
                pin_process(who["pid"], {cores[i % len(cores)]})

    start = time.perf_counter()
    resources = {} if gpu else {"num_cpus": args.workers}
    if args.cluster:
        ray.init(address="auto", logging_level="WARNING", log_to_driver=False)
    else:
        ray.init(**resources, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    t_init = time.perf_counter() - start
    summary = run_on_ray(ds, *ray_jobs(config), workers=args.workers, use_gpus=gpu, progress=False, on_start=pin)
    t_ray = time.perf_counter() - start
    ray_videos = get_run(ds, summary.run_key)["videos"]
    print(f"Ray ({args.workers} workers, 1 {'GPU' if gpu else 'core'} each): {t_ray:7.2f} s  ({summary.frames / t_ray:.1f} frames/s), "
          f"of which ray.init {t_init:.2f} s ({'joining a running head' if args.cluster else 'a new local instance'})")  # fmt: skip
    print(f"speed-up: {t_in / t_ray:.2f}x (target >= 1.7x)")
    same = labels(base, fields) == labels(ds, fields)
    print(f"labels identical: {same}")
    busiest = task_seconds_per_worker(ray_videos)
    per_run = t_ray - max(busiest.values())
    per_video = sum(v["task_seconds"] - v["seconds"] for v in ray_videos.values()) / len(ray_videos)
    slower = sum(v["seconds"] for v in ray_videos.values()) / sum(v["seconds"] for v in in_videos.values())
    print(f"Ray fixed cost per run: {per_run:.2f} s (ray.init, workers up with their models, teardown)")
    print(f"Ray cost per video: {per_video:.2f} s (a worker's task seconds - its video's seconds: the per-video "
          f"checks, claim and record); a video's own seconds on Ray / in-process: {slower:.2f}")  # fmt: skip
    print(f"videos per worker: { {w: sum(1 for v in ray_videos.values() if v['worker'] == w) for w in busiest} }")

    # ------------------------------------------------------------------ Ray again: the next run takes the warm workers
    warm_ds = dataset("bench-ray-warm")
    start = time.perf_counter()
    warm = run_on_ray(warm_ds, *ray_jobs(config), workers=args.workers, use_gpus=gpu, progress=False, on_start=pin)
    t_warm = time.perf_counter() - start
    warm_videos = get_run(warm_ds, warm.run_key)["videos"]
    warm_busiest = task_seconds_per_worker(warm_videos)
    warm_per_run = t_warm - max(warm_busiest.values())
    warm_same = labels(base, fields) == labels(warm_ds, fields)
    took_over = set(warm_busiest) == set(busiest)
    print(f"Ray, the next run on the warm workers:  {t_warm:7.2f} s  ({warm.frames / t_warm:.1f} frames/s); "
          f"the same worker processes: {took_over}; labels identical: {warm_same}")  # fmt: skip
    print(f"speed-up, warm workers: {t_in / t_warm:.2f}x (target >= 1.7x); fixed cost per run {warm_per_run:.2f} s")
    same = same and warm_same
    print(f"load average after: {os.getloadavg()}")
    if args.json:
        import json

        pathlib.Path(args.json).write_text(json.dumps({
            "device": args.device, "videos": args.videos, "frames": args.frames, "size": [args.width, args.height],
            "workers": args.workers, "cluster": args.cluster, "inprocess_s": t_in, "ray_s": t_ray, "ray_init_s": t_init,
            "speedup": t_in / t_ray, "ceiling_s": t_ceiling, "labels_identical": same, "fixed_cost_per_run_s": per_run,
            "cost_per_video_s": per_video, "video_seconds_ratio": slower, "videos_record": ray_videos, "loadavg": os.getloadavg(),
            "warm_ray_s": t_warm, "warm_speedup": t_in / t_warm, "warm_fixed_cost_per_run_s": warm_per_run,
            "warm_took_over": took_over,
        }, indent=1))  # fmt: skip
    release_ray_workers()
    ray.shutdown()
    for name in fo.list_datasets("bench-ray-*"):
        fo.delete_dataset(name)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
