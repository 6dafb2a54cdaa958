"""Shared helpers of the OpenMMLab backends (mmdet detectors, mmpose pose models).

- **Configs** are a path, or a file name that ships inside the installed wheel
  (``site-packages/mmdet/.mim/configs``, ``mmpose/.mim/configs``), e.g.
  ``rtmdet_tiny_8xb32-300e_coco.py`` or ``td-hm_hrnet-w32_8xb64-210e_coco-256x192.py``.
- **Random weights**: without a checkpoint the model is built from the config
  alone, and every ``init_cfg`` that would download pretrained weights is
  removed first (nothing is fetched).
- **Checkpoints** (a path or an URL, downloaded once into the cache) are
  loaded with ``torch.load(weights_only=True)``, with numpy arrays, scalars
  and dtypes allowed (published OpenMMLab checkpoints keep those in ``meta``;
  they cannot run code). Anything else (e.g. training checkpoints with
  mmengine's message hub) needs a full unpickle, which can run code: that
  happens only with a :class:`PickleCheckpointWarning` naming the file. A
  checkpoint whose tensors do not match the config's model is refused with the
  mismatching keys named.
"""

from __future__ import annotations

import difflib
import glob
import os
import pathlib
import warnings

from fiftyone_posetrack.types import BadInputError, MissingDependencyError

__all__ = [
    "require",
    "resolve_config",
    "load_config",
    "load_weights",
    "PickleCheckpointWarning",
    "resolve_device",
]


class PickleCheckpointWarning(UserWarning):
    """A checkpoint is being unpickled (it could run code): load only trusted files."""


def require(package: str):
    """Imports an OpenMMLab package, or says how to install the extra."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as e:
        raise MissingDependencyError(
            f"the {package} backend needs the OpenMMLab extra ({e}); install it with "
            "`bash scripts/setup_mm.sh .venv` (or pip install 'fiftyone-posetrack[mm]' "
            "with an mmcv built for your torch)"
        ) from None


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda:0"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    if device in ("auto", None, ""):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    return str(device)


def resolve_config(config: str | os.PathLike, package: str) -> str:
    """Returns the path of a config: a file, or a name from the ``package`` wheel's configs."""
    path = os.fspath(config)
    if os.path.isfile(path):
        return path
    module = require(package)
    root = os.path.join(os.path.dirname(module.__file__), ".mim", "configs")
    name = os.path.basename(path)
    if not name.endswith(".py"):
        name += ".py"
    hits = sorted(glob.glob(os.path.join(root, "**", name), recursive=True))
    if hits:
        return hits[0]
    known = [os.path.basename(p) for p in glob.glob(os.path.join(root, "**", "*.py"), recursive=True)]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {close}?" if close else ""
    raise FileNotFoundError(f"{package} config not found: {path} (neither a file nor a config shipped with {package}){hint}")


def _drop_pretrained(node) -> None:
    """Removes every ``init_cfg`` (and ``pretrained``) that would download weights."""
    if isinstance(node, dict):
        for key in list(node.keys()):
            if key == "init_cfg":
                node[key] = None
            elif key == "pretrained" and isinstance(node[key], str):
                node[key] = None
            else:
                _drop_pretrained(node[key])
    elif isinstance(node, (list, tuple)):
        for item in node:
            _drop_pretrained(item)


def load_config(config: str | os.PathLike, package: str):
    """Loads a config with pretrained-weight downloads disabled."""
    from mmengine.config import Config

    cfg = Config.fromfile(resolve_config(config, package))
    _drop_pretrained(cfg.model)
    return cfg


def _local_checkpoint(checkpoint: str) -> str:
    if os.path.isfile(checkpoint):
        return checkpoint
    if checkpoint.startswith(("http://", "https://")):
        from fiftyone_posetrack.models import cache_dir, download_file

        target = cache_dir() / "checkpoints" / pathlib.PurePosixPath(checkpoint.split("?")[0]).name
        if not target.is_file():
            download_file(checkpoint, target)
        return str(target)
    raise FileNotFoundError(f"checkpoint not found: {checkpoint}")


def _numpy_safe_globals() -> list:
    """The numpy classes and reconstructors that weights-only unpickling may create."""
    import numpy as np
    from numpy._core import multiarray

    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return [
        np.ndarray,
        np.dtype,
        *dtypes,
        multiarray._reconstruct,
        multiarray.scalar,
        (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),  # pickled under numpy 1
        (multiarray.scalar, "numpy.core.multiarray.scalar"),
    ]


def _read_checkpoint(path: str) -> dict:
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        warnings.warn(
            f"{path} is a pickle that weights-only loading refuses (it holds Python objects); "
            "unpickling it can run arbitrary code, so load only checkpoints you trust",
            PickleCheckpointWarning,
            stacklevel=3,
        )
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError) as e:
        raise BadInputError(f"cannot read checkpoint {path}: {e}") from None


def load_weights(model, checkpoint: str) -> dict:
    """Loads a checkpoint into ``model``, refusing one that does not match it.

    Returns:
        the checkpoint's ``meta`` dict (may hold ``dataset_meta``)

    Raises:
        BadInputError: naming missing / unexpected / mis-shaped keys
    """
    path = _local_checkpoint(os.fspath(checkpoint))
    ckpt = _read_checkpoint(path)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise BadInputError(f"checkpoint {path} holds no state_dict")
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        def names(keys):
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

        parts = []
        if shapes:
            parts.append(f"shape mismatch: {names([f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}' for k in shapes])}")
        if missing:
            parts.append(f"missing: {names(missing)}")
        if unexpected:
            parts.append(f"unexpected: {names(unexpected)}")
        raise BadInputError(f"checkpoint {path} does not match the config's model ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)
    return ckpt.get("meta", {}) if isinstance(ckpt, dict) else {}
