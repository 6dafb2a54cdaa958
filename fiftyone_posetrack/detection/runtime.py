"""ONNX Runtime sessions and model-file checks shared by the ONNX / TFLite backends.

:func:`onnx_session` opens a model with the CUDA execution provider when the
device asks for it (``"cuda"``, ``"cuda:N"``, or ``"auto"``) and onnxruntime has
it (the ``onnxruntime-gpu`` wheel), else on the CPU. Missing files, files that
are not ONNX, and missing runtimes give a :class:`BadInputError` /
``FileNotFoundError`` that names the file and where to get it.
"""

from __future__ import annotations

import logging
import os

from fiftyone_posetrack.types import BadInputError, missing_dependency

logger = logging.getLogger(__name__)

__all__ = ["check_model_file", "onnx_providers", "onnx_session", "sniff_onnx_detector"]


def check_model_file(path, what: str, source: str) -> str:
    """Returns ``path`` as a string if it is a readable file.

    Args:
        path: the model file
        what: what the file is, e.g. ``"RTMDet ONNX model"``
        source: where to get it (shown when the file is missing)

    Raises:
        FileNotFoundError: naming the file and where to get it
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path!r}. Get it from {source}")
    return path


def onnx_providers(device: str = "auto") -> list:
    """The onnxruntime execution providers for ``device``.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``

    Returns:
        a provider list for ``onnxruntime.InferenceSession``; CUDA (with the
        device id) first when asked for and available, CPU always last
    """
    import onnxruntime as ort

    device = str(device).lower()
    if device != "auto" and device != "cpu" and not device.startswith("cuda"):
        raise BadInputError(f"device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    wants_cuda = device.startswith("cuda") or device == "auto"
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if wants_cuda and has_cuda:
        index = int(device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    if device.startswith("cuda"):
        logger.warning(
            "device %r requested but onnxruntime has no CUDAExecutionProvider "
            "(install onnxruntime-gpu); running on the CPU",
            device,
        )
    return ["CPUExecutionProvider"]


def cpu_threads(most: int | None = None) -> int:
    """The CPU threads a model runtime should use in this process.

    ``OMP_NUM_THREADS`` when it is a positive integer (Ray sets it to an
    actor's ``num_cpus``; onnxruntime and LiteRT do not read it themselves),
    else the cores this process may run on (its CPU affinity: ``taskset``, a
    container's cpuset), at most ``most``. One thread per core: more threads
    than cores make onnxruntime's spinning workers wait on each other.
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        n = int(env)
    else:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(n, most) if most else n)


def onnx_session(
    path, device: str = "auto", what: str = "ONNX model", source: str = "", threads: int = 0
):
    """Opens an ONNX model with onnxruntime.

    Args:
        path: the ``.onnx`` file
        device: see :func:`onnx_providers`
        what: what the model is (for error messages)
        source: where to get the file (for error messages)
        threads: intra-op CPU threads (0: :func:`cpu_threads`)

    Returns:
        an ``onnxruntime.InferenceSession``

    Raises:
        FileNotFoundError: if the file is missing
        BadInputError: if the file is not a loadable ONNX model
    """
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise missing_dependency(what, "onnxruntime", "onnx", e) from e
    path = check_model_file(path, what, source or "the model's release page")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = int(threads) if threads else cpu_threads()
    try:
        return ort.InferenceSession(path, sess_options=options, providers=onnx_providers(device))
    except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf types
        raise BadInputError(f"{what} {path!r} is not a loadable ONNX model: {e}") from e


def sniff_onnx_detector(path) -> str:
    """Tells which detector backend fits an ONNX graph by its outputs.

    Returns:
        ``"rtmdet-onnx"`` for an mmdeploy end2end graph (outputs ``dets`` and
        ``labels``), ``"yolox-onnx"`` for one raw ``[B, A, 5 + C]`` output

    Raises:
        BadInputError: when neither layout fits
    """
    session = onnx_session(path, "cpu", "ONNX detector")
    outputs = session.get_outputs()
    names = [o.name for o in outputs]
    if "dets" in names and "labels" in names:
        return "rtmdet-onnx"
    if len(outputs) == 1 and len(outputs[0].shape) == 3:
        return "yolox-onnx"
    shapes = [o.shape for o in outputs]
    raise BadInputError(
        f"ONNX detector {os.fspath(path)!r}: cannot tell the backend from its outputs "
        f"{names} {shapes}; name it explicitly (rtmdet-onnx:PATH or yolox-onnx:PATH)"
    )
