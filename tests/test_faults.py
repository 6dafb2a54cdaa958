"""Faults: a killed run, a database restart and two runs at once all end with the labels of one clean run.

Every fault is real: ``posetrack run`` subprocesses are SIGKILLed in the middle
of a video, a standalone ``mongod`` is stopped under a running job and started
again, two ``posetrack run`` processes race for the same videos. After the
fault (and a rerun where one is needed) every frame's labels -- boxes,
confidences, ``index`` = track id, keypoints -- must equal those of an
uninterrupted in-process run of the same videos, with exactly one frame
document per frame and no duplicated label.

This file is also the driver of the subprocesses that talk to a second
database (``python tests/test_faults.py setup|labels ...``): it imports nothing
from the test session at module level.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve()
FRAMES = 40
DET, KPS = "pred_detections", "pred_keypoints"


# --------------------------------------------------------------------------- label snapshots


def _point(p) -> list:
    return [None if (v is None or math.isnan(v)) else round(float(v), 5) for v in p]


def label_snapshot(dataset, sample_id: str) -> dict:
    """``{frame_number: [boxes, poses]}`` of one video, JSON-comparable (NaN -> None)."""
    numbers, dets, kps = dataset.select(sample_id).values(["frames.frame_number", f"frames.{DET}", f"frames.{KPS}"])
    out = {}
    for n, d, k in zip(numbers[0], dets[0], kps[0]):
        boxes = None if d is None else [[x.index, _point(x.bounding_box), round(x.confidence, 6)] for x in d.detections]
        poses = None if k is None else [[x.index, [_point(p) for p in x.points]] for x in k.keypoints]
        out[str(n)] = [boxes, poses]
    return json.loads(json.dumps(out))


def integrity(dataset, sample_id: str) -> dict:
    """Frame documents, labelled frames and duplicated label ids of one video."""
    from bson import ObjectId

    frames = dataset._frame_collection.count_documents({"_sample_id": ObjectId(sample_id)})
    numbers = dataset.select(sample_id).values("frames.frame_number")[0]
    ids = [i for f in dataset.select(sample_id).values(f"frames.{DET}.detections.id")[0] for i in (f or [])]
    kp_ids = [i for f in dataset.select(sample_id).values(f"frames.{KPS}.keypoints.id")[0] for i in (f or [])]
    labelled = sum(d is not None for d in dataset.select(sample_id).values(f"frames.{DET}")[0])
    return {
        "frame_docs": frames,
        "frame_numbers_unique": len(numbers) == len(set(numbers)),
        "labelled": labelled,
        "duplicate_ids": len(ids) - len(set(ids)) + len(kp_ids) - len(set(kp_ids)),
    }


# --------------------------------------------------------------------------- driver (subprocess side)


def driver(argv: list[str]) -> dict:
    import fiftyone as fo

    cmd = argv[0]
    if cmd == "setup":  # setup NAME VIDEO...
        from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset

        dataset = get_or_create_dataset(argv[1])
        add_videos(dataset, argv[2:])
        return {"ids": dataset.values("id")}
    if cmd == "labels":  # labels NAME: {video file name: snapshot}
        dataset = fo.load_dataset(argv[1])
        dataset.reload()
        return {
            os.path.basename(os.path.dirname(s.filepath)): {
                "labels": label_snapshot(dataset, s.id),
                "integrity": integrity(dataset, s.id),
                "status": s[f"{DET}_status"],
            }
            for s in dataset.select_fields(f"{DET}_status")
        }
    raise SystemExit(f"unknown command {cmd}")


# --------------------------------------------------------------------------- test side


def _cli(tmp: pathlib.Path, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Starts ``posetrack run ARGS`` with its output in ``tmp/<name>.out``."""
    out = open(tmp / f"{name}.out", "w")
    cmd = [sys.executable, "-m", "fiftyone_posetrack.cli", "run", *args]
    proc = subprocess.Popen(cmd, env=env or dict(os.environ), stdout=out, stderr=subprocess.STDOUT, text=True)
    proc.log = tmp / f"{name}.out"
    return proc


