"""`posetrack run` and `posetrack demo` end to end, and their bad-input errors."""

import re

import pytest

import fiftyone as fo

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.synth import render_crowd


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return render_crowd(tmp_path_factory.mktemp("cli"), people=3, frames=12, width=320, height=192, seed=1).video_path


@pytest.mark.parametrize(
    "args, message",
    [
        (["run"], "give video files/folders, or --dataset"),
        (["run", "/nonexistent/v.mp4"], "/nonexistent/v.mp4"),
        (["run", "--dataset", "no-such-dataset"], "no dataset named 'no-such-dataset'"),
        (["run", "x.mp4", "--box-alpha", "3"], "--box-alpha: expected a finite number >= 0 and <= 1, got 3.0"),
        (["run", "x.mp4", "--tracker", "kalmanish"], "--tracker: expected one of 'bytetrack', 'deepsort', 'ocsort', 'sort', got 'kalmanish'"),
        (["run", "x.mp4", "--param", "max_age"], "--param: expected KEY=VALUE"),
        (["run", "x.mp4", "--device", "tpu"], "--device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
        (["run", "x.mp4", "--engine", "spark"], "--engine: expected one of 'inprocess', 'ray', got 'spark'"),
        (["run", "x.mp4", "--engine", "ray", "--workers", "0"], "--workers: expected an integer >= 1"),
        (["run", "x.mp4", "--engine", "ray", "--ray-address", "nowhere"], "ray_address: expected 'auto', 'ray://HOST:PORT'"),
        (["run", "x.mp4", "--workers", "2"], "workers and ray_address are options of engine='ray'"),
        (["demo", "--video", "/nonexistent/v.mp4"], "/nonexistent/v.mp4"),
    ],
)
def test_bad_input_is_named(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_missing_models_say_what_to_fetch(video, tmp_path, capsys):
    assert main(["run", video, "--dataset", "cli-nomodels", "--models-dir", str(tmp_path)]) == 4  # ModelUnavailableError
    err = capsys.readouterr().err
    assert "rtmdet-nano-person" in err and "download.openmmlab.com" in err and "--models-dir" in err


def test_run_labels_a_video(video, shared_dir, capsys):
    args = ["run", video, "--dataset", "cli-run", "--models-dir", str(shared_dir / "models"), "--reid", "none"]
    assert main(args) == 0
    assert "1 video(s) processed" in capsys.readouterr().out
    ds = fo.load_dataset("cli-run")
    assert ds.count("frames.pred_keypoints.keypoints") > 0
    assert main(args) == 0
    assert "0 video(s) processed, 1 already done" in capsys.readouterr().out
    ds.delete()


def test_demo_runs_end_to_end_and_evaluates(shared_dir, tmp_path, capsys):
    args = ["demo", "--people", "3", "--frames", "10", "--width", "320", "--height", "192",
            "--out", str(tmp_path / "demo"), "--models-dir", str(shared_dir / "models")]  # the cpu preset's 640 px tiles leave this small frame untiled  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "preset cpu: " in out and "ReID osnet-x0_25-msmt17" in out  # the real ReID model by default
    tracking = re.search(r"\n  MOTA +(-?\d\.\d{3}) +1 - \(missed \+ false \+ identity switches\)", out)
    assert tracking and re.search(r"\n  IDF1 +\d\.\d{3} +share of boxes", out)
    # PoseTrack: AP over every joint, MOTA at the joint threshold, both printed
    pose_ap = re.search(r"\n  AP +(\d+\.\d) +percent, all joints: per-joint AP, every predicted joint ranked", out)
    pose = re.search(r"\n  MOTA @0\.4 +(-?\d+\.\d) +percent, joints scoring >= 0\.4: per-joint", out)
    assert pose and pose_ap and re.search(r"\n  OKS AP +\d\.\d{3} +COCO keypoint AP", out)
    ds = fo.load_dataset("posetrack-demo")
    assert ds.count("frames.pred_detections.detections") > 0
    assert set(ds.list_evaluations()) == {"demo_tracking", "demo_poses"}
    # the printed numbers are the stored runs' numbers
    assert tracking.group(1) == f"{ds.load_evaluation_results('demo_tracking').metrics()['mota']:.3f}"
    stored = ds.load_evaluation_results("demo_poses").metrics()
    assert pose.group(1) == f"{stored['pt_mota']:.1f}" and pose_ap.group(1) == f"{stored['pt_ap']:.1f}"
    assert stored["pt_mota_joint_threshold"] == 0.4 == ds.get_evaluation_info("demo_poses").config.posetrack_joint_threshold


def test_missing_optional_dependency_exits_5_naming_the_extra(video, shared_dir, monkeypatch, capsys):
    """onnxruntime made unimportable (as if not installed): the RTMDet detector cannot be built."""
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    args = ["run", video, "--dataset", "cli-nodeps", "--models-dir", str(shared_dir / "models"), "--reid", "none"]
    assert main(args) == 5
    err = capsys.readouterr().err
    assert "posetrack: error: " in err and "onnxruntime" in err and "pip install 'fiftyone-posetrack[onnx]'" in err
    ds = fo.load_dataset("cli-nodeps")
    assert not ds.has_frame_field("pred_detections") or ds.count("frames.pred_detections.detections") == 0
    ds.delete()


@pytest.mark.slow
def test_unreachable_database_exits_3(tmp_path):
    """A real connection attempt to a port where no mongod listens (a subprocess: FiftyOne connects once per process)."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=300"
    env = dict(os.environ, FIFTYONE_DATABASE_URI=uri)
    proc = subprocess.run(
        [sys.executable, "-m", "fiftyone_posetrack.cli", "run", "--dataset", "anything"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert f"posetrack: error: could not reach the database at {uri}" in proc.stderr
    assert "Traceback" not in proc.stderr
