"""Several runs on one dataset: `fiftyone delegated launch` workers sharing one MongoDB split the videos.

Everything runs in separate processes against a standalone ``mongod`` on a
free loopback port (``FIFTYONE_DATABASE_URI``), as on several machines: this
file is also the driver script (``python tests/test_scaleout.py CMD ...``)
that creates the dataset, queues the operator and reports the state.

Scale-out proper is the Ray engine (``tests/test_ray.py``); what is left here
is the per-video claim as the guard between two drivers on one dataset:

1. Two workers, two queued runs of the operator: every video is labelled
   exactly once, by one of the two runs (its run record), and both take part.
2. A worker is killed (SIGKILL) in the middle of a video: the video is left
   ``running`` with part of its labels; once its claim is stale, a rerun on
   another worker clears the partial labels and redoes the video, whose labels
   then equal those of an uninterrupted run of the same video.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = pathlib.Path(__file__).resolve()
PLUGIN = "@posetrack/pose-tracking"
RUN = f"{PLUGIN}/run_pose_tracking"


# --------------------------------------------------------------------------- driver (subprocess side)


def _fast(models: str, **extra) -> dict:
    params = dict(
        detector="rtmdet-nano-person", pose="movenet-lightning-int8", reid="none", tracker="bytetrack",
        models_dir=models, batch_size=4, box_smoothing=False, pose_smoothing="none",
    )  # fmt: skip
    return {**params, **extra}


def driver(argv: list[str]) -> dict:
    import fiftyone as fo
    import fiftyone.operators as foo
    from fiftyone.operators.delegated import DelegatedOperationService

    cmd = argv[0]
    if cmd == "setup":  # setup NAME VIDEOS_DIR COUNT FRAMES SAME
        from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset
        from fiftyone_posetrack.fo.plugin import install_plugin
        from fiftyone_posetrack.synth import render_crowd

        install_plugin(fo.config.plugins_dir)
        name, root, count, frames, same = argv[1], pathlib.Path(argv[2]), int(argv[3]), int(argv[4]), argv[5] == "1"
        paths = []
        for i in range(count):
            out = root / f"v{i}"
            if same and i:
                out.mkdir(parents=True)
                shutil.copyfile(paths[0], out / "video.mp4")  # a copy: hard links are one file to add_videos
            else:
                render_crowd(out, people=3, frames=frames, width=320, height=192, seed=i)
            paths.append(str(out / "video.mp4"))
        dataset = get_or_create_dataset(name)
        add_videos(dataset, paths)
        return {"videos": len(dataset)}
    if cmd == "queue":  # queue NAME PARAMS_JSON
        result = foo.execute_operator(
            RUN, ctx={"dataset": argv[1], "params": json.loads(argv[2]), "request_delegation": True}
        )
        return {"op": str(result.result["id"])}
    if cmd == "ops":  # ops: every run of the operator
        ops = DelegatedOperationService().list_operations(operator=RUN)
        return {
            "ops": [
                {
                    "id": str(op.id),
                    "state": str(op.run_state),
                    "result": op.result.result if op.result else None,
                    "error": op.result.error if op.result else None,
                }
                for op in ops
            ]
        }
    if cmd == "state":  # state NAME: per video status, worker and labelled frames
        from bson import ObjectId

        dataset = fo.load_dataset(argv[1])
        dataset.reload()
        schema = dataset.get_field_schema()
        fields = [f for f in ("pred_detections_status", "pred_detections_run", "pred_detections_claimed_at") if f in schema]
        has_labels = dataset.has_frame_field("pred_keypoints")
        staging = dataset._frame_collection.database["posetrack_staging"]
        out = []
        for sample in dataset.select_fields(fields):
            labels = dataset.select(sample.id).values("frames.pred_keypoints")[0] if has_labels else []
            out.append(
                {
                    "id": sample.id,
                    "video": os.path.basename(os.path.dirname(sample.filepath)),
                    "frames": sample.metadata.total_frame_count,
                    "status": sample[fields[0]] if len(fields) > 0 else None,
                    "run": sample[fields[1]] if len(fields) > 1 else None,
                    "claimed_at": sample[fields[2]] if len(fields) > 2 else None,
                    # written frames: in the frame documents, or still staged (swapped in when the video is complete)
                    "labelled": sum(x is not None for x in labels) + staging.count_documents(
                        {"sample": ObjectId(sample.id), "pred_keypoints": {"$ne": None}}
                    ),
                }
            )
        return {"videos": out}
    if cmd == "labels":  # labels NAME SAMPLE_ID: the tracked boxes, frame by frame
        dataset = fo.load_dataset(argv[1])
        boxes = dataset.select(argv[2]).values("frames.pred_detections.detections")[0]
        return {"boxes": [[(d.index, [round(v, 6) for v in d.bounding_box]) for d in f or []] for f in boxes]}
    raise SystemExit(f"unknown command {cmd}")


# --------------------------------------------------------------------------- test side


class Cluster:
    """A standalone mongod plus helpers to run the driver and `fiftyone delegated launch` workers."""

    def __init__(self, root: pathlib.Path, models: str):
        from conftest import start_mongod  # imported here: the driver process runs this file too

        self.root, self.models = root, models
        self.mongod, self.port = start_mongod(root, timeout=30)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_")}
        env.update(
            FIFTYONE_DATABASE_URI=f"mongodb://127.0.0.1:{self.port}",
            FIFTYONE_DATABASE_VALIDATION="false",
            FIFTYONE_DO_NOT_TRACK="true",
            FIFTYONE_SHOW_PROGRESS_BARS="false",
            FIFTYONE_PLUGINS_DIR=str(root / "plugins"),
            FIFTYONE_DEFAULT_DATASET_DIR=str(root / "datasets"),
            FIFTYONE_OPERATOR_TIMEOUT="600",
            POSETRACK_OFFLINE="1",
            PYTHONPATH=os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]),
        )
        self.env = env
        self.workers: list[subprocess.Popen] = []
        self.driver_log = open(root / "driver.log", "wb")
        self.driver = subprocess.Popen(
            [sys.executable, str(HERE), "serve"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.driver_log, text=True,
        )  # fmt: skip

    def drive(self, *args) -> dict:
        """Runs a driver command in the driver process (which imported FiftyOne once)."""
        self.driver.stdin.write(json.dumps([str(a) for a in args]) + "\n")
        self.driver.stdin.flush()
        line = self.driver.stdout.readline()
        assert line, f"driver {args[0]} died:\n{(self.root / 'driver.log').read_text()[-3000:]}"
        out = json.loads(line)
        assert "error" not in out, f"driver {args[0]} failed:\n{out['error']}"
        return out

    def worker(self, name: str) -> subprocess.Popen:
        exe = os.path.join(os.path.dirname(sys.executable), "fiftyone")
        log = open(self.root / f"{name}.log", "wb")
        proc = subprocess.Popen([exe, "delegated", "launch"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        proc.name = name
        self.workers.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def wait_ops(self, count: int, timeout: float) -> list[dict]:
        """Waits until ``count`` runs are COMPLETED (fails on a FAILED run)."""
        deadline = time.time() + timeout
        while True:
            ops = self.drive("ops")["ops"]
            failed = [op for op in ops if "failed" in op["state"].lower()]
            assert not failed, f"a run failed: {failed[0]['error']}\n" + "\n".join(self.log(w.name) for w in self.workers)
            done = [op for op in ops if "completed" in op["state"].lower()]
            if len(done) >= count:
                return done
            assert time.time() < deadline, f"runs not done after {timeout} s: {ops}\n" + "\n".join(
                self.log(w.name) for w in self.workers
            )
            time.sleep(1.0)

    def stop(self) -> None:
        from conftest import stop_mongod

        if self.driver.poll() is None:
            self.driver.stdin.close()
            self.driver.wait(timeout=30)
        self.driver_log.close()
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        stop_mongod(self.mongod)


@pytest.fixture()
def cluster(shared_dir, tmp_path_factory):
    root = pathlib.Path(tempfile.mkdtemp(prefix="scaleout-", dir=tmp_path_factory.getbasetemp()))
    c = Cluster(root, str(shared_dir / "models"))
    yield c
    c.stop()
    shutil.rmtree(root / "db", ignore_errors=True)


@pytest.mark.slow
def test_two_workers_split_the_videos(cluster):
    assert cluster.drive("setup", "split", cluster.root / "videos", 6, 24, 0)["videos"] == 6
    a, b = cluster.worker("worker-a"), cluster.worker("worker-b")
    params = _fast(cluster.models, stale_after=120.0, flush_frames=10)
    start = time.time()
    cluster.drive("queue", "split", json.dumps(params))
    cluster.drive("queue", "split", json.dumps(params))
    ops = cluster.wait_ops(2, timeout=240)
    print(f"\nboth runs completed {time.time() - start:.1f} s after queueing")
    for w in (a, b):
        w.send_signal(signal.SIGTERM)
    state = cluster.drive("state", "split")["videos"]

    print("\nscale-out: which run labelled which video")
    for v in state:
        print(f"  {v['video']}: {v['status']} by {v['run']} ({v['labelled']}/{v['frames']} frames labelled)")
    by_op = {op["result"]["worker"]: op["result"]["processed_ids"] for op in ops}
    for op in ops:
        r = op["result"]
        print(f"  run on {r['worker']}: {len(r['processed_ids'])} video(s), {r['frames']} frames, seconds {r['timings']}")

    ids = [v["id"] for v in state]
    done = [i for ids_ in by_op.values() for i in ids_]
    assert sorted(done) == sorted(ids), "every video processed exactly once, none lost"
    assert len(by_op) == 2 and all(by_op.values()), f"both workers took part: {by_op}"
    for v in state:
        assert v["status"] == "done" and v["labelled"] == v["frames"], v
        run_of = {op["result"]["run_key"]: op["result"]["processed_ids"] for op in ops}
        assert v["id"] in run_of[v["run"]], "the video names the run record of the run that processed it"
    assert sum(op["result"]["skipped"] for op in ops) == len(ids), "each run skipped the other's videos"
    for op, other in ((ops[0], ops[1]), (ops[1], ops[0])):
        held = op["result"]["claimed"]  # skipped while the other run held them (the rest: done already)
        assert set(held) <= set(other["result"]["processed_ids"]), (held, other["result"]["processed_ids"])
        assert set(held.values()) <= {other["result"]["run_key"]}, held


@pytest.mark.slow
def test_a_killed_worker_s_video_is_redone_cleanly(cluster):
    frames = 30
    cluster.drive("setup", "kill", cluster.root / "videos", 3, frames, 1)  # three copies of one video
    a = cluster.worker("worker-a")
    params = _fast(cluster.models, stale_after=3.0, flush_frames=5)
    cluster.drive("queue", "kill", json.dumps(params))
    deadline = time.time() + 120
    while True:  # kill worker A in the middle of a video
        running = [v for v in cluster.drive("state", "kill")["videos"] if v["status"] == "running" and 0 < v["labelled"] < frames]
        if running:
            a.send_signal(signal.SIGKILL)
            a.wait()
            break
        assert time.time() < deadline and a.poll() is None, cluster.log("worker-a")
        time.sleep(0.2)
    state = {v["id"]: v for v in cluster.drive("state", "kill")["videos"]}
    killed = next(v for v in state.values() if v["status"] == "running")
    print(f"\nworker A killed while labelling {killed['video']} ({killed['labelled']}/{frames} frames written)")
    assert 0 < killed["labelled"] < frames

    deadline = time.time() + 60
    while True:  # the rerun comes once the dead worker's claim is stale (no heartbeat for stale_after s)
        claimed = next(v for v in cluster.drive("state", "kill")["videos"] if v["id"] == killed["id"])["claimed_at"]
        if time.time() - claimed > params["stale_after"]:
            break
        assert time.time() < deadline
        time.sleep(0.5)
    b = cluster.worker("worker-b")
    cluster.drive("queue", "kill", json.dumps(params))  # the rerun (A's run stays RUNNING: its worker died)
    (op,) = cluster.wait_ops(1, timeout=180)
    b.send_signal(signal.SIGTERM)
    after = {v["id"]: v for v in cluster.drive("state", "kill")["videos"]}
    for v in after.values():
        print(f"  {v['video']}: {v['status']} by {v['run']} ({v['labelled']}/{v['frames']} frames)")
        assert v["status"] == "done" and v["labelled"] == frames, v
    assert killed["id"] in op["result"]["processed_ids"], "worker B redid the killed video"
    assert after[killed["id"]]["run"] == op["result"]["run_key"]
    # the redone video's labels equal those of a copy processed without interruption
    other = next(i for i in after if i != killed["id"])
    assert cluster.drive("labels", "kill", killed["id"]) == cluster.drive("labels", "kill", other)


def serve() -> None:
    """Answers driver commands, one JSON list of arguments per stdin line, one JSON object per stdout line."""
    import traceback

    real, sys.stdout = sys.stdout, sys.stderr  # FiftyOne's messages go to the log, not the protocol
    for line in sys.stdin:
        try:
            out = driver(json.loads(line))
        except Exception:  # reported to the test, which fails with it
            out = {"error": traceback.format_exc()}
        real.write(json.dumps(out) + "\n")
        real.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        print(json.dumps(driver(sys.argv[1:])))
