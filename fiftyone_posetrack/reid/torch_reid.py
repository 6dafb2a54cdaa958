"""Torch ReID networks loaded from checkpoints: OSNet and ResNet50 (BNNeck).

Architectures (our own code, key names compatible with the usual checkpoints):

- ``osnet_x1_0``, ``osnet_x0_75``, ``osnet_x0_5``, ``osnet_x0_25``: OSNet
  (Zhou et al., "Omni-Scale Feature Learning for Person Re-Identification",
  ICCV 2019), 512-d features, torchreid key layout;
- ``resnet50``: ResNet50 with the BNNeck of Luo et al. ("Bag of Tricks and a
  Strong Baseline for Deep Person Re-identification", 2019): 2048-d features
  after the neck's batch norm. Checkpoints with ``base.*`` / ``bottleneck.*``
  keys (strong-baseline layout) or bare torchreid / torchvision keys
  (``conv1.*``, ``layer1.*``: no neck, last stride 2) are both accepted.

Checkpoint handling: a ``state_dict`` (or ``model``) entry is used when
present, ``module.`` prefixes (DataParallel) are stripped, and the
identity-classifier weights (``classifier.*``, and ResNet's ImageNet ``fc.*``)
are dropped. Files are read with ``torch.load(weights_only=True)``; only if
that fails are they unpickled fully, with a warning. Pretrained weights are
never downloaded.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fiftyone_posetrack.reid.base import Embedder
from fiftyone_posetrack.types import BadInputError

__all__ = [
    "ARCHS",
    "OSNet",
    "ResNet50ReID",
    "TorchEmbedder",
    "TorchReID",
    "build_reid_model",
    "load_state_dict",
    "read_checkpoint",
    "resolve_device",
]

#: OSNet widths: channels of conv1 and the three stages
_OSNET_CHANNELS = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}
#: architectures :class:`TorchReID` builds
ARCHS = tuple(_OSNET_CHANNELS) + ("resnet50",)
_ZOO = "torchreid's model zoo (https://kaiyangzhou.github.io/deep-person-reid/MODEL_ZOO)"


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    d = str(device).lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d != "cpu" and not d.startswith("cuda"):
        raise BadInputError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError(f"device {device!r}: this torch build has no CUDA device")
    return torch.device(d)


# -- OSNet -----------------------------------------------------------------


class _ConvBN(nn.Module):
    """Convolution without bias, batch norm, optional ReLU."""

    def __init__(self, cin, cout, k=1, stride=1, padding=0, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.use_relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.use_relu else x


class _LiteConv(nn.Module):
    """Pointwise conv then depthwise 3x3, batch norm, ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv2(self.conv1(x))))


class _Gate(nn.Module):
    """Channel gate shared by the streams of an OS block (squeeze-excitation)."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x):
        w = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(w))))


class _OSBlock(nn.Module):
    """Omni-scale residual block: 4 streams of 1-4 lite 3x3 convs, gated sum."""

    def __init__(self, cin, cout):
        super().__init__()
        mid = cout // 4
        self.conv1 = _ConvBN(cin, mid)
        self.conv2a = _LiteConv(mid, mid)
        self.conv2b = nn.Sequential(*[_LiteConv(mid, mid) for _ in range(2)])
        self.conv2c = nn.Sequential(*[_LiteConv(mid, mid) for _ in range(3)])
        self.conv2d = nn.Sequential(*[_LiteConv(mid, mid) for _ in range(4)])
        self.gate = _Gate(mid)
        self.conv3 = _ConvBN(mid, cout, relu=False)
        self.downsample = _ConvBN(cin, cout, relu=False) if cin != cout else None

    def forward(self, x):
        y = self.conv1(x)
        streams = (self.conv2a, self.conv2b, self.conv2c, self.conv2d)
        y = self.conv3(sum(self.gate(s(y)) for s in streams))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(y + skip)


def _os_stage(cin, cout, pool: bool) -> nn.Sequential:
    layers = [_OSBlock(cin, cout), _OSBlock(cout, cout)]
    if pool:
        layers.append(nn.Sequential(_ConvBN(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet feature extractor (eval output: the 512-d embedding)."""

    def __init__(self, channels: Sequence[int], feature_dim: int = 512):
        super().__init__()
        c0, c1, c2, c3 = channels
        self.conv1 = _ConvBN(3, c0, 7, stride=2, padding=3)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _os_stage(c0, c1, pool=True)
        self.conv3 = _os_stage(c1, c2, pool=True)
        self.conv4 = _os_stage(c2, c3, pool=False)
        self.conv5 = _ConvBN(c3, c3)
        self.fc = nn.Sequential(nn.Linear(c3, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU())
        self.feature_dim = feature_dim

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.conv4(self.conv3(self.conv2(x))))
        return self.fc(x.mean(dim=(2, 3)))


