"""The OpenMMLab stack installed by ``scripts/setup_mm.sh`` runs offline on CPU.

Random-weight models are built from the configs that ship inside the mmdet and
mmpose wheels (``<pkg>/.mim/configs``), with every pretrained-weight reference
removed so nothing is downloaded, and run on a real video frame. A checkpoint
shaped like the published OpenMMLab ones (numpy objects in ``meta``, mmengine
``HistoryBuffer`` objects in ``message_hub``) is loaded through mmengine under
torch's ``weights_only=True`` default.

Skipped when mmdet / mmpose are not importable (the ``mm`` extra is optional).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import socket
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.mm

_MISSING = [
    m
    for m in ("mmengine", "mmcv", "mmdet", "mmpose")
    if importlib.util.find_spec(m) is None
]
if _MISSING:
    pytest.skip(
        f"OpenMMLab stack not installed (missing: {', '.join(_MISSING)}); "
        "install it with scripts/setup_mm.sh VENV_DIR",
        allow_module_level=True,
    )

# installed but broken (e.g. torchvision without its CUDA stubs) is a failure, not a skip
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mmdet.apis
    import mmpose.apis
    import torch
    from mmengine.config import Config

MMDET_CONFIGS = Path(mmdet.__file__).parent / ".mim" / "configs"
MMPOSE_CONFIGS = Path(mmpose.__file__).parent / ".mim" / "configs"
POSE_COCO = "body_2d_keypoint/topdown_heatmap/coco"
REPO = Path(__file__).resolve().parents[1]

_WEIGHT_MARKERS = (
    "http://",
    "https://",
    "torchvision://",
    "open-mmlab://",
    "mmcls://",
    ".pth",
    ".pt",
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any download attempt fails at once instead of hanging (no network here)."""

    def refuse(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(
                f"test_mm_install: network access to {address} is not allowed"
            )
        return real_connect(self, address, *args, **kwargs)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _strip_pretrained(node):
    """Sets every ``init_cfg`` and ``pretrained`` entry of a config tree to None."""
    if isinstance(node, dict):
        for key in list(node.keys()):
            if key in ("init_cfg", "pretrained"):
                node[key] = None
            else:
                _strip_pretrained(node[key])
    elif isinstance(node, (list, tuple)):
        for item in node:
            _strip_pretrained(item)


def _weight_references(node, path="model"):
    """Yields config paths whose string values look like weight files or URLs."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _weight_references(value, f"{path}.{key}")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _weight_references(value, f"{path}[{i}]")
    elif isinstance(node, str) and any(m in node for m in _WEIGHT_MARKERS):
        yield f"{path}={node!r}"


def _offline_config(path: Path, test_scale: int | None = None) -> Config:
    assert path.is_file(), f"config missing from the wheel: {path}"
    cfg = Config.fromfile(str(path))
    _strip_pretrained(cfg.model)
    leftovers = list(_weight_references(cfg.model))
    assert not leftovers, f"weight references left in {path.name}: {leftovers}"
    if test_scale is not None:  # small test input keeps CPU inference fast
        for step in cfg.test_dataloader.dataset.pipeline:
            if step["type"] == "Resize":
                step["scale"] = (test_scale, test_scale)
            if step["type"] == "Pad" and "size" in step:
                step["size"] = (test_scale, test_scale)
    return cfg


@pytest.fixture(scope="module")
def frame(shared_dir) -> np.ndarray:
    """A real 320-px-wide BGR frame (people walking) from the shared video."""
    import cv2

    video = shared_dir / "data" / "video" / "one-by-one-person-detection.mp4"
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 30)
    ok, img = cap.read()
    cap.release()
    assert ok, f"could not read a frame from {video}"
    h, w = img.shape[:2]
    return cv2.resize(img, (320, round(h * 320 / w)), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "config",
    [
        "rtmdet/rtmdet_tiny_8xb32-300e_coco.py",
        "cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py",
    ],
)
def test_mmdet_random_weight_detector_runs_on_a_frame(config, frame):
    cfg = _offline_config(MMDET_CONFIGS / config, test_scale=320)
    if (
        "rpn" in cfg.model.test_cfg
    ):  # fewer proposals keep the 3 cascade stages fast on CPU
        cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
    model = mmdet.apis.init_detector(cfg, None, device="cpu")
    assert next(model.parameters()).device.type == "cpu"
    with torch.no_grad():
        result = mmdet.apis.inference_detector(model, frame)

    pred = result.pred_instances
    n = len(pred)
    assert tuple(pred.bboxes.shape) == (n, 4)
    assert tuple(pred.scores.shape) == (n,) and tuple(pred.labels.shape) == (n,)
    assert n <= cfg.model.test_cfg.get(
        "max_per_img", cfg.model.test_cfg.get("rcnn", {}).get("max_per_img")
    )
    assert torch.isfinite(pred.bboxes).all()
    assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
    assert ((pred.labels >= 0) & (pred.labels < 80)).all()
    # boxes come back in pixels of the input frame (x1 <= x2, y1 <= y2)
    assert (pred.bboxes[:, 2] >= pred.bboxes[:, 0]).all() and (
        pred.bboxes[:, 3] >= pred.bboxes[:, 1]
    ).all()
    assert tuple(result.metainfo["ori_shape"]) == frame.shape[:2]


# ------------------------------------------------------------------------ pose


@pytest.mark.parametrize(
    "config",
    [
        f"{POSE_COCO}/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py",
        f"{POSE_COCO}/td-hm_res50_8xb64-210e_coco-256x192.py",
    ],
)
def test_mmpose_random_weight_topdown_runs_on_a_box(config, frame):
    cfg = _offline_config(MMPOSE_CONFIGS / config)
    cfg.model.test_cfg.flip_test = False  # one forward pass instead of two
    model = mmpose.apis.init_model(cfg, None, device="cpu")
    h, w = frame.shape[:2]
    boxes = np.array([[0.3 * w, 0.1 * h, 0.6 * w, 0.95 * h]], dtype=np.float32)
    with torch.no_grad():
        results = mmpose.apis.inference_topdown(model, frame, boxes, bbox_format="xyxy")

    assert len(results) == len(boxes)
    for box, sample in zip(boxes, results):
        kpts = sample.pred_instances.keypoints
        scores = sample.pred_instances.keypoint_scores
        assert isinstance(kpts, np.ndarray) and kpts.shape == (1, 17, 2)
        assert isinstance(scores, np.ndarray) and scores.shape == (1, 17)
        assert np.isfinite(kpts).all() and np.isfinite(scores).all()
        # heatmap decoding maps keypoints back to frame pixels, inside the
        # (padded to 192:256) box
        x1, y1, x2, y2 = box
        pad = 0.5 * max(x2 - x1, y2 - y1)
        assert (kpts[0, :, 0] >= x1 - pad).all() and (kpts[0, :, 0] <= x2 + pad).all()
        assert (kpts[0, :, 1] >= y1 - pad).all() and (kpts[0, :, 1] <= y2 + pad).all()
    assert model.dataset_meta["num_keypoints"] == 17


# --------------------------------------------------------- mmcv / torchvision


def test_compiled_ops_and_torchvision_run_on_cpu():
    import torchvision
    from mmcv.ops import nms as mmcv_nms
    from mmcv.ops import roi_align as mmcv_roi_align

    boxes = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]]
    )
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = mmcv_nms(boxes, scores, 0.5)
    assert keep.tolist() == [0, 2] and dets.shape == (2, 5)
    assert torchvision.ops.nms(boxes, scores, 0.5).tolist() == [0, 2]

    feat = torch.rand(1, 2, 16, 16)
    rois = torch.tensor([[0.0, 2.0, 2.0, 9.0, 9.0]])
    a = mmcv_roi_align(feat, rois, (3, 3), 1.0, 2, "avg", True)
    b = torchvision.ops.roi_align(feat, rois, (3, 3), 1.0, 2, aligned=True)
    assert a.shape == b.shape == (1, 2, 3, 3)
    assert torch.allclose(a, b, atol=1e-5)


def _stub_manifest() -> Path | None:
    path = Path(sys.prefix) / "lib" / "posetrack-torchvision-stubs" / "manifest.json"
    return path if path.is_file() else None


@pytest.mark.skipif(
    _stub_manifest() is None,
    reason="torchvision is not stubbed in this venv (torch has CUDA or torchvision matches)",
)
def test_torchvision_cuda_stubs_abort_when_called():
    """The stubs only let torchvision load: CUDA entry points fail loudly, device count is 0."""
    import json

    stub_dir = _stub_manifest().parent
    libs = json.loads(_stub_manifest().read_text())["libraries"]
    c10 = stub_dir / "libc10_cuda.so"
    assert "_ZN3c104cuda12device_countEv" in libs["libc10_cuda.so"]
    code = (
        "import ctypes, sys\n"
        f"lib = ctypes.CDLL({str(c10)!r})\n"
        "f = lib._ZN3c104cuda12device_countEv; f.restype = ctypes.c_int8\n"
        "assert f() == 0\n"
        "print('count ok', flush=True)\n"
        "lib._ZN3c104cuda9SetDeviceEab(0, 1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "count ok" in proc.stdout
    assert (
        proc.returncode != 0
        and "CUDA stub" in proc.stderr
        and "_ZN3c104cuda9SetDeviceEab" in proc.stderr
    )


# ----------------------------------------------------------------- checkpoints


def _published_checkpoint(model: torch.nn.Module) -> dict:
    """A checkpoint laid out like OpenMMLab's published ones (``publish_model``
    output: ``meta`` + ``state_dict``), with the numpy objects their meta holds."""
    return {
        "meta": {
            "epoch": 300,
            "iter": 554700,
            "seed": np.int64(1234),
            "mmengine_version": "0.10.7",
            "dataset_meta": {
                "classes": ("person",),
                "palette": np.array([[220, 20, 60]], dtype=np.uint8),
            },
            "hook_msgs": {
                "best_score": np.float64(0.713),
                "last_ckpt": "work_dirs/epoch_300.pth",
            },
            "input_dtype": np.dtype("float32"),
        },
        "state_dict": model.state_dict(),
    }


def _training_checkpoint(model: torch.nn.Module) -> dict:
    """An unpublished ``Runner.save_checkpoint`` output: adds ``message_hub``
    with mmengine ``HistoryBuffer`` objects (which pickle bound methods)."""
    from mmengine.logging import HistoryBuffer

    loss = HistoryBuffer()
    for v in (1.5, 1.2, 0.9):
        loss.update(v)
    ckpt = _published_checkpoint(model)
    ckpt["message_hub"] = {
        "log_scalars": {"train/loss": loss},
        "runtime_info": {"epoch": 300},
    }
    return ckpt


def _as_numpy1_pickle(path: Path) -> None:
    """Rewrites the numpy 2 global names (``numpy._core``) to numpy 1.x ones
    (``numpy.core``), as in checkpoints published before numpy 2."""
    with zipfile.ZipFile(path) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for info, data in entries:
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray\n" in data  # protocol-2 GLOBAL opcodes
                data = data.replace(
                    b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"
                )
            zf.writestr(info, data)


def _numpy_safe_globals() -> list:
    """What OpenMMLab checkpoint metadata needs under ``weights_only=True``:
    numpy arrays, scalars and dtypes, under their numpy 2 and numpy 1 names."""
    from mmengine.logging import HistoryBuffer

    multiarray = importlib.import_module("numpy._core.multiarray")
    dtype_classes = [
        cls
        for cls in vars(np.dtypes).values()
        if isinstance(cls, type) and issubclass(cls, np.dtype)
    ]
    return [
        np.ndarray,
        np.dtype,
        *dtype_classes,
        multiarray._reconstruct,
        multiarray.scalar,
        (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        (multiarray.scalar, "numpy.core.multiarray.scalar"),
        HistoryBuffer,
    ]


def _zeroed_copy(model: torch.nn.Module) -> torch.nn.Module:
    dst = copy.deepcopy(model)
    with torch.no_grad():
        for p in dst.parameters():
            p.zero_()
    return dst


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize(
    "numpy1_names", [False, True], ids=["numpy2-pickle", "numpy1-pickle"]
)
def test_published_checkpoint_with_numpy_meta_loads_weights_only(
    tmp_path, numpy1_names
):
    from mmengine.runner import load_checkpoint

    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ckpt = tmp_path / "model.pth"
    torch.save(_published_checkpoint(src), ckpt)
    if numpy1_names:
        _as_numpy1_pickle(ckpt)

    # torch >= 2.6 defaults to weights_only=True: mmengine's plain torch.load refuses numpy meta
    assert os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") is None
    with pytest.raises(Exception, match="Unsupported global: GLOBAL numpy"):
        load_checkpoint(_zeroed_copy(src), str(ckpt), map_location="cpu")

    # allow-listing the numpy types keeps weights_only=True and loads it
    dst = _zeroed_copy(src)
    with torch.serialization.safe_globals(_numpy_safe_globals()):
        out = load_checkpoint(dst, str(ckpt), map_location="cpu", strict=True)
    _assert_same_weights(src, dst)
    meta = out["meta"]
    assert (
        meta["hook_msgs"]["best_score"] == pytest.approx(0.713) and meta["seed"] == 1234
    )
    assert meta["input_dtype"] == np.dtype("float32")
    np.testing.assert_array_equal(meta["dataset_meta"]["palette"], [[220, 20, 60]])


def test_training_checkpoint_with_message_hub_needs_trusted_load(tmp_path):
    from mmengine.runner import CheckpointLoader, load_checkpoint

    src = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ckpt = tmp_path / "epoch_300.pth"
    torch.save(_training_checkpoint(src), ckpt)

    # HistoryBuffer pickles bound methods through builtins.getattr, which must not be
    # allow-listed: weights_only=True cannot load this file even with the numpy types
    with (
        torch.serialization.safe_globals(_numpy_safe_globals()),
        pytest.raises(Exception, match="getattr"),
    ):
        load_checkpoint(_zeroed_copy(src), str(ckpt), map_location="cpu")

    # trusted files: replace mmengine's local-file loader by one with weights_only=False
    original = CheckpointLoader._schemes[""]

    def load_trusted_local(filename, map_location):
        return torch.load(
            os.path.expanduser(filename), map_location=map_location, weights_only=False
        )

    dst = _zeroed_copy(src)
    try:
        CheckpointLoader.register_scheme(
            prefixes="", loader=load_trusted_local, force=True
        )
        out = load_checkpoint(dst, str(ckpt), map_location="cpu", strict=True)
    finally:
        CheckpointLoader.register_scheme(prefixes="", loader=original, force=True)
    assert CheckpointLoader._schemes[""] is original
    _assert_same_weights(src, dst)
    assert out["message_hub"]["log_scalars"]["train/loss"].current() == pytest.approx(
        0.9
    )


def test_setup_script_is_idempotent_on_this_venv():
    """The script's own check (the same one a re-run starts with) passes here."""
    script = REPO / "scripts" / "setup_mm.sh"
    proc = subprocess.run(
        ["bash", str(script), "--check", sys.prefix],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already installed and working" in proc.stdout
    assert "mmcv" in proc.stdout and "2.1.0" in proc.stdout
