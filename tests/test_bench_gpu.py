"""The GPU bench's CPU-testable parts: the mmcv-ops stand-in against the compiled ops, and the
whole bench in its smoke mode (every part, tiny inputs, on the CPU)."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

torch = pytest.importorskip("torch")


def _load_stand_in():
    spec = importlib.util.spec_from_file_location("mmcv_ext_torchvision", REPO / "bench" / "mmcv_ext_torchvision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compiled_ext():
    """mmcv's compiled ops (the reference the stand-in must match)."""
    pytest.importorskip("mmcv", reason="OpenMMLab extra not installed (bash scripts/setup_mm.sh .venv)")
    try:
        import mmcv._ext as ext
    except ImportError as e:
        pytest.skip(f"mmcv has no compiled ops here ({e})")
    if hasattr(ext, "IMPLEMENTED"):
        pytest.skip("mmcv._ext is the stand-in itself, not the compiled ops")
    return ext


def _random_boxes(rng, n, size=200.0):
    """``n`` boxes in clusters of 10 jittered copies (overlaps at every IoU threshold)."""
    xy = np.repeat(rng.uniform(0, size, (n // 10, 2)), 10, axis=0) + rng.uniform(-4, 4, (n, 2))
    wh = np.repeat(rng.uniform(8, 60, (n // 10, 2)), 10, axis=0) + rng.uniform(-4, 4, (n, 2))
    return torch.tensor(np.concatenate([xy, xy + wh], axis=1), dtype=torch.float32)


@pytest.mark.parametrize("offset", [0, 1])
@pytest.mark.parametrize("iou", [0.3, 0.5, 0.7])
def test_stand_in_nms_keeps_the_same_boxes_as_mmcv(compiled_ext, offset, iou):
    stand_in = _load_stand_in()
    rng = np.random.default_rng(int(iou * 10) + offset)
    boxes = _random_boxes(rng, 300)
    scores = torch.tensor(rng.permutation(300) / 300.0, dtype=torch.float32)  # distinct scores: one order
    expected = compiled_ext.nms(boxes, scores, iou_threshold=iou, offset=offset)
    got = stand_in.nms(boxes, scores, iou_threshold=iou, offset=offset)
    assert 0 < len(expected) < 300  # the case suppresses some boxes, not all
    assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_stand_in_roi_align_matches_mmcv(compiled_ext, aligned, sampling_ratio):
    stand_in = _load_stand_in()
    rng = np.random.default_rng(7)
    feats = torch.tensor(rng.standard_normal((2, 8, 24, 32)), dtype=torch.float32)
    boxes = _random_boxes(rng, 40, size=100.0)
    rois = torch.cat([torch.tensor(rng.integers(0, 2, (40, 1)), dtype=torch.float32), boxes], dim=1)
    args = dict(aligned_height=7, aligned_width=7, spatial_scale=0.25, sampling_ratio=sampling_ratio,
                pool_mode=1, aligned=aligned)  # fmt: skip
    expected = feats.new_zeros((40, 8, 7, 7))
    compiled_ext.roi_align_forward(feats, rois, expected, feats.new_zeros(0), feats.new_zeros(0), **args)
    got = feats.new_zeros((40, 8, 7, 7))
    stand_in.roi_align_forward(feats, rois, got, feats.new_zeros(0), feats.new_zeros(0), **args)
    assert float(expected.abs().max()) > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_stand_in_names_an_op_it_lacks():
    stand_in = _load_stand_in()
    assert hasattr(stand_in, "deform_conv_forward")  # what mmcv's load_ext checks at import
    with pytest.raises(NotImplementedError, match="deform_conv_forward"):
        stand_in.deform_conv_forward()
    with pytest.raises(NotImplementedError, match="avg"):
        stand_in.roi_align_forward(*[torch.zeros(1)] * 5, aligned_height=1, aligned_width=1, spatial_scale=1.0,
                                   sampling_ratio=0, pool_mode=0, aligned=True)  # fmt: skip


@pytest.mark.slow
@pytest.mark.mm
def test_bench_gpu_smoke_runs_every_part_on_cpu(tmp_path, shared_dir):
    pytest.importorskip("mmdet", reason="OpenMMLab extra not installed (bash scripts/setup_mm.sh .venv)")
    pytest.importorskip("mmpose", reason="OpenMMLab extra not installed (bash scripts/setup_mm.sh .venv)")
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, str(REPO / "bench" / "bench_gpu.py"), "--smoke", "--device", "cpu",
           "--out", str(tmp_path), "--models-dir", str(shared_dir / "models")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "bench_gpu.json").read_text())
    assert results["errors"] == [] and results["skipped"] == []
    rows = results["rows"]

    def part(name):
        return [r for r in rows if r["part"] == name]

    pipeline = part("pipeline")
    # the smoke run's light models (bench_gpu.SMOKE_MODELS); fp16 and the batch-256 row are GPU-only
    assert {(r["pose"], r["pose_batch"], r["reid"]) for r in pipeline} == {
        ("rtmpose-t", 32, None), ("mobilenetv2-heatmap", 32, None), ("rtmpose-t", 32, "osnet_x0_25"),
    }  # fmt: skip
    for r in pipeline:
        assert r["frames"] == 2 and r["fps"] > 0 and r["people_per_frame"] > 0
        assert {"detection", "tracking", "pose", "other"} <= set(r["ms_per_frame_by_stage"])
    with_reid = [r for r in pipeline if r["reid"]][0]
    assert with_reid["ms_per_frame_by_stage"]["reid"] > 0
    assert {r["pose"] for r in part("baseline")} == {"rtmpose-t", "mobilenetv2-heatmap"}
    assert all(r["fps"] > 0 for r in part("baseline"))
    assert set(results["pipeline_vs_baseline"]) == {"rtmpose-t", "mobilenetv2-heatmap"}
    assert {(r["model"], r["batch"]) for r in part("pose")} == {("mobilenetv2-heatmap", 2), ("rtmpose-t", 2)}
    assert all(r["persons_per_s"] > 0 and r["model_step_persons_per_s"] > 0 for r in part("pose"))
    assert {(r["model"], r["batch"]) for r in part("det")} == {("rtmdet-tiny", 2), ("cascade-rcnn-r50", 2)}
    assert all(r["frames_per_s"] > 0 for r in part("det"))
    assert [r["crops"] for r in part("reid")] == [2] and part("reid")[0]["crops_per_s"] > 0
    assert {r["tracker"] for r in part("cpu_floor")} == {"bytetrack", "deepsort"}
    assert all(r["fps"] > 0 and {"tracking", "box_smoothing"} <= set(r["ms_per_frame_by_stage"]) for r in part("cpu_floor"))
    assert len(part("cpu_prep")) == 3 and all(r["cpu_ms_per_frame"] > 0 for r in part("cpu_prep"))
    paths = {r["path"]: r for r in part("paths")}
    assert len(paths) == 8
    failed = {k: r["detail"] for k, r in paths.items() if r["outcome"] == "error"}
    assert not failed  # on the CPU every path runs (ONNX models from ../shared/models)
    import fiftyone_posetrack.reid as reid

    omz_offered = "omz-person-reid-0287" in getattr(reid, "reid_model_names", list)()
    assert paths["OnnxReID omz-person-reid-0287 (onnxruntime)"]["outcome"] == ("ok" if omz_offered else "not offered")
    assert [k for k, r in paths.items() if r["outcome"] != "ok"] == ([] if omz_offered else ["OnnxReID omz-person-reid-0287 (onnxruntime)"])
    assert "CPUExecutionProvider" in paths["RTMDet ONNX (onnxruntime)"]["detail"]
    table = (tmp_path / "bench_gpu.md").read_text()
    for title in ("## pipeline", "## baseline", "## cpu_floor", "## cpu_prep", "## pose", "## det", "## reid", "## paths"):
        assert title in table


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "cuda"], "sees no CUDA GPU"),
        (["--device", "cpu", "--parts", "pose,warp"], "unknown parts ['warp']"),
    ],
)
def test_bench_gpu_refuses_bad_arguments(tmp_path, args, message):
    if args[1] == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, str(REPO / "bench" / "bench_gpu.py"), "--out", str(tmp_path / "out"), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing written