# -- ResNet50 + BNNeck -----------------------------------------------------


class _Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride=1):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class _ResNet50Trunk(nn.Module):
    def __init__(self, last_stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin, stages = 64, []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, last_stride)):
            layer = [_Bottleneck(cin, planes, stride)]
            layer += [_Bottleneck(planes * 4, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layer))
            cin = planes * 4
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNet50ReID(nn.Module):
    """ResNet50 with global average pooling and an optional BNNeck (2048-d)."""

    def __init__(self, bnneck: bool = True, last_stride: int = 1):
        super().__init__()
        self.base = _ResNet50Trunk(last_stride)
        self.bottleneck = nn.BatchNorm1d(2048) if bnneck else None
        self.feature_dim = 2048

    def forward(self, x):
        v = self.base(x).mean(dim=(2, 3))
        return v if self.bottleneck is None else self.bottleneck(v)


def build_reid_model(arch: str, bnneck: bool = True, last_stride: int = 1) -> nn.Module:
    """A randomly initialized ReID network of the given architecture (eval mode)."""
    if arch in _OSNET_CHANNELS:
        model = OSNet(_OSNET_CHANNELS[arch])
    elif arch == "resnet50":
        model = ResNet50ReID(bnneck=bnneck, last_stride=last_stride)
    else:
        raise BadInputError(f"unknown ReID architecture {arch!r}; expected one of {list(ARCHS)}")
    return model.eval()


# -- checkpoints -----------------------------------------------------------


