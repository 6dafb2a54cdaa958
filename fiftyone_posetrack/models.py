"""Named pretrained models (the model zoo): where their files live locally and where they come from.

A model name (e.g. ``rtmdet-nano-person``) maps to a folder of files. The folder
is looked up, in order, in

1. the ``models_dir`` argument (the CLI's ``--models-dir``),
2. the ``POSETRACK_MODELS_DIR`` environment variable,
3. the cache ``~/.cache/fiftyone-posetrack/models`` (``POSETRACK_CACHE``),

with the layout ``<models_dir>/<name>/<file>``. A model missing from all of
them is downloaded from its official location into the cache, once
(``POSETRACK_OFFLINE=1`` forbids downloads). With no network the error says
exactly which URL to fetch and where to put the file.

Kinds of entries (:class:`ModelInfo`):

- a single file (ONNX, TFLite, torch state dict) or a zip of an mmdeploy "sdk"
  folder, run by one of our backends (``rtmdet-onnx``, ``yolox-onnx``,
  ``rtmpose-onnx``, ``movenet-tflite``, ``torchreid``, ``onnx-reid``);
- an OpenMMLab model (``mmdet`` / ``mmpose``) = a config shipped inside the
  installed wheel (``site-packages/<package>/.mim/<config>``) + the official
  checkpoint (downloaded like any other file); the model spec handed to the
  backend is ``mmdet:<config path>:<checkpoint path>``.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import pathlib
import re
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass

from fiftyone_posetrack.types import BadInputError, ModelUnavailableError

logger = logging.getLogger(__name__)

__all__ = [
    "ModelInfo",
    "MODELS",
    "BACKENDS",
    "cache_dir",
    "find_model",
    "model_path",
    "mm_config_path",
    "resolve_model_spec",
    "ModelUnavailableError",
]


#: backend -> kind of model it runs
BACKENDS = {
    "rtmdet-onnx": "detector",
    "yolox-onnx": "detector",
    "mmdet": "detector",
    "rtmpose-onnx": "pose",
    "movenet-tflite": "pose",
    "mmpose": "pose",
    "torchreid": "reid",
    "onnx-reid": "reid",
}


@dataclass(frozen=True)
class ModelInfo:
    """A named pretrained model.

    Attributes:
        name: the folder name, e.g. ``rtmdet-nano-person``
        kind: ``"detector"``, ``"pose"`` or ``"reid"``
        backend: the backend that runs it (a key of :data:`BACKENDS`)
        main_file: the file handed to the backend (for ``mmdet`` / ``mmpose``:
            the checkpoint)
        url: the official download of ``main_file`` (or of the zip holding it)
        archive_member: for a zip download, the member that holds ``main_file``'s
            folder contents (all members of that folder are extracted)
        license: the weights' license
        description: one line: what it is, what it was trained on, its input size
        size_mb: approximate download size in megabytes
        config: ``mmdet`` / ``mmpose``: the config, relative to the installed
            wheel's ``.mim`` folder (e.g. ``configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py``)
        arch: ``torchreid``: the architecture (``osnet_x0_25``, ...)
        input_format: ``onnx-reid``: the input convention as ``(("rgb", False), ...)``
            pairs passed to :class:`~fiftyone_posetrack.reid.onnx_reid.OnnxReID`
        manual: set when the official release cannot be used as downloaded
            (e.g. needs a conversion): the steps, shown instead of downloading
    """

    name: str
    kind: str
    backend: str
    main_file: str
    url: str
    archive_member: str | None = None
    license: str = ""
    description: str = ""
    size_mb: float = 0.0
    config: str | None = None
    arch: str | None = None
    input_format: tuple = ()
    manual: str | None = None

    @property
    def package(self) -> str | None:
        """The OpenMMLab package whose wheel ships :attr:`config` (``mmdet`` / ``mmpose``)."""
        return self.backend if self.backend in ("mmdet", "mmpose") else None


_SDK = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/"
_YOLOX = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/"
_MMDET = "https://download.openmmlab.com/mmdetection/v2.0/"
_MMPOSE = "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/"
_TFHUB = "https://tfhub.dev/google/lite-model/movenet/singlepose/"
# torchreid's model zoo (https://kaiyangzhou.github.io/deep-person-reid/MODEL_ZOO, "Same-domain ReID",
# column msmt17) publishes its checkpoints on Google Drive
_GDRIVE = "https://drive.google.com/uc?export=download&id="
_OMZ = (
    "https://storage.openvinotoolkit.org/repositories/open_model_zoo/2021.2/models_bin/3/"
    "person-reidentification-retail-0287/FP32/"
)


def _sdk(name, kind, backend, zip_name, size_mb, description) -> ModelInfo:
    """An mmdeploy ONNX "sdk" zip of the RTMPose project (end2end.onnx + pipeline.json ...)."""
    return ModelInfo(name, kind, backend, "end2end.onnx", _SDK + zip_name, archive_member="end2end.onnx",
                     license="Apache-2.0", description=description, size_mb=size_mb)  # fmt: skip


def _mm(name, kind, config, url, size_mb, description) -> ModelInfo:
    """An OpenMMLab model: a config shipped in the wheel + the official checkpoint."""
    backend = "mmdet" if kind == "detector" else "mmpose"
    return ModelInfo(name, kind, backend, url.rsplit("/", 1)[1], url, license="Apache-2.0",
                     description=description, size_mb=size_mb, config=config)  # fmt: skip


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        # -- person detectors -------------------------------------------------
        _sdk("rtmdet-nano-person", "detector", "rtmdet-onnx",
             "rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.zip", 3.6,
             "RTMDet-nano person detector (COCO+Objects365), mmdeploy ONNX, 320x320"),
        _sdk("rtmdet-m-person", "detector", "rtmdet-onnx",
             "rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.zip", 90,
             "RTMDet-m person detector (COCO+Objects365, person AP 62.5), mmdeploy ONNX, 640x640"),
        ModelInfo("yolox-nano", "detector", "yolox-onnx", "yolox_nano.onnx", _YOLOX + "yolox_nano.onnx",
                  license="Apache-2.0", size_mb=3.7,
                  description="YOLOX-nano COCO detector (person = class 0, box AP 25.8), ONNX, 416x416"),
        ModelInfo("yolox-s", "detector", "yolox-onnx", "yolox_s.onnx", _YOLOX + "yolox_s.onnx",
                  license="Apache-2.0", size_mb=36,
                  description="YOLOX-s COCO detector (person = class 0, box AP 40.5), ONNX, 640x640"),
        ModelInfo("yolox-m", "detector", "yolox-onnx", "yolox_m.onnx", _YOLOX + "yolox_m.onnx",
                  license="Apache-2.0", size_mb=101,
                  description="YOLOX-m COCO detector (person = class 0, box AP 47.2), ONNX, 640x640"),
        ModelInfo("yolox-x", "detector", "yolox-onnx", "yolox_x.onnx", _YOLOX + "yolox_x.onnx",
                  license="Apache-2.0", size_mb=396,
                  description="YOLOX-x COCO detector (person = class 0, box AP 51.1), ONNX, 640x640"),
        _mm("faster-rcnn-r50-fpn-coco", "detector", "configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py",
            _MMDET + "faster_rcnn/faster_rcnn_r50_fpn_1x_coco/faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth",
            160, "mmdet Faster R-CNN ResNet-50 FPN 1x, COCO (box AP 37.4), 1333x800"),
        _mm("cascade-rcnn-r101-fpn-coco", "detector", "configs/cascade_rcnn/cascade-rcnn_r101_fpn_20e_coco.py",
            _MMDET + "cascade_rcnn/cascade_rcnn_r101_fpn_20e_coco/"
            "cascade_rcnn_r101_fpn_20e_coco_bbox_mAP-0.425_20200504_231812-5057dcc5.pth",
            340, "mmdet Cascade R-CNN ResNet-101 FPN 20e, COCO (box AP 42.5), 1333x800"),
        _mm("cascade-rcnn-x101-fpn-coco", "detector", "configs/cascade_rcnn/cascade-rcnn_x101_64x4d_fpn_20e_coco.py",
            _MMDET + "cascade_rcnn/cascade_rcnn_x101_64x4d_fpn_20e_coco/"
            "cascade_rcnn_x101_64x4d_fpn_20e_coco_20200509_224357-051557b1.pth",
            510, "mmdet Cascade R-CNN ResNeXt-101 64x4d FPN 20e, COCO (box AP 44.5), 1333x800"),
        # -- top-down pose (COCO-17 keypoints) --------------------------------
        ModelInfo("movenet-lightning-int8", "pose", "movenet-tflite",
                  "lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
                  _TFHUB + "lightning/tflite/int8/4?lite-format=tflite", license="Apache-2.0", size_mb=2.9,
                  description="MoveNet single-pose lightning int8, TFLite, 192x192 crops"),
        ModelInfo("movenet-thunder", "pose", "movenet-tflite",
                  "lite-model_movenet_singlepose_thunder_tflite_int8_4.tflite",
                  _TFHUB + "thunder/tflite/int8/4?lite-format=tflite", license="Apache-2.0", size_mb=7.0,
                  description="MoveNet single-pose thunder int8, TFLite, 256x256 crops"),
        _sdk("rtmpose-t-body7", "pose", "rtmpose-onnx",
             "rtmpose-t_simcc-body7_pt-body7_420e-256x192-026a1439_20230504.zip", 12.5,
             "RTMPose-t (Body7) top-down COCO-17, SimCC, mmdeploy ONNX, 256x192"),
        _sdk("rtmpose-s-body7", "pose", "rtmpose-onnx",
             "rtmpose-s_simcc-body7_pt-body7_420e-256x192-acd4a1ef_20230504.zip", 21,
             "RTMPose-s (Body7) top-down COCO-17, SimCC, mmdeploy ONNX, 256x192"),
        _sdk("rtmpose-m-body7", "pose", "rtmpose-onnx",
             "rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip", 51,
             "RTMPose-m (Body7) top-down COCO-17, SimCC, mmdeploy ONNX, 256x192"),
        _sdk("rtmpose-l-body7", "pose", "rtmpose-onnx",
             "rtmpose-l_simcc-body7_pt-body7_420e-256x192-4dba18fc_20230504.zip", 104,
             "RTMPose-l (Body7) top-down COCO-17, SimCC, mmdeploy ONNX, 256x192"),
        _mm("hrnet-w32-coco-256x192", "pose",
            "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py",
            _MMPOSE + "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth",
            110, "mmpose HRNet-w32 heatmap top-down, COCO (AP 74.6), 256x192"),
        _mm("hrnet-w48-coco-256x192", "pose",
            "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_8xb32-210e_coco-256x192.py",
            _MMPOSE + "td-hm_hrnet-w48_8xb32-210e_coco-256x192-0e67c616_20220913.pth",
            245, "mmpose HRNet-w48 heatmap top-down, COCO (AP 75.6), 256x192"),
        _mm("hrnet-w48-coco-384x288", "pose",
            "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w48_8xb32-210e_coco-384x288.py",
            _MMPOSE + "td-hm_hrnet-w48_8xb32-210e_coco-384x288-c161b7de_20220915.pth",
            245, "mmpose HRNet-w48 heatmap top-down, COCO (AP 76.7), 384x288"),
        _mm("simplebaseline-r50-coco-256x192", "pose",
            "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py",
            _MMPOSE + "td-hm_res50_8xb64-210e_coco-256x192-04af38ce_20220923.pth",
            130, "mmpose SimpleBaseline ResNet-50 heatmap top-down, COCO (AP 71.8), 256x192"),
        _mm("simplebaseline-r152-coco-256x192", "pose",
            "configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_res152_8xb32-210e_coco-256x192.py",
            _MMPOSE + "td-hm_res152_8xb32-210e_coco-256x192-0345f330_20220928.pth",
            260, "mmpose SimpleBaseline ResNet-152 heatmap top-down, COCO (AP 73.6), 256x192"),
        # -- person ReID ------------------------------------------------------
        ModelInfo("osnet-x0_25-msmt17", "reid", "torchreid", "osnet_x0_25_msmt17.pth",
                  _GDRIVE + "1sSwXSUlj4_tHZequ_iZ8w_Jh0VaRQMqF", license="MIT", size_mb=3.1, arch="osnet_x0_25",
                  description="torchreid OSNet x0.25 trained on MSMT17 (R1 61.4), 256x128 RGB, 512-d"),
        ModelInfo("osnet-x1_0-msmt17", "reid", "torchreid", "osnet_x1_0_msmt17.pth",
                  _GDRIVE + "112EMUfBPYeYg70w-syK6V6Mx8-Qb9Q1M", license="MIT", size_mb=11, arch="osnet_x1_0",
                  description="torchreid OSNet x1.0 trained on MSMT17 (R1 74.9), 256x128 RGB, 512-d"),
        ModelInfo("omz-person-reid-0287", "reid", "onnx-reid", "person-reidentification-retail-0287.onnx",
                  _OMZ + "person-reidentification-retail-0287.xml", license="Apache-2.0", size_mb=2.9,
                  input_format=(("rgb", False), ("mean", (0.0, 0.0, 0.0)), ("std", (1.0, 1.0, 1.0))),
                  description="Open Model Zoo person-reidentification-retail-0287 (OSNet-like, Market R1 92.9), "
                  "256x128 BGR 0-255, 256-d",
                  manual="Open Model Zoo publishes it as OpenVINO IR only (the .xml above and the .bin beside it); "
                  "convert the IR to ONNX (e.g. openvino2tensorflow, then tf2onnx: input [1,256,128,3] NHWC, "
                  "BGR, 0-255)"),
    )
}  # fmt: skip


def cache_dir() -> pathlib.Path:
    """The download cache: ``$POSETRACK_CACHE/models`` or ``~/.cache/fiftyone-posetrack/models``."""
    root = os.environ.get("POSETRACK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fiftyone-posetrack"
    )
    return pathlib.Path(root) / "models"


def _search_dirs(models_dir: str | os.PathLike | None) -> list[pathlib.Path]:
    dirs = [models_dir, os.environ.get("POSETRACK_MODELS_DIR"), cache_dir()]
    return [pathlib.Path(d).expanduser() for d in dirs if d]


def _info(name: str) -> ModelInfo:
    if name not in MODELS:
        raise BadInputError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    return MODELS[name]


def find_model(name: str, models_dir: str | os.PathLike | None = None) -> pathlib.Path | None:
    """The local path of a named model's main file, or None (never downloads).

    Raises:
        BadInputError: for an unknown name
    """
    info = _info(name)
    for folder in _search_dirs(models_dir):
        path = folder / name / info.main_file
        if path.is_file():
            return path
    return None


def model_path(name: str, models_dir: str | os.PathLike | None = None, download: bool = True) -> pathlib.Path:
    """Returns the local path of a named model's main file, downloading it if needed.

    Args:
        name: a key of :data:`MODELS`
        models_dir: a local models folder searched first (layout ``<dir>/<name>/<file>``)
        download: fetch the model into the cache when it is not found locally
            (never when the environment sets ``POSETRACK_OFFLINE=1``)

    Raises:
        BadInputError: for an unknown name
        ModelUnavailableError: when the model is not local and cannot be
            downloaded; the message gives the URL and the target path
    """
    info = _info(name)
    found = find_model(name, models_dir)
    if found is not None:
        return found
    target = cache_dir() / name / info.main_file
    if info.manual or not download or os.environ.get("POSETRACK_OFFLINE", "") not in ("", "0"):
        raise ModelUnavailableError(_missing_message(info, models_dir, target, None))
    try:
        _download(info, target.parent)
    except (OSError, zipfile.BadZipFile) as e:  # URLError, timeouts, refused connections, truncated zips
        raise ModelUnavailableError(_missing_message(info, models_dir, target, e)) from None
    return target


def _missing_message(info: ModelInfo, models_dir, target: pathlib.Path, error) -> str:
    searched = ", ".join(str(d / info.name) for d in _search_dirs(models_dir))
    if error:
        what = f"the download failed ({error})"
    elif info.manual:
        what = "it cannot be downloaded as is"
    else:
        what = "downloads are disabled"
    unpack = (
        f"unzip it and put its {info.archive_member!r} (and the .json files beside it)"
        if info.archive_member
        else "save it"
    )
    steps = f" {info.manual}," if info.manual else ""
    return (
        f"model {info.name!r} ({info.description}) was not found in [{searched}] and {what}. "
        f"Fetch {info.url} ,{steps} {unpack} as {target} "
        f"(or into <DIR>/{info.name}/ and pass --models-dir DIR or set POSETRACK_MODELS_DIR=DIR)."
    )


def _download(info: ModelInfo, folder: pathlib.Path) -> None:
    """Downloads into a temporary folder beside ``folder`` and moves the files in (atomic per file)."""
    logger.info("downloading %s (~%s MB) from %s", info.name, info.size_mb, info.url)
    with urllib.request.urlopen(info.url, timeout=60) as response:  # noqa: S310 - fixed https URLs
        data = response.read()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{info.name}-"))
    try:
        if info.archive_member:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.namelist() if m.endswith("/" + info.archive_member)]
                if not members:
                    raise OSError(f"{info.url} does not contain {info.archive_member}")
                prefix = members[0][: -len(info.archive_member)]
                for member in archive.namelist():
                    if member.startswith(prefix) and not member.endswith("/"):
                        (tmp / pathlib.Path(member).name).write_bytes(archive.read(member))
        else:
            if data[:15].lower().startswith((b"<!doctype html", b"<html")):
                raise OSError(f"{info.url} answered with a web page, not the model file")
            (tmp / info.main_file).write_bytes(data)
        for file in tmp.iterdir():
            os.replace(file, folder / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def mm_config_path(info: ModelInfo) -> pathlib.Path:
    """The config of an ``mmdet`` / ``mmpose`` model inside the installed wheel.

    The package is located without being imported (no mmcv needed to list models).

    Raises:
        BadInputError: the model has no config, or the package is not installed
        FileNotFoundError: the installed wheel does not ship the config
    """
    if not info.package or not info.config:
        raise BadInputError(f"model {info.name!r} ({info.backend}) has no OpenMMLab config")
    spec = importlib.util.find_spec(info.package)
    if spec is None or not spec.submodule_search_locations:
        raise BadInputError(
            f"model {info.name!r} needs the {info.package} package (its config {info.config} ships in the "
            "wheel); install the OpenMMLab extra: bash scripts/setup_mm.sh .venv"
        )
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / ".mim" / info.config
    if not path.is_file():
        raise FileNotFoundError(f"model {info.name!r}: the installed {info.package} has no config {path}")
    return path


def resolve_model_spec(spec: str, models_dir: str | os.PathLike | None = None) -> str:
    """Turns a model name of :data:`MODELS` into a ``BACKEND:PATH[:CHECKPOINT]`` spec.

    Any other string (``rtmdet-onnx:PATH``, ``mmdet:CONFIG.py:CKPT``, a file
    path) is returned unchanged.
    """
    if isinstance(spec, str) and spec in MODELS:
        info = MODELS[spec]
        if info.package:
            config = mm_config_path(info)  # before any download: a missing package is the first problem
            return f"{info.backend}:{config}:{model_path(spec, models_dir)}"
        return f"{info.backend}:{model_path(spec, models_dir)}"
    if isinstance(spec, str) and spec.strip() and not re.search(r"[:/\\.]", spec):  # a name, not a spec or path
        raise BadInputError(
            f"unknown model {spec!r}; known models: {sorted(MODELS)} "
            "(or give a spec BACKEND:PATH, e.g. rtmdet-onnx:/models/det.onnx)"
        )
    return spec


def download_file(url: str, target: str | os.PathLike) -> pathlib.Path:
    """Downloads ``url`` to ``target`` (atomically), unless downloads are forbidden.

    Raises:
        ModelUnavailableError: offline (``POSETRACK_OFFLINE=1`` or no network),
            naming the URL and where to put the file by hand
    """
    target = pathlib.Path(target)
    if os.environ.get("POSETRACK_OFFLINE", "") not in ("", "0"):
        raise ModelUnavailableError(f"downloads are disabled (POSETRACK_OFFLINE); fetch {url} and save it as {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:  # noqa: S310
            shutil.copyfileobj(response, f)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ModelUnavailableError(f"download of {url} failed ({e}); fetch it and save it as {target}") from None
    os.replace(tmp, target)
    return target
