"""Model specs, the detector registry and the Detector base class."""

from __future__ import annotations

import numpy as np
import pytest

from fiftyone_posetrack.detection import Detector, ModelSpec, make_detector, parse_model_spec
from fiftyone_posetrack.detection.runtime import onnx_providers
from fiftyone_posetrack.pose import make_pose_estimator
from fiftyone_posetrack.types import BadInputError, FrameDetections


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("rtmdet-onnx:/m/end2end.onnx", ModelSpec("rtmdet-onnx", "/m/end2end.onnx")),
        ("YOLOX-ONNX:rel/y.onnx", ModelSpec("yolox-onnx", "rel/y.onnx")),
        ("onnx:/m/x.onnx", ModelSpec("onnx", "/m/x.onnx")),
        ("movenet-tflite:/m/a:b.tflite", ModelSpec("movenet-tflite", "/m/a:b.tflite")),
        ("mmdet:cfg/rtmdet_m.py", ModelSpec("mmdet", "cfg/rtmdet_m.py")),
        ("mmdet:cfg/rtmdet_m.py:ck.pth", ModelSpec("mmdet", "cfg/rtmdet_m.py", "ck.pth")),
        (
            "mmpose:c/rtmpose.py:https://download.openmmlab.com/x.pth",
            ModelSpec("mmpose", "c/rtmpose.py", "https://download.openmmlab.com/x.pth"),
        ),
        ("/models/x.onnx", ModelSpec("onnx", "/models/x.onnx")),
        ("models/x.tflite", ModelSpec("tflite", "models/x.tflite")),
        ("C:\\models\\x.onnx", ModelSpec("onnx", "C:\\models\\x.onnx")),
    ],
)
def test_parse_model_spec(spec, expected):
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "   ", "rtmdet-onnx:", "/models/x.bin", None])
def test_parse_model_spec_rejects(spec):
    with pytest.raises(BadInputError):
        parse_model_spec(spec)


def test_make_detector_errors(tmp_path):
    with pytest.raises(BadInputError, match="unknown detector backend 'nope'"):
        make_detector("nope:/x.onnx")
    with pytest.raises(FileNotFoundError, match=r"RTMDet ONNX model not found.*mmpose"):
        make_detector(f"rtmdet-onnx:{tmp_path / 'missing.onnx'}")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(BadInputError, match="not a loadable ONNX model"):
        make_detector(f"yolox-onnx:{junk}")
    with pytest.raises(BadInputError, match="score_threshold"):
        make_detector(f"yolox-onnx:{junk}", score_threshold=2.0)


def test_make_pose_estimator_errors(tmp_path):
    with pytest.raises(BadInputError, match="unknown pose backend"):
        make_pose_estimator("nope:/x.onnx")
    with pytest.raises(FileNotFoundError, match="MoveNet TFLite model not found.*movenet"):
        make_pose_estimator(str(tmp_path / "missing.tflite"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(BadInputError, match="not a TFLite flatbuffer"):
        make_pose_estimator(f"movenet-tflite:{junk}")


def test_onnx_providers():
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    providers = onnx_providers("cuda:1")  # CUDA when onnxruntime has it, else CPU
    assert providers[-1] == "CPUExecutionProvider"
    if len(providers) == 2:
        assert providers[0] == ("CUDAExecutionProvider", {"device_id": 1})
    with pytest.raises(BadInputError, match="device"):
        onnx_providers("tpu")


class _FixedBoxes(Detector):
    """A detector that returns the same boxes for every frame (tests the base class)."""

    def __init__(self, boxes, scores, **kwargs):
        super().__init__(**kwargs)
        self.boxes, self.scores, self.calls = (
            np.asarray(boxes, float),
            np.asarray(scores, float),
            [],
        )

    def _detect_batch(self, frames):
        self.calls.append(len(frames))
        return [FrameDetections(self.boxes, self.scores) for _ in frames]


def test_detector_base_batches_thresholds_and_sorts():
    det = _FixedBoxes(
        [[0, 0, 5, 5], [1, 1, 9, 9], [2, 2, 4, 4]],
        [0.2, 0.9, 0.5],
        score_threshold=0.3,
        batch_size=2,
    )
    frames = [np.zeros((10, 12, 3), np.uint8)] * 5
    out = det.detect(frames)
    assert det.calls == [2, 2, 1]
    assert len(out) == 5
    np.testing.assert_allclose(out[0].scores, [0.9, 0.5])
    np.testing.assert_allclose(out[0].boxes, [[1, 1, 9, 9], [2, 2, 4, 4]])
    assert len(det.detect_one(frames[0])) == 2


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.zeros((10, 10, 3), np.uint8), "wrap it in a list"),
        ([np.zeros((10, 10), np.uint8)], r"frames\[0\].*\(H, W, 3\)"),
        ([np.zeros((10, 10, 3), np.float32)], "uint8"),
        ("frame.png", "list of frames"),
    ],
)
def test_detector_rejects_bad_frames(frames, match):
    det = _FixedBoxes(np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(BadInputError, match=match):
        det.detect(frames)


def test_cpu_threads_follow_omp_num_threads_then_the_affinity(monkeypatch):
    """Ray sets ``OMP_NUM_THREADS`` to an actor's CPUs; without it, the cores the process may use."""
    import os
    import subprocess
    import sys

    from fiftyone_posetrack.detection.runtime import cpu_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert cpu_threads() == 7 and cpu_threads(most=4) == 4
    for junk in ("", "0", "two", "-3"):
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert cpu_threads() == len(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    core = min(os.sched_getaffinity(0))
    code = (f"import os; os.sched_setaffinity(0, {{{core}}}); "
            "from fiftyone_posetrack.detection.runtime import cpu_threads; print(cpu_threads())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"  # pinned to one core (taskset, a cpuset): one thread


def test_onnx_sessions_get_one_thread_per_allowed_core(monkeypatch, shared_dir):
    """An onnxruntime session opened without ``threads`` uses :func:`cpu_threads`, not every core of the machine."""
    from fiftyone_posetrack.detection.runtime import onnx_session

    path = shared_dir / "models" / "rtmdet-nano-person" / "end2end.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert onnx_session(path, "cpu").get_session_options().intra_op_num_threads == 1
    assert onnx_session(path, "cpu", threads=2).get_session_options().intra_op_num_threads == 2