def read_checkpoint(path) -> dict[str, torch.Tensor]:
    """Reads a checkpoint file into a flat ``{key: tensor}`` state dict.

    Uses the ``state_dict`` / ``model`` entry when present and strips
    ``module.`` prefixes. Tries ``weights_only=True`` first; falls back to a
    full unpickle (which can run code from the file) with a warning.

    Raises:
        FileNotFoundError: if ``path`` is missing
        BadInputError: if it is not a torch checkpoint of tensors
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ReID checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as safe_error:  # torch raises several kinds
        warnings.warn(
            f"{path}: cannot be loaded with torch.load(weights_only=True) ({safe_error}); "
            "unpickling it fully, which can execute code from the file: use only files you trust",
            stacklevel=2,
        )
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise BadInputError(f"{path} is not a torch checkpoint: {e}") from e
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), (Mapping, nn.Module)):
                obj = obj[key]
                break
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise BadInputError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}


def _names(keys, limit=8) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_state_dict(model: nn.Module, state: Mapping, what: str, drop=("classifier.",)) -> None:
    """Loads ``state`` into ``model`` exactly, or raises naming the mismatches.

    Keys starting with a prefix in ``drop`` are ignored; a missing
    ``num_batches_tracked`` is tolerated.

    Raises:
        BadInputError: listing missing keys, unexpected keys and shape mismatches
    """
    state = {k: v for k, v in state.items() if not k.startswith(tuple(drop))}
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_names(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches (checkpoint vs model): {_names(shapes)}")
        raise BadInputError(f"{what} does not match the architecture; " + "; ".join(parts))
    model.load_state_dict(state, strict=False)


def _resnet_layout(state: dict, last_stride: int | None) -> tuple[dict, bool, int]:
    """Normalizes a ResNet50 checkpoint to our keys; returns (state, bnneck, stride)."""
    if any(k.startswith("base.") for k in state):
        bnneck = any(k.startswith("bottleneck.") for k in state)
        return state, bnneck, 1 if last_stride is None else last_stride
    state = {("base." + k if not k.startswith(("fc.", "classifier.")) else k): v for k, v in state.items()}
    return state, False, 2 if last_stride is None else last_stride


# -- embedders -------------------------------------------------------------


class TorchEmbedder(Embedder):
    """An :class:`~fiftyone_posetrack.reid.base.Embedder` running a torch module.

    Args:
        model: the network (``(B, 3, H, W)`` -> ``(B, D)``), put in eval mode
        dim: ``D``
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        half: run in float16 (CUDA only)
        runtime: on the CPU, how to run the network (see
            :func:`~fiftyone_posetrack.reid.runtime.cpu_runner`): ``"auto"``
            (onnxruntime when installed, else fused channels-last torch),
            ``"onnxruntime"``, ``"torch"`` or ``"eager"``; chosen at the first
            call and kept in :attr:`runtime_used`
        **kwargs: see :class:`~fiftyone_posetrack.reid.base.Embedder`
    """

    def __init__(
        self, model: nn.Module, dim: int, device="auto", half=False, runtime="auto", **kwargs
    ):
        from fiftyone_posetrack.reid.runtime import RUNTIMES

        if runtime not in RUNTIMES:
            raise BadInputError(f"runtime: expected one of {list(RUNTIMES)}, got {runtime!r}")
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.dtype = torch.float16 if half and self.device.type == "cuda" else torch.float32
        self.model = model.eval().to(self.device, self.dtype)
        self._dim = int(dim)
        self.runtime = runtime
        self.runtime_used: str | None = None if self.device.type == "cpu" else "torch-" + str(self.device)
        self._cpu_run = None

    @property
    def dim(self) -> int:
        return self._dim

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        if self.device.type == "cpu":
            if self._cpu_run is None:
                from fiftyone_posetrack.reid.runtime import cpu_runner

                probe = np.random.default_rng(0).standard_normal((2, *batch.shape[1:]), np.float32)
                self._cpu_run, self.runtime_used = cpu_runner(self.model, probe, self.runtime)
            return self._cpu_run(batch)
        x = torch.from_numpy(batch).to(self.device, self.dtype, non_blocking=True)
        with torch.inference_mode():
            return self.model(x).float().cpu().numpy()


class TorchReID(TorchEmbedder):
    """A ReID network from a checkpoint file.

    Args:
        arch: one of :data:`ARCHS`
        weights: the checkpoint file (torchreid / strong-baseline format);
            required, weights are never downloaded
        device, half: see :class:`TorchEmbedder`
        input_size: ``(H, W)`` of the network input (ReID models: 256 x 128)
        last_stride: ResNet50's last stride (default: 1 for BNNeck
            checkpoints, 2 for plain torchreid / torchvision ones)
        **kwargs: ``flip``, ``scales``, ``batch_size``, ``mean``, ``std``, ``runtime``
    """

    def __init__(
        self,
        arch: str = "osnet_x1_0",
        weights=None,
        device="auto",
        input_size=(256, 128),
        half=False,
        last_stride: int | None = None,
        **kwargs,
    ):
        if arch not in ARCHS:
            raise BadInputError(f"unknown ReID architecture {arch!r}; expected one of {list(ARCHS)}")
        if weights is None:
            raise BadInputError(
                f"ReID model {arch!r} needs a checkpoint file: pretrained weights are not "
                f"downloaded automatically. Get one (e.g. from {_ZOO}) and pass weights=PATH, "
                "or use the offline default embedder 'mobilenet'"
            )
        state = read_checkpoint(weights)
        bnneck, stride = True, 1
        if arch == "resnet50":
            state, bnneck, stride = _resnet_layout(state, last_stride)
        model = build_reid_model(arch, bnneck=bnneck, last_stride=stride)
        load_state_dict(model, state, f"checkpoint {os.fspath(weights)!r} ({arch})",
                        drop=("classifier.", "fc.") if arch == "resnet50" else ("classifier.",))  # fmt: skip
        self.arch = arch
        super().__init__(model, model.feature_dim, device, half, input_size=input_size, **kwargs)
