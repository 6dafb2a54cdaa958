"""Long and crowded videos: throughput and peak memory against video length, each run in a fresh process.

    python bench/bench_long.py                      # the default plan (about an hour on 2 busy cores)
    python bench/bench_long.py --plan quick         # a few minutes
    python bench/bench_long.py --runs full:6:1 dettrack:6:20 full:60:0.5   # STAGES:PEOPLE_IN_VIEW:MINUTES

Videos are synthetic crowds (:mod:`fiftyone_posetrack.synth`) rendered straight
into ffmpeg, 640x360 at 25 fps: one minute-long scene after another (each
minute a fresh ``random_scene``, calibrated so that about PEOPLE_IN_VIEW people
are in view on average), so a 20-minute video is 30,000 frames and never lies
in memory. Each run labels one video with :func:`fiftyone_posetrack.fo.run.run`
(chunked bulk writes, ``flush_frames=500``) into a private ``mongod`` started
by this script, in a fresh Python process whose RSS is sampled at every bulk
write. STAGES is

- ``full``: the whole pipeline (RTMDet-nano, DeepSORT motion-only, optical-flow
  box and pose smoothing, MoveNet; ``PipelineConfig(reid=None)``);
- ``dettrack``: detection, tracking and box smoothing, with a pose stage that
  returns no joints (so the run measures the streaming, the tracker and the
  database writes without MoveNet's cost per person);
- ``stages``: the stage-by-stage functions (``detect_persons`` then
  ``track_detections``), which read a video's input field back from the
  database.

The baseline of each table is the shortest run of the same STAGES and people:
``RSS ratio`` = peak RSS / its peak RSS (1.0 = memory flat in the length), and
``time ratio`` = seconds / (its seconds x length ratio) (1.0 = linear time).
The mongod's own RSS (a separate process: the labels live there) is shown too.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS = 640, 360, 25.0
SEGMENT = 1500  # frames per scene (one minute at 25 fps)
VISIBLE_PER_WALKER = 0.16  # mean people in view per walker of a one-minute random_scene at 640x360

PLANS = {
    "default": ["full:6:1", "full:6:5", "dettrack:6:1", "dettrack:6:5", "dettrack:6:20", "stages:6:1", "stages:6:5",
                "full:60:0.5"],
    "quick": ["full:6:0.25", "full:6:0.5", "dettrack:6:0.25", "dettrack:6:1", "stages:6:0.25", "stages:6:1",
              "full:60:0.1"],
}  # fmt: skip


# --------------------------------------------------------------------------- videos


def render_long(path: pathlib.Path, minutes: float, people: int, seed: int = 0) -> dict:
    """Renders ``minutes`` of crowd, one one-minute scene after another, straight into ffmpeg."""
    import numpy as np

    from fiftyone_posetrack.synth.crowd import iter_frames
    from fiftyone_posetrack.synth.scene import random_scene
    from fiftyone_posetrack.synth.writer import H264Writer

    total = int(round(minutes * 60 * FPS))
    walkers = max(1, round(people / VISIBLE_PER_WALKER))
    visible, start = [], time.perf_counter()
    with H264Writer(path, WIDTH, HEIGHT, FPS) as writer:
        for k, first in enumerate(range(0, total, SEGMENT)):
            # always a one-minute scene (the density depends on the scene's length), cut where the video ends
            scene = random_scene(walkers, SEGMENT, WIDTH, HEIGHT, seed=seed * 1000 + k, fps=FPS)
            for frame, _ in zip(iter_frames(scene), range(total - first)):
                writer.write(frame.image)
                visible.append(len(frame.truth.track_ids))
    return {"frames": total, "visible": float(np.mean(visible)), "seconds": time.perf_counter() - start}


def video_for(workdir: pathlib.Path, minutes: float, people: int) -> tuple[pathlib.Path, dict]:
    path = workdir / f"crowd-{people}p-{minutes:g}min.mp4"
    info_path = path.with_suffix(".json")
    if not (path.is_file() and info_path.is_file()):
        info = render_long(path, minutes, people)
        info_path.write_text(json.dumps(info))
        print(f"  rendered {path.name}: {info['frames']} frames, {info['visible']:.1f} people in view on average, "
              f"{info['seconds']:.0f} s", flush=True)  # fmt: skip
    return path, json.loads(info_path.read_text())


# --------------------------------------------------------------------------- database


def start_mongod(root: pathlib.Path) -> tuple[subprocess.Popen, int]:
    """A private mongod on a free loopback port (never the user's FiftyOne database)."""
    import importlib.util

    mongod = pathlib.Path(importlib.util.find_spec("fiftyone").submodule_search_locations[0]) / "db" / "bin" / "mongod"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "db").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(mongod), "--dbpath", str(root / "db"), "--port", str(port), "--bind_ip", "127.0.0.1"],
        stdout=open(root / "mongod.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"mongod did not start: {(root / 'mongod.log').read_text()[-2000:]}")
            time.sleep(0.2)


def rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --------------------------------------------------------------------------- one run (child process)


class NoPose:
    """A pose stage that estimates nothing (NaN joints): detection + tracking runs."""

    num_keypoints = 17

    def estimate_batch(self, frames, boxes_per_frame):
        import numpy as np

        return [(np.full((len(b), 17, 2), np.nan), np.zeros((len(b), 17))) for b in boxes_per_frame]


def child(spec: dict) -> dict:
    import fiftyone as fo

    from fiftyone_posetrack.fo.dataset import add_videos
    from fiftyone_posetrack.fo.run import run
    from fiftyone_posetrack.pipeline import PipelineConfig, PoseTrackingPipeline

    curve = []  # (fraction done, RSS MiB) at every bulk write

    def sample(fraction, label):
        curve.append((round(float(fraction), 4), round(rss_mib(), 1)))

    config = PipelineConfig(models_dir=spec["models_dir"], reid=None)
    dataset = fo.Dataset()
    add_videos(dataset, [spec["video"]])
    start = time.perf_counter()
    stages = spec["stages"]
    if stages == "full":
        summary = run(dataset, config, progress=False, flush_frames=spec["flush"], progress_callback=sample)
    elif stages == "dettrack":
        pipeline = PoseTrackingPipeline(config.replace(pose_smoothing="none"), pose_estimator=NoPose())
        summary = run(dataset, pipeline=pipeline, progress=False, flush_frames=spec["flush"], progress_callback=sample)
    elif stages == "stages":
        from fiftyone_posetrack.fo.stages import detect_persons, track_detections

        detector = PoseTrackingPipeline(config).detector
        detect_persons(dataset, detector, "raw", progress=False, flush_frames=spec["flush"],
                       progress_callback=lambda f, label: sample(f / 2, label))  # fmt: skip
        summary = track_detections(dataset, "raw", "tracked", progress=False, flush_frames=spec["flush"],
                                   progress_callback=lambda f, label: sample(0.5 + f / 2, label))  # fmt: skip
    else:
        raise SystemExit(f"unknown stages {stages!r}")
    seconds = time.perf_counter() - start
    return {
        "frames": summary.frames,
        "seconds": seconds,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "curve": curve,
        "timings": {k: round(v, 1) for k, v in summary.timings.items()},
    }


# --------------------------------------------------------------------------- driver


def _at(curve, fraction) -> float:
    """RSS at the first sample at or after ``fraction`` of the run."""
    for f, rss in curve:
        if f >= fraction:
            return rss
    return curve[-1][1] if curve else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", default=str(REPO.parent / "shared" / "models"))
    parser.add_argument("--plan", choices=sorted(PLANS), default="default")
    parser.add_argument("--runs", nargs="*", help="STAGES:PEOPLE:MINUTES runs instead of a plan")
    parser.add_argument("--workdir", default=None, help="keep the rendered videos here (reused when present)")
    parser.add_argument("--flush", type=int, default=500, help="frames per bulk write")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    runs = [r.split(":") for r in (args.runs or PLANS[args.plan])]
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="bench-long-"))
    workdir.mkdir(parents=True, exist_ok=True)
    dbroot = pathlib.Path(tempfile.mkdtemp(prefix="bench-long-db-"))
    mongod, port = start_mongod(dbroot)
    env = dict(os.environ, FIFTYONE_DATABASE_URI=f"mongodb://127.0.0.1:{port}", FIFTYONE_DO_NOT_TRACK="true",
               FIFTYONE_DATABASE_VALIDATION="false", FIFTYONE_SHOW_PROGRESS_BARS="false")  # fmt: skip
    print(f"videos in {workdir}; private mongod on port {port}; {os.cpu_count()} CPU(s)\n", flush=True)
    results = []
    try:
        for stages, people, minutes in runs:
            path, info = video_for(workdir, float(minutes), int(people))
            spec = {"video": str(path), "stages": stages, "models_dir": args.models_dir, "flush": args.flush}
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                                  capture_output=True, text=True)  # fmt: skip
            if proc.returncode != 0:
                print(f"  {stages} {minutes} min failed:\n{proc.stderr[-3000:]}", flush=True)
                continue
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            out.update(stages=stages, people=int(people), minutes=float(minutes), visible=info["visible"],
                       mongod_rss=rss_mib(mongod.pid))  # fmt: skip
            results.append(out)
            print(f"  {stages:9s} {minutes:>5s} min, {info['visible']:4.1f} people: {out['frames']} frames in "
                  f"{out['seconds']:.0f} s ({out['frames'] / out['seconds']:.1f} frames/s), peak RSS "
                  f"{out['peak_rss']:.0f} MiB; stages (s) {out['timings']}", flush=True)  # fmt: skip
    finally:
        mongod.terminate()
        mongod.wait(timeout=30)
        shutil.rmtree(dbroot, ignore_errors=True)
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report(results)