def _output(proc: subprocess.Popen) -> str:
    return proc.log.read_text(errors="replace")


def _run_args(dataset_name: str, models: str, *extra: str) -> list[str]:
    return ["--dataset", dataset_name, "--models-dir", models, "--reid", "none", *extra]


def _drive(env: dict, *args) -> dict:
    proc = subprocess.run([sys.executable, str(HERE), *map(str, args)], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


class RawState:
    """Reads a video's status and written frames straight from MongoDB (any process may write them).

    A run writes a video's labels aside (``posetrack_staging``) and swaps them
    into the frame documents when the video is complete: "written" frames are
    the staged ones plus the labelled frame documents.
    """

    def __init__(self, uri: str, dataset_name: str):
        import pymongo

        self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
        db = self.client[os.environ.get("FIFTYONE_DATABASE_NAME", "fiftyone")]
        doc = db.datasets.find_one({"name": dataset_name})
        assert doc is not None, f"no dataset {dataset_name!r} in {uri}"
        self.samples = db[doc["sample_collection_name"]]
        self.frames = db[doc["frame_collection_name"]]
        self.staging = db["posetrack_staging"]

    def __call__(self, sample_id: str) -> tuple[str | None, int, float | None]:
        from bson import ObjectId

        oid = ObjectId(sample_id)
        doc = self.samples.find_one({"_id": oid}) or {}
        staged = self.staging.count_documents({"sample": oid, DET: {"$ne": None}})
        return doc.get(f"{DET}_status"), self.committed(sample_id) + staged, doc.get(f"{DET}_claimed_at")

    def committed(self, sample_id: str) -> int:
        """Frame documents of the video that hold a label."""
        from bson import ObjectId

        return self.frames.count_documents({"_sample_id": ObjectId(sample_id), DET: {"$ne": None}})

    def close(self):
        self.client.close()


def _wait_mid_video(state: RawState, sample_id: str, proc: subprocess.Popen, timeout: float = 180) -> tuple:
    """Waits until the video is ``running`` with some, but far from all, frames written."""
    deadline = time.time() + timeout
    while True:
        status, labelled, _ = state(sample_id)
        if status == "running" and 0 < labelled <= FRAMES - 12:
            return status, labelled
        assert proc.poll() is None, f"the run ended before it could be interrupted:\n{_output(proc)[-3000:]}"
        assert time.time() < deadline, f"no partial labels after {timeout} s: {status}, {labelled}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def models(shared_dir) -> str:
    return str(shared_dir / "models")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[str]:
    from fiftyone_posetrack.synth import render_crowd

    root = tmp_path_factory.mktemp("fault-videos")
    return [
        render_crowd(root / f"v{seed}", people=4, frames=FRAMES, width=320, height=192, seed=seed).video_path
        for seed in range(3)
    ]


@pytest.fixture(scope="module")
def reference(videos, models) -> dict:
    """The labels of an uninterrupted in-process run: ``{video folder name: snapshot}``."""
    import fiftyone as fo

    from fiftyone_posetrack.fo.dataset import add_videos
    from fiftyone_posetrack.fo.run import run
    from fiftyone_posetrack.pipeline import PipelineConfig

    dataset = fo.Dataset("faults-reference", overwrite=True)
    try:
        add_videos(dataset, videos)
        run(dataset, PipelineConfig(models_dir=models, reid=None), progress=False)
        return {os.path.basename(os.path.dirname(s.filepath)): label_snapshot(dataset, s.id) for s in dataset}
    finally:
        dataset.delete()


@pytest.fixture()
def persistent(request):
    """A persistent dataset (visible to subprocesses), deleted after the test."""
    import fiftyone as fo

    made = []

    def make(paths):
        from fiftyone_posetrack.fo.dataset import add_videos, get_or_create_dataset

        dataset = get_or_create_dataset(f"faults-{request.node.name}"[:60])
        add_videos(dataset, paths)
        made.append(dataset)
        return dataset

    yield make
    for dataset in made:
        if fo.dataset_exists(dataset.name):
            fo.delete_dataset(dataset.name)


def _assert_like_reference(dataset, reference: dict) -> None:
    dataset.reload()
    for sample in dataset:
        name = os.path.basename(os.path.dirname(sample.filepath))
        assert sample[f"{DET}_status"] == "done", (name, sample[f"{DET}_status"])
        assert integrity(dataset, sample.id) == {
            "frame_docs": FRAMES, "frame_numbers_unique": True, "labelled": FRAMES, "duplicate_ids": 0,
        }, name  # fmt: skip
        assert label_snapshot(dataset, sample.id) == reference[name], f"labels of {name} differ from a clean run"


def test_sigkilled_run_resumes_to_identical_labels(persistent, videos, models, reference, tmp_path):
    from fiftyone_posetrack.fo.run import run
    from fiftyone_posetrack.pipeline import PipelineConfig

    dataset = persistent(videos[:1])
    sample_id = dataset.first().id
    state = RawState(os.environ["FIFTYONE_DATABASE_URI"], dataset.name)
    try:
        first = _cli(tmp_path, "first", *_run_args(dataset.name, models, "--flush-frames", "4"))
        _, labelled = _wait_mid_video(state, sample_id, first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        status, labelled, claimed_at = state(sample_id)
        print(f"\nrun killed with {labelled}/{FRAMES} frames written")
        assert status == "running" and 0 < labelled < FRAMES, "the kill left a claimed, half-written video"
        assert state.committed(sample_id) == 0, "half-written labels reached the frame documents"

        # a run that trusts the claim (default stale_after: 10 min) leaves the video to its "owner"
        summary = run(dataset, PipelineConfig(models_dir=models, reid=None), progress=False)
        assert summary.skipped == [sample_id] and summary.processed == []
        assert state(sample_id)[:2] == ("running", labelled), "a live-looking claim is not touched"

        while time.time() < claimed_at + 1.5:  # the dead run's heartbeat goes stale
            time.sleep(0.1)
        rerun = _cli(tmp_path, "rerun", *_run_args(dataset.name, models, "--stale-after", "1"))
        assert rerun.wait(timeout=300) == 0, _output(rerun)[-3000:]
        assert "1 video(s) processed" in _output(rerun)
    finally:
        state.close()
    _assert_like_reference(dataset, reference)


def _raw_documents(dataset) -> tuple[list[bytes], list[bytes]]:
    """Every sample and frame document as BSON (byte-for-byte comparable)."""
    import bson

    samples = [bson.encode(d) for d in dataset._sample_collection.find().sort("_id", 1)]
    frames = [bson.encode(d) for d in dataset._frame_collection.find().sort("_id", 1)]
    return samples, frames


def test_sigkilled_overwrite_keeps_the_complete_earlier_labels(persistent, videos, models, tmp_path):
    """``--overwrite`` writes a video's new labels aside: killed mid-video, the earlier labels stay, byte for byte.

    (Before, the video's labels were cleared when it was claimed and rewritten
    chunk by chunk, so the kill left a half-labelled video.)
    """
    from bson import ObjectId

    from fiftyone_posetrack.fo.run import run
    from fiftyone_posetrack.pipeline import PipelineConfig

    dataset = persistent(videos[:1])
    sample_id = dataset.first().id
    run(dataset, PipelineConfig(models_dir=models, reid=None), progress=False)
    before = _raw_documents(dataset)
    state = RawState(os.environ["FIFTYONE_DATABASE_URI"], dataset.name)
    try:
        args = _run_args(dataset.name, models, "--overwrite", "--flush-frames", "4")
        killed = _cli(tmp_path, "overwrite", *args)
        deadline = time.time() + 180
        while state.staging.count_documents({"sample": ObjectId(sample_id), DET: {"$ne": None}}) == 0:
            assert killed.poll() is None, f"the run ended before it could be interrupted:\n{_output(killed)[-3000:]}"
            assert time.time() < deadline, "no staged labels after 180 s"
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert state(sample_id)[0] == "running", "killed while the video was claimed"
    finally:
        state.close()
    import bson

    samples, frames = _raw_documents(dataset)
    assert frames == before[1], "the frame documents (the earlier labels) changed"

    def unclaimed(doc):  # the sample document but its claim (status, heartbeat, run key, claim tokens)
        return {k: v for k, v in bson.decode(doc).items() if not k.startswith(DET + "_") and k != KPS + "_claim"}

    assert [unclaimed(d) for d in samples] == [unclaimed(d) for d in before[0]]


def _restart_mongod(root: pathlib.Path, port: int) -> subprocess.Popen:
    """Starts mongod again on the same data folder and port."""
    import socket

    from conftest import mongod_binary

    log = open(root / "mongod.log", "ab")
    proc = subprocess.Popen(
        [str(mongod_binary()), "--dbpath", str(root / "db"), "--port", str(port), "--bind_ip", "127.0.0.1"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            assert time.time() < deadline and proc.poll() is None, (root / "mongod.log").read_text()[-2000:]
            time.sleep(0.2)


@pytest.mark.slow
def test_database_restart_fails_clearly_then_resumes(videos, models, reference, tmp_path):
    from conftest import start_mongod, stop_mongod

    mongod, port = start_mongod(tmp_path / "mongod")
    # a database lost between two writes is noticed within POSETRACK_DB_TIMEOUT; one lost in the middle
    # of a write, within pymongo's serverSelectionTimeoutMS (30 s unless the URI says otherwise)
    uri = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=4000"
    env = dict(os.environ, FIFTYONE_DATABASE_URI=uri, POSETRACK_DB_TIMEOUT="3")
    state = None
    try:
        (sample_id,) = _drive(env, "setup", "restart", videos[1])["ids"]
        state = RawState(uri, "restart")
        first = _cli(tmp_path, "first", *_run_args("restart", models, "--flush-frames", "4"), env=env)
        _, labelled = _wait_mid_video(state, sample_id, first)
        stopped = time.time()
        stop_mongod(mongod)
        rc = first.wait(timeout=120)
        waited = time.time() - stopped
        out = _output(first)
        print(f"\ndatabase stopped with {labelled}/{FRAMES} frames written; the run exited {rc} after {waited:.1f} s:")
        print("  " + out.strip().splitlines()[-1][:400])
        assert rc == 3 and "Traceback" not in out, out[-3000:]
        assert re.search(rf"posetrack: error: pose tracking: lost the database at {re.escape(uri)} while processing video {sample_id}", out)
        assert "--stale-after" in out, "the message says how to resume"
        assert waited < 20, f"a stopped database took {waited:.1f} s to be reported"

        mongod = _restart_mongod(tmp_path / "mongod", port)
        status, partial, _ = state(sample_id)
        assert status == "running" and 0 < partial < FRAMES, (status, partial)
        time.sleep(1.0)
        rerun = _cli(tmp_path, "rerun", *_run_args("restart", models, "--stale-after", "1"), env=env)
        assert rerun.wait(timeout=300) == 0, _output(rerun)[-3000:]
        (name,) = reference.keys() & {os.path.basename(os.path.dirname(videos[1]))}
        result = _drive(env, "labels", "restart")[name]
        assert result["status"] == "done"
        assert result["integrity"] == {"frame_docs": FRAMES, "frame_numbers_unique": True, "labelled": FRAMES, "duplicate_ids": 0}
        assert result["labels"] == reference[name], "the resumed video's labels differ from a clean run"
    finally:
        if state is not None:
            state.close()
        stop_mongod(mongod)


@pytest.mark.slow
def test_two_runs_at_once_label_each_video_once(persistent, videos, models, reference, tmp_path):
    dataset = persistent(videos)
    args = _run_args(dataset.name, models, "--flush-frames", "8")
    runs = [_cli(tmp_path, f"run{i}", *args) for i in range(2)]
    processed = []
    for proc in runs:
        assert proc.wait(timeout=400) == 0, _output(proc)[-3000:]
        match = re.search(r"(\d+) video\(s\) processed, (\d+) already done", _output(proc))
        assert match, _output(proc)[-2000:]
        processed.append(int(match.group(1)))
    print(f"\ntwo concurrent runs processed {processed} of the 3 videos")
    assert sum(processed) == 3, "each video processed by exactly one run"
    _assert_like_reference(dataset, reference)


# --------------------------------------------------------------------------- issue 21: races, stalls, claims


def _stale(state: RawState, sample_id: str, seconds: float) -> None:
    """Waits until the video's recorded heartbeat is ``seconds`` old (the stopped run cannot refresh it)."""
    claimed_at = state(sample_id)[2]
    while time.time() < claimed_at + seconds:
        time.sleep(0.05)


def _run_key(output: str) -> str:
    match = re.search(r"run record '(posetrack_run_\d+)'", output)
    assert match, output[-2000:]
    return match.group(1)


@pytest.mark.slow
def test_stopped_run_that_lost_its_claim_fails_and_writes_nothing(persistent, videos, models, tmp_path):
    """Run A is stopped (SIGSTOP) mid-video, run B takes the stale claim (``--overwrite --stale-after 1``,
    another threshold) and finishes; A resumed (SIGCONT) fails naming the video and B's run, and B's
    labels and the video's status stay byte for byte as B left them.

    (Before, A resumed and committed: frames 1-8 empty, 9-40 A's labels, status ``done`` under B's run
    key, both exit 0.)
    """
    from bson import ObjectId

    from fiftyone_posetrack.fo.run import run
    from fiftyone_posetrack.fo.runs import get_run, list_runs
    from fiftyone_posetrack.pipeline import PipelineConfig

    dataset = persistent(videos[:1])
    sample_id = dataset.first().id
    state = RawState(os.environ["FIFTYONE_DATABASE_URI"], dataset.name)
    a = _cli(tmp_path, "A", *_run_args(dataset.name, models, "--flush-frames", "4"))
    try:
        _wait_mid_video(state, sample_id, a)
        a.send_signal(signal.SIGSTOP)
        (a_key,) = list_runs(dataset)

        # while A's heartbeat is fresh, another run reports the truth: claimed by A, not "already done"
        summary = run(dataset, PipelineConfig(models_dir=models, reid=None), progress=False)
        assert summary.processed == [] and summary.claimed == {sample_id: a_key}, summary

        _stale(state, sample_id, 1.5)
        b = _cli(tmp_path, "B", *_run_args(dataset.name, models, "--overwrite", "--stale-after", "1",
                                           "--det-score-threshold", "0.45"))  # fmt: skip
        assert b.wait(timeout=300) == 0, _output(b)[-3000:]
        assert "1 video(s) processed" in _output(b), _output(b)[-2000:]
        b_key = _run_key(_output(b))
        after_b = _raw_documents(dataset)
        assert state(sample_id)[0] == "done" and state.committed(sample_id) == FRAMES

        a.send_signal(signal.SIGCONT)
        rc = a.wait(timeout=300)
    finally:
        if a.poll() is None:
            a.send_signal(signal.SIGCONT)
            a.kill()
            a.wait(timeout=30)
        state.close()
    out = _output(a)
    print(f"\nthe stopped run exited {rc}: " + out.strip().splitlines()[-1][:400])
    assert rc == 2 and "Traceback" not in out, out[-3000:]
    assert f"lost the claim on video {sample_id}" in out and f"run {b_key!r} took it over" in out, out[-2000:]
    assert _raw_documents(dataset) == after_b, "the run that lost its claim changed the documents"
    dataset.reload()
    assert dataset.first()[f"{DET}_status"] == "done" and dataset.first()[f"{DET}_run"] == b_key
    staging = dataset._frame_collection.database["posetrack_staging"]
    assert staging.count_documents({"sample": ObjectId(sample_id)}) == 0, "the loser's staged labels remain"
    record = get_run(dataset, a_key)
    assert record["videos"][sample_id]["status"] == "claim lost" and record["outcome"] == "claim lost"


def test_sigterm_releases_the_claim_and_the_rerun_redoes_the_video(persistent, videos, models, reference, tmp_path):
    """SIGTERM mid-video is handled like Ctrl-C: the claim is released, the run record closed as
    interrupted, and a rerun processes the video to the labels of a clean run.

    (Before, the rerun said "0 processed, 1 already done" (exit 0) while the video was ``running`` with no
    labels, and the killed run's record stayed open.)
    """
    from bson import ObjectId

    from fiftyone_posetrack.fo.runs import get_run, list_runs

    from test_bad_input import snapshot  # frame documents with labels (a run creates empty ones first)

    dataset = persistent(videos[:1])
    sample_id = dataset.first().id
    before = snapshot(dataset)
    state = RawState(os.environ["FIFTYONE_DATABASE_URI"], dataset.name)
    try:
        first = _cli(tmp_path, "first", *_run_args(dataset.name, models, "--flush-frames", "4"))
        _wait_mid_video(state, sample_id, first)
        first.send_signal(signal.SIGTERM)
        rc = first.wait(timeout=60)
        out = _output(first)
        assert rc == 143 and "posetrack: terminated (SIGTERM)" in out and "Traceback" not in out, out[-3000:]
        assert state(sample_id)[0] == "failed", "the claim was released (nothing was done before)"
        assert state.committed(sample_id) == 0
        assert state.staging.count_documents({"sample": ObjectId(sample_id)}) == 0
    finally:
        state.close()
    assert snapshot(dataset)[1] == before[1], "labels reached the frame documents"
    (key,) = list_runs(dataset)
    record = get_run(dataset, key)
    assert record["outcome"] == "interrupted" and record["finished_at"], record
    assert record["videos"][sample_id]["status"] == "interrupted"

    rerun = _cli(tmp_path, "rerun", *_run_args(dataset.name, models))
    assert rerun.wait(timeout=300) == 0, _output(rerun)[-3000:]
    assert "1 video(s) processed, 0 already done" in _output(rerun), _output(rerun)[-2000:]
    _assert_like_reference(dataset, reference)


@pytest.mark.slow
def test_two_runs_sharing_a_keypoints_field_leave_one_consistent_result(persistent, videos, models, tmp_path):
    """Two runs at once with different detection fields and the same keypoints field: one writes the
    video, the other is refused or skipped with a message naming the run that holds the field; the
    keypoints are the winner's poses (one pose per box, same track ids) and the field's claim names it.

    (Before, both reported ``done``, the keypoints held the first run's poses, and the second run's
    record claimed the field.)
    """
    dataset = persistent(videos[:1])
    sample_id = dataset.first().id
    runs = {
        "det_a": _cli(tmp_path, "a", *_run_args(dataset.name, models, "--detections-field", "det_a",
                                                "--keypoints-field", "shared", "--flush-frames", "4")),
        "det_b": _cli(tmp_path, "b", *_run_args(dataset.name, models, "--detections-field", "det_b",
                                                "--keypoints-field", "shared", "--flush-frames", "4",
                                                "--det-score-threshold", "0.6")),
    }  # fmt: skip
    codes = {field: proc.wait(timeout=400) for field, proc in runs.items()}
    outs = {field: _output(proc) for field, proc in runs.items()}
    winners = [f for f in runs if codes[f] == 0 and "1 video(s) processed" in outs[f]]
    assert len(winners) == 1, (codes, {f: o[-1500:] for f, o in outs.items()})
    (winner,) = winners
    (loser,) = set(runs) - {winner}
    key = _run_key(outs[winner])
    print(f"\n{winner} won; {loser} exited {codes[loser]}: " + outs[loser].strip().splitlines()[-1][:300])
    assert "Traceback" not in outs[loser]
    if codes[loser] == 0:  # it found the field claimed while the winner ran
        assert f"1 claimed by other runs (1 by run {key} (writing 'shared'" in outs[loser], outs[loser][-2000:]
    else:  # it came when the winner was done: the field holds another job's labels
        assert codes[loser] == 2 and "'shared'" in outs[loser] and "overwrite-field shared" in outs[loser], outs[loser][-2000:]
    dataset.reload()
    sample = dataset.first()
    assert sample[f"{winner}_status"] == "done" and sample[f"{loser}_status"] != "done"
    assert sample["shared_claim"]["run"] == key and sample["shared_claim"]["live"] is False
    boxes, poses, other = dataset.select(sample_id).values([f"frames.{winner}", "frames.shared", f"frames.{loser}"])
    assert all(o is None for o in other[0]), "the loser wrote boxes"
    for n, (d, k) in enumerate(zip(boxes[0], poses[0]), 1):
        assert sorted(x.index for x in d.detections) == sorted(x.index for x in k.keypoints), f"frame {n}"


def test_video_with_over_100_mb_of_frames_is_tracked_and_redone(tmp_path):
    """MongoDB's ``$lookup`` gathers at most 100 MB of one video's frames, which FiftyOne's per-video
    frame aggregations (``values("frames...")``) need: the jobs read, write and clear frames by index."""
    import fiftyone as fo
    from bson import ObjectId

    from fiftyone_posetrack.fo.dataset import add_videos
    from fiftyone_posetrack.fo.labels import write_frame_labels
    from fiftyone_posetrack.fo.stages import track_detections
    from videos import make_video

    frames = 700
    dataset = fo.Dataset("faults-big-frames")
    try:
        (sid,) = add_videos(dataset, [make_video(tmp_path / "long.mp4", frames=frames, size=(64, 48))])
        rng = __import__("numpy").random.default_rng(0)
        boxes = {
            n: fo.Detections(detections=[
                fo.Detection(label="person", bounding_box=[0.1 + 0.25 * i + 0.0005 * n, 0.2, 0.15, 0.5], confidence=0.9)
                for i in range(3)
            ])
            for n in range(1, frames + 1)
        }  # fmt: skip
        write_frame_labels(dataset, {"boxes": {sid: boxes}})
        blob = rng.bytes(75_000).hex()  # 150 kB per frame, e.g. masks another tool stored on every frame
        dataset.add_frame_field("blob", fo.StringField)
        dataset._frame_collection.update_many({"_sample_id": ObjectId(sid)}, {"$set": {"blob": blob}})
        size = sum(len(d["blob"]) for d in dataset._frame_collection.find({}, {"blob": 1}))
        assert size > 100 * 2**20, size

        summary = track_detections(dataset, "boxes", "tracked", tracker="sort", progress=False, flush_frames=100)
        assert summary.frames == frames
        again = track_detections(dataset, "boxes", "tracked", tracker="sort", overwrite=True, progress=False, flush_frames=100)
        assert again.processed == [sid], "the done video was cleared and redone"
        coll = dataset._frame_collection
        assert coll.count_documents({"_sample_id": ObjectId(sid)}) == frames
        assert coll.count_documents({"tracked.detections.2": {"$exists": True}}) >= frames - 2, "three tracks per frame"
        assert coll.count_documents({"blob": blob}) == frames, "the other field is untouched"
        from fiftyone_posetrack.fo.labels import sample_to_mot

        mot = sample_to_mot(dataset[sid], "tracked")  # read back frame by frame
        assert len(mot) >= 3 * (frames - 2) and set(mot[:, 1]) == {1, 2, 3}
    finally:
        dataset.delete()


if __name__ == "__main__":
    print(json.dumps(driver(sys.argv[1:])))
