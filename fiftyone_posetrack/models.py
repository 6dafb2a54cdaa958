"""Named pretrained models: where their files live locally and where they come from.

A model name (e.g. ``rtmdet-nano-person``) maps to a folder of files. The folder
is looked up, in order, in

1. the ``models_dir`` argument (the CLI's ``--models-dir``),
2. the ``POSETRACK_MODELS_DIR`` environment variable,
3. the cache ``~/.cache/fiftyone-posetrack/models`` (``POSETRACK_CACHE``),

with the layout ``<models_dir>/<name>/<file>``. A model missing from all of
them is downloaded from its official location into the cache, once
(``POSETRACK_OFFLINE=1`` forbids downloads). With no network the error says
exactly which URL to fetch and where to put the file.
"""

from __future__ import annotations

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

__all__ = ["ModelInfo", "MODELS", "cache_dir", "model_path", "ModelUnavailableError"]


@dataclass(frozen=True)
class ModelInfo:
    """A named pretrained model.

    Attributes:
        name: the folder name, e.g. ``rtmdet-nano-person``
        kind: ``"detector"``, ``"pose"`` or ``"reid"``
        backend: the backend that runs it (a model-spec prefix, e.g. ``rtmdet-onnx``)
        main_file: the file handed to the backend
        url: the official download
        archive_member: for a zip download, the member that holds ``main_file``'s
            folder contents (all members of that folder are extracted)
        license: the weights' license
    """

    name: str
    kind: str
    backend: str
    main_file: str
    url: str
    archive_member: str | None = None
    license: str = ""
    description: str = ""


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo(
            "rtmdet-nano-person",
            "detector",
            "rtmdet-onnx",
            "end2end.onnx",
            "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/"
            "rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.zip",
            archive_member="end2end.onnx",
            license="Apache-2.0",
            description="RTMDet-nano person detector (COCO+Objects365), mmdeploy ONNX, 320x320",
        ),
        ModelInfo(
            "yolox-nano",
            "detector",
            "yolox-onnx",
            "yolox_nano.onnx",
            "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx",
            license="Apache-2.0",
            description="YOLOX-nano COCO detector (person = class 0), ONNX, 416x416",
        ),
        ModelInfo(
            "movenet-lightning-int8",
            "pose",
            "movenet-tflite",
            "lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
            "https://tfhub.dev/google/lite-model/movenet/singlepose/lightning/tflite/int8/4?lite-format=tflite",
            license="Apache-2.0",
            description="MoveNet single-pose lightning int8, TFLite, 192x192 crops",
        ),
        ModelInfo(
            "rtmpose-m-body7",
            "pose",
            "rtmpose-onnx",
            "end2end.onnx",
            "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/"
            "rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip",
            archive_member="end2end.onnx",
            license="Apache-2.0",
            description="RTMPose-m (Body7) top-down COCO-17, SimCC, mmdeploy ONNX, 256x192",
        ),
    )
}


def cache_dir() -> pathlib.Path:
    """The download cache: ``$POSETRACK_CACHE/models`` or ``~/.cache/fiftyone-posetrack/models``."""
    root = os.environ.get("POSETRACK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fiftyone-posetrack"
    )
    return pathlib.Path(root) / "models"


def _search_dirs(models_dir: str | os.PathLike | None) -> list[pathlib.Path]:
    dirs = [models_dir, os.environ.get("POSETRACK_MODELS_DIR"), cache_dir()]
    return [pathlib.Path(d).expanduser() for d in dirs if d]


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
    if name not in MODELS:
        raise BadInputError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    info = MODELS[name]
    for folder in _search_dirs(models_dir):
        path = folder / name / info.main_file
        if path.is_file():
            return path
    target = cache_dir() / name / info.main_file
    if not download or os.environ.get("POSETRACK_OFFLINE", "") not in ("", "0"):
        raise ModelUnavailableError(_missing_message(info, models_dir, target, None))
    try:
        _download(info, target.parent)
    except OSError as e:  # URLError, timeouts, refused connections
        raise ModelUnavailableError(_missing_message(info, models_dir, target, e)) from None
    return target


def _missing_message(info: ModelInfo, models_dir, target: pathlib.Path, error) -> str:
    searched = ", ".join(str(d / info.name) for d in _search_dirs(models_dir))
    what = f"download failed ({error})" if error else "downloads are disabled"
    unpack = (
        f"unzip it and put its {info.archive_member!r} (and the .json files beside it)"
        if info.archive_member
        else "save it"
    )
    return (
        f"model {info.name!r} ({info.description}) was not found in [{searched}] and the {what}. "
        f"Fetch {info.url} , {unpack} as {target} "
        f"(or into <DIR>/{info.name}/ and pass --models-dir DIR or set POSETRACK_MODELS_DIR=DIR)."
    )


def _download(info: ModelInfo, folder: pathlib.Path) -> None:
    logger.info("downloading %s from %s", info.name, info.url)
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
            (tmp / info.main_file).write_bytes(data)
        for file in tmp.iterdir():
            os.replace(file, folder / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_model_spec(spec: str, models_dir: str | os.PathLike | None = None) -> str:
    """Turns a model name of :data:`MODELS` into a ``BACKEND:PATH`` spec.

    Any other string (``rtmdet-onnx:PATH``, ``mmdet:CONFIG.py:CKPT``, a file
    path) is returned unchanged.
    """
    if isinstance(spec, str) and spec in MODELS:
        return f"{MODELS[spec].backend}:{model_path(spec, models_dir)}"
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