def report(results: list[dict]) -> None:
    print("\n| stages | people in view | minutes | frames | seconds | frames/s | peak RSS MiB | RSS at 10% / 50% / 100% "
          "| RSS ratio | time ratio | mongod RSS MiB |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    base = {}
    for r in sorted(results, key=lambda r: (r["stages"], r["people"], r["minutes"])):
        b = base.setdefault((r["stages"], r["people"]), r)
        rss_ratio = r["peak_rss"] / b["peak_rss"]
        time_ratio = r["seconds"] / (b["seconds"] * r["frames"] / b["frames"])
        curve = " / ".join(f"{_at(r['curve'], f):.0f}" for f in (0.1, 0.5, 1.0))
        print(f"| {r['stages']} | {r['visible']:.1f} | {r['minutes']:g} | {r['frames']} | {r['seconds']:.0f} | "
              f"{r['frames'] / r['seconds']:.1f} | {r['peak_rss']:.0f} | {curve} | {rss_ratio:.2f} | "
              f"{time_ratio:.2f} | {r['mongod_rss']:.0f} |")  # fmt: skip
    full = [r for r in results if r["stages"] == "full"]
    for people in sorted({r["people"] for r in full}):
        r = max((x for x in full if x["people"] == people), key=lambda x: x["frames"])
        fps = r["frames"] / r["seconds"]
        print(f"\nwhole pipeline, {r['visible']:.0f} people in view: {fps:.1f} frames/s here, so a 20-minute "
              f"video (30,000 frames) takes about {30000 / fps / 60:.0f} min")  # fmt: skip


if __name__ == "__main__":
    main()
